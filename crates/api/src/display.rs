//! Values as people read them on the console's and the portal's pages: amounts with their
//! currency's decimals and grouped thousands, times as a date and a time of day.

use steward_domain::Timestamp;

/// Currencies without minor units, and those with three decimals (ISO 4217); every other has two.
const NO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// `CHF 1,250.00`, `JPY 12,000`, `KWD 1.250`: the code, then the amount with its currency's
/// decimals and thousands grouped.
pub(crate) fn money(minor: i64, currency: &str) -> String {
    let decimals = if NO_DECIMALS.contains(&currency) {
        0
    } else if THREE_DECIMALS.contains(&currency) {
        3
    } else {
        2
    };
    let scale = 10u64.pow(decimals);
    let abs = minor.unsigned_abs();
    let (whole, frac) = (abs / scale, abs % scale);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if minor < 0 { "-" } else { "" };
    if decimals == 0 {
        format!("{currency} {sign}{grouped}")
    } else {
        format!(
            "{currency} {sign}{grouped}.{frac:0width$}",
            width = decimals as usize
        )
    }
}

/// `5 Dec 2026, 14:03 UTC`: a date and a time of day people read at a glance.
pub(crate) fn when(t: Timestamp) -> String {
    let Ok(dt) =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.millis()) * 1_000_000)
    else {
        return t.to_rfc3339();
    };
    let month = match dt.month() {
        time::Month::January => "Jan",
        time::Month::February => "Feb",
        time::Month::March => "Mar",
        time::Month::April => "Apr",
        time::Month::May => "May",
        time::Month::June => "Jun",
        time::Month::July => "Jul",
        time::Month::August => "Aug",
        time::Month::September => "Sep",
        time::Month::October => "Oct",
        time::Month::November => "Nov",
        time::Month::December => "Dec",
    };
    format!(
        "{} {month} {}, {:02}:{:02} UTC",
        dt.day(),
        dt.year(),
        dt.hour(),
        dt.minute()
    )
}

/// A key as people read it: `marketing_email` → "Marketing email".
pub(crate) fn words(key: &str) -> String {
    let spaced = key.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(money(125_000, "CHF"), "CHF 1,250.00");
        assert_eq!(money(7, "EUR"), "EUR 0.07");
        assert_eq!(money(12_000, "JPY"), "JPY 12,000");
        assert_eq!(money(1_250, "KWD"), "KWD 1.250");
        assert_eq!(money(-123_456_789, "GBP"), "GBP -1,234,567.89");
        assert_eq!(money(i64::MIN, "USD"), "USD -92,233,720,368,547,758.08");
    }

    #[test]
    fn keys_read_as_words() {
        assert_eq!(words("marketing_email"), "Marketing email");
        assert_eq!(words(""), "");
    }

    #[test]
    fn times_read_at_a_glance() {
        let t = Timestamp::parse_rfc3339("2026-12-05T14:03:59Z").unwrap();
        assert_eq!(when(t), "5 Dec 2026, 14:03 UTC");
    }
}

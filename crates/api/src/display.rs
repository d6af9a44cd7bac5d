//! Values as people read them on the console's and the portal's pages: amounts with their
//! currency's decimals and grouped thousands, times as a date and a time of day.

use steward_domain::Timestamp;

/// Currencies without minor units, and those with three decimals (ISO 4217); every other has two.
const NO_DECIMALS: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DECIMALS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// An amount as typed (`1250`, `1250.5`, `1250.50`, `1250,50`) in minor units of `currency`
/// (its decimals: cents for most, none for JPY, three for KWD); `None` if it is not one.
pub(crate) fn minor_units(raw: &str, currency: &str) -> Option<i64> {
    let decimals = decimals(&currency.trim().to_uppercase());
    // A decimal comma, as most of Europe writes it (`1250,50`), is a decimal point.
    let raw = raw.trim().replace(',', ".");
    let (whole, frac) = raw.split_once('.').unwrap_or((raw.as_str(), ""));
    if whole.is_empty()
        || frac.len() > decimals as usize
        || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac: i64 = if decimals == 0 {
        0
    } else {
        format!("{frac:0<width$}", width = decimals as usize)
            .parse()
            .ok()?
    };
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(10i64.pow(decimals))?
        .checked_add(frac)
}

/// The decimals of a currency's minor unit (ISO 4217).
fn decimals(currency: &str) -> u32 {
    if NO_DECIMALS.contains(&currency) {
        0
    } else if THREE_DECIMALS.contains(&currency) {
        3
    } else {
        2
    }
}

/// `CHF 1,250.00`, `JPY 12,000`, `KWD 1.250`: the code, then the amount with its currency's
/// decimals and thousands grouped.
pub(crate) fn money(minor: i64, currency: &str) -> String {
    let decimals = decimals(currency);
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

/// The installation's time zone for pages (`serve --time-zone`); UTC until set.
static ZONE: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();

/// Shows times on the console's and the portal's pages in the IANA time zone `name` (e.g.
/// `Europe/Zurich`), daylight saving included. Once per process; an unknown name is an error.
pub fn set_time_zone(name: &str) -> Result<(), String> {
    let tz = jiff::tz::TimeZone::get(name).map_err(|_| format!("unknown time zone {name}"))?;
    let _ = ZONE.set(tz);
    Ok(())
}

/// `5 Dec 2026, 15:03 CET`: a date and a time of day people read at a glance, in the
/// installation's time zone.
pub(crate) fn when(t: Timestamp) -> String {
    when_in(t, ZONE.get().unwrap_or(&jiff::tz::TimeZone::UTC))
}

fn when_in(t: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(t.millis()) {
        Ok(ts) => ts
            .to_zoned_datetime(zone.clone())
            .strftime("%-d %b %Y, %H:%M %Z")
            .to_string(),
        Err(_) => t.to_rfc3339(),
    }
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
    fn times_read_at_a_glance_in_the_installations_zone() {
        let t = Timestamp::parse_rfc3339("2026-12-05T14:03:59Z").unwrap();
        assert_eq!(
            when_in(t, &jiff::tz::TimeZone::UTC),
            "5 Dec 2026, 14:03 UTC"
        );
        let zurich = jiff::tz::TimeZone::get("Europe/Zurich").unwrap();
        assert_eq!(when_in(t, &zurich), "5 Dec 2026, 15:03 CET");
        let summer = Timestamp::parse_rfc3339("2026-07-01T08:00:00Z").unwrap();
        assert_eq!(when_in(summer, &zurich), "1 Jul 2026, 10:00 CEST");
        assert!(set_time_zone("Mars/Olympus_Mons").is_err());
    }
}

//! The checks that confirm a candidate: checksums (Luhn, ISO 7064 mod 97-10, the NRIC/FIN check
//! letter) and the format rules of numbers that have no checksum (UK NINO, US SSN). Each takes
//! the candidate's significant characters only (separators already removed).

/// Whether `digits` (ASCII digits) pass the Luhn check (ISO/IEC 7812-1).
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether `digits` could be a payment card number: a length the issuer's range uses (Visa 13,
/// 16 or 19; Mastercard 16; Amex 15; JCB 16 to 19; Diners 14 to 16; Discover and UnionPay 16 to
/// 19) and the Luhn check. A 15-digit number starting 35 (an IMEI) is not a card.
pub fn card(digits: &[u8]) -> bool {
    let n = digits.len();
    let two = digits.get(..2).unwrap_or(&[]);
    let fits = match digits.first() {
        Some(b'4') => matches!(n, 13 | 16 | 19),
        Some(b'2' | b'5') => n == 16,
        Some(b'3') => match two {
            b"34" | b"37" => n == 15,
            b"35" => (16..=19).contains(&n),
            b"30" | b"36" | b"38" | b"39" => (14..=16).contains(&n),
            _ => false,
        },
        Some(b'6') => (16..=19).contains(&n),
        _ => false,
    };
    fits && luhn(digits)
}

/// IBAN lengths by country, from the ISO 13616 register (SWIFT's IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// The length of an IBAN of `country` (two upper-case letters), if it has IBANs.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|(_, n)| *n)
}

/// Whether `chars` (upper-case letters and digits, no spaces) is an IBAN: the country's length
/// and the ISO 7064 mod 97-10 check (the number, its first four characters moved to the end and
/// letters read as 10 to 35, leaves 1 modulo 97).
pub fn iban(chars: &[u8]) -> bool {
    if chars.len() < 4 || iban_length(&chars[..2]) != Some(chars.len()) {
        return false;
    }
    if !chars[2].is_ascii_digit() || !chars[3].is_ascii_digit() {
        return false;
    }
    let mut rem = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// Whether `chars` (nine characters: a prefix letter, seven digits, a check letter) is a
/// Singapore NRIC or FIN: the weighted sum of the digits (2, 7, 6, 5, 4, 3, 2) with the prefix's
/// offset picks the check letter (ICA's published algorithm; the M series from 2022 counts
/// backwards through its own letters).
pub fn nric(chars: &[u8]) -> bool {
    const WEIGHTS: [u32; 7] = [2, 7, 6, 5, 4, 3, 2];
    if chars.len() != 9 || !chars[1..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = chars[1..8]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let expected = match chars[0] {
        b'S' => b"JZIHGFEDCBA"[(sum % 11) as usize],
        b'T' => b"JZIHGFEDCBA"[((sum + 4) % 11) as usize],
        b'F' => b"XWUTRQPNMLK"[(sum % 11) as usize],
        b'G' => b"XWUTRQPNMLK"[((sum + 4) % 11) as usize],
        b'M' => b"KLJNPQRTUWX"[(10 - (sum + 3) % 11) as usize],
        _ => return false,
    };
    chars[8] == expected
}

/// Whether `chars` (two letters, six digits, a letter; no spaces) is a UK National Insurance
/// number by HMRC's rules: neither prefix letter D, F, I, Q, U or V, the second not O, the
/// prefixes BG, GB, KN, NK, NT, TN and ZZ never issued, a suffix A to D.
pub fn nino(chars: &[u8]) -> bool {
    if chars.len() != 9 {
        return false;
    }
    let (a, b) = (chars[0], chars[1]);
    let letter = |c: u8| c.is_ascii_uppercase() && !b"DFIQUV".contains(&c);
    letter(a)
        && letter(b)
        && b != b'O'
        && ![b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"].contains(&&[a, b])
        && chars[2..8].iter().all(u8::is_ascii_digit)
        && (b'A'..=b'D').contains(&chars[8])
}

/// Whether `digits` (nine digits) is a US Social Security number by the SSA's rules: an area
/// neither 000, 666 nor 900 to 999, a group not 00, a serial not 0000, and none of the numbers
/// the SSA has voided after they were printed in advertising.
pub fn ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = &digits[..3];
    area != b"000"
        && area != b"666"
        && area[0] != b'9'
        && &digits[3..5] != b"00"
        && &digits[5..] != b"0000"
        && digits != b"078051120"
        && digits != b"219099999"
        && !digits.iter().all(|d| *d == digits[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        assert!(card(b"4111111111111111"));
        assert!(!card(b"4111111111111112"));
        assert!(card(b"378282246310005"));
        assert!(!card(b"1234567812345670"), "no issuer starts with 1");
        assert!(iban(b"CH9300762011623852957"));
        assert!(iban(b"GB82WEST12345698765432"));
        assert!(iban(b"DE89370400440532013000"));
        assert!(!iban(b"DE89370400440532013001"));
        assert!(!iban(b"XX89370400440532013000"));
        assert!(nric(b"S1234567D"));
        assert!(nric(b"T1234567J"));
        assert!(nric(b"F1234567N"));
        assert!(nric(b"G1234567X"));
        assert!(!nric(b"S1234567A"));
        assert!(nino(b"AB123456C"));
        assert!(!nino(b"GB123456C"));
        assert!(!nino(b"AO123456C"));
        assert!(!nino(b"AB123456E"));
        assert!(ssn(b"536228471"));
        assert!(!ssn(b"666228471"));
        assert!(!ssn(b"536008471"));
        assert!(!ssn(b"078051120"));
    }

    #[test]
    fn m_series_fins_check_backwards() {
        // Every M number has exactly one check letter, and it is one of the series' letters.
        for n in [0u32, 1234567, 7654321, 9999999] {
            let digits = format!("{n:07}");
            let ok: Vec<u8> = (b'A'..=b'Z')
                .filter(|l| nric(format!("M{digits}{}", *l as char).as_bytes()))
                .collect();
            assert_eq!(ok.len(), 1, "{digits}");
            assert!(b"KLJNPQRTUWX".contains(&ok[0]));
        }
    }
}

use proptest::prelude::*;

use super::*;

fn found(text: &str) -> Vec<(EntityType, &str)> {
    Detector::default()
        .analyze(text)
        .into_iter()
        .map(|f| (f.entity_type, &text[f.start..f.end]))
        .collect()
}

#[test]
fn finds_each_type_in_a_sentence() {
    let text = "Card 4111 1111 1111 1111 exp 12/27, IBAN CH93 0076 2011 6238 5295 7, \
                mail anna.muster@example.ch or call +41 44 668 18 00; NRIC S1234567D, \
                NI AB 12 34 56 C, SSN 536-22-8471, from 192.168.10.4 and 2001:db8::ff00:42:8329, \
                see https://shop.example.com/reset?token=abc123.";
    assert_eq!(
        found(text),
        vec![
            (EntityType::CreditCard, "4111 1111 1111 1111"),
            (EntityType::IbanCode, "CH93 0076 2011 6238 5295 7"),
            (EntityType::EmailAddress, "anna.muster@example.ch"),
            (EntityType::PhoneNumber, "+41 44 668 18 00"),
            (EntityType::SgNricFin, "S1234567D"),
            (EntityType::UkNino, "AB 12 34 56 C"),
            (EntityType::UsSsn, "536-22-8471"),
            (EntityType::IpAddress, "192.168.10.4"),
            (EntityType::IpAddress, "2001:db8::ff00:42:8329"),
            (
                EntityType::UrlCredentials,
                "https://shop.example.com/reset?token=abc123"
            ),
        ]
    );
}

#[test]
fn invalid_numbers_are_not_findings() {
    let text = "Card 4111 1111 1111 1112, IBAN CH93 0076 2011 6238 5295 8, NRIC S1234567A, \
                NI GB 12 34 56 C, SSN 666-22-8471, version 1.2.3.4.5, order 20261204, \
                time 10:30:45, https://example.com/page?id=7, std::vec";
    assert_eq!(found(text), vec![]);
}

#[test]
fn national_numbers_need_the_language_and_a_telephone_shape() {
    let en = Detector::for_language("en").unwrap();
    let de = Detector::for_language("de-CH").unwrap();
    let text = "ruf an: 044 668 18 00";
    let f = de.analyze(text);
    assert_eq!(f.len(), 1);
    assert_eq!(&text[f[0].start..f[0].end], "044 668 18 00");
    let us = "call (212) 736-5000 today";
    let f = en.analyze(us);
    assert_eq!(&us[f[0].start..f[0].end], "(212) 736-5000");
    // A bare run of digits is an order number, not a telephone number; nor is a group of eight.
    assert!(en.analyze("order 2127365000").is_empty());
    assert!(en.analyze("ref 6238 5295").is_empty());
    assert!(Detector::for_language("xx").is_err());
}

#[test]
fn offsets_count_code_points() {
    let text = "🙂 顾客的卡号4111111111111111，谢谢 — mail anna@example.com, é@example.com";
    let findings = Detector::default().analyze(text);
    let cp = to_code_points(text, &findings);
    let chars: Vec<char> = text.chars().collect();
    let shown: Vec<String> = cp
        .iter()
        .map(|r| chars[r.start..r.end].iter().collect())
        .collect();
    // An address whose local part is not ASCII is not taken for one (nor half of one).
    assert_eq!(shown, ["4111111111111111", "anna@example.com"]);
    assert_eq!((cp[0].start, cp[0].end), (7, 23));
    assert_eq!((cp[1].start, cp[1].end), (34, 50));
}

#[test]
fn rules_mask_or_redact_each_finding() {
    let text = "card 4111 1111 1111 1111, mail anna@example.ch.";
    let f = Detector::default().analyze(text);
    assert_eq!(apply(text, &f, PiiRule::Keep), text);
    assert_eq!(
        apply(text, &f, PiiRule::Mask),
        "card •••• 1111, mail a•••@example.ch."
    );
    assert_eq!(
        apply(text, &f, PiiRule::Redact),
        "card <CREDIT_CARD>, mail <EMAIL_ADDRESS>."
    );
    let types = PiiTypes::of(&f);
    assert_eq!(types.to_stored(), "CREDIT_CARD,EMAIL_ADDRESS");
    assert_eq!(PiiTypes::from_stored(&types.to_stored()), types);
    assert!(types.any_sensitive());
}

/// Filler text: words, CJK, emoji and punctuation, never a digit or a capital letter.
fn filler() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z ,;!?é顾客🙂]{0,40}").unwrap()
}

fn luhn_complete(body: &[u8]) -> Vec<u8> {
    (b'0'..=b'9')
        .map(|c| [body, &[c]].concat())
        .find(|d| luhn(d))
        .unwrap()
}

fn card_number() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![&b"2"[..], b"35", b"4", b"5", b"6"]),
        proptest::collection::vec(b'0'..=b'9', 14),
    )
        .prop_map(|(first, rest)| {
            // Sixteen digits: a length every issuer range above uses.
            let body = [first, &rest[..15 - first.len()]].concat();
            String::from_utf8(luhn_complete(&body)).unwrap()
        })
}

fn iban_number() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![("CH", 21usize), ("DE", 22), ("FR", 27), ("NL", 18)]),
        proptest::collection::vec(b'0'..=b'9', 30),
    )
        .prop_map(|((country, len), digits)| {
            let bban = String::from_utf8(digits[..len - 4].to_vec()).unwrap();
            (0..100)
                .map(|check| format!("{country}{check:02}{bban}"))
                .find(|s| iban(s.as_bytes()))
                .unwrap()
        })
}

fn nric_number() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!['S', 'T', 'F', 'G', 'M']),
        proptest::collection::vec(b'0'..=b'9', 7),
    )
        .prop_map(|(prefix, digits)| {
            let digits = String::from_utf8(digits).unwrap();
            (b'A'..=b'Z')
                .map(|l| format!("{prefix}{digits}{}", l as char))
                .find(|s| nric(s.as_bytes()))
                .unwrap()
        })
}

/// Changes the digit at `at` (counted among digits) to `to`, which differs from it.
fn corrupt(s: &str, at: usize, by: u8) -> String {
    let mut out = s.as_bytes().to_vec();
    let positions: Vec<usize> = (0..out.len())
        .filter(|i| out[*i].is_ascii_digit())
        .collect();
    let i = positions[at % positions.len()];
    out[i] = b'0' + (out[i] - b'0' + by) % 10;
    String::from_utf8(out).unwrap()
}

/// The findings in `before number after` (one space either side), and where `number` starts.
fn around(before: &str, number: &str, after: &str) -> (String, Vec<Finding>, usize) {
    let text = format!("{before} {number} {after}");
    let findings = Detector::default().analyze(&text);
    (text, findings, before.len() + 1)
}

fn check_found(
    before: &str,
    number: &str,
    after: &str,
    t: EntityType,
) -> Result<(), TestCaseError> {
    let (text, findings, start) = around(before, number, after);
    prop_assert!(
        findings
            .iter()
            .any(|f| f.entity_type == t && f.start == start && f.end == start + number.len()),
        "{text:?}: {findings:?}"
    );
    Ok(())
}

fn check_not_found(
    before: &str,
    number: &str,
    after: &str,
    t: EntityType,
) -> Result<(), TestCaseError> {
    let (text, findings, _) = around(before, number, after);
    prop_assert!(
        findings.iter().all(|f| f.entity_type != t),
        "{text:?}: {findings:?}"
    );
    Ok(())
}

/// `number` (written solid or in groups of four) is found as `t` between `before` and `after`,
/// and the same with one digit changed (`at`, `by`) is not.
fn found_and_corruptions_not(
    before: &str,
    after: &str,
    number: &str,
    (at, by): (usize, u8),
    spaced: bool,
    t: EntityType,
) -> Result<(), TestCaseError> {
    let written = if spaced {
        number
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        number.to_owned()
    };
    check_found(before, &written, after, t)?;
    check_not_found(before, &corrupt(&written, at, by), after, t)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cards_are_found_and_corruptions_are_not(
        before in filler(), after in filler(), number in card_number(),
        at in 0usize..20, by in 1u8..10, spaced in any::<bool>(),
    ) {
        found_and_corruptions_not(&before, &after, &number, (at, by), spaced, EntityType::CreditCard)?;
    }

    #[test]
    fn ibans_are_found_and_corruptions_are_not(
        before in filler(), after in filler(), number in iban_number(),
        at in 0usize..30, by in 1u8..10, spaced in any::<bool>(),
    ) {
        found_and_corruptions_not(&before, &after, &number, (at, by), spaced, EntityType::IbanCode)?;
    }

    #[test]
    fn nrics_are_found_and_corruptions_are_not(
        before in filler(), after in filler(), number in nric_number(),
        at in 0usize..7, by in 1u8..10,
    ) {
        check_found(&before, &number, &after, EntityType::SgNricFin)?;
        check_not_found(&before, &corrupt(&number, at, by), &after, EntityType::SgNricFin)?;
    }

    #[test]
    fn formats_without_checksums_are_found(
        before in filler(), after in filler(),
        area in 1u32..900, group in 1u32..100, serial in 1u32..10_000,
        a in prop::sample::select(b"ABCEGHJKLMNPRSTWXYZ".to_vec()),
        b in prop::sample::select(b"ABCEGHJKLMNPRSTWXYZ".to_vec()),
        nino_digits in 0u32..1_000_000, suffix in prop::sample::select(b"ABCD".to_vec()),
        octets in proptest::array::uniform4(0u8..=255),
        local in "[a-z][a-z0-9.]{0,10}[a-z]", domain in "[a-z]{1,10}\\.(ch|com|co\\.uk)",
    ) {
        let ssn = format!("{area:03}-{group:02}-{serial:04}");
        if super::ssn(ssn.replace('-', "").as_bytes()) {
            check_found(&before, &ssn, &after, EntityType::UsSsn)?;
        }
        let nino = format!("{}{}{nino_digits:06}{}", a as char, b as char, suffix as char);
        if super::nino(nino.as_bytes()) {
            check_found(&before, &nino, &after, EntityType::UkNino)?;
        }
        let ip = format!("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3]);
        check_found(&before, &ip, &after, EntityType::IpAddress)?;
        if !local.contains("..") {
            check_found(&before, &format!("{local}@{domain}"), &after, EntityType::EmailAddress)?;
        }
    }

    #[test]
    fn any_text_is_scanned_without_panic_and_findings_are_ordered(text in ".{0,300}") {
        let findings = Detector::default().analyze(&text);
        for w in findings.windows(2) {
            prop_assert!(w[0].end <= w[1].start);
        }
        for f in &findings {
            prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        }
        let cp = to_code_points(&text, &findings);
        prop_assert_eq!(cp.len(), findings.len());
    }
}

#[test]
fn cards_are_found_as_people_write_them_and_imeis_are_not() {
    assert_eq!(
        found("(4111 1111 1111 1111) and 4111.1111.1111.1111"),
        vec![
            (EntityType::CreditCard, "4111 1111 1111 1111"),
            (EntityType::CreditCard, "4111.1111.1111.1111")
        ]
    );
    // A card, its expiry and its code in one run of digits: the card is still found.
    assert_eq!(
        found("4111111111111111 12 2026 123"),
        vec![(EntityType::CreditCard, "4111111111111111")]
    );
    // A phone's IMEI is Luhn-valid, 15 digits, and starts like JCB: not a card.
    assert_eq!(found("IMEI 356938035643809"), vec![]);
    // A card inside what looks like an address is still a card (the address is dropped).
    assert_eq!(
        found("4111111111111111@example.com"),
        vec![(EntityType::CreditCard, "4111111111111111")]
    );
    assert_eq!(
        Detector::default()
            .sensitive("card 4111 1111 1111 1111, call +41 44 668 18 00")
            .len(),
        1
    );
}

/// Texts made to be slow — URLs inside URLs, endless digit groups, colons — finish (in linear
/// time: each would take minutes if any part of the scan were quadratic).
#[test]
fn adversarial_texts_finish() {
    let d = Detector::default();
    for text in [
        "a://".repeat(100_000),
        "0 1 ".repeat(100_000),
        "1:".repeat(200_000),
        "a@".repeat(200_000),
        "GB82 ".repeat(100_000),
        format!("https://x.example/?token={}", "a".repeat(500_000)),
    ] {
        let _ = d.analyze(&text);
    }
}

//! Fuzz harnesses for every parser of untrusted input. Each takes raw bytes, never returns an
//! error, and panics when an invariant breaks — which is what a fuzzer looks for. cargo-fuzz
//! drives them (`fuzz/`, `scripts/fuzz`); the test suite replays the kept regressions and seeds
//! (`tests/replay.rs`), so a crash once found stays fixed.
//!
//! Beyond "does not crash", each harness checks what the parser promises: errors never repeat a
//! submitted value, normal forms are fixed points, proofs verify exactly when they should, the
//! memoized policy decides as the evaluated one does, and consent, restriction and purpose bind
//! every decision.

// A harness reports a broken invariant by panicking: that is its whole job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod bodies;
mod policy;

pub use audit::{audit_export, audit_proof, sample_export, sample_export_key};
pub use bodies::json_body;
pub use policy::policy_context;

/// A harness: raw bytes in, a panic when an invariant breaks.
pub type Harness = fn(&[u8]);

/// The fuzz targets by name, as `fuzz/fuzz_targets/*.rs` and the regression folders name them.
pub const TARGETS: [(&str, Harness); 6] = [
    ("csv_import", csv_import),
    ("json_body", json_body),
    ("normalize", normalize),
    ("audit_proof", audit_proof),
    ("audit_export", audit_export),
    ("policy_context", policy_context),
];

/// A CSV file given to `steward import`: parsing never panics; every accepted customer is a fixed
/// point of validation; every rejected row names a line inside the file and repeats no cell.
pub fn csv_import(data: &[u8]) {
    let Ok((ok, bad, _ignored)) = steward_service::import::parse_csv(data) else {
        return;
    };
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    for e in &bad {
        assert!(
            (1..=lines).contains(&e.line),
            "row error on line {} of a {lines}-line file",
            e.line
        );
    }
    for (_, c) in ok {
        // Validating what validation produced changes nothing (the stored form is normal).
        let again = c
            .as_input()
            .validate()
            .expect("a validated customer validates again");
        assert_eq!(again, c, "validation is not idempotent");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let cells: Vec<&str> = text
            .split(['\n', '\r', ','])
            .map(|c| c.trim().trim_matches('"'))
            .filter(|c| c.chars().count() >= 8)
            .collect();
        // A reason written into the program (`Cow::Borrowed`) cannot hold input, even where a
        // cell happens to spell part of it (the fuzzer found "ot contain control characte").
        for e in &bad {
            if let std::borrow::Cow::Owned(reason) = &e.error.reason {
                for cell in &cells {
                    assert!(
                        !reason.contains(cell),
                        "a row error repeats a cell of the file"
                    );
                }
            }
        }
    }
}

/// E-mail, phone and text normalisation: never panics; a normal form is a fixed point and has
/// the shape the blind index relies on.
pub fn normalize(data: &[u8]) {
    use steward_domain::normalize::{currency, email, long_text, phone, short_text};
    let s = String::from_utf8_lossy(data);
    if let Ok(e) = email("email", &s) {
        assert_eq!(
            email("email", &e).as_ref(),
            Ok(&e),
            "e-mail not a fixed point"
        );
        assert_eq!(e.matches('@').count(), 1, "normal e-mail with not one @");
        assert!(e.len() <= 254, "normal e-mail longer than RFC 5321 allows");
        assert_eq!(e, e.trim(), "normal e-mail with outer spaces");
    }
    if let Ok(p) = phone("phone", &s) {
        let digits = p.strip_prefix('+').expect("E.164 starts with +");
        assert!(
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
            "normal phone not E.164"
        );
        assert_eq!(
            phone("phone", &p).as_ref(),
            Ok(&p),
            "phone not a fixed point"
        );
    }
    for f in [short_text, long_text, currency] {
        if let Ok(t) = f("field", &s) {
            assert_eq!(f("field", &t).as_ref(), Ok(&t), "text not a fixed point");
        }
    }
}

//! The audit log's parsers: inclusion and consistency proofs, checkpoints, signed notes, verifier
//! keys, and exported logs (`steward audit verify-export`), all of which reach Steward from
//! outside — a customer checking a proof, anyone checking an export.

use std::collections::HashMap;
use std::sync::LazyLock;

use arbitrary::Unstructured;
use steward_crypto::merkle::{self, Hash};
use steward_crypto::{Checkpoint, NoteSigner, NoteVerifier};

/// The log name and key of the harness's own exports (a fixed seed: reproducible inputs).
static SIGNER: LazyLock<NoteSigner> = LazyLock::new(|| {
    NoteSigner::from_seed("steward/fuzz", &zeroize::Zeroizing::new([7u8; 32]))
        .expect("a valid signer name")
});

/// The stored hashes of a log of `size` entries whose leaves are `leaf(i)`, and its edge.
fn tree(size: u64) -> (HashMap<u64, Hash>, Vec<Hash>) {
    let (mut edge, mut written) = (Vec::new(), Vec::new());
    for i in 0..size {
        written.push(merkle::push(&mut edge, i, merkle::leaf_hash(&leaf(i))));
    }
    let mut stored = HashMap::new();
    for index in 0.. {
        let (entry, offset) = merkle::written_at(index);
        if entry >= size {
            break;
        }
        if let Some(h) = written[entry as usize].get(offset) {
            stored.insert(index, *h);
        }
    }
    (stored, edge)
}

fn leaf(i: u64) -> Vec<u8> {
    format!("{{\"entry\":{i}}}").into_bytes()
}

/// Flips one bit of one hash of `proof`, chosen by `u`; false when there is nothing to flip.
fn tamper(proof: &mut [Hash], u: &mut Unstructured<'_>) -> bool {
    if proof.is_empty() {
        return false;
    }
    let (Ok(h), Ok(byte), Ok(bit)) = (
        u.choose_index(proof.len()),
        u.int_in_range(0..=31usize),
        u.int_in_range(0..=7u8),
    ) else {
        return false;
    };
    proof[h][byte] ^= 1 << bit;
    true
}

/// Proofs over a tree whose shape the input picks: honest proofs verify; a proof with one bit
/// flipped, or checked at another index or size, does not; arbitrary proofs, indexes and sizes
/// never panic. Then checkpoints and signed notes from the rest of the input.
pub fn audit_proof(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(size) = u.int_in_range(1..=300u64) else {
        return;
    };
    let (stored, edge) = tree(size);
    let root = merkle::root_of_edge(&edge);
    assert_eq!(merkle::root(size, &stored), Ok(root), "two roots disagree");

    let index = u.int_in_range(0..=size - 1).unwrap_or(0);
    let lh = merkle::leaf_hash(&leaf(index));
    let mut proof = merkle::inclusion_proof(index, size, &stored).expect("every hash is stored");
    assert!(merkle::verify_inclusion(index, size, &lh, &proof, &root));
    let other = u.int_in_range(0..=size).unwrap_or(size);
    if other != index {
        assert!(!merkle::verify_inclusion(other, size, &lh, &proof, &root));
    }
    if tamper(&mut proof, &mut u) {
        assert!(!merkle::verify_inclusion(index, size, &lh, &proof, &root));
    }

    let first = u.int_in_range(1..=size).unwrap_or(1);
    let first_root = merkle::root(first, &stored).expect("every hash is stored");
    let mut proof = merkle::consistency_proof(first, size, &stored).expect("every hash is stored");
    assert!(merkle::verify_consistency(
        first,
        size,
        &first_root,
        &root,
        &proof
    ));
    if tamper(&mut proof, &mut u) {
        assert!(!merkle::verify_consistency(
            first,
            size,
            &first_root,
            &root,
            &proof
        ));
    }

    // Whatever a client sends as a proof.
    let (Ok(i), Ok(n), Ok(raw)) = (
        u.arbitrary::<u64>(),
        u.arbitrary::<u64>(),
        u.arbitrary::<Vec<[u8; 32]>>(),
    ) else {
        return;
    };
    let _ = merkle::verify_inclusion(i, n, &lh, &raw, &root);
    let _ = merkle::verify_consistency(i, n, &first_root, &root, &raw);
    let _ = merkle::inclusion_needs(i, n);
    let _ = merkle::consistency_needs(i, n);

    let text = String::from_utf8_lossy(u.take_rest());
    notes(&text);
}

/// Checkpoint bodies, signed notes and verifier keys from arbitrary text.
fn notes(text: &str) {
    if let Ok(c) = Checkpoint::parse(text) {
        assert_eq!(
            Checkpoint::parse(&c.to_text()).as_ref(),
            Ok(&c),
            "a checkpoint does not round-trip"
        );
    }
    let verifier = NoteVerifier::parse(&SIGNER.verifier_key()).expect("our own key parses");
    if let Ok(body) = verifier.open(text) {
        // Only the harness's key signs; the fuzzer cannot forge, so what opens is ours.
        assert!(text.starts_with(body));
    }
    let _ = Checkpoint::open(text, &verifier);
    for line in text.lines() {
        let _ = NoteVerifier::parse(line);
    }
}

/// The verifier key of [`sample_export`]'s signer (C2SP vkey form).
pub fn sample_export_key() -> String {
    SIGNER.verifier_key()
}

/// A valid export of a log of `size` entries, signed by the harness's key: the seed the fuzzer
/// starts from.
pub fn sample_export(size: u64) -> Vec<u8> {
    use base64::Engine;
    let (_, edge) = tree(size);
    let checkpoint = Checkpoint {
        origin: SIGNER.name().to_owned(),
        size,
        root: merkle::root_of_edge(&edge),
    };
    let header = serde_json::json!({
        "format": steward_service::EXPORT_FORMAT,
        "checkpoint": SIGNER.sign(&checkpoint.to_text()),
    });
    let mut out = format!("{header}\n");
    for i in 0..size {
        let line = serde_json::json!({
            "index": i,
            "leaf": base64::engine::general_purpose::STANDARD.encode(leaf(i)),
        });
        out.push_str(&format!("{line}\n"));
    }
    out.into_bytes()
}

/// An exported log checked with the harness's verifier key (and the first line tried as a key):
/// never panics, and never calls a log good unless every entry checked out against the signed
/// root.
pub fn audit_export(data: &[u8]) {
    let key = SIGNER.verifier_key();
    match steward_service::verify_export(data, &key) {
        Ok(report) if report.first_bad.is_none() => {
            // Only the harness signs with this key, and only over its own leaves: a log that
            // verifies must hold exactly those leaves, in order.
            use base64::Engine;
            use std::io::BufRead;
            let leaves: Vec<Vec<u8>> = data
                .lines()
                .skip(1)
                .map(|l| {
                    let v: serde_json::Value =
                        serde_json::from_str(&l.expect("utf-8")).expect("json");
                    let b64 = v["leaf"].as_str().expect("a leaf");
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .expect("base64")
                })
                .collect();
            let expected: Vec<Vec<u8>> = (0..report.size).map(leaf).collect();
            assert_eq!(leaves, expected, "a log that is not ours verified");
        }
        _ => {}
    }
    if let Some(first) = data.split(|&b| b == b'\n').next() {
        let _ = steward_service::verify_export(data, &String::from_utf8_lossy(first));
    }
}

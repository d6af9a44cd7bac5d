//! Replays every kept crash (`fuzz/regressions/<target>/`) and every seed (`fuzz/seeds/<target>/`)
//! through its harness, then a few thousand deterministic variations of the seeds: the harnesses'
//! invariants are checked on every test run, not only while someone fuzzes.

// Test helpers outside #[test] functions: a missing seed file is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files under `fuzz/<kind>/<target>/`, sorted (none if the folder does not exist).
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir.filter_map(|e| Some(e.ok()?.path())).collect();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// A small deterministic generator (xorshift64*): the same variations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A libFuzzer-like mutation: flip, insert, delete or overwrite a few bytes.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 if at < v.len() => v[at] ^= 1 << rng.below(8),
            1 => v.insert(at, rng.next() as u8),
            2 if at < v.len() => {
                v.remove(at);
            }
            _ if at < v.len() => v[at] = b"{}[]\",:0aZ@+.\n\\\x00\xff"[rng.below(16)],
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

#[test]
fn every_kept_crash_and_seed_passes() {
    let mut replayed = 0;
    for (target, harness) in steward_fuzz::TARGETS {
        for kind in ["regressions", "seeds"] {
            for (path, bytes) in inputs(kind, target) {
                eprintln!("replaying {}", path.display());
                harness(&bytes);
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 20, "only {replayed} inputs found under fuzz/");
}

#[test]
fn variations_of_the_seeds_keep_the_invariants() {
    for (target, harness) in steward_fuzz::TARGETS {
        let seeds = inputs("seeds", target);
        assert!(!seeds.is_empty(), "no seeds for {target}");
        let mut rng = Rng(0x5EED_0000 + target.len() as u64);
        for i in 0..2_000 {
            let (_, seed) = &seeds[i % seeds.len()];
            harness(&mutate(&mut rng, seed));
        }
        // And plain noise.
        for _ in 0..500 {
            let len = rng.below(300);
            let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            harness(&noise);
        }
    }
}

#[test]
fn the_export_seed_is_a_current_valid_export() {
    let committed = std::fs::read(fuzz_dir().join("seeds/audit_export/valid-5")).unwrap();
    assert_eq!(
        committed,
        steward_fuzz::sample_export(5),
        "regenerate fuzz/seeds/audit_export/valid-5 from steward_fuzz::sample_export(5)"
    );
    let report =
        steward_service::verify_export(committed.as_slice(), &steward_fuzz::sample_export_key())
            .unwrap();
    assert_eq!((report.size, report.first_bad), (5, None));
}

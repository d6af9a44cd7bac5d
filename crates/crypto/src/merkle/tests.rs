//! The tree against RFC 6962's reference data and against the RFC's algorithms written out
//! independently here (MTH, PATH, SUBPROOF of section 2.1), over random trees and batch splits.

use std::collections::HashMap;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h(s: &str) -> Hash {
    unhex(s).try_into().unwrap()
}

// ---- RFC 6962 section 2.1, written out directly ------------------------------------------------

fn node(l: &Hash, r: &Hash) -> Hash {
    let mut d = Sha256::new();
    d.update([1u8]);
    d.update(l);
    d.update(r);
    d.finalize().into()
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(l: &[Hash]) -> Hash {
    match l.len() {
        0 => Sha256::digest([]).into(),
        1 => l[0],
        n => {
            let k = split(n);
            node(&mth(&l[..k]), &mth(&l[k..]))
        }
    }
}

fn path(m: usize, l: &[Hash]) -> Vec<Hash> {
    if l.len() == 1 {
        return vec![];
    }
    let k = split(l.len());
    let (mut p, other) = if m < k {
        (path(m, &l[..k]), mth(&l[k..]))
    } else {
        (path(m - k, &l[k..]), mth(&l[..k]))
    };
    p.push(other);
    p
}

fn subproof(m: usize, l: &[Hash], whole: bool) -> Vec<Hash> {
    if m == l.len() {
        return if whole { vec![] } else { vec![mth(l)] };
    }
    let k = split(l.len());
    let (mut p, other) = if m <= k {
        (subproof(m, &l[..k], whole), mth(&l[k..]))
    } else {
        (subproof(m - k, &l[k..], false), mth(&l[..k]))
    };
    p.push(other);
    p
}

// ---- A store built as the audit log builds it, batch by batch -----------------------------------

fn leaf_index(n: u64) -> u64 {
    tlog_tiles::tlog::stored_hash_index(0, n)
}

fn stored_count(size: u64) -> u64 {
    tlog_tiles::tlog::stored_hash_count(size)
}

/// Appends in batches, each starting from the frontier read back from storage (as an appender
/// that did not write the previous batch does); returns the stored hashes and each batch's root.
fn build(leaves: &[Hash], batches: &[usize]) -> (HashMap<u64, Hash>, Vec<Hash>) {
    let mut stored = HashMap::new();
    let mut roots = vec![];
    let mut size = 0usize;
    let mut cuts = batches.iter().cycle();
    while size < leaves.len() {
        let take = (*cuts.next().unwrap()).clamp(1, leaves.len() - size);
        let mut edge: Vec<Hash> = frontier(size as u64).iter().map(|i| stored[i]).collect();
        let mut at = leaf_index(size as u64);
        for (n, leaf) in (size as u64..).zip(&leaves[size..size + take]) {
            for h in push(&mut edge, n, *leaf) {
                assert!(
                    stored.insert(at, h).is_none(),
                    "hash index {at} written twice"
                );
                at += 1;
            }
        }
        size += take;
        assert_eq!(stored.len() as u64, stored_count(size as u64));
        roots.push(root_of_edge(&edge));
        assert_eq!(root(size as u64, &stored).unwrap(), root_of_edge(&edge));
    }
    (stored, roots)
}

/// Only the hashes a step says it needs: proves that the `*_needs` lists are complete.
fn only(stored: &HashMap<u64, Hash>, needs: &[u64]) -> HashMap<u64, Hash> {
    needs.iter().map(|i| (*i, stored[i])).collect()
}

const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// RFC 6962 reference roots for sizes 1 to 8 (Certificate Transparency's test data).
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn ct_leaves() -> Vec<Hash> {
    CT_LEAVES.iter().map(|l| leaf_hash(&unhex(l))).collect()
}

#[test]
fn roots_match_the_rfc_6962_reference() {
    let (_, roots) = build(&ct_leaves(), &[1]);
    for (got, want) in roots.iter().zip(CT_ROOTS) {
        assert_eq!(*got, h(want));
    }
    let (_, in_one) = build(&ct_leaves(), &[8]);
    assert_eq!(in_one, vec![h(CT_ROOTS[7])]);
}

#[test]
fn proofs_match_the_rfc_6962_reference() {
    let leaves = ct_leaves();
    let (stored, _) = build(&leaves, &[3]);
    // (0-based index, tree size, proof) and (first, second, proof), from CT's test data.
    let inclusion: [(u64, u64, &[&str]); 4] = [
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, want) in inclusion {
        let needs = inclusion_needs(index, size).unwrap();
        let p = inclusion_proof(index, size, &only(&stored, &needs)).unwrap();
        assert_eq!(
            p,
            want.iter().map(|x| h(x)).collect::<Vec<_>>(),
            "{index}/{size}"
        );
        let root = h(CT_ROOTS[size as usize - 1]);
        assert!(verify_inclusion(
            index,
            size,
            &leaves[index as usize],
            &p,
            &root
        ));
    }
    let consistency: [(u64, u64, &[&str]); 4] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (first, second, want) in consistency {
        let needs = consistency_needs(first, second).unwrap();
        let p = consistency_proof(first, second, &only(&stored, &needs)).unwrap();
        assert_eq!(
            p,
            want.iter().map(|x| h(x)).collect::<Vec<_>>(),
            "{first}->{second}"
        );
        let (r1, r2) = (
            h(CT_ROOTS[first as usize - 1]),
            h(CT_ROOTS[second as usize - 1]),
        );
        assert!(verify_consistency(first, second, &r1, &r2, &p));
    }
}

#[test]
fn out_of_range_requests_are_errors_not_panics() {
    assert!(inclusion_needs(3, 3).is_err());
    assert!(consistency_needs(0, 3).is_err());
    assert!(consistency_needs(4, 3).is_err());
    assert!(!verify_inclusion(3, 3, &[0; 32], &[], &[0; 32]));
    assert!(!verify_consistency(0, 3, &[0; 32], &[0; 32], &[]));
}

/// Found by fuzzing (`audit_proof`): sizes near `u64::MAX` overflowed inside `tlog_tiles`.
#[test]
fn huge_sizes_are_refused_not_overflowed() {
    let huge = [MAX_SIZE + 1, u64::MAX / 2, u64::MAX - 1, u64::MAX];
    for n in huge {
        assert!(inclusion_needs(n - 1, n).is_err());
        assert!(inclusion_needs(0, n).is_err());
        assert!(consistency_needs(1, n).is_err());
        assert!(inclusion_proof(0, n, &HashMap::new()).is_err());
        assert!(consistency_proof(1, n, &HashMap::new()).is_err());
        assert!(root(n, &HashMap::new()).is_err());
        assert!(!verify_inclusion(
            n - 1,
            n,
            &[0; 32],
            &[[1; 32]; 3],
            &[0; 32]
        ));
        assert!(!verify_consistency(1, n, &[0; 32], &[0; 32], &[[1; 32]; 3]));
    }
    // The largest accepted size still works out which hashes it needs.
    assert!(!inclusion_needs(MAX_SIZE - 1, MAX_SIZE).unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Built in random batches, the tree's roots and proofs are the RFC's, and a proof changed in
    /// any hash, or checked against another leaf or root, fails.
    #[test]
    fn tree_agrees_with_the_rfc_algorithms(
        data in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..70),
        batches in proptest::collection::vec(1usize..9, 1..5),
        pick in any::<(u64, u64, u8)>(),
    ) {
        let leaves: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
        let n = leaves.len();
        let (stored, roots) = build(&leaves, &batches);
        prop_assert_eq!(*roots.last().unwrap(), mth(&leaves));
        // Streaming, leaf by leaf, gives the same stored hashes and every root.
        let mut edge = Vec::new();
        let mut streamed = Vec::new();
        for (n, leaf) in leaves.iter().enumerate() {
            streamed.extend(push(&mut edge, n as u64, *leaf));
            prop_assert_eq!(root_of_edge(&edge), mth(&leaves[..=n]));
            let want: Vec<Hash> = frontier(n as u64 + 1).iter().map(|i| stored[i]).collect();
            prop_assert_eq!(&edge, &want);
        }
        let all_stored: Vec<Hash> = (0..stored_count(n as u64)).map(|i| stored[&i]).collect();
        prop_assert_eq!(&streamed, &all_stored);
        // Where each stored hash was written: entry by entry, in order.
        let mut at = 0u64;
        for e in 0..n as u64 {
            for off in 0..1 + (e + 1).trailing_zeros() as usize {
                prop_assert_eq!(written_at(at), (e, off));
                at += 1;
            }
        }
        prop_assert_eq!(root_of_edge(&[]), mth(&[]));
        let all: Vec<u64> = (0..stored_count(n as u64)).collect();
        prop_assert_eq!(root(n as u64, &stored).unwrap(), mth(&leaves));
        for size in 1..=n {
            prop_assert_eq!(root(size as u64, &only(&stored, &all)).unwrap(), mth(&leaves[..size]));
        }

        let size = 1 + (pick.0 % n as u64);
        let index = pick.1 % size;
        let root_s = mth(&leaves[..size as usize]);
        let p = inclusion_proof(index, size, &only(&stored, &inclusion_needs(index, size).unwrap())).unwrap();
        prop_assert_eq!(&p, &path(index as usize, &leaves[..size as usize]));
        prop_assert!(verify_inclusion(index, size, &leaves[index as usize], &p, &root_s));
        if !p.is_empty() {
            let mut bad = p.clone();
            let at = pick.2 as usize % bad.len();
            bad[at][0] ^= 1;
            prop_assert!(!verify_inclusion(index, size, &leaves[index as usize], &bad, &root_s));
        }
        let mut other = leaves[index as usize];
        other[31] ^= 0x80;
        prop_assert!(!verify_inclusion(index, size, &other, &p, &root_s));

        let first = 1 + (pick.1 % size);
        let root_f = mth(&leaves[..first as usize]);
        let c = consistency_proof(first, size, &only(&stored, &consistency_needs(first, size).unwrap())).unwrap();
        prop_assert_eq!(&c, &subproof(first as usize, &leaves[..size as usize], true));
        prop_assert!(verify_consistency(first, size, &root_f, &root_s, &c));
        let mut wrong_root = root_f;
        wrong_root[0] ^= 1;
        prop_assert!(!verify_consistency(first, size, &wrong_root, &root_s, &c));
        if !c.is_empty() {
            let mut bad = c.clone();
            let at = pick.2 as usize % bad.len();
            bad[at][5] ^= 4;
            prop_assert!(!verify_consistency(first, size, &root_f, &root_s, &bad));
        }
    }
}

//! The audit log's Merkle tree: RFC 6962 / RFC 9162 hashing (SHA-256, `0x00` leaf prefix, `0x01`
//! node prefix), with the tree math of `tlog_tiles` (Cloudflare's port of Go's `sumdb/tlog`, the
//! code behind the Go checksum database and static CT logs).
//!
//! Every hash the tree will ever need has a place in one append-only sequence (the "stored hash
//! index" of Crosby and Wallach): the leaf hash of entry n, then the hashes of the subtrees it
//! completes — so the log keeps them with the entry whose append wrote them ([`written_at`]), an
//! append writes only at the end, and any root or proof needs at most 2·log₂(n) stored hashes,
//! fetched in one query. Proofs are built in two steps so that the caller can fetch those hashes
//! asynchronously: ask which indexes a proof needs, fetch them, then build it.

use std::collections::HashMap;

use tlog_tiles::tlog;

/// A SHA-256 hash in the tree.
pub type Hash = [u8; 32];

/// Why a tree operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// A stored hash the operation needs was not supplied.
    #[error("a stored hash is missing")]
    Missing,
    /// The request does not fit the tree (an index past the size, a size of zero, …).
    #[error("out of range: {0}")]
    Range(&'static str),
}

/// The largest tree size the tree math accepts. The stored-hash indexes of larger trees overflow
/// a `u64` inside `tlog_tiles` (found by fuzzing `verify_inclusion` with an arbitrary size), and
/// no log will hold 2⁶² entries.
pub const MAX_SIZE: u64 = 1 << 62;

/// The RFC 6962 hash of a leaf: SHA-256(0x00 ‖ leaf).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    tlog::record_hash(leaf).0
}

/// Which entry's append wrote stored hash `index`, and at which offset among its hashes.
pub fn written_at(index: u64) -> (u64, usize) {
    let (level, k) = tlog::split_stored_hash_index(index);
    (((k + 1) << level) - 1, usize::from(level))
}

/// Serves stored hashes from a map; a miss is an error, never a panic.
struct Known<'a>(&'a HashMap<u64, Hash>);

impl tlog::HashReader for Known<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        indexes
            .iter()
            .map(|i| self.0.get(i).map(|h| tlog::Hash(*h)))
            .collect::<Option<Vec<_>>>()
            .ok_or(tlog::Error::IndexesNotInTree)
    }
}

/// Records which indexes an operation asks for, and answers none.
struct Asked(std::cell::RefCell<Vec<u64>>);

impl tlog::HashReader for Asked {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Err(tlog::Error::IndexesNotInTree)
    }
}

fn asked(op: impl FnOnce(&Asked) -> Result<(), tlog::Error>) -> Vec<u64> {
    let a = Asked(std::cell::RefCell::new(Vec::new()));
    let _ = op(&a);
    a.0.into_inner()
}

fn hashes(v: Vec<tlog::Hash>) -> Vec<Hash> {
    v.into_iter().map(|h| h.0).collect()
}

/// The stored hashes that sum up a tree of `size` entries (its right edge): enough to append to
/// it and to compute its root.
pub fn frontier(size: u64) -> Vec<u64> {
    if size == 0 {
        return Vec::new();
    }
    tlog::sub_tree_index(0, size, Vec::new())
}

/// Appends one leaf to a tree of `size` entries whose [`frontier`] hashes are `edge` (updated in
/// place), without storage: returns the stored hashes entry `size` adds (its leaf hash, then the
/// subtrees it completes). For streaming over a whole log, as verification does.
pub fn push(edge: &mut Vec<Hash>, size: u64, leaf: Hash) -> Vec<Hash> {
    let completes = (size + 1).trailing_zeros() as usize;
    let mut out = Vec::with_capacity(completes + 1);
    let mut h = leaf;
    out.push(h);
    for _ in 0..completes {
        // The frontier holds one subtree per set bit of `size`; the lowest `completes` of them
        // merge with the new leaf, smallest first.
        let Some(left) = edge.pop() else { break };
        h = tlog::node_hash(tlog::Hash(left), tlog::Hash(h)).0;
        out.push(h);
    }
    edge.push(h);
    out
}

/// The root of a tree from its [`frontier`] hashes, left to right.
pub fn root_of_edge(edge: &[Hash]) -> Hash {
    let mut it = edge.iter().rev();
    let Some(last) = it.next() else {
        return tlog::EMPTY_HASH.0;
    };
    it.fold(*last, |right, left| {
        tlog::node_hash(tlog::Hash(*left), tlog::Hash(right)).0
    })
}

/// The root of a tree of `size` entries, from stored hashes including its [`frontier`].
pub fn root(size: u64, stored: &HashMap<u64, Hash>) -> Result<Hash, MerkleError> {
    if size > MAX_SIZE {
        return Err(MerkleError::Range("tree_size is too large"));
    }
    tlog::tree_hash(size, &Known(stored))
        .map(|h| h.0)
        .map_err(|_| MerkleError::Missing)
}

/// The stored hashes an inclusion proof of entry `index` in a tree of `size` needs.
pub fn inclusion_needs(index: u64, size: u64) -> Result<Vec<u64>, MerkleError> {
    if index >= size || size > MAX_SIZE {
        return Err(MerkleError::Range("index must be below tree_size"));
    }
    Ok(asked(|a| tlog::prove_record(size, index, a).map(|_| ())))
}

/// The RFC 9162 inclusion proof of entry `index` in a tree of `size`, from the hashes
/// [`inclusion_needs`] named.
pub fn inclusion_proof(
    index: u64,
    size: u64,
    stored: &HashMap<u64, Hash>,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size || size > MAX_SIZE {
        return Err(MerkleError::Range("index must be below tree_size"));
    }
    tlog::prove_record(size, index, &Known(stored))
        .map(hashes)
        .map_err(|_| MerkleError::Missing)
}

/// The stored hashes a consistency proof from `first` to `second` entries needs.
pub fn consistency_needs(first: u64, second: u64) -> Result<Vec<u64>, MerkleError> {
    if first == 0 || first > second || second > MAX_SIZE {
        return Err(MerkleError::Range("need 1 <= first <= second"));
    }
    Ok(asked(|a| tlog::prove_tree(second, first, a).map(|_| ())))
}

/// The RFC 9162 consistency proof from the tree of `first` entries to that of `second`.
pub fn consistency_proof(
    first: u64,
    second: u64,
    stored: &HashMap<u64, Hash>,
) -> Result<Vec<Hash>, MerkleError> {
    if first == 0 || first > second || second > MAX_SIZE {
        return Err(MerkleError::Range("need 1 <= first <= second"));
    }
    tlog::prove_tree(second, first, &Known(stored))
        .map(hashes)
        .map_err(|_| MerkleError::Missing)
}

fn wrap(p: &[Hash]) -> Vec<tlog::Hash> {
    p.iter().map(|h| tlog::Hash(*h)).collect()
}

/// Whether `proof` shows the leaf with hash `leaf` at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    index < size
        && size <= MAX_SIZE
        && tlog::check_record(
            &wrap(proof),
            size,
            tlog::Hash(*root),
            index,
            tlog::Hash(*leaf),
        )
        .is_ok()
}

/// Whether `proof` shows the tree of `first` entries with `first_root` to be a prefix of the
/// tree of `second` entries with `second_root`.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    (1..=second).contains(&first)
        && second <= MAX_SIZE
        && tlog::check_tree(
            &wrap(proof),
            second,
            tlog::Hash(*second_root),
            first,
            tlog::Hash(*first_root),
        )
        .is_ok()
}

#[cfg(test)]
mod tests;

//! Blind indexes: keyed MACs of normalised values, for exact-match lookup without decryption.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The key for blind indexes. Independent of every encryption key: it is its own random key,
/// wrapped by the master key like a data key.
///
/// Keeps the HMAC's keyed state, built once: every MAC starts from a copy of it instead of
/// hashing the key's two pads again (half of a short MAC's work; an import computes eight MACs
/// per customer). The states are wiped when dropped (`hmac`'s `zeroize` feature).
pub struct BlindIndexKey {
    keyed: Hmac<Sha256>,
}

impl BlindIndexKey {
    /// From raw key bytes (wiped when this returns; only the keyed state is kept).
    pub fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        // INVARIANT: HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let Ok(keyed) = <Hmac<Sha256> as KeyInit>::new_from_slice(bytes.as_slice()) else {
            unreachable!("HMAC takes keys of any length")
        };
        Self { keyed }
    }

    /// The index of `value` (already normalised) for the lookup `kind` (e.g. `email`).
    /// The kind is part of the MAC input, so one value indexes differently per kind.
    ///
    /// HMAC-SHA256 truncated to 128 bits: collisions need about 2^64 entries, and callers treat
    /// a match as a candidate anyway; half the width halves the index, whose random inserts
    /// dominate bulk-import time.
    pub fn mac(&self, kind: &str, value: &str) -> [u8; 16] {
        let mut m = self.keyed.clone();
        m.update(b"steward/v1/blind-index\0");
        m.update(kind.as_bytes());
        m.update(&[0]);
        m.update(value.as_bytes());
        let full: [u8; 32] = m.finalize().into_bytes().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }
}

impl std::fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndexKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> BlindIndexKey {
        BlindIndexKey::from_bytes(Zeroizing::new([b; 32]))
    }

    proptest! {
        #[test]
        fn deterministic_and_separated(v in ".{0,40}", w in ".{0,40}") {
            let k = key(1);
            prop_assert_eq!(k.mac("email", &v), k.mac("email", &v));
            prop_assert_ne!(k.mac("email", &v), k.mac("phone", &v));
            prop_assert_ne!(k.mac("email", &v), key(2).mac("email", &v));
            if v != w {
                prop_assert_ne!(k.mac("email", &v), k.mac("email", &w));
            }
        }
    }

    #[test]
    fn the_kept_state_gives_the_same_mac_as_a_fresh_one() {
        // The value a store already holds must not move: HMAC-SHA256 of the same input.
        let raw = [7u8; 32];
        let mut fresh = <Hmac<Sha256> as KeyInit>::new_from_slice(&raw).unwrap();
        fresh.update(b"steward/v1/blind-index\0email\0a@example.com");
        let full: [u8; 32] = fresh.finalize().into_bytes().into();
        assert_eq!(key(7).mac("email", "a@example.com"), full[..16]);
    }

    #[test]
    fn kind_and_value_cannot_be_shifted() {
        let k = key(3);
        assert_ne!(k.mac("ab", "c"), k.mac("a", "bc"));
    }
}

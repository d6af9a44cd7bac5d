//! Tags on the audit entries that wait in the outbox: a write and its audit entry commit
//! together, and the entry waits there (seconds at most) for the log writer to append it to the
//! Merkle log. Until then nothing but this tag says the entry is the one Steward wrote.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Domain separation: a tag is never valid as any other MAC of the installation.
const DOMAIN: &[u8] = b"steward/v1/audit-outbox\0";

/// The key that tags pending audit entries: HMAC-SHA256, its own random key, wrapped by the
/// master key like every other installation key (keyring entry `audit_outbox`).
///
/// Keeps the HMAC's keyed state, built once (as [`crate::BlindIndexKey`] does); wiped when
/// dropped.
pub struct OutboxKey {
    keyed: Hmac<Sha256>,
}

impl OutboxKey {
    /// From raw key bytes (wiped when this returns; only the keyed state is kept).
    pub fn from_bytes(bytes: &Zeroizing<[u8; 32]>) -> Self {
        // INVARIANT: HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let Ok(keyed) = <Hmac<Sha256> as KeyInit>::new_from_slice(bytes.as_slice()) else {
            unreachable!("HMAC takes keys of any length")
        };
        Self { keyed }
    }

    fn keyed(&self, message: &[u8]) -> Hmac<Sha256> {
        let mut m = self.keyed.clone();
        m.update(DOMAIN);
        m.update(message);
        m
    }

    /// The tag of `message` (the caller's unambiguous encoding of one pending entry).
    pub fn tag(&self, message: &[u8]) -> [u8; 32] {
        self.keyed(message).finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `message`, compared in constant time.
    pub fn check(&self, message: &[u8], tag: &[u8]) -> bool {
        self.keyed(message).verify_slice(tag).is_ok()
    }
}

impl std::fmt::Debug for OutboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> OutboxKey {
        OutboxKey::from_bytes(&Zeroizing::new([b; 32]))
    }

    #[test]
    fn a_tag_checks_only_under_its_key() {
        let t = key(1).tag(b"entry");
        assert!(key(1).check(b"entry", &t));
        assert!(!key(2).check(b"entry", &t));
        assert!(!key(1).check(b"entry", &t[..31]));
        assert!(!key(1).check(b"entry", &[]));
    }

    #[test]
    fn a_tag_is_not_the_blind_index_mac_of_the_same_bytes() {
        let blind = crate::BlindIndexKey::from_bytes(Zeroizing::new([1; 32]));
        assert_ne!(blind.mac("", "entry")[..], key(1).tag(b"entry")[..16]);
    }

    proptest! {
        #[test]
        fn any_change_to_the_message_or_the_tag_is_refused(
            message in proptest::collection::vec(any::<u8>(), 0..200),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let k = key(7);
            let tag = k.tag(&message);
            prop_assert!(k.check(&message, &tag));
            let mut t = tag;
            t[at.index(32)] ^= flip;
            prop_assert!(!k.check(&message, &t));
            if !message.is_empty() {
                let mut m = message.clone();
                let i = at.index(m.len());
                m[i] ^= flip;
                prop_assert!(!k.check(&m, &tag));
            }
            let mut longer = message.clone();
            longer.push(0);
            prop_assert!(!k.check(&longer, &tag));
        }
    }
}

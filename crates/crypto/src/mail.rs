//! Keys for mail: the key that seals the links in messages (one-click unsubscribe), and the
//! DKIM key that signs every message (RFC 6376 with Ed25519, RFC 8463). Both seeds live in the
//! keyring, wrapped by the master key, so every server of an installation shares them and
//! neither is ever on disk in clear.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::aead::Cipher;

const LINK_DOMAIN: &[u8] = b"steward/v1/link\0";

/// Seals the id a link stands for into an opaque, unguessable, tamper-evident token
/// (AES-256-GCM-SIV under a key of its own): the link names no customer, and a token changed
/// in any bit, or made for another kind of link, does not open.
pub struct LinkKey(Cipher);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    /// From the 32-byte key.
    pub fn from_bytes(raw: &Zeroizing<[u8; 32]>) -> Self {
        Self(Cipher::new(raw))
    }

    fn aad(kind: &str) -> Vec<u8> {
        [LINK_DOMAIN, kind.as_bytes()].concat()
    }

    /// A URL-safe token for `id` in links of `kind` (e.g. `unsubscribe`).
    pub fn seal(&self, kind: &str, id: &[u8; 16]) -> Result<String, crate::CryptoError> {
        Ok(URL_SAFE_NO_PAD.encode(self.0.seal(&Self::aad(kind), id)?))
    }

    /// The id a token of `kind` stands for; `None` for anything else.
    pub fn open(&self, kind: &str, token: &str) -> Option<[u8; 16]> {
        // A token is 60 characters; anything much longer is not one (and is not decoded).
        if token.len() > 128 {
            return None;
        }
        let sealed = URL_SAFE_NO_PAD.decode(token).ok()?;
        self.0.open(&Self::aad(kind), &sealed).ok()?.try_into().ok()
    }
}

/// The DKIM signing key (Ed25519).
pub struct DkimKey {
    seed: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DkimKey(..)")
    }
}

impl DkimKey {
    /// From the 32-byte seed.
    pub fn from_seed(seed: Zeroizing<[u8; 32]>) -> Self {
        Self { seed }
    }

    /// The seed in base64, as the signer (lettre) takes it.
    pub fn seed_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.seed.as_slice()))
    }

    /// The public key in base64, as DNS publishes it (`p=`).
    pub fn public_base64(&self) -> String {
        let key = ed25519_dalek::SigningKey::from_bytes(&self.seed);
        STANDARD.encode(key.verifying_key().to_bytes())
    }

    /// The DNS TXT record that publishes the public key for `selector` and `domain`.
    pub fn dns_record(&self, selector: &str, domain: &str) -> String {
        format!(
            "{selector}._domainkey.{domain} TXT \"v=DKIM1; k=ed25519; p={}\"",
            self.public_base64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LinkKey {
        LinkKey::from_bytes(&Zeroizing::new([7u8; 32]))
    }

    #[test]
    fn a_link_opens_to_its_id_and_only_for_its_kind() {
        let id = [42u8; 16];
        let t = key().seal("unsubscribe", &id).unwrap();
        assert_eq!(key().open("unsubscribe", &t), Some(id));
        assert_eq!(key().open("reply", &t), None);
        let other = LinkKey::from_bytes(&Zeroizing::new([8u8; 32]));
        assert_eq!(other.open("unsubscribe", &t), None);
        // Two links to the same id differ (random nonce): a link says nothing of another.
        assert_ne!(t, key().seal("unsubscribe", &id).unwrap());
    }

    proptest::proptest! {
        #[test]
        fn a_tampered_link_never_opens(flip in 0usize..60, bit in 0u8..6) {
            let t = key().seal("unsubscribe", &[1u8; 16]).unwrap();
            let mut b = t.clone().into_bytes();
            let i = flip % b.len();
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let at = alphabet.iter().position(|c| *c == b[i]).unwrap();
            b[i] = alphabet[(at ^ (1 << bit)) % 64];
            let changed = String::from_utf8(b).unwrap();
            proptest::prop_assume!(changed != t);
            // Either it no longer decodes, or it decodes to different bytes that do not open;
            // a change in the last character's unused bits may decode to the same bytes.
            let same_bytes = URL_SAFE_NO_PAD.decode(&changed).ok() == URL_SAFE_NO_PAD.decode(&t).ok();
            proptest::prop_assert!(same_bytes || key().open("unsubscribe", &changed).is_none());
        }
    }

    #[test]
    fn the_dkim_record_publishes_the_public_key() {
        let k = DkimKey::from_seed(Zeroizing::new([3u8; 32]));
        let r = k.dns_record("steward", "example.com");
        assert!(r.starts_with("steward._domainkey.example.com TXT \"v=DKIM1; k=ed25519; p="));
        assert_eq!(STANDARD.decode(k.public_base64()).unwrap().len(), 32);
        assert!(!r.contains(&*k.seed_base64()));
    }
}

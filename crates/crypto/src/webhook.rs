//! Signing of change notifications to recipients, as the Standard Webhooks specification says
//! for its asymmetric scheme `v1a`: Ed25519 over `{webhook-id}.{webhook-timestamp}.{body}`, the
//! signature base64 in `webhook-signature: v1a,<sig>`, the public key published as `whpk_<key>`.
//!
//! Hand-written rather than a webhook crate: the maintained ones implement only the symmetric
//! `v1` (a secret shared with every recipient), and `v1a` is one Ed25519 signature over a fixed
//! join, done with the same audited Ed25519 as the rest of this crate.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::CryptoError;

/// The key that signs notifications to recipients. Its seed lives in the keyring, wrapped by the
/// master key; recipients hold only its public half.
pub struct WebhookSigner {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSigner({})", self.kid)
    }
}

/// What is signed: `{id}.{timestamp}.{body}`.
fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    content
}

impl WebhookSigner {
    /// From the 32-byte seed.
    pub fn from_seed(seed: &Zeroizing<[u8; 32]>) -> Self {
        let key = SigningKey::from_bytes(seed);
        let kid = Sha256::digest(key.verifying_key().to_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { key, kid }
    }

    /// The key id (first 8 bytes of the public key's SHA-256, hex).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as the specification writes it: `whpk_` and its base64.
    pub fn public_key(&self) -> String {
        format!(
            "whpk_{}",
            STANDARD.encode(self.key.verifying_key().to_bytes())
        )
    }

    /// The `webhook-signature` header value for a message: `v1a,` and the base64 signature.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let sig: Signature = self.key.sign(&signed_content(id, timestamp, body));
        format!("v1a,{}", STANDARD.encode(sig.to_bytes()))
    }
}

/// Checks a `webhook-signature` header (space-separated signatures, any `v1a` one may match)
/// against a `whpk_` public key: what a recipient does.
pub fn verify_webhook(
    public_key: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<(), CryptoError> {
    let raw: [u8; 32] = public_key
        .strip_prefix("whpk_")
        .and_then(|k| STANDARD.decode(k).ok())
        .and_then(|k| k.try_into().ok())
        .ok_or(CryptoError::Integrity)?;
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| CryptoError::Integrity)?;
    let content = signed_content(id, timestamp, body);
    let ok = header.split(' ').any(|part| {
        part.strip_prefix("v1a,")
            .and_then(|s| STANDARD.decode(s).ok())
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .is_some_and(|s| key.verify(&content, &Signature::from_bytes(&s)).is_ok())
    });
    if ok {
        Ok(())
    } else {
        Err(CryptoError::Integrity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let signer = WebhookSigner::from_seed(&Zeroizing::new([7u8; 32]));
        let key = signer.public_key();
        assert!(key.starts_with("whpk_"));
        let body = br#"{"type":"customer.erased"}"#;
        let sig = signer.sign("msg_1", 1_700_000_000, body);
        assert!(sig.starts_with("v1a,"));
        assert!(verify_webhook(&key, "msg_1", 1_700_000_000, body, &sig).is_ok());
        // Rotation: several signatures in one header, one of them good.
        let both = format!("v1a,AAAA {sig}");
        assert!(verify_webhook(&key, "msg_1", 1_700_000_000, body, &both).is_ok());
        for (id, ts, b) in [
            ("msg_2", 1_700_000_000, &body[..]),
            ("msg_1", 1_700_000_001, &body[..]),
            (
                "msg_1",
                1_700_000_000,
                &br#"{"type":"customer.restricted"}"#[..],
            ),
        ] {
            assert!(verify_webhook(&key, id, ts, b, &sig).is_err());
        }
        let other = WebhookSigner::from_seed(&Zeroizing::new([8u8; 32]));
        assert!(verify_webhook(&other.public_key(), "msg_1", 1_700_000_000, body, &sig).is_err());
        assert!(verify_webhook(&key, "msg_1", 1_700_000_000, body, "v1,abc").is_err());
        assert!(!format!("{signer:?}").contains(&key[5..]));
    }
}

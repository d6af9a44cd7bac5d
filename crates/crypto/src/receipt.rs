//! Signing of consent receipts: compact JWS (RFC 7515) with `alg` EdDSA (RFC 8037), Ed25519.
//!
//! Hand-written rather than a JOSE crate: it is one fixed header, a base64url join and an
//! Ed25519 signature, and keeping it here keeps every key operation in this crate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::CryptoError;

/// The key that signs consent receipts. Its seed lives in the keyring, wrapped by the master key.
pub struct ReceiptSigner {
    key: SigningKey,
    kid: String,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptSigner({})", self.kid)
    }
}

/// The key id of a public key: the first 8 bytes of its SHA-256, hex.
fn kid_of(public: &[u8; 32]) -> String {
    Sha256::digest(public)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ReceiptSigner {
    /// From the 32-byte seed.
    pub fn from_seed(seed: &Zeroizing<[u8; 32]>) -> Self {
        let key = SigningKey::from_bytes(seed);
        let kid = kid_of(&key.verifying_key().to_bytes());
        Self { key, kid }
    }

    /// The key id, as in the JWK and the JWS header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key bytes (the JWK's `x`, before base64url).
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs `payload` (the claims, as JSON) into a compact JWS.
    pub fn sign_compact(&self, payload: &[u8]) -> String {
        let header = format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"JWT"}}"#, self.kid);
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig: Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }
}

/// Verifies a compact JWS signed with EdDSA by `public_key`; returns the payload bytes. This is
/// what a customer's or auditor's tool does offline with the published JWK.
pub fn verify_compact(jws: &str, public_key: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
    let mut parts = jws.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CryptoError::Integrity);
    };
    let header = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| CryptoError::Integrity)?;
    if !String::from_utf8_lossy(&header).contains(r#""alg":"EdDSA""#) {
        return Err(CryptoError::Integrity);
    }
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| CryptoError::Integrity)?
        .try_into()
        .map_err(|_| CryptoError::Integrity)?;
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| CryptoError::Integrity)?;
    key.verify(format!("{h}.{p}").as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| CryptoError::Integrity)?;
    URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| CryptoError::Integrity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sign_verify_round_trip(seed in any::<[u8; 32]>(), payload in proptest::collection::vec(any::<u8>(), 0..300), flip in any::<usize>()) {
            let s = ReceiptSigner::from_seed(&Zeroizing::new(seed));
            let jws = s.sign_compact(&payload);
            prop_assert_eq!(verify_compact(&jws, &s.public_key()).unwrap(), payload);
            // Any changed character of the token fails verification.
            let mut bytes = jws.into_bytes();
            let i = flip % bytes.len();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(verify_compact(&tampered, &s.public_key()).is_err());
        }
    }

    #[test]
    fn another_key_fails() {
        let a = ReceiptSigner::from_seed(&Zeroizing::new([1; 32]));
        let b = ReceiptSigner::from_seed(&Zeroizing::new([2; 32]));
        assert!(verify_compact(&a.sign_compact(b"{}"), &b.public_key()).is_err());
        assert_eq!(a.kid().len(), 16);
    }
}

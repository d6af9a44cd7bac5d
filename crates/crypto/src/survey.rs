//! Anonymous survey tokens: RFC 9474 RSA blind signatures (RSABSSA-SHA384-PSS-Randomized, the
//! variant the RFC recommends), through `blind-rsa-signatures`. The customer's browser blinds a
//! random message, Steward signs the blinded value without seeing the message, and the customer
//! submits the message, its randomizer and the unblinded signature with their answers: Steward
//! can check the signature is its own but cannot tell whom it signed it for.

use blind_rsa_signatures::reexports::rand::rngs::OsRng;
use blind_rsa_signatures::reexports::rsa::PublicKeyParts;
use blind_rsa_signatures::{
    BlindSignature, KeyPair, MessageRandomizer, Options, PublicKey, Secret, SecretKey, Signature,
};
use zeroize::Zeroizing;

use crate::CryptoError;

/// The modulus size: RFC 9474 asks for at least 2048 bits.
const MODULUS_BITS: usize = 2048;

/// RSABSSA-SHA384-PSS-Randomized: SHA-384, a 48-byte salt, a 32-byte message randomizer.
fn options() -> Options {
    Options::default()
}

/// A survey's signing key. Its secret half is never logged and leaves only sealed.
pub struct SurveyKey(SecretKey);

impl std::fmt::Debug for SurveyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SurveyKey(..)")
    }
}

impl SurveyKey {
    /// A fresh key (a second or so of prime search in an optimised build).
    pub fn generate() -> Result<Self, CryptoError> {
        let pair = KeyPair::generate(&mut OsRng, MODULUS_BITS).map_err(|_| CryptoError::Random)?;
        Ok(Self(pair.sk))
    }

    /// The secret key as DER, to be sealed before it is stored.
    pub fn to_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.0
            .to_der()
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Integrity)
    }

    /// The key from its DER.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        SecretKey::from_der(der)
            .map(Self)
            .map_err(|_| CryptoError::Integrity)
    }

    /// The public key as SubjectPublicKeyInfo DER (what `verify_survey_token` takes).
    pub fn public_spki(&self) -> Result<Vec<u8>, CryptoError> {
        self.0
            .public_key()
            .and_then(|pk| pk.to_spki(Some(&options())))
            .map_err(|_| CryptoError::Integrity)
    }

    /// Signs a blinded message (as many bytes as the modulus, below it); `None` for anything
    /// else. The signature is checked before it is returned (a fault never leaks the key).
    pub fn blind_sign(&self, blinded: &[u8]) -> Option<Vec<u8>> {
        self.0
            .blind_sign(&mut OsRng, blinded, &options())
            .ok()
            .map(|s| s.0)
    }
}

/// The modulus and public exponent (big-endian) of a survey's public key (SPKI DER), for a
/// browser's script; `None` if it is not one.
pub fn survey_public_components(public_spki: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let pk = PublicKey::from_spki(public_spki, Some(&options())).ok()?;
    Some((pk.0.n().to_bytes_be(), pk.0.e().to_bytes_be()))
}

/// Whether `signature` is the survey key's signature (`public_spki`) of `message` under the
/// 32-byte `randomizer`.
pub fn verify_survey_token(
    public_spki: &[u8],
    randomizer: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let (Ok(pk), Ok(r)) = (
        PublicKey::from_spki(public_spki, Some(&options())),
        <[u8; 32]>::try_from(randomizer),
    ) else {
        return false;
    };
    pk.verify(
        &Signature(signature.to_vec()),
        Some(MessageRandomizer(r)),
        message,
        &options(),
    )
    .is_ok()
}

/// What a client does (a browser's script, or a test): blinds a message for a survey's key,
/// then finalises the blind signature the server returns.
pub struct ClientBlinding {
    pk: PublicKey,
    message: Vec<u8>,
    blinded: Vec<u8>,
    secret: Vec<u8>,
    randomizer: MessageRandomizer,
}

impl ClientBlinding {
    /// Blinds `message` for the key `public_spki`.
    pub fn new(public_spki: &[u8], message: &[u8]) -> Option<Self> {
        let pk = PublicKey::from_spki(public_spki, Some(&options())).ok()?;
        let b = pk.blind(&mut OsRng, message, true, &options()).ok()?;
        Some(Self {
            pk,
            message: message.to_vec(),
            blinded: b.blind_msg.0,
            secret: b.secret.0,
            randomizer: b.msg_randomizer?,
        })
    }

    /// The blinded message, for the signer.
    pub fn blinded(&self) -> &[u8] {
        &self.blinded
    }

    /// The token from the signer's blind signature, checked: (randomizer, signature).
    pub fn finalize(&self, blind_signature: &[u8]) -> Option<([u8; 32], Vec<u8>)> {
        let sig = self
            .pk
            .finalize(
                &BlindSignature(blind_signature.to_vec()),
                &Secret(self.secret.clone()),
                Some(self.randomizer),
                &self.message,
                &options(),
            )
            .ok()?;
        Some((self.randomizer.0, sig.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blind_token_verifies_and_nothing_else_does() {
        let key = SurveyKey::generate().unwrap();
        let spki = key.public_spki().unwrap();
        let client = ClientBlinding::new(&spki, b"a random message").unwrap();
        let blind_sig = key.blind_sign(client.blinded()).unwrap();
        let (r, sig) = client.finalize(&blind_sig).unwrap();
        assert!(verify_survey_token(&spki, &r, b"a random message", &sig));
        // The signer saw only the blinded value and signed it: neither is the token.
        assert_ne!(client.blinded(), &sig[..]);
        assert_ne!(blind_sig, sig);
        assert!(
            client.finalize(&[7u8; 256]).is_none(),
            "a wrong signature is caught"
        );
        assert!(!verify_survey_token(&spki, &r, b"another message", &sig));
        let mut other = r;
        other[0] ^= 1;
        assert!(!verify_survey_token(
            &spki,
            &other,
            b"a random message",
            &sig
        ));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!verify_survey_token(&spki, &r, b"a random message", &bad));
        // Another survey's key does not accept it.
        let stranger = SurveyKey::generate().unwrap().public_spki().unwrap();
        assert!(!verify_survey_token(
            &stranger,
            &r,
            b"a random message",
            &sig
        ));
        // The key survives its DER; garbage is refused.
        let again = SurveyKey::from_der(&key.to_der().unwrap()).unwrap();
        assert_eq!(again.public_spki().unwrap(), spki);
        let (n, e) = survey_public_components(&spki).unwrap();
        assert_eq!(
            (n.len(), e),
            (256, vec![1, 0, 1]),
            "2048 bits, exponent 65537"
        );
        assert!(key.blind_sign(&[0u8; 3]).is_none());
    }
}

//! API tokens: `stw_<token id>_<secret>`. The id finds the row; the secret is checked against an
//! Argon2id hash. Argon2 is deliberately slow, so after one successful check the server keeps a
//! SHA-256 digest of the token in memory and compares against it in constant time.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::CryptoError;

const PREFIX: &str = "stw_";

/// A freshly issued token: the full secret string (shown once) and what is stored.
pub struct IssuedToken {
    /// The token id.
    pub id: Uuid,
    /// The token to hand to the client, once.
    pub token: Zeroizing<String>,
    /// The Argon2id PHC hash of the secret part, to store.
    pub secret_hash: String,
}

/// Issues a token with the given id.
pub fn issue_token(id: Uuid) -> Result<IssuedToken, CryptoError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    crate::random_bytes(secret.as_mut_slice())?;
    let secret_b64 = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_slice()));
    let token = Zeroizing::new(format!("{PREFIX}{}_{}", id.simple(), secret_b64.as_str()));
    Ok(IssuedToken {
        id,
        secret_hash: hash_token_secret(secret_b64.as_bytes())?,
        token,
    })
}

/// Hashes a token secret with Argon2id.
pub fn hash_token_secret(secret: &[u8]) -> Result<String, CryptoError> {
    Argon2::default()
        .hash_password(secret)
        .map(|h| h.to_string())
        .map_err(|_| CryptoError::Hash)
}

/// Checks a token secret against its stored hash.
pub fn verify_token_secret(secret: &[u8], stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| Argon2::default().verify_password(secret, &h).is_ok())
}

/// Splits a presented token into its id and secret; `None` if it is not shaped like one.
pub fn parse_token(token: &str) -> Option<(Uuid, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if secret.len() != 43 {
        return None;
    }
    Some((Uuid::try_parse(id).ok()?, secret))
}

/// A digest of a whole token, for the in-memory cache of verified tokens.
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// Digests a presented token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl IssuedToken {
    /// Issues a token with a fresh id (the caller supplies a UUIDv7).
    pub fn new(id: Uuid) -> Result<Self, CryptoError> {
        issue_token(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_parse_verify() {
        let id = Uuid::now_v7();
        let t = IssuedToken::new(id).unwrap();
        let (pid, secret) = parse_token(&t.token).unwrap();
        assert_eq!(pid, id);
        assert!(verify_token_secret(secret.as_bytes(), &t.secret_hash));
        assert!(!verify_token_secret(b"wrong", &t.secret_hash));
        assert!(!t.secret_hash.contains(secret));
        assert!(parse_token("Bearer x").is_none());
        assert!(parse_token(&t.token[..t.token.len() - 1]).is_none());
        assert!(TokenDigest::of(&t.token).matches(&TokenDigest::of(&t.token)));
        assert!(!TokenDigest::of(&t.token).matches(&TokenDigest::of("other")));
    }
}

//! Steward's cryptography, kept in one small place so it can be audited as a whole.
//!
//! - A 256-bit **master key** wraps (encrypts) one random **data key** per customer
//!   (envelope encryption). The master key never touches the data itself.
//! - Every personal value is **sealed** with AES-256-GCM-SIV under its customer's data key,
//!   with associated data that binds it to the table, column, customer and record, so a
//!   ciphertext moved anywhere else fails to open instead of yielding wrong data.
//! - Exact-match lookups go through **blind indexes**: HMAC-SHA256 under a key of its own,
//!   independent of every encryption key.
//! - Notifications to recipients are **signed** with Ed25519 (Standard Webhooks `v1a`).
//! - API **tokens** are random, shown once, and stored only as Argon2id hashes.
//!
//! INVARIANT: no function here logs, formats or returns key material except through the
//! zeroizing types below; `Debug` on every key type prints only its id.

mod aead;
mod blind;
mod error;
mod keyfile;
mod keys;
mod mail;
pub mod merkle;
mod note;
mod outbox;
mod receipt;
mod survey;
mod token;
mod webhook;

pub use aead::{FieldAad, SEALED_OVERHEAD};
pub use blind::BlindIndexKey;
pub use error::CryptoError;
pub use keys::{DataKey, Keyring, MasterKey, MasterKeyId, WrappedKey};
pub use mail::{DkimKey, LinkKey};
pub use note::{Checkpoint, NoteError, NoteSigner, NoteVerifier};
pub use outbox::OutboxKey;
pub use receipt::{ReceiptSigner, verify_compact};
pub use survey::{ClientBlinding, SurveyKey, survey_public_components, verify_survey_token};
pub use token::{IssuedToken, TokenDigest, hash_token_secret, parse_token, verify_token_secret};
pub use webhook::{WebhookSigner, verify_webhook};

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

/// `sha256:` and the hex SHA-256 of `bytes`: how the audit log names a policy it loaded.
pub fn fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

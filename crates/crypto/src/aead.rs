//! Sealing and opening of field values with XChaCha20-Poly1305.
//!
//! Format of a sealed value: `version (1 byte) || nonce (24 bytes) || ciphertext || tag (16 bytes)`.
//! The 192-bit random nonce makes collisions negligible without any nonce state to keep.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use uuid::Uuid;

use crate::CryptoError;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;
/// Bytes a sealed value adds to its plaintext.
pub const SEALED_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Where a sealed value belongs: it opens only in exactly this place.
#[derive(Debug, Clone, Copy)]
pub struct FieldAad<'a> {
    /// The table, e.g. `customers`.
    pub table: &'a str,
    /// The column (field), e.g. `email`.
    pub column: &'a str,
    /// The customer whose data key seals it.
    pub customer: Uuid,
    /// The record the value belongs to (the customer id again for profile fields).
    pub record: Uuid,
}

impl FieldAad<'_> {
    fn encode(&self, domain: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(domain.len() + self.table.len() + self.column.len() + 36);
        v.extend_from_slice(domain);
        v.extend_from_slice(self.table.as_bytes());
        v.push(0);
        v.extend_from_slice(self.column.as_bytes());
        v.push(0);
        v.extend_from_slice(self.customer.as_bytes());
        v.extend_from_slice(self.record.as_bytes());
        v
    }
}

/// Seals `plaintext` under `key` with `aad`.
pub(crate) fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(plaintext.len() + SEALED_OVERHEAD);
    out.push(VERSION);
    let mut nonce = [0u8; NONCE_LEN];
    crate::random_bytes(&mut nonce)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let cipher = XChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_inout_detached(&XNonce::from(nonce), aad, (&mut out[HEADER_LEN..]).into())
        // Only fails for messages over 256 GiB; treat as an integrity failure rather than panic.
        .map_err(|_| CryptoError::Integrity)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a value sealed by [`seal`] with the same `key` and `aad`.
pub(crate) fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < SEALED_OVERHEAD || sealed[0] != VERSION {
        return Err(CryptoError::Integrity);
    }
    let (header, rest) = sealed.split_at(HEADER_LEN);
    let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce: [u8; NONCE_LEN] = header[1..].try_into().map_err(|_| CryptoError::Integrity)?;
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| CryptoError::Integrity)?;
    let mut buf = ct.to_vec();
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_inout_detached(
            &XNonce::from(nonce),
            aad,
            buf.as_mut_slice().into(),
            &tag.into(),
        )
        .map_err(|_| CryptoError::Integrity)?;
    Ok(buf)
}

pub(crate) const FIELD_DOMAIN: &[u8] = b"steward/v1/field\0";

impl FieldAad<'_> {
    /// The associated-data bytes for a field value.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.encode(FIELD_DOMAIN)
    }
}

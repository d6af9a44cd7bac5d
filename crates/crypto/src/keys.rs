//! Master keys, data keys and key wrapping (envelope encryption).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::aead::{Cipher, FieldAad};
use crate::{BlindIndexKey, CryptoError};

const WRAP_DOMAIN: &[u8] = b"steward/v1/wrap\0";

/// The public id of a master key: derived from it one-way, safe to store beside wrapped keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MasterKeyId(pub String);

impl std::fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 256-bit master key. Only its derived key-encryption key is used, and only to wrap keys.
pub struct MasterKey {
    id: MasterKeyId,
    kek: Cipher,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

fn hkdf32(ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // INVARIANT: 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
    if Hkdf::<Sha256>::new(Some(b"steward-master-key"), ikm)
        .expand(info, out.as_mut_slice())
        .is_err()
    {
        unreachable!("32-byte HKDF output is always valid");
    }
    out
}

impl MasterKey {
    /// From the raw 32 bytes.
    pub fn from_bytes(raw: &Zeroizing<[u8; 32]>) -> Self {
        let kek = hkdf32(raw.as_slice(), b"steward/v1/kek");
        let id_bytes = hkdf32(raw.as_slice(), b"steward/v1/key-id");
        let id = MasterKeyId(format!("mk_{}", hex(&id_bytes[..8])));
        Self {
            id,
            kek: Cipher::new(&kek),
        }
    }

    /// A fresh random master key and its file encoding.
    pub fn generate() -> Result<(Self, Zeroizing<String>), CryptoError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        crate::random_bytes(raw.as_mut_slice())?;
        let encoded = Zeroizing::new(format!("{}\n", STANDARD.encode(raw.as_slice())));
        Ok((Self::from_bytes(&raw), encoded))
    }

    /// This key's public id.
    pub fn id(&self) -> &MasterKeyId {
        &self.id
    }

    /// Reads a key file (base64 of 32 bytes). Returns the key and whether the file's mode lets
    /// others than its owner read it, which the caller should warn about.
    pub fn load(path: &Path) -> Result<(Self, bool), CryptoError> {
        let (raw, open) = crate::keyfile::read(path)?;
        Ok((Self::from_bytes(&raw), open))
    }

    /// Generates a key and writes it to `path` (mode 0600, never overwriting), durably.
    pub fn create(path: &Path) -> Result<Self, CryptoError> {
        Ok(Self::from_bytes(&crate::keyfile::create(path)?))
    }

    /// Loads the key at `path`, or creates one there if there is none. The flags: a key was
    /// created (the caller must tell the operator to back it up); the file is open to others.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool, bool), CryptoError> {
        let (raw, created, open) = crate::keyfile::load_or_create(path)?;
        Ok((Self::from_bytes(&raw), created, open))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key wrapped by a master key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// Which master key wrapped it.
    pub master_key_id: String,
    /// The sealed key bytes.
    pub blob: Vec<u8>,
}

const LINK_LABEL: &[u8] = b"keyring\0link";
const DKIM_LABEL: &[u8] = b"keyring\0dkim";
const WEBHOOK_LABEL: &[u8] = b"keyring\0webhook_signing";
const OUTBOX_LABEL: &[u8] = b"keyring\0audit_outbox";

/// The master keys this process holds: the current one wraps, any of them unwraps. More than
/// one is loaded only while a rotation is under way.
#[derive(Debug)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring with one master key.
    pub fn new(current: MasterKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a key that may still have wrapped some stored keys.
    pub fn with_previous(mut self, key: MasterKey) -> Self {
        if key.id != self.current.id {
            self.previous.push(key);
        }
        self
    }

    /// The id of the key that wraps new keys.
    pub fn current_id(&self) -> &MasterKeyId {
        &self.current.id
    }

    fn wrap_aad(label: &[u8]) -> Vec<u8> {
        [WRAP_DOMAIN, label].concat()
    }

    /// Wraps `key` under the current master key, bound to `label` (e.g. the customer id).
    pub fn wrap(&self, key: &[u8; 32], label: &[u8]) -> Result<WrappedKey, CryptoError> {
        Ok(WrappedKey {
            master_key_id: self.current.id.0.clone(),
            blob: self.current.kek.seal(&Self::wrap_aad(label), key)?,
        })
    }

    /// Unwraps a key wrapped under any loaded master key with the same `label`.
    pub fn unwrap(
        &self,
        wrapped: &WrappedKey,
        label: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let mk = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id.0 == wrapped.master_key_id)
            .ok_or_else(|| CryptoError::UnknownMasterKey(wrapped.master_key_id.clone()))?;
        let raw = Zeroizing::new(mk.kek.open(&Self::wrap_aad(label), &wrapped.blob)?);
        let key: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Integrity)?;
        Ok(Zeroizing::new(key))
    }

    /// Re-wraps a stored key under the current master key (key rotation).
    pub fn rewrap(&self, wrapped: &WrappedKey, label: &[u8]) -> Result<WrappedKey, CryptoError> {
        let key = self.unwrap(wrapped, label)?;
        self.wrap(&key, label)
    }

    /// Unwraps the blind-index key.
    pub fn unwrap_blind_index_key(
        &self,
        wrapped: &WrappedKey,
    ) -> Result<BlindIndexKey, CryptoError> {
        self.unwrap(wrapped, b"keyring\0blind_index")
            .map(BlindIndexKey::from_bytes)
    }

    /// Unwraps the consent-receipt signing key.
    pub fn unwrap_receipt_signer(
        &self,
        wrapped: &WrappedKey,
    ) -> Result<crate::ReceiptSigner, CryptoError> {
        self.unwrap(wrapped, b"keyring\0receipt_signing")
            .map(|seed| crate::ReceiptSigner::from_seed(&seed))
    }

    /// A new random consent-receipt signing seed, wrapped for storage.
    pub fn new_receipt_signer(&self) -> Result<WrappedKey, CryptoError> {
        self.wrap(&DataKey::generate()?.raw, b"keyring\0receipt_signing")
    }

    /// Unwraps the key that seals links in messages.
    pub fn unwrap_link_key(&self, wrapped: &WrappedKey) -> Result<crate::LinkKey, CryptoError> {
        self.unwrap(wrapped, LINK_LABEL)
            .map(|k| crate::LinkKey::from_bytes(&k))
    }

    /// A new random link key, wrapped for storage.
    pub fn new_link_key(&self) -> Result<WrappedKey, CryptoError> {
        self.wrap(&DataKey::generate()?.raw, LINK_LABEL)
    }

    /// Unwraps the DKIM signing key.
    pub fn unwrap_dkim_key(&self, wrapped: &WrappedKey) -> Result<crate::DkimKey, CryptoError> {
        self.unwrap(wrapped, DKIM_LABEL)
            .map(crate::DkimKey::from_seed)
    }

    /// A new random DKIM seed, wrapped for storage.
    pub fn new_dkim_key(&self) -> Result<WrappedKey, CryptoError> {
        self.wrap(&DataKey::generate()?.raw, DKIM_LABEL)
    }

    /// Unwraps the key that signs notifications to recipients.
    pub fn unwrap_webhook_signer(
        &self,
        wrapped: &WrappedKey,
    ) -> Result<crate::WebhookSigner, CryptoError> {
        self.unwrap(wrapped, WEBHOOK_LABEL)
            .map(|seed| crate::WebhookSigner::from_seed(&seed))
    }

    /// A new random notification-signing seed, wrapped for storage.
    pub fn new_webhook_signer(&self) -> Result<WrappedKey, CryptoError> {
        self.wrap(&DataKey::generate()?.raw, WEBHOOK_LABEL)
    }

    /// Unwraps the key that tags audit entries pending in the outbox.
    pub fn unwrap_outbox_key(&self, wrapped: &WrappedKey) -> Result<crate::OutboxKey, CryptoError> {
        self.unwrap(wrapped, OUTBOX_LABEL)
            .map(|k| crate::OutboxKey::from_bytes(&k))
    }

    /// A new random outbox key, wrapped for storage.
    pub fn new_outbox_key(&self) -> Result<WrappedKey, CryptoError> {
        self.wrap(&DataKey::generate()?.raw, OUTBOX_LABEL)
    }

    /// A new random blind-index key, wrapped for storage.
    pub fn new_blind_index_key(&self) -> Result<WrappedKey, CryptoError> {
        self.wrap(&DataKey::generate()?.raw, b"keyring\0blind_index")
    }
}

/// A customer's data key: seals and opens that customer's field values. Keeps its key schedule,
/// so the several fields of one record cost one key expansion.
pub struct DataKey {
    raw: Zeroizing<[u8; 32]>,
    cipher: Cipher,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; 32]);
        crate::random_bytes(k.as_mut_slice())?;
        Ok(Self::from_bytes(k))
    }

    /// From unwrapped key bytes.
    pub fn from_bytes(raw: Zeroizing<[u8; 32]>) -> Self {
        let cipher = Cipher::new(&raw);
        Self { raw, cipher }
    }

    /// Wraps this key for `owner` (a customer or other key holder id).
    pub fn wrap(&self, keyring: &Keyring, owner: &[u8]) -> Result<WrappedKey, CryptoError> {
        keyring.wrap(&self.raw, owner)
    }

    /// Unwraps the data key of `owner`.
    pub fn unwrap(
        keyring: &Keyring,
        wrapped: &WrappedKey,
        owner: &[u8],
    ) -> Result<Self, CryptoError> {
        keyring.unwrap(wrapped, owner).map(Self::from_bytes)
    }

    /// Seals a field value.
    pub fn seal(&self, aad: &FieldAad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.cipher.seal(&aad.bytes(), plaintext)
    }

    /// Opens a field value; fails with [`CryptoError::Integrity`] if it was altered or moved.
    pub fn open(&self, aad: &FieldAad<'_>, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.cipher.open(&aad.bytes(), sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn aad<'a>(column: &'a str, customer: Uuid, record: Uuid) -> FieldAad<'a> {
        FieldAad {
            table: "customers",
            column,
            customer,
            record,
        }
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(pt in proptest::collection::vec(any::<u8>(), 0..2048), c in any::<u128>(), r in any::<u128>()) {
            let dk = DataKey::generate().unwrap();
            let (c, r) = (Uuid::from_u128(c), Uuid::from_u128(r));
            let sealed = dk.seal(&aad("email", c, r), &pt).unwrap();
            prop_assert_eq!(sealed.len(), pt.len() + crate::SEALED_OVERHEAD);
            prop_assert_eq!(dk.open(&aad("email", c, r), &sealed).unwrap(), pt);
        }

        #[test]
        fn any_bit_flip_is_detected(pt in proptest::collection::vec(any::<u8>(), 1..256), pos in any::<usize>(), bit in 0u8..8) {
            let dk = DataKey::generate().unwrap();
            let (c, r) = (Uuid::from_u128(1), Uuid::from_u128(2));
            let mut sealed = dk.seal(&aad("name", c, r), &pt).unwrap();
            let i = pos % sealed.len();
            sealed[i] ^= 1 << bit;
            prop_assert!(matches!(dk.open(&aad("name", c, r), &sealed), Err(CryptoError::Integrity)));
        }

        #[test]
        fn wrap_unwrap_round_trip(owner in proptest::collection::vec(any::<u8>(), 0..64)) {
            let (mk, _) = MasterKey::generate().unwrap();
            let ring = Keyring::new(mk);
            let dk = DataKey::generate().unwrap();
            let w = dk.wrap(&ring, &owner).unwrap();
            let back = DataKey::unwrap(&ring, &w, &owner).unwrap();
            prop_assert_eq!(back.raw.as_slice(), dk.raw.as_slice());
        }
    }

    #[test]
    fn moved_ciphertext_fails() {
        let dk = DataKey::generate().unwrap();
        let other = DataKey::generate().unwrap();
        let (c1, c2, r) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let sealed = dk.seal(&aad("email", c1, r), b"jane@example.com").unwrap();
        assert!(matches!(
            dk.open(&aad("phone", c1, r), &sealed),
            Err(CryptoError::Integrity)
        ));
        assert!(matches!(
            dk.open(&aad("email", c2, r), &sealed),
            Err(CryptoError::Integrity)
        ));
        assert!(matches!(
            dk.open(&aad("email", c1, c2), &sealed),
            Err(CryptoError::Integrity)
        ));
        assert!(matches!(
            other.open(&aad("email", c1, r), &sealed),
            Err(CryptoError::Integrity)
        ));
        assert!(matches!(
            dk.open(&aad("email", c1, r), &sealed[..10]),
            Err(CryptoError::Integrity)
        ));
    }

    #[test]
    fn wrapped_key_is_bound_to_its_owner_and_master() {
        let ring = Keyring::new(MasterKey::generate().unwrap().0);
        let w = DataKey::generate().unwrap().wrap(&ring, b"alice").unwrap();
        assert!(matches!(
            DataKey::unwrap(&ring, &w, b"bob"),
            Err(CryptoError::Integrity)
        ));
        let other = Keyring::new(MasterKey::generate().unwrap().0);
        assert!(matches!(
            DataKey::unwrap(&other, &w, b"alice"),
            Err(CryptoError::UnknownMasterKey(_))
        ));
    }

    #[test]
    fn key_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let created = MasterKey::create(&p).unwrap();
        assert!(
            MasterKey::create(&p).is_err(),
            "never overwrites a key file"
        );
        let (loaded, too_open) = MasterKey::load(&p).unwrap();
        assert_eq!(loaded.id(), created.id());
        assert!(!too_open, "created with mode 0600");
        let (again, created_now, _) = MasterKey::load_or_create(&p).unwrap();
        assert!(!created_now);
        assert_eq!(again.id(), created.id());
        std::fs::write(dir.path().join("bad"), "not-a-key").unwrap();
        assert!(matches!(
            MasterKey::load(&dir.path().join("bad")),
            Err(CryptoError::KeyFile { .. })
        ));
    }

    #[test]
    fn key_file_round_trip_and_rewrap() {
        let dir = tempfile::tempdir().unwrap();
        let (p_old, p_new) = (dir.path().join("old"), dir.path().join("new"));
        let old = MasterKey::create(&p_old).unwrap();
        let dk = DataKey::generate().unwrap();
        let w = dk.wrap(&Keyring::new(old), b"c").unwrap();
        let ring = Keyring::new(MasterKey::create(&p_new).unwrap())
            .with_previous(MasterKey::load(&p_old).unwrap().0);
        let w2 = ring.rewrap(&w, b"c").unwrap();
        assert_eq!(&w2.master_key_id, &ring.current_id().0);
        let only_new = Keyring::new(MasterKey::load(&p_new).unwrap().0);
        assert_eq!(
            DataKey::unwrap(&only_new, &w2, b"c")
                .unwrap()
                .raw
                .as_slice(),
            dk.raw.as_slice()
        );
        assert!(DataKey::unwrap(&only_new, &w, b"c").is_err());
        assert!(format!("{ring:?}").starts_with("Keyring"));
        assert!(!format!("{dk:?}").contains(char::is_numeric));
    }
}

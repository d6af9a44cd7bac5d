//! Each customer's data key, wrapped under the master key: made with the customer, unwrapped for a
//! decided read or write, destroyed by erasure (crypto-shredding). The one place in the service
//! that holds the keyring; every context that seals or opens a customer's values asks it.

use std::sync::Arc;

use steward_crypto::{DataKey, Keyring};
use steward_domain::CustomerId;
use steward_store::{KeyStore, StoredKey};

use crate::error::{ServiceError, ServiceResult};
use crate::vault::{stored, wrapped};

/// The label a customer's data key is wrapped under (rotation re-wraps under the same).
pub(crate) fn owner_label(id: CustomerId) -> Vec<u8> {
    [b"customer\0".as_slice(), id.as_bytes()].concat()
}

/// The customers' data keys.
pub(crate) struct CustomerKeys {
    keyring: Keyring,
    store: Arc<dyn KeyStore>,
}

impl CustomerKeys {
    /// The keys of one installation, under `keyring` (made by the composition root).
    pub(crate) fn new(keyring: Keyring, store: Arc<dyn KeyStore>) -> Self {
        CustomerKeys { keyring, store }
    }

    /// Customer `id`'s key, unwrapped from its stored form (read with the customer's row).
    pub(crate) fn open(&self, id: CustomerId, k: &StoredKey) -> ServiceResult<DataKey> {
        Ok(DataKey::unwrap(
            &self.keyring,
            &wrapped(k),
            &owner_label(id),
        )?)
    }

    /// Customer `id`'s key, read and unwrapped; `NotFound` once erased (or never made).
    pub(crate) async fn of(&self, id: CustomerId) -> ServiceResult<DataKey> {
        let k = self
            .store
            .customer_key(id)
            .await?
            .ok_or(ServiceError::NotFound("customer"))?;
        self.open(id, &k)
    }

    /// `key` wrapped for storing as customer `id`'s.
    pub(crate) fn wrap(&self, id: CustomerId, key: &DataKey) -> ServiceResult<StoredKey> {
        Ok(stored(key.wrap(&self.keyring, &owner_label(id))?))
    }
}

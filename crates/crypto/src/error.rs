//! Crypto errors. They never carry key material or plaintext.

/// What went wrong in a cryptographic operation.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A ciphertext failed authentication: it was altered, or moved to another field or customer.
    #[error("stored data failed its integrity check")]
    Integrity,
    /// A wrapped key names a master key this process does not hold.
    #[error("no master key with id {0} is loaded")]
    UnknownMasterKey(String),
    /// The master key file is unusable.
    #[error("master key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// Password hashing failed.
    #[error("token hashing failed")]
    Hash,
}

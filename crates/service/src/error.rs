//! Service errors: what callers (HTTP, CLI) translate into answers. None carries a personal value.

use steward_crypto::CryptoError;
use steward_domain::ValidationError;
use steward_store::StoreError;

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is invalid; the error names the field.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Something with that identity exists already; names the field.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The access policy refused; `field` is the request part to blame (e.g. `purpose`).
    #[error("forbidden: {detail}")]
    Forbidden {
        /// The request field the refusal is about.
        field: &'static str,
        /// Why, naming no personal value.
        detail: String,
    },
    /// The caller's roles may not declare this purpose (it names the purpose, never a customer):
    /// refused for every customer alike, so a list or look-up is refused whole, not emptied.
    #[error("purpose {0} may not be declared by the caller's roles")]
    PurposeNotDeclarable(String),
    /// The decision could not be recorded, so the read was not served.
    #[error("the access decision could not be recorded")]
    DecisionLog,
    /// The bulk-access guard refused: too many distinct customers in the window.
    #[error("too many distinct customers read")]
    BulkAccess,
    /// The caller sized more segments in the last hour than allowed (the DPO was alerted).
    #[error("too many segment sizes in an hour")]
    SegmentBudget,
    /// An analytics release would exceed the caller's privacy budget: `field` is `epsilon` or
    /// `delta`, whichever ran out.
    #[error("privacy budget: {detail}")]
    PrivacyBudget {
        /// `epsilon` or `delta`.
        field: &'static str,
        /// What is spent and left.
        detail: String,
    },
    /// Stored data failed its integrity check (tampered, or moved between fields or customers).
    #[error("stored data failed its integrity check")]
    Integrity,
    /// A crypto failure other than integrity (key file, random source, unknown master key).
    #[error(transparent)]
    Crypto(CryptoFailure),
    /// The store failed.
    #[error(transparent)]
    Store(StoreFailure),
    /// Another customer already holds this e-mail address or phone number (`field`): creating
    /// one more needs `allow_duplicate`.
    #[error("another customer holds this {field}")]
    Duplicate {
        /// `email` or `phone`.
        field: &'static str,
        /// The customer who holds it, when the caller may work on them.
        existing: Option<steward_domain::CustomerId>,
    },
    /// The staff member has not acknowledged the current confidentiality notice (or did more
    /// than 12 months ago): no personal read until they do.
    #[error("the current confidentiality notice is not acknowledged")]
    AcknowledgementRequired,
    /// The thing is not in a state that allows this (e.g. a request already closed).
    #[error("not allowed in this state: {0}")]
    WrongState(&'static str),
    /// A legal hold blocks the erasure; carries the hold's case reference.
    #[error("a legal hold ({0}) blocks erasing this customer")]
    LegalHold(String),
    /// A data-subject export could not be assembled (names the step, never a value).
    #[error("the export failed: {0}")]
    Export(&'static str),
    /// The erasure journal is missing, unreadable or fails its integrity check.
    #[error("the erasure journal {0}")]
    Journal(&'static str),
}

/// A crypto failure, opaque to the layers above: its text is for logs, and no crypto type
/// reaches the HTTP layer.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct CryptoFailure(pub(crate) CryptoError);

impl CryptoFailure {
    /// The id of the master key the data was sealed under, when the loaded key is another.
    pub fn unknown_master_key(&self) -> Option<&str> {
        match &self.0 {
            CryptoError::UnknownMasterKey(id) => Some(id),
            _ => None,
        }
    }
}

/// A storage failure, opaque to the layers above: its text is for logs (database errors can echo
/// stored bytes, so never shown to clients), and no store type reaches the HTTP layer.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreFailure(pub(crate) StoreError);

impl From<CryptoError> for ServiceError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity => ServiceError::Integrity,
            other => ServiceError::Crypto(CryptoFailure(other)),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(StoreFailure(e))
    }
}

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;

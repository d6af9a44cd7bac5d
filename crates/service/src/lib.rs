//! Steward's application services: the [`Vault`] seals what is written and unseals what is read,
//! between the domain, the crypto and the store. The HTTP API and the CLI are thin layers over it.

mod access;
pub mod analytics;
mod audit;
mod audit_export;
mod audit_search;
mod audit_trail;
mod audit_verify;
mod campaigns;
pub mod cluster;
mod consent;
pub mod contact;
pub mod demo;
mod directory;
mod door;
mod dpo_notify;
pub mod erasure;
mod error;
mod guard;
mod identity;
pub use identity::sign_in;
pub(crate) use identity::{accounts, auth};
pub mod import;
pub mod inbound;
pub mod keys;
mod merge;
pub mod messages;
pub mod notice;
pub mod notify;
mod operator_export;
pub mod personalise;
pub mod pii;
pub mod portal;
mod purposes;
mod rectification;
pub mod retention;
pub mod rights;
mod seal;
mod search;
mod segments;
pub mod sending;
mod shared_limits;
pub mod sharing;
pub mod social;
pub mod subject_export;
pub mod surveys;
mod timeline;
pub mod unsubscribe;
mod vault;
pub mod webhooks;

pub use access::{
    ABSTRACTION_SCAN, Access, Alert, CustomerActions, DirectoryActions, PurchasesView,
};
pub use accounts::TokenInfo;
pub use audit::{OUTBOX_REFUSED, TreeSealer};
pub use audit_export::{EXPORT_FORMAT, ExportReport, export_audit, verify_export};
pub use audit_search::{AuditFilter, AuditLine};
pub use audit_trail::{
    AccessLog, AccessLogEntry, AuditTrail, LogEntry, inclusion as inclusion_proof,
};
pub use audit_verify::{AuditReport, check_outbox, verify_log};
pub use auth::{Actor, Myself, Operator, Principal, TokenOwner};
pub use campaigns::{CampaignCounts, CampaignView, Preview};
pub use cluster::{READY_WITHIN, Readiness};
pub use directory::{Directory, Outlet, Staff};
pub use erasure::ErasureReport;
pub use error::{CryptoFailure, ServiceError, StoreFailure};
pub use guard::{BulkGuard, GuardOutcome};
pub use identity::Identity;
pub use operator_export::{ExportPage, ExportedCustomer};
pub use rights::RequestView;
pub use segments::{EVALUATIONS_PER_HOUR, Segment, SegmentSizeView};
pub use timeline::{Timeline, TimelineEntry};
pub use vault::{Activity, DuplicateOf, Sealed, Vault, operator_entry, record_operator_act};

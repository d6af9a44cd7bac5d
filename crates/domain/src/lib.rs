//! Steward's domain model: the words of the brief as types, with validation and normalisation.
//!
//! This crate does no I/O and holds no secrets. Everything that crosses into storage is validated
//! and normalised here first, so that the crypto and storage layers only ever see clean values.

pub mod analytics;
pub mod audit;
pub mod campaign;
pub mod category;
pub mod consent;
pub mod customer;
pub mod documented;
pub mod error;
pub mod ids;
pub mod integral;
pub mod interaction;
pub mod message;
pub mod normalize;
pub mod pii;
pub mod profile;
pub mod purchase;
pub mod purpose;
pub mod purpose_change;
pub mod recommend;
pub mod request;
pub mod role;
pub mod search;
pub mod segment;
pub mod sharing;
pub mod social;
pub mod survey;
pub mod time;
pub mod view;

pub use audit::AuditLeaf;
pub use category::DataCategory;
pub use consent::{
    ConsentAction, ConsentEvent, ConsentInput, ConsentSource, ConsentState, ConsentStatus,
};
pub use customer::{Address, AddressInput};
pub use error::ValidationError;
pub use ids::{
    AgreementId, CampaignId, CustomerId, DeliveryId, InteractionId, OutletId, PurchaseId,
    RecipientId, RequestId, SegmentId, StaffId, SurveyId, ThreadId, TokenId,
};
pub use interaction::{Channel, Interaction, InteractionInput, NewInteraction};
pub use message::{Direction, MessageInput, NewMessage, Thread, ThreadMessage};
pub use profile::{
    Customer, CustomerInput, CustomerPatch, CustomerView, NewCustomer, ProfileField, Shown,
};
pub use purchase::{NewPurchase, Purchase, PurchaseInput};
pub use purpose::{LawfulBasis, Purpose};
pub use purpose_change::{PURPOSE_KEY_PATTERN, PurposeInput, PurposePatch};
pub use request::{IdentityCheck, RequestInput, RequestReason, RequestStatus, RequestType};
pub use role::Role;
pub use search::{CustomerFilter, MAX_QUERY_CHARS, TIERS};
pub use segment::{Rule, SegmentSize};
pub use time::Timestamp;
pub use view::{DecisionSummary, PurchaseSummary};

//! Typed ids. All are UUIDv7 so that they sort by creation time, which cursor pagination uses.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh UUIDv7 id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The 16 bytes, as stored.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// From the 16 stored bytes; `None` if the length is wrong.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                Uuid::from_slice(bytes).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

typed_id!(
    /// A customer (the data subject).
    CustomerId,
    /// An interaction with a customer.
    InteractionId,
    /// A purchase by a customer.
    PurchaseId,
    /// An outlet (shop, branch, web store).
    OutletId,
    /// A staff member.
    StaffId,
    /// An API token.
    TokenId,
    /// A data-subject request.
    RequestId,
    /// A segment: rules that pick customers.
    SegmentId,
    /// A campaign: a message to a segment.
    CampaignId,
    /// One campaign message to one customer: its state, never its content.
    DeliveryId,
    /// A conversation by e-mail between staff and one customer.
    ThreadId,
    /// An anonymous survey.
    SurveyId,
    /// A recipient of disclosures: a processor or a third party (issue 22).
    RecipientId,
    /// An agreement under which a recipient receives data.
    AgreementId,
);

//! The consent ledger's words: grant and withdraw events per purpose, with source and notice.

use serde::{Deserialize, Serialize};

use crate::{CustomerId, Timestamp};

/// Grant or withdraw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentAction {
    /// The customer agrees.
    Grant,
    /// The customer withdraws (as easy as granting).
    Withdraw,
}

/// Where the customer expressed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// The customer's privacy portal.
    Portal,
    /// In a shop, recorded by staff.
    InStore,
    /// Another system, through the API.
    Api,
    /// The Global Privacy Control signal (`Sec-GPC: 1`).
    Gpc,
    /// A data-subject request (an objection withdraws marketing and profiling purposes).
    RightsRequest,
    /// A campaign message's one-click unsubscribe (RFC 8058).
    Unsubscribe,
}

impl ConsentAction {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentAction::Grant => "grant",
            ConsentAction::Withdraw => "withdraw",
        }
    }
}

impl ConsentSource {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Portal => "portal",
            ConsentSource::InStore => "in_store",
            ConsentSource::Api => "api",
            ConsentSource::Gpc => "gpc",
            ConsentSource::RightsRequest => "rights_request",
            ConsentSource::Unsubscribe => "unsubscribe",
        }
    }
}

/// The body of `POST /v1/customers/{id}/consents`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// The purpose key (a purpose that rests on consent).
    #[schema(format = "consent-purpose")]
    pub purpose: String,
    /// Grant or withdraw.
    pub action: ConsentAction,
    /// Where it was expressed.
    pub source: ConsentSource,
}

/// One event of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentEvent {
    /// Event id.
    pub id: String,
    /// The customer.
    pub customer_id: CustomerId,
    /// The purpose key.
    pub purpose: String,
    /// `grant` or `withdraw`.
    pub action: String,
    /// `portal`, `in_store`, `api` or `gpc`.
    pub source: String,
    /// The version of the purpose's notice the customer was shown.
    pub notice_version: i64,
    /// When.
    pub occurred_at: Timestamp,
}

/// The current state for one purpose: the last event decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentStatus {
    /// The purpose key.
    pub purpose: String,
    /// `granted` or `withdrawn`.
    pub state: &'static str,
    /// Since when.
    pub since: Timestamp,
    /// The source of the deciding event.
    pub source: String,
    /// The notice version of the deciding event.
    pub notice_version: i64,
}

/// `GET /v1/customers/{id}/consents`: the current state per purpose and the whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentState {
    /// The state per purpose that has any event.
    pub current: Vec<ConsentStatus>,
    /// Every event, oldest first.
    pub history: Vec<ConsentEvent>,
}

impl ConsentState {
    /// Replays the ledger: the last event per purpose decides.
    pub fn from_history(history: Vec<ConsentEvent>) -> Self {
        let mut current: Vec<ConsentStatus> = Vec::new();
        for e in &history {
            let status = ConsentStatus {
                purpose: e.purpose.clone(),
                state: if e.action == "grant" {
                    "granted"
                } else {
                    "withdrawn"
                },
                since: e.occurred_at,
                source: e.source.clone(),
                notice_version: e.notice_version,
            };
            match current.iter_mut().find(|s| s.purpose == e.purpose) {
                Some(s) => *s = status,
                None => current.push(status),
            }
        }
        current.sort_by(|a, b| a.purpose.cmp(&b.purpose));
        ConsentState { current, history }
    }

    /// Whether consent for `purpose` is active.
    pub fn granted(&self, purpose: &str) -> bool {
        self.current
            .iter()
            .any(|s| s.purpose == purpose && s.state == "granted")
    }
}

//! Roles a principal can hold. Their powers are decided by the access policy, not here.

use serde::{Deserialize, Serialize};

/// A staff or service role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Configures Steward.
    Admin,
    /// Sells in an outlet.
    SalesAssociate,
    /// Manages an outlet.
    StoreManager,
    /// Answers customers.
    SupportAgent,
    /// Runs campaigns.
    Marketing,
    /// Reads aggregates.
    Analyst,
    /// The data protection officer.
    Dpo,
    /// Scrapes the operational metrics (`/metrics`); reads nothing else.
    Monitoring,
    /// Hands inbound mail to Steward (`POST /v1/inbound/email`): replies and bounces; reads
    /// nothing.
    MailGateway,
    /// Reports social-media events (`POST /v1/social/events`, issue 23); reads nothing.
    SocialConnector,
    /// The operator at the command line, who holds the master key (import, export, erasure by
    /// hand). Never held by a token or a staff member: not in [`Role::ALL`], not parsed, not
    /// accepted in a request body.
    #[serde(skip_deserializing)]
    Operator,
    /// A recipient of disclosures (a processor or third party, issue 22), acting with a token of
    /// its own under its agreements. Held only by a recipient's token: not in [`Role::ALL`], not
    /// parsed, not accepted in a request body.
    #[serde(skip_deserializing)]
    Recipient,
}

impl Role {
    /// Every role a token or a staff member can hold, in a stable order.
    pub const ALL: [Role; 10] = [
        Role::Admin,
        Role::SalesAssociate,
        Role::StoreManager,
        Role::SupportAgent,
        Role::Marketing,
        Role::Analyst,
        Role::Dpo,
        Role::Monitoring,
        Role::MailGateway,
        Role::SocialConnector,
    ];
    /// [`Role::ALL`], the operator's and a recipient's: every role the policy can meet.
    pub const EVERY: [Role; 12] = {
        let mut every = [Role::Operator; 12];
        every[11] = Role::Recipient;
        let mut i = 0;
        while i < Role::ALL.len() {
            every[i] = Role::ALL[i];
            i += 1;
        }
        every
    };

    /// The wire name, e.g. `sales_associate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SalesAssociate => "sales_associate",
            Role::StoreManager => "store_manager",
            Role::SupportAgent => "support_agent",
            Role::Marketing => "marketing",
            Role::Analyst => "analyst",
            Role::Dpo => "dpo",
            Role::Monitoring => "monitoring",
            Role::MailGateway => "mail_gateway",
            Role::SocialConnector => "social_connector",
            Role::Operator => "operator",
            Role::Recipient => "recipient",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = crate::ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::ValidationError::new("role", "unknown role; expected one of admin, sales_associate, store_manager, support_agent, marketing, analyst, dpo, monitoring, mail_gateway, social_connector"))
    }
}

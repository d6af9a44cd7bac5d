//! Interactions: messages, notes, calls, tickets, survey answers and social-media posts.

use serde::{Deserialize, Serialize};

use crate::pii::{EntityType, PiiTypes};
use crate::{CustomerId, InteractionId, Timestamp, ValidationError, normalize};

/// Where an interaction happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail.
    Email,
    /// Telephone.
    Phone,
    /// In a shop.
    InStore,
    /// Web site or app.
    Web,
    /// A social-media platform.
    Social,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 5] = [
        Channel::Email,
        Channel::Phone,
        Channel::InStore,
        Channel::Web,
        Channel::Social,
    ];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Phone => "phone",
            Channel::InStore => "in_store",
            Channel::Web => "web",
            Channel::Social => "social",
        }
    }

    /// Parses the storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The body of `POST /v1/customers/{id}/interactions`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionInput {
    /// The channel.
    pub channel: Channel,
    /// The message or note (`user.content.private`, or `user.social` for social posts).
    #[schema(format = "long-text")]
    pub text: String,
    /// The system or platform it came from, e.g. `zendesk`, `instagram`, `till`.
    #[schema(format = "source")]
    pub source: String,
    /// When it happened (RFC 3339); now if absent.
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

/// A validated interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInteraction {
    /// The channel.
    pub channel: Channel,
    /// The text.
    pub text: String,
    /// The source system (not personal; stored in clear for filtering).
    pub source: String,
    /// When it happened.
    pub occurred_at: Timestamp,
}

impl InteractionInput {
    /// Validates the input, defaulting the time to `now`.
    pub fn validate(&self, now: Timestamp) -> Result<NewInteraction, ValidationError> {
        let source = normalize::short_text("source", &self.source)?;
        if !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
            || source.len() > 64
        {
            return Err(ValidationError::new(
                "source",
                "must be a short identifier (letters, digits, _ - . :)",
            ));
        }
        Ok(NewInteraction {
            channel: self.channel,
            text: normalize::long_text("text", &self.text)?,
            source,
            occurred_at: self.occurred_at.unwrap_or(now),
        })
    }
}

/// An interaction as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Interaction {
    /// Its id.
    pub id: InteractionId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The channel.
    pub channel: Channel,
    /// The text.
    pub text: String,
    /// The source system.
    pub source: String,
    /// When it happened.
    pub occurred_at: Timestamp,
    /// The kinds of personal data found in the text when it was recorded (never their values).
    #[schema(value_type = Vec<EntityType>)]
    #[serde(serialize_with = "types_as_list")]
    pub pii_types: PiiTypes,
    /// Whether the text is shown masked: it holds a card, account or identity number and the
    /// policy does not clear this reader for it.
    pub masked: bool,
}

fn types_as_list<S: serde::Serializer>(t: &PiiTypes, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(t.iter())
}

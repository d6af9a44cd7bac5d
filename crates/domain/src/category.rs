//! Data categories, named as in the fideslang taxonomy so privacy teams recognise them.

use serde::{Deserialize, Serialize};

/// The data category a personal value belongs to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum DataCategory {
    /// A person's name.
    #[serde(rename = "user.name")]
    Name,
    /// An e-mail address.
    #[serde(rename = "user.contact.email")]
    Email,
    /// A telephone number.
    #[serde(rename = "user.contact.phone_number")]
    PhoneNumber,
    /// A postal address.
    #[serde(rename = "user.contact.address")]
    Address,
    /// A date of birth.
    #[serde(rename = "user.demographic.date_of_birth")]
    DateOfBirth,
    /// The language a person prefers to be addressed in.
    #[serde(rename = "user.demographic.language")]
    Language,
    /// Amounts paid and other financial data.
    #[serde(rename = "user.financial")]
    Financial,
    /// What a customer bought, where and from whom.
    #[serde(rename = "user.behavior.purchase_history")]
    PurchaseHistory,
    /// Messages, notes, calls and tickets.
    #[serde(rename = "user.content.private")]
    Communications,
    /// Social-media posts and interactions.
    #[serde(rename = "user.social")]
    Social,
    /// Location data.
    #[serde(rename = "user.location")]
    Location,
    /// Health and medical data (a special category: never used for personalisation).
    #[serde(rename = "user.health_and_medical")]
    HealthAndMedical,
    /// Religious or philosophical beliefs (a special category, GDPR Art. 9).
    #[serde(rename = "user.demographic.religious_belief")]
    ReligiousBelief,
    /// Political opinions (a special category).
    #[serde(rename = "user.demographic.political_opinion")]
    PoliticalOpinion,
    /// Racial or ethnic origin (a special category).
    #[serde(rename = "user.demographic.race_ethnicity")]
    RaceEthnicity,
    /// Sexual orientation (a special category).
    #[serde(rename = "user.demographic.sexual_orientation")]
    SexualOrientation,
}

impl DataCategory {
    /// Every category, in declaration order.
    pub const ALL: [DataCategory; 16] = [
        Self::Name,
        Self::Email,
        Self::PhoneNumber,
        Self::Address,
        Self::DateOfBirth,
        Self::Language,
        Self::Financial,
        Self::PurchaseHistory,
        Self::Communications,
        Self::Social,
        Self::Location,
        Self::HealthAndMedical,
        Self::ReligiousBelief,
        Self::PoliticalOpinion,
        Self::RaceEthnicity,
        Self::SexualOrientation,
    ];

    /// The special categories of GDPR Art. 9 that a purchase category can be marked as: never
    /// an input or output of personalisation.
    pub const SPECIAL: [DataCategory; 5] = [
        Self::HealthAndMedical,
        Self::ReligiousBelief,
        Self::PoliticalOpinion,
        Self::RaceEthnicity,
        Self::SexualOrientation,
    ];

    /// The category of a fideslang name, if it is one of these.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The fideslang name, e.g. `user.contact.email`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "user.name",
            Self::Email => "user.contact.email",
            Self::PhoneNumber => "user.contact.phone_number",
            Self::Address => "user.contact.address",
            Self::DateOfBirth => "user.demographic.date_of_birth",
            Self::Language => "user.demographic.language",
            Self::Financial => "user.financial",
            Self::PurchaseHistory => "user.behavior.purchase_history",
            Self::Communications => "user.content.private",
            Self::Social => "user.social",
            Self::Location => "user.location",
            Self::HealthAndMedical => "user.health_and_medical",
            Self::ReligiousBelief => "user.demographic.religious_belief",
            Self::PoliticalOpinion => "user.demographic.political_opinion",
            Self::RaceEthnicity => "user.demographic.race_ethnicity",
            Self::SexualOrientation => "user.demographic.sexual_orientation",
        }
    }

    /// The category as people read it, e.g. "e-mail address".
    pub fn label(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Email => "e-mail address",
            Self::PhoneNumber => "phone number",
            Self::Address => "postal address",
            Self::DateOfBirth => "date of birth",
            Self::Language => "preferred language",
            Self::Financial => "financial data",
            Self::PurchaseHistory => "purchase history",
            Self::Communications => "messages and notes",
            Self::Social => "social media",
            Self::Location => "location",
            Self::HealthAndMedical => "health",
            Self::ReligiousBelief => "religious belief",
            Self::PoliticalOpinion => "political opinion",
            Self::RaceEthnicity => "racial or ethnic origin",
            Self::SexualOrientation => "sexual orientation",
        }
    }
}

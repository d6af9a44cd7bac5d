//! Sharing under agreement (issue 22): recipients of disclosures, the agreements they receive
//! data under, and the changes that follow the data to them.

use serde::{Deserialize, Serialize};

use crate::normalize::{country, short_text};
use crate::{DataCategory, LawfulBasis, RecipientId, Timestamp, ValidationError};

/// What a recipient is to the business (GDPR Art. 4(9), 28).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    /// Processes on the business's behalf, under its instructions (Art. 28).
    Processor,
    /// Receives data for its own purposes.
    ThirdParty,
}

impl RecipientKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::Processor => "processor",
            RecipientKind::ThirdParty => "third_party",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "processor" => Some(RecipientKind::Processor),
            "third_party" => Some(RecipientKind::ThirdParty),
            _ => None,
        }
    }
}

/// A recipient as registered by the DPO (`POST /v1/recipients`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientInput {
    /// The recipient's name, as customers will read it.
    #[schema(format = "short-text", max_length = 200)]
    pub name: String,
    /// `processor` or `third_party`.
    pub kind: RecipientKind,
    /// Where it processes the data (ISO 3166-1 alpha-2), e.g. `DE`.
    #[schema(format = "country")]
    pub country: String,
    /// Whom to contact there about data protection (a name, a role or an address).
    #[serde(default)]
    #[schema(format = "short-text", max_length = 200)]
    pub contact: Option<String>,
    /// Where changes to data it received are notified: an `https://` URL.
    #[schema(format = "https-url")]
    pub webhook_url: String,
}

/// A validated recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: RecipientKind,
    /// Country code, upper case.
    pub country: String,
    /// Contact, if given.
    pub contact: Option<String>,
    /// The notification URL.
    pub webhook_url: String,
}

impl RecipientInput {
    /// Validates; `insecure_loopback` also accepts `http://127.0.0.1[:port]/…` and
    /// `http://[::1]…` receivers (tests only: `serve --allow-insecure-webhooks`).
    pub fn validate(&self, insecure_loopback: bool) -> Result<NewRecipient, ValidationError> {
        Ok(NewRecipient {
            name: short_text("name", &self.name)?,
            kind: self.kind,
            country: country("country", &self.country)?,
            contact: self
                .contact
                .as_deref()
                .filter(|c| !c.trim().is_empty())
                .map(|c| short_text("contact", c))
                .transpose()?,
            webhook_url: webhook_url("webhook_url", &self.webhook_url, insecure_loopback)?,
        })
    }
}

/// Longest webhook URL accepted.
const MAX_URL: usize = 2000;

/// Checks a notification URL: absolute `https://` with a host, no credentials, no fragment;
/// plain `http://` only to the loopback address and only when `insecure_loopback`.
pub fn webhook_url(
    field: &'static str,
    raw: &str,
    insecure_loopback: bool,
) -> Result<String, ValidationError> {
    let bad = |why: &'static str| ValidationError::new(field, why);
    let raw = raw.trim();
    if raw.len() > MAX_URL {
        return Err(bad("at most 2000 characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials do not belong in a URL"));
    }
    if url.fragment().is_some() {
        return Err(bad("a URL without a fragment"));
    }
    let host = url.host().ok_or_else(|| bad("a URL with a host"))?;
    match url.scheme() {
        "https" => Ok(url.to_string()),
        "http" if insecure_loopback => {
            let loopback = match host {
                url::Host::Ipv4(a) => a.is_loopback(),
                url::Host::Ipv6(a) => a.is_loopback(),
                url::Host::Domain(_) => false,
            };
            if loopback {
                Ok(url.to_string())
            } else {
                Err(bad(
                    "plain http only to the loopback address, and only in tests",
                ))
            }
        }
        _ => Err(bad(
            "an https:// URL (recipients are notified over TLS only)",
        )),
    }
}

/// Whether an agreement's recipient learns whom the data is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// Customer ids and, as the categories allow, direct identifiers.
    Identified,
    /// Pseudonyms instead of ids and no direct identifier: name, e-mail, phone, address.
    Pseudonymous,
}

impl Identity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::Identified => "identified",
            Identity::Pseudonymous => "pseudonymous",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "identified" => Some(Identity::Identified),
            "pseudonymous" => Some(Identity::Pseudonymous),
            _ => None,
        }
    }
}

/// The categories that identify a person directly: never disclosed under a pseudonymous
/// agreement (the policy's `pseudonymous-no-direct-identifiers`).
pub const DIRECT_IDENTIFIERS: [DataCategory; 4] = [
    DataCategory::Name,
    DataCategory::Email,
    DataCategory::PhoneNumber,
    DataCategory::Address,
];

/// An agreement as the DPO records it (`POST /v1/agreements`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementInput {
    /// The recipient.
    #[schema(format = Uuid)]
    pub recipient_id: String,
    /// The purposes (registry keys) the recipient may receive data for.
    #[schema(min_items = 1, max_items = 50)]
    pub purposes: Vec<String>,
    /// The data categories (fideslang) it may receive.
    #[schema(min_items = 1, max_items = 50)]
    pub categories: Vec<DataCategory>,
    /// The lawful basis of the disclosure.
    pub lawful_basis: LawfulBasis,
    /// The SHA-256 of the signed agreement document, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub document_sha256: String,
    /// When it comes into force.
    pub starts_at: Timestamp,
    /// When it ends.
    pub expires_at: Timestamp,
    /// `identified` or `pseudonymous`: said every time, never assumed.
    pub identity: Identity,
    /// The agreement this one replaces (its next version): the old one ends when this starts.
    #[serde(default)]
    #[schema(format = Uuid)]
    pub supersedes: Option<String>,
}

/// A validated agreement; the purposes still need checking against the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgreement {
    /// The recipient.
    pub recipient_id: RecipientId,
    /// Purpose keys, sorted, without repeats.
    pub purposes: Vec<String>,
    /// Categories, sorted, without repeats.
    pub categories: Vec<DataCategory>,
    /// Lawful basis.
    pub lawful_basis: LawfulBasis,
    /// Lower-case hex.
    pub document_sha256: String,
    /// From.
    pub starts_at: Timestamp,
    /// Until.
    pub expires_at: Timestamp,
    /// Identified or pseudonymous.
    pub identity: Identity,
    /// The agreement replaced, if any (its id, unparsed ids refused).
    pub supersedes: Option<crate::AgreementId>,
}

impl AgreementInput {
    /// Validates everything but the purposes' existence.
    pub fn validate(&self) -> Result<NewAgreement, ValidationError> {
        let recipient_id = self
            .recipient_id
            .parse()
            .map_err(|_| ValidationError::new("recipient_id", "not a recipient id"))?;
        let mut purposes = self.purposes.clone();
        purposes.sort();
        purposes.dedup();
        if purposes.is_empty() || purposes.len() > 50 {
            return Err(ValidationError::new(
                "purposes",
                "one to fifty purpose keys",
            ));
        }
        let mut categories = self.categories.clone();
        categories.sort();
        categories.dedup();
        if categories.is_empty() || categories.len() > 50 {
            return Err(ValidationError::new(
                "categories",
                "one to fifty data categories",
            ));
        }
        if self.identity == Identity::Pseudonymous
            && categories.iter().any(|c| DIRECT_IDENTIFIERS.contains(c))
        {
            return Err(ValidationError::new(
                "categories",
                "a pseudonymous agreement names no direct identifier (name, e-mail, phone, address)",
            ));
        }
        let sha = self.document_sha256.trim().to_ascii_lowercase();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ValidationError::new(
                "document_sha256",
                "the document's SHA-256: 64 hexadecimal digits",
            ));
        }
        if self.expires_at.millis() <= self.starts_at.millis() {
            return Err(ValidationError::new(
                "expires_at",
                "must be after starts_at",
            ));
        }
        let supersedes = self
            .supersedes
            .as_deref()
            .map(|s| {
                s.parse()
                    .map_err(|_| ValidationError::new("supersedes", "not an agreement id"))
            })
            .transpose()?;
        Ok(NewAgreement {
            recipient_id,
            purposes,
            categories,
            lawful_basis: self.lawful_basis,
            document_sha256: sha,
            starts_at: self.starts_at,
            expires_at: self.expires_at,
            identity: self.identity,
            supersedes,
        })
    }
}

/// What an agreement says about one read: what the policy's context holds for a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementTerms {
    /// The agreement.
    pub id: crate::AgreementId,
    /// The categories it covers.
    pub categories: Vec<DataCategory>,
    /// Whether the recipient gets pseudonyms.
    pub identity: Identity,
}

/// A change that follows the data to the recipients who received it (GDPR Art. 19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Change {
    /// The customer was erased: every copy goes.
    #[serde(rename = "customer.erased")]
    Erased,
    /// Profile fields were corrected.
    #[serde(rename = "customer.rectified")]
    Rectified,
    /// Processing was restricted (Art. 18): use it for nothing until lifted.
    #[serde(rename = "customer.restricted")]
    Restricted,
    /// The restriction was lifted: the data may be used again under the agreement.
    #[serde(rename = "customer.unrestricted")]
    Unrestricted,
    /// Consent to a purpose was withdrawn.
    #[serde(rename = "consent.withdrawn")]
    ConsentWithdrawn,
}

impl Change {
    /// The notification's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Erased => "customer.erased",
            Change::Rectified => "customer.rectified",
            Change::Restricted => "customer.restricted",
            Change::Unrestricted => "customer.unrestricted",
            Change::ConsentWithdrawn => "consent.withdrawn",
        }
    }

    /// From the notification's `type`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Change::Erased,
            Change::Rectified,
            Change::Restricted,
            Change::Unrestricted,
            Change::ConsentWithdrawn,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement() -> AgreementInput {
        AgreementInput {
            recipient_id: crate::RecipientId::new().to_string(),
            purposes: vec!["service".into()],
            categories: vec![DataCategory::Name],
            lawful_basis: LawfulBasis::Contract,
            document_sha256: "ab".repeat(32),
            starts_at: Timestamp(1_000),
            expires_at: Timestamp(2_000),
            identity: Identity::Identified,
            supersedes: None,
        }
    }

    #[test]
    fn webhook_urls_are_https_or_loopback_in_tests() {
        let ok = |u: &str, t| webhook_url("w", u, t).is_ok();
        assert!(ok("https://hooks.example.com/steward", false));
        assert!(!ok("http://hooks.example.com/steward", false));
        assert!(!ok("http://127.0.0.1:9000/h", false));
        assert!(ok("http://127.0.0.1:9000/h", true));
        assert!(ok("http://[::1]:9000/h", true));
        assert!(
            !ok("http://localhost:9000/h", true),
            "names can resolve anywhere"
        );
        assert!(!ok("http://10.0.0.1/h", true));
        assert!(!ok("https://user:pw@hooks.example.com/", false));
        assert!(!ok("https://hooks.example.com/#x", false));
        assert!(!ok("ftp://hooks.example.com/", false));
        assert!(!ok("hooks.example.com", false));
        assert!(!ok(
            &format!("https://h.example/{}", "a".repeat(2000)),
            false
        ));
    }

    #[test]
    fn agreements_are_checked() {
        assert!(agreement().validate().is_ok());
        let field = |a: AgreementInput| a.validate().unwrap_err().field;
        let mut a = agreement();
        a.expires_at = Timestamp(1_000);
        assert_eq!(field(a), "expires_at");
        let mut a = agreement();
        a.document_sha256 = "xyz".into();
        assert_eq!(field(a), "document_sha256");
        let mut a = agreement();
        a.identity = Identity::Pseudonymous;
        assert_eq!(field(a), "categories");
        let mut a = agreement();
        a.purposes.clear();
        assert_eq!(field(a), "purposes");
        let mut a = agreement();
        a.recipient_id = "r".into();
        assert_eq!(field(a), "recipient_id");
        let mut a = agreement();
        a.identity = Identity::Pseudonymous;
        a.categories = vec![DataCategory::PurchaseHistory, DataCategory::PurchaseHistory];
        assert_eq!(a.validate().unwrap().categories.len(), 1);
    }

    #[test]
    fn change_types_round_trip() {
        for c in [
            Change::Erased,
            Change::Rectified,
            Change::Restricted,
            Change::Unrestricted,
            Change::ConsentWithdrawn,
        ] {
            assert_eq!(Change::parse(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
    }
}

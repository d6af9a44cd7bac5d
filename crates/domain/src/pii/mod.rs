//! Personal data found in free text (issue 23): e-mail addresses, telephone numbers, payment
//! cards, IBANs, Singapore NRIC/FIN, UK National Insurance numbers, US Social Security numbers,
//! IP addresses and URLs that carry credentials. Numbers with a checksum are reported only when
//! it holds, so a mistyped or made-up number is not a finding.
//!
//! Hand-written rather than a set of regular expressions: one pass over the bytes finds the
//! candidates (a table lookup per byte, SIMD search for `@` and `://`), and each candidate is
//! confirmed by its checksum or format rule; a regex per type would pass over the text once per
//! type and still need the same confirmations. Telephone numbers are confirmed by
//! libphonenumber's metadata (`phonenumber`), never by a pattern of ours.
//!
//! Offsets are byte offsets inside Steward; [`to_code_points`] gives them in Unicode code points
//! as Presidio's analyzer does.

mod checks;
mod scan;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ValidationError;

pub use checks::{card, iban, luhn, nino, nric, ssn};

/// The kinds of personal data the detector finds, named as Presidio names them where it has them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityType {
    /// A payment card number (Luhn-valid, 13 to 19 digits).
    CreditCard,
    /// An IBAN (ISO 13616, mod 97 valid, the country's length).
    IbanCode,
    /// An e-mail address.
    EmailAddress,
    /// A telephone number valid in libphonenumber's metadata.
    PhoneNumber,
    /// A Singapore NRIC or FIN with a correct check letter.
    SgNricFin,
    /// A UK National Insurance number by HMRC's format rules.
    UkNino,
    /// A US Social Security number by the SSA's format rules.
    UsSsn,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A URL with a password, a user name or a token in it.
    UrlCredentials,
}

impl EntityType {
    /// Every type, in the order of the wire names.
    pub const ALL: [EntityType; 9] = [
        EntityType::CreditCard,
        EntityType::EmailAddress,
        EntityType::IbanCode,
        EntityType::IpAddress,
        EntityType::PhoneNumber,
        EntityType::SgNricFin,
        EntityType::UkNino,
        EntityType::UrlCredentials,
        EntityType::UsSsn,
    ];

    /// The wire name (`CREDIT_CARD`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::CreditCard => "CREDIT_CARD",
            EntityType::IbanCode => "IBAN_CODE",
            EntityType::EmailAddress => "EMAIL_ADDRESS",
            EntityType::PhoneNumber => "PHONE_NUMBER",
            EntityType::SgNricFin => "SG_NRIC_FIN",
            EntityType::UkNino => "UK_NINO",
            EntityType::UsSsn => "US_SSN",
            EntityType::IpAddress => "IP_ADDRESS",
            EntityType::UrlCredentials => "URL_CREDENTIALS",
        }
    }

    /// The type with this wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// What people call it, for screens.
    pub fn label(self) -> &'static str {
        match self {
            EntityType::CreditCard => "card number",
            EntityType::IbanCode => "IBAN",
            EntityType::EmailAddress => "e-mail address",
            EntityType::PhoneNumber => "phone number",
            EntityType::SgNricFin => "NRIC/FIN",
            EntityType::UkNino => "National Insurance number",
            EntityType::UsSsn => "Social Security number",
            EntityType::IpAddress => "IP address",
            EntityType::UrlCredentials => "URL with credentials",
        }
    }

    /// Whether a text holding this type is shown only masked to staff the policy does not clear
    /// for it: numbers that open accounts or prove identity (cards, bank accounts, national ids).
    pub fn is_sensitive(self) -> bool {
        matches!(
            self,
            EntityType::CreditCard
                | EntityType::IbanCode
                | EntityType::SgNricFin
                | EntityType::UkNino
                | EntityType::UsSsn
                | EntityType::UrlCredentials
        )
    }

    /// A bit for [`PiiTypes`].
    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of entity types: what an interaction's text was found to hold (never the values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PiiTypes(u16);

impl PiiTypes {
    /// No type.
    pub const NONE: PiiTypes = PiiTypes(0);

    /// The types of `findings`.
    pub fn of(findings: &[Finding]) -> Self {
        PiiTypes(findings.iter().fold(0, |m, f| m | f.entity_type.bit()))
    }

    /// Both sets together.
    pub fn union(self, other: PiiTypes) -> PiiTypes {
        PiiTypes(self.0 | other.0)
    }

    /// Whether the set holds `t`.
    pub fn contains(self, t: EntityType) -> bool {
        self.0 & t.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The types, in wire-name order.
    pub fn iter(self) -> impl Iterator<Item = EntityType> {
        EntityType::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }

    /// The stored form: wire names joined by commas (`CREDIT_CARD,PHONE_NUMBER`), "" for none.
    pub fn to_stored(self) -> String {
        self.iter()
            .map(EntityType::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form; unknown names (from a newer version) are kept out, not guessed.
    pub fn from_stored(s: &str) -> Self {
        PiiTypes(
            s.split(',')
                .filter_map(EntityType::parse)
                .fold(0, |m, t| m | t.bit()),
        )
    }

    /// Whether any type in the set is [`EntityType::is_sensitive`].
    pub fn any_sensitive(self) -> bool {
        self.iter().any(EntityType::is_sensitive)
    }
}

/// One piece of personal data in a text: its type, its byte range (end exclusive) and how sure
/// the detector is (1.0 for checksum-confirmed numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    /// What it is.
    pub entity_type: EntityType,
    /// Its first byte.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// Confidence from 0 to 1, as Presidio scores.
    pub score: f64,
}

/// Whether `written` (a telephone number in international form, `+41 44 668 18 00`) is valid in
/// libphonenumber's metadata: the check the detector makes of such a candidate.
pub fn valid_phone(written: &str) -> bool {
    phonenumber::parse(None, written).is_ok_and(|n| phonenumber::is_valid(&n))
}

/// A finding with offsets in Unicode code points, the shape of Presidio's analyzer results.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct AnalyzerResult {
    /// What it is.
    pub entity_type: EntityType,
    /// Its first code point.
    pub start: usize,
    /// One past its last code point.
    pub end: usize,
    /// Confidence from 0 to 1.
    pub score: f64,
}

/// The languages the detector knows, each with the regions whose national telephone numbers it
/// looks for in a text of that language (numbers written with `+` or `00` are found in any).
const LANGUAGES: &[(&str, &[&str])] = &[
    ("cs", &["CZ"]),
    ("da", &["DK"]),
    ("de", &["DE", "AT", "CH", "LI", "LU"]),
    ("el", &["GR", "CY"]),
    (
        "en",
        &["US", "GB", "CA", "AU", "IE", "NZ", "SG", "IN", "ZA"],
    ),
    ("es", &["ES", "MX", "AR", "CO", "CL"]),
    ("fi", &["FI"]),
    ("fr", &["FR", "BE", "CH", "LU", "CA"]),
    ("he", &["IL"]),
    ("hi", &["IN"]),
    ("it", &["IT", "CH"]),
    ("ja", &["JP"]),
    ("ko", &["KR"]),
    ("ms", &["MY", "SG"]),
    ("nb", &["NO"]),
    ("nl", &["NL", "BE"]),
    ("no", &["NO"]),
    ("pl", &["PL"]),
    ("pt", &["PT", "BR"]),
    ("sv", &["SE", "FI"]),
    ("tr", &["TR"]),
    ("zh", &["CN", "HK", "TW", "SG"]),
];

/// The language codes [`Detector::for_language`] accepts.
pub fn languages() -> impl Iterator<Item = &'static str> {
    LANGUAGES.iter().map(|(l, _)| *l)
}

/// The most text one call examines (1 MiB): larger texts are refused, not truncated, so nothing
/// is silently left unexamined.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// A detector for texts of one language.
#[derive(Debug, Clone)]
pub struct Detector {
    regions: Vec<phonenumber::country::Id>,
}

impl Detector {
    /// The detector for `language` (an ISO 639-1 code such as `en`, or a BCP 47 tag whose
    /// primary subtag is one, such as `de-CH`).
    pub fn for_language(language: &str) -> Result<Self, ValidationError> {
        let primary = language
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let Some((_, regions)) = LANGUAGES.iter().find(|(l, _)| *l == primary) else {
            return Err(ValidationError::new(
                "language",
                format!(
                    "not a language the detector knows; one of {}",
                    languages().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        let regions = regions
            .iter()
            .filter_map(|r| r.parse::<phonenumber::country::Id>().ok())
            .collect();
        Ok(Detector { regions })
    }

    /// The personal data in `text`, in order, never overlapping (where two candidates overlap,
    /// the longer is kept: a URL's credentials over the address inside it).
    pub fn analyze(&self, text: &str) -> Vec<Finding> {
        scan::scan(text, &self.regions, true)
    }

    /// Only the sensitive findings (cards, IBANs, national ids, URLs with credentials): what a
    /// reader's view masks. Skips telephone numbers, whose validation is the costly part.
    pub fn sensitive(&self, text: &str) -> Vec<Finding> {
        let mut found = scan::scan(text, &self.regions, false);
        found.retain(|f| f.entity_type.is_sensitive());
        found
    }

    /// [`Detector::analyze`] for a text from outside, refused over [`MAX_TEXT_BYTES`].
    pub fn analyze_checked(&self, text: &str) -> Result<Vec<Finding>, ValidationError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(ValidationError::new(
                "text",
                "at most 1 MiB of text per call",
            ));
        }
        Ok(self.analyze(text))
    }
}

impl Default for Detector {
    /// The detector for English texts.
    fn default() -> Self {
        Detector {
            regions: LANGUAGES
                .iter()
                .find(|(l, _)| *l == "en")
                .map(|(_, r)| r.iter().filter_map(|r| r.parse().ok()).collect())
                .unwrap_or_default(),
        }
    }
}

/// `findings` (byte offsets into `text`, in order) with offsets in code points.
pub fn to_code_points(text: &str, findings: &[Finding]) -> Vec<AnalyzerResult> {
    let mut out = Vec::with_capacity(findings.len());
    let (mut byte, mut chars) = (0usize, 0usize);
    let mut advance = |to: usize| {
        chars += text.get(byte..to).map_or(0, |s| s.chars().count());
        byte = to;
        chars
    };
    for f in findings {
        let start = advance(f.start);
        let end = advance(f.end);
        out.push(AnalyzerResult {
            entity_type: f.entity_type,
            start,
            end,
            score: f.score,
        });
    }
    out
}

/// What happens to personal data found in a text before it is stored (per purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PiiRule {
    /// The text is stored as written (sealed like every text); readers the policy does not
    /// clear for a sensitive type see it masked.
    #[default]
    Keep,
    /// Each finding is stored masked (`•••• 4242`).
    Mask,
    /// Each finding is replaced by its type (`<CREDIT_CARD>`).
    Redact,
}

impl PiiRule {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiRule::Keep => "keep",
            PiiRule::Mask => "mask",
            PiiRule::Redact => "redact",
        }
    }

    /// The rule with this name.
    pub fn parse(s: &str) -> Option<Self> {
        [PiiRule::Keep, PiiRule::Mask, PiiRule::Redact]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// `text` with `rule` applied to `findings` (from [`Detector::analyze`] on this text).
pub fn apply<'a>(text: &'a str, findings: &[Finding], rule: PiiRule) -> Cow<'a, str> {
    if rule == PiiRule::Keep || findings.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        let (Some(before), Some(found)) = (text.get(at..f.start), text.get(f.start..f.end)) else {
            continue;
        };
        out.push_str(before);
        match rule {
            PiiRule::Mask => out.push_str(&mask(f.entity_type, found)),
            _ => {
                out.push('<');
                out.push_str(f.entity_type.as_str());
                out.push('>');
            }
        }
        at = f.end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    Cow::Owned(out)
}

/// `found` (a finding of type `t`) masked: enough left to tell two apart in a conversation
/// (the last digits of a card, the domain of an address), never enough to use it.
pub fn mask(t: EntityType, found: &str) -> String {
    let tail = |n: usize| -> String {
        let sig: Vec<char> = found.chars().filter(char::is_ascii_alphanumeric).collect();
        sig[sig.len().saturating_sub(n)..].iter().collect()
    };
    match t {
        EntityType::CreditCard => format!("•••• {}", tail(4)),
        EntityType::IbanCode => format!("{}•• •••• {}", found.get(..2).unwrap_or(""), tail(4)),
        EntityType::PhoneNumber => format!("••• ••• •• {}", tail(2)),
        EntityType::EmailAddress => match found.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}•••@{domain}")
            }
            None => "•••".into(),
        },
        EntityType::SgNricFin => format!("•••••{}", tail(4)),
        EntityType::UkNino => format!("•• •• •• {}", tail(3)),
        EntityType::UsSsn => format!("•••-••-{}", tail(4)),
        EntityType::IpAddress => {
            if found.contains(':') {
                let first = found.split(':').next().unwrap_or("");
                format!("{first}:•••")
            } else {
                let mut parts = found.split('.');
                let a = parts.next().unwrap_or("");
                let b = parts.next().unwrap_or("");
                format!("{a}.{b}.•.•")
            }
        }
        EntityType::UrlCredentials => match url::Url::parse(found) {
            Ok(u) => format!("{}://{}/•••", u.scheme(), u.host_str().unwrap_or("•••")),
            Err(_) => "•••".into(),
        },
    }
}

#[cfg(test)]
mod tests;

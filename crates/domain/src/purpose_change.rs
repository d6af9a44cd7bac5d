//! Registering and changing purposes: the DPO's input, validated before it reaches the registry.

use serde::Deserialize;

use crate::pii::PiiRule;
use crate::{DataCategory, LawfulBasis, Purpose, Role, ValidationError, normalize};

/// The top levels of the fideslang data-use taxonomy; a purpose's data use must sit under one.
pub(crate) const DATA_USE_ROOTS: [&str; 10] = [
    "analytics",
    "collect",
    "employment",
    "essential",
    "finance",
    "functional",
    "marketing",
    "personalize",
    "third_party_sharing",
    "train",
];

/// What a purpose key looks like (2 to 64 characters: lower-case letters, digits and `_`,
/// starting with a letter), as a JSON Schema pattern for the OpenAPI document.
pub const PURPOSE_KEY_PATTERN: &str = "^[a-z][a-z0-9_]{1,63}$";

/// Longest retention a purpose may declare (100 years): longer is a typo, not a policy.
const MAX_RETENTION_DAYS: i64 = 36_500;

/// The body of `POST /v1/purposes`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurposeInput {
    /// Short key used in `?purpose=`: lower-case letters, digits and `_`, starting with a letter.
    #[schema(format = "purpose-key")]
    pub key: String,
    /// The lawful basis.
    pub lawful_basis: LawfulBasis,
    /// The fideslang data use, e.g. `marketing.communications.email`.
    #[schema(format = "data-use")]
    pub data_use: String,
    /// The data categories this purpose may use.
    #[schema(min_items = 1)]
    pub categories: Vec<DataCategory>,
    /// Retention in days (1 to 36,500).
    #[serde(deserialize_with = "crate::integral::deserialize")]
    #[schema(minimum = 1, maximum = 36500)]
    pub retention_days: i64,
    /// The notice text shown to customers.
    #[schema(format = "long-text")]
    pub notice_text: String,
    /// The roles that may declare the purpose (default: the DPO alone).
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    /// What happens to personal data found in a text recorded under this purpose: `keep`,
    /// `mask` (the default) or `redact`.
    #[serde(default)]
    pub pii_rule: Option<PiiRule>,
}

/// The body of `PATCH /v1/purposes/{key}` (JSON Merge Patch; the key cannot change).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurposePatch {
    /// A new lawful basis.
    #[schema(nullable = false)]
    pub lawful_basis: Option<LawfulBasis>,
    /// A new fideslang data use.
    #[schema(format = "data-use")]
    #[schema(nullable = false)]
    pub data_use: Option<String>,
    /// New data categories (replaces the list).
    #[schema(min_items = 1)]
    #[schema(nullable = false)]
    pub categories: Option<Vec<DataCategory>>,
    /// A new retention in days (1 to 36,500).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    #[schema(minimum = 1, maximum = 36500)]
    #[schema(nullable = false)]
    pub retention_days: Option<i64>,
    /// A new notice text.
    #[schema(format = "long-text")]
    #[schema(nullable = false)]
    pub notice_text: Option<String>,
    /// The roles that may declare the purpose (replaces the list).
    #[schema(nullable = false)]
    pub roles: Option<Vec<Role>>,
    /// A new rule for personal data found in texts (not part of the notice: no new version).
    #[schema(nullable = false)]
    pub pii_rule: Option<PiiRule>,
}

impl PurposeInput {
    /// Validates the input into a purpose at notice version 1.
    pub fn validate(self) -> Result<Purpose, ValidationError> {
        Ok(Purpose {
            key: key(&self.key)?,
            lawful_basis: self.lawful_basis,
            data_use: data_use(&self.data_use)?,
            categories: categories(self.categories)?,
            retention_days: retention(self.retention_days)?,
            notice_text: normalize::long_text("notice_text", &self.notice_text)?,
            notice_version: 1,
            roles: roles(self.roles.unwrap_or_else(|| vec![Role::Dpo]))?,
            pii_rule: self.pii_rule.unwrap_or(PiiRule::Mask),
        })
    }
}

impl PurposePatch {
    /// Whether the patch names no field at all.
    pub fn is_empty(&self) -> bool {
        self.lawful_basis.is_none()
            && self.data_use.is_none()
            && self.categories.is_none()
            && self.retention_days.is_none()
            && self.notice_text.is_none()
            && self.roles.is_none()
            && self.pii_rule.is_none()
    }

    /// Applies the patch to the current purpose. Any change to what customers are told (basis,
    /// data use, categories, retention, text) is a new notice version: consents recorded under
    /// the old one keep naming the version they were given for.
    pub fn apply(&self, current: &Purpose) -> Result<Purpose, ValidationError> {
        let mut p = current.clone();
        if let Some(b) = self.lawful_basis {
            p.lawful_basis = b;
        }
        if let Some(d) = &self.data_use {
            p.data_use = data_use(d)?;
        }
        if let Some(c) = &self.categories {
            p.categories = categories(c.clone())?;
        }
        if let Some(r) = self.retention_days {
            p.retention_days = retention(r)?;
        }
        if let Some(t) = &self.notice_text {
            p.notice_text = normalize::long_text("notice_text", t)?;
        }
        if let Some(r) = &self.roles {
            p.roles = roles(r.clone())?;
        }
        let told = Purpose {
            pii_rule: current.pii_rule,
            ..p.clone()
        };
        if told != *current {
            p.notice_version = current.notice_version + 1;
        }
        if let Some(r) = self.pii_rule {
            p.pii_rule = r;
        }
        Ok(p)
    }
}

/// The declaring roles, sorted and without repeats; at least one, and never `admin` (which reads
/// no individual's data).
fn roles(mut r: Vec<Role>) -> Result<Vec<Role>, ValidationError> {
    r.sort_unstable_by_key(|x| x.as_str());
    r.dedup();
    if r.is_empty() {
        return Err(ValidationError::new(
            "roles",
            "name at least one role that may declare the purpose",
        ));
    }
    if r.contains(&Role::Admin) || r.contains(&Role::Monitoring) {
        return Err(ValidationError::new(
            "roles",
            "admin and monitoring read no individual's data and may not declare a purpose",
        ));
    }
    Ok(r)
}

fn key(raw: &str) -> Result<String, ValidationError> {
    let ok = (2..=64).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(ValidationError::new(
            "key",
            "must be 2 to 64 characters: lower-case letters, digits and _, starting with a letter",
        ));
    }
    Ok(raw.to_owned())
}

fn data_use(raw: &str) -> Result<String, ValidationError> {
    let well_formed = raw.len() <= 200
        && raw.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    let root = raw.split('.').next().unwrap_or_default();
    if !well_formed || !DATA_USE_ROOTS.contains(&root) {
        return Err(ValidationError::new(
            "data_use",
            format!(
                "must be a fideslang data use under one of: {}",
                DATA_USE_ROOTS.join(", ")
            ),
        ));
    }
    Ok(raw.to_owned())
}

fn categories(mut c: Vec<DataCategory>) -> Result<Vec<DataCategory>, ValidationError> {
    if c.is_empty() {
        return Err(ValidationError::new(
            "categories",
            "must name at least one data category",
        ));
    }
    let mut seen = Vec::with_capacity(c.len());
    c.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
    Ok(c)
}

fn retention(days: i64) -> Result<i64, ValidationError> {
    if !(1..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(ValidationError::new(
            "retention_days",
            format!("must be 1 to {MAX_RETENTION_DAYS} days"),
        ));
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::purpose::default_purposes;

    #[test]
    fn the_rule_for_texts_is_no_new_notice() {
        let service = default_purposes().into_iter().next().unwrap();
        let patch = PurposePatch {
            pii_rule: Some(PiiRule::Redact),
            ..Default::default()
        };
        assert!(!patch.is_empty());
        let changed = patch.apply(&service).unwrap();
        assert_eq!(changed.pii_rule, PiiRule::Redact);
        assert_eq!(changed.notice_version, service.notice_version);
        assert_eq!(input().validate().unwrap().pii_rule, PiiRule::Mask);
    }

    fn input() -> PurposeInput {
        PurposeInput {
            key: "loyalty_sms".into(),
            lawful_basis: LawfulBasis::Consent,
            data_use: "marketing.communications.sms".into(),
            categories: vec![
                DataCategory::Name,
                DataCategory::PhoneNumber,
                DataCategory::Name,
            ],
            retention_days: 365,
            notice_text: "  We text you loyalty offers.  ".into(),
            roles: None,
            pii_rule: None,
        }
    }

    #[test]
    fn input_is_validated_and_normalised() {
        let p = input().validate().unwrap();
        assert_eq!(p.notice_version, 1);
        assert_eq!(p.notice_text, "We text you loyalty offers.");
        assert_eq!(
            p.categories,
            vec![DataCategory::Name, DataCategory::PhoneNumber]
        );
        for (field, bad) in [
            (
                "key",
                PurposeInput {
                    key: "Loyalty".into(),
                    ..input()
                },
            ),
            (
                "key",
                PurposeInput {
                    key: "x".into(),
                    ..input()
                },
            ),
            (
                "data_use",
                PurposeInput {
                    data_use: "selling.stuff".into(),
                    ..input()
                },
            ),
            (
                "data_use",
                PurposeInput {
                    data_use: "marketing..x".into(),
                    ..input()
                },
            ),
            (
                "categories",
                PurposeInput {
                    categories: vec![],
                    ..input()
                },
            ),
            (
                "retention_days",
                PurposeInput {
                    retention_days: 0,
                    ..input()
                },
            ),
            (
                "notice_text",
                PurposeInput {
                    notice_text: " ".into(),
                    ..input()
                },
            ),
        ] {
            assert_eq!(bad.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn a_change_is_a_new_notice_version_and_no_change_is_not() {
        let service = default_purposes().swap_remove(0);
        let same = PurposePatch {
            retention_days: Some(service.retention_days),
            ..Default::default()
        };
        assert_eq!(same.apply(&service).unwrap(), service);
        let longer = PurposePatch {
            retention_days: Some(service.retention_days + 1),
            ..Default::default()
        };
        let changed = longer.apply(&service).unwrap();
        assert_eq!(changed.notice_version, service.notice_version + 1);
        assert_eq!(changed.key, service.key);
        let bad = PurposePatch {
            retention_days: Some(-1),
            ..Default::default()
        };
        assert_eq!(bad.apply(&service).unwrap_err().field, "retention_days");
    }
}

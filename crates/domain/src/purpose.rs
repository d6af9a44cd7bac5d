//! Purposes: named reasons for processing, each with a lawful basis and the categories it may use.

use serde::{Deserialize, Serialize};

use crate::{DataCategory, Role};

/// The GDPR Article 6 lawful basis of a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LawfulBasis {
    /// The customer agreed.
    Consent,
    /// Needed to perform a contract with the customer.
    Contract,
    /// Required by law.
    LegalObligation,
    /// The business's legitimate interest, balanced against the customer's.
    LegitimateInterest,
}

/// A purpose of processing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Purpose {
    /// Short key used in `?purpose=`, e.g. `service`.
    pub key: String,
    /// The lawful basis.
    pub lawful_basis: LawfulBasis,
    /// The fideslang data use this purpose corresponds to.
    pub data_use: String,
    /// The data categories this purpose may use.
    pub categories: Vec<DataCategory>,
    /// How long data kept for this purpose is retained, in days.
    pub retention_days: i64,
    /// The notice text shown to customers.
    pub notice_text: String,
    /// The version of the notice text.
    pub notice_version: i64,
    /// The roles that may declare this purpose for a read; any other role is refused (403).
    pub roles: Vec<Role>,
    /// What happens to personal data found in a text recorded under this purpose (issue 23).
    pub pii_rule: crate::pii::PiiRule,
}

impl Purpose {
    /// Whether the Global Privacy Control signal withdraws this purpose: consent-based sale,
    /// sharing, targeted marketing or personalisation (by its fideslang data use).
    pub fn withdrawn_by_gpc(&self) -> bool {
        let root = self.data_use.split('.').next().unwrap_or_default();
        self.lawful_basis == LawfulBasis::Consent
            && matches!(root, "marketing" | "personalize" | "third_party_sharing")
    }

    /// Whether an objection (GDPR Art. 21) withdraws this purpose: consent-based marketing or
    /// personalisation (profiling), by its fideslang data use.
    pub fn withdrawn_by_objection(&self) -> bool {
        let root = self.data_use.split('.').next().unwrap_or_default();
        self.lawful_basis == LawfulBasis::Consent && matches!(root, "marketing" | "personalize")
    }
}

/// The shipped purposes' rules for personal data found in texts recorded under them: serving a
/// customer keeps what they wrote (sealed, and masked for staff not cleared for it); a text
/// recorded for marketing, personalisation or analytics has no need of a card or an account
/// number, so those are stored masked.
pub fn default_pii_rule(key: &str) -> crate::pii::PiiRule {
    match key {
        "marketing_email" | "personalisation" | "analytics" => crate::pii::PiiRule::Mask,
        _ => crate::pii::PiiRule::Keep,
    }
}

/// Who may declare each shipped purpose: serving and fulfilling for the staff who serve,
/// marketing purposes for marketing, fraud review for store managers, analytics for analysts; the
/// DPO may declare any. A purpose registered later names its own roles (the DPO alone by default).
pub fn default_roles(key: &str) -> Vec<Role> {
    use Role::*;
    let mut roles = match key {
        "service" | "order_fulfilment" => vec![SalesAssociate, StoreManager, SupportAgent, Dpo],
        "marketing_email" | "personalisation" => vec![Marketing, Dpo],
        "fraud_prevention" => vec![StoreManager, Dpo],
        "analytics" => vec![Analyst, Dpo],
        "allocation" => vec![SalesAssociate, StoreManager, Dpo],
        _ => vec![Dpo],
    };
    roles.sort_unstable_by_key(|r| r.as_str());
    roles
}

/// The purposes shipped by default. Their full management comes with the access model.
pub fn default_purposes() -> Vec<Purpose> {
    use DataCategory::*;
    use LawfulBasis::*;
    let p =
        |key: &str, basis, data_use: &str, categories: Vec<DataCategory>, days, notice: &str| {
            Purpose {
                roles: default_roles(key),
                key: key.into(),
                lawful_basis: basis,
                data_use: data_use.into(),
                categories,
                retention_days: days,
                notice_text: notice.into(),
                notice_version: 1,
                pii_rule: default_pii_rule(key),
            }
        };
    vec![
        p(
            "service",
            Contract,
            "essential.service",
            vec![
                Name,
                Email,
                PhoneNumber,
                Address,
                Language,
                Communications,
                PurchaseHistory,
            ],
            1095,
            "We use your contact details, messages and purchases to provide the service you asked for.",
        ),
        p(
            "order_fulfilment",
            Contract,
            "essential.service.operations.support",
            vec![
                Name,
                Email,
                PhoneNumber,
                Address,
                PurchaseHistory,
                Financial,
            ],
            2555,
            "We use your name, address and order to deliver what you bought and keep the records the law requires.",
        ),
        p(
            "marketing_email",
            Consent,
            "marketing.communications.email",
            vec![Name, Email, Language],
            730,
            "With your consent we send you news and offers by e-mail. You can withdraw at any time.",
        ),
        p(
            "personalisation",
            Consent,
            "personalize",
            vec![PurchaseHistory, Communications],
            365,
            "With your consent we use your purchases to recommend products. Sensitive data is never used.",
        ),
        p(
            "fraud_prevention",
            LegitimateInterest,
            "essential.fraud_detection",
            vec![
                Name,
                Email,
                PhoneNumber,
                Address,
                PurchaseHistory,
                Financial,
            ],
            1825,
            "We check purchases for fraud to protect you and us.",
        ),
        p(
            "analytics",
            LegitimateInterest,
            "analytics.reporting",
            vec![PurchaseHistory, Financial, Communications],
            730,
            "We count and aggregate purchases, amounts and contacts to understand our business, with noise added so that no answer depends on any one customer; no individual is singled out.",
        ),
        p(
            "allocation",
            LegitimateInterest,
            "essential.service",
            vec![PurchaseHistory],
            1095,
            "We use your purchase history to decide eligibility for limited allocations.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_unique_keys_and_notices() {
        let ps = default_purposes();
        let mut keys: Vec<_> = ps.iter().map(|p| p.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), ps.len());
        assert!(ps.iter().all(|p| !p.notice_text.is_empty()
            && !p.categories.is_empty()
            && p.retention_days > 0));
        assert!(
            ps.iter()
                .all(|p| !p.categories.contains(&DataCategory::HealthAndMedical))
        );
        let gpc: Vec<_> = ps
            .iter()
            .filter(|p| p.withdrawn_by_gpc())
            .map(|p| p.key.as_str())
            .collect();
        assert_eq!(gpc, ["marketing_email", "personalisation"]);
        // Marketing may declare marketing purposes only; the DPO any.
        for p in &ps {
            assert!(p.roles.contains(&Role::Dpo), "{}", p.key);
            assert_eq!(
                p.roles.contains(&Role::Marketing),
                p.data_use.starts_with("marketing") || p.data_use.starts_with("personalize"),
                "{}",
                p.key
            );
        }
    }
}

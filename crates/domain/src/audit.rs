//! Audit log entries: what is hashed into the Merkle tree, byte for byte.
//!
//! A leaf is this struct as compact JSON, fields in declaration order (serde keeps it), so the
//! bytes are reproducible and readable by any tool. It never holds a personal value, a staff
//! name or a reason's text: staff appear as a stable pseudonym, reasons by their length.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{CustomerId, OutletId, Role, Timestamp};

/// The leaf format's version.
pub const LEAF_VERSION: u8 = 1;

/// One audit entry, as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditLeaf {
    /// Format version ([`LEAF_VERSION`]).
    pub v: u8,
    /// When.
    pub time: Timestamp,
    /// Who: a stable pseudonym of the staff member or service client.
    pub principal: String,
    /// The principal's roles (any the policy can meet: the operator's and a recipient's too,
    /// which no request body may name).
    #[serde(deserialize_with = "every_role")]
    pub roles: Vec<Role>,
    /// The principal's outlets.
    pub outlets: Vec<OutletId>,
    /// What: `read`, `alert`, …
    pub action: String,
    /// About whom, if a customer.
    pub customer: Option<CustomerId>,
    /// What else the action was about: an outlet, staff member, token or purpose (by id or
    /// key), or a policy (by its SHA-256).
    pub subject: Option<String>,
    /// The declared purpose.
    pub purpose: Option<String>,
    /// The outcome per data category (`show`, `mask`, `abstract`, `withhold`).
    pub categories: BTreeMap<String, String>,
    /// The policies that decided, per category.
    pub policies: BTreeMap<String, Vec<String>>,
    /// The stated reason's length in characters (0: none). The text is never logged.
    pub reason_length: u32,
    /// The caller asked for break-glass.
    pub break_glass: bool,
    /// The overall outcome: `allow`, `deny`, or an alert's kind.
    pub outcome: String,
}

/// Roles as a leaf records them: every role in [`Role::EVERY`] by its wire name.
fn every_role<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Role>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    names
        .iter()
        .map(|n| {
            Role::EVERY
                .into_iter()
                .find(|r| r.as_str() == n)
                .ok_or_else(|| serde::de::Error::custom("unknown role"))
        })
        .collect()
}

impl AuditLeaf {
    /// The exact bytes hashed into the tree.
    pub fn to_bytes(&self) -> Vec<u8> {
        // INVARIANT: a struct of strings, numbers, lists and string-keyed maps always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes leaf bytes; `None` if they are not a leaf of this format.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(bytes)
            .ok()
            .filter(|l| l.v == LEAF_VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_round_trip_byte_for_byte() {
        let leaf = AuditLeaf {
            v: LEAF_VERSION,
            time: Timestamp(1_790_000_000_123),
            principal: "stf_0123456789abcdef".into(),
            roles: vec![Role::SalesAssociate],
            outlets: vec![OutletId::new()],
            action: "read".into(),
            customer: Some(CustomerId::new()),
            subject: None,
            purpose: Some("service".into()),
            categories: BTreeMap::from([("email".into(), "mask".into())]),
            policies: BTreeMap::from([("email".into(), vec!["p".into()])]),
            reason_length: 0,
            break_glass: false,
            outcome: "allow".into(),
        };
        let bytes = leaf.to_bytes();
        let back = AuditLeaf::from_bytes(&bytes).unwrap();
        assert_eq!(back, leaf);
        assert_eq!(back.to_bytes(), bytes);
        let mut other = bytes.clone();
        other.extend_from_slice(b" ");
        assert!(AuditLeaf::from_bytes(b"{\"v\":2}").is_none());
        // A recipient's disclosure decodes like any entry (its role is refused in bodies only).
        let mut disclosure = leaf.clone();
        disclosure.roles = vec![Role::Recipient];
        disclosure.action = "disclose".into();
        assert_eq!(
            AuditLeaf::from_bytes(&disclosure.to_bytes()),
            Some(disclosure)
        );
        assert!(
            AuditLeaf::from_bytes(&other).is_some(),
            "whitespace is tolerated on decode"
        );
    }
}

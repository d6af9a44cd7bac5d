//! Audit log entries: what is hashed into the Merkle tree, byte for byte.
//!
//! A leaf is written in the compact format of [`compact`] (version 2, about a quarter of the
//! bytes); leaves of version 1, this struct as JSON, are read as they are. It never holds a
//! personal value, a staff name or a reason's text: staff appear as a stable pseudonym, reasons
//! by their length.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{CustomerId, OutletId, Role, Timestamp};

pub mod compact;

/// The version of the leaves written now (compact; see [`compact`]).
pub const LEAF_VERSION: u8 = compact::VERSION;

/// The first version: this struct as JSON, fields in declaration order.
pub const JSON_LEAF_VERSION: u8 = 1;

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
    /// The exact bytes hashed into the tree: JSON for a leaf of version 1 (as it was written),
    /// compact for any other.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.v == JSON_LEAF_VERSION {
            // INVARIANT: a struct of strings, numbers, lists and string-keyed maps always
            // serialises.
            return serde_json::to_vec(self).unwrap_or_default();
        }
        compact::encode(self)
    }

    /// Decodes leaf bytes of either version; `None` if they are not a leaf.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (&compact::VERSION, body) => compact::decode(body),
            (b'{', _) => serde_json::from_slice::<Self>(bytes)
                .ok()
                .filter(|l| l.v == JSON_LEAF_VERSION),
            _ => None,
        }
    }

    /// The fields kept in columns beside a leaf — time (ms), action, customer — read from its
    /// bytes (`audit verify` asks it of every entry). A compact leaf is decoded as strictly as by
    /// [`AuditLeaf::from_bytes`]; a version 1 leaf is read leniently, as it always was.
    pub fn columns(bytes: &[u8]) -> Option<(i64, std::borrow::Cow<'_, str>, Option<CustomerId>)> {
        match bytes.split_first()? {
            (&compact::VERSION, body) => compact::columns(body),
            (b'{', _) => {
                let c = serde_json::from_slice::<JsonColumns<'_>>(bytes).ok()?;
                (c.v == JSON_LEAF_VERSION).then(|| (c.time.millis(), c.action, c.customer))
            }
            _ => None,
        }
    }
}

/// The columns of a version 1 leaf, borrowed where it can.
#[derive(Deserialize)]
struct JsonColumns<'a> {
    v: u8,
    time: Timestamp,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
    customer: Option<CustomerId>,
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
        other.push(0);
        assert!(
            AuditLeaf::from_bytes(&other).is_none(),
            "bytes left over are refused"
        );
        assert!(AuditLeaf::from_bytes(b"{\"v\":2}").is_none());
        // A recipient's disclosure decodes like any entry (its role is refused in bodies only).
        let mut disclosure = leaf.clone();
        disclosure.roles = vec![Role::Recipient];
        disclosure.action = "disclose".into();
        assert_eq!(
            AuditLeaf::from_bytes(&disclosure.to_bytes()),
            Some(disclosure)
        );
    }

    /// A support agent's read of a whole profile, as the service writes it.
    fn a_read() -> AuditLeaf {
        let fields = [
            "address",
            "date_of_birth",
            "email",
            "name",
            "phone",
            "preferred_language",
            "purchase_history",
            "social_handles",
        ];
        AuditLeaf {
            v: LEAF_VERSION,
            time: Timestamp(1_796_000_000_123),
            principal: "p_0123456789abcdef".into(),
            roles: vec![Role::SupportAgent],
            outlets: vec![OutletId::from_slice(&[7; 16]).unwrap()],
            action: "read".into(),
            customer: CustomerId::from_slice(&[9; 16]),
            subject: None,
            purpose: Some("service".into()),
            categories: fields
                .iter()
                .map(|f| {
                    (
                        (*f).to_owned(),
                        if *f == "date_of_birth" {
                            "withhold"
                        } else {
                            "show"
                        }
                        .to_owned(),
                    )
                })
                .collect(),
            policies: fields
                .iter()
                .map(|f| {
                    (
                        (*f).to_owned(),
                        vec![
                            "support-agent".to_owned(),
                            "purpose-limits-categories".to_owned(),
                        ],
                    )
                })
                .collect(),
            reason_length: 0,
            break_glass: false,
            outcome: "allow".into(),
        }
    }

    #[test]
    fn a_read_is_a_quarter_of_its_json() {
        let leaf = a_read();
        let compact = leaf.to_bytes();
        let json = AuditLeaf {
            v: JSON_LEAF_VERSION,
            ..leaf.clone()
        }
        .to_bytes();
        assert_eq!(compact[0], 2);
        assert_eq!(json[0], b'{');
        assert!(
            compact.len() * 4 <= json.len() + 40,
            "{} vs {}",
            compact.len(),
            json.len()
        );
        // 120 bytes; its JSON 976 (measured when written).
        assert!(compact.len() <= 128, "{} {}", compact.len(), json.len());
        assert_eq!(AuditLeaf::from_bytes(&compact), Some(leaf.clone()));
        let old = AuditLeaf::from_bytes(&json).unwrap();
        assert_eq!(old.v, JSON_LEAF_VERSION, "a version 1 leaf reads as one");
        assert_eq!(old.to_bytes(), json, "and writes back byte for byte");
        assert_eq!(
            AuditLeaf::columns(&compact),
            Some((leaf.time.millis(), "read".into(), leaf.customer))
        );
        assert_eq!(AuditLeaf::columns(&json), AuditLeaf::columns(&compact));
    }

    /// The format is for good: these bytes must keep decoding to this leaf (a code of
    /// `compact::KNOWN` moved, or the layout changed, fails here).
    #[test]
    fn a_known_leaf_has_fixed_bytes() {
        let mut leaf = a_read();
        leaf.categories.retain(|k, _| k == "email");
        leaf.policies.retain(|k, _| k == "email");
        leaf.subject = Some("x".into());
        leaf.purpose = Some("a-new-purpose".into());
        let hex: String = leaf.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "02f6a1899fc56812705f30313233343536373839616263646566010d612d6e65772d707572706f736501\
             1601070707070707070707070707070707072001090909090909090909090909090909090101780178010109\
             010102413500000d"
        );
        assert_eq!(AuditLeaf::from_bytes(&leaf.to_bytes()), Some(leaf));
    }

    #[test]
    fn known_names_are_unique_and_fit_their_slots() {
        let mut names = compact::KNOWN.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), compact::KNOWN.len());
        assert!(compact::KNOWN.len() <= compact::KNOWN_SLOTS as usize);
        for r in Role::EVERY {
            assert!(compact::KNOWN.contains(&r.as_str()), "{}", r.as_str());
        }
    }

    #[test]
    fn compact_decoding_is_strict() {
        let good = a_read().to_bytes();
        // Cut anywhere: never a leaf.
        for n in 0..good.len() {
            assert!(AuditLeaf::from_bytes(&good[..n]).is_none(), "cut at {n}");
        }
        // An unknown code.
        let mut w = a_read();
        w.action = "read".into();
        let bytes = w.to_bytes();
        let at = bytes.len() - 1;
        let mut bad = bytes.clone();
        bad[at] = 200;
        assert!(AuditLeaf::from_bytes(&bad).is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                proptest::sample::select(compact::KNOWN).prop_map(str::to_owned),
                "[a-z_.:-]{0,12}",
            ]
        }

        prop_compose! {
            fn leaf()(
                time in any::<i64>(),
                principal in ".{0,20}",
                roles in proptest::collection::vec(proptest::sample::select(Role::EVERY.to_vec()), 0..3),
                outlets in proptest::collection::vec(any::<[u8; 16]>(), 0..3),
                action in name(),
                customer in proptest::option::of(any::<[u8; 16]>()),
                subject in proptest::option::of(".{0,30}"),
                purpose in proptest::option::of(name()),
                categories in proptest::collection::btree_map(name(), name(), 0..6),
                policies in proptest::collection::btree_map(name(), proptest::collection::vec("[a-z-]{0,10}", 0..4), 0..6),
                reason_length in any::<u32>(),
                break_glass in any::<bool>(),
                outcome in name(),
            ) -> AuditLeaf {
                AuditLeaf {
                    v: LEAF_VERSION,
                    time: Timestamp(time),
                    principal,
                    roles,
                    outlets: outlets.iter().filter_map(|o| OutletId::from_slice(o)).collect(),
                    action,
                    customer: customer.and_then(|c| CustomerId::from_slice(&c)),
                    subject,
                    purpose,
                    categories,
                    policies,
                    reason_length,
                    break_glass,
                    outcome,
                }
            }
        }

        proptest! {
            #[test]
            fn every_leaf_round_trips_byte_for_byte(leaf in leaf()) {
                let bytes = leaf.to_bytes();
                let back = AuditLeaf::from_bytes(&bytes);
                prop_assert_eq!(back.as_ref(), Some(&leaf));
                prop_assert_eq!(back.map(|b| b.to_bytes()), Some(bytes.clone()));
                prop_assert_eq!(
                    AuditLeaf::columns(&bytes),
                    Some((leaf.time.millis(), leaf.action.as_str().into(), leaf.customer))
                );
            }

            /// One leaf, one way: whatever decodes is written back as the very bytes read, and
            /// `columns` (what verify checks) accepts exactly what decoding accepts.
            #[test]
            fn a_leaf_changed_anywhere_reads_as_itself_or_not_at_all(
                leaf in leaf(),
                at in any::<prop::sample::Index>(),
                byte in any::<u8>(),
            ) {
                let mut bytes = leaf.to_bytes();
                let i = at.index(bytes.len() - 1) + 1;
                bytes[i] = byte;
                let read = AuditLeaf::from_bytes(&bytes);
                if let Some(l) = &read {
                    prop_assert_eq!(l.to_bytes(), bytes.clone());
                }
                prop_assert_eq!(AuditLeaf::columns(&bytes).is_some(), read.is_some());
            }

            #[test]
            fn any_bytes_decode_or_fail_without_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                if let Some(first) = bytes.first_mut() {
                    *first = compact::VERSION;
                }
                let _ = AuditLeaf::from_bytes(&bytes);
                let _ = AuditLeaf::columns(&bytes);
            }
        }
    }
}

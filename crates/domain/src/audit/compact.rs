//! The compact leaf (version 2): the same fields as version 1's JSON, in about a quarter of
//! the bytes. The log keeps every entry for good, and a read's entry was 728 bytes of JSON
//! of which most were its keys and the same dozen names again and again.
//!
//! Layout: the byte `2`, then [`Wire`] in postcard's stable wire format (postcard 1.x:
//! varints, length-prefixed strings and lists, fields in declaration order). Every name — a
//! field, an outcome, a role, an action, a purpose, a policy id — is a number: below
//! [`KNOWN_SLOTS`] a position in [`KNOWN`] (the names the log writes all the time), from there
//! on a position in the leaf's own list of other names, each written once. Most numbers are one
//! byte. Decoding is strict: an unknown number, keys out of order or bytes left over fail it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AuditLeaf;
use crate::{CustomerId, OutletId, Role, Timestamp};

/// The compact format's version byte.
pub(super) const VERSION: u8 = 2;

/// Names with a one-byte code: a code is its position here.
///
/// INVARIANT: append only. Stored leaves refer to these positions forever; a name moved or
/// removed would change what every earlier leaf says. A name missing here is simply written out.
pub const KNOWN: &[&str] = &[
    // Profile fields and the other decided parts of a customer's data.
    "name",
    "email",
    "phone",
    "address",
    "date_of_birth",
    "preferred_language",
    "social_handles",
    "purchase_history",
    "communications",
    // Outcomes, per category and overall.
    "show",
    "mask",
    "abstract",
    "withhold",
    "allow",
    "deny",
    "done",
    "denied",
    "written",
    "destroyed",
    "refused",
    // Roles.
    "sales_associate",
    "store_manager",
    "support_agent",
    "marketing",
    "dpo",
    "admin",
    "monitoring",
    "mail_gateway",
    "analyst",
    "social_connector",
    "operator",
    "recipient",
    // Actions.
    "read",
    "disclose",
    "alert",
    "create_customer",
    "update_customer",
    "add_interaction",
    "add_purchase",
    "grant_consent",
    "withdraw_consent",
    "sign_in",
    "sign_out",
    "erase",
    "restrict",
    "merge",
    // Purposes.
    "service",
    "order_fulfilment",
    "marketing_email",
    "personalisation",
    "analytics",
    "fraud_review",
    "support",
    // The built-in policies' ids (`marketing`, `personalisation`, `analytics` and `operator`
    // are above).
    "purpose-limits-categories",
    "purpose-bound-to-roles",
    "recipients-only-under-agreement",
    "recipients-not-restricted",
    "pseudonymous-no-direct-identifiers",
    "consent-required",
    "restriction",
    "acknowledgement-required",
    "no-special-categories-in-personalisation",
    "outlet-staff-own-customers",
    "outlet-staff-other-customers",
    "manager-fraud-review",
    "support-agent",
    "staff-messages",
    "messages-not-by-reason",
    "dpo-with-reason",
    "break-glass",
    "recipient-under-agreement",
    "record-customers",
    "update-customers",
    "record-purchases",
    "marketing-consent",
    "directory-admin",
    "dpo-purposes",
    "dpo-alerts",
    "access-log",
    "dpo-erasure",
    "dpo-recipients",
    "analyze-text",
    "sensitive-texts",
    "social-connector",
    "dpo-notice",
    "merge-duplicates",
    "merge-not-restricted",
    "rights-requests",
    "dpo-identity-in-person",
    "dpo-audit",
    "metrics",
    "segments",
    "segment-evaluation",
    "campaigns",
    "mail-gateway",
    "surveys",
    "analytics-only-in-aggregates",
    "directory-readers",
];

/// Numbers below this are positions in [`KNOWN`]; from it on, in a leaf's own names. Under
/// 128, so that every known name is one byte (a varint); [`KNOWN`] may grow up to it.
pub const KNOWN_SLOTS: u32 = 120;

/// The numbers of the names one leaf writes, and its own list of names not in [`KNOWN`].
#[derive(Default)]
struct Numbering<'a> {
    others: Vec<&'a str>,
}

impl<'a> Numbering<'a> {
    fn of(&mut self, name: &'a str) -> u32 {
        if let Some(i) = KNOWN.iter().position(|k| *k == name) {
            return i as u32;
        }
        let at = match self.others.iter().position(|o| *o == name) {
            Some(at) => at,
            None => {
                self.others.push(name);
                self.others.len() - 1
            }
        };
        // INVARIANT: a leaf names a few dozen things; four billion names would not fit in
        // memory, so the number is exact.
        KNOWN_SLOTS.saturating_add(u32::try_from(at).unwrap_or(u32::MAX))
    }
}

/// The name of number `n` in a leaf whose own names are `others`.
fn name_of<'a>(n: u32, others: &[&'a str]) -> Option<&'a str> {
    match n.checked_sub(KNOWN_SLOTS) {
        None => KNOWN.get(n as usize).copied(),
        Some(i) => others.get(i as usize).copied(),
    }
}

/// A leaf as written after the version byte.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    time: i64,
    principal: &'a str,
    /// The names not in [`KNOWN`], once each, numbered from [`KNOWN_SLOTS`] on.
    #[serde(borrow)]
    others: Vec<&'a str>,
    roles: Vec<u32>,
    outlets: Vec<[u8; 16]>,
    action: u32,
    customer: Option<[u8; 16]>,
    subject: Option<&'a str>,
    purpose: Option<u32>,
    /// Category and outcome, by category.
    categories: Vec<(u32, u32)>,
    /// Category and its deciding policies, by category.
    policies: Vec<(u32, Vec<u32>)>,
    reason_length: u32,
    break_glass: bool,
    outcome: u32,
}

/// The compact bytes of `leaf` (its `v` is not consulted: the bytes say version 2).
pub(super) fn encode(leaf: &AuditLeaf) -> Vec<u8> {
    let mut n = Numbering::default();
    let roles = leaf.roles.iter().map(|r| n.of(r.as_str())).collect();
    let action = n.of(&leaf.action);
    let purpose = leaf.purpose.as_deref().map(|p| n.of(p));
    let categories = leaf
        .categories
        .iter()
        .map(|(k, v)| (n.of(k), n.of(v)))
        .collect();
    let policies = leaf
        .policies
        .iter()
        .map(|(k, ps)| (n.of(k), ps.iter().map(|p| n.of(p)).collect()))
        .collect();
    let outcome = n.of(&leaf.outcome);
    let wire = Wire {
        time: leaf.time.millis(),
        principal: &leaf.principal,
        others: n.others,
        roles,
        outlets: leaf.outlets.iter().map(|o| *o.as_bytes()).collect(),
        action,
        customer: leaf.customer.map(|c| *c.as_bytes()),
        subject: leaf.subject.as_deref(),
        purpose,
        categories,
        policies,
        reason_length: leaf.reason_length,
        break_glass: leaf.break_glass,
        outcome,
    };
    let mut out = vec![VERSION];
    // INVARIANT: postcard serialises these types into a Vec without fail.
    if let Ok(body) = postcard::to_allocvec(&wire) {
        out.extend_from_slice(&body);
    }
    out
}

/// Keys strictly in order, as a map writes them: one way to write a leaf's maps.
fn in_order<'s>(keys: impl Iterator<Item = &'s str>) -> bool {
    let mut last: Option<&str> = None;
    for k in keys {
        if last.is_some_and(|l| l >= k) {
            return false;
        }
        last = Some(k);
    }
    true
}

/// Exactly one [`Wire`] in `body`.
fn wire(body: &[u8]) -> Option<Wire<'_>> {
    let (w, rest): (Wire<'_>, _) = postcard::take_from_bytes(body).ok()?;
    rest.is_empty().then_some(w)
}

/// Whether `w`, read from `body`, is written exactly as [`encode`] would write its leaf: one
/// leaf, one way. Postcard would also read overlong varints, a known name written out, names
/// out of their order of first use or never used, maps out of order: none is accepted. Checked
/// on the wire itself, without building the leaf (`audit verify` asks it of every entry).
fn canonical(w: &Wire<'_>, body: &[u8]) -> bool {
    // Names in the order `encode` numbers them: each number is a known name or the next (or an
    // earlier) of the leaf's own, which are not known names and not repeated.
    let order = w
        .roles
        .iter()
        .chain(std::iter::once(&w.action))
        .chain(w.purpose.iter())
        .chain(w.categories.iter().flat_map(|(k, v)| [k, v]))
        .chain(
            w.policies
                .iter()
                .flat_map(|(k, ps)| std::iter::once(k).chain(ps.iter())),
        )
        .chain(std::iter::once(&w.outcome));
    let mut introduced = 0usize;
    for &n in order {
        match n.checked_sub(KNOWN_SLOTS) {
            None if (n as usize) < KNOWN.len() => {}
            None => return false,
            Some(i) if (i as usize) < introduced => {}
            Some(i) if i as usize == introduced => {
                let Some(o) = w.others.get(introduced) else {
                    return false;
                };
                if KNOWN.contains(o) || w.others[..introduced].contains(o) {
                    return false;
                }
                introduced += 1;
            }
            Some(_) => return false,
        }
    }
    if introduced != w.others.len() {
        return false;
    }
    let name = |n: u32| name_of(n, &w.others).unwrap_or_default();
    if !in_order(w.categories.iter().map(|(k, _)| name(*k)))
        || !in_order(w.policies.iter().map(|(k, _)| name(*k)))
        || !w
            .roles
            .iter()
            .all(|r| Role::EVERY.iter().any(|e| e.as_str() == name(*r)))
    {
        return false;
    }
    // The varints as short as they go: the same wire written again is the same bytes.
    let mut buf = [0u8; 1024];
    match postcard::to_slice(w, &mut buf) {
        Ok(again) => again == body,
        Err(_) => postcard::to_allocvec(w).is_ok_and(|again| again == body),
    }
}

/// The leaf in `body` (the bytes after the version byte), only if it is written exactly as
/// [`encode`] writes it (see [`canonical`]).
pub(super) fn decode(body: &[u8]) -> Option<AuditLeaf> {
    let w = wire(body)?;
    if !canonical(&w, body) {
        return None;
    }
    leaf_of(&w)
}

#[cfg(test)]
fn decode_loosely(body: &[u8]) -> Option<AuditLeaf> {
    leaf_of(&wire(body)?)
}

fn leaf_of(w: &Wire<'_>) -> Option<AuditLeaf> {
    let name = |n: u32| name_of(n, &w.others);
    let owned = |n: u32| name(n).map(str::to_owned);
    let roles = w
        .roles
        .iter()
        .map(|n| {
            let t = name(*n)?;
            Role::EVERY.into_iter().find(|r| r.as_str() == t)
        })
        .collect::<Option<Vec<_>>>()?;
    let categories = w
        .categories
        .iter()
        .map(|(k, v)| Some((name(*k)?, owned(*v)?)))
        .collect::<Option<Vec<_>>>()?;
    let policies = w
        .policies
        .iter()
        .map(|(k, ps)| {
            Some((
                name(*k)?,
                ps.iter().map(|p| owned(*p)).collect::<Option<Vec<_>>>()?,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    // Keys in order are checked by `canonical` (a loose read, in tests only, keeps the last).
    Some(AuditLeaf {
        v: VERSION,
        time: Timestamp(w.time),
        principal: w.principal.to_string(),
        roles,
        outlets: w
            .outlets
            .iter()
            .map(|o| OutletId::from_slice(o))
            .collect::<Option<Vec<_>>>()?,
        action: owned(w.action)?,
        customer: match w.customer {
            Some(c) => Some(CustomerId::from_slice(&c)?),
            None => None,
        },
        subject: w.subject.map(str::to_owned),
        purpose: match w.purpose {
            Some(p) => Some(owned(p)?),
            None => None,
        },
        categories: categories
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<BTreeMap<_, _>>(),
        policies: policies
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<BTreeMap<_, _>>(),
        reason_length: w.reason_length,
        break_glass: w.break_glass,
        outcome: owned(w.outcome)?,
    })
}

/// The columns kept beside a compact leaf: time, action, customer; `None` unless the leaf is
/// one [`decode`] accepts.
pub(super) fn columns(body: &[u8]) -> Option<(i64, Cow<'static, str>, Option<CustomerId>)> {
    let w = wire(body)?;
    if !canonical(&w, body) {
        return None;
    }
    let action = match w.action.checked_sub(KNOWN_SLOTS) {
        None => Cow::Borrowed(*KNOWN.get(w.action as usize)?),
        Some(i) => Cow::Owned((*w.others.get(i as usize)?).to_owned()),
    };
    Some((
        w.time,
        action,
        w.customer.and_then(|c| CustomerId::from_slice(&c)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> AuditLeaf {
        AuditLeaf {
            v: VERSION,
            time: Timestamp(1),
            principal: "p_1".into(),
            roles: vec![],
            outlets: vec![],
            action: "read".into(),
            customer: None,
            subject: None,
            purpose: None,
            categories: BTreeMap::new(),
            policies: BTreeMap::new(),
            reason_length: 0,
            break_glass: false,
            outcome: "allow".into(),
        }
    }

    fn written(w: &Wire<'_>) -> Vec<u8> {
        postcard::to_allocvec(w).unwrap()
    }

    /// What postcard would read but `encode` never writes is no leaf.
    #[test]
    fn one_leaf_one_way() {
        let good = encode(&leaf());
        assert_eq!(decode(&good[1..]), Some(leaf()));
        // A known name written out.
        let mut w: Wire<'_> = postcard::from_bytes(&good[1..]).unwrap();
        w.others.push("read");
        w.action = KNOWN_SLOTS;
        assert_eq!(decode_loosely(&written(&w)), Some(leaf()));
        assert_eq!(decode(&written(&w)), None);
        // A name nobody uses.
        let mut w: Wire<'_> = postcard::from_bytes(&good[1..]).unwrap();
        w.others.push("unused");
        assert!(decode_loosely(&written(&w)).is_some());
        assert_eq!(decode(&written(&w)), None);
        // An overlong varint: `reason_length` 0 as two bytes (the field before the last two).
        let mut overlong = good[1..].to_vec();
        let at = overlong.len() - 3;
        assert_eq!(overlong[at], 0);
        overlong.splice(at..=at, [0x80, 0x00]);
        assert!(decode_loosely(&overlong).is_some());
        assert_eq!(decode(&overlong), None);
    }
}

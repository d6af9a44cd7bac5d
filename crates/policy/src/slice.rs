//! Policy slices: for one action and one set of roles, only the policies that can match.
//!
//! Cedar evaluates every policy of a set on every request, and most of the cost of a decision is
//! spent building and discarding the conditions of policies whose scope cannot match (another
//! action, a role the caller lacks). A slice drops those up front, from the scope alone: a policy
//! stays unless its action constraint excludes the action, or its principal constraint is
//! `principal in Steward::Role::"r"` for a role the caller does not have. Staff entities have
//! their roles as their only parents and roles have none, so that test is exact. Everything else
//! (conditions, other scope forms) is left to Cedar, so a slice decides exactly as the full set.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use cedar_policy::{ActionConstraint, Entities, EntityUid, Policy, PolicySet, PrincipalConstraint};
use steward_domain::Role;

/// The roles of a caller as a bit set (bit i = `Role::EVERY[i]`).
pub(crate) fn role_bits(roles: &[Role]) -> u16 {
    roles.iter().fold(0, |bits, r| {
        bits | Role::EVERY
            .iter()
            .position(|x| x == r)
            .map_or(0, |i| 1u16 << i)
    })
}

/// Which callers and actions one policy's scope admits.
struct Scope {
    policy: Policy,
    /// `None`: any action; otherwise the action ids it names (directly or through a group).
    actions: Option<HashSet<String>>,
    /// The role the principal must have, if the scope names one.
    role: Option<u16>,
}

/// The policy set cut by action and roles, built lazily and kept.
pub(crate) struct Slices {
    /// Tests compare slices with the whole set: when present, every request gets this.
    #[cfg(test)]
    pub(crate) whole: Option<Arc<PolicySet>>,
    scopes: Vec<Scope>,
    built: RwLock<HashMap<(String, u16), Arc<PolicySet>>>,
}

impl Slices {
    /// Analyses the scopes of `set`; `actions` is the schema's action hierarchy.
    pub(crate) fn new(set: &PolicySet, actions: &Entities) -> Self {
        let scopes = set
            .policies()
            .map(|p| Scope {
                policy: p.clone(),
                actions: match p.action_constraint() {
                    ActionConstraint::Any => None,
                    ActionConstraint::Eq(a) => Some(HashSet::from([a.id().unescaped().to_owned()])),
                    ActionConstraint::In(list) => {
                        Some(covered(&list, actions).into_iter().collect())
                    }
                },
                role: match p.principal_constraint() {
                    PrincipalConstraint::In(e) if e.type_name().basename() == "Role" => {
                        Role::EVERY
                            .iter()
                            .position(|r| r.as_str() == e.id().unescaped())
                            .map(|i| 1u16 << i)
                            // A role the schema does not know: no caller has it.
                            .or(Some(0))
                    }
                    _ => None,
                },
            })
            .collect();
        Self {
            #[cfg(test)]
            whole: None,
            scopes,
            built: RwLock::new(HashMap::new()),
        }
    }

    /// The policies that can match `action` asked by a caller with `roles` (see [`role_bits`]).
    pub(crate) fn get(&self, action: &str, roles: u16) -> Arc<PolicySet> {
        #[cfg(test)]
        if let Some(w) = &self.whole {
            return w.clone();
        }
        let key = (action.to_owned(), roles);
        if let Some(s) = self.built.read().ok().and_then(|m| m.get(&key).cloned()) {
            return s;
        }
        let mut set = PolicySet::new();
        for s in &self.scopes {
            let action_fits = s.actions.as_ref().is_none_or(|a| a.contains(action));
            let role_fits = s.role.is_none_or(|r| r & roles != 0);
            if action_fits && role_fits {
                // INVARIANT: ids are unique in the source set, so adding cannot conflict.
                let _ = set.add(s.policy.clone());
            }
        }
        let set = Arc::new(set);
        if let Ok(mut m) = self.built.write() {
            m.insert(key, set.clone());
        }
        set
    }
}

/// Every action id in `list` or below one of its groups.
fn covered(list: &[EntityUid], actions: &Entities) -> Vec<String> {
    let named: HashSet<&EntityUid> = list.iter().collect();
    let mut out: Vec<String> = list.iter().map(|a| a.id().unescaped().to_owned()).collect();
    for e in actions.iter() {
        let uid = e.uid();
        if actions
            .ancestors(&uid)
            .is_some_and(|mut up| up.any(|a| named.contains(a)))
        {
            out.push(uid.id().unescaped().to_owned());
        }
    }
    out
}

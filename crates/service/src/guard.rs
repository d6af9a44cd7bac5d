//! The bulk-access guard: a principal that reads more distinct customers in a sliding window
//! than its roles allow is refused from then on (for one window), and the DPO is alerted — the
//! scraping risk of seed 003.
//!
//! State is in memory, per server process. Only principals with a limit keep state, and at most
//! `limit + 1` customers each. Servers on one PostgreSQL database also count every customer new
//! to a principal for the installation (`shared_limits`), so a reader spread over several
//! servers meets one limit.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use steward_domain::{CustomerId, Role};

/// What the guard says about one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardOutcome {
    /// Within the limit.
    Allowed,
    /// Over the limit; `newly` is true for the read that crossed it (alert then).
    Refused {
        /// This read tripped the guard.
        newly: bool,
    },
}

#[derive(Default)]
struct Window {
    last_read: HashMap<CustomerId, Instant>,
    refused_until: Option<Instant>,
}

/// Distinct customers an hour, by default, for every role that reads individuals' data (admins
/// and analysts read none). Only an explicit `--bulk-limit ROLE=none` lifts one. A recipient
/// (issue 22) counts per token, like a service client.
pub const DEFAULT_LIMITS: [(Role, usize); 6] = [
    (Role::SalesAssociate, 200),
    (Role::StoreManager, 300),
    (Role::SupportAgent, 500),
    (Role::Marketing, 500),
    (Role::Dpo, 500),
    (Role::Recipient, 1000),
];

/// Per-role limits on distinct customers per window.
pub struct BulkGuard {
    limits: RwLock<HashMap<Role, usize>>,
    window: Duration,
    state: Mutex<HashMap<String, Window>>,
}

impl Default for BulkGuard {
    fn default() -> Self {
        Self {
            limits: RwLock::new(HashMap::from(DEFAULT_LIMITS)),
            window: Duration::from_secs(3600),
            state: Mutex::new(HashMap::new()),
        }
    }
}

impl BulkGuard {
    /// Sets the limit for a role (`None`: unlimited).
    pub fn set_limit(&self, role: Role, limit: Option<usize>) {
        if let Ok(mut l) = self.limits.write() {
            match limit {
                Some(n) => l.insert(role, n),
                None => l.remove(&role),
            };
        }
    }

    /// The limit for a principal with `roles`: the most restrictive of its roles that have one
    /// (a second, unlimited role never lifts the first's limit); `None` if none has one. A lock
    /// poisoned by a panic limits to nothing (fail closed).
    fn limit_for(&self, roles: &[Role]) -> Option<usize> {
        let Ok(limits) = self.limits.read() else {
            return Some(0);
        };
        roles.iter().filter_map(|r| limits.get(r).copied()).min()
    }

    /// Counts a read of `customer` by `who` at `now`.
    pub fn check(
        &self,
        who: &str,
        roles: &[Role],
        customer: CustomerId,
        now: Instant,
    ) -> GuardOutcome {
        self.check_new(who, roles, customer, now).0
    }

    /// [`BulkGuard::check`], and for an allowed read of a customer `who` had not read in the
    /// window here, the limit and the window it is counted under (for the installation-wide
    /// count of `shared_limits`).
    pub(crate) fn check_new(
        &self,
        who: &str,
        roles: &[Role],
        customer: CustomerId,
        now: Instant,
    ) -> (GuardOutcome, Option<(usize, Duration)>) {
        let Some(limit) = self.limit_for(roles) else {
            return (GuardOutcome::Allowed, None);
        };
        let Ok(mut state) = self.state.lock() else {
            return (GuardOutcome::Refused { newly: false }, None);
        };
        let w = state.entry(who.to_owned()).or_default();
        if w.refused_until.is_some_and(|t| now < t) {
            return (GuardOutcome::Refused { newly: false }, None);
        }
        w.refused_until = None;
        let window = self.window;
        if w.last_read.len() >= limit && !w.last_read.contains_key(&customer) {
            // Only when the count matters: forget reads older than the window.
            w.last_read.retain(|_, t| now.duration_since(*t) < window);
        }
        let new = w
            .last_read
            .insert(customer, now)
            .is_none_or(|t| now.duration_since(t) >= window);
        if w.last_read.len() > limit {
            w.refused_until = Some(now + window);
            w.last_read.clear();
            return (GuardOutcome::Refused { newly: true }, None);
        }
        (GuardOutcome::Allowed, new.then_some((limit, window)))
    }

    /// Refuses `who` from `now` for one window (the installation's count tripped).
    pub(crate) fn refuse(&self, who: &str, now: Instant) {
        if let Ok(mut state) = self.state.lock() {
            let w = state.entry(who.to_owned()).or_default();
            w.refused_until = Some(now + self.window);
            w.last_read.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_for_a_window() {
        let g = BulkGuard::default();
        g.set_limit(Role::SalesAssociate, Some(2));
        let (a, b, c) = (CustomerId::new(), CustomerId::new(), CustomerId::new());
        let t0 = Instant::now();
        let roles = [Role::SalesAssociate];
        assert_eq!(g.check("s1", &roles, a, t0), GuardOutcome::Allowed);
        assert_eq!(
            g.check("s1", &roles, a, t0),
            GuardOutcome::Allowed,
            "re-reads are not new customers"
        );
        assert_eq!(g.check("s1", &roles, b, t0), GuardOutcome::Allowed);
        assert_eq!(
            g.check("s2", &roles, c, t0),
            GuardOutcome::Allowed,
            "counted per principal"
        );
        assert_eq!(
            g.check("s1", &roles, c, t0),
            GuardOutcome::Refused { newly: true }
        );
        assert_eq!(
            g.check("s1", &roles, a, t0),
            GuardOutcome::Refused { newly: false },
            "refused from then on"
        );
        let later = t0 + Duration::from_secs(3601);
        assert_eq!(
            g.check("s1", &roles, a, later),
            GuardOutcome::Allowed,
            "for one window"
        );
        // Issue 15, finding 11: a second role never lifts the first's limit, whether it has a
        // larger one (support agent) or none (analyst); a role that reads nobody stays unlimited.
        for other in [Role::SupportAgent, Role::Analyst] {
            let who = format!("sales+{}", other.as_str());
            let roles = [Role::SalesAssociate, other];
            assert_eq!(
                g.check(&who, &roles, CustomerId::new(), t0),
                GuardOutcome::Allowed
            );
            assert_eq!(
                g.check(&who, &roles, CustomerId::new(), t0),
                GuardOutcome::Allowed
            );
            assert_eq!(
                g.check(&who, &roles, CustomerId::new(), t0),
                GuardOutcome::Refused { newly: true },
                "{who} got more than the associate's 2"
            );
        }
        for _ in 0..10 {
            assert_eq!(
                g.check("analyst", &[Role::Analyst], CustomerId::new(), t0),
                GuardOutcome::Allowed
            );
        }
    }

    #[test]
    fn every_reading_role_is_limited_by_default() {
        let g = BulkGuard::default();
        let t0 = Instant::now();
        for role in [
            Role::SalesAssociate,
            Role::StoreManager,
            Role::SupportAgent,
            Role::Marketing,
            Role::Dpo,
        ] {
            let limit = g.limit_for(&[role]);
            assert!(limit.is_some_and(|n| n <= 500), "{role:?}: {limit:?}");
            let who = role.as_str();
            let refused = (0..=limit.unwrap_or(0))
                .map(|_| g.check(who, &[role], CustomerId::new(), t0))
                .filter(|o| *o != GuardOutcome::Allowed)
                .count();
            assert_eq!(refused, 1, "{role:?} read past its limit");
        }
        // Only explicit configuration lifts a limit.
        g.set_limit(Role::Marketing, None);
        assert_eq!(g.limit_for(&[Role::Marketing]), None);
    }

    #[test]
    fn old_reads_leave_the_window() {
        let g = BulkGuard::default();
        g.set_limit(Role::SalesAssociate, Some(1));
        let t0 = Instant::now();
        let roles = [Role::SalesAssociate];
        assert_eq!(
            g.check("s", &roles, CustomerId::new(), t0),
            GuardOutcome::Allowed
        );
        assert_eq!(
            g.check(
                "s",
                &roles,
                CustomerId::new(),
                t0 + Duration::from_secs(3700)
            ),
            GuardOutcome::Allowed
        );
    }
}

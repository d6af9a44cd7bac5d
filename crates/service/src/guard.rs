//! The bulk-access guard: a principal that reads more distinct customers in a sliding window
//! than its roles allow is refused from then on (for one window), and the DPO is alerted — the
//! scraping risk of seed 003.
//!
//! State is in memory, per server process: with several servers, each counts the reads it
//! serves. Only principals with a limit keep state, and at most `limit + 1` customers each.

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

/// Per-role limits on distinct customers per window.
pub struct BulkGuard {
    limits: RwLock<HashMap<Role, usize>>,
    window: Duration,
    state: Mutex<HashMap<String, Window>>,
}

impl Default for BulkGuard {
    fn default() -> Self {
        Self {
            limits: RwLock::new(HashMap::from([(Role::SalesAssociate, 200)])),
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

    /// The limit for a principal with `roles`: the most generous of its roles; a role without a
    /// limit makes it unlimited.
    fn limit_for(&self, roles: &[Role]) -> Option<usize> {
        let limits = self.limits.read().ok()?;
        let mut most = 0;
        for r in roles {
            most = most.max(*limits.get(r)?);
        }
        (!roles.is_empty()).then_some(most)
    }

    /// Counts a read of `customer` by `who` at `now`.
    pub fn check(
        &self,
        who: &str,
        roles: &[Role],
        customer: CustomerId,
        now: Instant,
    ) -> GuardOutcome {
        let Some(limit) = self.limit_for(roles) else {
            return GuardOutcome::Allowed;
        };
        let Ok(mut state) = self.state.lock() else {
            return GuardOutcome::Refused { newly: false };
        };
        let w = state.entry(who.to_owned()).or_default();
        if w.refused_until.is_some_and(|t| now < t) {
            return GuardOutcome::Refused { newly: false };
        }
        w.refused_until = None;
        if w.last_read.len() >= limit && !w.last_read.contains_key(&customer) {
            // Only when the count matters: forget reads older than the window.
            let window = self.window;
            w.last_read.retain(|_, t| now.duration_since(*t) < window);
        }
        w.last_read.insert(customer, now);
        if w.last_read.len() > limit {
            w.refused_until = Some(now + self.window);
            w.last_read.clear();
            return GuardOutcome::Refused { newly: true };
        }
        GuardOutcome::Allowed
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
        // Support agents have no limit by default; a principal with both roles neither.
        for _ in 0..10 {
            assert_eq!(
                g.check("sup", &[Role::SupportAgent], CustomerId::new(), t0),
                GuardOutcome::Allowed
            );
            assert_eq!(
                g.check(
                    "both",
                    &[Role::SalesAssociate, Role::SupportAgent],
                    CustomerId::new(),
                    t0
                ),
                GuardOutcome::Allowed
            );
        }
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

//! The installation's limits when several servers share one PostgreSQL database (issue 24): a
//! token's request rate, the brake on an address that keeps failing to sign in, and the
//! bulk-access guard hold for the installation, not per server.
//!
//! Counted in PostgreSQL, keyed by MACs under the blind-index key (never a token, an address, a
//! staff id or a customer id in clear): rates as token buckets the servers take short leases
//! from; failures as timed events and a reader's customers as timed meetings, both counted over
//! the sliding window exactly as one server counts them in memory. A server that trips a brake or
//! the guard tells the others (`cluster`), which refuse from then on without asking the database.
//! On SQLite one process counts in memory, exactly, and none of this is used.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_domain::{Timestamp, TokenId};

use steward_store::ClusterStore;

use crate::cluster::{Announcer, Change};
use crate::door::Door;
use crate::error::ServiceResult;

/// Brakes and refusals other servers announced: MAC key → until (Unix milliseconds).
#[derive(Default)]
pub(crate) struct Heard {
    brakes: Mutex<HashMap<[u8; 16], i64>>,
    bulk: Mutex<HashMap<[u8; 16], i64>>,
}

/// Entries kept before ended ones are dropped.
const KEPT: usize = 10_000;

/// Notes `key` refused until `until`, taken for no longer than `longest` from now.
fn note(map: &Mutex<HashMap<[u8; 16], i64>>, key: [u8; 16], until: i64, longest: Duration) {
    let Ok(mut m) = map.lock() else { return };
    let now = Timestamp::now().millis();
    let until = until.min(now.saturating_add(millis(longest)));
    if m.len() >= KEPT && !m.contains_key(&key) {
        m.retain(|_, u| *u > now);
        if m.len() >= KEPT {
            // Bounded: more at once than any real installation brakes. The database's count
            // still refuses on the next failure or read.
            tracing::warn!("too many brakes heard at once; this one is left to the database");
            return;
        }
    }
    let e = m.entry(key).or_insert(until);
    *e = (*e).max(until);
}

/// Milliseconds left on `key` in `map`, if any.
fn left(map: &Mutex<HashMap<[u8; 16], i64>>, key: &[u8; 16]) -> Option<Duration> {
    // A poisoned lock refuses (fail closed) for a second.
    let Ok(m) = map.lock() else {
        return Some(Duration::from_secs(1));
    };
    let now = Timestamp::now().millis();
    m.get(key)
        .filter(|u| **u > now)
        .map(|u| Duration::from_millis((*u - now).unsigned_abs()))
}

impl Heard {
    /// Brakes the address `key` until `until` (at most [`LONGEST_BRAKE`] from now).
    pub(crate) fn brake(&self, key: [u8; 16], until: i64) {
        note(&self.brakes, key, until, LONGEST_BRAKE);
    }

    /// Refuses the reader `key` until `until` (at most [`LONGEST_REFUSAL`] from now).
    pub(crate) fn refuse_bulk(&self, key: [u8; 16], until: i64) {
        note(&self.bulk, key, until, LONGEST_REFUSAL);
    }
}

/// `window` in milliseconds.
fn millis(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The longest a heard brake or refusal is taken for, whatever the word says: a brake lasts a
/// minute, a refusal a window of the guard (an hour).
pub(crate) const LONGEST_BRAKE: Duration = Duration::from_secs(300);
pub(crate) const LONGEST_REFUSAL: Duration = Duration::from_secs(2 * 3600);

/// The limits' context: what the servers of one installation count together, and what they
/// heard from each other.
pub struct SharedLimits {
    door: Arc<Door>,
    store: Arc<dyn ClusterStore>,
    /// Servers on PostgreSQL share the limits; one server on SQLite counts in memory.
    shared: bool,
    /// Brakes and bulk refusals the other servers announced.
    heard: Heard,
    announcer: Arc<Announcer>,
}

impl SharedLimits {
    /// The limits of one installation (made by the composition root).
    pub(crate) fn new(
        door: Arc<Door>,
        store: Arc<dyn ClusterStore>,
        shared: bool,
        announcer: Arc<Announcer>,
    ) -> Self {
        SharedLimits {
            door,
            store,
            shared,
            heard: Heard::default(),
            announcer,
        }
    }

    /// What the other servers announced (the cluster's listener notes it here).
    pub(crate) fn heard(&self) -> &Heard {
        &self.heard
    }

    /// Whether the limits are counted for the whole installation (servers on PostgreSQL); if
    /// not, the caller counts in memory.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// Takes up to `want` requests from token `id`'s bucket, shared by every server (filled at
    /// `per_second` up to `burst`): how many were granted, or how long until one is.
    pub async fn take_rate(
        &self,
        id: TokenId,
        per_second: f64,
        burst: f64,
        want: u32,
    ) -> ServiceResult<Result<u32, Duration>> {
        let key = self.door.mac("limit-rate", &id.to_string());
        let t = self
            .store
            .take_shared(&key, per_second, burst, want)
            .await?;
        Ok(if t.granted > 0 {
            Ok(t.granted)
        } else {
            Err(Duration::from_secs_f64(t.wait_secs.clamp(0.001, 3600.0)))
        })
    }

    /// How long `addr` stays braked because the servers together counted too many failures
    /// from it (`None`: not braked).
    pub fn brake(&self, addr: IpAddr) -> Option<Duration> {
        left(
            &self.heard.brakes,
            &self.door.mac("limit-address", &addr.to_string()),
        )
    }

    /// Counts a bad token or password from `addr` for the installation; once `allowed` are
    /// counted within `window`, every server brakes the address for the rest of the window.
    /// `Some(wait)` when this failure is itself past the allowance: the caller answers it as
    /// braked, whether or not its server has heard of the brake yet.
    pub async fn count_failure(
        &self,
        addr: IpAddr,
        allowed: u32,
        window: Duration,
    ) -> ServiceResult<Option<Duration>> {
        let key = self.door.mac("limit-address", &addr.to_string());
        let now = Timestamp::now().millis();
        let w = millis(window);
        let failures = self.store.count_event(&key, now, now - w).await?;
        if failures >= u64::from(allowed) {
            let until = now + w;
            self.heard.brake(key, until);
            self.announcer.announce(Change::Brake(key, until)).await;
        }
        Ok((failures > u64::from(allowed)).then_some(window))
    }

    /// Reserves a password guess from `addr` for the installation before it is checked: it
    /// counts as a failure at once, so guesses sent together to several servers cannot all
    /// pass before any has failed. `Err(wait)` once `allowed` are counted within `window` (the
    /// address is braked everywhere); otherwise the reservation's time, for
    /// [`SharedLimits::release_guess`] when the guess was right.
    pub async fn reserve_guess(
        &self,
        addr: IpAddr,
        allowed: u32,
        window: Duration,
    ) -> ServiceResult<Result<i64, Duration>> {
        let key = self.door.mac("limit-address", &addr.to_string());
        let now = Timestamp::now().millis();
        let w = millis(window);
        let counted = self.store.count_event(&key, now, now - w).await?;
        if counted > u64::from(allowed) {
            let until = now + w;
            self.heard.brake(key, until);
            self.announcer.announce(Change::Brake(key, until)).await;
            return Ok(Err(window));
        }
        Ok(Ok(now))
    }

    /// A guess reserved at `at` was right: it no longer counts against `addr`.
    pub async fn release_guess(&self, addr: IpAddr, at: i64) -> ServiceResult<()> {
        let key = self.door.mac("limit-address", &addr.to_string());
        self.store.take_back_event(&key, at).await?;
        Ok(())
    }

    /// Whether `who` is refused by the bulk-access guard on another server's word.
    pub(crate) fn bulk_refused_elsewhere(&self, who: &str) -> bool {
        left(&self.heard.bulk, &self.door.mac("limit-bulk", who)).is_some()
    }

    /// Counts customer `customer` read by `who` for the installation: true when the servers
    /// together have seen `who` read more than `limit` distinct customers within `window` (every
    /// server is told to refuse `who` for a window).
    pub(crate) async fn count_bulk(
        &self,
        who: &str,
        customer: steward_domain::CustomerId,
        limit: usize,
        window: Duration,
    ) -> ServiceResult<bool> {
        let key = self.door.mac("limit-bulk", who);
        let item = self.door.mac("limit-bulk-customer", &customer.to_string());
        let now = Timestamp::now().millis();
        let w = millis(window);
        let distinct = self.store.count_distinct(&key, &item, now, now - w).await?;
        if distinct > limit as u64 {
            let until = now + w;
            self.heard.refuse_bulk(key, until);
            self.announcer
                .announce(Change::BulkRefused(key, until))
                .await;
            return Ok(true);
        }
        Ok(false)
    }
}

/// How often the shared counters are pruned, and how old a window may be before it goes (two
/// bulk-guard windows: the previous one still counts).
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const KEEP_FOR: Duration = Duration::from_secs(2 * 3600);

impl SharedLimits {
    /// Prunes ended windows and idle buckets now and then while the vault lives (PostgreSQL).
    pub(crate) fn spawn_pruning(self: &Arc<Self>) {
        if !self.shared {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRUNE_EVERY).await;
                let Some(limits) = weak.upgrade() else { return };
                let before = Timestamp::now().millis()
                    - i64::try_from(KEEP_FOR.as_millis()).unwrap_or(i64::MAX);
                if let Err(e) = limits.store.prune_shared(before).await {
                    tracing::warn!(error = %e, "pruning the shared limit counters failed; next time");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heard_entries_end() {
        let h = Heard::default();
        let k = [7u8; 16];
        let now = Timestamp::now().millis();
        h.brake(k, now + 60_000);
        assert!(left(&h.brakes, &k).is_some());
        assert!(left(&h.brakes, &[8u8; 16]).is_none());
        h.refuse_bulk(k, now - 1);
        assert!(left(&h.bulk, &k).is_none(), "ended");
        h.brake([9u8; 16], i64::MAX);
        let held = left(&h.brakes, &[9u8; 16]).unwrap();
        assert!(
            held <= LONGEST_BRAKE,
            "taken for no longer than a brake lasts: {held:?}"
        );
    }
}

//! The installation's limits when several servers share one PostgreSQL database (issue 24): a
//! token's request rate, the brake on an address that keeps failing to sign in, and the
//! bulk-access guard hold for the installation, not per server.
//!
//! Counted in PostgreSQL, keyed by MACs under the blind-index key (never a token, an address or
//! a staff id in clear): rates as token buckets the servers take short leases from, failures and
//! distinct customers as windowed counters estimated over a sliding window (the current window
//! plus the share of the previous one still inside it). A server that trips a brake or the guard
//! tells the others (`cluster`), which refuse from then on without asking the database. On
//! SQLite one process counts in memory, exactly, and none of this is used.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use steward_domain::{Timestamp, TokenId};

use crate::cluster::Change;
use crate::error::ServiceResult;
use crate::vault::Vault;

/// Brakes and refusals other servers announced: MAC key → until (Unix milliseconds).
#[derive(Default)]
pub(crate) struct Heard {
    brakes: Mutex<HashMap<[u8; 16], i64>>,
    bulk: Mutex<HashMap<[u8; 16], i64>>,
}

/// Entries kept before ended ones are dropped.
const KEPT: usize = 10_000;

fn note(map: &Mutex<HashMap<[u8; 16], i64>>, key: [u8; 16], until: i64) {
    let Ok(mut m) = map.lock() else { return };
    if m.len() >= KEPT {
        let now = Timestamp::now().millis();
        m.retain(|_, u| *u > now);
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
    pub(crate) fn brake(&self, key: [u8; 16], until: i64) {
        note(&self.brakes, key, until);
    }

    pub(crate) fn refuse_bulk(&self, key: [u8; 16], until: i64) {
        note(&self.bulk, key, until);
    }
}

/// The sliding-window estimate from a fixed window's count and the previous one's: the
/// previous window weighted by how much of it still lies inside the last `window`.
fn estimate(current: u64, previous: u64, into_window: f64) -> f64 {
    current as f64 + previous as f64 * (1.0 - into_window.clamp(0.0, 1.0))
}

/// (start of the current fixed window, fraction of it gone) at `now` (milliseconds).
fn window_of(now: i64, window: Duration) -> (i64, i64, f64) {
    let w = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
    let start = now - now.rem_euclid(w);
    (start, w, (now - start) as f64 / w as f64)
}

impl Vault {
    /// Whether the limits are counted for the whole installation (servers on PostgreSQL); if
    /// not, the caller counts in memory.
    pub fn limits_shared(&self) -> bool {
        self.inner.stores.maintenance.backend() == steward_store::Backend::Postgres
    }

    /// Takes up to `want` requests from token `id`'s bucket, shared by every server (filled at
    /// `per_second` up to `burst`): how many were granted, or how long until one is.
    pub async fn take_shared_rate(
        &self,
        id: TokenId,
        per_second: f64,
        burst: f64,
        want: u32,
    ) -> ServiceResult<Result<u32, Duration>> {
        let key = self.mac("limit-rate", &id.to_string());
        let t = self
            .inner
            .stores
            .cluster
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
    pub fn shared_brake(&self, addr: IpAddr) -> Option<Duration> {
        left(
            &self.inner.heard.brakes,
            &self.mac("limit-address", &addr.to_string()),
        )
    }

    /// Counts a bad token or password from `addr` for the installation; once `allowed` are
    /// counted within `window`, every server brakes the address for the rest of the window.
    pub async fn count_shared_failure(
        &self,
        addr: IpAddr,
        allowed: u32,
        window: Duration,
    ) -> ServiceResult<()> {
        let key = self.mac("limit-address", &addr.to_string());
        let now = Timestamp::now().millis();
        let (start, w, into) = window_of(now, window);
        let (current, previous) = self
            .inner
            .stores
            .cluster
            .count_shared(&key, start, start - w, 1)
            .await?;
        if estimate(current, previous, into) >= f64::from(allowed) {
            let until = start + w;
            self.inner.heard.brake(key, until);
            self.announce(Change::Brake(key, until)).await;
        }
        Ok(())
    }

    /// Whether `who` is refused by the bulk-access guard on another server's word.
    pub(crate) fn bulk_refused_elsewhere(&self, who: &str) -> bool {
        left(&self.inner.heard.bulk, &self.mac("limit-bulk", who)).is_some()
    }

    /// Counts a customer new to `who` in the window for the installation: true when the
    /// servers together have now seen more than `limit` (every server is told to refuse `who`
    /// for the window).
    pub(crate) async fn count_shared_bulk(
        &self,
        who: &str,
        limit: usize,
        window: Duration,
    ) -> ServiceResult<bool> {
        let key = self.mac("limit-bulk", who);
        let now = Timestamp::now().millis();
        let (start, w, into) = window_of(now, window);
        let (current, previous) = self
            .inner
            .stores
            .cluster
            .count_shared(&key, start, start - w, 1)
            .await?;
        if estimate(current, previous, into) > limit as f64 {
            let until = now + w;
            self.inner.heard.refuse_bulk(key, until);
            self.announce(Change::BulkRefused(key, until)).await;
            return Ok(true);
        }
        Ok(false)
    }
}

/// How often the shared counters are pruned, and how old a window may be before it goes (two
/// bulk-guard windows: the previous one still counts).
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const KEEP_FOR: Duration = Duration::from_secs(2 * 3600);

impl Vault {
    /// Prunes ended windows and idle buckets now and then while the vault lives (PostgreSQL).
    pub(crate) fn spawn_pruning(&self) {
        if !self.limits_shared() {
            return;
        }
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRUNE_EVERY).await;
                let Some(inner) = weak.upgrade() else { return };
                let before = Timestamp::now().millis()
                    - i64::try_from(KEEP_FOR.as_millis()).unwrap_or(i64::MAX);
                if let Err(e) = inner.stores.cluster.prune_shared(before).await {
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
    fn the_estimate_weighs_the_previous_window_by_what_is_left_of_it() {
        assert_eq!(estimate(3, 10, 0.0), 13.0);
        assert_eq!(estimate(3, 10, 0.5), 8.0);
        assert_eq!(estimate(3, 10, 1.0), 3.0);
        assert_eq!(estimate(3, 10, 7.0), 3.0, "clamped");
    }

    #[test]
    fn windows_start_on_their_multiples() {
        let (start, w, into) = window_of(125_000, Duration::from_secs(60));
        assert_eq!((start, w), (120_000, 60_000));
        assert!((into - 5.0 / 60.0).abs() < 1e-9);
    }

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
    }
}

//! Several servers on one PostgreSQL database as one installation: what one server changes that
//! the others keep in memory (verified tokens, the purpose registry, notices, agreements) is
//! announced as it commits, and every server drops its copy within moments (issue 24).
//!
//! Only what is cached needs word: consent, restriction, erasure and portal sessions are read
//! from the database on every request already. While a server cannot hear the others (its feed
//! is down), it trusts no cached token: each request checks its token's row again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use steward_domain::{StaffId, TokenId};
use steward_store::{ClusterStore, Feed};

use crate::door::Door;
use crate::vault::{Inner, Vault};

/// A change another server must hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// A token was revoked.
    Token(TokenId),
    /// A staff member was disabled: every token of theirs.
    Staff(StaffId),
    /// A staff member's sign-in sessions ended (their password changed).
    Sessions(StaffId),
    /// The purpose registry, the notice, the agreements or the marked categories changed.
    Registry,
    /// An address (by MAC) failed too often: braked until (Unix milliseconds).
    Brake([u8; 16], i64),
    /// A principal (by MAC) read too many customers: refused until (Unix milliseconds).
    BulkRefused([u8; 16], i64),
}

fn hex(key: &[u8; 16]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Change {
    /// The announcement: ids only, never a name or a secret.
    fn encode(self) -> String {
        match self {
            Change::Token(id) => format!("token:{}", id.0),
            Change::Staff(id) => format!("staff:{}", id.0),
            Change::Sessions(id) => format!("sessions:{}", id.0),
            Change::Registry => "registry".to_owned(),
            Change::Brake(k, until) => format!("brake:{}:{until}", hex(&k)),
            Change::BulkRefused(k, until) => format!("bulk:{}:{until}", hex(&k)),
        }
    }

    /// `None` for what this version does not know (a newer server's word): the caller drops
    /// everything, which is always safe.
    fn decode(s: &str) -> Option<Change> {
        if s == "registry" {
            return Some(Change::Registry);
        }
        let (kind, id) = s.split_once(':')?;
        if let Some((key, until)) = id.split_once(':') {
            let (key, until) = (unhex(key)?, until.parse::<i64>().ok()?);
            return match kind {
                "brake" => Some(Change::Brake(key, until)),
                "bulk" => Some(Change::BulkRefused(key, until)),
                _ => None,
            };
        }
        let id = uuid::Uuid::parse_str(id).ok()?;
        match kind {
            "token" => Some(Change::Token(TokenId(id))),
            "staff" => Some(Change::Staff(StaffId(id))),
            "sessions" => Some(Change::Sessions(StaffId(id))),
            _ => None,
        }
    }
}

/// Whether this server hears the others (always, alone on SQLite).
pub(crate) struct Hearing(AtomicBool);

impl Hearing {
    /// Deaf until the feed is up on PostgreSQL; hearing from the start on SQLite.
    pub(crate) fn new(alone: bool) -> Self {
        Self(AtomicBool::new(alone))
    }

    /// Whether cached tokens may be trusted without a look at their rows.
    pub(crate) fn trusted(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, on: bool) {
        self.0.store(on, Ordering::Release);
    }
}

/// How long a server waits before listening again after its feed failed.
const RETRY: Duration = Duration::from_secs(1);

/// Tells the other servers of committed changes: what every context that changes a cached
/// thing (the registry, the notice, the agreements, a token) holds.
pub(crate) struct Announcer {
    door: Arc<Door>,
    store: Arc<dyn ClusterStore>,
}

impl Announcer {
    /// The announcer of one installation (made by the composition root).
    pub(crate) fn new(door: Arc<Door>, store: Arc<dyn ClusterStore>) -> Self {
        Announcer { door, store }
    }

    /// Tells the other servers of a committed change, with a MAC under the installation's key:
    /// a database login that can `NOTIFY` cannot speak for a server. Sent by a task of its own,
    /// so a request cancelled after its change committed still has it told; a failure is logged
    /// (the others catch up when their caches expire: tokens are checked against the database
    /// at least every 30 seconds, the registry every 2).
    pub(crate) async fn announce(&self, change: Change) {
        let text = self.signed(&change.encode());
        let store = self.store.clone();
        let sent = tokio::spawn(async move {
            for attempt in 0..3u64 {
                match store.announce(&text).await {
                    Ok(()) => return,
                    Err(e) if attempt == 2 => {
                        tracing::warn!(error = %e, ?change, "telling the other servers of a change failed")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await,
                }
            }
        });
        let _ = sent.await;
    }

    /// `payload` and its MAC, as announced.
    fn signed(&self, payload: &str) -> String {
        let mac: String = self
            .door
            .mac("cluster-change", payload)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{payload} {mac}")
    }

    /// The payload of an announcement whose MAC checks; `None` otherwise.
    fn authentic<'a>(&self, text: &'a str) -> Option<&'a str> {
        let (payload, _) = text.rsplit_once(' ')?;
        let expected = self.signed(payload);
        let ok = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), text.as_bytes());
        bool::from(ok).then_some(payload)
    }
}

impl Vault {
    /// Starts listening to the other servers (PostgreSQL), until the vault is dropped.
    pub(crate) fn spawn_hearing(&self) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let feed = inner.stores.cluster.changes().await;
                drop(inner);
                match feed {
                    Ok(None) => return,
                    Ok(Some(feed)) => {
                        // Anything announced before the feed was up is unknown: drop it all.
                        if !forget_everything(&weak).await {
                            return;
                        }
                        listen(feed, &weak).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot hear the other servers; will retry");
                    }
                }
                if let Some(inner) = weak.upgrade() {
                    inner.hearing.set(false);
                }
                tokio::time::sleep(RETRY).await;
            }
        });
    }
}

/// Applies what the feed says until it fails or the vault is gone.
async fn listen(mut feed: Box<dyn steward_store::ChangeFeed>, weak: &Weak<Inner>) {
    let mut last_drop: Option<std::time::Instant> = None;
    loop {
        let next = feed.next().await;
        let Some(inner) = weak.upgrade() else { return };
        let vault = Vault { inner };
        match next {
            Ok(Feed::Message(m)) => match vault.inner.announcer.authentic(&m).map(Change::decode) {
                Some(Some(c)) => vault.apply(c).await,
                // A newer server's word: dropping everything is always safe, at most four
                // times a second.
                Some(None) => {
                    if last_drop.is_none_or(|t| t.elapsed() >= Duration::from_millis(250)) {
                        last_drop = Some(std::time::Instant::now());
                        vault.forget_all().await;
                    }
                }
                None => {
                    tracing::warn!(
                        "ignored a change announced without this installation's MAC (someone else can NOTIFY on the database)"
                    );
                }
            },
            Ok(Feed::Gap) => {
                tracing::warn!("lost the other servers' word for a moment; dropped every cache");
                vault.forget_all().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the other servers' word stopped; listening again");
                return;
            }
        }
    }
}

/// [`Vault::forget_all`], then hearing again; false once the vault is gone.
async fn forget_everything(weak: &Weak<Inner>) -> bool {
    let Some(inner) = weak.upgrade() else {
        return false;
    };
    let vault = Vault { inner };
    vault.forget_all().await;
    vault.inner.hearing.set(true);
    true
}

impl Vault {
    async fn apply(&self, change: Change) {
        match change {
            Change::Token(_) | Change::Staff(_) | Change::Sessions(_) => {
                self.inner.identity.forget(change)
            }
            Change::Registry => self.reload_registry().await,
            Change::Brake(key, until) => self.inner.limits.heard().brake(key, until),
            Change::BulkRefused(key, until) => self.inner.limits.heard().refuse_bulk(key, until),
        }
    }

    /// Drops every verified token (each is checked again at its next use) and re-reads the
    /// registry.
    async fn forget_all(&self) {
        self.inner.identity.forget_every();
        self.reload_registry().await;
    }

    /// Re-reads what [`Change::Registry`] covers; a failure leaves the periodic refresh to it.
    pub(crate) async fn reload_registry(&self) {
        let inner = &self.inner;
        if let Err(e) = inner.purposes.reload().await {
            tracing::warn!(error = %e, "re-reading the purpose registry failed; will retry");
        }
        if let Err(e) = inner.notices.reload().await {
            tracing::warn!(error = %e, "re-reading the confidentiality notice failed; will retry");
        }
        if let Err(e) = inner.agreements.reload().await {
            tracing::warn!(error = %e, "re-reading the agreements failed; will retry");
        }
        if let Err(e) = self.personalisation().reload_marked().await {
            tracing::warn!(error = %e, "re-reading the marked categories failed; will retry");
        }
    }
}

/// How often the registry (purposes, notice, agreements, marked categories) is read again, so
/// that a purpose changed through another server on the same database is enforced here too.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Re-reads the registry every [`REFRESH_EVERY`] while the vault lives.
pub(crate) fn spawn_refresh(inner: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else { break };
            Vault { inner }.reload_registry().await;
        }
    });
}

/// Whether this server can serve, as `/readyz` reports it to a load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The database answered within [`READY_WITHIN`].
    pub database: bool,
    /// The audit writer reached the log within [`READY_WITHIN`] (reads are refused without it).
    pub audit_log: bool,
    /// This server hears the other servers' changes (always true on SQLite). Not needed to
    /// serve: while deaf it checks every token against the database.
    pub hearing: bool,
}

impl Readiness {
    /// Ready when the database and the audit writer are.
    pub fn ready(&self) -> bool {
        self.database && self.audit_log
    }
}

/// How long the database and the audit writer may take to show they are well.
pub const READY_WITHIN: Duration = Duration::from_secs(3);

/// How long the database's answer to `/readyz` is reused.
const READY_CACHED: Duration = Duration::from_secs(1);

impl Vault {
    /// Whether this server can serve now: the database answers and the audit writer records.
    /// Names nobody and reads nothing personal, so it needs no caller.
    ///
    /// The database is asked at most once a second, by one caller at a time (the others wait
    /// for its answer): the endpoint needs no token, and a flood of it must not take the pool.
    pub async fn readiness(&self) -> Readiness {
        let mut last = self.inner.readiness.lock().await;
        let database = match *last {
            Some((at, ok)) if at.elapsed() < READY_CACHED => ok,
            _ => {
                let ping =
                    tokio::time::timeout(READY_WITHIN, self.inner.stores.maintenance.ping()).await;
                let ok = matches!(ping, Ok(Ok(())));
                *last = Some((std::time::Instant::now(), ok));
                ok
            }
        };
        Readiness {
            database,
            audit_log: self.door().audit().writing(READY_WITHIN),
            hearing: self.inner.hearing.trusted(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_reads_back_as_itself() {
        let id = uuid::Uuid::now_v7();
        for c in [
            Change::Token(TokenId(id)),
            Change::Staff(StaffId(id)),
            Change::Sessions(StaffId(id)),
            Change::Registry,
            Change::Brake([0xa5; 16], 1_780_000_000_000),
            Change::BulkRefused([3; 16], 7),
        ] {
            assert_eq!(Change::decode(&c.encode()), Some(c));
        }
    }

    #[test]
    fn unknown_word_is_not_taken_for_a_change() {
        for s in [
            "",
            "token",
            "token:",
            "token:nope",
            "roles:x",
            "registry2",
            "brake:00:1",
            "brake:zz000000000000000000000000000000:1",
            "brake:00000000000000000000000000000000:x",
            "other:00000000000000000000000000000000:1",
        ] {
            assert_eq!(Change::decode(s), None, "{s}");
        }
    }
}

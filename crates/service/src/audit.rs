//! The audit log: every decision and alert appended as a leaf of an RFC 6962 Merkle tree, with
//! signed checkpoints (C2SP tlog-checkpoint in a signed note) and proofs anyone can check.
//!
//! Group commit: callers queue their entries for one writer, which appends whatever has queued
//! up in one transaction (locking the head, so several servers on one PostgreSQL database never
//! fork the log) and then releases every caller in the batch (see `Shared`). A caller never goes
//! on before its entry is committed, and if the commit fails the caller fails. A checkpoint is
//! signed inside an append at most once a second, when appends pause, and on demand when the latest is older
//! than the log. Verification is in `audit_verify`, exports in `audit_export`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward_crypto::merkle::{self, Hash};
use steward_crypto::{Checkpoint, NoteSigner};
use steward_domain::AuditLeaf;
use steward_store::{AuditAppender, AuditEntryRow, AuditExtension, AuditSealer, AuditStore};
use tokio::sync::oneshot;

use crate::error::{ServiceError, ServiceResult};

/// Most entries in one append.
const BATCH: usize = 500;
/// Least time between checkpoints signed by appends.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Extends the tree and signs checkpoints, inside the store's append transaction.
pub struct TreeSealer {
    signer: NoteSigner,
    last_signed: Mutex<Option<Instant>>,
    /// This process holds the signer's lease: of the servers sharing a log, only the holder
    /// signs checkpoints (issue 24), so one key signs one sequence and a verifier sees no
    /// second signer. Always on SQLite.
    signing: std::sync::atomic::AtomicBool,
}

impl TreeSealer {
    /// A sealer signing with `signer` (at most one checkpoint a second).
    pub fn new(signer: NoteSigner) -> Self {
        Self {
            signer,
            last_signed: Mutex::new(None),
            signing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether this process signs checkpoints now.
    fn signs(&self) -> bool {
        self.signing.load(std::sync::atomic::Ordering::Acquire)
    }

    fn checkpoint_note(&self, size: u64, root: Hash) -> String {
        let body = Checkpoint {
            origin: self.signer.name().to_owned(),
            size,
            root,
        };
        self.signer.sign(&body.to_text())
    }
}

impl AuditSealer for TreeSealer {
    fn frontier(&self, size: u64) -> Vec<u64> {
        merkle::frontier(size)
    }

    fn written_at(&self, index: u64) -> (u64, usize) {
        merkle::written_at(index)
    }

    fn extend(&self, size: u64, edge: &[Hash], leaves: &[&[u8]]) -> Result<AuditExtension, String> {
        if merkle::frontier(size).len() != edge.len() {
            return Err("the frontier does not fit the size".into());
        }
        let mut edge = edge.to_vec();
        let hashes: Vec<Vec<Hash>> = (size..)
            .zip(leaves)
            .map(|(n, l)| merkle::push(&mut edge, n, merkle::leaf_hash(l)))
            .collect();
        let due = self.signs()
            && match self.last_signed.lock() {
                Ok(mut last) => {
                    let due = last.is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY);
                    if due {
                        *last = Some(Instant::now());
                    }
                    due
                }
                Err(_) => true,
            };
        let new_size = size + leaves.len() as u64;
        let root = merkle::root_of_edge(&edge);
        Ok(AuditExtension {
            hashes,
            checkpoint: due.then(|| self.checkpoint_note(new_size, root)),
            edge,
        })
    }

    fn refused(&self, seq: i64, message: &[u8]) -> AuditEntryRow {
        let digest = steward_crypto::fingerprint(message);
        crate::door::entry_with_outcome(
            ("steward:audit-writer".to_owned(), vec![], vec![]),
            OUTBOX_REFUSED,
            None,
            &[],
            crate::door::About {
                subject: Some(&format!("outbox:{seq}:{digest}")),
                purpose: None,
            },
            "written",
            "refused",
        )
    }
}

/// The action of the entry appended in place of a pending one whose tag did not check.
pub const OUTBOX_REFUSED: &str = "audit.outbox_refused";

/// Tags pending audit entries under the installation's outbox key.
#[derive(Debug)]
pub(crate) struct OutboxTags(pub(crate) steward_crypto::OutboxKey);

impl steward_store::OutboxTagger for OutboxTags {
    fn tag(&self, message: &[u8]) -> [u8; 32] {
        self.0.tag(message)
    }

    fn check(&self, message: &[u8], tag: &[u8]) -> bool {
        self.0.check(message, tag)
    }
}

/// A read's entry waiting for the next append, and its caller.
type Waiting = (AuditEntryRow, oneshot::Sender<bool>);

/// What callers and the writer share.
///
/// Group commit with a leader instead of a writer thread: the caller that finds the writer idle
/// takes it and spawns a task that appends whatever has queued, batch after batch, and puts the
/// writer back when the queue is empty. Callers arriving meanwhile only queue. A thread of its
/// own had to be woken for every batch (and on SQLite woke sqlx's worker thread four times
/// more): on two cores those wake-ups cost about as much as everything else a read does
/// (`steward bench read`).
struct Shared {
    state: Mutex<State>,
    sealer: Arc<TreeSealer>,
    health: Arc<Health>,
}

struct State {
    /// Unbounded on purpose: every caller waits for its own entry, so the queue never holds
    /// more than the requests in flight.
    queue: Vec<Waiting>,
    /// Callers waiting for the outbox to be drained.
    flushes: Vec<oneshot::Sender<bool>>,
    /// The writer while no task runs it.
    idle: Option<Writer>,
    /// A writer task died (it cannot, short of a bug): nothing can be recorded any more, so
    /// every audited action fails. Loud, and safe.
    lost: bool,
}

impl Shared {
    /// The state; a panic while it was held is the writer task's, whose guard marks it lost.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `work` and, if the writer is idle, starts a task running it.
    fn submit(self: &Arc<Self>, work: impl FnOnce(&mut State)) -> ServiceResult<()> {
        let idle = {
            let mut st = self.state();
            if st.lost {
                return Err(ServiceError::DecisionLog);
            }
            work(&mut st);
            st.idle.take()
        };
        if let Some(w) = idle {
            tokio::spawn(run_writer(self.clone(), w));
        }
        Ok(())
    }
}

/// A handle to the audit log's writer.
pub(crate) struct AuditLog {
    shared: Arc<Shared>,
    verifier_key: String,
}

impl AuditLog {
    /// Sets up the writer, idle until the first entry, and a ticker that has it drain the
    /// outbox, index and sign when nothing else wakes it.
    pub(crate) fn start(
        store: Arc<dyn AuditStore>,
        cluster: Arc<dyn steward_store::ClusterStore>,
        signer: NoteSigner,
    ) -> Self {
        let verifier_key = signer.verifier_key();
        let sealer = Arc::new(TreeSealer::new(signer));
        spawn_lease(store.clone(), cluster, Arc::downgrade(&sealer));
        let now = Instant::now();
        let store_for_index = store.clone();
        let health = Arc::new(Health::new());
        let writer = Writer {
            store,
            appender: None,
            sealer: sealer.clone(),
            tip: None,
            unsigned: false,
            last_append: now,
            last_drain: now,
            drain_failures: 0,
            health: health.clone(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Vec::new(),
                flushes: Vec::new(),
                idle: Some(writer),
                lost: false,
            }),
            sealer,
            health,
        });
        let weak = Arc::downgrade(&shared);
        spawn_indexer(store_for_index, weak.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(DRAIN_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(shared) => {
                        if shared.submit(|_| {}).is_err() {
                            return;
                        }
                    }
                    None => return,
                }
            }
        });
        Self {
            shared,
            verifier_key,
        }
    }

    /// Appends one entry; returns once it is committed.
    pub(crate) async fn append(&self, leaf: &AuditLeaf) -> ServiceResult<()> {
        let row = AuditEntryRow {
            leaf: leaf.to_bytes(),
            occurred_at: leaf.time.millis(),
            action: leaf.action.clone(),
            customer_id: leaf.customer,
        };
        let (done, committed) = oneshot::channel();
        self.shared.submit(|st| st.queue.push((row, done)))?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(ServiceError::DecisionLog),
        }
    }

    /// Moves every write's entry waiting in the outbox into the log before returning.
    pub(crate) async fn flush(&self) -> ServiceResult<()> {
        let (done, drained) = oneshot::channel();
        self.shared.submit(|st| st.flushes.push(done))?;
        match drained.await {
            Ok(true) => Ok(()),
            _ => Err(ServiceError::DecisionLog),
        }
    }

    /// Whether the writer can record: not lost, and it reached the log's database within
    /// `within` (it drains every tenth of a second while well).
    pub(crate) fn writing(&self, within: Duration) -> bool {
        !self.shared.state().lost
            && self
                .shared
                .health
                .since_drain()
                .is_some_and(|d| d <= within)
    }

    /// The note verifier key, `name+keyid+base64`.
    pub(crate) fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    fn sealer(&self) -> &TreeSealer {
        &self.shared.sealer
    }
}

/// Marks the log lost unless disarmed: dropped armed, the writer task panicked or was dropped
/// by a runtime shutting down. Its callers' senders go with it, so they fail too.
struct LostGuard(Option<Arc<Shared>>);

impl Drop for LostGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            let mut st = shared.state();
            st.lost = true;
            st.queue.clear();
            st.flushes.clear();
            if std::thread::panicking() {
                tracing::error!("the audit log writer failed; audited actions fail from now on");
            } else {
                tracing::debug!("the audit log writer stopped with its runtime");
            }
        }
    }
}

/// Runs the writer until nothing is queued, then puts it back.
async fn run_writer(shared: Arc<Shared>, mut w: Writer) {
    let mut guard = LostGuard(Some(shared.clone()));
    loop {
        gather(&shared).await;
        let (batch, flushes) = {
            let mut st = shared.state();
            let n = st.queue.len().min(BATCH);
            (
                st.queue.drain(..n).collect::<Vec<_>>(),
                std::mem::take(&mut st.flushes),
            )
        };
        let idle = batch.is_empty() && flushes.is_empty();
        let t = Instant::now();
        let n = batch.len();
        if !batch.is_empty() {
            w.append(batch).await;
        }
        let appended = t.elapsed();
        if !flushes.is_empty() || w.last_drain.elapsed() >= DRAIN_EVERY {
            let drained = w.drain().await;
            for done in flushes {
                let _ = done.send(drained);
            }
        }
        let drained = t.elapsed();
        w.sign_if_quiet().await;
        if t.elapsed() >= SLOW_TURN {
            tracing::debug!(
                entries = n,
                append_ms = appended.as_secs_f64() * 1e3,
                drain_ms = (drained - appended).as_secs_f64() * 1e3,
                sign_ms = (t.elapsed() - drained).as_secs_f64() * 1e3,
                "slow turn of the audit writer"
            );
        }
        if idle {
            let mut st = shared.state();
            // Whatever queued during the maintenance above is the next round's.
            if st.queue.is_empty() && st.flushes.is_empty() {
                st.idle = Some(w);
                guard.0 = None;
                return;
            }
        }
    }
}

/// A turn of the writer this long is logged (debug) with where its time went: every read
/// waiting for its entry waits it out.
const SLOW_TURN: Duration = Duration::from_millis(5);

/// Most times the writer lets other tasks run before an append, while its queue keeps growing.
const GATHER: usize = 8;

/// Lets the requests already running reach their append before taking a batch: an append
/// costs about the same for one entry as for fifty, so a batch taken at once would be one
/// entry long under any load. Returns as soon as a turn adds nothing (at once when idle).
async fn gather(shared: &Shared) {
    let mut queued = shared.state().queue.len();
    for _ in 0..GATHER {
        if queued >= BATCH {
            return;
        }
        tokio::task::yield_now().await;
        let now = shared.state().queue.len();
        if now == queued {
            return;
        }
        queued = now;
    }
}

/// What the writer keeps between batches.
struct Writer {
    store: Arc<dyn AuditStore>,
    /// Opened at the first append (and again after a failure).
    appender: Option<Box<dyn AuditAppender>>,
    sealer: Arc<TreeSealer>,
    /// The tip this writer left: while nobody else appends, no append needs to read the head.
    tip: Option<steward_store::AuditTip>,
    /// Entries were appended since the writer last made sure a checkpoint covers them.
    unsigned: bool,
    last_append: Instant,
    last_drain: Instant,
    /// Drains that failed in a row: said at debug level while the database is only busy, as a
    /// warning once it lasts (a row the store cannot read would stop every drain after it).
    drain_failures: u32,
    /// When the last drain went through, for readiness.
    health: Arc<Health>,
}

/// When the writer last reached the log's database: a drain runs at least every
/// [`DRAIN_EVERY`] while the writer is well, so an old mark means it is not.
pub(crate) struct Health {
    since: Instant,
    /// Milliseconds after `since` of the last successful drain; `u64::MAX` before the first.
    drained_at: std::sync::atomic::AtomicU64,
}

impl Health {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            drained_at: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    fn drained(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.drained_at
            .store(ms, std::sync::atomic::Ordering::Release);
    }

    /// How long ago the last drain went through (`None` before the first).
    fn since_drain(&self) -> Option<Duration> {
        let at = self.drained_at.load(std::sync::atomic::Ordering::Acquire);
        (at != u64::MAX).then(|| {
            self.since
                .elapsed()
                .saturating_sub(Duration::from_millis(at))
        })
    }
}

impl Writer {
    /// Appends a batch of read entries; tells each caller whether it committed.
    async fn append(&mut self, batch: Vec<Waiting>) {
        let (rows, waiters): (Vec<AuditEntryRow>, Vec<oneshot::Sender<bool>>) =
            batch.into_iter().unzip();
        let ok = match self.append_rows(&rows).await {
            Ok(t) => {
                self.tip = Some(t);
                self.appended();
                true
            }
            Err(e) => {
                tracing::error!(error = %e, entries = rows.len(), "appending to the audit log failed");
                false
            }
        };
        for done in waiters {
            let _ = done.send(ok);
        }
    }

    /// Appends `rows` through the appender, opening one if there is none; an appender that
    /// failed is dropped, so the next batch starts on a fresh connection.
    async fn append_rows(
        &mut self,
        rows: &[AuditEntryRow],
    ) -> steward_store::StoreResult<steward_store::AuditTip> {
        let mut appender = match self.appender.take() {
            Some(a) => a,
            None => self.store.audit_appender().await?,
        };
        let tip = appender
            .append(rows, self.sealer.as_ref(), self.tip.take())
            .await?;
        self.appender = Some(appender);
        Ok(tip)
    }

    fn appended(&mut self) {
        self.unsigned = true;
        self.last_append = Instant::now();
    }

    /// Moves every entry waiting in the outbox (writes, recorded with them) into the log.
    async fn drain(&mut self) -> bool {
        self.last_drain = Instant::now();
        let mut conflicts = 0;
        loop {
            match self
                .store
                .drain_audit_outbox(BATCH as u32, self.sealer.as_ref(), self.tip.take())
                .await
            {
                Ok(report) => {
                    self.tip = report.tip;
                    self.drain_failures = 0;
                    self.health.drained();
                    if !report.refused.is_empty() {
                        // Said once the stand-ins are committed, not each time one is made.
                        tracing::error!(
                            outbox_seqs = ?report.refused,
                            "REFUSED pending audit entries whose tag is missing or does not \
                             check (changed, copied or forged since they were written, or \
                             written before tags existed): stand-ins (action \
                             audit.outbox_refused) record them and the rows are kept in \
                             audit_outbox_refused"
                        );
                        metrics::counter!("steward_audit_outbox_refused_total")
                            .increment(report.refused.len() as u64);
                    }
                    if report.moved == 0 {
                        return true;
                    }
                    self.appended();
                }
                // Another server drained the same rows first (its append won the head): they
                // are in the log, so look again rather than fail a flush that waits for them.
                // Only then: any other failure (a busy database) ends the turn, as every read
                // waiting for the writer waits it out too; the entries stay for the next drain.
                Err(e @ steward_store::StoreError::Conflict) if conflicts < DRAIN_RETRIES => {
                    conflicts += 1;
                    tracing::debug!(error = %e, conflicts, "draining the audit outbox collided; again");
                    tokio::time::sleep(Duration::from_millis(20 * conflicts)).await;
                }
                Err(e) => {
                    // The database failed: the entries stay in the outbox, committed with their
                    // writes, for the next drain.
                    self.drain_failures = self.drain_failures.saturating_add(1);
                    if self.drain_failures % 100 == 10 {
                        tracing::warn!(error = %e, failures = self.drain_failures, "draining the audit outbox keeps failing: writes are not reaching the audit log");
                    } else {
                        tracing::debug!(error = %e, "draining the audit outbox did not complete");
                    }
                    return false;
                }
            }
        }
    }

    /// Signs the tail once appends have paused, so that a log at rest is all signed.
    async fn sign_if_quiet(&mut self) {
        if self.unsigned && self.last_append.elapsed() >= SIGN_WHEN_IDLE {
            if let Some(t) = &self.tip {
                sign_tail(&*self.store, &self.sealer, t).await;
            }
            self.unsigned = false;
        }
    }
}

/// How many times a drain that collided with another server's is tried again before it fails.
const DRAIN_RETRIES: u64 = 5;

/// How often the outbox of writes is moved into the log.
const DRAIN_EVERY: Duration = Duration::from_millis(100);

/// How long the writer waits for more entries before it signs a checkpoint over the tail.
const SIGN_WHEN_IDLE: Duration = Duration::from_millis(500);

/// Signs and stores a checkpoint at `tip` unless one at least that large exists.
async fn sign_tail(store: &dyn AuditStore, sealer: &TreeSealer, tip: &steward_store::AuditTip) {
    if !sealer.signs() {
        return;
    }
    let covered = match store.latest_audit_checkpoint().await {
        Ok(latest) => latest.is_some_and(|(at, _)| at >= tip.size),
        Err(e) => {
            tracing::warn!(error = %e, "reading the latest checkpoint failed");
            return;
        }
    };
    if covered {
        return;
    }
    // Over the hashes the log holds, not this writer's memory of them: a log that lost its
    // tail (a failover to a standby behind) and grew back through other servers has the same
    // size and another tree.
    if let Err(e) = sign_at(store, sealer, tip.size).await {
        tracing::warn!(error = %e, "signing a checkpoint failed; the next one covers these entries");
    }
}

/// Entries one step of the indexer indexes (one transaction of the index, one sorted run: see
/// `steward_store`'s `audit_index`).
///
/// Chosen when the index was one B-tree keyed by customer, where each step rewrote about a page
/// per entry (4,096-entry steps every 250 ms wrote ~90 MB/s; these served ~11 % more reads,
/// issue 19); kept, as the access log's unindexed tail (scanned, not looked up) grows to at most
/// about a second of entries: 1.5 ms at 16,384 against 0.2 ms at 4,096 (docs/benchmarks.md,
/// "Issue 19, continued (2026-12-07)").
const INDEX_STEP: u64 = 16_384;
/// How often the indexer looks for entries to index once it has caught up.
const INDEX_EVERY: Duration = Duration::from_secs(1);

/// Builds the by-customer index behind the log, in a task of its own, until the log's handle is
/// dropped. Not in the writer: every read waits for the writer's turn, and a step of the index
/// (random pages of its B-tree) took 7–33 ms for 256 entries, so about one read in a hundred
/// waited that long (issue 19). The index has its own file (SQLite) or connections
/// (PostgreSQL), so its steps never hold the log's lock either.
fn spawn_indexer(store: Arc<dyn AuditStore>, alive: std::sync::Weak<Shared>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INDEX_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut indexed = None;
        loop {
            tick.tick().await;
            // Checked after the wait too: once the log's handle is gone no step starts (tests
            // mutate the files under a dropped vault, and a tick is a second long).
            if alive.strong_count() == 0 {
                break;
            }
            // Steps until caught up (a step that indexes less than a full step).
            loop {
                match store.index_audit(INDEX_STEP).await {
                    Ok(w) => {
                        let moved = indexed.map_or(w, |before| w.saturating_sub(before));
                        indexed = Some(w);
                        if moved < INDEX_STEP || alive.strong_count() == 0 {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "indexing the audit log failed; will retry");
                        break;
                    }
                }
            }
        }
    });
}

/// The stored tree hashes at `indexes`, read from the entries whose appends wrote them.
pub(crate) async fn stored_hashes(
    store: &dyn AuditStore,
    indexes: &[u64],
) -> ServiceResult<std::collections::HashMap<u64, Hash>> {
    let at: Vec<(u64, (u64, usize))> = indexes
        .iter()
        .map(|i| (*i, merkle::written_at(*i)))
        .collect();
    let mut entries: Vec<u64> = at.iter().map(|(_, (e, _))| *e).collect();
    entries.sort_unstable();
    entries.dedup();
    let columns = store.audit_entry_hashes(&entries).await?;
    at.into_iter()
        .map(|(i, (e, off))| {
            let h = columns
                .get(&e)
                .and_then(|c| c.get(off * 32..off * 32 + 32))
                .and_then(|h| <Hash>::try_from(h).ok())
                .ok_or(ServiceError::Integrity)?;
            Ok((i, h))
        })
        .collect()
}

/// The latest signed checkpoint, signing one first if the log has grown past it.
///
/// Only the holder of the signer's lease signs: another server waits a moment for the holder to
/// cover the log, then answers with the latest checkpoint there is (older, still verifiable).
pub(crate) async fn checkpoint(store: &dyn AuditStore, log: &AuditLog) -> ServiceResult<String> {
    let sealer = log.sealer();
    let started = Instant::now();
    // The log as it is now: later entries are the next checkpoint's, or a busy log would keep a
    // server that does not sign waiting to the end of its wait on every call.
    let size = store.audit_size().await?;
    loop {
        let latest = store.latest_audit_checkpoint().await?;
        if let Some((at, note)) = &latest
            && *at >= size
        {
            return Ok(note.clone());
        }
        if sealer.signs() {
            return sign_at(store, sealer, store.audit_size().await?).await;
        }
        if started.elapsed() >= SIGNER_WAIT {
            return latest.map(|(_, note)| note).ok_or(ServiceError::WrongState(
                "no checkpoint signed yet: the server that signs has not covered the log",
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long a server that does not sign waits for the signer to cover the log.
const SIGNER_WAIT: Duration = Duration::from_secs(3);

/// Signs and stores a checkpoint over the first `size` entries, from their stored hashes.
async fn sign_at(store: &dyn AuditStore, sealer: &TreeSealer, size: u64) -> ServiceResult<String> {
    let stored = stored_hashes(store, &merkle::frontier(size)).await?;
    let root = merkle::root(size, &stored).map_err(|_| ServiceError::Integrity)?;
    let note = sealer.checkpoint_note(size, root);
    store.add_audit_checkpoint(size, &note).await?;
    Ok(note)
}

/// How often the signer's lease is sought, or checked while held.
const LEASE_EVERY: Duration = Duration::from_secs(1);

/// Seeks the signer's lease until this process holds it, then keeps it and signs over what the
/// other servers appended; when its connection fails the lease is given up and sought again.
/// Stops with the sealer.
fn spawn_lease(
    store: Arc<dyn AuditStore>,
    cluster: Arc<dyn steward_store::ClusterStore>,
    sealer: std::sync::Weak<TreeSealer>,
) {
    use std::sync::atomic::Ordering;
    tokio::spawn(async move {
        let mut lease: Option<Box<dyn steward_store::Lease>> = None;
        let mut signing: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let Some(s) = sealer.upgrade() else { return };
            match lease.as_mut() {
                None => match cluster.signer_lease().await {
                    Ok(Some(l)) => {
                        lease = Some(l);
                        s.signing.store(true, Ordering::Release);
                        tracing::info!("this server signs the audit log's checkpoints");
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "seeking the checkpoint signer's lease failed")
                    }
                },
                Some(l) => {
                    if !l.held().await {
                        s.signing.store(false, Ordering::Release);
                        lease = None;
                        tracing::warn!(
                            "lost the checkpoint signer's lease; another server may take it"
                        );
                        continue;
                    }
                }
            }
            // What other servers appended (they do not sign) is covered within a second, by a
            // task of its own: a slow round must not keep the lease's connection unasked past
            // its idle timeout. One round at a time.
            if lease.is_some() && signing.as_ref().is_none_or(|t| t.is_finished()) {
                let (store, s) = (store.clone(), s.clone());
                signing = Some(tokio::spawn(async move {
                    let covered = async {
                        let size = store.audit_size().await?;
                        let at = store
                            .latest_audit_checkpoint()
                            .await?
                            .map_or(0, |(at, _)| at);
                        if size > at && s.signs() {
                            sign_at(&*store, &s, size).await?;
                        }
                        Ok::<_, ServiceError>(())
                    };
                    if let Err(e) = covered.await {
                        tracing::debug!(error = %e, "signing over the log's tail failed; next second");
                    }
                }));
            }
            drop(s);
            tokio::time::sleep(LEASE_EVERY).await;
        }
    });
}

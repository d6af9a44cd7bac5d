//! The audit log: every decision and alert appended as a leaf of an RFC 6962 Merkle tree, with
//! signed checkpoints (C2SP tlog-checkpoint in a signed note) and proofs anyone can check.
//!
//! Group commit: callers hand their entries to one writer thread, which appends whatever has
//! queued up in one transaction (locking the head, so several servers on one PostgreSQL database
//! never fork the log) and then releases every caller in the batch. A caller never goes on before
//! its entry is committed, and if the commit fails the caller fails. A checkpoint is signed inside
//! an append at most once a second, and on demand when the latest is older than the log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use steward_crypto::merkle::{self, Hash};
use steward_crypto::{Checkpoint, NoteSigner, NoteVerifier};
use steward_domain::AuditLeaf;
use steward_store::{AuditEntryRow, AuditExtension, AuditSealer, DynStore, StoredAuditEntry};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ServiceError, ServiceResult};

/// Entries queued before callers wait for room (backpressure).
const QUEUE: usize = 4096;
/// Most entries in one append.
const BATCH: usize = 500;
/// Least time between checkpoints signed by appends.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

type Pending = (AuditEntryRow, oneshot::Sender<bool>);

/// Extends the tree and signs checkpoints, inside the store's append transaction.
pub(crate) struct TreeSealer {
    signer: NoteSigner,
    last_signed: Mutex<Option<Instant>>,
}

impl TreeSealer {
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

    fn extend(&self, size: u64, edge: &[Hash], leaves: &[&[u8]]) -> Result<AuditExtension, String> {
        let hashes: Vec<Hash> = leaves.iter().map(|l| merkle::leaf_hash(l)).collect();
        let a = merkle::append(size, edge, &hashes).map_err(|e| e.to_string())?;
        let due = match self.last_signed.lock() {
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
        Ok(AuditExtension {
            first_index: a.first_index,
            hashes: a.hashes,
            checkpoint: due.then(|| self.checkpoint_note(new_size, a.root)),
        })
    }
}

/// A handle to the writer thread.
pub(crate) struct AuditLog {
    tx: mpsc::Sender<Pending>,
    sealer: std::sync::Arc<TreeSealer>,
    verifier_key: String,
}

impl AuditLog {
    /// Starts the writer on a thread of its own (driving the runtime's I/O through its handle),
    /// so that an append is never queued behind the requests it is holding up.
    pub(crate) fn start(store: DynStore, signer: NoteSigner) -> Self {
        let verifier_key = signer.verifier_key();
        let sealer = std::sync::Arc::new(TreeSealer {
            signer,
            last_signed: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel::<Pending>(QUEUE);
        let handle = tokio::runtime::Handle::current();
        let writer = sealer.clone();
        let spawned = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || handle.block_on(write_batches(rx, store, writer)));
        if let Err(e) = spawned {
            // Without a writer nothing can be recorded, so every audited action fails: loud, safe.
            tracing::error!(error = %e, "cannot start the audit log writer");
        }
        Self {
            tx,
            sealer,
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
        self.tx
            .send((row, done))
            .await
            .map_err(|_| ServiceError::DecisionLog)?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(ServiceError::DecisionLog),
        }
    }

    /// The note verifier key, `name+keyid+base64`.
    pub(crate) fn verifier_key(&self) -> &str {
        &self.verifier_key
    }
}

/// Appends queued entries in batches until every sender is gone.
async fn write_batches(
    mut rx: mpsc::Receiver<Pending>,
    store: DynStore,
    sealer: std::sync::Arc<TreeSealer>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (rows, waiters): (Vec<AuditEntryRow>, Vec<oneshot::Sender<bool>>) =
            batch.into_iter().unzip();
        let ok = match store.append_audit(&rows, sealer.as_ref()).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, entries = rows.len(), "appending to the audit log failed");
                false
            }
        };
        for done in waiters {
            let _ = done.send(ok);
        }
    }
}

/// The latest signed checkpoint, signing one first if the log has grown past it.
pub(crate) async fn checkpoint(store: &DynStore, log: &AuditLog) -> ServiceResult<String> {
    let size = store.audit_size().await?;
    if let Some((at, note)) = store.latest_audit_checkpoint().await?
        && at >= size
    {
        return Ok(note);
    }
    let stored = store.audit_hashes(&merkle::frontier(size)).await?;
    let root = merkle::root(size, &stored).map_err(|_| ServiceError::Integrity)?;
    let note = log.sealer.checkpoint_note(size, root);
    store.add_audit_checkpoint(size, &note).await?;
    Ok(note)
}

/// The inclusion proof of entry `index` in the tree of `size` entries.
pub(crate) async fn inclusion(store: &DynStore, index: u64, size: u64) -> ServiceResult<Vec<Hash>> {
    check_size(store, size).await?;
    let needs = merkle::inclusion_needs(index, size)
        .map_err(|_| steward_domain::ValidationError::new("index", "must be below tree_size"))?;
    let stored = store.audit_hashes(&needs).await?;
    merkle::inclusion_proof(index, size, &stored).map_err(|_| ServiceError::Integrity)
}

/// The consistency proof from the tree of `first` entries to that of `second`.
pub(crate) async fn consistency(
    store: &DynStore,
    first: u64,
    second: u64,
) -> ServiceResult<Vec<Hash>> {
    check_size(store, second).await?;
    let needs = merkle::consistency_needs(first, second)
        .map_err(|_| steward_domain::ValidationError::new("first", "must be 1 to second"))?;
    let stored = store.audit_hashes(&needs).await?;
    merkle::consistency_proof(first, second, &stored).map_err(|_| ServiceError::Integrity)
}

async fn check_size(store: &DynStore, size: u64) -> ServiceResult<()> {
    if size == 0 || size > store.audit_size().await? {
        return Err(steward_domain::ValidationError::new(
            "tree_size",
            "must be 1 to the log's current size",
        )
        .into());
    }
    Ok(())
}

impl crate::Vault {
    /// The audit log's note verifier key (C2SP vkey: `name+keyid+base64`). Public.
    pub fn audit_verifier_key(&self) -> &str {
        self.inner.audit.verifier_key()
    }

    /// The latest signed checkpoint (a C2SP signed note), signed now if the log outgrew it.
    pub async fn audit_checkpoint(&self) -> ServiceResult<String> {
        checkpoint(&self.inner.store, &self.inner.audit).await
    }

    /// Entries `[start, end)` of the audit log (the DPO's), at most 1,000.
    pub async fn audit_entries(
        &self,
        principal: &crate::Principal,
        start: u64,
        end: u64,
    ) -> ServiceResult<Vec<StoredAuditEntry>> {
        self.authorize(principal, steward_policy::Action::ReadAudit, None)
            .await?;
        if end < start || end - start > 1000 {
            return Err(steward_domain::ValidationError::new(
                "end",
                "must be start to start + 1000",
            )
            .into());
        }
        Ok(self.inner.store.audit_entries(start, end).await?)
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries (the DPO's).
    pub async fn audit_inclusion(
        &self,
        principal: &crate::Principal,
        index: u64,
        size: u64,
    ) -> ServiceResult<Vec<Hash>> {
        self.authorize(principal, steward_policy::Action::ReadAudit, None)
            .await?;
        inclusion(&self.inner.store, index, size).await
    }

    /// The consistency proof between two tree sizes (the DPO's).
    pub async fn audit_consistency(
        &self,
        principal: &crate::Principal,
        first: u64,
        second: u64,
    ) -> ServiceResult<Vec<Hash>> {
        self.authorize(principal, steward_policy::Action::ReadAudit, None)
            .await?;
        consistency(&self.inner.store, first, second).await
    }
}

/// Verifies the audit log in `store` against the verifier key (see [`verify`]); for
/// `steward audit verify`, which needs neither the master key nor a running server.
pub async fn verify_log(
    store: &DynStore,
    verifier_key: &str,
    progress: impl FnMut(u64, u64),
) -> ServiceResult<AuditReport> {
    verify(store, verifier_key, progress).await
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// Signed checkpoints checked.
    pub checkpoints: usize,
    /// The first problem, if any: the entry index where it shows, and what.
    pub first_bad: Option<(u64, String)>,
}

/// Entries read per query while verifying.
const VERIFY_CHUNK: u64 = 20_000;

/// Recomputes the whole tree from the stored entries and compares every stored hash, every copy
/// kept beside a leaf, the head and every signed checkpoint. `progress` gets the entries done.
async fn verify(
    store: &DynStore,
    verifier_key: &str,
    mut progress: impl FnMut(u64, u64),
) -> ServiceResult<AuditReport> {
    let verifier = NoteVerifier::parse(verifier_key).map_err(|_| ServiceError::Integrity)?;
    let size = store.audit_size().await?;
    let bad = |i: u64, what: &str| AuditReport {
        entries: i,
        checkpoints: 0,
        first_bad: Some((i, what.to_owned())),
    };
    // The tree is rebuilt in memory from the leaves alone; `edge` is its right edge.
    let mut edge: Vec<Hash> = Vec::new();
    let checkpoints = store.audit_checkpoints().await?;
    let wanted: std::collections::BTreeSet<u64> = checkpoints.iter().map(|(s, _)| *s).collect();
    let mut roots = std::collections::BTreeMap::new();
    if wanted.contains(&0) {
        roots.insert(0, merkle::root_of_edge(&[]));
    }
    let mut n = 0u64;
    loop {
        let entries = store.audit_entries(n, n + VERIFY_CHUNK).await?;
        if entries.is_empty() {
            break;
        }
        let end = n + entries.len() as u64;
        let stored = store
            .audit_hash_range(merkle::leaf_index(n), merkle::stored_count(end))
            .await?;
        let mut stored = stored.iter();
        let mut next_index = merkle::leaf_index(n);
        for (expect, e) in (n..).zip(&entries) {
            if e.index != expect {
                return Ok(bad(expect, "an entry is missing or out of order"));
            }
            if let Some(why) = columns_disagree(e) {
                return Ok(bad(expect, why));
            }
            for h in merkle::push(&mut edge, expect, merkle::leaf_hash(&e.row.leaf)) {
                match stored.next() {
                    Some((i, s)) if *i == next_index && *s == h => {}
                    _ => {
                        return Ok(bad(
                            expect,
                            "a stored tree hash is missing or differs from the recomputed one",
                        ));
                    }
                }
                next_index += 1;
            }
            if wanted.contains(&(expect + 1)) {
                roots.insert(expect + 1, merkle::root_of_edge(&edge));
            }
        }
        n = end;
        progress(n, size);
    }
    if n != size {
        return Ok(bad(
            n.min(size),
            "the head's size differs from the entries stored",
        ));
    }
    let extra = store
        .audit_hash_range(merkle::stored_count(size), u64::MAX >> 2)
        .await?;
    if !extra.is_empty() {
        return Ok(bad(size, "tree hashes past the last entry"));
    }
    for (at, note) in &checkpoints {
        let Ok(c) = Checkpoint::open(note, &verifier) else {
            return Ok(bad(*at, "a checkpoint's signature does not verify"));
        };
        if c.size != *at || roots.get(at) != Some(&c.root) {
            return Ok(bad(
                (*at).min(size),
                "a signed checkpoint does not match the recomputed tree",
            ));
        }
    }
    Ok(AuditReport {
        entries: n,
        checkpoints: checkpoints.len(),
        first_bad: None,
    })
}

/// Why the columns kept beside a leaf disagree with it, if they do.
fn columns_disagree(e: &StoredAuditEntry) -> Option<&'static str> {
    let Some(leaf) = AuditLeaf::from_bytes(&e.row.leaf) else {
        return Some("a leaf is not a valid entry");
    };
    if leaf.time.millis() != e.row.occurred_at
        || leaf.action != e.row.action
        || leaf.customer != e.row.customer_id
    {
        return Some("the columns beside a leaf disagree with it");
    }
    None
}

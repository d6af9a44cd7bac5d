//! The audit log as it is read: its checkpoint, entries, proofs and each customer's access log.
//! Entries are written at the [`Door`] (`audit.rs` keeps the writer); reading them is decided by
//! the policy's `read_audit` and `read_access_log`, and a customer's access log is itself a
//! recorded read.

use std::sync::Arc;

use steward_crypto::Checkpoint;
use steward_crypto::merkle::{self, Hash};
use steward_store::{AuditStore, StoredAuditEntry};

use crate::audit::{checkpoint, stored_hashes};
use crate::door::Door;
use crate::error::{ServiceError, ServiceResult};

/// The audit log's read side.
pub struct AuditTrail {
    door: Arc<Door>,
    store: Arc<dyn AuditStore>,
}

impl AuditTrail {
    /// The trail of one installation (made by the composition root).
    pub(crate) fn new(door: Arc<Door>, store: Arc<dyn AuditStore>) -> Self {
        AuditTrail { door, store }
    }

    fn door(&self) -> &Door {
        &self.door
    }

    /// Moves the entries of writes made so far into the log (they reach it within a tenth of a
    /// second anyway; tests and exports want them now).
    pub async fn flush(&self) -> ServiceResult<()> {
        self.door().audit().flush().await
    }

    /// The audit log's note verifier key (C2SP vkey: `name+keyid+base64`). Public.
    pub fn verifier_key(&self) -> &str {
        self.door().audit().verifier_key()
    }

    /// The latest signed checkpoint (a C2SP signed note), signed now if the log outgrew it.
    pub async fn checkpoint(&self) -> ServiceResult<String> {
        checkpoint(&*self.store, self.door().audit()).await
    }

    /// Entries `[start, end)` of the audit log (the DPO's), at most 1,000.
    pub async fn entries(
        &self,
        principal: &crate::Principal,
        start: u64,
        end: u64,
    ) -> ServiceResult<Vec<LogEntry>> {
        let rows = self.rows(principal, start, end).await?;
        Ok(rows.into_iter().map(LogEntry::of).collect())
    }

    /// [`AuditTrail::entries`] as the store holds them (for the service's own searches).
    pub(crate) async fn rows(
        &self,
        principal: &crate::Principal,
        start: u64,
        end: u64,
    ) -> ServiceResult<Vec<StoredAuditEntry>> {
        self.door()
            .authorize(principal, steward_policy::Action::ReadAudit, None)
            .await?;
        if end < start || end - start > 1000 {
            return Err(steward_domain::ValidationError::new(
                "end",
                "must be start to start + 1000",
            )
            .into());
        }
        Ok(self.store.audit_entries(start, end).await?)
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries (the DPO's).
    pub async fn inclusion(
        &self,
        principal: &crate::Principal,
        index: u64,
        size: u64,
    ) -> ServiceResult<Vec<Hash>> {
        self.door()
            .authorize(principal, steward_policy::Action::ReadAudit, None)
            .await?;
        inclusion(&*self.store, index, size).await
    }

    /// The consistency proof between two tree sizes (the DPO's).
    pub async fn consistency(
        &self,
        principal: &crate::Principal,
        first: u64,
        second: u64,
    ) -> ServiceResult<Vec<Hash>> {
        self.door()
            .authorize(principal, steward_policy::Action::ReadAudit, None)
            .await?;
        consistency(&*self.store, first, second).await
    }
}

/// One entry of the audit log as the service hands it out: its position and the exact bytes
/// hashed into the tree (the store's row, with its query columns, stays in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its index in the log.
    pub index: u64,
    /// The leaf's bytes as hashed (JSON or the compact encoding).
    pub leaf: Vec<u8>,
}

impl LogEntry {
    /// The leaf decoded; `None` if its bytes are no leaf this version reads.
    pub fn decoded(&self) -> Option<steward_domain::AuditLeaf> {
        steward_domain::AuditLeaf::from_bytes(&self.leaf)
    }
}

impl LogEntry {
    /// The service's view of a stored entry (not a `From`: that would be public API).
    pub(crate) fn of(e: StoredAuditEntry) -> Self {
        LogEntry {
            index: e.index,
            leaf: e.row.leaf,
        }
    }
}

/// One entry of a customer's access log, with its proof.
#[derive(Debug, Clone)]
pub struct AccessLogEntry {
    /// The entry.
    pub entry: LogEntry,
    /// Its inclusion proof against the access log's checkpoint.
    pub proof: Vec<Hash>,
}

/// "Who looked at my data": a customer's audit entries, each provable against one checkpoint.
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// The signed checkpoint the proofs are against.
    pub checkpoint: String,
    /// Its tree size.
    pub tree_size: u64,
    /// Entries, newest first.
    pub entries: Vec<AccessLogEntry>,
}

impl AuditTrail {
    /// A customer's access log, newest first, entries below `before` (default: all), each with
    /// its inclusion proof against the latest checkpoint (signed now if the log outgrew it).
    pub async fn access_log(
        &self,
        principal: &crate::Principal,
        customer: steward_domain::CustomerId,
        before: Option<u64>,
        limit: u32,
    ) -> ServiceResult<AccessLog> {
        self.door()
            .authorize(
                principal,
                steward_policy::Action::ReadAccessLog,
                Some(customer),
            )
            .await?;
        self.door()
            .record_read(
                crate::Actor::Principal(principal),
                "read_access_log",
                Some(customer),
                &["access_log"],
            )
            .await?;
        self.access_log_of(customer, before, limit).await
    }

    /// The newest `limit` entries about `customer` since `since` (Unix ms), decoded, with their
    /// indexes, all pending ones included: for the customer's own export, once decided.
    pub(crate) async fn customer_leaves(
        &self,
        customer: steward_domain::CustomerId,
        since: i64,
        limit: u32,
    ) -> ServiceResult<Vec<(u64, steward_domain::AuditLeaf)>> {
        self.flush().await?;
        let size = self.store.audit_size().await?;
        Ok(self
            .store
            .customer_audit(customer, size, limit)
            .await?
            .into_iter()
            .filter(|e| e.row.occurred_at >= since)
            .filter_map(|e| {
                steward_domain::AuditLeaf::from_bytes(&e.row.leaf).map(|l| (e.index, l))
            })
            .collect())
    }

    /// [`AuditTrail::access_log`] once the caller may read it.
    pub(crate) async fn access_log_of(
        &self,
        customer: steward_domain::CustomerId,
        before: Option<u64>,
        limit: u32,
    ) -> ServiceResult<AccessLog> {
        let note = checkpoint(&*self.store, self.door().audit()).await?;
        let text = note.split("\n\n").next().unwrap_or_default();
        let head = Checkpoint::parse(&format!("{text}\n")).map_err(|_| ServiceError::Integrity)?;
        let before = before.unwrap_or(head.size).min(head.size);
        let entries = self.store.customer_audit(customer, before, limit).await?;
        let mut needs = Vec::new();
        for e in &entries {
            needs.extend(
                merkle::inclusion_needs(e.index, head.size).map_err(|_| ServiceError::Integrity)?,
            );
        }
        needs.sort_unstable();
        needs.dedup();
        let stored = stored_hashes(&*self.store, &needs).await?;
        let entries = entries
            .into_iter()
            .map(|entry| {
                let proof = merkle::inclusion_proof(entry.index, head.size, &stored)
                    .map_err(|_| ServiceError::Integrity)?;
                Ok(AccessLogEntry {
                    entry: LogEntry::of(entry),
                    proof,
                })
            })
            .collect::<ServiceResult<_>>()?;
        Ok(AccessLog {
            checkpoint: note,
            tree_size: head.size,
            entries,
        })
    }
}

/// The inclusion proof of entry `index` in the tree of `size` entries.
pub async fn inclusion(store: &dyn AuditStore, index: u64, size: u64) -> ServiceResult<Vec<Hash>> {
    check_size(store, size).await?;
    let needs = merkle::inclusion_needs(index, size)
        .map_err(|_| steward_domain::ValidationError::new("index", "must be below tree_size"))?;
    let stored = stored_hashes(store, &needs).await?;
    merkle::inclusion_proof(index, size, &stored).map_err(|_| ServiceError::Integrity)
}

/// The consistency proof from the tree of `first` entries to that of `second`.
pub(crate) async fn consistency(
    store: &dyn AuditStore,
    first: u64,
    second: u64,
) -> ServiceResult<Vec<Hash>> {
    check_size(store, second).await?;
    let needs = merkle::consistency_needs(first, second)
        .map_err(|_| steward_domain::ValidationError::new("first", "must be 1 to second"))?;
    let stored = stored_hashes(store, &needs).await?;
    merkle::consistency_proof(first, second, &stored).map_err(|_| ServiceError::Integrity)
}

async fn check_size(store: &dyn AuditStore, size: u64) -> ServiceResult<()> {
    if size == 0 || size > store.audit_size().await? {
        return Err(steward_domain::ValidationError::new(
            "tree_size",
            "must be 1 to the log's current size",
        )
        .into());
    }
    Ok(())
}

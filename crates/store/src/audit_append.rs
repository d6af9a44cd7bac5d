//! The audit writer's own way into the log: an [`AuditAppender`].
//!
//! On SQLite the writer appends through a connection it holds itself (rusqlite, on the same
//! bundled SQLite as sqlx) rather than through the pool. sqlx runs every SQLite statement on a
//! worker thread of the connection and hands the answer back with a thread wake-up; an append is
//! four statements (begin, head, entries, commit), so each batch cost eight context switches,
//! and every read waits for its batch. In-thread, an append is a few microseconds of SQLite
//! work. On PostgreSQL the statements cross the network anyway; an append at this writer's own
//! tip is one statement on a connection of its own (see `PoolAppender`).
//!
//! The connection never waits for SQLite's lock in the thread (busy timeout zero): when another
//! connection holds the log's write lock (the checkpointer's RESTART, a drain from another
//! process), the append sleeps asynchronously and tries again, so the writer never stalls the
//! runtime's threads on a lock.

use std::time::{Duration, Instant};

use rusqlite::{ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::audit::{extend_tree, hash_of, i64_of};
use crate::{AuditEntryRow, AuditSealer, AuditTip, SqlStore, StoreError, StoreResult, TreeHash};

/// Appends read entries to the audit log. One per writer; the writer is its only user.
#[async_trait::async_trait]
pub trait AuditAppender: Send {
    /// Appends `entries` in one transaction: locks the head, has `sealer` extend the Merkle tree
    /// (and maybe sign a checkpoint), writes it all. `known` is the tip this appender left last
    /// time, if any (used when nobody appended since). Returns the new tip; the batch's first
    /// entry is at the old size.
    async fn append(
        &mut self,
        entries: &[AuditEntryRow],
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<AuditTip>;
}

/// Appends on PostgreSQL: while this writer's tip is the head, in one statement on a
/// connection of its own (`SqlStore::append_at_tip`); otherwise (another server appended, or a
/// batch too large for one statement) in a transaction through the log pool that locks the
/// head and reads the tree's edge.
pub(crate) struct PoolAppender {
    pub(crate) store: SqlStore,
    pub(crate) conns: Option<crate::pg_read::Conns>,
    /// Batches left before the one-statement append is tried again after it found another
    /// server's entries at the head (with several servers busy it mostly would again).
    pub(crate) contended: u32,
}

/// Batches appended under the head's lock after the one-statement append missed, before it is
/// tried again.
const AFTER_A_MISS: u32 = 16;

#[async_trait::async_trait]
impl AuditAppender for PoolAppender {
    async fn append(
        &mut self,
        entries: &[AuditEntryRow],
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<AuditTip> {
        if self.contended > 0 {
            self.contended -= 1;
            return self.store.append_audit_entries(entries, sealer, None).await;
        }
        if let (Some(conns), Some(tip)) = (&self.conns, &known)
            && !entries.is_empty()
            && entries.len() <= crate::sql::INSERT_CHUNK
        {
            if let Some(tip) = self
                .store
                .append_at_tip(conns, entries, sealer, tip)
                .await?
            {
                return Ok(tip);
            }
            // Another server appended since: the head is read under its lock.
            self.contended = AFTER_A_MISS;
            return self.store.append_audit_entries(entries, sealer, None).await;
        }
        self.store
            .append_audit_entries(entries, sealer, known)
            .await
    }
}

/// Longest an append keeps trying while another connection holds the log's write lock (the
/// pool's busy timeout).
const BUSY_FOR: Duration = Duration::from_secs(10);
/// Pause between tries.
const BUSY_PAUSE: Duration = Duration::from_millis(1);

/// Appends through a SQLite connection of its own, in the calling thread.
pub(crate) struct SqliteAppender {
    conn: rusqlite::Connection,
    /// Set by the checkpointer: the WAL is long and was just copied back; start it over.
    restart: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SqliteAppender {
    /// Opens the decision log's file at `path` (created and migrated by the pool already).
    pub(crate) fn open(
        path: &str,
        restart: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> StoreResult<Self> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::ZERO)?;
        // The pool's settings (sqlite.rs): WAL, NORMAL sync, zeroed free pages, and no
        // checkpoint by commits (the checkpointer does them apart).
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -65536;",
        )?;
        Ok(Self { conn, restart })
    }

    /// When the checkpointer asks: copies back the frames appended since its checkpoint, so that
    /// the next write finds the whole WAL copied and starts it over (SQLite does so only then).
    /// It costs about 2.3 µs per frame of the WAL however few are new (about 4 ms at the 4 MiB
    /// the checkpointer asks at; see `sqlite::WAL_RESTART_FRAMES`). Busy (the checkpointer is at
    /// it again) or a reader holding an old snapshot only means the WAL starts over at a later ask.
    fn restart_wal_if_asked(&mut self) {
        if !self
            .restart
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let t = Instant::now();
        let done = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            });
        tracing::debug!(
            ?done,
            ms = t.elapsed().as_secs_f64() * 1e3,
            "audit log WAL copied back for its restart"
        );
    }

    /// One try at the append; a busy lock comes back as [`StoreError::Sqlite`] with code busy.
    fn try_append(
        &mut self,
        entries: &[AuditEntryRow],
        sealer: &dyn AuditSealer,
        known: Option<&AuditTip>,
    ) -> StoreResult<AuditTip> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = i64_of(entries.len() as u64)?;
        // As in the pool's append: if the tip this writer left is still the head, moving the
        // head is the lock and no hash needs reading.
        let mut fast = false;
        if let Some(tip) = known {
            fast = tx
                .prepare_cached(
                    "UPDATE audit_head SET size = size + ?1 WHERE id = 1 AND size = ?2",
                )?
                .execute(params![n, i64_of(tip.size)?])?
                == 1;
        }
        let read;
        let (size, edge): (u64, &[TreeHash]) = match known {
            Some(tip) if fast => (tip.size, &tip.edge),
            _ => {
                let size: i64 =
                    tx.query_row("SELECT size FROM audit_head WHERE id = 1", [], |r| r.get(0))?;
                let size =
                    u64::try_from(size).map_err(|_| StoreError::Corrupt("negative log size"))?;
                let mut hashes =
                    tx.prepare_cached("SELECT hashes FROM audit_entries WHERE idx = ?1")?;
                read = sealer
                    .frontier(size)
                    .into_iter()
                    .map(|i| {
                        let (entry, at) = sealer.written_at(i);
                        let column: Option<Vec<u8>> = hashes
                            .query_row([i64_of(entry)?], |r| r.get(0))
                            .optional()?;
                        column
                            .and_then(|c| c.get(at * 32..at * 32 + 32).map(<[u8]>::to_vec))
                            .ok_or(StoreError::Corrupt("a tree hash is missing"))
                            .and_then(hash_of)
                    })
                    .collect::<StoreResult<Vec<TreeHash>>>()?;
                tx.prepare_cached("UPDATE audit_head SET size = size + ?1 WHERE id = 1")?
                    .execute([n])?;
                (size, &read)
            }
        };
        let ext = extend_tree(sealer, size, edge, entries)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit_entries (idx, leaf, occurred_at, action, customer_id, hashes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (i, (e, h)) in (size..).zip(&ext.rows) {
                insert.execute(params![
                    i64_of(i)?,
                    e.leaf,
                    e.occurred_at,
                    e.action,
                    e.customer_id.as_ref().map(|c| c.as_bytes().as_slice()),
                    h
                ])?;
            }
        }
        let new_size = size + entries.len() as u64;
        if let Some(note) = &ext.checkpoint {
            tx.prepare_cached(
                "INSERT INTO audit_checkpoints (size, note) VALUES (?1, ?2) ON CONFLICT (size) DO NOTHING",
            )?
            .execute(params![i64_of(new_size)?, note])?;
        }
        tx.commit()?;
        Ok(AuditTip {
            size: new_size,
            edge: ext.edge,
        })
    }
}

fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
        if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

#[async_trait::async_trait]
impl AuditAppender for SqliteAppender {
    async fn append(
        &mut self,
        entries: &[AuditEntryRow],
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<AuditTip> {
        self.restart_wal_if_asked();
        let deadline = Instant::now() + BUSY_FOR;
        loop {
            match self.try_append(entries, sealer, known.as_ref()) {
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(BUSY_PAUSE).await;
                }
                done => return done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::AuditExtension;
    use crate::prelude::*;

    /// A sealer with a fixed hash per entry: enough for the store's bookkeeping.
    struct Plain;

    impl AuditSealer for Plain {
        fn frontier(&self, size: u64) -> Vec<u64> {
            (0..size.count_ones()).map(u64::from).collect()
        }
        fn written_at(&self, index: u64) -> (u64, usize) {
            (index, 0)
        }
        fn extend(
            &self,
            size: u64,
            edge: &[TreeHash],
            leaves: &[&[u8]],
        ) -> Result<AuditExtension, String> {
            let _ = (size, edge);
            Ok(AuditExtension {
                hashes: leaves.iter().map(|_| vec![[1; 32]]).collect(),
                edge: vec![],
                checkpoint: None,
            })
        }
        fn refused(&self, seq: i64, _message: &[u8]) -> AuditEntryRow {
            AuditEntryRow {
                leaf: seq.to_be_bytes().to_vec(),
                occurred_at: 0,
                action: "refused".into(),
                customer_id: None,
            }
        }
    }

    fn row(n: u8) -> AuditEntryRow {
        AuditEntryRow {
            leaf: vec![n; 40],
            occurred_at: i64::from(n),
            action: "read".into(),
            customer_id: None,
        }
    }

    /// While another connection holds the log's write lock, an append waits for it without
    /// failing (and without holding the thread: the lock holder here runs on the same runtime
    /// thread), then lands after it.
    #[tokio::test]
    async fn appends_wait_out_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("steward.db").display());
        let store = crate::sqlite::open(&url).await.unwrap();
        let mut appender = store.audit_appender().await.unwrap();
        let tip = appender.append(&[row(1)], &Plain, None).await.unwrap();
        assert_eq!(tip.size, 1);

        let path = dir.path().join("steward-audit.db");
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let held = Duration::from_millis(60);
        let started = Instant::now();
        let release = async {
            tokio::time::sleep(held).await;
            other.execute_batch("COMMIT").unwrap();
        };
        let rows = [row(2), row(3)];
        let (appended, ()) = tokio::join!(appender.append(&rows, &Plain, Some(tip)), release);
        assert_eq!(appended.unwrap().size, 3);
        assert!(
            started.elapsed() >= held,
            "appended while the lock was held"
        );
        assert_eq!(store.audit_size().await.unwrap(), 3);
    }
}

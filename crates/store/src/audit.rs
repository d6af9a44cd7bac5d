//! The audit log's storage: entries (Merkle leaves), the tree's stored hashes, the head, and the
//! signed checkpoints. The hashing and signing happen in the caller's [`AuditSealer`], inside the
//! appending transaction, so the store never holds a key and the tree never forks.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row};
use steward_domain::CustomerId;

use crate::sql::{AnyQuery, values_clause};
use crate::{Backend, SqlStore, StoreError, StoreResult};

/// A 32-byte tree hash.
pub type TreeHash = [u8; 32];

/// One entry to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntryRow {
    /// The exact bytes hashed into the tree.
    pub leaf: Vec<u8>,
    /// When (ms), copied from the leaf for queries.
    pub occurred_at: i64,
    /// What happened, copied from the leaf.
    pub action: String,
    /// About whom, copied from the leaf.
    pub customer_id: Option<CustomerId>,
}

/// One stored entry with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditEntry {
    /// Its index in the log.
    pub index: u64,
    /// The row as stored.
    pub row: AuditEntryRow,
    /// The tree hashes its append wrote, 32 bytes each, as stored.
    pub hashes: Vec<u8>,
}

/// The end of the log as an appender last left it: its size and the hashes that sum it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTip {
    /// The number of entries.
    pub size: u64,
    /// The tree's frontier hashes at that size.
    pub edge: Vec<TreeHash>,
}

/// What the sealer computed for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditExtension {
    /// Per new entry, the tree hashes its append wrote.
    pub hashes: Vec<Vec<TreeHash>>,
    /// The frontier hashes of the tree with the batch.
    pub edge: Vec<TreeHash>,
    /// A signed checkpoint note for the new size, if the sealer signs one now.
    pub checkpoint: Option<String>,
}

/// The tree and signing work of an append, done by the caller inside the store's transaction.
pub trait AuditSealer: Send + Sync {
    /// The stored hash indexes that sum up a tree of `size` entries.
    fn frontier(&self, size: u64) -> Vec<u64>;
    /// Which entry wrote stored hash `index`, and at which offset among its hashes.
    fn written_at(&self, index: u64) -> (u64, usize);
    /// Extends the tree of `size` entries with frontier hashes `edge` by `leaves`.
    fn extend(
        &self,
        size: u64,
        edge: &[TreeHash],
        leaves: &[&[u8]],
    ) -> Result<AuditExtension, String>;
    /// The entry appended in place of pending entry `seq`, whose tag did not check: it says that
    /// one was refused (`message` is its encoding, for a digest). The writer says so loudly once
    /// the stand-in is committed.
    fn refused(&self, seq: i64, message: &[u8]) -> AuditEntryRow;
}

pub(crate) fn hash_of(bytes: Vec<u8>) -> StoreResult<TreeHash> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a tree hash is not 32 bytes"))
}

/// The columns [`entry_from`] reads, in order.
const ENTRY_COLUMNS: &str = "idx, leaf, occurred_at, action, customer_id, hashes";

pub(crate) fn entry_from(r: &sqlx::any::AnyRow) -> StoreResult<StoredAuditEntry> {
    let idx: i64 = r.try_get(0)?;
    let customer: Option<Vec<u8>> = r.try_get(4)?;
    Ok(StoredAuditEntry {
        index: u64::try_from(idx).map_err(|_| StoreError::Corrupt("negative audit index"))?,
        row: AuditEntryRow {
            leaf: r.try_get(1)?,
            occurred_at: r.try_get(2)?,
            action: r.try_get(3)?,
            customer_id: customer
                .map(|c| {
                    CustomerId::from_slice(&c).ok_or(StoreError::Corrupt("id is not 16 bytes"))
                })
                .transpose()?,
        },
        hashes: r.try_get(5)?,
    })
}

/// The entries of one grouped row (see [`SqlStore::audit_entry_range_grouped`]), appended to
/// `out`.
fn ungroup(row: &sqlx::any::AnyRow, out: &mut Vec<StoredAuditEntry>) -> StoreResult<()> {
    let corrupt = || StoreError::Corrupt("an audit entry's columns");
    let (idx, at) = (int_list(row, 0)?, int_list(row, 1)?);
    let n = idx.len();
    let mut columns = [
        Packed::read(row, 2)?,
        Packed::read(row, 4)?,
        Packed::read(row, 6)?,
        Packed::read(row, 8)?,
    ];
    if at.len() != n || columns.iter().any(|c| c.lengths.len() != n) {
        return Err(corrupt());
    }
    for i in 0..n {
        let [action, customer, leaf, hashes] = &mut columns;
        let action =
            String::from_utf8(action.next(i)?.unwrap_or_default()).map_err(|_| corrupt())?;
        out.push(StoredAuditEntry {
            index: u64::try_from(idx[i])
                .map_err(|_| StoreError::Corrupt("negative audit index"))?,
            row: AuditEntryRow {
                leaf: leaf.next(i)?.unwrap_or_default(),
                occurred_at: at[i],
                action,
                customer_id: customer
                    .next(i)?
                    .map(|c| CustomerId::from_slice(&c).ok_or_else(corrupt))
                    .transpose()?,
            },
            hashes: hashes.next(i)?.unwrap_or_default(),
        });
    }
    if columns.iter().any(|c| !c.finished()) {
        return Err(corrupt());
    }
    Ok(())
}

/// A comma-separated list of integers in column `i` of a grouped row (none if NULL).
pub(crate) fn int_list(row: &sqlx::any::AnyRow, i: usize) -> StoreResult<Vec<i64>> {
    let text: Option<String> = row.try_get(i)?;
    text.unwrap_or_default()
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|_| StoreError::Corrupt("an audit entry's columns"))
        })
        .collect()
}

/// One column of a grouped row: its values concatenated (column `i`) and their byte lengths
/// (column `i + 1`, -1 for NULL), taken apart value by value.
pub(crate) struct Packed {
    bytes: Vec<u8>,
    pub(crate) lengths: Vec<i64>,
    at: usize,
}

impl Packed {
    pub(crate) fn read(row: &sqlx::any::AnyRow, i: usize) -> StoreResult<Self> {
        Ok(Packed {
            bytes: row.try_get::<Option<Vec<u8>>, _>(i)?.unwrap_or_default(),
            lengths: int_list(row, i + 1)?,
            at: 0,
        })
    }

    /// Value `i` (values are taken in order): `None` for SQL NULL.
    pub(crate) fn next(&mut self, i: usize) -> StoreResult<Option<Vec<u8>>> {
        let corrupt = || StoreError::Corrupt("an audit entry's columns");
        let Ok(len) = usize::try_from(*self.lengths.get(i).ok_or_else(corrupt)?) else {
            return Ok(None);
        };
        let value = self
            .bytes
            .get(self.at..self.at + len)
            .ok_or_else(corrupt)?
            .to_vec();
        self.at += len;
        Ok(Some(value))
    }

    /// Whether every byte was taken.
    pub(crate) fn finished(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Entries per row of a grouped read.
const GROUP: u64 = 2_048;

/// A batch's share of the tree: each entry with the hashes its append writes, the new frontier
/// and any checkpoint the sealer signed.
pub(crate) struct Extended<'a> {
    pub(crate) rows: Vec<(&'a AuditEntryRow, Vec<u8>)>,
    pub(crate) edge: Vec<TreeHash>,
    pub(crate) checkpoint: Option<String>,
}

/// Has `sealer` extend the tree of `size` entries (frontier `edge`) by `entries`.
pub(crate) fn extend_tree<'a>(
    sealer: &dyn AuditSealer,
    size: u64,
    edge: &[TreeHash],
    entries: &'a [AuditEntryRow],
) -> StoreResult<Extended<'a>> {
    let leaves: Vec<&[u8]> = entries.iter().map(|e| e.leaf.as_slice()).collect();
    let ext = sealer
        .extend(size, edge, &leaves)
        .map_err(|_| StoreError::Corrupt("the audit tree could not be extended"))?;
    if ext.hashes.len() != entries.len() {
        return Err(StoreError::Corrupt("the audit tree could not be extended"));
    }
    Ok(Extended {
        rows: entries
            .iter()
            .zip(&ext.hashes)
            .map(|(e, h)| (e, h.concat()))
            .collect(),
        edge: ext.edge,
        checkpoint: ext.checkpoint,
    })
}

/// The stored hash a tree's edge is checked against: (entry, offset among its hashes, hash).
type EdgeCheck = Option<(i64, i64, Vec<u8>)>;

/// On PostgreSQL, a condition (for the head's `UPDATE`, its parameters numbered from `first`)
/// that holds only if the log still ends as this writer left it: the last hash of the tree's
/// edge (the largest subtree its last entry completed, that entry's leaf at least) is stored
/// where the writer put it. Size alone does not say the history is the same (a failover to a
/// standby that lacked the last commits, then other servers' appends back to the same length),
/// and a writer's cached edge over another history would make hashes, and a checkpoint, of a
/// tree that never existed. Another history passes only by ending in the same entries byte for
/// byte (times to the millisecond, actors, subjects). One hash, not the whole edge: a statement
/// of one shape that PostgreSQL plans once (checking every hash of the edge, its length varying
/// with the size, cost a sixth of the throughput in re-planning). Empty on SQLite, where one
/// file has one history while the servers run.
fn same_history(
    backend: Backend,
    sealer: &dyn AuditSealer,
    tip: &AuditTip,
    first: usize,
) -> StoreResult<(String, EdgeCheck)> {
    let frontier = sealer.frontier(tip.size);
    if backend != Backend::Postgres {
        return Ok((String::new(), None));
    }
    let (Some(last), Some(hash)) = (frontier.last(), tip.edge.last()) else {
        return Ok((String::new(), None));
    };
    if frontier.len() != tip.edge.len() {
        return Err(StoreError::Corrupt("the tree's edge does not fit its size"));
    }
    let (entry, offset) = sealer.written_at(*last);
    Ok((
        format!(
            " AND (SELECT substring(e.hashes, (${} * 32 + 1)::int, 32) FROM audit_entries e \
             WHERE e.idx = ${first}) = ${}",
            first + 1,
            first + 2
        ),
        Some((i64_of(entry)?, i64_of(offset as u64)?, hash.to_vec())),
    ))
}

/// Binds entry `i`'s six columns (idx, leaf, occurred_at, action, customer_id, hashes).
fn bind_entry<'q>(
    q: AnyQuery<'q>,
    i: u64,
    (e, h): &'q (&AuditEntryRow, Vec<u8>),
) -> StoreResult<AnyQuery<'q>> {
    Ok(q.bind(i64_of(i)?)
        .bind(e.leaf.as_slice())
        .bind(e.occurred_at)
        .bind(e.action.as_str())
        .bind(e.customer_id.map(|c| c.as_bytes().to_vec()))
        .bind(h.as_slice()))
}

pub(crate) fn i64_of(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt("audit index past i64"))
}

/// An `IN (…)` list of `n` parameters starting after `offset` bound ones.
pub(crate) fn in_list(backend: Backend, n: usize, offset: usize) -> String {
    (0..n)
        .map(|i| match backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${}", offset + i + 1),
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl SqlStore {
    /// Appends `entries` in one transaction of the log: reads the head (locking it), has
    /// `sealer` extend the tree, writes entries, hashes, head and any checkpoint. Returns the
    /// index of the first entry.
    pub(crate) async fn append_audit_entries(
        &self,
        entries: &[AuditEntryRow],
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<AuditTip> {
        self.append_entries(entries, sealer, known, None).await
    }

    /// Appends `entries` after `tip` in one statement on a connection of its own (PostgreSQL):
    /// the head moves only if it is still at `tip`, and the entries are written only if it
    /// moved. `None`, writing nothing, if another server appended since. One round trip where a
    /// transaction takes five (begin, head, entries, commit, and the pool's ping when the
    /// connection goes back), once per batch of reads. A write is never run twice (a failure may
    /// have come after its commit): the writer refuses the batch's requests instead.
    pub(crate) async fn append_at_tip(
        &self,
        conns: &crate::pg_read::Conns,
        entries: &[AuditEntryRow],
        sealer: &dyn AuditSealer,
        tip: &AuditTip,
    ) -> StoreResult<Option<AuditTip>> {
        let ext = extend_tree(sealer, tip.size, &tip.edge, entries)?;
        let rows = (0..entries.len())
            .map(|r| {
                let b = 3 + r * 6;
                format!(
                    "(${},${},${},${},${},${})",
                    b,
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let (history, check) = same_history(Backend::Postgres, sealer, tip, 3 + entries.len() * 6)?;
        let sql = format!(
            "WITH head AS (UPDATE audit_head SET size = size + $1 WHERE id = 1 AND size = $2{history} \
             RETURNING size) \
             INSERT INTO audit_entries (idx, leaf, occurred_at, action, customer_id, hashes) \
             SELECT v.idx, v.leaf, v.occurred_at, v.action, v.customer_id, v.hashes \
             FROM (VALUES {rows}) AS v (idx, leaf, occurred_at, action, customer_id, hashes) \
             WHERE EXISTS (SELECT 1 FROM head)"
        );
        let new_size = tip.size + entries.len() as u64;
        let mut q: AnyQuery<'_> = sqlx::query(AssertSqlSafe(sql))
            .bind(i64_of(entries.len() as u64)?)
            .bind(i64_of(tip.size)?);
        for (i, row) in (tip.size..).zip(&ext.rows) {
            q = bind_entry(q, i, row)?;
        }
        if let Some((entry, offset, hash)) = &check {
            q = q.bind(*entry).bind(*offset).bind(hash.as_slice());
        }
        let mut lent = conns.lend(crate::pg_read::Check::Write).await?;
        let written = crate::pg_read::within("an audit append", async {
            Ok(q.execute(lent.conn()).await?.rows_affected())
        })
        .await?;
        if written == 0 {
            // Another server appended since. The checkpoint that may have been signed over the
            // tree this batch would have made never leaves the process.
            lent.keep();
            return Ok(None);
        }
        if written != entries.len() as u64 {
            return Err(StoreError::Corrupt("an append wrote part of its batch"));
        }
        // Signed over the tree now written; stored after it (the entries are appended either
        // way: a checkpoint that fails to be stored is signed again by the next one due).
        if let Some(note) = &ext.checkpoint {
            let stored = crate::pg_read::within("a checkpoint", async {
                sqlx::query(
                    "INSERT INTO audit_checkpoints (size, note) VALUES ($1, $2) \
                     ON CONFLICT (size) DO NOTHING",
                )
                .bind(i64_of(new_size)?)
                .bind(note.as_str())
                .execute(lent.conn())
                .await?;
                Ok(())
            })
            .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, "storing a checkpoint failed; the next one covers it");
                return Ok(Some(AuditTip {
                    size: new_size,
                    edge: ext.edge,
                }));
            }
        }
        lent.keep();
        Ok(Some(AuditTip {
            size: new_size,
            edge: ext.edge,
        }))
    }

    /// Appends `entries`; with `drained = Some((from, to))`, also moves the outbox mark from
    /// `from` to `to` in the same transaction (`Conflict` if another drainer moved it first).
    pub(crate) async fn append_entries(
        &self,
        entries: &[AuditEntryRow],
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
        drained: Option<Drained>,
    ) -> StoreResult<AuditTip> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.log_pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.log_pool.begin().await?,
        };
        let n = i64_of(entries.len() as u64)?;
        // Fast path: the tip this writer left is still the head (nobody else appended), so
        // moving the head is the lock and no hash needs reading. Otherwise read the head under
        // a lock and the hashes that sum it up.
        let mut fast = None;
        if let Some(tip) = known {
            let (history, check) = same_history(self.backend, sealer, &tip, 3)?;
            let sql = format!(
                "UPDATE audit_head SET size = size + $1 WHERE id = 1 AND size = $2{history}"
            );
            let mut q: AnyQuery<'_> = sqlx::query(AssertSqlSafe(sql))
                .bind(n)
                .bind(i64_of(tip.size)?);
            if let Some((entry, offset, hash)) = &check {
                q = q.bind(*entry).bind(*offset).bind(hash.as_slice());
            }
            if q.execute(&mut *tx).await?.rows_affected() == 1 {
                fast = Some(tip);
            }
        }
        let AuditTip { size, edge } = match fast {
            Some(tip) => tip,
            None => {
                let lock = match self.backend {
                    Backend::Sqlite => "SELECT size FROM audit_head WHERE id = 1",
                    Backend::Postgres => "SELECT size FROM audit_head WHERE id = 1 FOR UPDATE",
                };
                let size: i64 = sqlx::query(lock).fetch_one(&mut *tx).await?.try_get(0)?;
                let size =
                    u64::try_from(size).map_err(|_| StoreError::Corrupt("negative log size"))?;
                let edge = hashes_at(self.backend, &mut tx, &sealer.frontier(size), |i| {
                    sealer.written_at(i)
                })
                .await?;
                sqlx::query("UPDATE audit_head SET size = size + $1 WHERE id = 1")
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
                AuditTip { size, edge }
            }
        };
        let ext = extend_tree(sealer, size, &edge, entries)?;
        for (n, chunk) in ext.rows.chunks(crate::sql::INSERT_CHUNK).enumerate() {
            let sql = format!(
                "INSERT INTO audit_entries (idx, leaf, occurred_at, action, customer_id, hashes) VALUES {}",
                values_clause(self.backend, chunk.len(), 6)
            );
            let mut q: AnyQuery<'_> = sqlx::query(AssertSqlSafe(sql));
            let first = size + (n * crate::sql::INSERT_CHUNK) as u64;
            for (i, row) in (first..).zip(chunk) {
                q = bind_entry(q, i, row)?;
            }
            q.execute(&mut *tx).await?;
        }
        let new_size = size + entries.len() as u64;
        if let Some(note) = &ext.checkpoint {
            insert_checkpoint(&mut tx, new_size, note).await?;
        }
        match drained {
            Some(Drained::Mark { from, to }) => {
                let moved = sqlx::query(
                    "UPDATE audit_drain SET last_seq = $1 WHERE id = 1 AND last_seq = $2",
                )
                .bind(to)
                .bind(from)
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() != 1 {
                    // Another server moved these entries first; nothing of this batch is kept.
                    return Err(StoreError::Conflict);
                }
            }
            Some(Drained::Rows { seqs, refused }) => {
                crate::audit_outbox::quarantine(&mut tx, self.backend, &refused).await?;
                let mut moved = 0;
                for chunk in seqs.chunks(crate::sql::INSERT_CHUNK) {
                    let sql = format!(
                        "DELETE FROM audit_outbox WHERE seq IN ({})",
                        (1..=chunk.len())
                            .map(|i| format!("${i}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                    let mut q: AnyQuery<'_> = sqlx::query(AssertSqlSafe(sql));
                    for seq in chunk {
                        q = q.bind(*seq);
                    }
                    moved += q.execute(&mut *tx).await?.rows_affected();
                }
                if moved != seqs.len() as u64 {
                    // Another server moved some of these first; nothing of this batch is kept.
                    return Err(StoreError::Conflict);
                }
            }
            None => {}
        }
        tx.commit().await?;
        Ok(AuditTip {
            size: new_size,
            edge: ext.edge,
        })
    }

    /// The number of entries.
    pub(crate) async fn audit_log_size(&self) -> StoreResult<u64> {
        let size: i64 = sqlx::query("SELECT size FROM audit_head WHERE id = 1")
            .fetch_one(&self.log_pool)
            .await?
            .try_get(0)?;
        u64::try_from(size).map_err(|_| StoreError::Corrupt("negative log size"))
    }

    /// The hash columns of the entries `indexes` (those that exist).
    pub(crate) async fn audit_hashes_of(
        &self,
        indexes: &[u64],
    ) -> StoreResult<HashMap<u64, Vec<u8>>> {
        let mut conn = self.log_pool.acquire().await?;
        hash_columns(self.backend, &mut conn, indexes).await
    }

    /// Entries with index in `[start, end)`, in order.
    pub(crate) async fn audit_entry_range(
        &self,
        start: u64,
        end: u64,
    ) -> StoreResult<Vec<StoredAuditEntry>> {
        if self.backend == Backend::Sqlite {
            return self.audit_entry_range_grouped(start, end).await;
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx"
        )))
        .bind(i64_of(start)?)
        .bind(i64_of(end)?)
        .fetch_all(&self.log_pool)
        .await?;
        rows.iter().map(entry_from).collect()
    }

    /// [`SqlStore::audit_entry_range`] on SQLite: SQLite hands each result row
    /// from its worker thread to the caller through a channel, and that hand-off (a thread
    /// wake-up per row) cost more than everything else `audit verify` does. So a block of
    /// [`GROUP`] entries comes as one row: each column's values concatenated, with their byte
    /// lengths beside them (SQLite's BLOB-to-TEXT conversion keeps the bytes as they are).
    async fn audit_entry_range_grouped(
        &self,
        start: u64,
        end: u64,
    ) -> StoreResult<Vec<StoredAuditEntry>> {
        let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        let mut lo = start;
        while lo < end {
            let hi = (lo + GROUP).min(end);
            let row = sqlx::query(
                "SELECT group_concat(idx, ','), group_concat(occurred_at, ','), \
                   CAST(group_concat(action, '') AS BLOB), group_concat(octet_length(action), ','), \
                   CAST(group_concat(customer_id, '') AS BLOB), \
                   group_concat(coalesce(octet_length(customer_id), -1), ','), \
                   CAST(group_concat(leaf, '') AS BLOB), group_concat(octet_length(leaf), ','), \
                   CAST(group_concat(hashes, '') AS BLOB), group_concat(octet_length(hashes), ',') \
                 FROM (SELECT * FROM audit_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx)",
            )
            .bind(i64_of(lo)?)
            .bind(i64_of(hi)?)
            .fetch_one(&self.log_pool)
            .await?;
            ungroup(&row, &mut out)?;
            lo = hi;
        }
        // The aggregates see the subquery's rows in one order; SQL does not promise it is idx's.
        out.sort_by_key(|e| e.index);
        Ok(out)
    }

    /// Every signed checkpoint, by size.
    pub(crate) async fn audit_checkpoint_list(&self) -> StoreResult<Vec<(u64, String)>> {
        let rows = sqlx::query("SELECT size, note FROM audit_checkpoints ORDER BY size")
            .fetch_all(&self.log_pool)
            .await?;
        rows.iter()
            .map(|r| {
                let s: i64 = r.try_get(0)?;
                Ok((
                    u64::try_from(s).map_err(|_| StoreError::Corrupt("negative size"))?,
                    r.try_get(1)?,
                ))
            })
            .collect()
    }

    /// The checkpoint with the largest size.
    pub(crate) async fn audit_latest_checkpoint(&self) -> StoreResult<Option<(u64, String)>> {
        let row =
            sqlx::query("SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(&self.log_pool)
                .await?;
        row.map(|r| {
            let s: i64 = r.try_get(0)?;
            Ok((
                u64::try_from(s).map_err(|_| StoreError::Corrupt("negative size"))?,
                r.try_get(1)?,
            ))
        })
        .transpose()
    }

    /// Stores a checkpoint signed apart from an append (kept if one for that size exists).
    pub(crate) async fn audit_add_checkpoint(&self, size: u64, note: &str) -> StoreResult<()> {
        let mut tx = self.log_pool.begin().await?;
        insert_checkpoint(&mut tx, size, note).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The largest entry index stored, if any.
    pub(crate) async fn audit_extent_now(&self) -> StoreResult<Option<u64>> {
        let e: Option<i64> = sqlx::query("SELECT MAX(idx) FROM audit_entries")
            .fetch_one(&self.log_pool)
            .await?
            .try_get(0)?;
        Ok(e.and_then(|x| u64::try_from(x).ok()))
    }

    /// How many entries name this customer.
    pub(crate) async fn audit_count_for(&self, customer: CustomerId) -> StoreResult<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM audit_entries WHERE customer_id = $1")
                .bind(customer.as_bytes().to_vec())
                .fetch_one(&self.log_pool)
                .await?
                .try_get(0)?,
        )
    }
}

async fn insert_checkpoint(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    size: u64,
    note: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING",
    )
    .bind(i64_of(size)?)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The hash columns of entries `indexes`.
async fn hash_columns(
    backend: Backend,
    conn: &mut sqlx::AnyConnection,
    indexes: &[u64],
) -> StoreResult<HashMap<u64, Vec<u8>>> {
    let mut out = HashMap::with_capacity(indexes.len());
    for chunk in indexes.chunks(crate::sql::INSERT_CHUNK) {
        if backend == Backend::Sqlite {
            // One row for the lot (see `audit_entry_range_grouped`): a proof needs ~log₂ n.
            let sql = format!(
                "SELECT group_concat(idx, ','), CAST(group_concat(hashes, '') AS BLOB), \
                   group_concat(coalesce(octet_length(hashes), -1), ',') \
                 FROM audit_entries WHERE idx IN ({})",
                in_list(backend, chunk.len(), 0)
            );
            let mut q: AnyQuery<'_> = sqlx::query(AssertSqlSafe(sql));
            for i in chunk {
                q = q.bind(i64_of(*i)?);
            }
            let row = q.fetch_one(&mut *conn).await?;
            let idx = int_list(&row, 0)?;
            let mut hashes = Packed::read(&row, 1)?;
            for (n, i) in idx.iter().enumerate() {
                let h = hashes
                    .next(n)?
                    .ok_or(StoreError::Corrupt("an audit entry's hashes"))?;
                let i =
                    u64::try_from(*i).map_err(|_| StoreError::Corrupt("negative audit index"))?;
                out.insert(i, h);
            }
            if hashes.lengths.len() != idx.len() || !hashes.finished() {
                return Err(StoreError::Corrupt("an audit entry's hashes"));
            }
            continue;
        }
        let sql = format!(
            "SELECT idx, hashes FROM audit_entries WHERE idx IN ({})",
            in_list(backend, chunk.len(), 0)
        );
        let mut q: AnyQuery<'_> = sqlx::query(AssertSqlSafe(sql));
        for i in chunk {
            q = q.bind(i64_of(*i)?);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let i: i64 = r.try_get(0)?;
            out.insert(
                u64::try_from(i).map_err(|_| StoreError::Corrupt("negative audit index"))?,
                r.try_get(1)?,
            );
        }
    }
    Ok(out)
}

/// The tree hashes at stored `indexes`, in that order, inside the append's transaction;
/// `written_at` says which entry holds each, at which offset.
async fn hashes_at(
    backend: Backend,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    indexes: &[u64],
    written_at: impl Fn(u64) -> (u64, usize),
) -> StoreResult<Vec<TreeHash>> {
    let at: Vec<(u64, usize)> = indexes.iter().map(|i| written_at(*i)).collect();
    let mut entries: Vec<u64> = at.iter().map(|(e, _)| *e).collect();
    entries.sort_unstable();
    entries.dedup();
    let columns = hash_columns(backend, &mut *tx, &entries).await?;
    at.iter()
        .map(|(e, off)| {
            columns
                .get(e)
                .and_then(|h| h.get(off * 32..off * 32 + 32))
                .ok_or(StoreError::Corrupt("a tree hash is missing"))
                .and_then(|h| hash_of(h.to_vec()))
        })
        .collect()
}

/// How a drain marks the outbox rows it moved, in the append's transaction.
pub(crate) enum Drained {
    /// SQLite: moves the watermark in the log file (the outbox lives in the data file; its rows
    /// commit in sequence order, as SQLite has one writer at a time).
    Mark {
        /// The watermark the drain read.
        from: i64,
        /// The last sequence number moved.
        to: i64,
    },
    /// PostgreSQL: deletes exactly these outbox rows, keeping the refused ones aside first.
    Rows {
        /// Every row moved.
        seqs: Vec<i64>,
        /// Those refused (their stand-ins were appended).
        refused: Vec<i64>,
    },
}

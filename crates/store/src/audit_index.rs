//! The audit log's by-customer index: who looked at a customer's data, found without scanning
//! the log. Derived data, built behind the log (`audit_index_state.indexed` says how far), in
//! sorted runs.
//!
//! Why runs (issue 19): keyed (customer, entry) in one B-tree, each step of the indexer put its
//! rows at random places and so rewrote about one 4 KiB page per audited read, into the WAL and
//! again at the checkpoint. With 100,000 customers under load that was about a fifth of a read's
//! CPU and most of its p99. Keyed (run, customer, entry), a step's rows, sorted, go at the
//! B-tree's right edge as a run of their own, and every [`FANOUT`] runs of a level are merged,
//! sorted, into one run of the next: each row is written once per level (a log-structured merge
//! in its simplest form), and a customer's entries are found with one seek per run. Run 0 holds
//! what was indexed before runs existed and is never merged.

use sqlx::{AssertSqlSafe, Row};
use steward_domain::CustomerId;

use crate::audit::{Packed, entry_from, i64_of, in_list, int_list};
use crate::sql::{AnyQuery, values_clause};
use crate::{Backend, SqlStore, StoreError, StoreResult, StoredAuditEntry};

/// How many runs of a level are merged into one of the next. Levels have no cap, so a customer's
/// entries are in at most three runs a level, about log₄ of the steps taken; the rare merge of a
/// high level is one long transaction of the index's own file, in the indexer's task.
const FANOUT: usize = 4;

impl SqlStore {
    /// Indexes up to `limit` entries past the watermark by customer, as a run of its own (rows
    /// sorted by customer so that they append), then merges runs. Returns the new watermark. A
    /// watermark past the log's end (an older log restored beside the index, or a tampered one)
    /// empties the index to be rebuilt: it is derived data, and such a watermark would hide the
    /// entries appended from here on.
    pub(crate) async fn index_audit_entries(&self, limit: u64) -> StoreResult<u64> {
        let log = self.log_schema();
        let from: i64 = sqlx::query("SELECT indexed FROM audit_index_state WHERE id = 1")
            .fetch_one(&self.index_pool)
            .await?
            .try_get(0)?;
        let size: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT size FROM {log}audit_head WHERE id = 1"
        )))
        .fetch_one(&self.index_pool)
        .await?
        .try_get(0)?;
        if from > size {
            tracing::warn!(
                indexed = from,
                size,
                "the audit log's by-customer index reaches past the log; rebuilding it"
            );
            let mut tx = self.index_pool.begin().await?;
            let moved = sqlx::query(
                "UPDATE audit_index_state SET indexed = 0 WHERE id = 1 AND indexed = $1",
            )
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 1 {
                sqlx::query("DELETE FROM audit_by_customer")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM audit_index_runs WHERE run <> 0")
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            return Ok(0);
        }
        let to = size.min(from.saturating_add(i64_of(limit)?));
        if to <= from {
            return Ok(u64::try_from(from).unwrap_or(0));
        }
        // Read before the write transaction, so that no snapshot of the log is held while the
        // index is written (a held snapshot would keep the log's WAL from starting over).
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT customer_id, idx FROM {log}audit_entries WHERE idx >= $1 AND idx < $2 AND customer_id IS NOT NULL ORDER BY customer_id, idx"
        )))
        .bind(from)
        .bind(to)
        .fetch_all(&self.index_pool)
        .await?;
        let pairs: Vec<(Vec<u8>, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<StoreResult<_>>()?;
        // On SQLite a deferred transaction that writes only the index's file (BEGIN IMMEDIATE
        // would take the attached log's write lock too, and appends would wait again). The
        // watermark moves only from where this step read it: another indexer (another server on
        // the same files or database) that moved it first wins, and this step is dropped.
        let mut tx = self.index_pool.begin().await?;
        let moved =
            sqlx::query("UPDATE audit_index_state SET indexed = $1 WHERE id = 1 AND indexed = $2")
                .bind(to)
                .bind(from)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if moved != 1 {
            tx.rollback().await?;
            let now: i64 = sqlx::query("SELECT indexed FROM audit_index_state WHERE id = 1")
                .fetch_one(&self.index_pool)
                .await?
                .try_get(0)?;
            return u64::try_from(now).map_err(|_| StoreError::Corrupt("negative watermark"));
        }
        if !pairs.is_empty() {
            let run = new_run(&mut tx, 0).await?;
            for chunk in pairs.chunks(crate::sql::INSERT_CHUNK) {
                let sql = format!(
                    "INSERT INTO audit_by_customer (run, customer_id, idx) VALUES {}",
                    values_clause(self.backend, chunk.len(), 3)
                );
                let mut q: AnyQuery<'_> = sqlx::query(AssertSqlSafe(sql));
                for (c, i) in chunk {
                    q = q.bind(run).bind(c.as_slice()).bind(*i);
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        // The step is committed whatever the merges do: a merge that fails is tried again
        // after the next step, and the runs stay correct meanwhile, only more of them.
        if let Err(e) = self.merge_audit_runs().await {
            tracing::warn!(error = %e, "merging runs of the audit log's by-customer index failed; will retry");
        }
        u64::try_from(to).map_err(|_| StoreError::Corrupt("negative watermark"))
    }

    /// Merges every [`FANOUT`] runs of a level into one run of the next, lowest level first,
    /// each merge in a transaction of its own. A merge first takes the index's write lock (the
    /// watermark's row, as steps and the rebuild do), then claims its runs by deleting their
    /// entries in `audit_index_runs`: another indexer that claimed one first wins, and this
    /// merge is dropped (it comes again after the next step).
    async fn merge_audit_runs(&self) -> StoreResult<()> {
        let mut level = 0i64;
        loop {
            let runs: Vec<i64> = sqlx::query_scalar(
                "SELECT run FROM audit_index_runs WHERE level = $1 ORDER BY run",
            )
            .bind(level)
            .fetch_all(&self.index_pool)
            .await?;
            if runs.len() < FANOUT {
                // A level below FANOUT runs leaves the next one as it was.
                return Ok(());
            }
            let runs = &runs[..FANOUT];
            let started = std::time::Instant::now();
            let mut tx = self.index_pool.begin().await?;
            sqlx::query("UPDATE audit_index_state SET indexed = indexed WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            // Numbered before the claim: the merged runs may be the newest.
            let merged = new_run(&mut tx, level + 1).await?;
            let list = in_list(self.backend, runs.len(), 0);
            let claim = bind_runs(
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM audit_index_runs WHERE run IN ({list})"
                ))),
                runs,
            );
            if claim.execute(&mut *tx).await?.rows_affected() != runs.len() as u64 {
                tx.rollback().await?;
                return Ok(());
            }
            let copy_list = in_list(self.backend, runs.len(), 1);
            let copy = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO audit_by_customer (run, customer_id, idx) \
                 SELECT {first}, customer_id, idx FROM audit_by_customer WHERE run IN ({copy_list}) \
                 ORDER BY customer_id, idx",
                first = match self.backend {
                    Backend::Sqlite => "?",
                    Backend::Postgres => "$1",
                }
            )))
            .bind(merged);
            bind_runs(copy, runs).execute(&mut *tx).await?;
            let drop = bind_runs(
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM audit_by_customer WHERE run IN ({list})"
                ))),
                runs,
            );
            let rows = drop.execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            tracing::debug!(
                level = level + 1,
                rows,
                ms = started.elapsed().as_millis() as u64,
                "merged runs of the audit log's by-customer index"
            );
            level += 1;
        }
    }

    /// How the index's connections name the log's tables: on SQLite the log is attached as
    /// `log` (named outright, so that no table of the same name in the index's own file could
    /// stand in for it); on PostgreSQL they share a database.
    fn log_schema(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "log.",
            Backend::Postgres => "",
        }
    }

    /// A customer's entries, newest first, before index `before`: the indexed ones (one seek
    /// per run, the newest `limit` of them taken before their entries are read) and the tail
    /// past the watermark. An index row counts only if its entry names
    /// the same customer.
    pub(crate) async fn customer_audit_entries(
        &self,
        customer: CustomerId,
        before: u64,
        limit: u32,
    ) -> StoreResult<Vec<StoredAuditEntry>> {
        let id = customer.as_bytes().to_vec();
        let log = self.log_schema();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT e.idx, e.leaf, e.occurred_at, e.action, e.customer_id, e.hashes FROM \
               (SELECT DISTINCT customer_id, idx FROM audit_by_customer \
                WHERE run IN (SELECT run FROM audit_index_runs) AND customer_id = $1 AND idx < $2 \
                ORDER BY idx DESC LIMIT $3) b \
             JOIN {log}audit_entries e ON e.idx = b.idx AND e.customer_id = b.customer_id \
             UNION ALL \
             SELECT idx, leaf, occurred_at, action, customer_id, hashes FROM {log}audit_entries \
             WHERE idx >= (SELECT indexed FROM audit_index_state WHERE id = 1) AND idx < $4 AND customer_id = $5 \
             ORDER BY 1 DESC LIMIT $6"
        )))
        .bind(id.clone())
        .bind(i64_of(before)?)
        .bind(i64::from(limit))
        .bind(i64_of(before)?)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.index_pool)
        .await?;
        let mut out: Vec<StoredAuditEntry> =
            rows.iter().map(entry_from).collect::<StoreResult<_>>()?;
        // An entry indexed between the two halves of the query could appear twice.
        out.dedup_by_key(|e| e.index);
        Ok(out)
    }

    /// The watermark.
    pub(crate) async fn read_index_watermark(&self) -> StoreResult<u64> {
        let w: i64 = sqlx::query("SELECT indexed FROM audit_index_state WHERE id = 1")
            .fetch_one(&self.index_pool)
            .await?
            .try_get(0)?;
        u64::try_from(w).map_err(|_| StoreError::Corrupt("negative watermark"))
    }

    /// Every row of the index that the access log reads (rows of listed runs), `limit` at a
    /// time, handed to `page` as (customer id, entry index), for `audit verify`. All pages come
    /// from one snapshot: a merge committing meanwhile moves rows to a new run past the pages
    /// read, and pages read apart would count them twice. Rows of a run that is not listed are
    /// left out, as the access log leaves them out: their entries then count as missing.
    pub(crate) async fn scan_index_rows(
        &self,
        limit: u32,
        page: &mut (dyn FnMut(Vec<(Vec<u8>, u64)>) + Send),
    ) -> StoreResult<()> {
        let corrupt = || StoreError::Corrupt("a by-customer index row");
        let mut tx = self.index_pool.begin().await?;
        if self.backend == Backend::Postgres {
            // SQLite's transaction reads one snapshot from its first read; PostgreSQL's only so.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let listed: std::collections::HashSet<i64> =
            sqlx::query_scalar::<_, i64>("SELECT run FROM audit_index_runs")
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let mut after = (i64::MIN, Vec::new(), 0i64);
        loop {
            let mut rows: Vec<(i64, Vec<u8>, i64)> = Vec::new();
            if self.backend == Backend::Sqlite {
                // The page as one row (see `audit_entry_range_grouped`).
                let row = sqlx::query(
                    "SELECT group_concat(idx, ','), CAST(group_concat(customer_id, '') AS BLOB), \
                       group_concat(coalesce(octet_length(customer_id), -1), ','), \
                       group_concat(run, ',') \
                     FROM (SELECT run, customer_id, idx FROM audit_by_customer \
                       WHERE (run, customer_id, idx) > ($1, $2, $3) \
                       ORDER BY run, customer_id, idx LIMIT $4)",
                )
                .bind(after.0)
                .bind(after.1.clone())
                .bind(after.2)
                .bind(i64::from(limit))
                .fetch_one(&mut *tx)
                .await?;
                let idx = int_list(&row, 0)?;
                let mut customers = Packed::read(&row, 1)?;
                let runs = int_list(&row, 3)?;
                if runs.len() != idx.len() {
                    return Err(corrupt());
                }
                for (n, i) in idx.iter().enumerate() {
                    let c = customers.next(n)?.ok_or_else(corrupt)?;
                    rows.push((runs[n], c, *i));
                }
                if customers.lengths.len() != idx.len() || !customers.finished() {
                    return Err(corrupt());
                }
                // group_concat keeps no promised order: put the page back in key order.
                rows.sort_unstable();
            } else {
                for r in sqlx::query(
                    "SELECT run, customer_id, idx FROM audit_by_customer \
                     WHERE (run, customer_id, idx) > ($1, $2, $3) \
                     ORDER BY run, customer_id, idx LIMIT $4",
                )
                .bind(after.0)
                .bind(after.1.clone())
                .bind(after.2)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?
                {
                    rows.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
                }
            }
            let Some(last) = rows.last().cloned() else {
                break;
            };
            after = last;
            let kept = rows
                .into_iter()
                .filter(|(run, _, _)| listed.contains(run))
                .map(|(_, c, i)| Ok((c, u64::try_from(i).map_err(|_| corrupt())?)))
                .collect::<StoreResult<Vec<_>>>()?;
            page(kept);
        }
        tx.rollback().await?;
        Ok(())
    }
}

/// `q` with the run numbers `runs` bound after what it has bound already.
fn bind_runs<'q>(mut q: AnyQuery<'q>, runs: &[i64]) -> AnyQuery<'q> {
    for r in runs {
        q = q.bind(*r);
    }
    q
}

/// Numbers a new run of `level`, past every run listed and every run holding rows (a run struck
/// off the list, or left by a rebuild, is never numbered again), and lists it.
async fn new_run(tx: &mut sqlx::Transaction<'static, sqlx::Any>, level: i64) -> StoreResult<i64> {
    let run: i64 = sqlx::query_scalar(
        "SELECT MAX(m) + 1 FROM (SELECT COALESCE(MAX(run), 0) AS m FROM audit_index_runs \
         UNION ALL SELECT COALESCE(MAX(run), 0) FROM audit_by_customer) t",
    )
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO audit_index_runs (run, level) VALUES ($1, $2)")
        .bind(run)
        .bind(level)
        .execute(&mut **tx)
        .await?;
    Ok(run)
}

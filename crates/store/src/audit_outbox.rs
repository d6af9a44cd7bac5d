//! The audit outbox: a write and its audit entry commit in one transaction, the entry waiting
//! here until the log writer appends it to the Merkle log. Each pending entry carries a keyed
//! tag, so that one changed while it waits (by anyone who can write the database but holds no
//! key) is refused instead of appended as if genuine, and `steward audit verify` finds it.
//!
//! The tag covers one entry; it does not order them. A pending entry removed, or a genuine one
//! copied, is not detected by it (the write it records is, by the write's own tables).

use sqlx::Row;
use steward_domain::CustomerId;

use crate::audit::Drained;
use crate::{AuditEntryRow, AuditSealer, AuditTip, Backend, SqlStore, StoreError, StoreResult};

/// Tags pending audit entries and checks their tags: the key holder (the service) gives the
/// store one (`AuditStore::tag_outbox_with`).
pub trait OutboxTagger: Send + Sync + std::fmt::Debug {
    /// The tag of an entry's encoding.
    fn tag(&self, message: &[u8]) -> [u8; 32];
    /// Whether `tag` is the tag of `message` (in constant time).
    fn check(&self, message: &[u8], tag: &[u8]) -> bool;
}

/// What a check of the pending entries found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCheck {
    /// Pending entries whose tags check.
    pub tagged: u64,
    /// Pending entries written before tags existed (at the upgrade that added them).
    pub untagged: u64,
    /// Sequence numbers of pending entries whose tag does not check (or is missing, or whose
    /// columns do not parse): changed since they were written.
    pub tampered: Vec<i64>,
}

/// The columns a pending entry is read with, in order. The action is read as bytes: a changed
/// one need not be text, and must still be read to be refused.
fn pending_columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "seq, leaf, occurred_at, CAST(action AS BLOB), customer_id, tag",
        Backend::Postgres => "seq, leaf, occurred_at, convert_to(action, 'UTF8'), customer_id, tag",
    }
}

/// The bytes a tag covers: every column of the row, each length-prefixed, so that no two rows
/// encode alike. Built from the stored bytes as they are (not as parsed), so that a column
/// changed to something that no longer parses still encodes, and simply fails its check.
pub(crate) fn pending_message(
    leaf: &[u8],
    occurred_at: i64,
    action: &[u8],
    customer: Option<&[u8]>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(leaf.len() + action.len() + 48);
    let mut put = |bytes: &[u8]| {
        m.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        m.extend_from_slice(bytes);
    };
    put(leaf);
    put(&occurred_at.to_be_bytes());
    put(action);
    match customer {
        None => m.push(0),
        Some(c) => {
            m.push(1);
            m.extend_from_slice(&(c.len() as u64).to_be_bytes());
            m.extend_from_slice(c);
        }
    }
    m
}

/// One pending row as stored.
struct Pending {
    seq: i64,
    leaf: Vec<u8>,
    occurred_at: i64,
    action: Vec<u8>,
    customer: Option<Vec<u8>>,
    tag: Option<Vec<u8>>,
}

/// What a pending row turned out to be.
enum Verdict {
    /// Tagged (or from before tags) and well formed: append it.
    Genuine(AuditEntryRow),
    /// Anything else; the encoding, for the stand-in entry.
    Tampered(Vec<u8>),
}

impl Pending {
    fn read(r: &sqlx::any::AnyRow) -> StoreResult<Self> {
        Ok(Self {
            seq: r.try_get(0)?,
            leaf: r.try_get(1)?,
            occurred_at: r.try_get(2)?,
            action: r.try_get(3)?,
            customer: r.try_get(4)?,
            tag: r.try_get(5)?,
        })
    }

    fn message(&self) -> Vec<u8> {
        pending_message(
            &self.leaf,
            self.occurred_at,
            &self.action,
            self.customer.as_deref(),
        )
    }

    /// Checks the tag (a row at or below `untagged_until` may have none: written before tags).
    fn judge(self, tagger: &dyn OutboxTagger, untagged_until: i64) -> (bool, Verdict) {
        let message = self.message();
        let (ok, legacy) = match &self.tag {
            Some(t) => (tagger.check(&message, t), false),
            None => (self.seq <= untagged_until, true),
        };
        let row = || -> Option<AuditEntryRow> {
            Some(AuditEntryRow {
                leaf: self.leaf.clone(),
                occurred_at: self.occurred_at,
                action: String::from_utf8(self.action.clone()).ok()?,
                customer_id: match &self.customer {
                    None => None,
                    Some(c) => Some(CustomerId::from_slice(c)?),
                },
            })
        };
        match ok.then(row).flatten() {
            Some(r) => (legacy, Verdict::Genuine(r)),
            None => (legacy, Verdict::Tampered(message)),
        }
    }
}

impl SqlStore {
    /// The tagger, or an error: fail closed while no service has given one.
    fn tagger(&self) -> StoreResult<&dyn OutboxTagger> {
        self.outbox_tagger
            .get()
            .map(|t| &**t)
            .ok_or(StoreError::Unsupported(
                "an audited write before the outbox key is loaded",
            ))
    }

    /// Writes audit entries into the outbox, inside a write's own transaction, each with its
    /// tag. Without a tagger nothing is written.
    pub(crate) async fn outbox(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        rows: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let tagger = self.tagger()?;
        for chunk in rows.chunks(crate::sql::INSERT_CHUNK) {
            let sql = format!(
                "INSERT INTO audit_outbox (leaf, occurred_at, action, customer_id, tag) VALUES {}",
                crate::sql::values_clause(self.backend, chunk.len(), 5)
            );
            let mut q: crate::sql::AnyQuery<'_> = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                let customer = e.customer_id.map(|c| c.as_bytes().to_vec());
                let tag = tagger.tag(&pending_message(
                    &e.leaf,
                    e.occurred_at,
                    e.action.as_bytes(),
                    customer.as_deref(),
                ));
                q = q
                    .bind(e.leaf.as_slice())
                    .bind(e.occurred_at)
                    .bind(e.action.as_str())
                    .bind(customer)
                    .bind(tag.to_vec());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The last sequence number written before tags existed (0: none).
    async fn untagged_until(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query("SELECT last_seq FROM audit_outbox_untagged WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()?
                .unwrap_or(0),
        )
    }

    /// The rows judged: genuine ones as they are, tampered ones replaced by the sealer's
    /// stand-in entry (which records that one was refused, and its digest).
    async fn judged(
        &self,
        rows: &[sqlx::any::AnyRow],
        sealer: &dyn AuditSealer,
    ) -> StoreResult<Vec<AuditEntryRow>> {
        let tagger = self.tagger()?;
        let mut untagged_until = None;
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let p = Pending::read(r)?;
            let until = if p.tag.is_none() && untagged_until.is_none() {
                *untagged_until.insert(self.untagged_until().await?)
            } else {
                untagged_until.unwrap_or(0)
            };
            let seq = p.seq;
            match p.judge(tagger, until).1 {
                Verdict::Genuine(e) => entries.push(e),
                Verdict::Tampered(message) => entries.push(sealer.refused(seq, &message)),
            }
        }
        Ok(entries)
    }

    /// Moves up to `limit` outbox entries into the log: the append and the outbox mark commit
    /// together in the log, then the moved rows leave the outbox. A crash between the two leaves
    /// rows below the mark, which the next drain deletes without appending them again.
    pub(crate) async fn drain_outbox(
        &self,
        limit: u32,
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<(usize, Option<AuditTip>)> {
        if self.backend == Backend::Postgres {
            return self.drain_outbox_rows(limit, sealer, known).await;
        }
        let mark: i64 = sqlx::query("SELECT last_seq FROM audit_drain WHERE id = 1")
            .fetch_one(&self.log_pool)
            .await?
            .try_get(0)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM audit_outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
            pending_columns(self.backend)
        )))
        .bind(mark)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        // Nothing to move: no write either. The writer drains every tenth of a second; a DELETE
        // each time took the data file's write lock for nothing, and beside other processes'
        // writes its busy wait could hold the writer (and every read waiting on it) for seconds.
        // Rows below the mark a crash left behind go with the next drain that moves something.
        let Some(last) = rows.last() else {
            return Ok((0, known));
        };
        let last: i64 = last.try_get(0)?;
        let entries = self.judged(&rows, sealer).await?;
        let tip = self
            .append_entries(
                &entries,
                sealer,
                known,
                Some(Drained::Mark {
                    from: mark,
                    to: last,
                }),
            )
            .await?;
        sqlx::query("DELETE FROM audit_outbox WHERE seq <= $1")
            .bind(last)
            .execute(&self.pool)
            .await?;
        Ok((entries.len(), Some(tip)))
    }

    /// PostgreSQL's drain. Sequence numbers there are taken when a row is inserted, not when it
    /// commits, so a later number can commit first and a watermark would skip (and then delete)
    /// the earlier one. The outbox and the log share the database, so the moved rows are
    /// deleted in the append's own transaction instead: whatever is still in the outbox has not
    /// been appended, whenever it committed.
    async fn drain_outbox_rows(
        &self,
        limit: u32,
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<(usize, Option<AuditTip>)> {
        // Rows at or below the watermark earlier versions kept were appended by them (a crash
        // can leave them behind); the watermark no longer moves on PostgreSQL.
        sqlx::query(
            "DELETE FROM audit_outbox WHERE seq <= (SELECT last_seq FROM audit_drain WHERE id = 1)",
        )
        .execute(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM audit_outbox ORDER BY seq LIMIT $1",
            pending_columns(self.backend)
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok((0, known));
        }
        let seqs = rows
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        let entries = self.judged(&rows, sealer).await?;
        let tip = self
            .append_entries(&entries, sealer, known, Some(Drained::Rows(seqs)))
            .await?;
        Ok((entries.len(), Some(tip)))
    }

    /// Checks every pending entry's tag with `tagger` (read-only; `steward audit verify`).
    pub(crate) async fn check_outbox(&self, tagger: &dyn OutboxTagger) -> StoreResult<OutboxCheck> {
        let until = self.untagged_until().await?;
        // Rows the log already holds (SQLite: at or below the drain's mark, left by a crash)
        // are not pending.
        let mark: i64 = sqlx::query("SELECT last_seq FROM audit_drain WHERE id = 1")
            .fetch_one(&self.log_pool)
            .await?
            .try_get(0)?;
        let mut check = OutboxCheck::default();
        let mut after = mark;
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM audit_outbox WHERE seq > $1 ORDER BY seq LIMIT 1000",
                pending_columns(self.backend)
            )))
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(check);
            };
            after = last.try_get(0)?;
            for r in &rows {
                let p = Pending::read(r)?;
                let seq = p.seq;
                match p.judge(tagger, until) {
                    (_, Verdict::Tampered(_)) => check.tampered.push(seq),
                    (true, Verdict::Genuine(_)) => check.untagged += 1,
                    (false, Verdict::Genuine(_)) => check.tagged += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pending_message;

    #[test]
    fn no_two_rows_encode_alike() {
        // Bytes moved from one column to the next change the encoding.
        let a = pending_message(b"ab", 1, b"c", None);
        let b = pending_message(b"a", 1, b"bc", None);
        assert_ne!(a, b);
        assert_ne!(
            pending_message(b"", 0, b"", None),
            pending_message(b"", 0, b"", Some(b""))
        );
        assert_ne!(
            pending_message(b"x", 1, b"read", Some(&[1; 16])),
            pending_message(b"x", 2, b"read", Some(&[1; 16]))
        );
    }
}

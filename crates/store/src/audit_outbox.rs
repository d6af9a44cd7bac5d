//! The audit outbox: a write and its audit entry commit in one transaction, the entry waiting
//! here until the log writer appends it to the Merkle log. Each pending entry carries a keyed
//! tag over its number and every column, so that one changed, forged or copied while it waits
//! (by anyone who can write the database but holds no key) is refused instead of appended as if
//! genuine, and `steward audit verify` finds it. A refused row is kept, as it was, in
//! `audit_outbox_refused` for whoever investigates; the log gets a stand-in that says so.
//!
//! What a tag cannot show: that an entry was deleted (or hidden below the drain's mark); that
//! one was put back, number and all, after it was appended (on PostgreSQL as it stands, on SQLite
//! with the drain's mark lowered too): it is appended twice; nor, for whoever could read a
//! rolled-back transaction's pages, that a tagged entry of a write that never committed was
//! inserted. Each needs a record of every number drained, which the log does not keep.

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

/// What one drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Entries appended (stand-ins for refused ones included).
    pub moved: usize,
    /// Outbox numbers of the rows refused, now committed as stand-ins and kept aside.
    pub refused: Vec<i64>,
    /// The tip the append left (or the one given, when nothing moved).
    pub tip: Option<AuditTip>,
}

/// What a check of the pending entries found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCheck {
    /// Pending entries whose tags check.
    pub genuine: u64,
    /// Numbers of pending entries whose tag is missing or does not check (changed, forged or
    /// copied since they were written, or written before tags existed).
    pub tampered: Vec<i64>,
    /// SQLite: the drain's mark (in the log's file) stands past every number ever given (mark,
    /// highest number): rows after the highest would be skipped by the drain and by this check.
    pub mark_ahead: Option<(i64, i64)>,
}

/// SQLite: the highest outbox number ever given (AUTOINCREMENT's own rule: the larger of its
/// counter and the largest number in the table).
const SQLITE_HIGHEST_NUMBER: &str = "SELECT max(coalesce((SELECT CAST(seq AS INTEGER) FROM sqlite_sequence WHERE name = 'audit_outbox'), 0), \
                                    coalesce((SELECT max(seq) FROM audit_outbox), 0))";

/// Longest leaf or action a drain reads; a longer one is refused unread (a row of a gigabyte
/// must not take the writer's memory). Real leaves are a few hundred bytes at most.
const LONGEST: i64 = 16_384;

/// The columns a pending entry is read with, in order. Every value is read as bytes, and only
/// if it has a size a genuine row can have (a tag 32 bytes, a customer id 16, a leaf or action
/// at most [`LONGEST`]): a changed row must still be read to be refused, and cheaply.
fn pending_columns(backend: Backend) -> String {
    let (blob_len, text_len, text_bytes) = match backend {
        // `length` of a BLOB column is read from the record header, without its content.
        Backend::Sqlite => (
            "length({c})",
            "length(CAST({c} AS BLOB))",
            "CAST({c} AS BLOB)",
        ),
        Backend::Postgres => (
            "octet_length({c})",
            "octet_length({c})",
            // The text's bytes as stored, whatever the database's encoding (`convert_to` would
            // fail on bytes a SQL_ASCII database let in, and stall every drain after them).
            "textsend({c})",
        ),
    };
    let sized = |c: &str, test: &str| {
        format!(
            "CASE WHEN {} {test} THEN {c} END",
            blob_len.replace("{c}", c)
        )
    };
    format!(
        "seq, {}, occurred_at, CASE WHEN {} <= {LONGEST} THEN {} END, {}, {}",
        sized("leaf", &format!("<= {LONGEST}")),
        text_len.replace("{c}", "action"),
        text_bytes.replace("{c}", "action"),
        sized("customer_id", "= 16"),
        sized("tag", "= 32"),
    )
}

/// The bytes a tag covers: the entry's number and every column, each length-prefixed, so that
/// no two rows encode alike. Built from the stored bytes as they are (not as parsed), so that a
/// column changed to something that no longer parses still encodes, and simply fails its check.
pub(crate) fn pending_message(
    seq: i64,
    leaf: &[u8],
    occurred_at: i64,
    action: &[u8],
    customer: Option<&[u8]>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(leaf.len() + action.len() + 64);
    let mut put = |bytes: &[u8]| {
        m.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        m.extend_from_slice(bytes);
    };
    put(&seq.to_be_bytes());
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

/// One pending row as stored (`None`: missing, or too long to read).
struct Pending {
    seq: i64,
    leaf: Option<Vec<u8>>,
    occurred_at: Option<i64>,
    action: Option<Vec<u8>>,
    customer: Option<Vec<u8>>,
    tag: Option<Vec<u8>>,
}

/// What a pending row turned out to be.
enum Verdict {
    /// Its tag checks and its columns agree with its leaf: append it.
    Genuine(AuditEntryRow),
    /// Anything else; what it held, for the stand-in's digest.
    Tampered(Vec<u8>),
}

impl Pending {
    /// The row; any column that does not read as its type reads as missing (refused below).
    fn read(r: &sqlx::any::AnyRow) -> StoreResult<Self> {
        Ok(Self {
            seq: r.try_get(0)?,
            leaf: r.try_get(1).ok().flatten(),
            occurred_at: r.try_get(2).ok(),
            action: r.try_get(3).ok().flatten(),
            customer: r.try_get(4).ok().flatten(),
            tag: r.try_get(5).ok().flatten(),
        })
    }

    /// The encoding a tag covers (missing columns as empty: such a row is refused anyway).
    fn message(&self) -> Vec<u8> {
        pending_message(
            self.seq,
            self.leaf.as_deref().unwrap_or_default(),
            self.occurred_at.unwrap_or_default(),
            self.action.as_deref().unwrap_or_default(),
            self.customer.as_deref(),
        )
    }

    fn judge(self, tagger: &dyn OutboxTagger) -> Verdict {
        let message = self.message();
        let tagged = self
            .tag
            .as_deref()
            .is_some_and(|t| tagger.check(&message, t));
        // What the service wrote always agrees with its leaf; anything else would stop `audit
        // verify` at this entry for good.
        let row = tagged.then(|| self.into_row()).flatten().filter(|row| {
            steward_domain::AuditLeaf::columns(&row.leaf).is_some_and(|(at, action, customer)| {
                at == row.occurred_at && action == row.action && customer == row.customer_id
            })
        });
        match row {
            Some(r) => Verdict::Genuine(r),
            None => Verdict::Tampered(message),
        }
    }

    /// The row as an entry to append, if every column reads as its type.
    fn into_row(self) -> Option<AuditEntryRow> {
        Some(AuditEntryRow {
            leaf: self.leaf?,
            occurred_at: self.occurred_at?,
            action: String::from_utf8(self.action?).ok()?,
            customer_id: match self.customer {
                None => None,
                Some(c) => Some(CustomerId::from_slice(&c)?),
            },
        })
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
        if rows.is_empty() {
            return Ok(());
        }
        let tagger = self.tagger()?;
        let seqs = self.next_outbox_numbers(tx, rows.len()).await?;
        for (chunk, numbers) in rows
            .chunks(crate::sql::INSERT_CHUNK)
            .zip(seqs.chunks(crate::sql::INSERT_CHUNK))
        {
            let sql = format!(
                "INSERT INTO audit_outbox (seq, leaf, occurred_at, action, customer_id, tag) VALUES {}",
                crate::sql::values_clause(self.backend, chunk.len(), 6)
            );
            let mut q: crate::sql::AnyQuery<'_> = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (e, seq) in chunk.iter().zip(numbers) {
                let customer = e.customer_id.map(|c| c.as_bytes().to_vec());
                let tag = tagger.tag(&pending_message(
                    *seq,
                    &e.leaf,
                    e.occurred_at,
                    e.action.as_bytes(),
                    customer.as_deref(),
                ));
                q = q
                    .bind(*seq)
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

    /// `n` new outbox numbers, taken before the rows are written so that each tag covers its
    /// row's number (a copy under another number does not check).
    async fn next_outbox_numbers(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        n: usize,
    ) -> StoreResult<Vec<i64>> {
        let count = i64::try_from(n).map_err(|_| StoreError::Corrupt("too many entries"))?;
        match self.backend {
            // The write transaction holds SQLite's one write lock (BEGIN IMMEDIATE): the numbers
            // after the highest ever given (AUTOINCREMENT's own rule) are this write's.
            Backend::Sqlite => {
                let last: i64 = sqlx::query(SQLITE_HIGHEST_NUMBER)
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get(0)?;
                // Past the largest number, fail: a number wrapped round would be drained as
                // old, unseen (AUTOINCREMENT itself fails there too).
                last.checked_add(count).ok_or(StoreError::Corrupt(
                    "the audit outbox has run out of numbers",
                ))?;
                Ok((1..=count).map(|i| last + i).collect())
            }
            Backend::Postgres => {
                let rows = sqlx::query(
                    "SELECT nextval(pg_get_serial_sequence('audit_outbox', 'seq')) FROM generate_series(1, $1)",
                )
                .bind(count)
                .fetch_all(&mut **tx)
                .await?;
                let mut seqs = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>(0))
                    .collect::<Result<Vec<_>, _>>()?;
                seqs.sort_unstable();
                Ok(seqs)
            }
        }
    }

    /// The rows judged: genuine ones as they are, the others replaced by the sealer's stand-in
    /// entry (which records that one was refused, and its digest). Also returns the refused
    /// rows' numbers, for the quarantine.
    fn judged(
        &self,
        rows: &[sqlx::any::AnyRow],
        sealer: &dyn AuditSealer,
    ) -> StoreResult<(Vec<AuditEntryRow>, Vec<i64>)> {
        let tagger = self.tagger()?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut refused = Vec::new();
        for r in rows {
            let p = Pending::read(r)?;
            let seq = p.seq;
            match p.judge(tagger) {
                Verdict::Genuine(e) => entries.push(e),
                Verdict::Tampered(message) => {
                    entries.push(sealer.refused(seq, &message));
                    refused.push(seq);
                }
            }
        }
        Ok((entries, refused))
    }

    /// Moves up to `limit` outbox entries into the log: the append and the outbox mark commit
    /// together in the log, then the moved rows leave the outbox. A crash between the two leaves
    /// rows below the mark, which the next drain deletes without appending them again.
    pub(crate) async fn drain_outbox(
        &self,
        limit: u32,
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<DrainReport> {
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
            return Ok(DrainReport {
                tip: known,
                ..DrainReport::default()
            });
        };
        let last: i64 = last.try_get(0)?;
        let (entries, refused) = self.judged(&rows, sealer)?;
        // Kept aside before the append: a crash after it must not lose them (the mark moves
        // with the append, and rows below it are deleted unread).
        if !refused.is_empty() {
            let mut tx = self.write_tx().await?;
            quarantine(&mut tx, self.backend, &refused).await?;
            tx.commit().await?;
        }
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
        Ok(DrainReport {
            moved: entries.len(),
            refused,
            tip: Some(tip),
        })
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
    ) -> StoreResult<DrainReport> {
        // Rows an earlier version left at or below its watermark (appended, then a crash before
        // their delete) carry no tag: they are refused and kept aside like any other, not
        // deleted unseen on the word of a number anyone with the database could raise.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM audit_outbox ORDER BY seq LIMIT $1",
            pending_columns(self.backend)
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(DrainReport {
                tip: known,
                ..DrainReport::default()
            });
        }
        let seqs = rows
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        let (entries, refused) = self.judged(&rows, sealer)?;
        let tip = self
            .append_entries(
                &entries,
                sealer,
                known,
                Some(Drained::Rows {
                    seqs,
                    refused: refused.clone(),
                }),
            )
            .await?;
        Ok(DrainReport {
            moved: entries.len(),
            refused,
            tip: Some(tip),
        })
    }

    /// Checks every pending entry's tag with `tagger` (read-only; `steward audit verify`).
    pub(crate) async fn check_outbox(&self, tagger: &dyn OutboxTagger) -> StoreResult<OutboxCheck> {
        // On SQLite, rows at or below the drain's mark are in the log already (a crash left
        // them); PostgreSQL's drain reads every row whatever the mark says, and so does this.
        let mark: i64 = match self.backend {
            Backend::Sqlite => sqlx::query("SELECT last_seq FROM audit_drain WHERE id = 1")
                .fetch_one(&self.log_pool)
                .await?
                .try_get(0)?,
            Backend::Postgres => i64::MIN,
        };
        let mut check = OutboxCheck::default();
        if self.backend == Backend::Sqlite {
            let highest: i64 = sqlx::query(SQLITE_HIGHEST_NUMBER)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            if mark > highest {
                check.mark_ahead = Some((mark, highest));
            }
        }
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
                match p.judge(tagger) {
                    Verdict::Tampered(_) => check.tampered.push(seq),
                    Verdict::Genuine(_) => check.genuine += 1,
                }
            }
        }
    }
}

/// Keeps refused outbox rows `seqs` as they were (each column capped at [`LONGEST`] bytes) in
/// `audit_outbox_refused`, inside the transaction that deletes them from the outbox.
pub(crate) async fn quarantine(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    seqs: &[i64],
) -> StoreResult<()> {
    let (cap, action) = match backend {
        Backend::Sqlite => (
            "substr(CAST({c} AS BLOB), 1, {n})",
            "substr(CAST(action AS BLOB), 1, {n})",
        ),
        Backend::Postgres => (
            "substring({c} from 1 for {n})",
            "substring(textsend(action) from 1 for {n})",
        ),
    };
    let cap = |c: &str| cap.replace("{c}", c).replace("{n}", &LONGEST.to_string());
    let action = action.replace("{n}", &LONGEST.to_string());
    let now = steward_domain::Timestamp::now().millis();
    for chunk in seqs.chunks(crate::sql::INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO audit_outbox_refused (seq, leaf, occurred_at, action, customer_id, tag, refused_at) \
             SELECT seq, {}, occurred_at, {action}, {}, {}, $1 FROM audit_outbox o WHERE seq IN ({}) \
             AND NOT EXISTS (SELECT 1 FROM audit_outbox_refused r WHERE r.seq = o.seq AND r.tag IS NOT DISTINCT FROM o.tag)",
            cap("leaf"),
            cap("customer_id"),
            cap("tag"),
            (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut q: crate::sql::AnyQuery<'_> = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for seq in chunk {
            q = q.bind(*seq);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pending_message;

    #[test]
    fn no_two_rows_encode_alike() {
        // Bytes moved from one column to the next change the encoding.
        let a = pending_message(1, b"ab", 1, b"c", None);
        let b = pending_message(1, b"a", 1, b"bc", None);
        assert_ne!(a, b);
        assert_ne!(
            pending_message(1, b"", 0, b"", None),
            pending_message(1, b"", 0, b"", Some(b""))
        );
        assert_ne!(
            pending_message(1, b"x", 1, b"read", Some(&[1; 16])),
            pending_message(1, b"x", 2, b"read", Some(&[1; 16]))
        );
        // The same entry under another number: a copy.
        assert_ne!(
            pending_message(1, b"x", 1, b"read", None),
            pending_message(2, b"x", 1, b"read", None)
        );
    }

    mod properties {
        use super::super::pending_message;
        use proptest::prelude::*;

        type Row = (i64, Vec<u8>, i64, Vec<u8>, Option<Vec<u8>>);

        fn row() -> impl Strategy<Value = Row> {
            (
                any::<i64>(),
                proptest::collection::vec(any::<u8>(), 0..12),
                any::<i64>(),
                proptest::collection::vec(any::<u8>(), 0..12),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            )
        }

        proptest! {
            /// The encoding is injective: two rows encode alike only if they are the same row.
            #[test]
            fn rows_encode_alike_only_if_equal(a in row(), b in row()) {
                let enc = |r: &Row| pending_message(r.0, &r.1, r.2, &r.3, r.4.as_deref());
                prop_assert_eq!(enc(&a) == enc(&b), a == b);
            }
        }
    }
}

//! Erasure by crypto-shredding, legal holds, and the purge of what an erasure leaves behind.
//!
//! An erasure deletes the customer's data key and blind-index entries in one transaction, so the
//! customer is unreadable and unfindable when it commits; the ciphertext rows left (interactions,
//! purchases) cannot be opened by anyone and are purged after it, in bounded transactions.

use sqlx::{AssertSqlSafe, Row};
use steward_domain::CustomerId;

use crate::sql::id16;
use crate::{AuditEntryRow, SqlStore, StoreResult};

/// Where a customer stands before an erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerStanding {
    /// No such customer, or erased already.
    Absent,
    /// Present, with no legal hold.
    Present,
    /// Present, under the legal hold with this case reference.
    Held(String),
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erased {
    /// The key and look-ups are gone; `remaining` ciphertext rows wait for the purge.
    Shredded {
        /// Interactions and purchases left to purge, counted per table up to the cap asked for.
        remaining: u64,
    },
    /// No such customer, or erased already.
    Absent,
    /// A legal hold blocks the erasure.
    Held(String),
}

/// One row of the record of erasures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRow {
    /// Whose data was erased.
    pub customer_id: CustomerId,
    /// The erasure journal's sequence number for it.
    pub journal_seq: i64,
    /// When the key was destroyed (Unix ms).
    pub erased_at: i64,
    /// When the last ciphertext row was purged (Unix ms), if it has been.
    pub purged_at: Option<i64>,
}

/// Tables holding rows about one customer that go with an erasure, children first. Consent
/// events and outlet links carry no values but tie the id to a history; they go at once, as do
/// the sealed profile changes (a customer has few) and any portal codes, sessions and contact changes (an erased
/// customer is signed out at once), and their message threads with the reply aliases.
const SHRED_AT_ONCE: [&str; 12] = [
    // A social event's keyed id would let whoever holds the blind key confirm that this
    // customer wrote a public post until the texts are purged: gone now (issue 23).
    "UPDATE interactions SET external_mac = NULL WHERE customer_id = $1",
    "DELETE FROM consent_events WHERE customer_id = $1",
    "DELETE FROM customer_outlets WHERE customer_id = $1",
    "DELETE FROM customer_changes WHERE customer_id = $1",
    "DELETE FROM portal_codes WHERE customer_id = $1",
    "DELETE FROM portal_sessions WHERE customer_id = $1",
    "DELETE FROM contact_changes WHERE customer_id = $1",
    // A campaign's counts stay; which of them was this customer does not.
    "UPDATE campaign_deliveries SET customer_id = NULL WHERE customer_id = $1",
    // Reply aliases stop reaching anyone; the texts are interactions, purged below.
    "DELETE FROM thread_messages WHERE customer_id = $1",
    "DELETE FROM message_threads WHERE customer_id = $1",
    "DELETE FROM undeliverable_addresses WHERE customer_id = $1",
    // That they were asked to answer a survey; their answer, if any, was never theirs by name.
    "DELETE FROM survey_invitations WHERE customer_id = $1",
];

/// Ciphertext tables purged after the shred, in bounded batches.
const PURGED: [&str; 2] = ["interactions", "purchases"];

impl SqlStore {
    pub(crate) async fn customer_standing_impl(
        &self,
        id: CustomerId,
    ) -> StoreResult<CustomerStanding> {
        let row =
            sqlx::query("SELECT legal_hold FROM customers WHERE id = $1 AND erased_at IS NULL")
                .bind(id.as_bytes().to_vec())
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            None => CustomerStanding::Absent,
            Some(r) => match r.try_get::<Option<String>, _>(0)? {
                Some(h) => CustomerStanding::Held(h),
                None => CustomerStanding::Present,
            },
        })
    }

    pub(crate) async fn set_legal_hold_impl(
        &self,
        id: CustomerId,
        reference: Option<&str>,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let q =
            sqlx::query("UPDATE customers SET legal_hold = $2 WHERE id = $1 AND erased_at IS NULL")
                .bind(id.as_bytes().to_vec())
                .bind(reference);
        self.update_with_audit(q, audit).await
    }

    pub(crate) async fn erase_customer_impl(
        &self,
        id: CustomerId,
        journal_seq: i64,
        at: i64,
        count_up_to: u64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<Erased> {
        let mut tx = self.write_tx().await?;
        let idb = id.as_bytes().to_vec();
        // Read under the write lock (SQLite) or a row lock (PostgreSQL): a hold set a moment
        // ago is seen.
        let lock = match self.backend {
            crate::Backend::Sqlite => {
                "SELECT legal_hold FROM customers WHERE id = $1 AND erased_at IS NULL"
            }
            crate::Backend::Postgres => {
                "SELECT legal_hold FROM customers WHERE id = $1 AND erased_at IS NULL FOR UPDATE"
            }
        };
        let Some(row) = sqlx::query(lock)
            .bind(idb.clone())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Erased::Absent);
        };
        if let Some(h) = row.try_get::<Option<String>, _>(0)? {
            return Ok(Erased::Held(h));
        }
        // Every recipient that received their data is told, in this transaction; then what went
        // where is forgotten and their pseudonyms map to nothing (issue 22).
        Self::follow(
            &mut tx,
            self.backend,
            id,
            steward_domain::sharing::Change::Erased,
            crate::Touched::All,
            at,
        )
        .await?;
        Self::forget_disclosures(&mut tx, id).await?;
        // The shred: without its data key no sealed byte of this customer can be opened.
        sqlx::query("DELETE FROM data_keys WHERE customer_id = $1")
            .bind(idb.clone())
            .execute(&mut *tx)
            .await?;
        // Unfindable: every blind-index entry the customer's list names, and the list.
        Self::delete_lookups(&mut tx, id).await?;
        for sql in SHRED_AT_ONCE {
            sqlx::query(sql).bind(idb.clone()).execute(&mut *tx).await?;
        }
        // The profile's ciphertext is one row: cleared now; the row stays as a tombstone until
        // the rows that reference it are purged.
        let cleared: Vec<String> = steward_domain::ProfileField::ALL
            .iter()
            .map(|f| format!("{} = NULL", f.name()))
            .collect();
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE customers SET erased_at = $2, outlet_id = NULL, {} WHERE id = $1",
            cleared.join(", ")
        )))
        .bind(idb.clone())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO erasures (customer_id, journal_seq, erased_at) VALUES ($1, $2, $3) \
             ON CONFLICT (customer_id) DO UPDATE SET journal_seq = excluded.journal_seq, erased_at = excluded.erased_at, purged_at = NULL",
        )
        .bind(idb.clone())
        .bind(journal_seq)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        // Counted only up to `count_up_to`: the shred must not take longer for a long history.
        let mut remaining = 0u64;
        for table in PURGED {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE customer_id = $1 LIMIT $2) AS t"
            )))
            .bind(idb.clone())
            .bind(i64::try_from(count_up_to).unwrap_or(i64::MAX))
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            remaining += u64::try_from(n).unwrap_or(0);
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Erased::Shredded { remaining })
    }

    pub(crate) async fn purge_customer_impl(
        &self,
        id: CustomerId,
        limit: u32,
        at: i64,
    ) -> StoreResult<u64> {
        let idb = id.as_bytes().to_vec();
        let mut tx = self.write_tx().await?;
        let mut deleted = 0u64;
        for table in PURGED {
            let left = i64::from(limit) - i64::try_from(deleted).unwrap_or(i64::MAX);
            if left <= 0 {
                break;
            }
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE customer_id = $1 LIMIT $2)"
            )))
            .bind(idb.clone())
            .bind(left)
            .execute(&mut *tx)
            .await?;
            deleted += done.rows_affected();
        }
        if deleted == 0 {
            // Thread rows that slipped in around the shred (none should) go first: they would
            // hold the tombstone.
            for table in ["thread_messages", "message_threads"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE customer_id = $1"
                )))
                .bind(idb.clone())
                .execute(&mut *tx)
                .await?;
            }
            // Nothing references the tombstone any more: it goes, and the erasure is complete.
            sqlx::query("DELETE FROM customers WHERE id = $1 AND erased_at IS NOT NULL")
                .bind(idb.clone())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE erasures SET purged_at = $2 WHERE customer_id = $1 AND purged_at IS NULL",
            )
            .bind(idb)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    pub(crate) async fn erasures_impl(&self) -> StoreResult<Vec<ErasureRow>> {
        let rows = sqlx::query(
            "SELECT customer_id, journal_seq, erased_at, purged_at FROM erasures ORDER BY journal_seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ErasureRow {
                    customer_id: id16(r.try_get(0)?, CustomerId::from_slice)?,
                    journal_seq: r.try_get(1)?,
                    erased_at: r.try_get(2)?,
                    purged_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub(crate) async fn compact_impl(&self) -> StoreResult<()> {
        if self.backend == crate::Backend::Sqlite {
            // Old page images in the write-ahead log would still hold what was just deleted
            // (secure_delete zeroes the pages, not their older copies): fold the log into the
            // file and truncate it.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }
}

impl SqlStore {
    pub(crate) async fn backup_into_impl(
        &self,
        data: &std::path::Path,
        log: &std::path::Path,
    ) -> StoreResult<()> {
        if self.backend != crate::Backend::Sqlite {
            return Err(crate::StoreError::Unsupported(
                "back up PostgreSQL with pg_dump; `steward restore --replay-only` then replays erasures",
            ));
        }
        // VACUUM INTO copies a consistent snapshot while others read and write, into a fresh,
        // compact file: no free pages holding deleted content.
        for (pool, path) in [(&self.pool, data), (&self.log_pool, log)] {
            let target = path
                .to_str()
                .ok_or(crate::StoreError::Corrupt("backup path is not UTF-8"))?
                .replace('\'', "''");
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{target}'")))
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}

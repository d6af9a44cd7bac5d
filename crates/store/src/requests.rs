//! Data-subject requests: rows of `rights_requests`.

use sqlx::Row;
use sqlx::any::AnyRow;
use steward_domain::{CustomerId, RequestId};

use crate::sql::id16;
use crate::{AuditEntryRow, SqlStore, StoreResult};

/// A stored data-subject request. Corrections are sealed; the code is a MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// The request.
    pub id: RequestId,
    /// Whose data.
    pub customer_id: CustomerId,
    /// `access`, `export`, `rectification`, `erasure`, `restriction` or `objection`.
    pub kind: String,
    /// DRP status.
    pub status: String,
    /// DRP reason, if any.
    pub reason: Option<String>,
    /// `unverified`, `email_code` or `in_person`.
    pub identity: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub deadline_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Sealed corrections (rectification).
    pub corrections: Option<Vec<u8>>,
    /// Keyed MAC of the one-time code sent, if one is outstanding.
    pub code_mac: Option<Vec<u8>>,
    /// When the code stops working (Unix ms).
    pub code_expires_at: Option<i64>,
    /// Wrong codes given so far.
    pub code_attempts: i64,
}

const COLUMNS: &str = "id, customer_id, kind, status, reason, identity, created_at, deadline_at, updated_at, corrections, code_mac, code_expires_at, code_attempts";

fn from_row(r: &AnyRow) -> StoreResult<RequestRow> {
    Ok(RequestRow {
        id: id16(r.try_get(0)?, RequestId::from_slice)?,
        customer_id: id16(r.try_get(1)?, CustomerId::from_slice)?,
        kind: r.try_get(2)?,
        status: r.try_get(3)?,
        reason: r.try_get(4)?,
        identity: r.try_get(5)?,
        created_at: r.try_get(6)?,
        deadline_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        corrections: r.try_get(9)?,
        code_mac: r.try_get(10)?,
        code_expires_at: r.try_get(11)?,
        code_attempts: r.try_get(12)?,
    })
}

impl SqlStore {
    pub(crate) async fn insert_request_impl(
        &self,
        row: &RequestRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rights_requests ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(row.id.as_bytes().to_vec())
        .bind(row.customer_id.as_bytes().to_vec())
        .bind(row.kind.as_str())
        .bind(row.status.as_str())
        .bind(row.reason.as_deref())
        .bind(row.identity.as_str())
        .bind(row.created_at)
        .bind(row.deadline_at)
        .bind(row.updated_at)
        .bind(row.corrections.clone())
        .bind(row.code_mac.clone())
        .bind(row.code_expires_at)
        .bind(row.code_attempts)
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn get_request_impl(&self, id: RequestId) -> StoreResult<Option<RequestRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rights_requests WHERE id = $1"
        )))
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub(crate) async fn claim_request_code_try_impl(
        &self,
        id: RequestId,
        max_tries: i64,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.write_tx().await?;
        let tries: Option<i64> = sqlx::query_scalar(
            "UPDATE rights_requests SET code_attempts = code_attempts + 1 \
             WHERE id = $1 AND status = 'in_progress' AND code_mac IS NOT NULL AND code_attempts < $2 \
             RETURNING code_attempts",
        )
        .bind(id.as_bytes().to_vec())
        .bind(max_tries)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(tries)
    }

    pub(crate) async fn update_request_impl(
        &self,
        row: &RequestRow,
        was: &str,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE rights_requests SET status = $2, reason = $3, identity = $4, updated_at = $5, \
             corrections = $6, code_mac = $7, code_expires_at = $8, code_attempts = $9 \
             WHERE id = $1 AND status = $10",
        )
        .bind(row.id.as_bytes().to_vec())
        .bind(row.status.clone())
        .bind(row.reason.clone())
        .bind(row.identity.clone())
        .bind(row.updated_at)
        .bind(row.corrections.clone())
        .bind(row.code_mac.clone())
        .bind(row.code_expires_at)
        .bind(row.code_attempts)
        .bind(was.to_owned());
        self.update_with_audit(q, audit).await
    }

    pub(crate) async fn list_requests_impl(
        &self,
        due_before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<RequestRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rights_requests WHERE status IN ('open', 'in_progress') \
             AND deadline_at < $1 ORDER BY deadline_at, id LIMIT $2"
        )))
        .bind(due_before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub(crate) async fn set_restricted_impl(
        &self,
        id: CustomerId,
        restricted: bool,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE customers SET restricted = $2 WHERE id = $1 AND erased_at IS NULL AND restricted <> $2",
        )
        .bind(id.as_bytes().to_vec())
        .bind(i64::from(restricted))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Already so (recorded, nothing to tell anyone), or no such customer.
            let exists = sqlx::query("SELECT 1 FROM customers WHERE id = $1 AND erased_at IS NULL")
                .bind(id.as_bytes().to_vec())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if exists {
                self.outbox(&mut tx, audit).await?;
                tx.commit().await?;
            }
            return Ok(exists);
        }
        // Every recipient that received their data is told to use it for nothing (Art. 19),
        // and when it may be used again.
        let at = audit
            .first()
            .map(|a| a.occurred_at)
            .unwrap_or_else(|| steward_domain::Timestamp::now().millis());
        let change = if restricted {
            steward_domain::sharing::Change::Restricted
        } else {
            steward_domain::sharing::Change::Unrestricted
        };
        Self::follow(&mut tx, self.backend, id, change, crate::Touched::All, at).await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

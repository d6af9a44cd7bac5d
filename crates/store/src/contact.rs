//! Pending and past changes of a customer's contact details (see the `contact_changes`
//! migration): a new e-mail address waits, sealed, until confirmed from that address.

use sqlx::Row;
use steward_domain::CustomerId;
use uuid::Uuid;

use crate::sql::id16;
use crate::{AuditEntryRow, SqlStore, StoreResult};

/// One change of an e-mail address or phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChangeRow {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Whose.
    pub customer_id: CustomerId,
    /// `email` or `phone`.
    pub kind: String,
    /// The new value, sealed under the customer's data key.
    pub value: Vec<u8>,
    /// The blind index of the new value.
    pub value_mac: Vec<u8>,
    /// The blind index of the address the confirmation code went to.
    pub sent_to_mac: Vec<u8>,
    /// The e-mail address on record before the change, sealed (none if there was none).
    pub previous: Option<Vec<u8>>,
    /// Keyed MAC of the id and the confirmation code; `None` for a change that needs none.
    pub code_mac: Option<Vec<u8>>,
    /// Tries of the code so far.
    pub attempts: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which the code no longer works.
    pub expires_at: i64,
    /// When it took effect (Unix ms), if it has.
    pub confirmed_at: Option<i64>,
}

const COLUMNS: &str = "id, customer_id, kind, value, value_mac, sent_to_mac, previous, code_mac, attempts, created_at, expires_at, confirmed_at";

fn from_row(r: &sqlx::any::AnyRow) -> StoreResult<ContactChangeRow> {
    Ok(ContactChangeRow {
        id: crate::portal::uuid_of(r.try_get(0)?)?,
        customer_id: id16(r.try_get(1)?, CustomerId::from_slice)?,
        kind: r.try_get(2)?,
        value: r.try_get(3)?,
        value_mac: r.try_get(4)?,
        sent_to_mac: r.try_get(5)?,
        previous: r.try_get(6)?,
        code_mac: r.try_get(7)?,
        attempts: r.try_get(8)?,
        created_at: r.try_get(9)?,
        expires_at: r.try_get(10)?,
        confirmed_at: r.try_get(11)?,
    })
}

impl SqlStore {
    pub(crate) async fn insert_contact_change_impl(
        &self,
        row: &ContactChangeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        // A new request supersedes any earlier one still waiting: an old code cannot apply it.
        if row.confirmed_at.is_none() {
            sqlx::query(
                "UPDATE contact_changes SET expires_at = 0 WHERE customer_id = $1 AND confirmed_at IS NULL",
            )
            .bind(row.customer_id.as_bytes().to_vec())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO contact_changes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(row.id.as_bytes().to_vec())
        .bind(row.customer_id.as_bytes().to_vec())
        .bind(row.kind.clone())
        .bind(row.value.clone())
        .bind(row.value_mac.clone())
        .bind(row.sent_to_mac.clone())
        .bind(row.previous.clone())
        .bind(row.code_mac.clone())
        .bind(row.attempts)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.confirmed_at)
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn pending_contact_changes_impl(
        &self,
        sent_to_mac: &[u8],
        now: i64,
    ) -> StoreResult<Vec<ContactChangeRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contact_changes WHERE sent_to_mac = $1 AND confirmed_at IS NULL \
             AND code_mac IS NOT NULL AND expires_at >= $2 ORDER BY id DESC"
        )))
        .bind(sent_to_mac.to_vec())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub(crate) async fn claim_contact_change_try_impl(
        &self,
        id: Uuid,
        max_tries: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE contact_changes SET attempts = attempts + 1 \
             WHERE id = $1 AND confirmed_at IS NULL AND attempts < $2 AND expires_at >= $3",
        )
        .bind(id.as_bytes().to_vec())
        .bind(max_tries)
        .bind(now);
        self.update_with_audit(q, &[]).await
    }

    pub(crate) async fn confirm_contact_change_impl(
        &self,
        id: Uuid,
        now: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE contact_changes SET confirmed_at = $2 WHERE id = $1 AND confirmed_at IS NULL AND expires_at >= $2",
        )
        .bind(id.as_bytes().to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Whatever else waited was asked of the address this change replaces: void.
        sqlx::query(
            "UPDATE contact_changes SET expires_at = 0 WHERE confirmed_at IS NULL AND customer_id = \
             (SELECT customer_id FROM contact_changes WHERE id = $1)",
        )
        .bind(id.as_bytes().to_vec())
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn last_contact_change_impl(
        &self,
        customer: CustomerId,
    ) -> StoreResult<Option<ContactChangeRow>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM contact_changes WHERE customer_id = $1 AND confirmed_at IS NOT NULL \
             ORDER BY confirmed_at DESC, id DESC LIMIT 1"
        )))
        .bind(customer.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
    }
}

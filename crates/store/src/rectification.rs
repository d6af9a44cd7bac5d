//! Rectification: the sealed history of profile changes, and the fields marked verified.

use sqlx::Row;
use steward_domain::CustomerId;

use crate::sql::id16;
use crate::{AuditEntryRow, SqlStore, StoreResult};

/// One change to a profile: which fields, when, and their previous values sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    /// The change (UUIDv7 bytes: ordered by time).
    pub id: Vec<u8>,
    /// Whose profile.
    pub customer_id: CustomerId,
    /// When (Unix ms).
    pub changed_at: i64,
    /// The fields changed, comma-separated names.
    pub fields: String,
    /// The previous values (JSON), sealed under the customer's data key.
    pub previous: Vec<u8>,
}

impl SqlStore {
    pub(crate) async fn insert_change(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        c: &ChangeRow,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO customer_changes (id, customer_id, changed_at, fields, previous) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.id.clone())
        .bind(c.customer_id.as_bytes().to_vec())
        .bind(c.changed_at)
        .bind(c.fields.as_str())
        .bind(c.previous.clone())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub(crate) async fn changes_impl(&self, customer: CustomerId) -> StoreResult<Vec<ChangeRow>> {
        let rows = sqlx::query(
            "SELECT id, customer_id, changed_at, fields, previous FROM customer_changes WHERE customer_id = $1 ORDER BY id",
        )
        .bind(customer.as_bytes().to_vec())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChangeRow {
                    id: r.try_get(0)?,
                    customer_id: id16(r.try_get(1)?, CustomerId::from_slice)?,
                    changed_at: r.try_get(2)?,
                    fields: r.try_get(3)?,
                    previous: r.try_get(4)?,
                })
            })
            .collect()
    }

    pub(crate) async fn verified_fields_impl(
        &self,
        customer: CustomerId,
    ) -> StoreResult<Option<Vec<String>>> {
        let row = sqlx::query(
            "SELECT verified_fields FROM customers WHERE id = $1 AND erased_at IS NULL",
        )
        .bind(customer.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let text: String = r.try_get(0)?;
            Ok(text
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect())
        })
        .transpose()
    }

    pub(crate) async fn set_verified_fields_impl(
        &self,
        customer: CustomerId,
        fields: &[&str],
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE customers SET verified_fields = $2 WHERE id = $1 AND erased_at IS NULL",
        )
        .bind(customer.as_bytes().to_vec())
        .bind(fields.join(","));
        self.update_with_audit(q, audit).await
    }
}

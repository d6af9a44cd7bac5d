//! Retention: finding and deleting what has outlived every purpose that could justify it.

use sqlx::Row;
use steward_domain::CustomerId;

use crate::sql::id16;
use crate::{AuditEntryRow, SqlStore, StoreResult};

/// The customer activity tables retention applies to, each a category of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityTable {
    /// Messages and notes (communications).
    Interactions,
    /// Purchases (purchase history).
    Purchases,
}

impl ActivityTable {
    fn name(self) -> &'static str {
        match self {
            ActivityTable::Interactions => "interactions",
            ActivityTable::Purchases => "purchases",
        }
    }
}

impl SqlStore {
    pub(crate) async fn expired_activity_impl(
        &self,
        table: ActivityTable,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<(CustomerId, i64)>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT customer_id, COUNT(*) FROM {} WHERE occurred_at < $1 GROUP BY customer_id ORDER BY customer_id LIMIT $2",
            table.name()
        )))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((id16(r.try_get(0)?, CustomerId::from_slice)?, r.try_get(1)?)))
            .collect()
    }

    pub(crate) async fn dispose_activity_impl(
        &self,
        customer: CustomerId,
        table: ActivityTable,
        before: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE customer_id = $1 AND occurred_at < $2",
            table.name()
        )))
        .bind(customer.as_bytes().to_vec())
        .bind(before)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            self.outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn inactive_customers_impl(
        &self,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>> {
        let rows = sqlx::query(
            "SELECT c.id FROM customers c WHERE c.erased_at IS NULL AND c.updated_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id AND i.occurred_at >= $1) \
             AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = c.id AND p.occurred_at >= $1) \
             AND NOT EXISTS (SELECT 1 FROM consent_events e WHERE e.customer_id = c.id AND e.occurred_at >= $1) \
             ORDER BY c.id LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| id16(r.try_get(0)?, CustomerId::from_slice))
            .collect()
    }
}

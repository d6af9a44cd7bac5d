//! Purchase categories marked sensitive (see the `purchase_categories` migration).

use sqlx::Row;

use crate::{AuditEntryRow, PersonalisationStore, SqlStore, StoreResult};

#[async_trait::async_trait]
impl PersonalisationStore for SqlStore {
    async fn mark_category(
        &self,
        category: &str,
        data_category: &str,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO purchase_categories (category, data_category, marked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (category) DO UPDATE SET data_category = excluded.data_category, marked_at = excluded.marked_at",
        )
        .bind(category.to_owned())
        .bind(data_category.to_owned())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn marked_categories(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT category, data_category, marked_at FROM purchase_categories ORDER BY category",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    async fn purchase_category_used(&self, category: &str) -> StoreResult<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM purchases WHERE category = $1 LIMIT 1")
                .bind(category.to_owned())
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}

//! Analytics releases and the privacy budget (see the `analytics` migration).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{AnalyticsStore, AuditEntryRow, SqlStore, StoreResult};

/// A released answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    /// The analyst: the principal's id (`staff:…` or `token:…`).
    pub analyst: String,
    /// The purpose declared.
    pub purpose: String,
    /// The budget window's start (ms).
    pub window_start: i64,
    /// SHA-256 of the query's canonical body.
    pub query_hash: Vec<u8>,
    /// The query's canonical body.
    pub query: String,
    /// The released rows (JSON).
    pub answer: String,
    /// ε spent, in thousandths.
    pub epsilon_milli: i64,
    /// δ spent, in billionths.
    pub delta_nano: i64,
    /// When (ms).
    pub released_at: i64,
}

/// One analyst's spending under one purpose in one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRow {
    /// The analyst.
    pub analyst: String,
    /// The purpose.
    pub purpose: String,
    /// The window's start (ms).
    pub window_start: i64,
    /// ε spent, in thousandths.
    pub epsilon_milli: i64,
    /// δ spent, in billionths.
    pub delta_nano: i64,
}

/// What storing a release did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored, with its audit entry.
    Stored,
    /// The same query was released meanwhile (a concurrent request): that answer; nothing
    /// stored.
    Existing(ReleaseRow),
}

const RELEASE_COLUMNS: &str = "analyst, purpose, window_start, query_hash, query, answer, \
     epsilon_milli, delta_nano, released_at";

fn release_from(r: &AnyRow) -> StoreResult<ReleaseRow> {
    Ok(ReleaseRow {
        analyst: r.try_get(0)?,
        purpose: r.try_get(1)?,
        window_start: r.try_get(2)?,
        query_hash: r.try_get(3)?,
        query: r.try_get(4)?,
        answer: r.try_get(5)?,
        epsilon_milli: r.try_get(6)?,
        delta_nano: r.try_get(7)?,
        released_at: r.try_get(8)?,
    })
}

#[async_trait::async_trait]
impl AnalyticsStore for SqlStore {
    async fn release(
        &self,
        purpose: &str,
        window_start: i64,
        query_hash: &[u8],
    ) -> StoreResult<Option<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM analytics_releases \
             WHERE purpose = $1 AND window_start = $2 AND query_hash = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(purpose.to_owned())
            .bind(window_start)
            .bind(query_hash.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(release_from).transpose()
    }

    async fn spent(
        &self,
        analyst: &str,
        purpose: &str,
        window_start: i64,
    ) -> StoreResult<(i64, i64)> {
        let row = sqlx::query(
            "SELECT epsilon_milli, delta_nano FROM analytics_budget \
             WHERE analyst = $1 AND purpose = $2 AND window_start = $3",
        )
        .bind(analyst.to_owned())
        .bind(purpose.to_owned())
        .bind(window_start)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => (r.try_get(0)?, r.try_get(1)?),
            None => (0, 0),
        })
    }

    async fn reserve_budget(
        &self,
        analyst: &str,
        purpose: &str,
        window_start: i64,
        cost: (i64, i64),
        limit: (i64, i64),
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        // Check and add in one statement: the row lock (or SQLite's one writer) makes them one
        // step, so two concurrent reservations never both take the last of the budget.
        let reserved = sqlx::query(
            "INSERT INTO analytics_budget (analyst, purpose, window_start, epsilon_milli, delta_nano) \
             SELECT $1, $2, $3, $4, $5 WHERE $4 <= $6 AND $5 <= $7 \
             ON CONFLICT (analyst, purpose, window_start) DO UPDATE SET \
             epsilon_milli = analytics_budget.epsilon_milli + excluded.epsilon_milli, \
             delta_nano = analytics_budget.delta_nano + excluded.delta_nano \
             WHERE analytics_budget.epsilon_milli + excluded.epsilon_milli <= $6 \
             AND analytics_budget.delta_nano + excluded.delta_nano <= $7",
        )
        .bind(analyst.to_owned())
        .bind(purpose.to_owned())
        .bind(window_start)
        .bind(cost.0)
        .bind(cost.1)
        .bind(limit.0)
        .bind(limit.1)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(reserved == 1)
    }

    async fn refund_budget(
        &self,
        analyst: &str,
        purpose: &str,
        window_start: i64,
        cost: (i64, i64),
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE analytics_budget SET epsilon_milli = epsilon_milli - $4, delta_nano = delta_nano - $5 \
             WHERE analyst = $1 AND purpose = $2 AND window_start = $3 \
             AND epsilon_milli >= $4 AND delta_nano >= $5",
        )
        .bind(analyst.to_owned())
        .bind(purpose.to_owned())
        .bind(window_start)
        .bind(cost.0)
        .bind(cost.1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_release(
        &self,
        row: &ReleaseRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<Recorded> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "INSERT INTO analytics_releases ({RELEASE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
        );
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(row.analyst.clone())
            .bind(row.purpose.clone())
            .bind(row.window_start)
            .bind(row.query_hash.clone())
            .bind(row.query.clone())
            .bind(row.answer.clone())
            .bind(row.epsilon_milli)
            .bind(row.delta_nano)
            .bind(row.released_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let existing = self
                .release(&row.purpose, row.window_start, &row.query_hash)
                .await?;
            return existing
                .map(Recorded::Existing)
                .ok_or(crate::StoreError::Corrupt(
                    "a release conflicted but is not there",
                ));
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(Recorded::Stored)
    }

    async fn budgets(&self, window_start: i64) -> StoreResult<Vec<BudgetRow>> {
        let rows = sqlx::query(
            "SELECT analyst, purpose, window_start, epsilon_milli, delta_nano FROM analytics_budget \
             WHERE window_start = $1 ORDER BY epsilon_milli DESC, analyst, purpose",
        )
        .bind(window_start)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BudgetRow {
                    analyst: r.try_get(0)?,
                    purpose: r.try_get(1)?,
                    window_start: r.try_get(2)?,
                    epsilon_milli: r.try_get(3)?,
                    delta_nano: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn releases(&self, purpose: &str, window_start: i64) -> StoreResult<Vec<ReleaseRow>> {
        let sql = format!(
            "SELECT {RELEASE_COLUMNS} FROM analytics_releases \
             WHERE purpose = $1 AND window_start = $2 ORDER BY released_at DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(purpose.to_owned())
            .bind(window_start)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(release_from).collect()
    }
}

//! Campaigns as stored (see the `campaigns` migration).

use sqlx::Row;
use sqlx::any::AnyRow;
use steward_domain::{CampaignId, SegmentId};

use crate::sql::id16;
use crate::{AuditEntryRow, CampaignStore, SqlStore, StoreResult};

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    /// Id.
    pub id: CampaignId,
    /// The segment it goes to.
    pub segment_id: SegmentId,
    /// The purpose it is sent under.
    pub purpose: String,
    /// The subject's template.
    pub subject: String,
    /// The body's template.
    pub body: String,
    /// `draft`, `sending` or `sent`.
    pub status: String,
    /// The author's audit pseudonym.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
}

const COLUMNS: &str = "id, segment_id, purpose, subject, body, status, created_by, created_at";

fn campaign_from(r: &AnyRow) -> StoreResult<CampaignRow> {
    Ok(CampaignRow {
        id: id16(r.try_get(0)?, CampaignId::from_slice)?,
        segment_id: id16(r.try_get(1)?, SegmentId::from_slice)?,
        purpose: r.try_get(2)?,
        subject: r.try_get(3)?,
        body: r.try_get(4)?,
        status: r.try_get(5)?,
        created_by: r.try_get(6)?,
        created_at: r.try_get(7)?,
    })
}

#[async_trait::async_trait]
impl CampaignStore for SqlStore {
    async fn insert_campaign(&self, row: &CampaignRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO campaigns (id, segment_id, purpose, subject, body, status, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(row.id.as_bytes().to_vec())
        .bind(row.segment_id.as_bytes().to_vec())
        .bind(row.purpose.clone())
        .bind(row.subject.clone())
        .bind(row.body.clone())
        .bind(row.status.clone())
        .bind(row.created_by.clone())
        .bind(row.created_at)
        .execute(&mut *tx)
        .await?;
        crate::audit::outbox(&mut tx, self.backend, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn campaign(&self, id: CampaignId) -> StoreResult<Option<CampaignRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM campaigns WHERE id = $1"
        )))
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(campaign_from).transpose()
    }

    async fn campaigns(&self) -> StoreResult<Vec<CampaignRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM campaigns ORDER BY created_at DESC, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_from).collect()
    }
}

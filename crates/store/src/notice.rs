//! The confidentiality notice staff acknowledge before reading personal data, and their
//! acknowledgements (see the `confidentiality_notice` migration).

use sqlx::Row;
use steward_domain::StaffId;

use crate::sql::id16;
use crate::{AuditEntryRow, NoticeStore, SqlStore, StoreError, StoreResult};

/// One version of the notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    /// Its version, from 1.
    pub version: i64,
    /// The text staff read.
    pub text: String,
    /// When it was published (ms).
    pub published_at: i64,
}

/// A staff member's acknowledgement of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcknowledgementRow {
    /// Who.
    pub staff_id: StaffId,
    /// Which version.
    pub version: i64,
    /// When (ms).
    pub acknowledged_at: i64,
}

#[async_trait::async_trait]
impl NoticeStore for SqlStore {
    async fn publish_notice(&self, row: &NoticeRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO confidentiality_notices (version, text, published_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(row.version)
        .bind(row.text.clone())
        .bind(row.published_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn current_notice(&self) -> StoreResult<Option<NoticeRow>> {
        let row = sqlx::query(
            "SELECT version, text, published_at FROM confidentiality_notices ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(NoticeRow {
                version: r.try_get(0)?,
                text: r.try_get(1)?,
                published_at: r.try_get(2)?,
            })
        })
        .transpose()
    }

    async fn acknowledge(
        &self,
        row: &AcknowledgementRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        // A second acknowledgement of the same version renews it (the 12 months start again).
        sqlx::query(
            "INSERT INTO acknowledgements (staff_id, version, acknowledged_at) VALUES ($1, $2, $3) \
             ON CONFLICT (staff_id, version) DO UPDATE SET acknowledged_at = excluded.acknowledged_at",
        )
        .bind(row.staff_id.as_bytes().to_vec())
        .bind(row.version)
        .bind(row.acknowledged_at)
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn latest_acknowledgements(&self) -> StoreResult<Vec<AcknowledgementRow>> {
        // Each staff member's latest acknowledgement: of the highest version, the latest time.
        let rows = sqlx::query(
            "SELECT staff_id, version, acknowledged_at FROM acknowledgements ORDER BY staff_id, version, acknowledged_at",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<AcknowledgementRow> = Vec::new();
        for r in &rows {
            let row = AcknowledgementRow {
                staff_id: id16(r.try_get(0)?, StaffId::from_slice)?,
                version: r.try_get(1)?,
                acknowledged_at: r.try_get(2)?,
            };
            match out.last_mut() {
                Some(last) if last.staff_id == row.staff_id => *last = row,
                _ => out.push(row),
            }
        }
        Ok(out)
    }
}

//! Anonymous surveys (see the `surveys` migration).

use sqlx::Row;
use sqlx::any::AnyRow;
use steward_domain::{CustomerId, SegmentId, SurveyId};

use crate::sql::id16;
use crate::{AuditEntryRow, SqlStore, StoreResult, SurveyStore};

/// A survey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyRow {
    /// Id.
    pub id: SurveyId,
    /// Title.
    pub title: String,
    /// The questions, as validated JSON.
    pub questions: String,
    /// The segment it is sent to.
    pub segment_id: SegmentId,
    /// The purpose its sending is decided under.
    pub purpose: String,
    /// The blind-signature key's public half (SPKI DER).
    pub public_key: Vec<u8>,
    /// Its secret half, sealed.
    pub secret_key: Vec<u8>,
    /// The author's audit pseudonym.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
    /// When it was sent (ms), if it was.
    pub sent_at: Option<i64>,
}

/// A survey's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SurveyCounts {
    /// Customers asked.
    pub invited: u64,
    /// Tokens issued.
    pub issued: u64,
    /// Responses stored.
    pub responses: u64,
}

/// What storing a response did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored.
    Stored,
    /// The token was used already: nothing stored.
    TokenUsed,
}

const COLUMNS: &str = "id, title, questions, segment_id, purpose, public_key, secret_key, \
     created_by, created_at, sent_at";

fn survey_from(r: &AnyRow) -> StoreResult<SurveyRow> {
    Ok(SurveyRow {
        id: id16(r.try_get(0)?, SurveyId::from_slice)?,
        title: r.try_get(1)?,
        questions: r.try_get(2)?,
        segment_id: id16(r.try_get(3)?, SegmentId::from_slice)?,
        purpose: r.try_get(4)?,
        public_key: r.try_get(5)?,
        secret_key: r.try_get(6)?,
        created_by: r.try_get(7)?,
        created_at: r.try_get(8)?,
        sent_at: r.try_get(9)?,
    })
}

/// Earlier responses moved to fresh ids with each new one.
pub const MIXED_PER_RESPONSE: usize = 8;

#[async_trait::async_trait]
impl SurveyStore for SqlStore {
    async fn insert_survey(&self, row: &SurveyRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "INSERT INTO surveys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(row.id.as_bytes().to_vec())
            .bind(row.title.clone())
            .bind(row.questions.clone())
            .bind(row.segment_id.as_bytes().to_vec())
            .bind(row.purpose.clone())
            .bind(row.public_key.clone())
            .bind(row.secret_key.clone())
            .bind(row.created_by.clone())
            .bind(row.created_at)
            .bind(row.sent_at)
            .execute(&mut *tx)
            .await?;
        crate::audit::outbox(&mut tx, self.backend, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn survey(&self, id: SurveyId) -> StoreResult<Option<SurveyRow>> {
        let sql = format!("SELECT {COLUMNS} FROM surveys WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(survey_from).transpose()
    }

    async fn surveys(&self) -> StoreResult<Vec<SurveyRow>> {
        let sql = format!("SELECT {COLUMNS} FROM surveys ORDER BY created_at DESC, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(survey_from).collect()
    }

    async fn survey_counts(&self, id: SurveyId) -> StoreResult<SurveyCounts> {
        let idb = id.as_bytes().to_vec();
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM survey_invitations WHERE survey_id = $1), \
             (SELECT COUNT(*) FROM survey_invitations WHERE survey_id = $1 AND issued = 1), \
             (SELECT COUNT(*) FROM survey_responses WHERE survey_id = $1)",
        )
        .bind(idb)
        .fetch_one(&self.pool)
        .await?;
        let n = |i| -> StoreResult<u64> { Ok(u64::try_from(r.try_get::<i64, _>(i)?).unwrap_or(0)) };
        Ok(SurveyCounts {
            invited: n(0)?,
            issued: n(1)?,
            responses: n(2)?,
        })
    }

    async fn invite(
        &self,
        id: SurveyId,
        customers: &[CustomerId],
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let idb = id.as_bytes().to_vec();
        let mut invited = 0;
        for c in customers {
            invited += sqlx::query(
                "INSERT INTO survey_invitations (survey_id, customer_id, issued) VALUES ($1, $2, 0) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(idb.clone())
            .bind(c.as_bytes().to_vec())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        sqlx::query("UPDATE surveys SET sent_at = $2 WHERE id = $1")
            .bind(idb)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        crate::audit::outbox(&mut tx, self.backend, audit).await?;
        tx.commit().await?;
        Ok(invited)
    }

    async fn invitations(&self, customer: CustomerId) -> StoreResult<Vec<(SurveyId, bool)>> {
        let rows = sqlx::query(
            "SELECT survey_id, issued FROM survey_invitations WHERE customer_id = $1 ORDER BY survey_id",
        )
        .bind(customer.as_bytes().to_vec())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let issued: i64 = r.try_get(1)?;
                Ok((id16(r.try_get(0)?, SurveyId::from_slice)?, issued != 0))
            })
            .collect()
    }

    async fn issue_token(
        &self,
        id: SurveyId,
        customer: CustomerId,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let marked = sqlx::query(
            "UPDATE survey_invitations SET issued = 1 \
             WHERE survey_id = $1 AND customer_id = $2 AND issued = 0",
        )
        .bind(id.as_bytes().to_vec())
        .bind(customer.as_bytes().to_vec())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        crate::audit::outbox(&mut tx, self.backend, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record_response(
        &self,
        id: SurveyId,
        token_hash: &[u8],
        day: &str,
        answers: &[u8],
        fresh: &[[u8; 16]],
        pivot: [u8; 16],
    ) -> StoreResult<Stored> {
        let idb = id.as_bytes().to_vec();
        let Some((first, moves)) = fresh.split_first() else {
            return Err(crate::StoreError::Corrupt("no id for the response"));
        };
        let mut tx = self.write_tx().await?;
        let spent = sqlx::query(
            "INSERT INTO survey_spent_tokens (survey_id, token_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(idb.clone())
        .bind(token_hash.to_vec())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            tx.rollback().await?;
            return Ok(Stored::TokenUsed);
        }
        // Earlier responses from a random point on (wrapping round), each moved to a fresh id.
        let mut earlier = Vec::new();
        for sql in [
            "SELECT id, day, answers FROM survey_responses WHERE survey_id = $1 AND id >= $2 ORDER BY id LIMIT $3",
            "SELECT id, day, answers FROM survey_responses WHERE survey_id = $1 AND id < $2 ORDER BY id LIMIT $3",
        ] {
            let want = moves.len().saturating_sub(earlier.len());
            if want == 0 {
                break;
            }
            let rows = sqlx::query(sql)
                .bind(idb.clone())
                .bind(pivot.to_vec())
                .bind(want as i64)
                .fetch_all(&mut *tx)
                .await?;
            for r in &rows {
                let (old, d, a): (Vec<u8>, String, Vec<u8>) =
                    (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                earlier.push((old, d, a));
            }
        }
        for ((old, _, _), _) in earlier.iter().zip(moves) {
            sqlx::query("DELETE FROM survey_responses WHERE survey_id = $1 AND id = $2")
                .bind(idb.clone())
                .bind(old.clone())
                .execute(&mut *tx)
                .await?;
        }
        let mut rows: Vec<(&[u8; 16], &str, &[u8])> = vec![(first, day, answers)];
        for ((_, d, a), new) in earlier.iter().zip(moves) {
            rows.push((new, d, a));
        }
        // Inserted in id order (random), not with the new one first.
        rows.sort_by_key(|r| *r.0);
        for (new, d, a) in rows {
            sqlx::query(
                "INSERT INTO survey_responses (survey_id, id, day, answers) VALUES ($1, $2, $3, $4)",
            )
            .bind(idb.clone())
            .bind(new.to_vec())
            .bind(d.to_owned())
            .bind(a.to_vec())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Stored::Stored)
    }

    async fn responses(&self, id: SurveyId) -> StoreResult<Vec<Vec<u8>>> {
        let rows =
            sqlx::query("SELECT answers FROM survey_responses WHERE survey_id = $1 ORDER BY id")
                .bind(id.as_bytes().to_vec())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

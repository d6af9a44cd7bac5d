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
    /// Answers waiting, sealed, for the next batch of ten.
    pub waiting: u64,
}

/// What taking an answer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Taken: it waits in the pool.
    Waiting,
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
        self.outbox(&mut tx, audit).await?;
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
             (SELECT COALESCE(MAX(responses), 0) FROM survey_totals WHERE survey_id = $1), \
             (SELECT COUNT(*) FROM survey_pending WHERE survey_id = $1)",
        )
        .bind(idb)
        .fetch_one(&self.pool)
        .await?;
        let n = |i| -> StoreResult<u64> { Ok(u64::try_from(r.try_get::<i64, _>(i)?).unwrap_or(0)) };
        Ok(SurveyCounts {
            invited: n(0)?,
            issued: n(1)?,
            responses: n(2)?,
            waiting: n(3)?,
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
                "INSERT INTO survey_invitations (survey_id, customer_id, invited_at, issued) \
                 VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
            )
            .bind(idb.clone())
            .bind(c.as_bytes().to_vec())
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        sqlx::query("UPDATE surveys SET sent_at = $2 WHERE id = $1")
            .bind(idb)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(invited)
    }

    async fn invitations(&self, customer: CustomerId) -> StoreResult<Vec<(SurveyId, i64, bool)>> {
        let rows = sqlx::query(
            "SELECT survey_id, invited_at, issued FROM survey_invitations WHERE customer_id = $1 \
             ORDER BY invited_at, survey_id",
        )
        .bind(customer.as_bytes().to_vec())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let issued: i64 = r.try_get(2)?;
                Ok((
                    id16(r.try_get(0)?, SurveyId::from_slice)?,
                    r.try_get(1)?,
                    issued != 0,
                ))
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
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record_pending(
        &self,
        id: SurveyId,
        token_hash: &[u8],
        pending_id: [u8; 16],
        sealed: &[u8],
    ) -> StoreResult<Stored> {
        let idb = id.as_bytes().to_vec();
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
        sqlx::query("INSERT INTO survey_pending (survey_id, id, sealed) VALUES ($1, $2, $3)")
            .bind(idb.clone())
            .bind(pending_id.to_vec())
            .bind(sealed.to_vec())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Stored::Waiting)
    }

    async fn flush_pending(
        &self,
        id: SurveyId,
        at_least: u64,
        open: &(dyn for<'x> Fn(&'x [u8], &'x [u8]) -> Option<Vec<u8>> + Send + Sync),
    ) -> StoreResult<(u64, u64)> {
        let idb = id.as_bytes().to_vec();
        let mut tx = self.write_tx().await?;
        // Taken by deleting: a concurrent flush gets none of the same rows.
        let rows =
            sqlx::query("DELETE FROM survey_pending WHERE survey_id = $1 RETURNING id, sealed")
                .bind(idb.clone())
                .fetch_all(&mut *tx)
                .await?;
        let mut answers = Vec::with_capacity(rows.len());
        let mut dropped = 0;
        for r in &rows {
            let (pending, sealed): (Vec<u8>, Vec<u8>) = (r.try_get(0)?, r.try_get(1)?);
            // A row that does not open (altered in the database) is dropped, not kept to block
            // every later batch.
            match open(&pending, &sealed) {
                Some(a) => answers.push(a),
                None => dropped += 1,
            }
        }
        if (answers.len() as u64) < at_least {
            tx.rollback().await?;
            return Ok((0, 0));
        }
        let mut counts: std::collections::BTreeMap<(i64, i64), i64> = Default::default();
        for a in &answers {
            for (question, &answer) in a.iter().enumerate() {
                *counts
                    .entry((question as i64, i64::from(answer)))
                    .or_default() += 1;
            }
        }
        for ((question, answer), n) in counts {
            sqlx::query(
                "INSERT INTO survey_tallies (survey_id, question, answer, count) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (survey_id, question, answer) DO UPDATE SET count = survey_tallies.count + excluded.count",
            )
            .bind(idb.clone())
            .bind(question)
            .bind(answer)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO survey_totals (survey_id, responses) VALUES ($1, $2) \
             ON CONFLICT (survey_id) DO UPDATE SET responses = survey_totals.responses + excluded.responses",
        )
        .bind(idb)
        .bind(answers.len() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((answers.len() as u64, dropped))
    }

    async fn tallies(&self, id: SurveyId) -> StoreResult<(u64, Vec<(u32, u32, i64)>)> {
        let idb = id.as_bytes().to_vec();
        let total: Option<i64> =
            sqlx::query_scalar("SELECT responses FROM survey_totals WHERE survey_id = $1")
                .bind(idb.clone())
                .fetch_optional(&self.pool)
                .await?;
        let rows = sqlx::query(
            "SELECT question, answer, count FROM survey_tallies WHERE survey_id = $1 ORDER BY question, answer",
        )
        .bind(idb)
        .fetch_all(&self.pool)
        .await?;
        let tallies = rows
            .iter()
            .map(|r| {
                let (q, a): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
                Ok((
                    u32::try_from(q)
                        .map_err(|_| crate::StoreError::Corrupt("a tally's question"))?,
                    u32::try_from(a).map_err(|_| crate::StoreError::Corrupt("a tally's answer"))?,
                    r.try_get(2)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((u64::try_from(total.unwrap_or(0)).unwrap_or(0), tallies))
    }
}

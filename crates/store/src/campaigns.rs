//! Campaigns and their deliveries as stored (see the `campaigns` and `campaign_deliveries`
//! migrations).

use sqlx::Row;
use sqlx::any::AnyRow;
use steward_domain::{CampaignId, CustomerId, DeliveryId, SegmentId, StaffId, TokenId};

use crate::sql::{INSERT_CHUNK, id16};
use crate::{AuditEntryRow, Backend, CampaignStore, SqlStore, StoreResult};

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
    /// Who sends it, once started.
    pub sender: Option<Sender>,
    /// When sending started (ms).
    pub started_at: Option<i64>,
    /// When the last delivery was settled (ms).
    pub finished_at: Option<i64>,
    /// For a body with `{{recommendations}}`: a recipient without them is sent the campaign
    /// anyway (`false`) or skipped (`true`).
    pub skip_without_recommendations: bool,
}

/// Whom a campaign is sent for: each recipient is decided with the sender's roles as they are
/// at send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// The staff member, if a staff member started it (their roles then decide).
    pub staff: Option<StaffId>,
    /// The token (or session) it was started with (a service client's role then decides).
    pub token: TokenId,
}

/// A delivery's state (see the `campaign_deliveries` migration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting.
    Queued,
    /// Claimed: being checked or handed to the mail server.
    Sending,
    /// Accepted by the mail server.
    Sent,
    /// Claimed by a process that stopped before recording the outcome: never sent again.
    Uncertain,
    /// Refused by the mail server.
    Failed,
    /// Not sent (see the reason).
    Skipped,
}

impl DeliveryState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Uncertain => "uncertain",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "uncertain" => Self::Uncertain,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            _ => return None,
        })
    }
}

/// What became of one claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The delivery.
    pub id: DeliveryId,
    /// `Sent`, `Failed` or `Skipped`.
    pub state: DeliveryState,
    /// Why it was skipped or failed (a word, never a value).
    pub reason: Option<&'static str>,
    /// When (ms).
    pub at: i64,
}

/// A delivery as the unsubscribe link finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Id.
    pub id: DeliveryId,
    /// Its campaign.
    pub campaign_id: CampaignId,
    /// The recipient; `None` once erased.
    pub customer_id: Option<CustomerId>,
    /// The campaign's purpose.
    pub purpose: String,
    /// Its state.
    pub state: DeliveryState,
    /// When the recipient unsubscribed through it (ms).
    pub unsubscribed_at: Option<i64>,
}

/// A campaign's deliveries counted by state and reason, and how many unsubscribed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// `(state, reason, count)`.
    pub by_state: Vec<(DeliveryState, Option<String>, u64)>,
    /// Deliveries whose recipient unsubscribed through them.
    pub unsubscribed: u64,
}

const COLUMNS: &str = "id, segment_id, purpose, subject, body, status, created_by, created_at, \
     sender_staff, sender_token, started_at, finished_at, without_recommendations";

fn campaign_from(r: &AnyRow) -> StoreResult<CampaignRow> {
    let staff: Option<Vec<u8>> = r.try_get(8)?;
    let token: Option<Vec<u8>> = r.try_get(9)?;
    let sender = match token {
        Some(t) => Some(Sender {
            staff: staff.map(|s| id16(s, StaffId::from_slice)).transpose()?,
            token: id16(t, TokenId::from_slice)?,
        }),
        None => None,
    };
    Ok(CampaignRow {
        id: id16(r.try_get(0)?, CampaignId::from_slice)?,
        segment_id: id16(r.try_get(1)?, SegmentId::from_slice)?,
        purpose: r.try_get(2)?,
        subject: r.try_get(3)?,
        body: r.try_get(4)?,
        status: r.try_get(5)?,
        created_by: r.try_get(6)?,
        created_at: r.try_get(7)?,
        sender,
        started_at: r.try_get(10)?,
        finished_at: r.try_get(11)?,
        skip_without_recommendations: r.try_get::<String, _>(12)? == "skip",
    })
}

fn state_of(s: &str) -> StoreResult<DeliveryState> {
    DeliveryState::parse(s).ok_or(crate::StoreError::Corrupt("unknown delivery state"))
}

impl SqlStore {
    /// A connection in a transaction whose commit must survive a power loss, not only a killed
    /// process: on SQLite (WAL, synchronous=NORMAL elsewhere) its commit is synced, which syncs
    /// every commit before it too. PostgreSQL needs synchronous_commit on. End it with
    /// [`SqlStore::end_durable`].
    pub(crate) async fn begin_durable(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Any>> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await?;
        }
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        if let Err(e) = sqlx::query(begin).execute(&mut *conn).await {
            self.restore_sync(&mut conn).await?;
            return Err(e.into());
        }
        Ok(conn)
    }

    /// Commits (or, if not `ok`, rolls back) a transaction [`SqlStore::begin_durable`] began.
    pub(crate) async fn end_durable(
        &self,
        mut conn: sqlx::pool::PoolConnection<sqlx::Any>,
        ok: bool,
    ) -> StoreResult<()> {
        let end = if ok { "COMMIT" } else { "ROLLBACK" };
        let ended = sqlx::query(end).execute(&mut *conn).await;
        self.restore_sync(&mut conn).await?;
        ended?;
        Ok(())
    }

    async fn restore_sync(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    ) -> StoreResult<()> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut **conn)
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl CampaignStore for SqlStore {
    async fn insert_campaign(&self, row: &CampaignRow, audit: &[AuditEntryRow]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO campaigns (id, segment_id, purpose, subject, body, status, created_by, created_at, without_recommendations) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(row.id.as_bytes().to_vec())
        .bind(row.segment_id.as_bytes().to_vec())
        .bind(row.purpose.clone())
        .bind(row.subject.clone())
        .bind(row.body.clone())
        .bind(row.status.clone())
        .bind(row.created_by.clone())
        .bind(row.created_at)
        .bind(if row.skip_without_recommendations { "skip" } else { "send" }.to_owned())
        .execute(&mut *tx)
        .await?;
        self.outbox(&mut tx, audit).await?;
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

    async fn campaigns_sending(&self) -> StoreResult<Vec<CampaignRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM campaigns WHERE status = 'sending' ORDER BY started_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_from).collect()
    }

    async fn start_campaign(
        &self,
        id: CampaignId,
        sender: Sender,
        members: &[CustomerId],
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let staff = sender.staff.map(|s| s.as_bytes().to_vec());
        let token = sender.token.as_bytes().to_vec();
        // Only a draft starts, once: a second press (or a second node) changes nothing.
        let started = sqlx::query(
            "UPDATE campaigns SET status = 'sending', sender_staff = $2, sender_token = $3, started_at = $4 \
             WHERE id = $1 AND status = 'draft'",
        )
        .bind(id.as_bytes().to_vec())
        .bind(staff)
        .bind(token)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if started == 0 {
            return Ok(false);
        }
        let purpose: String = sqlx::query("SELECT purpose FROM campaigns WHERE id = $1")
            .bind(id.as_bytes().to_vec())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        for chunk in members.chunks(INSERT_CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, $1, ${}, $2, 'queued')", 2 * i + 3, 2 * i + 4))
                .collect();
            let sql = format!(
                "INSERT INTO campaign_deliveries (id, campaign_id, customer_id, purpose, state) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id.as_bytes().to_vec())
                .bind(purpose.clone());
            for c in chunk {
                q = q
                    .bind(DeliveryId::new().as_bytes().to_vec())
                    .bind(c.as_bytes().to_vec());
            }
            q.execute(&mut *tx).await?;
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn claim_deliveries(
        &self,
        campaign: CampaignId,
        claim: &[u8; 16],
        limit: u32,
        at: i64,
    ) -> StoreResult<Vec<(DeliveryId, Option<CustomerId>)>> {
        // Committed before any hand-off: a process that dies after this leaves the rows in
        // `sending`, and they are never claimed again (see `expire_claims`).
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE campaign_deliveries SET state = 'sending', claimed_at = $3, claimed_by = $4, handed_at = NULL WHERE id IN \
             (SELECT id FROM campaign_deliveries WHERE campaign_id = $1 AND state = 'queued' ORDER BY id LIMIT $2{lock}) \
             RETURNING id, customer_id"
        )))
        .bind(campaign.as_bytes().to_vec())
        .bind(i64::from(limit))
        .bind(at)
        .bind(claim.to_vec())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                let customer: Option<Vec<u8>> = r.try_get(1)?;
                Ok((
                    id16(r.try_get(0)?, DeliveryId::from_slice)?,
                    customer
                        .map(|c| id16(c, CustomerId::from_slice))
                        .transpose()?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|(id, _)| *id);
        Ok(claimed)
    }

    async fn recent_messages(
        &self,
        customers: &[CustomerId],
        purpose: &str,
        since: i64,
    ) -> StoreResult<Vec<(CustomerId, u64)>> {
        let mut out = Vec::new();
        for chunk in customers.chunks(INSERT_CHUNK) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "SELECT customer_id, COUNT(*) FROM campaign_deliveries \
                 WHERE purpose = $1 AND claimed_at >= $2 AND state IN ('sending', 'sent', 'uncertain') \
                 AND customer_id IN ({}) GROUP BY customer_id",
                list.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(purpose.to_owned())
                .bind(since);
            for c in chunk {
                q = q.bind(c.as_bytes().to_vec());
            }
            for r in q.fetch_all(&self.pool).await? {
                let n: i64 = r.try_get(1)?;
                out.push((
                    id16(r.try_get(0)?, CustomerId::from_slice)?,
                    u64::try_from(n).unwrap_or(0),
                ));
            }
        }
        Ok(out)
    }

    async fn mark_handed(
        &self,
        claim: &[u8; 16],
        rows: &[(DeliveryId, CustomerId)],
        at: i64,
    ) -> StoreResult<Vec<DeliveryId>> {
        // The mark is what stops a resend after a crash.
        let mut conn = self.begin_durable().await?;
        let mut marked = Vec::new();
        let result = async {
            for chunk in rows.chunks(INSERT_CHUNK / 2) {
                // Each row for the customer it was prepared for: one erased (or moved by a
                // merge) since is not handed over.
                let pairs: Vec<String> = (0..chunk.len())
                    .map(|i| format!("(id = ${} AND customer_id = ${})", 2 * i + 3, 2 * i + 4))
                    .collect();
                let sql = format!(
                    "UPDATE campaign_deliveries SET handed_at = $2 WHERE claimed_by = $1 AND state = 'sending' \
                     AND ({}) RETURNING id",
                    pairs.join(" OR ")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(claim.to_vec())
                    .bind(at);
                for (id, customer) in chunk {
                    q = q
                        .bind(id.as_bytes().to_vec())
                        .bind(customer.as_bytes().to_vec());
                }
                for r in q.fetch_all(&mut *conn).await? {
                    marked.push(id16(r.try_get(0)?, DeliveryId::from_slice)?);
                }
            }
            StoreResult::Ok(())
        }
        .await;
        self.end_durable(conn, result.is_ok()).await?;
        result?;
        Ok(marked)
    }

    async fn record_outcomes(&self, claim: &[u8; 16], outcomes: &[Outcome]) -> StoreResult<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for o in outcomes {
            // Only a row still held by this claim: one marked uncertain (or queued again and
            // claimed elsewhere) since is not this claim's to settle.
            sqlx::query(
                "UPDATE campaign_deliveries SET state = $2, reason = $3, sent_at = $4 \
                 WHERE id = $1 AND state = 'sending' AND claimed_by = $5",
            )
            .bind(o.id.as_bytes().to_vec())
            .bind(o.state.as_str())
            .bind(o.reason)
            .bind(o.at)
            .bind(claim.to_vec())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn expire_claims(&self, claimed_before: i64) -> StoreResult<(u64, u64)> {
        let mut tx = self.write_tx().await?;
        // Handed over (or about to be) a lease ago and not settled: it may have gone out. The
        // lease runs from the mark, so a batch prepared long before it is handed over is not
        // counted uncertain while it is being handed over.
        let uncertain = sqlx::query(
            "UPDATE campaign_deliveries SET state = 'uncertain' \
             WHERE state = 'sending' AND handed_at < $1",
        )
        .bind(claimed_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Never handed over: certainly not sent, so queued again.
        let requeued = sqlx::query(
            "UPDATE campaign_deliveries SET state = 'queued', claimed_at = NULL, claimed_by = NULL \
             WHERE state = 'sending' AND claimed_at < $1 AND handed_at IS NULL",
        )
        .bind(claimed_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((uncertain, requeued))
    }

    async fn finish_campaign(
        &self,
        id: CampaignId,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE campaigns SET status = 'sent', finished_at = $2 WHERE id = $1 AND status = 'sending' \
             AND NOT EXISTS (SELECT 1 FROM campaign_deliveries WHERE campaign_id = $1 AND state IN ('queued', 'sending'))",
        )
        .bind(id.as_bytes().to_vec())
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Ok(false);
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delivery_counts(&self, id: CampaignId) -> StoreResult<DeliveryCounts> {
        let rows = sqlx::query(
            "SELECT state, reason, COUNT(*) FROM campaign_deliveries WHERE campaign_id = $1 GROUP BY state, reason",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_all(&self.pool)
        .await?;
        let mut counts = DeliveryCounts::default();
        for r in &rows {
            let state: String = r.try_get(0)?;
            let n: i64 = r.try_get(2)?;
            counts.by_state.push((
                state_of(&state)?,
                r.try_get(1)?,
                u64::try_from(n).unwrap_or(0),
            ));
        }
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM campaign_deliveries WHERE campaign_id = $1 AND unsubscribed_at IS NOT NULL",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        counts.unsubscribed = u64::try_from(n).unwrap_or(0);
        Ok(counts)
    }

    async fn delivery(&self, id: DeliveryId) -> StoreResult<Option<DeliveryRow>> {
        let row = sqlx::query(
            "SELECT id, campaign_id, customer_id, purpose, state, unsubscribed_at FROM campaign_deliveries WHERE id = $1",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let customer: Option<Vec<u8>> = r.try_get(2)?;
            let state: String = r.try_get(4)?;
            Ok(DeliveryRow {
                id: id16(r.try_get(0)?, DeliveryId::from_slice)?,
                campaign_id: id16(r.try_get(1)?, CampaignId::from_slice)?,
                customer_id: customer
                    .map(|c| id16(c, CustomerId::from_slice))
                    .transpose()?,
                purpose: r.try_get(3)?,
                state: state_of(&state)?,
                unsubscribed_at: r.try_get(5)?,
            })
        })
        .transpose()
    }

    async fn mark_unsubscribed(&self, id: DeliveryId, at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE campaign_deliveries SET unsubscribed_at = $2 WHERE id = $1 AND unsubscribed_at IS NULL",
        )
        .bind(id.as_bytes().to_vec())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn customer_deliveries(
        &self,
        customer: CustomerId,
    ) -> StoreResult<Vec<(CampaignRow, DeliveryRow, Option<i64>)>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {}, d.id, d.state, d.unsubscribed_at, d.sent_at FROM campaign_deliveries d \
             JOIN campaigns c ON c.id = d.campaign_id WHERE d.customer_id = $1 ORDER BY d.id",
            COLUMNS
                .split(", ")
                .map(|c| format!("c.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(customer.as_bytes().to_vec())
        .fetch_all(&self.pool)
        .await?;
        // The delivery's columns follow the campaign's.
        let at = COLUMNS.split(", ").count();
        rows.iter()
            .map(|r| {
                let c = campaign_from(r)?;
                let state: String = r.try_get(at + 1)?;
                let d = DeliveryRow {
                    id: id16(r.try_get(at)?, DeliveryId::from_slice)?,
                    campaign_id: c.id,
                    customer_id: Some(customer),
                    purpose: c.purpose.clone(),
                    state: state_of(&state)?,
                    unsubscribed_at: r.try_get(at + 2)?,
                };
                Ok((c, d, r.try_get(at + 3)?))
            })
            .collect()
    }
}

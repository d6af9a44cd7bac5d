//! Staff messages, their threads and reply aliases, and undeliverable addresses, as stored (see
//! the `staff_messages` migration). Texts are interactions; these rows hold state, sealed
//! subjects and aliases, and keyed MACs only.

use sqlx::Row;
use sqlx::any::AnyRow;
use steward_domain::{CustomerId, InteractionId, StaffId, ThreadId, TokenId};

use crate::sql::id16;
use crate::{AuditEntryRow, InteractionRow, MessageStore, SqlStore, StoreResult};

/// A thread as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRow {
    /// Id.
    pub id: ThreadId,
    /// The customer written to.
    pub customer_id: CustomerId,
    /// The purpose it was written under.
    pub purpose: String,
    /// The subject, sealed under the customer's data key.
    pub subject: Vec<u8>,
    /// The reply alias's random part, sealed under the customer's data key.
    pub alias: Vec<u8>,
    /// The alias's keyed MAC (how a reply finds the thread).
    pub alias_mac: Vec<u8>,
    /// When it began (ms).
    pub created_at: i64,
    /// Until when replies are accepted (ms); each message sent extends it.
    pub expires_at: i64,
}

/// One message of a thread: direction and delivery state (the text is the interaction of the
/// same id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// Id (= the interaction's).
    pub id: InteractionId,
    /// The thread.
    pub thread_id: ThreadId,
    /// The customer.
    pub customer_id: CustomerId,
    /// `out` or `in`.
    pub direction: String,
    /// The subject, sealed under the customer's data key.
    pub subject: Vec<u8>,
    /// `queued`, `sending`, `sent`, `uncertain`, `failed` or `received`.
    pub state: String,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// The staff member who wrote it.
    pub sender_staff: Option<StaffId>,
    /// The token (or session) it was written with.
    pub sender_token: Option<TokenId>,
    /// When (ms).
    pub created_at: i64,
}

const THREAD_COLUMNS: &str =
    "id, customer_id, purpose, subject, alias, alias_mac, created_at, expires_at";
const MESSAGE_COLUMNS: &str = "id, thread_id, customer_id, direction, state, reason, sender_staff, \
     sender_token, created_at, subject";

fn thread_from(r: &AnyRow) -> StoreResult<ThreadRow> {
    Ok(ThreadRow {
        id: id16(r.try_get(0)?, ThreadId::from_slice)?,
        customer_id: id16(r.try_get(1)?, CustomerId::from_slice)?,
        purpose: r.try_get(2)?,
        subject: r.try_get(3)?,
        alias: r.try_get(4)?,
        alias_mac: r.try_get(5)?,
        created_at: r.try_get(6)?,
        expires_at: r.try_get(7)?,
    })
}

fn message_from(r: &AnyRow) -> StoreResult<MessageRow> {
    let staff: Option<Vec<u8>> = r.try_get(6)?;
    let token: Option<Vec<u8>> = r.try_get(7)?;
    Ok(MessageRow {
        id: id16(r.try_get(0)?, InteractionId::from_slice)?,
        thread_id: id16(r.try_get(1)?, ThreadId::from_slice)?,
        customer_id: id16(r.try_get(2)?, CustomerId::from_slice)?,
        direction: r.try_get(3)?,
        state: r.try_get(4)?,
        reason: r.try_get(5)?,
        sender_staff: staff.map(|s| id16(s, StaffId::from_slice)).transpose()?,
        sender_token: token.map(|t| id16(t, TokenId::from_slice)).transpose()?,
        created_at: r.try_get(8)?,
        subject: r.try_get(9)?,
    })
}

impl SqlStore {
    /// Whether the customer still exists, unerased, holding their row against an erasure until
    /// this transaction ends (PostgreSQL; SQLite's write transaction is exclusive already): an
    /// erasure either runs first, and this finds it, or waits, and then deletes what this adds.
    async fn customer_live(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        customer: CustomerId,
    ) -> StoreResult<bool> {
        let lock = match self.backend {
            crate::Backend::Postgres => " FOR SHARE",
            crate::Backend::Sqlite => "",
        };
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM customers WHERE id = $1 AND erased_at IS NULL{lock}"
        )))
        .bind(customer.as_bytes().to_vec())
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
    }

    async fn insert_thread_message(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        interaction: &InteractionRow,
        m: &MessageRow,
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO interactions ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            crate::sql::INTERACTION_COLUMNS
        );
        crate::sql::bind_interaction(sqlx::query(sqlx::AssertSqlSafe(sql)), interaction)
            .execute(&mut **tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO thread_messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(m.id.as_bytes().to_vec())
        .bind(m.thread_id.as_bytes().to_vec())
        .bind(m.customer_id.as_bytes().to_vec())
        .bind(m.direction.clone())
        .bind(m.state.clone())
        .bind(m.reason.clone())
        .bind(m.sender_staff.map(|s| s.as_bytes().to_vec()))
        .bind(m.sender_token.map(|t| t.as_bytes().to_vec()))
        .bind(m.created_at)
        .bind(m.subject.clone())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl MessageStore for SqlStore {
    async fn insert_message(
        &self,
        new_thread: Option<&ThreadRow>,
        interaction: &InteractionRow,
        message: &MessageRow,
        expires_at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if !self.customer_live(&mut tx, message.customer_id).await? {
            return Ok(false);
        }
        if let Some(t) = new_thread {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO message_threads ({THREAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )))
            .bind(t.id.as_bytes().to_vec())
            .bind(t.customer_id.as_bytes().to_vec())
            .bind(t.purpose.clone())
            .bind(t.subject.clone())
            .bind(t.alias.clone())
            .bind(t.alias_mac.clone())
            .bind(t.created_at)
            .bind(t.expires_at)
            .execute(&mut *tx)
            .await?;
        } else {
            // The thread must still be this customer's (not erased or merged away since).
            let extended = sqlx::query(
                "UPDATE message_threads SET expires_at = $3 WHERE id = $1 AND customer_id = $2",
            )
            .bind(message.thread_id.as_bytes().to_vec())
            .bind(message.customer_id.as_bytes().to_vec())
            .bind(expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if extended == 0 {
                return Ok(false);
            }
        }
        Self::insert_thread_message(&mut tx, interaction, message).await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_reply(
        &self,
        interaction: &InteractionRow,
        message: &MessageRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if !self.customer_live(&mut tx, message.customer_id).await? {
            return Ok(false);
        }
        let live = sqlx::query("SELECT 1 FROM message_threads WHERE id = $1 AND customer_id = $2")
            .bind(message.thread_id.as_bytes().to_vec())
            .bind(message.customer_id.as_bytes().to_vec())
            .fetch_optional(&mut *tx)
            .await?;
        if live.is_none() {
            return Ok(false);
        }
        Self::insert_thread_message(&mut tx, interaction, message).await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn thread(&self, id: ThreadId) -> StoreResult<Option<ThreadRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {THREAD_COLUMNS} FROM message_threads WHERE id = $1"
        )))
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(thread_from).transpose()
    }

    async fn thread_by_alias(&self, alias_mac: &[u8]) -> StoreResult<Option<ThreadRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {THREAD_COLUMNS} FROM message_threads WHERE alias_mac = $1"
        )))
        .bind(alias_mac.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(thread_from).transpose()
    }

    async fn customer_threads(
        &self,
        customer: CustomerId,
    ) -> StoreResult<(Vec<ThreadRow>, Vec<MessageRow>)> {
        let idb = customer.as_bytes().to_vec();
        let threads = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {THREAD_COLUMNS} FROM message_threads WHERE customer_id = $1 ORDER BY id"
        )))
        .bind(idb.clone())
        .fetch_all(&self.pool)
        .await?;
        let messages = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM thread_messages WHERE customer_id = $1 ORDER BY id"
        )))
        .bind(idb)
        .fetch_all(&self.pool)
        .await?;
        Ok((
            threads
                .iter()
                .map(thread_from)
                .collect::<StoreResult<_>>()?,
            messages
                .iter()
                .map(message_from)
                .collect::<StoreResult<_>>()?,
        ))
    }

    async fn message(&self, id: InteractionId) -> StoreResult<Option<MessageRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM thread_messages WHERE id = $1"
        )))
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(message_from).transpose()
    }

    async fn message_body(&self, id: InteractionId) -> StoreResult<Option<InteractionRow>> {
        let row = sqlx::query(
            "SELECT id, customer_id, channel, source, occurred_at, body, pii_types FROM interactions WHERE id = $1",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(crate::sql::interaction_from).transpose()
    }

    async fn begin_handover(&self, id: InteractionId, at: i64) -> StoreResult<bool> {
        // Committed durably (it is what stops a resend after a crash or a power loss), and only
        // from `queued`: of two processes that both prepared the message, one hands it over.
        let mut conn = self.begin_durable().await?;
        let result = sqlx::query(
            "UPDATE thread_messages SET state = 'sending', handed_at = $2 \
             WHERE id = $1 AND state = 'queued'",
        )
        .bind(id.as_bytes().to_vec())
        .bind(at)
        .execute(&mut *conn)
        .await;
        self.end_durable(conn, result.is_ok()).await?;
        Ok(result?.rows_affected() == 1)
    }

    async fn settle_message(
        &self,
        id: InteractionId,
        from: &[&str],
        state: &str,
        reason: Option<&str>,
        at: i64,
    ) -> StoreResult<bool> {
        let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 5)).collect();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE thread_messages SET state = $2, reason = $3, settled_at = $4 \
             WHERE id = $1 AND state IN ({})",
            placeholders.join(", ")
        )))
        .bind(id.as_bytes().to_vec())
        .bind(state.to_owned())
        .bind(reason.map(str::to_owned))
        .bind(at);
        for f in from {
            q = q.bind((*f).to_owned());
        }
        Ok(q.execute(&self.pool).await?.rows_affected() == 1)
    }

    async fn pending_messages(
        &self,
        queued_before: i64,
        handed_before: i64,
        at: i64,
    ) -> StoreResult<(Vec<InteractionId>, u64)> {
        // A hand-over that began before the lease and was never settled may or may not have
        // reached the server: uncertain, never sent again.
        let uncertain = sqlx::query(
            "UPDATE thread_messages SET state = 'uncertain', settled_at = $2 \
             WHERE state = 'sending' AND handed_at < $1",
        )
        .bind(handed_before)
        .bind(at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let queued = sqlx::query(
            "SELECT id FROM thread_messages WHERE state = 'queued' AND created_at < $1 ORDER BY id LIMIT 256",
        )
        .bind(queued_before)
        .fetch_all(&self.pool)
        .await?;
        let ids = queued
            .iter()
            .map(|r| id16(r.try_get(0)?, InteractionId::from_slice))
            .collect::<StoreResult<_>>()?;
        Ok((ids, uncertain))
    }

    async fn mark_undeliverable(
        &self,
        customer: CustomerId,
        address_mac: &[u8],
        bounced: Bounced,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO undeliverable_addresses (customer_id, address_mac, marked_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(customer.as_bytes().to_vec())
        .bind(address_mac.to_vec())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        match bounced {
            Bounced::Delivery(id) => {
                sqlx::query(
                    "UPDATE campaign_deliveries SET state = 'failed', reason = 'bounced' \
                     WHERE id = $1 AND customer_id = $2 AND state IN ('sent', 'uncertain')",
                )
                .bind(id.to_vec())
                .bind(customer.as_bytes().to_vec())
                .execute(&mut *tx)
                .await?;
            }
            Bounced::Message(id) => {
                sqlx::query(
                    "UPDATE thread_messages SET state = 'failed', reason = 'bounced', settled_at = $3 \
                     WHERE id = $1 AND customer_id = $2 AND state IN ('sent', 'uncertain')",
                )
                .bind(id.as_bytes().to_vec())
                .bind(customer.as_bytes().to_vec())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
        }
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn undeliverable(
        &self,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<(CustomerId, Vec<u8>)>> {
        let mut out = Vec::new();
        for chunk in customers.chunks(crate::sql::INSERT_CHUNK) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT customer_id, address_mac FROM undeliverable_addresses WHERE customer_id IN ({})",
                placeholders.join(", ")
            )));
            for c in chunk {
                q = q.bind(c.as_bytes().to_vec());
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push((id16(r.try_get(0)?, CustomerId::from_slice)?, r.try_get(1)?));
            }
        }
        Ok(out)
    }
}

/// What a bounce was about: a campaign delivery (its 16-byte id) or a staff message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounced {
    /// A campaign delivery.
    Delivery([u8; 16]),
    /// A staff message.
    Message(InteractionId),
}

//! The customer privacy portal's sign-in: one-time codes (kept as keyed MACs) and the sessions
//! they open (kept as Argon2id hashes of their secrets).

use sqlx::Row;
use steward_domain::CustomerId;
use uuid::Uuid;

use crate::sql::id16;
use crate::{AuditEntryRow, SqlStore, StoreError, StoreResult};

/// A one-time code sent to a customer's recorded e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalCodeRow {
    /// The challenge, named in the browser's cookie.
    pub id: Uuid,
    /// Whose; `None` for a decoy (the address matched no customer).
    pub customer_id: Option<CustomerId>,
    /// Keyed MAC of the id and the code.
    pub code_mac: Vec<u8>,
    /// Wrong codes tried so far.
    pub attempts: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which the code no longer works.
    pub expires_at: i64,
}

/// A customer's signed-in portal session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSessionRow {
    /// The session (the id part of its token).
    pub id: Uuid,
    /// Whose.
    pub customer_id: CustomerId,
    /// Argon2id PHC hash of the token's secret.
    pub secret_hash: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms after which the session is over.
    pub expires_at: i64,
}

pub(crate) fn uuid_of(bytes: Vec<u8>) -> StoreResult<Uuid> {
    Uuid::from_slice(&bytes).map_err(|_| StoreError::Corrupt("id is not 16 bytes"))
}

impl SqlStore {
    pub(crate) async fn insert_portal_code_impl(
        &self,
        row: &PortalCodeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO portal_codes (id, customer_id, code_mac, attempts, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(row.id.as_bytes().to_vec())
            .bind(row.customer_id.map(|c| c.as_bytes().to_vec()))
            .bind(row.code_mac.clone())
            .bind(row.attempts)
            .bind(row.created_at)
            .bind(row.expires_at)
            .execute(&mut *tx)
            .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn portal_code_impl(&self, id: Uuid) -> StoreResult<Option<PortalCodeRow>> {
        let row = sqlx::query("SELECT id, customer_id, code_mac, attempts, created_at, expires_at FROM portal_codes WHERE id = $1")
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let customer: Option<Vec<u8>> = r.try_get(1)?;
            Ok(PortalCodeRow {
                id: uuid_of(r.try_get(0)?)?,
                customer_id: customer
                    .map(|c| id16(c, CustomerId::from_slice))
                    .transpose()?,
                code_mac: r.try_get(2)?,
                attempts: r.try_get(3)?,
                created_at: r.try_get(4)?,
                expires_at: r.try_get(5)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn open_portal_session_impl(
        &self,
        code: Uuid,
        session: &PortalSessionRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        // The code is spent by the same statement that finds it: of two sign-ins racing with
        // one code, one opens a session.
        let spent = sqlx::query("DELETE FROM portal_codes WHERE id = $1 AND customer_id = $2")
            .bind(code.as_bytes().to_vec())
            .bind(session.customer_id.as_bytes().to_vec())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if !spent {
            return Ok(false);
        }
        sqlx::query("INSERT INTO portal_sessions (id, customer_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(session.id.as_bytes().to_vec())
            .bind(session.customer_id.as_bytes().to_vec())
            .bind(session.secret_hash.as_str())
            .bind(session.created_at)
            .bind(session.expires_at)
            .execute(&mut *tx)
            .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn portal_session_impl(
        &self,
        id: Uuid,
    ) -> StoreResult<Option<PortalSessionRow>> {
        let row = sqlx::query("SELECT id, customer_id, secret_hash, created_at, expires_at FROM portal_sessions WHERE id = $1")
            .bind(id.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(PortalSessionRow {
                id: uuid_of(r.try_get(0)?)?,
                customer_id: id16(r.try_get(1)?, CustomerId::from_slice)?,
                secret_hash: r.try_get(2)?,
                created_at: r.try_get(3)?,
                expires_at: r.try_get(4)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn close_portal_session_impl(
        &self,
        id: Uuid,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM portal_sessions WHERE id = $1")
            .bind(id.as_bytes().to_vec())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if done {
            self.outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    pub(crate) async fn dead_portal_impl(&self, before: i64, delete: bool) -> StoreResult<u64> {
        let mut n = 0;
        for table in ["portal_codes", "portal_sessions"] {
            n += self.sweep(table, "expires_at < $1", before, delete).await?;
        }
        Ok(n)
    }
}

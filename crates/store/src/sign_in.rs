//! Staff sign-in: credentials (a login MAC and an Argon2id password hash) and the revocation of
//! the tokens a sign-in issues.

use sqlx::Row;
use steward_domain::{StaffId, TokenId};

use crate::sql::id16;
use crate::{AuditEntryRow, SqlStore, StoreResult};

/// A staff member's sign-in credentials. The login itself is never stored, only its MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    /// Whose.
    pub staff_id: StaffId,
    /// Keyed MAC of the normalised login.
    pub login_mac: Vec<u8>,
    /// Argon2id PHC hash of the password.
    pub password_hash: String,
    /// Unix ms.
    pub updated_at: i64,
}

impl SqlStore {
    pub(crate) async fn set_credentials_impl(
        &self,
        row: &CredentialRow,
        session_name: &str,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        // A new password ends every session the old one opened.
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE staff_id = $2 AND name = $3 AND revoked_at IS NULL",
        )
        .bind(row.updated_at)
        .bind(row.staff_id.as_bytes().to_vec())
        .bind(session_name.to_owned())
        .execute(&mut *tx)
        .await?;
        // One row per staff member: a new login or password replaces the old.
        sqlx::query("DELETE FROM staff_credentials WHERE staff_id = $1")
            .bind(row.staff_id.as_bytes().to_vec())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO staff_credentials (staff_id, login_mac, password_hash, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(row.staff_id.as_bytes().to_vec())
            .bind(row.login_mac.clone())
            .bind(row.password_hash.as_str())
            .bind(row.updated_at)
            .execute(&mut *tx)
            .await?;
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn credentials_by_login_impl(
        &self,
        login_mac: &[u8],
    ) -> StoreResult<Option<CredentialRow>> {
        let row = sqlx::query("SELECT staff_id, login_mac, password_hash, updated_at FROM staff_credentials WHERE login_mac = $1")
            .bind(login_mac.to_vec())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(CredentialRow {
                staff_id: id16(r.try_get(0)?, StaffId::from_slice)?,
                login_mac: r.try_get(1)?,
                password_hash: r.try_get(2)?,
                updated_at: r.try_get(3)?,
            })
        })
        .transpose()
    }

    pub(crate) async fn dead_sessions_impl(&self, before: i64, delete: bool) -> StoreResult<u64> {
        // Only tokens that expire (sign-in sessions); long-lived API tokens stay as records.
        self.sweep(
            "api_tokens",
            "expires_at IS NOT NULL AND (expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1))",
            before,
            delete,
        )
        .await
    }

    /// Counts, or deletes when `delete`, the rows of `table` matching `dead` (a condition on
    /// `$1` = `before`). Both arguments are constants of this crate, never input.
    pub(crate) async fn sweep(
        &self,
        table: &'static str,
        dead: &'static str,
        before: i64,
        delete: bool,
    ) -> StoreResult<u64> {
        if delete {
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE {dead}"
            )))
            .bind(before)
            .execute(&self.pool)
            .await?;
            return Ok(done.rows_affected());
        }
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE {dead}"
        )))
        .bind(before)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(crate) async fn revoke_token_impl(
        &self,
        id: TokenId,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
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
}

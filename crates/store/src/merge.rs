//! Merging a duplicate customer into a survivor: the duplicate's interactions and purchases,
//! re-sealed under the survivor's data key by the caller, and its consent withdrawals move to the
//! survivor in one transaction; the duplicate is then crypto-shredded like any erasure.
//!
//! No outlet link moves: a purchase links its customer to no outlet (issue 15, finding 2), and a
//! merge must not widen who reads the survivor (issue 17 review, finding 1). Consent grants given
//! under the duplicate do not move either (a withdrawal that came before could be overturned by
//! them); its withdrawals do.

use steward_domain::CustomerId;

use sqlx::AssertSqlSafe;

use crate::{AuditEntryRow, InteractionRow, PurchaseRow, SqlStore, StoreResult};

impl SqlStore {
    /// Moves `from`'s activity to `to`: each row replaced by its re-sealed version (same id, the
    /// survivor's customer id), the consent withdrawals re-owned, the audit entries written; one
    /// transaction. Returns false, moving nothing, if a row was no longer `from`'s or `from` has
    /// rows that were not listed (a concurrent change): the merge is then tried again.
    pub(crate) async fn move_activity_impl(
        &self,
        from: CustomerId,
        to: CustomerId,
        interactions: &[InteractionRow],
        purchases: &[PurchaseRow],
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let (from_b, to_b) = (from.as_bytes().to_vec(), to.as_bytes().to_vec());
        for i in interactions {
            let done = sqlx::query(
                "UPDATE interactions SET customer_id = $1, body = $2 WHERE id = $3 AND customer_id = $4",
            )
            .bind(to_b.clone())
            .bind(i.body.clone())
            .bind(i.id.clone())
            .bind(from_b.clone())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
        }
        for p in purchases {
            let done = sqlx::query(
                "UPDATE purchases SET customer_id = $1, item = $2, amount = $3, outlet = $4, seller = $5 \
                 WHERE id = $6 AND customer_id = $7",
            )
            .bind(to_b.clone())
            .bind(p.item.clone())
            .bind(p.amount.clone())
            .bind(p.outlet.clone())
            .bind(p.seller.clone())
            .bind(p.id.clone())
            .bind(from_b.clone())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
        }
        // Anything of `from`'s left (added while the rows were re-sealed) would be destroyed by
        // the erasure that follows: nothing moves, the caller starts again.
        for table in ["interactions", "purchases"] {
            let left = sqlx::query(AssertSqlSafe(format!(
                "SELECT 1 FROM {table} WHERE customer_id = $1 LIMIT 1"
            )))
            .bind(from_b.clone())
            .fetch_optional(&mut *tx)
            .await?;
            if left.is_some() {
                return Ok(false);
            }
        }
        sqlx::query(
            "UPDATE consent_events SET customer_id = $1 WHERE customer_id = $2 AND action = 'withdraw'",
        )
        .bind(to_b.clone())
        .bind(from_b.clone())
        .execute(&mut *tx)
        .await?;
        // Campaign messages follow the person: the kept record inherits the other's (its
        // unsubscribe links then withdraw the kept record's consent, and the frequency cap
        // counts them). A campaign both records were queued for goes to the kept one only.
        sqlx::query(
            "UPDATE campaign_deliveries SET state = 'skipped', reason = 'merged' WHERE customer_id = $1 AND state = 'queued' \
             AND campaign_id IN (SELECT campaign_id FROM campaign_deliveries WHERE customer_id = $2 AND state IN ('sending', 'sent', 'uncertain'))",
        )
        .bind(to_b.clone())
        .bind(from_b.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE campaign_deliveries SET state = 'skipped', reason = 'merged' WHERE customer_id = $2 AND state = 'queued' \
             AND campaign_id IN (SELECT campaign_id FROM campaign_deliveries WHERE customer_id = $1)",
        )
        .bind(to_b.clone())
        .bind(from_b.clone())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE campaign_deliveries SET customer_id = $1 WHERE customer_id = $2 \
             AND campaign_id NOT IN (SELECT campaign_id FROM campaign_deliveries WHERE customer_id = $1)",
        )
        .bind(to_b)
        .bind(from_b)
        .execute(&mut *tx)
        .await?;
        crate::audit::outbox(&mut tx, self.backend, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

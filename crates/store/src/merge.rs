//! Merging a duplicate customer into a survivor: the duplicate's interactions and purchases,
//! re-sealed under the survivor's data key by the caller, and its consent events move to the
//! survivor in one transaction; the duplicate is then crypto-shredded like any erasure.

use steward_domain::{CustomerId, OutletId};

use crate::{AuditEntryRow, InteractionRow, PurchaseRow, SqlStore, StoreResult};

impl SqlStore {
    /// Moves `from`'s activity to `to`: each row replaced by its re-sealed version (same id, the
    /// survivor's customer id), every consent event re-owned, the outlets of the moved purchases
    /// linked, the audit entries written; one transaction. Returns false if a row was no longer
    /// `from`'s (a concurrent change): nothing is moved then.
    pub(crate) async fn move_activity_impl(
        &self,
        from: CustomerId,
        to: CustomerId,
        interactions: &[InteractionRow],
        purchases: &[PurchaseRow],
        outlets: &[OutletId],
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
        sqlx::query("UPDATE consent_events SET customer_id = $1 WHERE customer_id = $2")
            .bind(to_b.clone())
            .bind(from_b)
            .execute(&mut *tx)
            .await?;
        let links: Vec<(CustomerId, OutletId)> = outlets.iter().map(|o| (to, *o)).collect();
        self.link_outlets(&mut tx, &links).await?;
        crate::audit::outbox(&mut tx, self.backend, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

//! Merging a duplicate customer into a survivor: the duplicate's interactions and purchases,
//! re-sealed under the survivor's data key by the caller, and its consent withdrawals move to the
//! survivor in one transaction; the duplicate is then crypto-shredded like any erasure.
//!
//! No outlet link moves: a purchase links its customer to no outlet (issue 15, finding 2), and a
//! merge must not widen who reads the survivor (issue 17 review, finding 1). Consent grants given
//! under the duplicate do not move either (a withdrawal that came before could be overturned by
//! them); its withdrawals do.

use steward_domain::CustomerId;

use sqlx::{AssertSqlSafe, Row};

use crate::Backend;
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
                "UPDATE interactions SET customer_id = $1, body = $2, pii_types = $5 WHERE id = $3 AND customer_id = $4",
            )
            .bind(to_b.clone())
            .bind(i.body.clone())
            .bind(i.id.clone())
            .bind(from_b.clone())
            .bind(i.pii_types.clone())
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
        let moved: Vec<String> = sqlx::query(
            "SELECT DISTINCT purpose FROM consent_events WHERE customer_id = $1 AND action = 'withdraw'",
        )
        .bind(from_b.clone())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        sqlx::query(
            "UPDATE consent_events SET customer_id = $1 WHERE customer_id = $2 AND action = 'withdraw'",
        )
        .bind(to_b.clone())
        .bind(from_b.clone())
        .execute(&mut *tx)
        .await?;
        // A withdrawal that is now the survivor's last word on a purpose follows the survivor's
        // data to the recipients that received it under that purpose (issue 22).
        let at = audit
            .first()
            .map(|a| a.occurred_at)
            .unwrap_or_else(|| steward_domain::Timestamp::now().millis());
        for purpose in &moved {
            let last: Option<String> = sqlx::query(
                "SELECT action FROM consent_events WHERE customer_id = $1 AND purpose = $2 ORDER BY id DESC LIMIT 1",
            )
            .bind(to_b.clone())
            .bind(purpose.clone())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
            if last.as_deref() == Some("withdraw") {
                Self::follow(
                    &mut tx,
                    self.backend,
                    to,
                    steward_domain::sharing::Change::ConsentWithdrawn,
                    crate::Touched::Purpose(purpose),
                    at,
                )
                .await?;
            }
        }
        // Campaign messages follow the person: the kept record inherits the other's (its
        // unsubscribe links then withdraw the kept record's consent, and the frequency cap
        // counts them), and a campaign both were in goes out once. A row is "out" once its
        // hand-over began; a claimed row not yet marked is as good as queued (`mark_handed`
        // refuses a row no longer `sending`). Rows are locked first on PostgreSQL, so a claim
        // cannot slip between these statements.
        if self.backend == Backend::Postgres {
            sqlx::query(
                "SELECT id FROM campaign_deliveries WHERE customer_id = $1 OR customer_id = $2 FOR UPDATE",
            )
            .bind(to_b.clone())
            .bind(from_b.clone())
            .fetch_all(&mut *tx)
            .await?;
        }
        const NOT_OUT: &str = "(state = 'queued' OR (state = 'sending' AND handed_at IS NULL))";
        const OUT: &str =
            "(state IN ('sent', 'uncertain') OR (state = 'sending' AND handed_at IS NOT NULL))";
        // The merged record's message went out: the kept one's is not sent, and leaves its slot
        // (customer cleared) so the one that went out can move over.
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE campaign_deliveries SET state = 'skipped', reason = 'merged', customer_id = NULL \
             WHERE customer_id = $1 AND {NOT_OUT} \
             AND campaign_id IN (SELECT campaign_id FROM campaign_deliveries WHERE customer_id = $2 AND {OUT})"
        )))
        .bind(to_b.clone())
        .bind(from_b.clone())
        .execute(&mut *tx)
        .await?;
        // Otherwise the merged record's is not sent (the kept record's goes, or went, out).
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE campaign_deliveries SET state = 'skipped', reason = 'merged' \
             WHERE customer_id = $2 AND {NOT_OUT} \
             AND campaign_id IN (SELECT campaign_id FROM campaign_deliveries WHERE customer_id = $1)"
        )))
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
        self.outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

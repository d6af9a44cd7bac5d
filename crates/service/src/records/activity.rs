//! Customers' activity: interactions and purchases recorded (decided, sealed, audited), read
//! for the service's own use after a decision, moved by a merge and disposed of by retention.

use steward_crypto::DataKey;
use steward_domain::pii::PiiTypes;
use steward_domain::{
    CustomerId, Interaction, InteractionId, NewInteraction, NewPurchase, Purchase, PurchaseId,
    Role, ValidationError,
};
use steward_policy::Action;
use uuid::Uuid;

use super::Records;
use crate::Actor;
use crate::auth::Operator;
use crate::error::{ServiceError, ServiceResult};
use crate::seal;

/// A purchase decided and sealed, not stored yet (see [`Records::prepare_purchase`]).
pub(crate) struct PreparedPurchase {
    /// The purchase's id.
    pub(crate) id: PurchaseId,
    row: steward_store::PurchaseRow,
    entry: steward_store::AuditEntryRow,
}

/// One interaction or purchase, for bulk loading.
#[derive(Debug, Clone)]
pub enum Activity {
    /// An interaction.
    Interaction(NewInteraction),
    /// A purchase.
    Purchase(NewPurchase),
}

impl Records {
    /// Moves `from`'s activity to `to`, re-sealed under `to`'s key (a decided merge), with its
    /// audit entries; `false` if `from` changed meanwhile.
    pub(crate) async fn move_activity(
        &self,
        (from, to): (CustomerId, CustomerId),
        interactions: &[steward_store::InteractionRow],
        purchases: &[steward_store::PurchaseRow],
        audit: &[steward_store::AuditEntryRow],
    ) -> ServiceResult<bool> {
        Ok(self
            .activity
            .move_activity(from, to, interactions, purchases, audit)
            .await?)
    }

    /// The customers and how many of their `table`'s rows are older than `before` (the
    /// retention run's look, up to `limit` customers).
    pub(crate) async fn expired_activity(
        &self,
        table: steward_store::ActivityTable,
        before: i64,
        limit: u32,
    ) -> ServiceResult<Vec<(CustomerId, i64)>> {
        Ok(self.activity.expired_activity(table, before, limit).await?)
    }

    /// Deletes customer `id`'s `table` rows older than `before`, with its audit entries (the
    /// operator's retention run, decided by it); how many.
    pub(crate) async fn dispose_activity(
        &self,
        customer: CustomerId,
        table: steward_store::ActivityTable,
        before: i64,
        audit: &[steward_store::AuditEntryRow],
    ) -> ServiceResult<u64> {
        Ok(self
            .activity
            .dispose_activity(customer, table, before, audit)
            .await?)
    }

    /// Up to `limit` customers with no activity since `before` (the retention run's look).
    pub(crate) async fn inactive_customers(
        &self,
        before: i64,
        limit: u32,
    ) -> ServiceResult<Vec<CustomerId>> {
        Ok(self.activity.inactive_customers(before, limit).await?)
    }

    /// Records an interaction, if the policy lets `actor` do so; its text is kept as written
    /// (see [`Records::add_interaction_for`] for a purpose's rule).
    pub async fn add_interaction(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
        i: &NewInteraction,
    ) -> ServiceResult<InteractionId> {
        self.record_interaction(actor, customer, i, PiiTypes::NONE)
            .await
    }

    /// Records an interaction whose text was screened, `found` the kinds found before a rule
    /// changed the text.
    pub(crate) async fn record_interaction(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
        i: &NewInteraction,
        found: PiiTypes,
    ) -> ServiceResult<InteractionId> {
        self.door()
            .authorize_actor(actor, Action::AddInteraction, Some(customer), false)
            .await?;
        let dk = self.keys().of(customer).await?;
        let id = InteractionId::new();
        self.activity
            .insert_interaction(
                &seal::seal_screened(&dk, customer, id, i, found)?,
                &[self.door().write_entry(
                    actor,
                    "add_interaction",
                    Some(customer),
                    &["communications"],
                )],
            )
            .await?;
        Ok(id)
    }

    /// A customer's interactions, undecided: for the service's own use after a decision.
    pub(crate) async fn list_interactions(
        &self,
        customer: CustomerId,
        after: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<Vec<Interaction>> {
        let dk = self.keys().of(customer).await?;
        let rows = self
            .activity
            .list_interactions(customer, after.map(|a| a.as_bytes().to_vec()), limit)
            .await?;
        rows.iter()
            .map(|r| seal::open_interaction(&dk, r))
            .collect()
    }

    /// A customer's purchases, undecided: for the service's own use after a decision.
    pub(crate) async fn list_purchases(
        &self,
        customer: CustomerId,
        after: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<Vec<Purchase>> {
        let dk = self.keys().of(customer).await?;
        let rows = self
            .activity
            .list_purchases(customer, after.map(|a| a.as_bytes().to_vec()), limit)
            .await?;
        rows.iter().map(|r| seal::open_purchase(&dk, r)).collect()
    }

    /// The customer's newest `limit` purchases (by id), opened, oldest of them first: what an
    /// abstraction of the purchase history is computed from.
    pub(crate) async fn newest_purchases(
        &self,
        customer: CustomerId,
        limit: u32,
    ) -> ServiceResult<Vec<Purchase>> {
        let dk = self.keys().of(customer).await?;
        let rows = self
            .activity
            .recent_purchases(customer, None, limit)
            .await?;
        rows.iter()
            .rev()
            .map(|r| seal::open_purchase(&dk, r))
            .collect()
    }

    /// Seals and stores interactions and purchases of known customers in one transaction: the
    /// operator's bulk load (demo data), decided once for the batch; the operator vouches that
    /// outlets and sellers exist.
    pub async fn add_activity(
        &self,
        operator: Operator,
        items: &[(CustomerId, Activity)],
    ) -> ServiceResult<()> {
        let actor = Actor::Operator(operator);
        for action in [Action::AddInteraction, Action::AddPurchase] {
            self.door()
                .authorize_actor(actor, action, None, false)
                .await?;
        }
        let (mut interactions, mut purchases) = (Vec::new(), Vec::new());
        let mut last: Option<(CustomerId, DataKey)> = None;
        for (cid, a) in items {
            if last.as_ref().is_none_or(|(id, _)| id != cid) {
                last = Some((*cid, self.keys().of(*cid).await?));
            }
            let Some((_, dk)) = &last else { continue };
            match a {
                Activity::Interaction(i) => {
                    interactions.push(seal::seal_interaction(dk, *cid, InteractionId::new(), i)?)
                }
                Activity::Purchase(p) => {
                    purchases.push(seal::seal_purchase(dk, *cid, PurchaseId::new(), p)?)
                }
            }
        }
        Ok(self
            .activity
            .insert_activity(
                &interactions,
                &purchases,
                &items
                    .iter()
                    .map(|(c, a)| {
                        let (action, field) = match a {
                            Activity::Interaction(_) => ("add_interaction", "communications"),
                            Activity::Purchase(_) => ("add_purchase", "purchases"),
                        };
                        self.door().write_entry(actor, action, Some(*c), &[field])
                    })
                    .collect::<Vec<_>>(),
            )
            .await?)
    }

    /// Decides a purchase `actor` records for `customer`, checks its outlet and seller, and
    /// seals it; [`Records::store_purchase`] stores it (the vault moves personalisation's basket
    /// around that).
    pub(crate) async fn prepare_purchase(
        &self,
        actor: Actor<'_>,
        customer: CustomerId,
        p: &NewPurchase,
    ) -> ServiceResult<PreparedPurchase> {
        self.door()
            .authorize_actor(actor, Action::AddPurchase, Some(customer), false)
            .await?;
        let dk = self.keys().of(customer).await?;
        self.directory()
            .check_outlet("outlet_id", Some(p.outlet_id))
            .await?;
        // Issue 15, finding 8: staff record sales at their own outlets (support agents and
        // service clients, which serve every outlet, excepted), credited to someone who works there.
        if let Actor::Principal(who) = actor
            && who.staff_id.is_some()
            && !who.roles.contains(&Role::SupportAgent)
            && !who.outlets.contains(&p.outlet_id)
        {
            return Err(ServiceError::Forbidden {
                field: "outlet_id",
                detail: "a purchase is recorded only at one of the caller's own outlets".into(),
            });
        }
        if let Some(s) = p.seller_id {
            let works_there = self
                .directory()
                .staff_row(s)
                .await?
                .is_some_and(|row| row.outlet_ids.contains(&p.outlet_id));
            if !works_there {
                return Err(ValidationError::new(
                    "seller_id",
                    "no staff member of that id works at the purchase's outlet",
                )
                .into());
            }
        }
        let id = PurchaseId::new();
        let row = seal::seal_purchase(&dk, customer, id, p)?;
        let entry = self
            .door()
            .write_entry(actor, "add_purchase", Some(customer), &["purchases"]);
        Ok(PreparedPurchase { id, row, entry })
    }

    /// Saves a purchase [`Records::prepare_purchase`] decided, with its audit entry.
    pub(crate) async fn store_purchase(&self, prepared: &PreparedPurchase) -> ServiceResult<()> {
        Ok(self
            .activity
            .insert_purchase(&prepared.row, std::slice::from_ref(&prepared.entry))
            .await?)
    }
}

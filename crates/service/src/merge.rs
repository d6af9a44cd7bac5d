//! Merging a duplicate into the customer who stays (issue 17, point 3): the duplicate's
//! purchases and interactions move to the survivor, re-sealed under the survivor's data key, with
//! its consent withdrawals, in one transaction; the duplicate is then crypto-shredded like any
//! erasure, which leaves its disposal record. The survivor's profile stays as it is.
//!
//! Only a real duplicate is merged: the two must share an e-mail address or a phone number
//! (through the blind indexes), neither may be restricted (the policy forbids it) nor the
//! duplicate under legal hold. Consent grants given under the duplicate are not carried over (a
//! withdrawal made before could otherwise be overturned); the customer is asked again. No outlet
//! link moves, so a merge never widens who reads the survivor.

use steward_domain::{CustomerId, NewInteraction, NewPurchase, ValidationError};
use steward_policy::Action;
use steward_store::{CustomerStanding, InteractionRow, PurchaseRow};

use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, Vault, seal};

/// The most activity rows a merge moves: the move is one transaction, so its size is bounded.
pub const MERGE_MAX_ROWS: usize = 200_000;

/// The page size for reading the duplicate's activity.
const PAGE: u32 = 1_000;

impl Vault {
    /// Other customers who share customer `id`'s e-mail address or phone number (through the
    /// blind indexes) and whom the caller may merge into `id`, each read as the policy allows
    /// (decided and recorded): what the console offers to merge. Empty for a caller who may not
    /// merge.
    pub async fn possible_duplicates(
        &self,
        access: &crate::Access<'_>,
        id: CustomerId,
    ) -> ServiceResult<Vec<steward_domain::CustomerView>> {
        let actor = Actor::Principal(access.principal);
        // Nothing is read for a caller who may not merge here, or who would see nobody under
        // this access (no refusals recorded, no bulk budget spent on the way).
        if self
            .door()
            .authorize_actor(actor, Action::MergeCustomers, Some(id), false)
            .await
            .is_err()
            || self.records().check_reads_anyone(access).is_err()
        {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for other in self
            .records()
            .sharing_lookups(id, &["email", "phone"])
            .await?
        {
            if self
                .door()
                .authorize_actor(actor, Action::MergeCustomers, Some(other), false)
                .await
                .is_err()
            {
                continue;
            }
            match self.records().read_customer(access, other).await {
                Ok(v) => out.push(v),
                Err(ServiceError::Forbidden { .. } | ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Merges customer `other` into `survivor`, if the policy lets `actor` merge both: their
    /// activity and consents move, `other` is erased. Returns the survivor's id.
    pub async fn merge_customers(
        &self,
        actor: Actor<'_>,
        survivor: CustomerId,
        other: CustomerId,
    ) -> ServiceResult<CustomerId> {
        if survivor == other {
            return Err(ValidationError::new(
                "other_id",
                "a customer cannot be merged into itself",
            )
            .into());
        }
        match self.erasures().standing(other).await? {
            CustomerStanding::Absent => {
                return Err(ValidationError::new("other_id", "no such customer").into());
            }
            CustomerStanding::Held(r) => return Err(ServiceError::LegalHold(r)),
            CustomerStanding::Present => {}
        }
        // Decided for both (the policy forbids merging a restricted customer, either side).
        self.door()
            .authorize_actor(actor, Action::MergeCustomers, Some(survivor), false)
            .await?;
        self.door()
            .authorize_actor(actor, Action::MergeCustomers, Some(other), false)
            .await?;
        if !self
            .records()
            .sharing_lookups(survivor, &["email", "phone"])
            .await?
            .contains(&other)
        {
            return Err(ValidationError::new(
                "other_id",
                "not a duplicate of this customer: they share no e-mail address or phone number",
            )
            .into());
        }
        let to = self.keys().of(survivor).await?;

        let mut interactions: Vec<InteractionRow> = Vec::new();
        let mut after = None;
        loop {
            let page = self.records().list_interactions(other, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.0);
            for i in &page {
                let new = NewInteraction {
                    channel: i.channel,
                    text: i.text.clone(),
                    source: i.source.clone(),
                    occurred_at: i.occurred_at,
                };
                interactions.push(seal::seal_screened(&to, survivor, i.id, &new, i.pii_types)?);
            }
            too_many(interactions.len())?;
        }
        let mut purchases: Vec<PurchaseRow> = Vec::new();
        let mut after = None;
        loop {
            let page = self.records().list_purchases(other, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.0);
            for p in &page {
                let new = NewPurchase {
                    item: p.item.clone(),
                    category: p.category.clone(),
                    outlet_id: p.outlet_id,
                    seller_id: p.seller_id,
                    amount_minor: p.amount_minor,
                    currency: p.currency.clone(),
                    occurred_at: p.occurred_at,
                };
                purchases.push(seal::seal_purchase(&to, survivor, p.id, &new)?);
            }
            too_many(interactions.len() + purchases.len())?;
        }
        let fields = ["purchases", "communications", "consent_withdrawals"];
        let audit = [
            self.door()
                .write_entry(actor, "merge", Some(survivor), &fields),
            self.door()
                .write_entry(actor, "merged_away", Some(other), &fields),
        ];
        if !self
            .records()
            .move_activity((other, survivor), &interactions, &purchases, &audit)
            .await?
        {
            return Err(ServiceError::WrongState(
                "the duplicate changed during the merge; try again",
            ));
        }
        // Both records changed (activity and withdrawals moved): their baskets follow now,
        // whatever becomes of the erasure below.
        self.personalisation().refresh_basket(other).await;
        self.personalisation().refresh_basket(survivor).await;
        // The disposal record says a merge, not into whom: it links no erased id to a living one.
        self.erase_authorized(actor, other, "merged into another customer")
            .await?;
        // The kept record now holds both histories (and may have lost a consent): its basket
        // follows; the erased one's left with the erasure.
        self.personalisation().refresh_basket(survivor).await;
        Ok(survivor)
    }
}

fn too_many(rows: usize) -> ServiceResult<()> {
    if rows > MERGE_MAX_ROWS {
        return Err(ValidationError::new(
            "other_id",
            "this customer has too much activity to merge in one step",
        )
        .into());
    }
    Ok(())
}

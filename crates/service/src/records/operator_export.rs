//! The operator's export of everything (`steward export`): every customer is decided by the
//! policy (`export_customer`, for role `operator`) and recorded in the audit log, one entry per
//! customer committed before their data leaves, so each customer's access log shows the export.

use serde::Serialize;
use steward_domain::{Customer, CustomerId, Interaction, Purchase};
use steward_policy::Action;

use crate::Actor;
use crate::auth::Operator;
use crate::error::{ServiceError, ServiceResult};
use crate::records::Records;

/// One customer's whole record, in clear, as the operator's export holds it.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedCustomer {
    /// The profile.
    pub customer: Customer,
    /// All interactions, oldest first.
    pub interactions: Vec<Interaction>,
    /// All purchases, oldest first.
    pub purchases: Vec<Purchase>,
}

/// A page of the operator's export.
#[derive(Debug, Clone)]
pub struct ExportPage {
    /// The customers the policy let the operator export.
    pub customers: Vec<ExportedCustomer>,
    /// How many customers of the page the policy refused (left out).
    pub refused: u64,
    /// Pass back as `after` for the next page; `None` after the last.
    pub next: Option<CustomerId>,
}

/// Interactions or purchases read a page at a time.
const ACTIVITY_PAGE: u32 = 500;

impl Records {
    /// The customers after `after` (in id order, at most `limit`), each with all its activity, as
    /// the policy lets the operator export them. The page's audit entries (action `export`, one
    /// per customer) are committed before anything is opened.
    pub async fn export_page(
        &self,
        operator: Operator,
        after: Option<CustomerId>,
        limit: u32,
    ) -> ServiceResult<ExportPage> {
        let (ids, next) = self.customer_id_page(after, limit).await?;
        let actor = Actor::Operator(operator);
        let mut allowed = Vec::with_capacity(ids.len());
        let mut refused = 0;
        for id in ids {
            match self
                .door()
                .authorize_actor(actor, Action::ExportCustomer, Some(id), false)
                .await
            {
                Ok(()) => allowed.push(id),
                // Erased since the page was listed: nobody to export.
                Err(ServiceError::NotFound(_)) => {}
                Err(ServiceError::Forbidden { .. }) => refused += 1,
                Err(e) => return Err(e),
            }
        }
        self.record_exports(operator, &allowed).await?;
        let mut customers = Vec::with_capacity(allowed.len());
        for id in allowed {
            match self.open_whole(id).await {
                Ok(c) => customers.push(c),
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ExportPage {
            customers,
            refused,
            next,
        })
    }

    /// One customer's whole record, if the policy lets the operator export it; recorded like
    /// every customer of [`Records::export_page`].
    pub async fn export_customer(
        &self,
        operator: Operator,
        id: CustomerId,
    ) -> ServiceResult<ExportedCustomer> {
        self.door()
            .authorize_actor(
                Actor::Operator(operator),
                Action::ExportCustomer,
                Some(id),
                false,
            )
            .await?;
        self.record_exports(operator, &[id]).await?;
        self.open_whole(id).await
    }

    /// The audit entries of exporting `ids`, committed in one transaction.
    async fn record_exports(&self, operator: Operator, ids: &[CustomerId]) -> ServiceResult<()> {
        // INVARIANT: recorded (and committed) before any of these customers is opened.
        let entries: Vec<_> = ids
            .iter()
            .map(|id| {
                self.door().write_entry_marked(
                    Actor::Operator(operator),
                    "export",
                    Some(*id),
                    &crate::vault::whole_record(),
                    Default::default(),
                    "exported",
                )
            })
            .collect();
        self.door().record(&entries).await
    }

    /// Opens a customer's profile and all their activity (after the decision and its entry).
    async fn open_whole(&self, id: CustomerId) -> ServiceResult<ExportedCustomer> {
        let customer = self.get_customer(id).await?;
        let interactions = all_pages(
            |a| self.list_interactions(id, a, ACTIVITY_PAGE),
            |i: &Interaction| i.id.0,
        )
        .await?;
        let purchases = all_pages(
            |a| self.list_purchases(id, a, ACTIVITY_PAGE),
            |p: &Purchase| p.id.0,
        )
        .await?;
        Ok(ExportedCustomer {
            customer,
            interactions,
            purchases,
        })
    }
}

/// Every page of a customer's interactions or purchases.
async fn all_pages<T>(
    mut fetch: impl AsyncFnMut(Option<uuid::Uuid>) -> ServiceResult<Vec<T>>,
    id: impl Fn(&T) -> uuid::Uuid,
) -> ServiceResult<Vec<T>> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after).await?;
        let full = page.len() == ACTIVITY_PAGE as usize;
        after = page.last().map(&id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

//! Personalisation that asks first (issue 20): recommendations for a customer from an
//! item-to-item co-purchase model (`steward_domain::recommend`) built from the purchases of the
//! customers who consented to `personalisation`, as pseudonymous baskets — the model holds item
//! pairs and counts, never a customer id or a key. Purchases in a category the DPO marked as a
//! special category are neither input nor output (left out of the baskets here, and refused by
//! the policy's `no-special-categories-in-personalisation` when a recommendation is decided).
//!
//! The model changes with the people in it: a grant adds the customer's basket, a withdrawal or
//! an erasure removes exactly it, a purchase by a consenting customer moves it; every change
//! happens under the model's write lock as part of the call that caused it, so a withdrawal has
//! left the model when the call returns. Marking a category rebuilds the model. Recommendations
//! are computed on each request (nothing is cached that could outlive a withdrawal).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use steward_domain::recommend::{Basket, CoPurchase, Item, Owned, Recommendation};
use steward_domain::{CustomerId, DataCategory, LawfulBasis, Purpose, Timestamp, ValidationError};
use steward_policy::{ReadRequest, Subject};
use steward_store::SegmentScan;

use crate::error::{ServiceError, ServiceResult};
use crate::vault::About;
use crate::{Access, Actor, Operator, Principal, Vault};

/// The purpose whose consent puts a customer's purchases into the model.
pub const PURPOSE: &str = "personalisation";

/// Fewest distinct customers an item must have been bought by to appear (`serve
/// --personalisation-k`); never below 5.
pub const MIN_K: u32 = 5;

/// Most purchases of one customer read into their basket or their recommendations.
const OWN_PURCHASES: u32 = 10_000;

/// Customers read per page while building the model.
const BUILD_PAGE: u32 = 2_000;

/// The model and what it is built with.
pub(crate) struct Recommender {
    /// `None` until built.
    model: tokio::sync::RwLock<Option<CoPurchase>>,
    k: AtomicU32,
    /// Purchase categories marked sensitive, with the special category each reveals.
    marked: std::sync::RwLock<HashMap<String, DataCategory>>,
}

impl Default for Recommender {
    fn default() -> Self {
        Self {
            model: tokio::sync::RwLock::new(None),
            k: AtomicU32::new(MIN_K),
            marked: std::sync::RwLock::new(HashMap::new()),
        }
    }
}

/// A marked purchase category, as the DPO sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct MarkedCategory {
    /// The purchase category, as purchases record it.
    pub category: String,
    /// The special category of data it reveals (fideslang).
    pub data_category: DataCategory,
    /// When it was marked.
    pub marked_at: Timestamp,
}

/// What a build read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSize {
    /// Consenting customers whose baskets are in the model.
    pub customers: u64,
    /// Items bought by at least k distinct customers.
    pub items: usize,
}

impl Vault {
    /// Sets k (the operator's `serve --personalisation-k`): at least [`MIN_K`].
    pub fn set_personalisation_k(&self, _operator: Operator, k: u32) -> Result<(), &'static str> {
        if k < MIN_K {
            return Err("k must be at least 5");
        }
        self.inner.recommender.k.store(k, Ordering::Relaxed);
        Ok(())
    }

    /// Builds the model from every consenting, unrestricted customer's purchases (the
    /// operator's `serve`, before it answers; again when a category is marked). Holds the
    /// model's write lock throughout, so no grant or withdrawal is lost to a build.
    pub async fn build_recommender(&self, _operator: Operator) -> ServiceResult<ModelSize> {
        let mut slot = self.inner.recommender.model.write().await;
        self.reload_marked().await?;
        let (model, size) = self.build_model().await?;
        *slot = Some(model);
        Ok(size)
    }

    async fn reload_marked(&self) -> ServiceResult<()> {
        let rows = self
            .inner
            .stores
            .personalisation
            .marked_categories()
            .await?;
        let marked: HashMap<String, DataCategory> = rows
            .into_iter()
            .filter_map(|(c, d, _)| Some((c, DataCategory::parse(&d)?)))
            .collect();
        if let Ok(mut m) = self.inner.recommender.marked.write() {
            *m = marked;
        }
        Ok(())
    }

    fn is_marked(&self, category: &str) -> bool {
        self.inner
            .recommender
            .marked
            .read()
            .map(|m| m.contains_key(category))
            // Fail closed: a poisoned lock marks everything.
            .unwrap_or(true)
    }

    async fn build_model(&self) -> ServiceResult<(CoPurchase, ModelSize)> {
        let scan = SegmentScan {
            purchases: true,
            consents: true,
            items: true,
            ..Default::default()
        };
        let store = &self.inner.stores.segments;
        let mut model = CoPurchase::default();
        let mut customers = 0u64;
        let mut after = None;
        loop {
            let page = store.segment_page(after, BUILD_PAGE, &scan).await?;
            let Some(last) = page.customers.last() else {
                break;
            };
            after = Some(last.id);
            // The last event per customer decides (events are in ledger order).
            let mut consent: HashMap<CustomerId, bool> = HashMap::new();
            for (c, purpose, grant) in &page.consents {
                if purpose == PURPOSE {
                    consent.insert(*c, *grant);
                }
            }
            let keys: HashMap<CustomerId, &steward_store::StoredKey> =
                page.keys.iter().map(|(c, k)| (*c, k)).collect();
            let mut items: HashMap<CustomerId, Vec<Item>> = HashMap::new();
            for p in &page.purchases {
                if consent.get(&p.customer_id) != Some(&true) || self.is_marked(&p.category) {
                    continue;
                }
                let (Some(sealed), Some(key)) = (&p.item, keys.get(&p.customer_id)) else {
                    continue;
                };
                let dk = self.data_key(p.customer_id, key)?;
                items.entry(p.customer_id).or_default().push(Item {
                    name: crate::seal::open_item(&dk, p.customer_id, &p.id, sealed)?,
                    category: p.category.clone(),
                });
            }
            for c in page.customers.iter().filter(|c| !c.restricted) {
                if let Some(bought) = items.get(&c.id) {
                    let basket = Basket::of(bought, &|cat| self.is_marked(cat));
                    if !basket.is_empty() {
                        model.add(&basket);
                        customers += 1;
                    }
                }
            }
        }
        let size = ModelSize {
            customers,
            items: model.visible_items(self.inner.recommender.k.load(Ordering::Relaxed)),
        };
        Ok((model, size))
    }

    /// One customer's purchases as personalisation may read them: (item, time), marked
    /// categories left out.
    async fn owned(&self, customer: CustomerId) -> ServiceResult<Vec<Owned>> {
        Ok(self
            .list_purchases(customer, None, OWN_PURCHASES)
            .await?
            .into_iter()
            .filter(|p| !self.is_marked(&p.category))
            .map(|p| Owned {
                item: Item {
                    name: p.item,
                    category: p.category,
                },
                occurred_at: p.occurred_at,
            })
            .collect())
    }

    /// Whether the model is built and the customer's purchases are in it.
    pub(crate) async fn personalisation_contributor(
        &self,
        customer: CustomerId,
    ) -> ServiceResult<bool> {
        if self.inner.recommender.model.read().await.is_none() {
            return Ok(false);
        }
        self.contributes(customer).await
    }

    /// Whether the customer's purchases are in the model: consent to [`PURPOSE`] active and
    /// processing not restricted.
    async fn contributes(&self, customer: CustomerId) -> ServiceResult<bool> {
        let Some(facts) = self.inner.stores.customers.access_facts(customer).await? else {
            return Ok(false);
        };
        Ok(!facts.restricted && self.consent_active(customer, PURPOSE).await?)
    }

    /// Runs `change` (which may change whether and what the customer contributes) with the
    /// model locked, moving the customer's basket from what it was to what it is after. Used by
    /// consent changes, purchases, restriction and erasure: when the call returns, the model
    /// already reflects it.
    pub(crate) async fn with_basket_moved<T>(
        &self,
        customer: CustomerId,
        change: impl AsyncFnOnce() -> ServiceResult<T>,
    ) -> ServiceResult<T> {
        let mut slot = self.inner.recommender.model.write().await;
        let Some(model) = slot.as_mut() else {
            // Not built (a command-line tool): nothing to keep in step.
            drop(slot);
            return change().await;
        };
        let before = if self.contributes(customer).await? {
            Basket::of(&self.items_of(customer).await?, &|c| self.is_marked(c))
        } else {
            Basket::default()
        };
        let out = change().await?;
        let after = if self.contributes(customer).await.unwrap_or(false) {
            Basket::of(&self.items_of(customer).await?, &|c| self.is_marked(c))
        } else {
            Basket::default()
        };
        if before != after {
            model.remove(&before);
            model.add(&after);
        }
        Ok(out)
    }

    async fn items_of(&self, customer: CustomerId) -> ServiceResult<Vec<Item>> {
        Ok(self
            .owned(customer)
            .await?
            .into_iter()
            .map(|o| o.item)
            .collect())
    }

    /// Up to `n` recommendations for customer `id`, each with the customer's own purchases
    /// behind it; decided (`personalise`) and recorded like any read. Without the customer's
    /// active consent to the purpose, refused naming it.
    pub async fn recommendations(
        &self,
        access: &Access<'_>,
        id: CustomerId,
        n: usize,
    ) -> ServiceResult<Vec<Recommendation>> {
        self.check_declarable(access)?;
        let facts = self.access_facts(id).await?;
        self.count_read(&access.flagged(), id).await?;
        let purpose = access.purpose;
        let consented = purpose.lawful_basis == LawfulBasis::Consent
            && self.consent_active(id, &purpose.key).await?;
        let now = Timestamp::now();
        let req = personalise_request(
            self,
            access.principal,
            (id, &facts),
            purpose,
            consented,
            now,
        );
        let allowed = self
            .inner
            .policy
            .decide_personalise(&req, DataCategory::PurchaseHistory);
        let leaf = |outcome: &str| {
            crate::vault::leaf(
                self.actor_parts(Actor::Principal(access.principal)),
                "recommend",
                Some(id),
                &["purchase_history"],
                About {
                    subject: None,
                    purpose: Some(&purpose.key),
                },
                "used",
                outcome,
            )
        };
        if !allowed {
            self.inner.audit.append(&leaf("deny")).await?;
            if purpose.lawful_basis == LawfulBasis::Consent && !consented {
                return Err(ServiceError::Forbidden {
                    field: "purpose",
                    detail: format!(
                        "purpose {} needs the customer's consent, which is not active",
                        purpose.key
                    ),
                });
            }
            return Err(ServiceError::Forbidden {
                field: "purpose",
                detail: format!(
                    "no policy lets this caller personalise for this customer under purpose {}",
                    purpose.key
                ),
            });
        }
        self.inner.audit.append(&leaf("allow")).await?;
        let own = self.owned(id).await?;
        // The policy decides each marked category too: a special category is never used.
        let marked = self
            .inner
            .recommender
            .marked
            .read()
            .map(|m| m.clone())
            .unwrap_or_default();
        let refused = |category: &str| match marked.get(category) {
            Some(special) => !self.inner.policy.decide_personalise(&req, *special),
            None => false,
        };
        let k = self.inner.recommender.k.load(Ordering::Relaxed);
        let slot = self.inner.recommender.model.read().await;
        let Some(model) = slot.as_ref() else {
            return Err(ServiceError::WrongState(
                "recommendations are not available yet (the model is being built)",
            ));
        };
        Ok(model.recommend(&own, k, n, &|c| refused(c) || marked.contains_key(c)))
    }

    /// Marks purchase `category` as revealing the special category `data_category` (the DPO):
    /// its purchases leave the model at once (it is rebuilt) and never drive personalisation.
    pub async fn mark_purchase_category(
        &self,
        principal: &Principal,
        category: &str,
        data_category: &str,
    ) -> ServiceResult<MarkedCategory> {
        self.authorize(principal, steward_policy::Action::ManagePurposes, None)
            .await?;
        let category = steward_domain::normalize::short_text("category", category)?.to_lowercase();
        let special = DataCategory::parse(data_category)
            .filter(|d| DataCategory::SPECIAL.contains(d))
            .ok_or_else(|| {
                ValidationError::new(
                    "data_category",
                    "must be a special category of data: user.health_and_medical, user.demographic.religious_belief, user.demographic.political_opinion, user.demographic.race_ethnicity or user.demographic.sexual_orientation",
                )
            })?;
        if !self
            .inner
            .stores
            .personalisation
            .purchase_category_used(&category)
            .await?
        {
            return Err(ServiceError::NotFound("purchase category"));
        }
        let now = Timestamp::now();
        let entry = self.write_entry_for(
            Actor::Principal(principal),
            "mark_purchase_category",
            None,
            &[],
            About {
                subject: Some(&category),
                purpose: None,
            },
        );
        // Rebuilt under the write lock: no recommendation is answered from the old model.
        let mut slot = self.inner.recommender.model.write().await;
        self.inner
            .stores
            .personalisation
            .mark_category(&category, special.as_str(), now.millis(), &[entry])
            .await?;
        self.reload_marked().await?;
        if slot.is_some() {
            *slot = Some(self.build_model().await?.0);
        }
        Ok(MarkedCategory {
            category,
            data_category: special,
            marked_at: now,
        })
    }

    /// The marked purchase categories (the DPO).
    pub async fn marked_purchase_categories(
        &self,
        principal: &Principal,
    ) -> ServiceResult<Vec<MarkedCategory>> {
        self.authorize(principal, steward_policy::Action::ManagePurposes, None)
            .await?;
        Ok(self
            .inner
            .stores
            .personalisation
            .marked_categories()
            .await?
            .into_iter()
            .filter_map(|(category, d, at)| {
                Some(MarkedCategory {
                    category,
                    data_category: DataCategory::parse(&d)?,
                    marked_at: Timestamp(at),
                })
            })
            .collect())
    }
}

/// The request `personalise` is decided on: never with a reason or break-glass.
fn personalise_request<'a>(
    vault: &Vault,
    principal: &'a Principal,
    (id, facts): (CustomerId, &'a steward_store::AccessFacts),
    purpose: &'a Purpose,
    consented: bool,
    now: Timestamp,
) -> ReadRequest<'a> {
    ReadRequest {
        asker: principal.asker(),
        subject: Subject {
            id,
            outlets: &facts.outlets,
            restricted: facts.restricted,
        },
        purpose,
        consented,
        has_reason: false,
        reason_length: 0,
        break_glass: false,
        acknowledged: vault.inner.notices.acknowledged(principal, now),
        now,
    }
}

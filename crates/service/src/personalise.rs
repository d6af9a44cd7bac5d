//! Personalisation that asks first (issue 20): recommendations for a customer from an
//! item-to-item co-purchase model (`steward_domain::recommend`) built from the purchases of the
//! customers who consented to `personalisation`, as pseudonymous baskets — the model holds item
//! pairs and counts, never a customer id or a key. Purchases in a category the DPO marked as a
//! special category are neither input nor output (left out of the baskets here, and refused by
//! the policy's `no-special-categories-in-personalisation` when a recommendation is decided).
//!
//! The model changes with the people in it: after a grant, a withdrawal, a restriction, an
//! erasure, a merge, a retention disposal or a consenting customer's purchase, the call that
//! made the change refreshes that customer's basket before it returns — removing exactly the
//! basket it added before (kept beside the counts under a per-process keyed pseudonym, never
//! the customer id, so removal cannot drift) and adding the one the database holds now. A
//! refresh never fails the change that caused it: an error is logged and the next rebuild
//! (every few minutes, and when a category is marked) heals it. Builds read outside the lock
//! and swap in, replaying the customers refreshed meanwhile. Recommendations are computed on
//! each request (nothing is cached that could outlive a withdrawal).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use steward_domain::recommend::{Basket, CoPurchase, Item, Owned, Recommendation};
use steward_domain::{CustomerId, DataCategory, LawfulBasis, Timestamp, ValidationError};
use steward_policy::ReadRequest;
use steward_store::SegmentScan;

use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::records::Records;
use crate::{Access, Actor, Operator, Principal};

/// The purpose whose consent puts a customer's purchases into the model.
pub const PURPOSE: &str = "personalisation";

/// Fewest distinct customers an item must have been bought by to appear (`serve
/// --personalisation-k`); never below 5.
pub const MIN_K: u32 = 5;

/// Most purchases of one customer read into their basket or their recommendations.
const OWN_PURCHASES: u32 = 10_000;

/// Customers read per page while building the model.
const BUILD_PAGE: u32 = 2_000;

/// Most distinct items of one basket (its most recent): pairs grow with the square.
const BASKET_ITEMS: usize = 200;

/// The counts, and the exact basket each contributor added, under a pseudonym.
struct State {
    model: CoPurchase,
    baskets: HashMap<[u8; 16], Basket>,
}

/// The model and what it is built with.
pub(crate) struct Recommender {
    /// `None` until built.
    state: tokio::sync::RwLock<Option<State>>,
    /// One build at a time.
    building: tokio::sync::Mutex<()>,
    /// While a build reads, the customers whose state changed meanwhile (replayed on the new
    /// model before it is swapped in), whether or not a model exists yet.
    changed_during_build: std::sync::Mutex<Option<HashSet<CustomerId>>>,
    k: AtomicU32,
    /// Keys the pseudonyms of contributors: random per process, never stored, so a pseudonym
    /// links to no id outside this process's memory.
    pseudonyms: steward_crypto::BlindIndexKey,
}

impl Default for Recommender {
    fn default() -> Self {
        let mut raw = zeroize::Zeroizing::new([0u8; 32]);
        // A failing random source leaves the key zero: pseudonyms are then only unkeyed
        // hashes of ids, still held in memory alone.
        let _ = steward_crypto::random_bytes(raw.as_mut_slice());
        Self {
            state: tokio::sync::RwLock::new(None),
            building: tokio::sync::Mutex::new(()),
            changed_during_build: std::sync::Mutex::new(None),
            k: AtomicU32::new(MIN_K),
            pseudonyms: steward_crypto::BlindIndexKey::from_bytes(raw),
        }
    }
}

impl Recommender {
    fn pseudonym(&self, customer: CustomerId) -> [u8; 16] {
        self.pseudonyms
            .mac("personalisation-contributor", &customer.to_string())
    }
}

/// The purchase categories the DPO marked as revealing a special category of data, with the
/// category each reveals: left out of personalisation's model, of segments and of analytics.
/// Loaded by personalisation, shared with the others (one instance per vault).
///
/// A mark whose special category this version cannot read (written by a newer one, in a rolling
/// upgrade) still marks its purchase category: `None`, refused to everyone.
#[derive(Default)]
pub(crate) struct Marked(std::sync::RwLock<HashMap<String, Option<DataCategory>>>);

impl Marked {
    /// Whether `category` is marked. Fails closed: a lock poisoned by a panic marks everything.
    pub(crate) fn is_marked(&self, category: &str) -> bool {
        self.0
            .read()
            .map(|m| m.contains_key(category))
            .unwrap_or(true)
    }

    /// All of them, or `None` if the lock was poisoned (the caller refuses).
    fn snapshot(&self) -> Option<HashMap<String, Option<DataCategory>>> {
        self.0.read().ok().map(|m| m.clone())
    }

    fn set(&self, marked: HashMap<String, Option<DataCategory>>) {
        if let Ok(mut m) = self.0.write() {
            *m = marked;
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

/// Personalisation's model and the recommendations it gives: the customers' consent to
/// [`PURPOSE`] decides who is in it.
pub struct Personalisation {
    door: Arc<crate::door::Door>,
    store: Arc<dyn steward_store::PersonalisationStore>,
    /// The whole customer base, read page by page through segments' scan to build the model.
    segments: crate::segments::Segments,
    /// The categories left out (this service loads them; segments and analytics read them).
    marked: Arc<Marked>,
    records: Arc<Records>,
    consents: Arc<crate::consent::Consents>,
    keys: Arc<crate::customer_keys::CustomerKeys>,
    purposes: Arc<crate::purposes::Purposes>,
    announcer: Arc<crate::cluster::Announcer>,
    recommender: Recommender,
}

/// What personalisation is wired to.
pub(crate) struct PersonalisationParts {
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) store: Arc<dyn steward_store::PersonalisationStore>,
    pub(crate) segments: crate::segments::Segments,
    pub(crate) marked: Arc<Marked>,
    pub(crate) records: Arc<Records>,
    pub(crate) consents: Arc<crate::consent::Consents>,
    pub(crate) keys: Arc<crate::customer_keys::CustomerKeys>,
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    pub(crate) announcer: Arc<crate::cluster::Announcer>,
}

impl Personalisation {
    /// An empty model (built by [`Personalisation::build_recommender`]).
    pub(crate) fn new(p: PersonalisationParts) -> Self {
        Personalisation {
            door: p.door,
            store: p.store,
            segments: p.segments,
            marked: p.marked,
            records: p.records,
            consents: p.consents,
            keys: p.keys,
            purposes: p.purposes,
            announcer: p.announcer,
            recommender: Recommender::default(),
        }
    }

    fn door(&self) -> &crate::door::Door {
        &self.door
    }

    fn keys(&self) -> &crate::customer_keys::CustomerKeys {
        &self.keys
    }

    fn consents(&self) -> &crate::consent::Consents {
        &self.consents
    }

    fn purposes(&self) -> &crate::purposes::Purposes {
        &self.purposes
    }
}

impl Personalisation {
    /// Sets k (the operator's `serve --personalisation-k`): at least [`MIN_K`].
    pub fn set_personalisation_k(&self, _operator: Operator, k: u32) -> Result<(), &'static str> {
        if k < MIN_K {
            return Err("k must be at least 5");
        }
        self.recommender.k.store(k, Ordering::Relaxed);
        Ok(())
    }

    /// Builds the model from every consenting, unrestricted customer's purchases (the
    /// operator's `serve`, before it answers; again when a category is marked). Holds the
    /// model's write lock throughout, so no grant or withdrawal is lost to a build.
    pub async fn build_recommender(&self, _operator: Operator) -> ServiceResult<ModelSize> {
        self.rebuild().await
    }

    /// Rebuilds every `every` (the operator's `serve`): heals what another process changed
    /// (an import, `steward erase`, another server) and any refresh that failed.
    pub fn rebuild_recommender_every(
        self: &Arc<Self>,
        _operator: Operator,
        every: std::time::Duration,
    ) {
        let vault = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = vault.rebuild().await {
                    tracing::warn!(error = %e, "rebuilding the personalisation model failed; the old one stays");
                }
            }
        });
    }

    /// Reads every basket outside the lock, then swaps the new model in and replays the
    /// customers refreshed while it read.
    async fn rebuild(&self) -> ServiceResult<ModelSize> {
        let rec = &self.recommender;
        let _one = rec.building.lock().await;
        self.reload_marked().await?;
        if let Ok(mut during) = rec.changed_during_build.lock() {
            *during = Some(HashSet::new());
        }
        let built = self.build_model().await;
        let mut slot = rec.state.write().await;
        // Taken under the write lock: a change recorded after this refreshes the swapped-in
        // model itself.
        let replay = rec
            .changed_during_build
            .lock()
            .ok()
            .and_then(|mut d| d.take())
            .unwrap_or_default();
        let (model, baskets, size) = built?;
        let mut state = State { model, baskets };
        for customer in replay {
            if let Err(e) = self.refresh_in(&mut state, customer).await {
                forget(&mut state, rec.pseudonym(customer));
                tracing::warn!(error = %e, "a customer's basket could not be refreshed after a rebuild; removed");
            }
        }
        *slot = Some(state);
        Ok(size)
    }

    pub(crate) async fn reload_marked(&self) -> ServiceResult<()> {
        let rows = self.store.marked_categories().await?;
        // Fail closed: a special category this version does not know leaves the purchase
        // category marked (it was dropped, and so unmarked, before).
        // Warned once, not at every reload (the registry is refreshed every few seconds).
        let before = self.marked.snapshot().unwrap_or_default();
        let marked: HashMap<String, Option<DataCategory>> = rows
            .into_iter()
            .map(|(c, d, _)| {
                let special = DataCategory::parse(&d);
                if special.is_none() && !matches!(before.get(&c), Some(None)) {
                    tracing::warn!(
                        purchase_category = %c,
                        data_category = %d,
                        "a marked purchase category names a special category this version does not know; it stays marked and is refused to everyone"
                    );
                }
                (c, special)
            })
            .collect();
        self.marked.set(marked);
        Ok(())
    }

    fn is_marked(&self, category: &str) -> bool {
        self.marked.is_marked(category)
    }

    async fn build_model(
        &self,
    ) -> ServiceResult<(CoPurchase, HashMap<[u8; 16], Basket>, ModelSize)> {
        let scan = SegmentScan {
            purchases: true,
            consents: true,
            items: true,
            ..Default::default()
        };
        let mut model = CoPurchase::default();
        let mut baskets = HashMap::new();
        let mut customers = 0u64;
        let mut after = None;
        loop {
            let page = self.segments.scan_page(after, BUILD_PAGE, &scan).await?;
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
            // Purchases come in customer order: each customer's key is unwrapped once.
            let mut open: Option<(CustomerId, steward_crypto::DataKey)> = None;
            for p in &page.purchases {
                if consent.get(&p.customer_id) != Some(&true) || self.is_marked(&p.category) {
                    continue;
                }
                let (Some(sealed), Some(key)) = (&p.item, keys.get(&p.customer_id)) else {
                    continue;
                };
                if open.as_ref().is_none_or(|(c, _)| *c != p.customer_id) {
                    open = Some((p.customer_id, self.keys().open(p.customer_id, key)?));
                }
                let Some((_, dk)) = &open else {
                    continue;
                };
                items.entry(p.customer_id).or_default().push(Item {
                    name: crate::seal::open_item(dk, p.customer_id, &p.id, sealed)?,
                    category: p.category.clone(),
                });
            }
            for c in page.customers.iter().filter(|c| !c.restricted) {
                if let Some(bought) = items.get(&c.id) {
                    let basket = self.basket(bought);
                    if !basket.is_empty() {
                        model.add(&basket);
                        baskets.insert(self.recommender.pseudonym(c.id), basket);
                        customers += 1;
                    }
                }
            }
        }
        let size = ModelSize {
            customers,
            items: model.visible_items(self.recommender.k.load(Ordering::Relaxed)),
        };
        Ok((model, baskets, size))
    }

    /// A basket of `items` (in purchase order): the most recent distinct ones, marked
    /// categories left out.
    fn basket(&self, items: &[Item]) -> Basket {
        let mut recent: Vec<&Item> = Vec::new();
        for i in items.iter().rev() {
            if recent.len() == BASKET_ITEMS {
                break;
            }
            if !recent.contains(&i) {
                recent.push(i);
            }
        }
        Basket::of(recent, &|c| self.is_marked(c))
    }

    /// One customer's purchases as personalisation may read them: (item, time), marked
    /// categories left out.
    /// The newest [`OWN_PURCHASES`], oldest first: the same purchases, in the same order, as a
    /// build reads for the customer (so a refresh makes the basket a build made).
    async fn owned(&self, customer: CustomerId) -> ServiceResult<Vec<Owned>> {
        Ok(self
            .records
            .newest_purchases(customer, OWN_PURCHASES)
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

    /// Of `purchases`, those personalisation uses (special categories left out): (item, when).
    pub(crate) fn personalisation_inputs(
        &self,
        purchases: &[steward_domain::Purchase],
    ) -> Vec<(String, Timestamp)> {
        purchases
            .iter()
            .filter(|p| !self.is_marked(&p.category))
            .map(|p| (p.item.clone(), p.occurred_at))
            .collect()
    }

    /// k: fewest distinct customers an item must have been bought by to be recommended.
    pub fn personalisation_k(&self) -> u32 {
        self.recommender.k.load(Ordering::Relaxed)
    }

    /// Whether the model is built and the customer's purchases are in it.
    pub(crate) async fn personalisation_contributor(
        &self,
        customer: CustomerId,
    ) -> ServiceResult<bool> {
        match self.recommender.state.read().await.as_ref() {
            None => Ok(false),
            // Contributing now, or contributed before (the refresh takes the basket out).
            Some(state) => Ok(state
                .baskets
                .contains_key(&self.recommender.pseudonym(customer))
                || self.contributes(customer).await?),
        }
    }

    /// Whether the customer's purchases are in the model: consent to [`PURPOSE`] active and
    /// processing not restricted.
    async fn contributes(&self, customer: CustomerId) -> ServiceResult<bool> {
        // Consent first: most customers stop there, and every purchase asks this.
        if !self.consents().active(customer, PURPOSE).await? {
            return Ok(false);
        }
        Ok(self
            .records
            .access_facts(customer)
            .await?
            .is_some_and(|f| !f.restricted))
    }

    /// Runs `change` (which may change whether and what the customer contributes), then
    /// refreshes the customer's basket: when this returns, the model reflects the change. A
    /// failed refresh never fails the change (it is logged; the next rebuild heals it).
    pub(crate) async fn with_basket_moved<T>(
        &self,
        customer: CustomerId,
        change: impl AsyncFnOnce() -> ServiceResult<T>,
    ) -> ServiceResult<T> {
        let out = change().await?;
        self.refresh_basket(customer).await;
        Ok(out)
    }

    /// Replaces the customer's basket in the model by what the database holds now (nothing if
    /// they no longer contribute). Logged, never returned, on failure.
    pub(crate) async fn refresh_basket(&self, customer: CustomerId) {
        let rec = &self.recommender;
        let mut slot = rec.state.write().await;
        // Recorded for a build that is reading now, even before any model exists.
        if let Ok(mut during) = rec.changed_during_build.lock()
            && let Some(during) = during.as_mut()
        {
            during.insert(customer);
        }
        let Some(state) = slot.as_mut() else {
            return;
        };
        if let Err(e) = self.refresh_in(state, customer).await {
            // Fail towards forgetting: what cannot be read is taken out.
            forget(state, rec.pseudonym(customer));
            tracing::warn!(error = %e, "a customer's personalisation basket could not be refreshed; removed");
        }
    }

    async fn refresh_in(&self, state: &mut State, customer: CustomerId) -> ServiceResult<()> {
        let key = self.recommender.pseudonym(customer);
        let now = if self.contributes(customer).await? {
            self.basket(&self.items_of(customer).await?)
        } else {
            Basket::default()
        };
        if let Some(old) = state.baskets.remove(&key) {
            state.model.remove(&old);
        }
        if !now.is_empty() {
            state.model.add(&now);
            state.baskets.insert(key, now);
        }
        Ok(())
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
        // The model holds the baskets of those who agreed to this purpose: no other purpose,
        // whatever its basis, may draw on it.
        if access.purpose.key != PURPOSE {
            return Err(ServiceError::Forbidden {
                field: "purpose",
                detail: format!("recommendations are made only under purpose {PURPOSE}"),
            });
        }
        self.records.check_declarable(access)?;
        let facts = self.door().access_facts(id).await?;
        self.records.count_read(&access.flagged(), id).await?;
        let purpose = access.purpose;
        let consented = purpose.lawful_basis == LawfulBasis::Consent
            && self.consents().active(id, &purpose.key).await?;
        let now = Timestamp::now();
        let req =
            self.records
                .plain_request(access.principal, (id, &facts), purpose, consented, now);
        let allowed = self
            .door()
            .policy()
            .decide_personalise(&req, DataCategory::PurchaseHistory);
        let leaf = |outcome: &str| {
            crate::door::leaf(
                self.door().actor_parts(Actor::Principal(access.principal)),
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
            self.door().audit().append(&leaf("deny")).await?;
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
        self.door().audit().append(&leaf("allow")).await?;
        self.recommend_decided(&req, id, n).await
    }

    /// Recommendations for a customer `req` was decided for: their own purchases, the special
    /// categories refused by the policy one by one, the model's counts without their basket.
    async fn recommend_decided(
        &self,
        req: &ReadRequest<'_>,
        id: CustomerId,
        n: usize,
    ) -> ServiceResult<Vec<Recommendation>> {
        let own = self.owned(id).await?;
        // Fail closed: without the marked categories nothing is recommended.
        let marked = self.marked.snapshot().ok_or(ServiceError::Integrity)?;
        let refused = |category: &str| match marked.get(category) {
            Some(Some(special)) => !self.door().policy().decide_personalise(req, *special),
            Some(None) => true,
            None => false,
        };
        let k = self.recommender.k.load(Ordering::Relaxed);
        let slot = self.recommender.state.read().await;
        let Some(state) = slot.as_ref() else {
            return Err(ServiceError::WrongState(
                "recommendations are not available yet (the model is being built)",
            ));
        };
        // The customer's own basket, if in the model, is left out of the counts their answer is
        // drawn from: they learn only what at least k others did.
        let mine = state.baskets.get(&self.recommender.pseudonym(id));
        Ok(state
            .model
            .recommend(&own, mine, k, n, &|c| refused(c) || marked.contains_key(c)))
    }

    /// A campaign's `{{recommendations}}` for one recipient, as text: only if they agreed to
    /// personalisation and the policy lets the campaign's sender personalise for them (decided
    /// under that purpose); `None` otherwise, and the campaign goes without it. Inside a
    /// campaign's sending, recorded by the campaign's own entries, as segment use is.
    pub(crate) async fn campaign_recommendations(
        &self,
        sender: &Principal,
        id: CustomerId,
    ) -> ServiceResult<Option<String>> {
        if !self.consents().active(id, PURPOSE).await? {
            return Ok(None);
        }
        let Ok(purpose) = self.purposes().get("purpose", PURPOSE) else {
            return Ok(None);
        };
        let Some(facts) = self.records.access_facts(id).await? else {
            return Ok(None);
        };
        let req =
            self.records
                .plain_request(sender, (id, &facts), &purpose, true, Timestamp::now());
        if !self
            .door()
            .policy()
            .decide_personalise(&req, DataCategory::PurchaseHistory)
        {
            return Ok(None);
        }
        let recs = match self.recommend_decided(&req, id, 3).await {
            Ok(r) => r,
            Err(ServiceError::WrongState(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if recs.is_empty() {
            return Ok(None);
        }
        Ok(Some(recs.iter().fold(String::new(), |mut text, r| {
            text.push_str("\n- ");
            text.push_str(&r.item);
            if let Some(b) = r.because.first() {
                text.push_str(" (because you bought ");
                text.push_str(&b.item);
                text.push(')');
            }
            text
        })))
    }

    /// Marks purchase `category` as revealing the special category `data_category` (the DPO):
    /// its purchases leave the model at once (it is rebuilt) and never drive personalisation.
    pub async fn mark_purchase_category(
        &self,
        principal: &Principal,
        category: &str,
        data_category: &str,
    ) -> ServiceResult<MarkedCategory> {
        self.door()
            .authorize(principal, steward_policy::Action::ManagePurposes, None)
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
        if !self.store.purchase_category_used(&category).await? {
            return Err(ServiceError::NotFound("purchase category"));
        }
        let now = Timestamp::now();
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "mark_purchase_category",
            None,
            &[],
            About {
                subject: Some(&category),
                purpose: None,
            },
        );
        self.store
            .mark_category(&category, special.as_str(), now.millis(), &[entry])
            .await?;
        // The marking holds from now (answers filter it out at once); the counts follow with
        // the rebuild, which a failure leaves to the next one.
        self.reload_marked().await?;
        self.announcer
            .announce(crate::cluster::Change::Registry)
            .await;
        let built = self.recommender.state.read().await.is_some();
        if built && let Err(e) = self.rebuild().await {
            tracing::warn!(error = %e, "rebuilding the personalisation model after a marking failed; retried later");
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
        self.door()
            .authorize(principal, steward_policy::Action::ManagePurposes, None)
            .await?;
        Ok(self
            .store
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

/// Takes a contributor's basket out of the model.
fn forget(state: &mut State, key: [u8; 16]) {
    if let Some(old) = state.baskets.remove(&key) {
        state.model.remove(&old);
    }
}

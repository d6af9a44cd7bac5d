//! Segments (issue 18, point 1): marketing defines rules that pick customers and learns how many
//! they reach, never who.
//!
//! Sizing a segment is a use of every customer's facts for the declared purpose, so it is
//! decided like a read: the policy's `use_in_segment` action, per customer and per category the
//! rules use, with the read limits (the purpose's categories and roles, consent, restriction,
//! the notice). A customer the policy does not let the caller use is not counted. The facts are
//! opened inside the service (amounts and languages are sealed), nothing of anyone leaves, and
//! the evaluation is one audit entry: segment, purpose, categories used, size. Sizes under the
//! installation's threshold (10 by default, never below 5) are shown as "fewer than N".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use steward_domain::segment::{Facts, InteractionFact, Known, PurchaseFact};
use steward_domain::{
    Channel, CustomerId, LawfulBasis, Purpose, Rule, SegmentId, SegmentSize, Timestamp,
    ValidationError, normalize,
};
use steward_policy::{Action, ReadRequest, Subject};
use steward_store::{SegmentPage, SegmentRow, SegmentScan};

use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, Operator, Principal};

/// Customers read per page of an evaluation: memory stays bounded whatever the installation's
/// size, and one page is evaluated while the next is read.
const PAGE: u32 = 5_000;

/// Sizes one caller may ask for in an hour: a day's work of defining and comparing segments,
/// too few to difference customers out one rule at a time. Past it the DPO is alerted and the
/// caller refused for the rest of the hour.
pub const EVALUATIONS_PER_HOUR: u32 = 60;

/// The installation's limits on segments: the threshold under which sizes are not shown, and
/// each caller's evaluations in the current hour.
pub(crate) struct SegmentLimits {
    threshold: AtomicU64,
    /// Evaluations one caller may ask for in an hour ([`EVALUATIONS_PER_HOUR`] unless set).
    per_hour: std::sync::atomic::AtomicU32,
    /// Per caller (audit pseudonym): when their hour began, evaluations since, alerted yet.
    evaluations: Mutex<HashMap<String, (Instant, u32, bool)>>,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        Self {
            threshold: AtomicU64::new(steward_domain::segment::DEFAULT_SIZE_THRESHOLD),
            per_hour: std::sync::atomic::AtomicU32::new(EVALUATIONS_PER_HOUR),
            evaluations: Mutex::new(HashMap::new()),
        }
    }
}

/// What counting an evaluation found.
enum Budget {
    Allowed,
    /// Past the limit; `newly` the first time this hour (the DPO is alerted once).
    Refused {
        newly: bool,
    },
}

impl SegmentLimits {
    fn count(&self, who: &str, now: Instant) -> Budget {
        // Fails closed: a poisoned lock refuses.
        let Ok(mut m) = self.evaluations.lock() else {
            return Budget::Refused { newly: false };
        };
        let hour = std::time::Duration::from_secs(3600);
        let entry = m.entry(who.to_owned()).or_insert((now, 0, false));
        if now.duration_since(entry.0) >= hour {
            *entry = (now, 0, false);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 <= self.per_hour.load(Ordering::Relaxed) {
            return Budget::Allowed;
        }
        let newly = !entry.2;
        entry.2 = true;
        Budget::Refused { newly }
    }
}

/// A segment as marketing sees it: its name and rules, never its members.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Segment {
    /// Its id.
    pub id: SegmentId,
    /// Its name.
    pub name: String,
    /// Its rules (see `POST /v1/segments`).
    #[schema(value_type = Object)]
    pub rules: serde_json::Value,
    /// When it was defined.
    pub created_at: Timestamp,
}

/// A segment's size under a purpose.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SegmentSizeView {
    /// The number of customers it reaches under the purpose, or `"fewer than N"`.
    #[schema(value_type = serde_json::Value, example = 1234)]
    pub size: SegmentSize,
    /// The purpose it was sized under.
    pub purpose: String,
    /// When.
    pub evaluated_at: Timestamp,
}

pub(crate) fn segment_of(r: SegmentRow) -> ServiceResult<Segment> {
    Ok(Segment {
        id: r.id,
        name: r.name,
        rules: serde_json::from_str(&r.rules).map_err(|_| ServiceError::Integrity)?,
        created_at: Timestamp(r.created_at),
    })
}

/// Segments: rules over the customer base, their sizes (never under the threshold) and their
/// members for a campaign, each evaluation decided per customer and recorded.
#[derive(Clone)]
pub struct Segments {
    door: Arc<crate::door::Door>,
    /// The segments, and the customer base scanned page by page.
    store: Arc<dyn steward_store::SegmentStore>,
    records: Arc<crate::records::Records>,
    purposes: Arc<crate::purposes::Purposes>,
    directory: Arc<crate::directory::Directory>,
    alerts: Arc<crate::alerts::Alerts>,
    keys: Arc<crate::customer_keys::CustomerKeys>,
    notices: Arc<crate::notice::Notices>,
    /// The purchase categories it leaves out (marked by the DPO).
    marked: Arc<crate::personalise::Marked>,
    limits: Arc<SegmentLimits>,
}

/// What segments are wired to.
pub(crate) struct SegmentsParts {
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) store: Arc<dyn steward_store::SegmentStore>,
    pub(crate) records: Arc<crate::records::Records>,
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    pub(crate) directory: Arc<crate::directory::Directory>,
    pub(crate) alerts: Arc<crate::alerts::Alerts>,
    pub(crate) keys: Arc<crate::customer_keys::CustomerKeys>,
    pub(crate) notices: Arc<crate::notice::Notices>,
    pub(crate) marked: Arc<crate::personalise::Marked>,
}

impl Segments {
    /// Wires segments to their store and the services they ask.
    pub(crate) fn new(p: SegmentsParts) -> Self {
        Segments {
            door: p.door,
            store: p.store,
            records: p.records,
            purposes: p.purposes,
            directory: p.directory,
            alerts: p.alerts,
            keys: p.keys,
            notices: p.notices,
            marked: p.marked,
            limits: Arc::default(),
        }
    }

    /// Every segment's row, for analytics' groupings and filters.
    pub(crate) async fn segment_rows(&self) -> ServiceResult<Vec<SegmentRow>> {
        Ok(self.store.segments().await?)
    }

    /// Segment `id`'s row, undecided: for a context that names a segment (a survey's audience)
    /// and decides its own use of it.
    pub(crate) async fn segment_row(&self, id: SegmentId) -> ServiceResult<Option<SegmentRow>> {
        Ok(self.store.segment(id).await?)
    }

    /// One page of the customer base as `scan` asks (analytics reads it as segments do).
    pub(crate) async fn scan_page(
        &self,
        after: Option<CustomerId>,
        limit: u32,
        scan: &SegmentScan,
    ) -> ServiceResult<SegmentPage> {
        Ok(self.store.segment_page(after, limit, scan).await?)
    }

    fn door(&self) -> &crate::door::Door {
        &self.door
    }

    fn purposes(&self) -> &crate::purposes::Purposes {
        &self.purposes
    }

    fn directory(&self) -> &crate::directory::Directory {
        &self.directory
    }

    fn alerts(&self) -> &crate::alerts::Alerts {
        &self.alerts
    }

    fn keys(&self) -> &crate::customer_keys::CustomerKeys {
        &self.keys
    }
}

impl Segments {
    /// Sets the size under which segments are shown as "fewer than N" (never below 5): the
    /// operator's setting (`serve --segment-threshold`).
    pub fn set_segment_threshold(&self, _operator: Operator, threshold: u64) {
        self.limits.threshold.store(
            threshold.max(steward_domain::segment::MIN_SIZE_THRESHOLD),
            Ordering::Relaxed,
        );
    }

    /// Sets the segment evaluations one caller may ask for in an hour (at least one); the
    /// operator's, at start.
    pub fn set_segment_evaluations_per_hour(&self, _operator: Operator, per_hour: u32) {
        self.limits
            .per_hour
            .store(per_hour.max(1), Ordering::Relaxed);
    }

    fn purpose_keys(&self) -> Vec<String> {
        self.purposes().all().into_iter().map(|p| p.key).collect()
    }

    /// What rules may refer to: the purposes' keys and the outlets' ids (read once per call).
    async fn rule_terms(&self) -> ServiceResult<(Vec<String>, Vec<steward_domain::OutletId>)> {
        let outlets = self
            .directory()
            .outlets()
            .await?
            .into_iter()
            .map(|o| o.id)
            .collect();
        Ok((self.purpose_keys(), outlets))
    }

    /// Parses and validates rules against the registry and the directory.
    async fn parse_rules(&self, rules: &serde_json::Value) -> ServiceResult<Rule> {
        let (purposes, outlets) = self.rule_terms().await?;
        Ok(Rule::parse(
            rules,
            &Known {
                purposes: &purposes,
                outlets: &outlets,
            },
        )?)
    }

    /// Defines a segment (marketing, the DPO): validated rules, one audit entry.
    pub async fn create_segment(
        &self,
        principal: &Principal,
        name: &str,
        rules: &serde_json::Value,
    ) -> ServiceResult<Segment> {
        self.door()
            .authorize(principal, Action::ManageSegments, None)
            .await?;
        let name = normalize::short_text("name", name)?;
        let rule = self.parse_rules(rules).await?;
        let now = Timestamp::now();
        let row = SegmentRow {
            id: SegmentId::new(),
            name,
            rules: rule.to_json().to_string(),
            created_by: self.door().pseudonym(&principal.asker().id),
            created_at: now.millis(),
        };
        let id = row.id.to_string();
        let about = About {
            subject: Some(&id),
            purpose: None,
        };
        let entry = self.door().write_entry_for(
            Actor::Principal(principal),
            "create_segment",
            None,
            &[],
            about,
        );
        self.store.insert_segment(&row, &[entry]).await?;
        segment_of(row)
    }

    /// Every segment (marketing, the DPO): names and rules, no sizes.
    pub async fn segments(&self, principal: &Principal) -> ServiceResult<Vec<Segment>> {
        self.door()
            .authorize(principal, Action::ManageSegments, None)
            .await?;
        self.store
            .segments()
            .await?
            .into_iter()
            .map(segment_of)
            .collect()
    }

    /// Whether `principal` may define and size segments (the console offers them only then).
    pub async fn may_manage_segments(&self, principal: &Principal) -> bool {
        self.door()
            .authorize(principal, Action::ManageSegments, None)
            .await
            .is_ok()
    }

    /// The outlets a segment's rules may name, for the rule builder (names of shops are
    /// business data; the caller must be one who defines segments).
    pub async fn segment_outlets(
        &self,
        principal: &Principal,
    ) -> ServiceResult<Vec<crate::Outlet>> {
        self.door()
            .authorize(principal, Action::ManageSegments, None)
            .await?;
        self.directory().outlets().await
    }

    /// Every segment with its rules as [`Rule`] (to describe them), `None` where they no longer
    /// validate against the registry and the directory; the directory is read once.
    pub async fn segments_with_rules(
        &self,
        principal: &Principal,
    ) -> ServiceResult<Vec<(Segment, Option<Rule>)>> {
        let segments = self.segments(principal).await?;
        let (purposes, outlets) = self.rule_terms().await?;
        let known = Known {
            purposes: &purposes,
            outlets: &outlets,
        };
        Ok(segments
            .into_iter()
            .map(|s| {
                let rule = Rule::parse(&s.rules, &known).ok();
                (s, rule)
            })
            .collect())
    }

    /// One segment's definition.
    pub async fn segment(&self, principal: &Principal, id: SegmentId) -> ServiceResult<Segment> {
        self.door()
            .authorize(principal, Action::ManageSegments, None)
            .await?;
        let row = self
            .store
            .segment(id)
            .await?
            .ok_or(ServiceError::NotFound("segment"))?;
        segment_of(row)
    }

    /// How many customers segment `id` reaches under `purpose`, as the policy lets `principal`
    /// use them; recorded as one audit entry before the size is returned.
    pub async fn segment_size(
        &self,
        principal: &Principal,
        id: SegmentId,
        purpose: &str,
    ) -> ServiceResult<SegmentSizeView> {
        let segment = self.segment(principal, id).await?;
        let purpose = self.purposes().get("purpose", purpose)?;
        let rule = self.stored_rules(&segment).await?;
        let categories = rule_categories(&rule);
        let id_text = id.to_string();
        let record = async |categories: &[&str], outcome: &str, size: Option<SegmentSize>| {
            let mut leaf = crate::door::leaf(
                self.door().actor_parts(Actor::Principal(principal)),
                "evaluate_segment",
                None,
                categories,
                About {
                    subject: Some(&id_text),
                    purpose: Some(&purpose.key),
                },
                "used",
                outcome,
            );
            // The size as shown, no more exact for the DPO than for marketing.
            if let Some(size) = size {
                leaf.categories.insert("size".to_owned(), size.to_string());
            }
            self.door().audit().append(&leaf).await
        };
        let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
        // A refused evaluation is recorded too: probing what a purpose allows is a use.
        if let Err(e) = self.check_segment_use(principal, &purpose, &rule) {
            record(&names, "deny", None).await?;
            return Err(e);
        }
        if let Err(e) = self.charge_evaluation(principal, &purpose).await {
            record(&names, "deny", None).await?;
            return Err(e);
        }
        let now = Timestamp::now();
        let size = self
            .count_members(principal, &purpose, &rule, &categories, now)
            .await?;
        let threshold = self.limits.threshold.load(Ordering::Relaxed);
        let shown = SegmentSize::shown(size, threshold);
        // INVARIANT: recorded before the size is returned.
        record(&names, "done", Some(shown)).await?;
        Ok(SegmentSizeView {
            size: shown,
            purpose: purpose.key.clone(),
            evaluated_at: now,
        })
    }

    /// A stored segment's rules, validated against the registry and directory as they are now.
    pub(crate) async fn stored_rules(&self, segment: &Segment) -> ServiceResult<Rule> {
        self.parse_rules(&segment.rules).await.map_err(|e| match e {
            // Stored rules that no longer validate (an outlet or purpose gone): say so.
            ServiceError::Validation(v) => ServiceError::Validation(ValidationError::new(
                v.field,
                "no longer valid: the segment refers to something removed since; define it again",
            )),
            e => e,
        })
    }

    /// Counts an evaluation against the caller's hourly budget: past it, the DPO is alerted
    /// (once an hour) and the evaluation refused.
    pub(crate) async fn charge_evaluation(
        &self,
        principal: &Principal,
        purpose: &Purpose,
    ) -> ServiceResult<()> {
        let pseudonym = self.door().pseudonym(&principal.asker().id);
        let Budget::Refused { newly } = self.limits.count(&pseudonym, Instant::now()) else {
            return Ok(());
        };
        if newly {
            let who = crate::access::Flagged {
                principal,
                purpose: &purpose.key,
                reason: None,
                break_glass: false,
            };
            let per_hour = self.limits.per_hour.load(Ordering::Relaxed);
            let detail = format!(
                "sized more than {per_hour} segments in an hour; refused for the rest of the hour"
            );
            self.alerts()
                .raise("segment_evaluations", &who, None, detail)
                .await?;
        }
        Err(ServiceError::SegmentBudget)
    }

    /// The size threshold: sizes under it are shown as "fewer than N".
    pub(crate) fn segment_threshold(&self) -> u64 {
        self.limits.threshold.load(Ordering::Relaxed)
    }

    /// A request about no one in particular — a consenting, unrestricted customer of no outlet —
    /// to ask what the policy would allow for every customer alike (a segment's evaluation, an
    /// analytics query); refused at once while the caller owes the notice an acknowledgement.
    pub(crate) fn request_about_nobody<'a>(
        &self,
        principal: &'a Principal,
        purpose: &'a Purpose,
    ) -> ServiceResult<ReadRequest<'a>> {
        let now = Timestamp::now();
        let req = ReadRequest {
            asker: principal.asker(),
            subject: Subject {
                id: CustomerId(uuid::Uuid::nil()),
                outlets: &[],
                restricted: false,
            },
            purpose,
            consented: true,
            has_reason: false,
            reason_length: 0,
            break_glass: false,
            acknowledged: self.notices.acknowledged(principal, now),
            now,
            // Not a recipient's act: no agreement (a recipient is refused by the policy).
            agreement: None,
        };
        if !req.acknowledged {
            return Err(ServiceError::AcknowledgementRequired);
        }
        Ok(req)
    }

    /// Refuses, with the reason, an evaluation the policy would deny for every customer: the
    /// purpose's roles or categories (decided for a consenting, unrestricted customer).
    pub(crate) fn check_segment_use(
        &self,
        principal: &Principal,
        purpose: &Purpose,
        rule: &Rule,
    ) -> ServiceResult<()> {
        let req = self.request_about_nobody(principal, purpose)?;
        if !self.door().policy().decide_use(&req, &[]) {
            return Err(ServiceError::PurposeNotDeclarable(purpose.key.clone()));
        }
        for u in rule.categories() {
            if !self.door().policy().decide_use(&req, &[u.category]) {
                let detail = if purpose.categories.contains(&u.category) {
                    format!(
                        "no policy lets this caller use {} in a segment",
                        u.category.as_str()
                    )
                } else {
                    format!(
                        "the {} rule uses {}, which purpose {} does not cover",
                        u.rule,
                        u.category.as_str(),
                        purpose.key
                    )
                };
                return Err(ServiceError::Forbidden {
                    field: "rules",
                    detail,
                });
            }
        }
        Ok(())
    }

    /// Counts the customers the rules pick among those the policy lets `principal` use: one
    /// page read while the previous one is evaluated (off the async threads).
    async fn count_members(
        &self,
        principal: &Principal,
        purpose: &Arc<Purpose>,
        rule: &Rule,
        categories: &[steward_domain::DataCategory],
        now: Timestamp,
    ) -> ServiceResult<u64> {
        self.evaluate(principal, purpose, rule, categories, now, false)
            .await
            .map(|(size, _)| size)
    }

    /// The members a message to segment `id` may go to under `purpose` (a campaign, a survey):
    /// the caller may declare the purpose and use the rules' categories, the evaluation is
    /// charged to their hourly budget, and each member is usable for `also` too. Fewer than the
    /// size threshold is refused with `too_few`, naming `segment_id`.
    pub(crate) async fn audience(
        &self,
        principal: &Principal,
        purpose: &Arc<Purpose>,
        id: SegmentId,
        also: &[steward_domain::DataCategory],
        too_few: &'static str,
    ) -> ServiceResult<Vec<CustomerId>> {
        self.records.check_declarable(&crate::Access {
            principal,
            purpose,
            reason: None,
            break_glass: false,
        })?;
        let segment = self.segment(principal, id).await?;
        let rule = self.stored_rules(&segment).await?;
        self.check_segment_use(principal, purpose, &rule)?;
        self.charge_evaluation(principal, purpose).await?;
        let members = self
            .segment_members(principal, purpose, &rule, also, Timestamp::now())
            .await?;
        if (members.len() as u64) < self.segment_threshold() {
            return Err(ValidationError::new("segment_id", too_few).into());
        }
        Ok(members)
    }

    /// Evaluates a segment as [`Segments::count_members`] does and returns its members too, for
    /// sending a campaign (they go into the deliveries, never to the caller); a member must
    /// also be usable for the categories `also` names (the address, the template's fields).
    pub(crate) async fn segment_members(
        &self,
        principal: &Principal,
        purpose: &Arc<Purpose>,
        rule: &Rule,
        also: &[steward_domain::DataCategory],
        now: Timestamp,
    ) -> ServiceResult<Vec<CustomerId>> {
        let mut categories = rule_categories(rule);
        categories.extend_from_slice(also);
        categories.sort_by_key(|c| c.as_str());
        categories.dedup();
        self.evaluate(principal, purpose, rule, &categories, now, true)
            .await
            .map(|(_, members)| members)
    }

    async fn evaluate(
        &self,
        principal: &Principal,
        purpose: &Arc<Purpose>,
        rule: &Rule,
        categories: &[steward_domain::DataCategory],
        now: Timestamp,
        collect: bool,
    ) -> ServiceResult<(u64, Vec<CustomerId>)> {
        let needs = rule.needs();
        let scan = SegmentScan {
            purchases: needs.purchases,
            amounts: needs.amounts,
            interactions: needs.interactions,
            language: needs.language,
            consents: purpose.lawful_basis == LawfulBasis::Consent || !needs.consents.is_empty(),
            items: false,
            outlets: false,
        };
        let job = Arc::new(Evaluation {
            principal: principal.clone(),
            purpose: purpose.clone(),
            rule: rule.clone(),
            categories: categories.to_vec(),
            acknowledged: self.notices.acknowledged(principal, now),
            now,
            collect,
        });
        let store = &self.store;
        let mut page = store.segment_page(None, PAGE, &scan).await?;
        let mut size = 0u64;
        let mut members = Vec::new();
        while let Some(last) = page.customers.last().map(|c| c.id) {
            let (vault, job) = (self.clone(), job.clone());
            let counting = tokio::task::spawn_blocking(move || vault.count_page(&job, page));
            let (counted, next) =
                tokio::join!(counting, store.segment_page(Some(last), PAGE, &scan));
            let (n, found) = counted.map_err(|_| ServiceError::Integrity)??;
            size += n;
            members.extend(found);
            page = next?;
        }
        Ok((size, members))
    }

    /// Walks one page customer by customer (CPU only): each customer's runs of purchases,
    /// interactions and consent events, the ledger folded to the latest event per purpose, and
    /// the policy's decision by `decide` — within one walk only the customer's outlets,
    /// restriction and consent vary, so when the policy names no individual and reads no time
    /// each combination is decided once (the policy's own memo would build a key per
    /// customer). `each` gets the customers `decide` allows, nothing of the others is opened.
    pub(crate) fn walk_page(
        &self,
        page: &mut SegmentPage,
        walk: &Walk<'_>,
        decide: &dyn Fn(&ReadRequest<'_>) -> bool,
        each: &mut dyn FnMut(Usable<'_>) -> ServiceResult<()>,
    ) -> ServiceResult<()> {
        page.purchases.sort_by_key(|p| p.customer_id);
        page.interactions.sort_by_key(|i| i.0);
        let keys: HashMap<CustomerId, _> = page.keys.drain(..).collect();
        let asker = walk.principal.asker();
        let memoizes = self.door().policy().memoizes();
        let mut decided: HashMap<(Vec<steward_domain::OutletId>, bool, bool), bool> =
            HashMap::new();
        let (mut p_at, mut i_at, mut c_at) = (0, 0, 0);
        let mut consents: Vec<(String, bool)> = Vec::new();
        for c in &page.customers {
            // Each list is in customer order: take this customer's run of each.
            let run = |at: &mut usize, len: usize, id_at: &dyn Fn(usize) -> CustomerId| {
                while *at < len && id_at(*at) < c.id {
                    *at += 1;
                }
                let start = *at;
                while *at < len && id_at(*at) == c.id {
                    *at += 1;
                }
                start..*at
            };
            let bought = run(&mut p_at, page.purchases.len(), &|k| {
                page.purchases[k].customer_id
            });
            let talked = run(&mut i_at, page.interactions.len(), &|k| {
                page.interactions[k].0
            });
            let ledger = run(&mut c_at, page.consents.len(), &|k| page.consents[k].0);
            consents.clear();
            for (_, p, granted) in &page.consents[ledger] {
                match consents.iter_mut().find(|(q, _)| q == p) {
                    Some(slot) => slot.1 = *granted,
                    None => consents.push((p.clone(), *granted)),
                }
            }
            let consented = walk.purpose.lawful_basis == LawfulBasis::Consent
                && consents.iter().any(|(p, g)| *p == walk.purpose.key && *g);
            let req = ReadRequest {
                asker: asker.clone(),
                subject: Subject {
                    id: c.id,
                    outlets: &c.outlets,
                    restricted: c.restricted,
                },
                purpose: walk.purpose,
                consented,
                has_reason: false,
                reason_length: 0,
                break_glass: false,
                acknowledged: walk.acknowledged,
                now: walk.now,
                // Not a recipient's act: no agreement (a recipient is refused by the policy).
                agreement: None,
            };
            let usable = if memoizes {
                *decided
                    .entry((c.outlets.clone(), c.restricted, consented))
                    .or_insert_with(|| decide(&req))
            } else {
                decide(&req)
            };
            if usable {
                each(Usable {
                    customer: c,
                    key: keys.get(&c.id),
                    purchases: &page.purchases[bought],
                    interactions: &page.interactions[talked],
                    consents: &consents,
                })?;
            }
        }
        Ok(())
    }

    /// Counts one page's members (CPU only: unwrapping keys, opening facts, deciding), and
    /// lists them when the job collects them.
    fn count_page(
        &self,
        job: &Evaluation,
        mut page: SegmentPage,
    ) -> ServiceResult<(u64, Vec<CustomerId>)> {
        let mut members = Vec::new();
        let mut size = 0;
        let mut purchases = Vec::new();
        let mut interactions = Vec::new();
        let walk = Walk {
            principal: &job.principal,
            purpose: &job.purpose,
            acknowledged: job.acknowledged,
            now: job.now,
        };
        let decide = |req: &ReadRequest<'_>| self.door().policy().decide_use(req, &job.categories);
        self.walk_page(&mut page, &walk, &decide, &mut |u| {
            let c = u.customer;
            let sealed = c.language.is_some() || u.purchases.iter().any(|p| p.amount.is_some());
            let key = match (sealed, u.key) {
                (true, Some(k)) => Some(self.keys().open(c.id, k)?),
                // Sealed facts without their key (erased meanwhile): not counted, rather than
                // evaluated as if the facts were absent.
                (true, None) => return Ok(()),
                (false, _) => None,
            };
            purchases.clear();
            // Purchases in a category the DPO marked as a special category are no input of
            // marketing's segments (issue 20): not counted, not summed, not dated.
            for p in u
                .purchases
                .iter()
                .filter(|p| !self.marked.is_marked(&p.category))
            {
                let amount = match (&p.amount, &key) {
                    (Some((sealed, currency)), Some(dk)) => Some((
                        crate::seal::open_amount(dk, c.id, &p.id, sealed)?,
                        currency.clone(),
                    )),
                    _ => None,
                };
                purchases.push(PurchaseFact {
                    category: p.category.clone(),
                    at: p.occurred_at,
                    amount,
                });
            }
            interactions.clear();
            interactions.extend(u.interactions.iter().map(|(_, ch, at)| InteractionFact {
                channel: Channel::parse(ch),
                at: *at,
            }));
            let language = match (&c.language, &key) {
                (Some(sealed), Some(dk)) => Some(crate::seal::open_language(dk, c.id, sealed)?),
                _ => None,
            };
            let facts = Facts {
                outlets: &c.outlets,
                purchases: &purchases,
                interactions: &interactions,
                consents: u.consents,
                language: language.as_deref(),
            };
            if job.rule.matches(&facts, job.now.millis()) {
                size += 1;
                if job.collect {
                    members.push(c.id);
                }
            }
            Ok(())
        })?;
        Ok((size, members))
    }
}

/// Who walks a page, and for what: the same for every customer of it.
pub(crate) struct Walk<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) purpose: &'a Purpose,
    pub(crate) acknowledged: bool,
    pub(crate) now: Timestamp,
}

/// One customer of a page the policy lets the caller use, with their facts.
pub(crate) struct Usable<'p> {
    pub(crate) customer: &'p steward_store::SegmentCustomer,
    /// Their wrapped data key, when the page read keys (absent: erased meanwhile).
    pub(crate) key: Option<&'p steward_store::StoredKey>,
    pub(crate) purchases: &'p [steward_store::SegmentPurchase],
    pub(crate) interactions: &'p [(CustomerId, String, i64)],
    /// The consent ledger folded: the latest event per purpose (true: granted).
    pub(crate) consents: &'p [(String, bool)],
}

/// The data categories a segment's rules use, each once.
pub(crate) fn rule_categories(rule: &Rule) -> Vec<steward_domain::DataCategory> {
    let mut c: Vec<_> = rule.categories().iter().map(|u| u.category).collect();
    c.sort_by_key(|c| c.as_str());
    c.dedup();
    c
}

/// What every page of one evaluation shares.
struct Evaluation {
    principal: Principal,
    purpose: Arc<Purpose>,
    rule: Rule,
    categories: Vec<steward_domain::DataCategory>,
    acknowledged: bool,
    now: Timestamp,
    /// List the members, not only count them.
    collect: bool,
}

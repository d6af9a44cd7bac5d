//! Analytics (issue 21): know the business without knowing the customer.
//!
//! An analyst's query goes through the same door as a read: the declared purpose, the policy's
//! `analyse` action decided for every customer whose facts it would use (consent, restriction,
//! the purpose's categories, the notice), and an audit entry for every release. What leaves is
//! an aggregate with discrete Laplace noise (`steward_domain::analytics`), charged to the
//! analyst's privacy budget for the purpose and window in the same transaction that stores the
//! answer and its audit entry. The same query again in the same window returns the stored
//! answer at no cost, so repeating it cannot average the noise away.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use steward_domain::analytics::{
    self, Cells, GroupKey, Metric, Of, Query, QueryInput, RandomWords, Released, Row,
};
use steward_domain::segment::{Facts, InteractionFact, PurchaseFact, tier_of};
use steward_domain::{
    Channel, DataCategory, LawfulBasis, Purpose, Rule, Timestamp, ValidationError,
};
use steward_policy::ReadRequest;
use steward_store::{Recorded, ReleaseRow, SegmentPage, SegmentScan};

use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::{Actor, Operator, Principal};

/// Customers read per page, as for segments: bounded memory, one page counted while the next
/// is read.
const PAGE: u32 = 5_000;
/// Most segments one query may group by.
const MAX_SEGMENTS: usize = 50;

/// The installation's analytics settings.
pub(crate) struct AnalyticsSettings {
    /// ε per analyst, purpose and window, in thousandths.
    budget_milli: AtomicU32,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            budget_milli: AtomicU32::new(analytics::DEFAULT_BUDGET_MILLI),
        }
    }
}

/// One released group.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnswerRow {
    /// The group: each grouped key with its value (`{}` without `group_by`).
    pub group: BTreeMap<String, String>,
    /// The noisy value.
    pub value: i64,
    /// Half-width of the 95 % interval of the noise: the exact value lies within
    /// `value ± ci95` with probability 0.95.
    pub ci95: u64,
}

/// A released answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Answer {
    /// The groups released (with a key from the data, only those past the threshold).
    pub rows: Vec<AnswerRow>,
    /// ε this request spent: the query's ε, or 0 when the stored answer was returned.
    pub epsilon_spent: f64,
    /// δ this request spent.
    pub delta_spent: f64,
    /// ε left in the caller's budget for the purpose and window.
    pub budget_left: f64,
    /// When the answer was released.
    pub released_at: Timestamp,
}

/// The caller's budget under a purpose.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    /// The purpose.
    pub purpose: String,
    /// ε spent in the current window.
    pub epsilon_spent: f64,
    /// ε left.
    pub epsilon_left: f64,
    /// δ spent.
    pub delta_spent: f64,
    /// δ left.
    pub delta_left: f64,
    /// When the window ends and the budget is whole again.
    pub window_ends_at: Timestamp,
}

/// A release the caller made in the current window, for the dashboard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReleasedQuery {
    /// The query, normalised.
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
    /// The purpose.
    pub purpose: String,
    /// A query's answer (empty for a survey's results).
    pub rows: Vec<AnswerRow>,
    /// A survey's results, per question (absent for a query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<Vec<crate::surveys::QuestionResult>>,
    /// ε spent on it.
    pub epsilon: f64,
    /// When.
    pub released_at: Timestamp,
}

/// One analyst's spending, for the DPO.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetUse {
    /// The analyst: a staff id or `token-<id>`.
    pub analyst: String,
    /// The analyst as people know them: the staff member's name, or the token's.
    pub name: String,
    /// The purpose.
    pub purpose: String,
    /// ε spent in the current window.
    pub epsilon_spent: f64,
    /// δ spent.
    pub delta_spent: f64,
    /// The budget.
    pub epsilon_budget: f64,
}

/// The operating system's randomness, 64 words at a time. A failed refill marks the source
/// failed and the release is discarded (fail closed: never noise from a broken source).
struct OsWords {
    words: [u64; 64],
    at: usize,
    failed: bool,
}

impl OsWords {
    fn new() -> Self {
        Self {
            words: [0; 64],
            at: 64,
            failed: false,
        }
    }
}

impl RandomWords for OsWords {
    fn next_u64(&mut self) -> u64 {
        if self.at == self.words.len() {
            let mut bytes = [0u8; 512];
            if steward_crypto::random_bytes(&mut bytes).is_err() {
                self.failed = true;
            }
            for (w, b) in self.words.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut word = [0u8; 8];
                word.copy_from_slice(b);
                *w = u64::from_le_bytes(word);
            }
            self.at = 0;
        }
        self.at += 1;
        self.words[self.at - 1]
    }
}

/// Whose budget a release spends: the staff member's (whichever session or token they use),
/// or, for a service client, its role's — every token of a role shares one budget, so minting
/// tokens does not mint budget.
fn analyst_of(principal: &Principal) -> String {
    match principal.staff_id() {
        Some(staff) => staff.to_string(),
        None => {
            let mut roles: Vec<&str> = principal.roles().iter().map(|r| r.as_str()).collect();
            roles.sort_unstable();
            format!("role:{}", roles.join("+"))
        }
    }
}

fn milli(x: i64) -> f64 {
    x as f64 / 1000.0
}

fn nano(x: i64) -> f64 {
    x as f64 / 1e9
}

/// The answer rows of released groups, keyed by the query's keys.
fn rows_of(query: &Query, released: Vec<Released>) -> Vec<AnswerRow> {
    released
        .into_iter()
        .map(|r| AnswerRow {
            group: query
                .group_by
                .iter()
                .map(|k| k.as_str().to_owned())
                .zip(r.group)
                .collect(),
            value: r.value,
            ci95: r.ci95,
        })
        .collect()
}

/// A release to make: its identity (the canonical query), its cost, and the categories it uses.
pub(crate) struct Release {
    pub(crate) canonical: String,
    pub(crate) epsilon_milli: i64,
    pub(crate) delta_nano: i64,
    pub(crate) categories: Vec<DataCategory>,
}

/// A release made or found: the answer (JSON), what this call spent and what is left.
pub(crate) struct ReleaseOutcome {
    pub(crate) answer: String,
    pub(crate) epsilon_spent: i64,
    pub(crate) delta_spent: i64,
    pub(crate) left: i64,
    pub(crate) at: Timestamp,
}

/// Runs a noise-adding step with the operating system's randomness, off the async threads;
/// a failed random source fails the release (never noise from a broken source).
pub(crate) async fn noisy<T: Send + 'static>(
    step: impl FnOnce(&mut dyn RandomWords) -> Result<T, analytics::OutOfRange> + Send + 'static,
) -> ServiceResult<T> {
    tokio::task::spawn_blocking(move || {
        let mut rng = OsWords::new();
        match (step(&mut rng), rng.failed) {
            (Ok(r), false) => Ok(r),
            _ => Err(ServiceError::Integrity),
        }
    })
    .await
    .map_err(|_| ServiceError::Integrity)?
}

/// What every page of one query shares.
struct Job {
    principal: Principal,
    purpose: Arc<Purpose>,
    query: Query,
    categories: Vec<DataCategory>,
    /// The segments whose membership the query reads: (id, rules).
    segments: Vec<(String, Rule)>,
    acknowledged: bool,
    now: Timestamp,
}

/// Analytics without identities: aggregate queries over the customer base, answered with
/// noise under each analyst's privacy budget, every release decided and recorded.
#[derive(Clone)]
pub struct Analytics {
    door: Arc<crate::door::Door>,
    /// The releases and the budgets spent.
    store: Arc<dyn steward_store::AnalyticsStore>,
    /// The segments a query groups or filters by, and the customer base scanned page by page.
    segments: crate::segments::Segments,
    purposes: Arc<crate::purposes::Purposes>,
    directory: Arc<crate::directory::Directory>,
    keys: Arc<crate::customer_keys::CustomerKeys>,
    notices: Arc<crate::notice::Notices>,
    /// The purchase categories left out (marked by the DPO).
    marked: Arc<crate::personalise::Marked>,
    settings: Arc<AnalyticsSettings>,
}

/// What analytics is wired to.
pub(crate) struct AnalyticsParts {
    pub(crate) door: Arc<crate::door::Door>,
    pub(crate) store: Arc<dyn steward_store::AnalyticsStore>,
    pub(crate) segments: crate::segments::Segments,
    pub(crate) purposes: Arc<crate::purposes::Purposes>,
    pub(crate) directory: Arc<crate::directory::Directory>,
    pub(crate) keys: Arc<crate::customer_keys::CustomerKeys>,
    pub(crate) notices: Arc<crate::notice::Notices>,
    pub(crate) marked: Arc<crate::personalise::Marked>,
}

impl Analytics {
    /// Wires analytics to its store and the services it asks.
    pub(crate) fn new(p: AnalyticsParts) -> Self {
        Analytics {
            door: p.door,
            store: p.store,
            segments: p.segments,
            purposes: p.purposes,
            directory: p.directory,
            keys: p.keys,
            notices: p.notices,
            marked: p.marked,
            settings: Arc::default(),
        }
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

    fn keys(&self) -> &crate::customer_keys::CustomerKeys {
        &self.keys
    }
}

impl Analytics {
    /// Sets the privacy budget per analyst, purpose and 30-day window (the operator's
    /// `serve --analytics-budget`); at least 0.001.
    pub fn set_analytics_budget(&self, _operator: Operator, epsilon: f64) {
        let milli = (epsilon * 1000.0).floor().clamp(1.0, f64::from(u32::MAX)) as u32;
        self.settings.budget_milli.store(milli, Ordering::Relaxed);
    }

    fn budget_milli(&self) -> i64 {
        i64::from(self.settings.budget_milli.load(Ordering::Relaxed))
    }

    /// Refuses, with the reason, a caller or query the policy would deny for every customer:
    /// the purpose's roles or data use, or a category it does not cover.
    fn check_analysis(
        &self,
        principal: &Principal,
        purpose: &Purpose,
        categories: &[DataCategory],
    ) -> ServiceResult<()> {
        let req = self.segments.request_about_nobody(principal, purpose)?;
        if !self.door().policy().decide_analyse(&req, &[]) {
            return Err(ServiceError::PurposeNotDeclarable(purpose.key.clone()));
        }
        for &c in categories {
            if !self.door().policy().decide_analyse(&req, &[c]) {
                let detail = if purpose.categories.contains(&c) {
                    format!("no policy lets this caller use {} in analytics", c.as_str())
                } else {
                    format!(
                        "the query uses {}, which purpose {} does not cover",
                        c.as_str(),
                        purpose.key
                    )
                };
                return Err(ServiceError::Forbidden {
                    field: "of",
                    detail,
                });
            }
        }
        Ok(())
    }

    /// Whether the policy lets `principal` analyse under the `analytics` purpose (the console
    /// offers its dashboard then); nothing recorded.
    pub fn may_analyse(&self, principal: &Principal) -> bool {
        self.purposes()
            .get("purpose", "analytics")
            .is_ok_and(|p| self.check_analysis(principal, &p, &[]).is_ok())
    }

    /// The caller's privacy budget under `purpose` in the current window (analysts, the DPO:
    /// whoever the policy lets analyse under it).
    pub async fn analytics_budget(
        &self,
        principal: &Principal,
        purpose: &str,
    ) -> ServiceResult<BudgetView> {
        let purpose = self.purposes().get("purpose", purpose)?;
        self.check_analysis(principal, &purpose, &[])?;
        let now = Timestamp::now().millis();
        let (eps, delta) = self
            .store
            .spent(
                &analyst_of(principal),
                &purpose.key,
                analytics::window_start(now),
            )
            .await?;
        let budget = self.budget_milli();
        Ok(BudgetView {
            purpose: purpose.key.clone(),
            epsilon_spent: milli(eps),
            epsilon_left: milli((budget - eps).max(0)),
            delta_spent: nano(delta),
            delta_left: nano((i64::from(analytics::DELTA_BUDGET_NANO) - delta).max(0)),
            window_ends_at: Timestamp(analytics::window_end(now)),
        })
    }

    /// Answers an aggregate query with noise, charged to the caller's budget; the same query in
    /// the same window returns the stored answer at no cost. Refused before anything is read
    /// when the policy would use no customer for it or the budget would be exceeded.
    pub async fn analytics_query(
        &self,
        principal: &Principal,
        purpose: &str,
        input: QueryInput,
    ) -> ServiceResult<Answer> {
        // Run to the end whatever happens to the request: a release reserved from the budget is
        // either made and recorded, or given back; a client that hangs up never leaves one
        // charged and unrecorded.
        let (vault, principal, purpose) = (self.clone(), principal.clone(), purpose.to_owned());
        tokio::spawn(async move { vault.query_to_the_end(&principal, &purpose, input).await })
            .await
            .map_err(|_| ServiceError::Integrity)?
    }

    async fn query_to_the_end(
        &self,
        principal: &Principal,
        purpose: &str,
        input: QueryInput,
    ) -> ServiceResult<Answer> {
        let purpose = self.purposes().get("purpose", purpose)?;
        let query = input.validate()?;
        let segments = self.query_segments(&query).await?;
        let mut categories = query.categories();
        for (_, rule) in &segments {
            categories.extend(crate::segments::rule_categories(rule));
        }
        categories.sort();
        categories.dedup();
        let release = Release {
            canonical: query.canonical(),
            epsilon_milli: i64::from(query.epsilon_milli),
            delta_nano: i64::from(query.delta_nano),
            categories: categories.clone(),
        };
        let released = self
            .release_once(principal, &purpose, release, async || {
                let domain = self.public_domain(&query, &segments).await?;
                let now = Timestamp::now();
                let job = Arc::new(Job {
                    principal: principal.clone(),
                    purpose: purpose.clone(),
                    query: query.clone(),
                    categories: categories.clone(),
                    segments: segments.clone(),
                    acknowledged: self.notices.acknowledged(principal, now),
                    now,
                });
                let cells = self.aggregate(&job).await?;
                let released = noisy(move |rng| job.query.release(&cells, &domain, rng)).await?;
                serde_json::to_string(&rows_of(&query, released))
                    .map_err(|_| ServiceError::Integrity)
            })
            .await?;
        Ok(Answer {
            rows: serde_json::from_str(&released.answer).map_err(|_| ServiceError::Integrity)?,
            epsilon_spent: milli(released.epsilon_spent),
            delta_spent: nano(released.delta_spent),
            budget_left: milli(released.left),
            released_at: released.at,
        })
    }

    /// Releases an answer once per caller, purpose, window and query: decided (the policy
    /// lets the caller use `categories` under the purpose), charged to the budget in the
    /// transaction that stores it with its audit entry, or the stored answer again at no cost.
    /// `compute` runs only when a new release is within the budget.
    pub(crate) async fn release_once(
        &self,
        principal: &Principal,
        purpose: &Purpose,
        release: Release,
        compute: impl AsyncFnOnce() -> ServiceResult<String>,
    ) -> ServiceResult<ReleaseOutcome> {
        let names: Vec<&str> = release.categories.iter().map(|c| c.as_str()).collect();
        let record = |outcome: &str, epsilon: &str| {
            let mut leaf = crate::door::leaf(
                self.door().actor_parts(Actor::Principal(principal)),
                "analytics_release",
                None,
                &names,
                About {
                    subject: None,
                    purpose: Some(&purpose.key),
                },
                "used",
                outcome,
            );
            leaf.categories
                .insert("query".to_owned(), release.canonical.clone());
            leaf.categories
                .insert("epsilon".to_owned(), epsilon.to_owned());
            leaf.categories.insert(
                "delta".to_owned(),
                format!(
                    "{}",
                    nano(if epsilon == "0" {
                        0
                    } else {
                        release.delta_nano
                    })
                ),
            );
            leaf
        };
        if let Err(e) = self.check_analysis(principal, purpose, &release.categories) {
            self.door().audit().append(&record("deny", "0")).await?;
            return Err(e);
        }
        let analyst = analyst_of(principal);
        let now = Timestamp::now();
        let window = analytics::window_start(now.millis());
        let hash = steward_crypto::fingerprint(release.canonical.as_bytes()).into_bytes();
        let store = &self.store;
        let budget = self.budget_milli();
        let delta_budget = i64::from(analytics::DELTA_BUDGET_NANO);
        let stored = async |row: ReleaseRow| -> ServiceResult<ReleaseOutcome> {
            let (spent, _) = store.spent(&analyst, &purpose.key, window).await?;
            Ok(ReleaseOutcome {
                answer: row.answer,
                epsilon_spent: 0,
                delta_spent: 0,
                left: (budget - spent).max(0),
                at: Timestamp(row.released_at),
            })
        };
        if let Some(row) = store.release(&purpose.key, window, &hash).await? {
            // Post-processing of a released answer: recorded, nothing spent.
            self.door().audit().append(&record("repeat", "0")).await?;
            return stored(row).await;
        }
        let cost = (release.epsilon_milli, release.delta_nano);
        // Reserved before any work: however many requests arrive at once, no more computations
        // run than the budget pays for.
        if !store
            .reserve_budget(&analyst, &purpose.key, window, cost, (budget, delta_budget))
            .await?
        {
            self.door()
                .audit()
                .append(&record("over_budget", "0"))
                .await?;
            let (spent, spent_delta) = store.spent(&analyst, &purpose.key, window).await?;
            return Err(over_budget(
                budget,
                spent,
                delta_budget,
                spent_delta,
                cost.0,
            ));
        }
        let refund = async || {
            store
                .refund_budget(&analyst, &purpose.key, window, cost)
                .await
        };
        let answer = match compute().await {
            Ok(a) => a,
            Err(e) => {
                refund().await?;
                return Err(e);
            }
        };
        let row = ReleaseRow {
            analyst: analyst.clone(),
            purpose: purpose.key.clone(),
            window_start: window,
            query_hash: hash,
            query: release.canonical.clone(),
            answer: answer.clone(),
            epsilon_milli: cost.0,
            delta_nano: cost.1,
            released_at: now.millis(),
        };
        let leaf = record("done", &format!("{:.3}", milli(cost.0)));
        let recorded = match store
            .record_release(&row, &[crate::door::row_of(leaf)])
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // A commit that failed may still have landed: refund only if no release is there.
                if store
                    .release(&purpose.key, window, &row.query_hash)
                    .await?
                    .is_none()
                {
                    refund().await?;
                }
                return Err(e.into());
            }
        };
        match recorded {
            // INVARIANT: the release and its audit entry are committed, and its cost reserved,
            // before the answer leaves.
            Recorded::Stored => {
                let (spent, _) = store.spent(&analyst, &purpose.key, window).await?;
                Ok(ReleaseOutcome {
                    answer,
                    epsilon_spent: cost.0,
                    delta_spent: cost.1,
                    left: (budget - spent).max(0),
                    at: now,
                })
            }
            // Released meanwhile by a concurrent request: its answer, this reservation back.
            Recorded::Existing(row) => {
                refund().await?;
                stored(row).await
            }
        }
    }

    /// The caller's releases in the current window, newest first (the dashboard draws these
    /// and nothing else).
    pub async fn analytics_releases(
        &self,
        principal: &Principal,
        purpose: &str,
    ) -> ServiceResult<Vec<ReleasedQuery>> {
        let purpose = self.purposes().get("purpose", purpose)?;
        self.check_analysis(principal, &purpose, &[])?;
        let now = Timestamp::now().millis();
        let rows = self
            .store
            .releases(&purpose.key, analytics::window_start(now))
            .await?;
        rows.into_iter()
            .filter(|r| r.purpose == purpose.key)
            .map(|r| {
                let query: serde_json::Value =
                    serde_json::from_str(&r.query).map_err(|_| ServiceError::Integrity)?;
                let bad = |_| ServiceError::Integrity;
                // A survey's results are kept per question; a query's per group.
                let (rows, survey) = if query.get("survey").is_some() {
                    (
                        Vec::new(),
                        Some(serde_json::from_str(&r.answer).map_err(bad)?),
                    )
                } else {
                    (serde_json::from_str(&r.answer).map_err(bad)?, None)
                };
                Ok(ReleasedQuery {
                    query,
                    purpose: r.purpose,
                    rows,
                    survey,
                    epsilon: milli(r.epsilon_milli),
                    released_at: Timestamp(r.released_at),
                })
            })
            .collect()
    }

    /// Every analyst's spending in the current window (the DPO, as part of the audit).
    pub async fn analytics_budgets(&self, principal: &Principal) -> ServiceResult<Vec<BudgetUse>> {
        self.door()
            .authorize(principal, steward_policy::Action::ReadAudit, None)
            .await?;
        let now = Timestamp::now().millis();
        let budget = milli(self.budget_milli());
        let rows = self.store.budgets(analytics::window_start(now)).await?;
        let mut names: HashMap<String, String> = self
            .directory()
            .staff_directory()
            .await?
            .into_iter()
            .map(|m| (m.id.to_string(), m.name))
            .collect();
        for role in steward_domain::Role::ALL {
            names.insert(
                format!("role:{}", role.as_str()),
                format!("service tokens of role {}", role.as_str()),
            );
        }
        Ok(rows
            .into_iter()
            .map(|r| BudgetUse {
                name: names
                    .get(&r.analyst)
                    .cloned()
                    .unwrap_or_else(|| "a removed account".to_owned()),
                analyst: r.analyst,
                purpose: r.purpose,
                epsilon_spent: milli(r.epsilon_milli),
                delta_spent: nano(r.delta_nano),
                epsilon_budget: budget,
            })
            .collect())
    }

    /// The outlets' names by id, for labelling released groups (the policy lets the caller
    /// analyse under `purpose`; outlet names are the business's, not a customer's).
    pub async fn analytics_outlets(
        &self,
        principal: &Principal,
        purpose: &str,
    ) -> ServiceResult<Vec<(String, String)>> {
        let purpose = self.purposes().get("purpose", purpose)?;
        self.check_analysis(principal, &purpose, &[])?;
        Ok(self
            .directory()
            .outlets()
            .await?
            .into_iter()
            .map(|o| (o.id.to_string(), o.name))
            .collect())
    }

    /// The segments the query groups or filters by, with their rules as they validate now.
    async fn query_segments(&self, query: &Query) -> ServiceResult<Vec<(String, Rule)>> {
        let grouped = query.group_by.contains(&GroupKey::Segment);
        let filtered = query.filter.segment;
        if !grouped && filtered.is_none() {
            return Ok(Vec::new());
        }
        let rows = self.segments.segment_rows().await?;
        if let Some(id) = filtered
            && !rows.iter().any(|r| r.id == id)
        {
            return Err(ValidationError::new("filter.segment", "no such segment").into());
        }
        let wanted: Vec<_> = rows
            .into_iter()
            .filter(|r| grouped || Some(r.id) == filtered)
            .collect();
        if wanted.len() > MAX_SEGMENTS {
            return Err(ValidationError::new(
                "group_by",
                format!("more than {MAX_SEGMENTS} segments; filter by one"),
            )
            .into());
        }
        let mut out = Vec::new();
        for r in wanted {
            let segment = crate::segments::segment_of(r)?;
            let rule = self.segments.stored_rules(&segment).await?;
            out.push((segment.id.to_string(), rule));
        }
        Ok(out)
    }

    /// Every group of public keys: outlets (and `none`), tiers, channels, segments.
    async fn public_domain(
        &self,
        query: &Query,
        segments: &[(String, Rule)],
    ) -> ServiceResult<Vec<Vec<String>>> {
        if query.selects_partitions() {
            return Ok(Vec::new());
        }
        let mut outlets: Vec<String> = if query.group_by.contains(&GroupKey::Outlet) {
            self.directory()
                .outlets()
                .await?
                .into_iter()
                .map(|o| o.id.to_string())
                .collect()
        } else {
            Vec::new()
        };
        // Customers and interactions take the customer's outlets; a customer may have none.
        if query.of != Of::Purchases {
            outlets.push("none".to_owned());
        }
        let values = |k: GroupKey| match k {
            GroupKey::Outlet => outlets.clone(),
            GroupKey::Segment => segments.iter().map(|(id, _)| id.clone()).collect(),
            k => analytics::fixed_values(k),
        };
        Ok(analytics::public_domain(query, &values)?)
    }

    /// The exact totals, each customer's contribution bounded: one page read while the
    /// previous is counted (off the async threads).
    async fn aggregate(&self, job: &Arc<Job>) -> ServiceResult<Cells> {
        let q = &job.query;
        let keys = q.keys();
        let rules = || job.segments.iter().map(|(_, r)| r.needs());
        let purchases =
            q.of == Of::Purchases || keys.contains(&GroupKey::Tier) || rules().any(|n| n.purchases);
        let scan = SegmentScan {
            purchases,
            amounts: q.metric == Metric::Sum || q.currency.is_some() || rules().any(|n| n.amounts),
            interactions: q.of == Of::Interactions || rules().any(|n| n.interactions),
            language: rules().any(|n| n.language),
            consents: job.purpose.lawful_basis == LawfulBasis::Consent
                || rules().any(|n| !n.consents.is_empty()),
            items: false,
            outlets: q.of == Of::Purchases && keys.contains(&GroupKey::Outlet),
        };
        let mut page = self.segments.scan_page(None, PAGE, &scan).await?;
        let mut cells = Cells::default();
        while let Some(last) = page.customers.last().map(|c| c.id) {
            let (vault, job) = (self.clone(), job.clone());
            let counting = tokio::task::spawn_blocking(move || vault.aggregate_page(&job, page));
            let (counted, next) =
                tokio::join!(counting, self.segments.scan_page(Some(last), PAGE, &scan));
            cells.merge(counted.map_err(|_| ServiceError::Integrity)??);
            page = next?;
        }
        Ok(cells)
    }

    /// One page's bounded contributions (CPU only: deciding, unwrapping keys, opening facts).
    fn aggregate_page(&self, job: &Job, mut page: SegmentPage) -> ServiceResult<Cells> {
        let q = &job.query;
        let mut rng = OsWords::new();
        let mut cells = Cells::default();
        let mut rows: Vec<Row> = Vec::new();
        let walk = crate::segments::Walk {
            principal: &job.principal,
            purpose: &job.purpose,
            acknowledged: job.acknowledged,
            now: job.now,
        };
        let decide =
            |req: &ReadRequest<'_>| self.door().policy().decide_analyse(req, &job.categories);
        self.segments
            .walk_page(&mut page, &walk, &decide, &mut |u| {
                let c = u.customer;
                // Purchases in a category the DPO marked as a special category of data are in no
                // aggregate: not counted, summed, tiered or grouped (as for segments).
                let purchases: Vec<&steward_store::SegmentPurchase> = u
                    .purchases
                    .iter()
                    .filter(|p| !self.marked.is_marked(&p.category))
                    .collect();
                let sealed = c.language.is_some()
                    || purchases
                        .iter()
                        .any(|p| p.amount.is_some() || p.outlet.is_some());
                let key = match (sealed, u.key) {
                    (true, Some(k)) => Some(self.keys().open(c.id, k)?),
                    // Erased meanwhile: not counted.
                    (true, None) => return Ok(()),
                    (false, _) => None,
                };
                let mut amounts = Vec::with_capacity(purchases.len());
                for p in &purchases {
                    amounts.push(match (&p.amount, &key) {
                        (Some((sealed, currency)), Some(dk)) => Some((
                            crate::seal::open_amount(dk, c.id, &p.id, sealed)?,
                            currency.clone(),
                        )),
                        _ => None,
                    });
                }
                let memberships: Vec<String> = if job.segments.is_empty() {
                    Vec::new()
                } else {
                    let facts_purchases: Vec<PurchaseFact> = purchases
                        .iter()
                        .zip(&amounts)
                        .map(|(p, a)| PurchaseFact {
                            category: p.category.clone(),
                            at: p.occurred_at,
                            amount: a.clone(),
                        })
                        .collect();
                    let facts_interactions: Vec<InteractionFact> = u
                        .interactions
                        .iter()
                        .map(|(_, ch, at)| InteractionFact {
                            channel: Channel::parse(ch),
                            at: *at,
                        })
                        .collect();
                    let language = match (&c.language, &key) {
                        (Some(sealed), Some(dk)) => {
                            Some(crate::seal::open_language(dk, c.id, sealed)?)
                        }
                        _ => None,
                    };
                    let facts = Facts {
                        outlets: &c.outlets,
                        purchases: &facts_purchases,
                        interactions: &facts_interactions,
                        consents: u.consents,
                        language: language.as_deref(),
                    };
                    job.segments
                        .iter()
                        .filter(|(_, rule)| rule.matches(&facts, job.now.millis()))
                        .map(|(id, _)| id.clone())
                        .collect()
                };
                let tier = tier_of(purchases.len()).to_owned();
                let own_outlets: Vec<String> = if c.outlets.is_empty() {
                    vec!["none".to_owned()]
                } else {
                    c.outlets.iter().map(ToString::to_string).collect()
                };
                let common = |k: GroupKey| -> Vec<String> {
                    match k {
                        GroupKey::Tier => vec![tier.clone()],
                        GroupKey::Segment => memberships.clone(),
                        GroupKey::Outlet => own_outlets.clone(),
                        _ => Vec::new(),
                    }
                };
                rows.clear();
                match q.of {
                    Of::Customers => rows.extend(q.rows_of(&common, 1)),
                    Of::Purchases => {
                        for (&p, amount) in purchases.iter().zip(&amounts) {
                            if let Some(want) = &q.currency
                                && amount.as_ref().is_none_or(|(_, cur)| cur != want)
                            {
                                continue;
                            }
                            let outlet = match (&p.outlet, &key) {
                                (Some(sealed), Some(dk)) => Some(
                                    crate::seal::open_purchase_outlet(dk, c.id, &p.id, sealed)?
                                        .to_string(),
                                ),
                                _ => None,
                            };
                            // A purchase's outlet is its own, not the customer's.
                            let values = |k: GroupKey| match k {
                                GroupKey::Outlet => outlet.clone().into_iter().collect(),
                                GroupKey::Category => vec![p.category.clone()],
                                GroupKey::Month => vec![analytics::month_of(p.occurred_at)],
                                k => common(k),
                            };
                            let value = match (q.metric, amount) {
                                (Metric::Sum, Some((a, _))) => *a,
                                _ => 1,
                            };
                            rows.extend(q.rows_of(&values, value));
                        }
                    }
                    Of::Interactions => {
                        for (_, channel, at) in u.interactions {
                            let values = |k: GroupKey| match k {
                                GroupKey::Channel => vec![channel.clone()],
                                GroupKey::Month => vec![analytics::month_of(*at)],
                                k => common(k),
                            };
                            rows.extend(q.rows_of(&values, 1));
                        }
                    }
                }
                cells.add_customer(&mut rows, q.contributions, q.bounds, &mut rng);
                Ok(())
            })?;
        if rng.failed {
            return Err(ServiceError::Integrity);
        }
        Ok(cells)
    }
}

fn over_budget(
    budget: i64,
    spent: i64,
    delta_budget: i64,
    spent_delta: i64,
    eps: i64,
) -> ServiceError {
    let field = if spent + eps > budget {
        "epsilon"
    } else {
        "delta"
    };
    let detail = if spent + eps > budget {
        format!(
            "epsilon {} would exceed the privacy budget: {} of {} spent in this window, {} left",
            milli(eps),
            milli(spent),
            milli(budget),
            milli((budget - spent).max(0))
        )
    } else {
        format!(
            "delta would exceed the privacy budget's: {} of {} spent in this window",
            nano(spent_delta),
            nano(delta_budget)
        )
    };
    ServiceError::PrivacyBudget { field, detail }
}

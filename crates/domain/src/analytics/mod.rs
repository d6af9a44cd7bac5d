//! Analytics (issue 21): aggregate questions about customers, purchases and interactions,
//! answered with differentially private noise so that no answer depends much on any one
//! customer.
//!
//! A query is a count or a sum (of purchase amounts, clamped to declared bounds), grouped by up
//! to three of outlet, purchase category, month, channel, tier and segment, filtered by the
//! same. Each customer contributes at most `contributions` rows (chosen at random when they have
//! more), so the sensitivity is known before anything is read: `C` for a count, `C·max|bound|`
//! for a sum. Groups whose keys come from a public list (outlets, tiers, channels, segments) are
//! all released, empty ones included; groups whose keys come from the data (categories, months)
//! are released only when their noisy count reaches a threshold set by δ, so a query cannot
//! reveal that a rare group exists. The sampler is in [`noise`].

pub mod noise;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use noise::{OutOfRange, RandomWords, Scale};

use crate::search::TIERS;
use crate::{Channel, DataCategory, OutletId, SegmentId, ValidationError};

/// The privacy budget per analyst, purpose and window unless the operator sets another
/// (`serve --analytics-budget`): ε = 1.0, in thousandths.
pub const DEFAULT_BUDGET_MILLI: u32 = 1000;
/// The length of a budget window (days); windows start at the Unix epoch.
pub const WINDOW_DAYS: i64 = 30;
/// δ spent per window at most, in billionths (10⁻⁵).
pub const DELTA_BUDGET_NANO: u32 = 10_000;
/// δ of a query that needs one and names none (10⁻⁶), in billionths.
pub const DEFAULT_DELTA_NANO: u32 = 1_000;
/// Most rows one customer may contribute to one query.
pub const MAX_CONTRIBUTIONS: u32 = 100;
/// Most keys to group by.
pub const MAX_GROUP_BY: usize = 3;
/// Largest magnitude of a sum's bound (minor units): ten billion in major units.
pub const MAX_BOUND: i64 = 1_000_000_000_000;
/// The widest noise scale (sensitivity / ε) accepted.
pub const MAX_SCALE: u128 = 10_000_000_000_000;
/// Most groups a query over public keys may release.
pub const MAX_GROUPS: usize = 2_000;

const WINDOW_MS: i64 = WINDOW_DAYS * 86_400_000;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// How many rows.
    Count,
    /// The total of purchase amounts (minor units), each clamped to the bounds.
    Sum,
}

/// What is counted or summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Of {
    /// Customers (not erased).
    Customers,
    /// Purchases.
    Purchases,
    /// Interactions.
    Interactions,
}

/// A key to group or filter by.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GroupKey {
    /// The outlet: a purchase's own, otherwise the customer's (`none` when they have none).
    Outlet,
    /// A purchase's category.
    Category,
    /// The month (`YYYY-MM`, UTC) of a purchase or interaction.
    Month,
    /// An interaction's channel.
    Channel,
    /// The customer's purchase-history tier.
    Tier,
    /// A segment the customer is in.
    Segment,
}

impl GroupKey {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKey::Outlet => "outlet",
            GroupKey::Category => "category",
            GroupKey::Month => "month",
            GroupKey::Channel => "channel",
            GroupKey::Tier => "tier",
            GroupKey::Segment => "segment",
        }
    }

    /// Whether its values come from the data (and so need partition selection) rather than a
    /// list the business keeps or Steward fixes.
    pub fn from_data(self) -> bool {
        matches!(self, GroupKey::Category | GroupKey::Month)
    }

    /// Whether rows of `of` have this key.
    fn applies_to(self, of: Of) -> bool {
        match of {
            Of::Customers => matches!(self, GroupKey::Outlet | GroupKey::Tier | GroupKey::Segment),
            Of::Purchases => self != GroupKey::Channel,
            Of::Interactions => self != GroupKey::Category,
        }
    }
}

/// The body of `POST /v1/analytics/queries`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryInput {
    /// `count` or `sum` (sums are of purchase amounts, in minor units).
    pub metric: Metric,
    /// `customers`, `purchases` or `interactions`.
    pub of: Of,
    /// Up to three keys; `[]` is one row with an empty group.
    #[serde(default)]
    #[schema(max_items = 3)]
    pub group_by: Vec<GroupKey>,
    /// Only rows with these values.
    #[serde(default)]
    pub filter: FilterInput,
    /// The privacy parameter ε to spend (at least 0.001, at most the budget left).
    #[schema(minimum = 0.001, maximum = 1000.0, example = 0.5)]
    pub epsilon: f64,
    /// δ, for queries grouped by a key that comes from the data (category, month): the chance
    /// that a group one customer alone makes is released. Default 10⁻⁶, at most 10⁻⁵.
    #[schema(minimum = 0.000000001, maximum = 0.00001)]
    pub delta: Option<f64>,
    /// For sums: each amount is clamped to `[low, high]` (minor units) before adding.
    #[serde(default, deserialize_with = "crate::integral::optional_pair")]
    #[schema(min_items = 2, max_items = 2)]
    pub bounds: Option<[i64; 2]>,
    /// At most this many rows per customer count (default 1 for customers, 10 otherwise; at
    /// most 100).
    #[serde(default, deserialize_with = "crate::integral::optional")]
    #[schema(minimum = 1, maximum = 100)]
    pub contributions: Option<u32>,
    /// For purchases: only those in this currency (ISO 4217), so a sum adds like to like.
    #[schema(pattern = "^[A-Z]{3}$", example = "CHF")]
    pub currency: Option<String>,
}

/// A query's filter: each key present keeps only the rows with that value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterInput {
    /// An outlet's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlet: Option<OutletId>,
    /// A purchase category.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 100)]
    pub category: Option<String>,
    /// A month, `YYYY-MM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-11")]
    pub month: Option<String>,
    /// A channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// A tier: none, bronze, silver or gold.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(none|bronze|silver|gold)$")]
    pub tier: Option<String>,
    /// A segment's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<SegmentId>,
}

impl FilterInput {
    /// The keys present with their values, in key order.
    pub fn pairs(&self) -> Vec<(GroupKey, String)> {
        let mut v = Vec::new();
        let mut put = |k, x: Option<String>| {
            if let Some(x) = x {
                v.push((k, x));
            }
        };
        put(GroupKey::Outlet, self.outlet.map(|o| o.to_string()));
        put(GroupKey::Category, self.category.clone());
        put(GroupKey::Month, self.month.clone());
        put(
            GroupKey::Channel,
            self.channel.map(|c| c.as_str().to_owned()),
        );
        put(GroupKey::Tier, self.tier.clone());
        put(GroupKey::Segment, self.segment.map(|s| s.to_string()));
        v
    }
}

/// A validated query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Count or sum.
    pub metric: Metric,
    /// Of what.
    pub of: Of,
    /// The keys, in the order asked, each once.
    pub group_by: Vec<GroupKey>,
    /// The filter, as given.
    pub filter: FilterInput,
    /// ε in thousandths.
    pub epsilon_milli: u32,
    /// δ in billionths (0 when the query needs none).
    pub delta_nano: u32,
    /// For sums, the clamp.
    pub bounds: Option<(i64, i64)>,
    /// Rows per customer at most.
    pub contributions: u32,
    /// For purchases, only this currency.
    pub currency: Option<String>,
}

impl QueryInput {
    /// Validates, naming the field at fault. ε is taken in thousandths, rounded down.
    pub fn validate(self) -> Result<Query, ValidationError> {
        if !self.epsilon.is_finite() || self.epsilon < 0.001 {
            return Err(ValidationError::new("epsilon", "must be at least 0.001"));
        }
        if self.epsilon > 1000.0 {
            return Err(ValidationError::new("epsilon", "must be at most 1000"));
        }
        let epsilon_milli = (self.epsilon * 1000.0).floor() as u32;
        let mut group_by = Vec::new();
        for k in self.group_by {
            if !k.applies_to(self.of) {
                return Err(ValidationError::new(
                    "group_by",
                    format!("{} is not a key of {}", k.as_str(), of_name(self.of)),
                ));
            }
            if group_by.contains(&k) {
                return Err(ValidationError::new("group_by", "names a key twice"));
            }
            group_by.push(k);
        }
        if group_by.len() > MAX_GROUP_BY {
            return Err(ValidationError::new("group_by", "at most three keys"));
        }
        for (k, v) in self.filter.pairs() {
            let field = format!("filter.{}", k.as_str());
            if !k.applies_to(self.of) {
                return Err(ValidationError::new(
                    field,
                    format!("is not a key of {}", of_name(self.of)),
                ));
            }
            match k {
                GroupKey::Month if !is_month(&v) => {
                    return Err(ValidationError::new(field, "must be a month, YYYY-MM"));
                }
                GroupKey::Tier if !TIERS.contains(&v.as_str()) => {
                    return Err(ValidationError::new(
                        field,
                        "one of none, bronze, silver or gold",
                    ));
                }
                GroupKey::Category if v.trim().is_empty() || v.chars().count() > 100 => {
                    return Err(ValidationError::new(field, "1 to 100 characters"));
                }
                _ => {}
            }
        }
        let bounds = match (self.metric, self.bounds) {
            (Metric::Count, Some(_)) => {
                return Err(ValidationError::new("bounds", "only sums take bounds"));
            }
            (Metric::Count, None) => None,
            (Metric::Sum, None) => {
                return Err(ValidationError::new("bounds", "a sum needs [low, high]"));
            }
            (Metric::Sum, Some([lo, hi])) => {
                if self.of != Of::Purchases {
                    return Err(ValidationError::new("metric", "only purchases are summed"));
                }
                if lo > hi {
                    return Err(ValidationError::new("bounds", "low must not exceed high"));
                }
                if lo.unsigned_abs().max(hi.unsigned_abs()) > MAX_BOUND.unsigned_abs() {
                    return Err(ValidationError::new("bounds", "at most 10^12 in magnitude"));
                }
                if lo == 0 && hi == 0 {
                    return Err(ValidationError::new("bounds", "[0, 0] sums nothing"));
                }
                Some((lo, hi))
            }
        };
        let contributions = match self.contributions {
            None if self.of == Of::Customers => 1,
            None => 10,
            Some(c) if (1..=MAX_CONTRIBUTIONS).contains(&c) => c,
            Some(_) => return Err(ValidationError::new("contributions", "1 to 100")),
        };
        let currency = match self.currency {
            None => None,
            Some(_) if self.of != Of::Purchases => {
                return Err(ValidationError::new(
                    "currency",
                    "only purchases have a currency",
                ));
            }
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => Some(c),
            Some(_) => {
                return Err(ValidationError::new(
                    "currency",
                    "three capital letters (ISO 4217)",
                ));
            }
        };
        let needs_delta = group_by.iter().any(|k| k.from_data());
        let delta_nano = match (needs_delta, self.delta) {
            (false, None) => 0,
            (false, Some(_)) => {
                return Err(ValidationError::new(
                    "delta",
                    "only for queries grouped by category or month",
                ));
            }
            (true, None) => DEFAULT_DELTA_NANO,
            (true, Some(d)) => {
                if !d.is_finite() || !(1e-9..=1e-5).contains(&d) {
                    return Err(ValidationError::new("delta", "must be 10^-9 to 10^-5"));
                }
                (d * 1e9).round() as u32
            }
        };
        // A noise scale beyond this answers nothing useful and only costs: refused.
        let bound = bounds.map_or(1, |(lo, hi): (i64, i64)| {
            lo.unsigned_abs().max(hi.unsigned_abs())
        });
        let scale =
            u128::from(contributions) * u128::from(bound) * 1000 / u128::from(epsilon_milli);
        if scale > MAX_SCALE {
            return Err(ValidationError::new(
                "epsilon",
                "too small for these bounds and contributions: the noise would swamp any answer (contributions × largest bound / epsilon must be at most 10^13)",
            ));
        }
        Ok(Query {
            metric: self.metric,
            of: self.of,
            group_by,
            filter: self.filter,
            epsilon_milli,
            delta_nano,
            bounds,
            contributions,
            currency,
        })
    }
}

fn of_name(of: Of) -> &'static str {
    match of {
        Of::Customers => "customers",
        Of::Purchases => "purchases",
        Of::Interactions => "interactions",
    }
}

fn is_month(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_digit())
        && matches!(s[5..].parse::<u8>(), Ok(1..=12))
}

/// The month (`YYYY-MM`, UTC) of a time in milliseconds.
pub fn month_of(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

/// The start (ms) of the budget window holding `now_ms`.
pub fn window_start(now_ms: i64) -> i64 {
    now_ms.div_euclid(WINDOW_MS) * WINDOW_MS
}

/// The end (ms) of the budget window holding `now_ms`.
pub fn window_end(now_ms: i64) -> i64 {
    window_start(now_ms) + WINDOW_MS
}

impl Query {
    /// The query's identity for reuse: its whole body, normalised, ε and δ included. The same
    /// text again in the same window gets the stored answer.
    pub fn canonical(&self) -> String {
        serde_json::json!({
            "metric": self.metric,
            "of": self.of,
            "group_by": self.group_by,
            "filter": self.filter,
            "epsilon_milli": self.epsilon_milli,
            "delta_nano": self.delta_nano,
            "bounds": self.bounds.map(|(l, h)| [l, h]),
            "contributions": self.contributions,
            "currency": self.currency,
        })
        .to_string()
    }

    /// Whether any key's values come from the data (partition selection applies).
    pub fn selects_partitions(&self) -> bool {
        self.group_by.iter().any(|k| k.from_data())
    }

    /// The data categories the query uses, besides those of the segments it names: purchases'
    /// facts are purchase history (their amounts financial too), interactions' channels and
    /// times are communications, and tiers and outlets come from the purchase history.
    pub fn categories(&self) -> Vec<DataCategory> {
        let mut c = Vec::new();
        match self.of {
            Of::Purchases => c.push(DataCategory::PurchaseHistory),
            Of::Interactions => c.push(DataCategory::Communications),
            Of::Customers => {}
        }
        // Amounts are financial: summed, or opened to keep one currency.
        if self.metric == Metric::Sum || self.currency.is_some() {
            c.push(DataCategory::Financial);
        }
        let keys = self
            .group_by
            .iter()
            .copied()
            .chain(self.filter.pairs().into_iter().map(|(k, _)| k));
        for k in keys {
            if matches!(k, GroupKey::Tier | GroupKey::Outlet | GroupKey::Category) {
                c.push(DataCategory::PurchaseHistory);
            }
        }
        c.sort();
        c.dedup();
        c
    }

    /// Every key the query reads: grouped by or filtered on.
    pub fn keys(&self) -> Vec<GroupKey> {
        let mut k: Vec<GroupKey> = self.group_by.clone();
        k.extend(self.filter.pairs().into_iter().map(|(k, _)| k));
        k.sort();
        k.dedup();
        k
    }

    /// The rows one fact (a customer, purchase or interaction) makes: none if the filter
    /// excludes it, otherwise one per combination of its values of the grouped keys (a
    /// customer in two segments makes two rows when grouped by segment). `values` gives a
    /// key's values for this fact.
    pub fn rows_of(&self, values: &dyn Fn(GroupKey) -> Vec<String>, value: i64) -> Vec<Row> {
        for (k, want) in self.filter.pairs() {
            if !values(k).contains(&want) {
                return Vec::new();
            }
        }
        let mut groups: Vec<Vec<String>> = vec![Vec::new()];
        for &k in &self.group_by {
            groups = cross(groups, &values(k));
        }
        groups
            .into_iter()
            .map(|group| Row { group, value })
            .collect()
    }

    /// The noise scale of counts (for a sum with partition selection, of the count that
    /// selects, on half of ε).
    fn count_scale(&self) -> Result<Scale, OutOfRange> {
        let halves = if self.metric == Metric::Sum && self.selects_partitions() {
            2
        } else {
            1
        };
        let s = Scale::new(u64::from(self.contributions), self.epsilon_milli)?;
        Ok(Scale {
            t: s.t * halves,
            ..s
        })
    }

    /// The noise scale of sums: `C·max|bound|/ε`, on half of ε with partition selection.
    fn sum_scale(&self) -> Result<Scale, OutOfRange> {
        let (lo, hi) = self.bounds.ok_or(OutOfRange)?;
        let bound = lo.unsigned_abs().max(hi.unsigned_abs());
        let halves = if self.selects_partitions() { 2 } else { 1 };
        let s = Scale::new(u64::from(self.contributions) * bound, self.epsilon_milli)?;
        Ok(Scale {
            t: s.t * halves,
            ..s
        })
    }

    /// Releases the answer from the exact cells: noise on every value, and, when a key comes
    /// from the data, only the groups whose noisy count reaches the threshold. `domain` lists
    /// every group of public keys (used when no key comes from the data; empty groups are
    /// released too, so absence reveals nothing).
    pub fn release(
        &self,
        cells: &Cells,
        domain: &[Vec<String>],
        rng: &mut dyn RandomWords,
    ) -> Result<Vec<Released>, OutOfRange> {
        let counts = self.count_scale()?;
        let count_ci = counts.ci95();
        let mut out = Vec::new();
        if self.selects_partitions() {
            let delta = f64::from(self.delta_nano) / 1e9;
            let tau = i64::try_from(counts.threshold(self.contributions, delta))
                .map_err(|_| OutOfRange)?;
            for (group, cell) in &cells.0 {
                let noisy = cell
                    .count
                    .checked_add(counts.sample(rng)?)
                    .ok_or(OutOfRange)?;
                if noisy < tau {
                    continue;
                }
                out.push(match self.metric {
                    Metric::Count => Released {
                        group: group.clone(),
                        value: noisy,
                        ci95: count_ci,
                    },
                    Metric::Sum => {
                        let sums = self.sum_scale()?;
                        Released {
                            group: group.clone(),
                            value: cell.sum.checked_add(sums.sample(rng)?).ok_or(OutOfRange)?,
                            ci95: sums.ci95(),
                        }
                    }
                });
            }
            return Ok(out);
        }
        let scale = match self.metric {
            Metric::Count => counts,
            Metric::Sum => self.sum_scale()?,
        };
        let ci95 = scale.ci95();
        for group in domain {
            let cell = cells.0.get(group).copied().unwrap_or_default();
            let exact = match self.metric {
                Metric::Count => cell.count,
                Metric::Sum => cell.sum,
            };
            out.push(Released {
                group: group.clone(),
                value: exact.checked_add(scale.sample(rng)?).ok_or(OutOfRange)?,
                ci95,
            });
        }
        Ok(out)
    }
}

/// One row a fact makes: its group's values (in `group_by` order) and its value (1 for a
/// count, the amount for a sum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The group's values.
    pub group: Vec<String>,
    /// The value before clamping.
    pub value: i64,
}

/// One group's exact totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    /// Rows.
    pub count: i64,
    /// Clamped values.
    pub sum: i64,
}

/// The exact totals per group, built one customer at a time with each customer's contribution
/// bounded. Never leaves the service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cells(pub BTreeMap<Vec<String>, Cell>);

impl Cells {
    /// Adds one customer's rows: at most `limit` of them, chosen uniformly at random when they
    /// have more (a partial Fisher–Yates shuffle), each value clamped to `bounds`.
    pub fn add_customer(
        &mut self,
        rows: &mut [Row],
        limit: u32,
        bounds: Option<(i64, i64)>,
        rng: &mut dyn RandomWords,
    ) {
        let keep = rows.len().min(limit as usize);
        if rows.len() > keep {
            for i in 0..keep {
                let span = (rows.len() - i) as u64;
                // A uniform index in [i, len): rejection keeps it unbiased.
                let zone = u64::MAX - (u64::MAX % span);
                let j = loop {
                    let r = rng.next_u64();
                    if r < zone {
                        break i + (r % span) as usize;
                    }
                };
                rows.swap(i, j);
            }
        }
        for row in &rows[..keep] {
            let cell = self.0.entry(row.group.clone()).or_default();
            cell.count += 1;
            let v = bounds.map_or(row.value, |(lo, hi)| row.value.clamp(lo, hi));
            cell.sum = cell.sum.saturating_add(v);
        }
    }

    /// Adds another set of totals (one page of customers) to these.
    pub fn merge(&mut self, other: Cells) {
        for (g, c) in other.0 {
            let cell = self.0.entry(g).or_default();
            cell.count += c.count;
            cell.sum = cell.sum.saturating_add(c.sum);
        }
    }
}

/// One released group: its noisy value and the half-width of its 95 % interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// The group's values, in `group_by` order.
    pub group: Vec<String>,
    /// The noisy value.
    pub value: i64,
    /// Half-width of the 95 % interval of the noise.
    pub ci95: u64,
}

/// Every combination of the public keys' values, in `group_by` order; `values` lists a key's
/// public values (outlets, tiers, channels, segments). A filtered key keeps only its value.
pub fn public_domain(
    query: &Query,
    values: &dyn Fn(GroupKey) -> Vec<String>,
) -> Result<Vec<Vec<String>>, ValidationError> {
    let filters = query.filter.pairs();
    let mut groups: Vec<Vec<String>> = vec![Vec::new()];
    for &k in &query.group_by {
        let vs = match filters.iter().find(|(f, _)| *f == k) {
            Some((_, v)) => vec![v.clone()],
            None => values(k),
        };
        if groups.len().saturating_mul(vs.len()) > MAX_GROUPS {
            return Err(ValidationError::new(
                "group_by",
                format!("more than {MAX_GROUPS} groups; filter or group by fewer keys"),
            ));
        }
        groups = cross(groups, &vs);
    }
    Ok(groups)
}

/// Every group extended by every value.
fn cross(groups: Vec<Vec<String>>, values: &[String]) -> Vec<Vec<String>> {
    groups
        .into_iter()
        .flat_map(|g| {
            values.iter().map(move |v| {
                let mut g = g.clone();
                g.push(v.clone());
                g
            })
        })
        .collect()
}

/// The public values of the keys Steward fixes: tiers and channels.
pub fn fixed_values(key: GroupKey) -> Vec<String> {
    match key {
        GroupKey::Tier => TIERS.iter().map(|t| (*t).to_owned()).collect(),
        GroupKey::Channel => Channel::ALL.iter().map(|c| c.as_str().to_owned()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;

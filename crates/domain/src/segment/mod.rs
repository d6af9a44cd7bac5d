//! Segments (issue 18): who a campaign reaches, as rules over facts Steward already holds.
//!
//! A segment is a small JSON rule language, parsed here into [`Rule`] with every error naming
//! the rule it is about (`rules.all[1].purchased.within_days`). Rules combine with `all`, `any`
//! and `not`; the leaves are:
//!
//! | rule | holds when | data category used |
//! |---|---|---|
//! | `{"purchased": {"category"?, "within_days"?, "min_count"?, "max_count"?}}` | the number of purchases (of the category, in the window) lies in the band; `min_count` defaults to 1 | purchase history |
//! | `{"spent": {"currency", "within_days"?, "min_minor"?, "max_minor"?}}` | the total paid in that currency (minor units, in the window) lies in the band | purchase history, financial |
//! | `{"last_purchase": {"min_days"?, "max_days"?}}` | the latest purchase was between `min_days` and `max_days` days ago (no purchase: never) | purchase history |
//! | `{"tier": "none" \| "bronze" \| "silver" \| "gold"}` | the purchase-history tier | purchase history |
//! | `{"outlet": ID}` | registered at that outlet | purchase history (where someone shops is shown only with it) |
//! | `{"interacted": {"channel"?, "within_days"?}}` | an interaction (on that channel, in the window) | communications |
//! | `{"consent": {"purpose", "state": "granted" \| "withdrawn" \| "none"}}` | the customer's consent for a purpose | none (the consent ledger) |
//! | `{"language": TAG}` | the preferred language is the tag or a narrower one (`fr` holds for `fr-CH`) | language |
//!
//! `{"all": []}` is every customer; `{"any": []}` no one. The categories a segment uses are the
//! ones its evaluation must be allowed to use for the declared purpose; the evaluation itself
//! (who is in) happens in the service, and only a size leaves it.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::{Channel, DataCategory, OutletId, ValidationError};

mod describe;
mod parse;

/// Most rules (leaves and combinators) in one segment.
pub const MAX_RULES: usize = 64;
/// Deepest nesting of `all`, `any` and `not`.
pub const MAX_DEPTH: usize = 8;
/// The longest window a rule may name: ten years.
pub const MAX_DAYS: u32 = 3650;
/// Sizes below this are reported as "fewer than …" unless configured otherwise.
pub const DEFAULT_SIZE_THRESHOLD: u64 = 10;
/// The smallest threshold an installation may configure: a size of 1–4 singles people out.
pub const MIN_SIZE_THRESHOLD: u64 = 5;

const DAY_MS: i64 = 86_400_000;

/// A segment's rules, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Every rule holds (none: everyone).
    All(Vec<Rule>),
    /// At least one rule holds (none: no one).
    Any(Vec<Rule>),
    /// The rule does not hold.
    Not(Box<Rule>),
    /// A count of purchases in a band.
    Purchased(Purchased),
    /// The total paid in a band.
    Spent(Spent),
    /// The latest purchase's age in days, in a band.
    LastPurchase {
        /// At least this many days ago.
        min_days: Option<u32>,
        /// At most this many days ago.
        max_days: Option<u32>,
    },
    /// The purchase-history tier.
    Tier(&'static str),
    /// Registered at the outlet.
    Outlet(OutletId),
    /// An interaction happened.
    Interacted {
        /// On this channel (any if absent).
        channel: Option<Channel>,
        /// In the last so many days (ever if absent).
        within_days: Option<u32>,
    },
    /// The consent for a purpose is in a state.
    Consent {
        /// The purpose's key.
        purpose: String,
        /// The state.
        state: ConsentRuleState,
    },
    /// The preferred language is this tag or a narrower one.
    Language(String),
}

/// A purchase-count band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchased {
    /// Only this product category (lower case, as purchases store it).
    pub category: Option<String>,
    /// Only the last so many days.
    pub within_days: Option<u32>,
    /// At least this many (default 1).
    pub min_count: u32,
    /// At most this many.
    pub max_count: Option<u32>,
}

/// A spending band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    /// ISO 4217 code: amounts in other currencies are not added.
    pub currency: String,
    /// Only the last so many days.
    pub within_days: Option<u32>,
    /// At least this much (minor units).
    pub min_minor: Option<i64>,
    /// At most this much (minor units).
    pub max_minor: Option<i64>,
}

/// A consent state a rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentRuleState {
    /// The latest event is a grant.
    Granted,
    /// The latest event is a withdrawal.
    Withdrawn,
    /// No event at all.
    None,
}

impl ConsentRuleState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Withdrawn => "withdrawn",
            Self::None => "none",
        }
    }
}

/// What the rules may refer to, for the checks that need the registry and the directory.
pub struct Known<'a> {
    /// The purposes' keys.
    pub purposes: &'a [String],
    /// The outlets' ids.
    pub outlets: &'a [OutletId],
}

/// What evaluating a segment needs read, beyond the customers themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Purchases' categories and times.
    pub purchases: bool,
    /// Purchases' amounts and currencies (sealed: the evaluation opens them).
    pub amounts: bool,
    /// Interactions' channels and times.
    pub interactions: bool,
    /// The preferred language (sealed).
    pub language: bool,
    /// The purposes whose consent state a rule asks about.
    pub consents: BTreeSet<String>,
}

/// One purchase, as far as segments look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseFact {
    /// The product category.
    pub category: String,
    /// When (ms).
    pub at: i64,
    /// The amount and currency, when the rules need them (opened inside the service).
    pub amount: Option<(i64, String)>,
}

/// One interaction, as far as segments look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InteractionFact {
    /// The channel.
    pub channel: Option<Channel>,
    /// When (ms).
    pub at: i64,
}

/// What the rules are evaluated on, for one customer.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The outlets the customer belongs to (where registered).
    pub outlets: &'a [OutletId],
    /// The purchases (all of them, in any order).
    pub purchases: &'a [PurchaseFact],
    /// The interactions.
    pub interactions: &'a [InteractionFact],
    /// The latest consent event per purpose asked about: (purpose, granted).
    pub consents: &'a [(String, bool)],
    /// The preferred language, if any and if needed.
    pub language: Option<&'a str>,
}

/// A segment's size as shown: "fewer than N" under the threshold, the number itself up to 99,
/// and rounded to two significant digits from 100 up (1,234 is 1,200), so that two segments
/// that differ by one customer rarely show different sizes (issue 18 review: differencing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentSize {
    /// The number of customers (rounded from 100 up).
    Exact(u64),
    /// Fewer than this many (the threshold).
    FewerThan(u64),
}

impl SegmentSize {
    /// `size` as shown under `threshold` (never below [`MIN_SIZE_THRESHOLD`]).
    pub fn shown(size: u64, threshold: u64) -> Self {
        let threshold = threshold.max(MIN_SIZE_THRESHOLD);
        if size < threshold {
            return Self::FewerThan(threshold);
        }
        let digits = size.checked_ilog10().unwrap_or(0) + 1;
        if digits <= 2 {
            return Self::Exact(size);
        }
        let unit = 10u64.pow(digits - 2);
        Self::Exact((size + unit / 2) / unit * unit)
    }
}

impl Serialize for SegmentSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Exact(n) => s.serialize_u64(*n),
            Self::FewerThan(t) => s.serialize_str(&format!("fewer than {t}")),
        }
    }
}

impl std::fmt::Display for SegmentSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(n) => write!(f, "{n}"),
            Self::FewerThan(t) => write!(f, "fewer than {t}"),
        }
    }
}

/// The tier of a history of `n` purchases: one of [`TIERS`].
pub fn tier_of(n: usize) -> &'static str {
    match n {
        0 => "none",
        1 => "bronze",
        2..=4 => "silver",
        _ => "gold",
    }
}

impl Rule {
    /// Parses and validates `rules` (the request's `rules` member).
    pub fn parse(rules: &Value, known: &Known<'_>) -> Result<Rule, ValidationError> {
        parse::Parser::new(known).rule(rules, "rules", 0)
    }

    /// The rules as JSON, in the form [`Rule::parse`] reads (how they are stored and shown).
    pub fn to_json(&self) -> Value {
        let days = |d: &Option<u32>| d.map(Value::from);
        let leaf = |name: &str, fields: Vec<(&str, Option<Value>)>| {
            let body: Map<String, Value> = fields
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
                .collect();
            json!({ name: body })
        };
        match self {
            Rule::All(v) => json!({"all": v.iter().map(Rule::to_json).collect::<Vec<_>>()}),
            Rule::Any(v) => json!({"any": v.iter().map(Rule::to_json).collect::<Vec<_>>()}),
            Rule::Not(r) => json!({"not": r.to_json()}),
            Rule::Purchased(p) => leaf(
                "purchased",
                vec![
                    ("category", p.category.clone().map(Value::from)),
                    ("within_days", days(&p.within_days)),
                    ("min_count", Some(p.min_count.into())),
                    ("max_count", days(&p.max_count)),
                ],
            ),
            Rule::Spent(s) => leaf(
                "spent",
                vec![
                    ("currency", Some(s.currency.clone().into())),
                    ("within_days", days(&s.within_days)),
                    ("min_minor", s.min_minor.map(Value::from)),
                    ("max_minor", s.max_minor.map(Value::from)),
                ],
            ),
            Rule::LastPurchase { min_days, max_days } => leaf(
                "last_purchase",
                vec![("min_days", days(min_days)), ("max_days", days(max_days))],
            ),
            Rule::Tier(t) => json!({"tier": t}),
            Rule::Outlet(o) => json!({"outlet": o.to_string()}),
            Rule::Interacted {
                channel,
                within_days,
            } => leaf(
                "interacted",
                vec![
                    ("channel", channel.map(|c| c.as_str().into())),
                    ("within_days", days(within_days)),
                ],
            ),
            Rule::Consent { purpose, state } => {
                json!({"consent": {"purpose": purpose, "state": state.as_str()}})
            }
            Rule::Language(t) => json!({"language": t}),
        }
    }

    /// The data categories the rules use: what the declared purpose must cover.
    pub fn categories(&self) -> BTreeSet<CategoryUse> {
        let mut out = BTreeSet::new();
        self.walk(&mut |r| {
            let (used, path): (&[DataCategory], _) = match r {
                Rule::Purchased(_) => (&[DataCategory::PurchaseHistory], "purchased"),
                Rule::LastPurchase { .. } => (&[DataCategory::PurchaseHistory], "last_purchase"),
                Rule::Tier(_) => (&[DataCategory::PurchaseHistory], "tier"),
                // A read shows where a customer registered only with their purchase history.
                Rule::Outlet(_) => (&[DataCategory::PurchaseHistory], "outlet"),
                Rule::Spent(_) => (
                    &[DataCategory::PurchaseHistory, DataCategory::Financial],
                    "spent",
                ),
                Rule::Interacted { .. } => (&[DataCategory::Communications], "interacted"),
                Rule::Language(_) => (&[DataCategory::Language], "language"),
                _ => (&[], ""),
            };
            out.extend(used.iter().map(|&category| CategoryUse {
                category,
                rule: path,
            }));
        });
        out
    }

    /// What evaluating the rules needs read.
    pub fn needs(&self) -> Needs {
        let mut n = Needs::default();
        self.walk(&mut |r| match r {
            Rule::Purchased(_) | Rule::LastPurchase { .. } | Rule::Tier(_) => n.purchases = true,
            Rule::Spent(_) => {
                n.purchases = true;
                n.amounts = true;
            }
            Rule::Interacted { .. } => n.interactions = true,
            Rule::Language(_) => n.language = true,
            Rule::Consent { purpose, .. } => {
                n.consents.insert(purpose.clone());
            }
            _ => {}
        });
        n
    }

    fn walk(&self, f: &mut impl FnMut(&Rule)) {
        f(self);
        match self {
            Rule::All(v) | Rule::Any(v) => v.iter().for_each(|r| r.walk(f)),
            Rule::Not(r) => r.walk(f),
            _ => {}
        }
    }

    /// Whether a customer with `facts` is in the segment at `now_ms`.
    pub fn matches(&self, facts: &Facts<'_>, now_ms: i64) -> bool {
        let since = |days: Option<u32>| days.map(|d| now_ms - i64::from(d) * DAY_MS);
        let in_window = |at: i64, days: Option<u32>| since(days).is_none_or(|s| at >= s);
        match self {
            Rule::All(v) => v.iter().all(|r| r.matches(facts, now_ms)),
            Rule::Any(v) => v.iter().any(|r| r.matches(facts, now_ms)),
            Rule::Not(r) => !r.matches(facts, now_ms),
            Rule::Purchased(p) => {
                let n = facts
                    .purchases
                    .iter()
                    .filter(|f| {
                        in_window(f.at, p.within_days)
                            && p.category.as_deref().is_none_or(|c| f.category == c)
                    })
                    .count();
                let n = u64::try_from(n).unwrap_or(u64::MAX);
                n >= u64::from(p.min_count) && p.max_count.is_none_or(|m| n <= u64::from(m))
            }
            Rule::Spent(s) => {
                let total: i128 = facts
                    .purchases
                    .iter()
                    .filter(|f| in_window(f.at, s.within_days))
                    .filter_map(|f| f.amount.as_ref())
                    .filter(|(_, currency)| *currency == s.currency)
                    .map(|(a, _)| i128::from(*a))
                    .sum();
                s.min_minor.is_none_or(|m| total >= i128::from(m))
                    && s.max_minor.is_none_or(|m| total <= i128::from(m))
            }
            Rule::LastPurchase { min_days, max_days } => {
                let Some(latest) = facts.purchases.iter().map(|f| f.at).max() else {
                    return false;
                };
                let age = now_ms - latest;
                min_days.is_none_or(|d| age >= i64::from(d) * DAY_MS)
                    && max_days.is_none_or(|d| age <= i64::from(d) * DAY_MS)
            }
            Rule::Tier(t) => tier_of(facts.purchases.len()) == *t,
            Rule::Outlet(o) => facts.outlets.contains(o),
            Rule::Interacted {
                channel,
                within_days,
            } => facts.interactions.iter().any(|i| {
                in_window(i.at, *within_days) && channel.is_none_or(|c| i.channel == Some(c))
            }),
            Rule::Consent { purpose, state } => {
                let latest = facts
                    .consents
                    .iter()
                    .find(|(p, _)| p == purpose)
                    .map(|(_, g)| *g);
                match state {
                    ConsentRuleState::Granted => latest == Some(true),
                    ConsentRuleState::Withdrawn => latest == Some(false),
                    ConsentRuleState::None => latest.is_none(),
                }
            }
            Rule::Language(tag) => facts.language.is_some_and(|l| {
                l == tag
                    || (l.len() > tag.len()
                        && l.starts_with(tag.as_str())
                        && l.as_bytes()[tag.len()] == b'-')
            }),
        }
    }
}

/// A data category a segment uses, and the first kind of rule that uses it (for the error that
/// says which rule the purpose does not allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CategoryUse {
    /// The category.
    pub category: DataCategory,
    /// The kind of rule, e.g. `purchased`.
    pub rule: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outlet() -> OutletId {
        OutletId("0190a0a0-0000-7000-8000-000000000001".parse().unwrap())
    }

    fn known_purposes() -> Vec<String> {
        vec!["marketing_email".into(), "service".into()]
    }

    fn parse(v: Value) -> Result<Rule, ValidationError> {
        let purposes = known_purposes();
        let outlets = [outlet()];
        Rule::parse(
            &v,
            &Known {
                purposes: &purposes,
                outlets: &outlets,
            },
        )
    }

    fn p(category: &str, days_ago: i64, amount: Option<i64>) -> PurchaseFact {
        PurchaseFact {
            category: category.into(),
            at: NOW - days_ago * DAY_MS,
            amount: amount.map(|a| (a, "EUR".to_owned())),
        }
    }

    const NOW: i64 = 1_800_000_000_000;
    static OUTLETS: std::sync::LazyLock<[OutletId; 1]> = std::sync::LazyLock::new(|| [outlet()]);

    fn facts<'a>(purchases: &'a [PurchaseFact], consents: &'a [(String, bool)]) -> Facts<'a> {
        Facts {
            outlets: &*OUTLETS,
            purchases,
            interactions: &[],
            consents,
            language: Some("fr-CH"),
        }
    }

    #[test]
    fn the_contract_example_parses_and_round_trips() {
        let r = parse(json!({"purchased": {"category": "Watch", "within_days": 365}})).unwrap();
        assert_eq!(
            r.to_json(),
            json!({"purchased": {"category": "watch", "within_days": 365, "min_count": 1}})
        );
        assert_eq!(parse(r.to_json()).unwrap(), r);
        assert_eq!(parse(json!({"all": []})).unwrap(), Rule::All(vec![]));
    }

    #[test]
    fn errors_name_the_rule() {
        let e = parse(json!({"all": [{"tier": "gold"}, {"purchased": {"within_days": -1}}]}))
            .unwrap_err();
        assert_eq!(e.field, "rules.all[1].purchased.within_days");
        // An unknown rule or member is the client's text: the error names what holds it.
        let e = parse(json!({"any": [{"jane.doe@example.com": {}}]})).unwrap_err();
        assert_eq!(e.field, "rules.any[0]");
        assert!(!e.reason.contains("jane"), "{}", e.reason);
        let e = parse(json!({"not": {"purchased": {"jane.doe@example.com": "red"}}})).unwrap_err();
        assert_eq!(e.field, "rules.not.purchased");
        assert!(!e.reason.contains("jane"), "{}", e.reason);
        let days = parse(json!({"purchased": {"within_days": 30.0}})).unwrap();
        assert_eq!(
            days,
            parse(json!({"purchased": {"within_days": 30}})).unwrap()
        );
        let e = parse(json!({"consent": {"purpose": "nope", "state": "granted"}})).unwrap_err();
        assert_eq!(e.field, "rules.consent.purpose");
        let e = parse(json!({"outlet": "0190a0a0-0000-7000-8000-000000000002"})).unwrap_err();
        assert_eq!(
            (e.field.as_ref(), e.reason.as_ref()),
            ("rules.outlet", "no such outlet")
        );
        let e = parse(json!({"tier": "gold", "outlet": "x"})).unwrap_err();
        assert_eq!(e.field, "rules");
        let e = parse(json!({"spent": {"currency": "EUR"}})).unwrap_err();
        assert_eq!(e.field, "rules.spent");
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let mut deep = json!({"all": []});
        for _ in 0..=MAX_DEPTH {
            deep = json!({"not": deep});
        }
        assert!(parse(deep).unwrap_err().reason.contains("deep"));
        let wide = json!({"any": vec![json!({"tier": "gold"}); MAX_RULES]});
        assert!(parse(wide).unwrap_err().reason.contains("too many"));
    }

    #[test]
    fn rules_evaluate_on_facts() {
        let history = [
            p("watch", 10, Some(50_000)),
            p("watch", 400, Some(100_000)),
            p("strap", 30, Some(5_000)),
        ];
        let consents = [("marketing_email".to_owned(), true)];
        let f = facts(&history, &consents);
        let yes = |v: Value| parse(v).unwrap().matches(&f, NOW);
        assert!(yes(
            json!({"purchased": {"category": "watch", "within_days": 365}})
        ));
        assert!(!yes(
            json!({"purchased": {"category": "watch", "within_days": 365, "min_count": 2}})
        ));
        assert!(yes(
            json!({"purchased": {"category": "watch", "min_count": 2, "max_count": 2}})
        ));
        assert!(yes(
            json!({"spent": {"currency": "EUR", "min_minor": 55000, "within_days": 365}})
        ));
        assert!(!yes(json!({"spent": {"currency": "USD", "min_minor": 1}})));
        assert!(yes(json!({"last_purchase": {"max_days": 10}})));
        assert!(!yes(json!({"last_purchase": {"min_days": 11}})));
        assert!(yes(json!({"tier": "silver"})));
        assert!(yes(json!({"language": "fr"})));
        assert!(!yes(json!({"language": "fr-FR"})));
        assert!(yes(
            json!({"consent": {"purpose": "marketing_email", "state": "granted"}})
        ));
        assert!(yes(
            json!({"consent": {"purpose": "service", "state": "none"}})
        ));
        assert!(yes(json!({"outlet": outlet().to_string()})));
        assert!(!yes(json!({"interacted": {}})));
        assert!(yes(json!({"not": {"any": []}})));
        let none = facts(&[], &[]);
        assert!(
            !parse(json!({"last_purchase": {}}))
                .unwrap()
                .matches(&none, NOW)
        );
        assert!(parse(json!({"tier": "none"})).unwrap().matches(&none, NOW));
    }

    #[test]
    fn categories_and_needs_follow_the_rules() {
        let r = parse(json!({"all": [{"spent": {"currency": "EUR", "min_minor": 1}}, {"consent": {"purpose": "service", "state": "granted"}}]})).unwrap();
        let cats: Vec<_> = r.categories().into_iter().map(|c| c.category).collect();
        assert!(
            cats.contains(&DataCategory::Financial)
                && cats.contains(&DataCategory::PurchaseHistory)
        );
        assert_eq!(cats.len(), 2);
        let n = r.needs();
        assert!(n.purchases && n.amounts && !n.interactions && !n.language);
        assert_eq!(n.consents.into_iter().collect::<Vec<_>>(), ["service"]);
        let outlet_rule = parse(json!({"outlet": outlet().to_string()})).unwrap();
        let used: Vec<_> = outlet_rule
            .categories()
            .into_iter()
            .map(|c| c.category)
            .collect();
        assert_eq!(used, [DataCategory::PurchaseHistory]);
        let consent = parse(json!({"consent": {"purpose": "service", "state": "none"}})).unwrap();
        assert!(consent.categories().is_empty());
    }

    #[test]
    fn small_sizes_are_not_shown() {
        assert_eq!(SegmentSize::shown(9, 10), SegmentSize::FewerThan(10));
        assert_eq!(SegmentSize::shown(10, 10), SegmentSize::Exact(10));
        // The threshold never goes below five.
        assert_eq!(SegmentSize::shown(3, 1), SegmentSize::FewerThan(5));
        assert_eq!(
            serde_json::to_value(SegmentSize::FewerThan(10)).unwrap(),
            json!("fewer than 10")
        );
        assert_eq!(
            serde_json::to_value(SegmentSize::Exact(1234)).unwrap(),
            json!(1234)
        );
        // From 100 up, two significant digits.
        for (size, shown) in [
            (99, 99),
            (100, 100),
            (1_234, 1_200),
            (1_250, 1_300),
            (55_570, 56_000),
            (1_000_000, 1_000_000),
        ] {
            assert_eq!(
                SegmentSize::shown(size, 10),
                SegmentSize::Exact(shown),
                "{size}"
            );
        }
    }
}

//! A segment's rules in words, for people (the console shows these, not JSON).

use super::{ConsentRuleState, Rule};
use crate::OutletId;

fn window(days: Option<u32>) -> String {
    match days {
        Some(1) => " in the last day".to_owned(),
        Some(d) => format!(" in the last {d} days"),
        None => String::new(),
    }
}

fn band(lo: Option<String>, hi: Option<String>) -> String {
    match (lo, hi) {
        (Some(l), Some(h)) if l == h => format!("exactly {l}"),
        (Some(l), Some(h)) => format!("between {l} and {h}"),
        (Some(l), None) => format!("at least {l}"),
        (None, Some(h)) => format!("at most {h}"),
        (None, None) => "any".to_owned(),
    }
}

impl Rule {
    /// The rules as a sentence, e.g. `bought watch in the last 365 days, and tier gold`;
    /// `outlet` names an outlet, `money` writes an amount in minor units of a currency.
    pub fn describe(
        &self,
        outlet: &dyn Fn(OutletId) -> String,
        money: &dyn Fn(i64, &str) -> String,
    ) -> String {
        let list = |v: &[Rule], joiner: &str| {
            v.iter()
                .map(|r| match r {
                    Rule::All(_) | Rule::Any(_) => format!("({})", r.describe(outlet, money)),
                    _ => r.describe(outlet, money),
                })
                .collect::<Vec<_>>()
                .join(joiner)
        };
        match self {
            Rule::All(v) if v.is_empty() => "every customer".to_owned(),
            Rule::Any(v) if v.is_empty() => "no customer".to_owned(),
            Rule::All(v) => list(v, ", and "),
            Rule::Any(v) => list(v, ", or "),
            Rule::Not(r) => format!("not ({})", r.describe(outlet, money)),
            Rule::Purchased(p) => {
                let what = p.category.as_deref().unwrap_or("anything");
                let count = match (p.min_count, p.max_count) {
                    (1, None) => String::new(),
                    (lo, hi) => format!(
                        " ({} purchases)",
                        band((lo > 0).then(|| lo.to_string()), hi.map(|h| h.to_string()))
                    ),
                };
                format!("bought {what}{count}{}", window(p.within_days))
            }
            Rule::Spent(s) => format!(
                "spent {}{}",
                band(
                    s.min_minor.map(|m| money(m, &s.currency)),
                    s.max_minor.map(|m| money(m, &s.currency))
                ),
                window(s.within_days)
            ),
            Rule::LastPurchase { min_days, max_days } => format!(
                "last bought {} days ago",
                band(
                    min_days.map(|d| d.to_string()),
                    max_days.map(|d| d.to_string())
                )
            ),
            Rule::Tier(t) => format!("tier {t}"),
            Rule::Outlet(o) => format!("registered at {}", outlet(*o)),
            Rule::Interacted {
                channel,
                within_days,
            } => format!(
                "was in touch{}{}",
                channel
                    .map(|c| format!(" by {}", c.as_str().replace('_', " ")))
                    .unwrap_or_default(),
                window(*within_days)
            ),
            Rule::Consent { purpose, state } => match state {
                ConsentRuleState::Granted => format!("consents to {purpose}"),
                ConsentRuleState::Withdrawn => format!("withdrew consent to {purpose}"),
                ConsentRuleState::None => format!("never answered about {purpose}"),
            },
            Rule::Language(t) => format!("prefers language {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{Known, Rule};

    #[test]
    fn rules_read_as_sentences() {
        let purposes = vec!["personalisation".to_owned()];
        let r = Rule::parse(
            &json!({"all": [
                {"purchased": {"category": "watch", "within_days": 365}},
                {"any": [{"tier": "gold"}, {"spent": {"currency": "CHF", "min_minor": 500000}}]},
                {"not": {"consent": {"purpose": "personalisation", "state": "withdrawn"}}}
            ]}),
            &Known {
                purposes: &purposes,
                outlets: &[],
            },
        )
        .unwrap();
        let text = r.describe(&|o| o.to_string(), &|m, c| format!("{c} {}", m / 100));
        assert_eq!(
            text,
            "bought watch in the last 365 days, and (tier gold, or spent at least CHF 5000), and not (withdrew consent to personalisation)"
        );
        assert_eq!(
            Rule::All(vec![]).describe(&|o| o.to_string(), &|_, _| String::new()),
            "every customer"
        );
    }
}

//! The JSON form of a segment's rules, read into [`Rule`]; every error names the rule's path.

use serde_json::{Map, Value};

use super::{ConsentRuleState, Known, MAX_DAYS, MAX_DEPTH, MAX_RULES, Purchased, Rule, Spent};
use crate::search::TIERS;
use crate::{Channel, OutletId, ValidationError, normalize};

/// Reads the JSON form of the rules, counting them, with the path of each for its errors.
pub(super) struct Parser<'a> {
    known: &'a Known<'a>,
    rules: usize,
}

fn err(path: &str, reason: &'static str) -> ValidationError {
    ValidationError::new(path.to_owned(), reason)
}

impl<'a> Parser<'a> {
    pub(super) fn new(known: &'a Known<'a>) -> Self {
        Parser { known, rules: 0 }
    }
}

impl Parser<'_> {
    pub(super) fn rule(
        &mut self,
        v: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Rule, ValidationError> {
        self.rules += 1;
        if self.rules > MAX_RULES {
            return Err(err(path, "too many rules in one segment (at most 64)"));
        }
        if depth >= MAX_DEPTH {
            return Err(err(path, "rules nest too deep (at most 8 levels)"));
        }
        let Some(obj) = v.as_object() else {
            return Err(err(
                path,
                "must be an object with one rule, e.g. {\"all\": []}",
            ));
        };
        let mut it = obj.iter();
        let (Some((name, body)), None) = (it.next(), it.next()) else {
            return Err(err(path, "must hold exactly one rule"));
        };
        let here = format!("{path}.{name}");
        match name.as_str() {
            "all" | "any" => {
                let Some(items) = body.as_array() else {
                    return Err(err(&here, "must be a list of rules"));
                };
                let rules = items
                    .iter()
                    .enumerate()
                    .map(|(i, r)| self.rule(r, &format!("{here}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if name == "all" {
                    Rule::All(rules)
                } else {
                    Rule::Any(rules)
                })
            }
            "not" => Ok(Rule::Not(Box::new(self.rule(body, &here, depth + 1)?))),
            "purchased" => {
                let b = Body::of(
                    body,
                    &here,
                    &["category", "within_days", "min_count", "max_count"],
                )?;
                let category = b
                    .string("category")?
                    .map(|c| {
                        normalize::short_text("category", c)
                            .map(|c| c.to_lowercase())
                            .map_err(|_| {
                                err(
                                    &b.at("category"),
                                    "must be a product category of at most 200 characters",
                                )
                            })
                    })
                    .transpose()?;
                let min_count = b.count("min_count")?.unwrap_or(1);
                let max_count = b.count("max_count")?;
                if max_count.is_some_and(|m| m < min_count) {
                    return Err(err(&b.at("max_count"), "must not be below min_count"));
                }
                Ok(Rule::Purchased(Purchased {
                    category,
                    within_days: b.days("within_days")?,
                    min_count,
                    max_count,
                }))
            }
            "spent" => {
                let b = Body::of(
                    body,
                    &here,
                    &["currency", "within_days", "min_minor", "max_minor"],
                )?;
                let Some(currency) = b.string("currency")? else {
                    return Err(err(
                        &b.at("currency"),
                        "is required (amounts in different currencies are not added)",
                    ));
                };
                let currency = normalize::currency("currency", currency)
                    .map_err(|_| err(&b.at("currency"), "must be an ISO 4217 code such as EUR"))?;
                let (min_minor, max_minor) = (b.amount("min_minor")?, b.amount("max_minor")?);
                if let (Some(lo), Some(hi)) = (min_minor, max_minor)
                    && hi < lo
                {
                    return Err(err(&b.at("max_minor"), "must not be below min_minor"));
                }
                if min_minor.is_none() && max_minor.is_none() {
                    return Err(err(&here, "needs min_minor, max_minor or both"));
                }
                Ok(Rule::Spent(Spent {
                    currency,
                    within_days: b.days("within_days")?,
                    min_minor,
                    max_minor,
                }))
            }
            "last_purchase" => {
                let b = Body::of(body, &here, &["min_days", "max_days"])?;
                let (min_days, max_days) = (b.days("min_days")?, b.days("max_days")?);
                if let (Some(lo), Some(hi)) = (min_days, max_days)
                    && hi < lo
                {
                    return Err(err(&b.at("max_days"), "must not be below min_days"));
                }
                Ok(Rule::LastPurchase { min_days, max_days })
            }
            "tier" => {
                let t = body.as_str().and_then(|t| TIERS.iter().find(|x| **x == t));
                t.map(|t| Rule::Tier(t))
                    .ok_or_else(|| err(&here, "must be one of none, bronze, silver or gold"))
            }
            "outlet" => {
                let o = body
                    .as_str()
                    .and_then(|s| s.parse::<uuid::Uuid>().ok())
                    .map(OutletId);
                match o {
                    Some(o) if self.known.outlets.contains(&o) => Ok(Rule::Outlet(o)),
                    Some(_) => Err(err(&here, "no such outlet")),
                    None => Err(err(&here, "must be an outlet id (a UUID)")),
                }
            }
            "interacted" => {
                let b = Body::of(body, &here, &["channel", "within_days"])?;
                let channel = b
                    .string("channel")?
                    .map(|c| {
                        Channel::parse(c).ok_or_else(|| {
                            err(
                                &b.at("channel"),
                                "must be one of email, phone, in_store, web or social",
                            )
                        })
                    })
                    .transpose()?;
                Ok(Rule::Interacted {
                    channel,
                    within_days: b.days("within_days")?,
                })
            }
            "consent" => {
                let b = Body::of(body, &here, &["purpose", "state"])?;
                let purpose = match b.string("purpose")? {
                    Some(p) if self.known.purposes.iter().any(|k| k == p) => p.to_owned(),
                    Some(_) => return Err(err(&b.at("purpose"), "no such purpose")),
                    None => return Err(err(&b.at("purpose"), "is required")),
                };
                let state = match b.string("state")? {
                    Some("granted") => ConsentRuleState::Granted,
                    Some("withdrawn") => ConsentRuleState::Withdrawn,
                    Some("none") => ConsentRuleState::None,
                    _ => return Err(err(&b.at("state"), "must be granted, withdrawn or none")),
                };
                Ok(Rule::Consent { purpose, state })
            }
            "language" => body
                .as_str()
                .and_then(|t| normalize::language("language", t).ok())
                .map(Rule::Language)
                .ok_or_else(|| err(&here, "must be a BCP 47 language tag such as fr or en-GB")),
            // The unknown name came from the client (and may be personal): the error names the
            // object that holds it, never the name (found by API fuzzing).
            _ => Err(err(
                path,
                "holds a rule that is not known: use all, any, not, purchased, spent, last_purchase, tier, outlet, interacted, consent or language",
            )),
        }
    }
}

/// A leaf rule's object, with its members checked against the ones it takes.
struct Body<'a> {
    obj: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Body<'a> {
    fn of(v: &'a Value, path: &'a str, allowed: &[&str]) -> Result<Self, ValidationError> {
        let Some(obj) = v.as_object() else {
            return Err(err(path, "must be an object"));
        };
        // As for an unknown rule: the error names the rule, not the member it does not take.
        if obj.keys().any(|k| !allowed.contains(&k.as_str())) {
            return Err(ValidationError::new(
                path.to_owned(),
                format!(
                    "holds a member this rule does not take (it takes {})",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Self { obj, path })
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ValidationError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(err(&self.at(key), "must be a string")),
        }
    }

    fn number(
        &self,
        key: &str,
        lo: i64,
        hi: i64,
        reason: &'static str,
    ) -> Result<Option<i64>, ValidationError> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            // A whole number, also when written with a zero fraction (`3.0`, as JSON Schema's
            // `integer` admits it).
            Some(v) => v
                .as_i64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .filter(|n| (lo..=hi).contains(n))
                .map(Some)
                .ok_or_else(|| err(&self.at(key), reason)),
        }
    }

    fn days(&self, key: &str) -> Result<Option<u32>, ValidationError> {
        Ok(self
            .number(
                key,
                0,
                i64::from(MAX_DAYS),
                "must be a whole number of days from 0 to 3650",
            )?
            .and_then(|n| u32::try_from(n).ok()))
    }

    fn count(&self, key: &str) -> Result<Option<u32>, ValidationError> {
        Ok(self
            .number(
                key,
                0,
                1_000_000,
                "must be a whole number from 0 to 1000000",
            )?
            .and_then(|n| u32::try_from(n).ok()))
    }

    fn amount(&self, key: &str) -> Result<Option<i64>, ValidationError> {
        self.number(
            key,
            0,
            1_000_000_000_000_000,
            "must be a whole number of minor units from 0 to 10^18",
        )
    }
}

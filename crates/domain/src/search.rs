//! What a customer list asks for: part of a name, an outlet, a tier. Validated here, so the API,
//! the console and the service agree on what a query is.

use crate::{OutletId, Timestamp, ValidationError, normalize};

/// The tiers a purchase history falls in (see [`crate::PurchaseSummary`]).
pub const TIERS: [&str; 4] = ["none", "bronze", "silver", "gold"];

/// The longest name query accepted (characters).
pub const MAX_QUERY_CHARS: usize = 100;

/// A customer list's filters; empty lists everyone the caller may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    /// The words of a name query ([`normalize::name_words`]): each must begin a word of the name.
    pub name: Vec<String>,
    /// Only customers of this outlet.
    pub outlet: Option<OutletId>,
    /// Only customers whose purchase history, as the caller may know it, falls in this tier.
    pub tier: Option<&'static str>,
    /// Only customers with an active consent to this purpose (a consent-based purpose's key),
    /// where the caller may read their consents.
    pub consent: Option<String>,
    /// Only customers with a purchase or interaction on or after this time, where the caller is
    /// shown their purchases or interactions.
    pub active_since: Option<Timestamp>,
}

impl CustomerFilter {
    /// From the query parameters `q`, `outlet_id` (already parsed) and `tier`. A name query needs
    /// a word of two letters or more: shorter ones would match most customers.
    pub fn parse(
        q: Option<&str>,
        outlet: Option<OutletId>,
        tier: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let q = q.map(str::trim).filter(|q| !q.is_empty());
        let name = match q {
            None => Vec::new(),
            Some(q) if q.chars().count() > MAX_QUERY_CHARS => {
                return Err(ValidationError::new(
                    "q",
                    format!("a search is at most {MAX_QUERY_CHARS} characters"),
                ));
            }
            Some(q) => {
                let words = normalize::name_words(q);
                if !words.iter().any(|w| w.chars().count() >= 2) {
                    return Err(ValidationError::new(
                        "q",
                        "type at least two letters of a name",
                    ));
                }
                words
            }
        };
        let tier = match tier.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(
                TIERS
                    .iter()
                    .copied()
                    .find(|k| k.eq_ignore_ascii_case(t))
                    .ok_or_else(|| {
                        ValidationError::new("tier", "one of none, bronze, silver or gold")
                    })?,
            ),
        };
        Ok(Self {
            name,
            outlet,
            tier,
            consent: None,
            active_since: None,
        })
    }

    /// Adds the `consent` (a purpose key) and `active_since` (`YYYY-MM-DD`) filters.
    pub fn with_activity(
        mut self,
        consent: Option<&str>,
        active_since: Option<&str>,
    ) -> Result<Self, ValidationError> {
        if let Some(c) = consent.map(str::trim).filter(|c| !c.is_empty()) {
            let ok = c.len() <= 64
                && c.starts_with(|ch: char| ch.is_ascii_lowercase())
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
            if !ok {
                return Err(ValidationError::new(
                    "consent",
                    "a purpose key, e.g. marketing_email",
                ));
            }
            self.consent = Some(c.to_owned());
        }
        if let Some(d) = active_since.map(str::trim).filter(|d| !d.is_empty()) {
            let t = Timestamp::parse_rfc3339(&format!("{d}T00:00:00Z"))
                .filter(|_| d.len() == 10)
                .ok_or_else(|| ValidationError::new("active_since", "a date such as 2026-11-01"))?;
            self.active_since = Some(t);
        }
        Ok(self)
    }

    /// The query word that narrows the candidates most: the longest (at least two letters; the
    /// last of equally long ones).
    pub fn key_word(&self) -> Option<&str> {
        self.name
            .iter()
            .filter(|w| w.chars().count() >= 2)
            .max_by_key(|w| w.chars().count())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_the_bad_field() {
        let f = CustomerFilter::parse(Some(" Ada  Lov "), None, Some("Gold")).unwrap();
        assert_eq!(f.name, ["ada", "lov"]);
        assert_eq!(f.tier, Some("gold"));
        assert_eq!(
            f.key_word(),
            Some("lov"),
            "the longest word, the last of equals"
        );
        assert_eq!(
            CustomerFilter::parse(Some("  "), None, None).unwrap(),
            CustomerFilter::default()
        );
        assert_eq!(
            CustomerFilter::parse(Some("a"), None, None)
                .unwrap_err()
                .field,
            "q"
        );
        assert_eq!(
            CustomerFilter::parse(Some("--"), None, None)
                .unwrap_err()
                .field,
            "q"
        );
        let long = "x".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            CustomerFilter::parse(Some(&long), None, None)
                .unwrap_err()
                .field,
            "q"
        );
        assert_eq!(
            CustomerFilter::parse(None, None, Some("platinum"))
                .unwrap_err()
                .field,
            "tier"
        );
    }
}

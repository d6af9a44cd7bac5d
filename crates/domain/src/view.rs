//! What a read returns after the access policy decided it: only the fields it allows, some
//! masked or abstracted, and the decision itself so the caller knows what was left out and why.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Address;

/// Which fields a decision masked, abstracted or withheld, and the policies behind each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DecisionSummary {
    /// Fields shown in a masked form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
    /// Fields replaced by derived facts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub abstracted: Vec<String>,
    /// Fields left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
    /// For each field, the ids of the policies that decided it (empty: nothing permitted it).
    pub policies: BTreeMap<String, Vec<String>>,
}

/// Derived facts about a purchase history, given instead of items, prices, outlets and sellers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PurchaseSummary {
    /// `none`, `bronze` (1 purchase), `silver` (2–4), `gold` (5 or more).
    pub tier: &'static str,
    /// `0`, `1`, `2-4`, `5-9` or `10+`.
    pub purchase_count_band: &'static str,
    /// At least two watch purchases in the last three years.
    pub eligible_for_allocation: bool,
}

/// Masks an e-mail address: first character of the mailbox, then the domain (`j•••@example.com`).
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}•••@{domain}", local.chars().next().unwrap_or('•')),
        None => "•••".into(),
    }
}

/// Masks a phone number to its last four digits (`•••• ••• 4821`).
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("•••• ••• {tail}")
}

/// Masks an address to its country.
pub fn mask_address(a: &Address) -> Address {
    Address {
        country: a.country.clone(),
        ..Address::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_email("jane@example.com"), "j•••@example.com");
        assert_eq!(mask_phone("+442079464821"), "•••• ••• 4821");
        let a = Address {
            street: Some("1 Secret St".into()),
            city: Some("X".into()),
            postal_code: None,
            country: Some("GB".into()),
        };
        assert_eq!(
            mask_address(&a),
            Address {
                country: Some("GB".into()),
                ..Address::default()
            }
        );
    }
}

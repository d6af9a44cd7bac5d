//! Purchases: item, category, outlet, seller, amount and currency.

use serde::{Deserialize, Serialize};

use crate::{CustomerId, OutletId, PurchaseId, StaffId, Timestamp, ValidationError, normalize};

/// The body of `POST /v1/customers/{id}/purchases`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseInput {
    /// What was bought (e.g. a watch model).
    #[schema(format = "short-text")]
    pub item: String,
    /// Product category (e.g. `watches`); kept in clear for aggregate reports.
    #[schema(format = "short-text")]
    pub category: String,
    /// Where it was bought.
    pub outlet_id: OutletId,
    /// Who sold it.
    #[serde(default)]
    pub seller_id: Option<StaffId>,
    /// The amount in minor units (cents).
    // (At most 2^52 - 1 as the document states it: a whole number written as a float is read
    // exactly only below 2^52, see `integral`.)
    #[serde(deserialize_with = "crate::integral::deserialize")]
    #[schema(minimum = 0, maximum = 4_503_599_627_370_495_i64)]
    pub amount_minor: i64,
    /// ISO 4217 currency code.
    #[schema(format = "currency")]
    pub currency: String,
    /// When it happened (RFC 3339); now if absent.
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

/// A validated purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPurchase {
    /// The item.
    pub item: String,
    /// The product category.
    pub category: String,
    /// The outlet.
    pub outlet_id: OutletId,
    /// The seller.
    pub seller_id: Option<StaffId>,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When.
    pub occurred_at: Timestamp,
}

impl PurchaseInput {
    /// Validates the input, defaulting the time to `now`.
    pub fn validate(&self, now: Timestamp) -> Result<NewPurchase, ValidationError> {
        if self.amount_minor < 0 {
            return Err(ValidationError::new("amount_minor", "must not be negative"));
        }
        let category = normalize::short_text("category", &self.category)?.to_lowercase();
        Ok(NewPurchase {
            item: normalize::short_text("item", &self.item)?,
            category,
            outlet_id: self.outlet_id,
            seller_id: self.seller_id,
            amount_minor: self.amount_minor,
            currency: normalize::currency("currency", &self.currency)?,
            occurred_at: self.occurred_at.unwrap_or(now),
        })
    }
}

/// A purchase as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Purchase {
    /// Its id.
    pub id: PurchaseId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The item.
    pub item: String,
    /// The product category.
    pub category: String,
    /// The outlet.
    pub outlet_id: OutletId,
    /// The seller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<StaffId>,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// When.
    pub occurred_at: Timestamp,
}

//! Rows as stored: ids, times, sealed bytes and MACs. No plaintext personal values.

use steward_domain::{CustomerId, OutletId, ProfileField, StaffId, TokenId};

/// A key wrapped by a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The id of the wrapping master key.
    pub master_key_id: String,
    /// The wrapped key.
    pub wrapped: Vec<u8>,
}

/// A customer's row: each profile field sealed separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRow {
    /// Id.
    pub id: CustomerId,
    /// Registering outlet.
    pub outlet_id: Option<OutletId>,
    /// Creation time (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// The sealed profile fields, one per [`ProfileField::ALL`] in its order (each its own
    /// column, named as the field).
    pub fields: Vec<Option<Vec<u8>>>,
}

impl CustomerRow {
    /// The sealed value of `field`, if any.
    pub fn field(&self, field: ProfileField) -> Option<&[u8]> {
        let at = ProfileField::ALL.iter().position(|f| *f == field)?;
        self.fields.get(at)?.as_deref()
    }
}

/// The profile's columns, `prefix` before each (`c.name, c.email, …`), in [`ProfileField::ALL`]
/// order: the SQL names every field through this, never by hand.
pub(crate) fn profile_columns(prefix: &str) -> String {
    ProfileField::ALL
        .iter()
        .map(|f| format!("{prefix}{}", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A blind-index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// What is indexed: `email` or `phone`.
    pub kind: &'static str,
    /// The keyed MAC of the normalised value.
    pub mac: [u8; 16],
}

/// A new customer, ready to store.
#[derive(Debug, Clone)]
pub struct SealedCustomer {
    /// The sealed row.
    pub row: CustomerRow,
    /// The wrapped data key.
    pub key: StoredKey,
    /// The blind indexes.
    pub lookups: Vec<Lookup>,
}

/// An interaction row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionRow {
    /// Id (16 bytes, UUIDv7).
    pub id: Vec<u8>,
    /// Customer.
    pub customer_id: CustomerId,
    /// Channel name.
    pub channel: String,
    /// Source system.
    pub source: String,
    /// Time (ms).
    pub occurred_at: i64,
    /// Sealed text.
    pub body: Vec<u8>,
    /// The kinds of personal data found in the text (names joined by commas; never values).
    pub pii_types: String,
}

/// A purchase row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRow {
    /// Id (16 bytes, UUIDv7).
    pub id: Vec<u8>,
    /// Customer.
    pub customer_id: CustomerId,
    /// Product category (clear).
    pub category: String,
    /// Currency (clear).
    pub currency: String,
    /// Time (ms).
    pub occurred_at: i64,
    /// Sealed item.
    pub item: Vec<u8>,
    /// Sealed amount.
    pub amount: Vec<u8>,
    /// Sealed outlet id.
    pub outlet: Vec<u8>,
    /// Sealed seller id.
    pub seller: Option<Vec<u8>>,
}

/// An outlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutletRow {
    /// Id.
    pub id: OutletId,
    /// Name (business data, clear).
    pub name: String,
    /// Country (ISO 3166-1 alpha-2), if known: national phone numbers typed there.
    pub country: Option<String>,
    /// Creation time (ms).
    pub created_at: i64,
}

/// A staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRow {
    /// Id.
    pub id: StaffId,
    /// Sealed name.
    pub name: Vec<u8>,
    /// Role names, comma-separated.
    pub roles: String,
    /// Outlets they work at.
    pub outlet_ids: Vec<OutletId>,
    /// Creation time (ms).
    pub created_at: i64,
    /// When they were disabled (ms); a disabled staff member neither signs in nor authenticates.
    pub disabled_at: Option<i64>,
}

/// An API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Id.
    pub id: TokenId,
    /// Name (what it is for).
    pub name: String,
    /// Role.
    pub role: String,
    /// Argon2id PHC hash of the secret.
    pub secret_hash: String,
    /// Creation time (ms).
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
    /// The staff member it acts for; `None` for a service client acting in `role`.
    pub staff_id: Option<StaffId>,
    /// When it stops working (Unix ms); `None` for a token that lasts until revoked. Sign-in
    /// sessions expire.
    pub expires_at: Option<i64>,
    /// When it was last seen in use (Unix ms, kept at most every 30 seconds).
    pub last_used_at: Option<i64>,
    /// The recipient it acts for (issue 22); `None` for staff and service clients.
    pub recipient_id: Option<steward_domain::RecipientId>,
}

/// What the access policy needs to know about a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFacts {
    /// Outlets the customer belongs to: where they registered.
    pub outlets: Vec<OutletId>,
    /// Processing restricted.
    pub restricted: bool,
}

/// A consent ledger event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// Id (16 bytes, UUIDv7: orders the ledger).
    pub id: Vec<u8>,
    /// Customer.
    pub customer_id: CustomerId,
    /// Purpose key.
    pub purpose: String,
    /// `grant` or `withdraw`.
    pub action: String,
    /// `portal`, `in_store`, `api` or `gpc`.
    pub source: String,
    /// The notice version shown.
    pub notice_version: i64,
    /// When (ms).
    pub occurred_at: i64,
}

/// A purpose as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeRow {
    /// Key.
    pub key: String,
    /// Lawful basis (snake_case).
    pub lawful_basis: String,
    /// Fideslang data use.
    pub data_use: String,
    /// Data categories, JSON array.
    pub categories: String,
    /// Retention (days).
    pub retention_days: i64,
    /// Notice version.
    pub notice_version: i64,
    /// Notice text.
    pub notice_text: String,
    /// The roles that may declare the purpose, JSON array.
    pub roles: String,
    /// The rule for personal data found in texts (`keep`, `mask`, `redact`).
    pub pii_rule: String,
}

/// An access alert for the DPO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Id (16 bytes, UUIDv7).
    pub id: Vec<u8>,
    /// When (ms).
    pub occurred_at: i64,
    /// `break_glass`, `fraud_review` or `bulk_access`.
    pub kind: String,
    /// The principal's pseudonym (staff id or `token-<id>`).
    pub principal: String,
    /// The customer concerned, if one.
    pub customer_id: Option<CustomerId>,
    /// The declared purpose.
    pub purpose: String,
    /// What happened, without personal values.
    pub detail: String,
    /// The stated reason, sealed under the customer's data key (break-glass, fraud review).
    pub reason: Option<Vec<u8>>,
}

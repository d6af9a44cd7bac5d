//! Steward's storage: the [`Store`] trait, and its implementation on SQLite and PostgreSQL.
//!
//! The store is deliberately dumb: it keeps sealed bytes, ids, times and keyed MACs. It never
//! sees a key or a plaintext personal value, so nothing it logs or returns can leak one.
//! Both backends run the same SQL through sqlx's `Any` driver (every personal column is a BLOB
//! and every time an integer, which `Any` handles on both); what differs — connection set-up
//! and the migrations folder — lives in [`sqlite`] and [`postgres`].

mod analytics;
mod audit;
mod audit_append;
mod audit_index;
mod audit_outbox;
mod campaigns;
mod cluster;
mod contact;
mod erasure;
mod lookups;
mod merge;
mod messages;
mod notice;
mod personalisation;
mod pg_read;
mod portal;
pub mod postgres;
mod records;
mod rectification;
mod requests;
mod retention;
mod segments;
mod sharing;
mod sign_in;
mod sql;
pub mod sqlite;
mod sqlite_read;
mod surveys;

use std::sync::Arc;

pub use analytics::{BudgetRow, Recorded, ReleaseRow};
pub use audit::{AuditEntryRow, AuditExtension, AuditSealer, AuditTip, StoredAuditEntry, TreeHash};
pub use audit_append::AuditAppender;
pub use audit_outbox::{DrainReport, OutboxCheck, OutboxTagger};
pub use campaigns::{CampaignRow, DeliveryCounts, DeliveryRow, DeliveryState, Outcome, Sender};
pub use cluster::{ChangeFeed, ClusterStore, Feed, Lease, Taken};
pub use contact::ContactChangeRow;
pub use erasure::{CustomerStanding, Erased, ErasureRow};
pub use messages::{Bounced, MessageRow, ThreadRow};
pub use notice::{AcknowledgementRow, NoticeRow};
pub use portal::{PortalCodeRow, PortalSessionRow};
pub use records::*;
pub use rectification::ChangeRow;
pub use requests::RequestRow;
pub use retention::ActivityTable;
pub use segments::{SegmentCustomer, SegmentPage, SegmentPurchase, SegmentRow, SegmentScan};
pub use sharing::{
    AgreementRow, AgreementStored, DisclosureRow, NewDisclosure, NotificationRow, RecipientRow,
    Settled, Touched,
};
pub use sign_in::CredentialRow;
pub use sql::SqlStore;
pub use surveys::{Stored, SurveyCounts, SurveyRow};

use steward_domain::{
    AgreementId, CampaignId, CustomerId, DeliveryId, InteractionId, OutletId, RecipientId,
    SegmentId, StaffId, SurveyId, ThreadId, TokenId,
};

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A storage failure. Carries no personal values: the databases' messages name constraints and
/// columns, not values (PostgreSQL keeps a row's values in the error's detail, which sqlx's
/// message leaves out), and what is stored is ciphertext or a MAC anyway. So the text may be
/// logged for the operator; it is never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// One of the store's own SQLite connections (the audit writer's, the point reads') failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A schema migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row is malformed (e.g. an id of the wrong length).
    #[error("stored row is malformed: {0}")]
    Corrupt(&'static str),
    /// A database file could not be created.
    #[error("cannot create the database file: {0}")]
    Io(#[from] std::io::Error),
    /// A unique constraint was violated (e.g. an outlet name already taken).
    #[error("already exists")]
    Conflict,
    /// The operation is not offered on this backend; says what to use instead.
    #[error("not supported here: {0}")]
    Unsupported(&'static str),
    /// A connection of the store's own stopped answering (it is dropped; the next use opens
    /// another).
    #[error("the database stopped answering: {0}")]
    Unavailable(&'static str),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// The installation keys and the wrapped data keys (never a key in clear).
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// An installation key by name, if present.
    async fn keyring_get(&self, name: &str) -> StoreResult<Option<StoredKey>>;

    /// Stores an installation key unless one of that name exists; returns the stored one.
    async fn keyring_put_if_absent(&self, name: &str, key: &StoredKey) -> StoreResult<StoredKey>;

    /// All installation keys.
    async fn keyring_all(&self) -> StoreResult<Vec<(String, StoredKey)>>;

    /// A customer's wrapped data key.
    async fn customer_key(&self, id: CustomerId) -> StoreResult<Option<StoredKey>>;

    /// Up to `limit` customer data keys not wrapped by `master_key_id`.
    async fn data_keys_not_under(
        &self,
        master_key_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<(CustomerId, StoredKey)>>;

    /// Replaces wrapped data keys (after re-wrapping), in one transaction.
    async fn replace_data_keys(&self, keys: &[(CustomerId, StoredKey)]) -> StoreResult<()>;

    /// Replaces an installation key (after re-wrapping).
    async fn keyring_replace(&self, name: &str, key: &StoredKey) -> StoreResult<()>;

    /// Number of data keys wrapped by each master key id.
    async fn data_key_census(&self) -> StoreResult<Vec<(String, i64)>>;
}

/// Customers: sealed profiles, their blind indexes, change history and the facts the policy decides by.
#[async_trait::async_trait]
pub trait CustomerStore: Send + Sync + 'static {
    /// Inserts customers with their data keys and blind indexes, all in one transaction.
    async fn insert_customers(
        &self,
        customers: &[SealedCustomer],
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// One customer with their wrapped data key.
    async fn get_customer(&self, id: CustomerId) -> StoreResult<Option<(CustomerRow, StoredKey)>>;

    /// Customers in id order after `after`, at most `limit`.
    async fn list_customers(
        &self,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<(CustomerRow, StoredKey)>>;

    /// Customer ids in order after `after`, at most `limit` (a page, without the sealed rows);
    /// only customers of `outlet`, if given. Erased customers are left out.
    async fn list_customer_ids(
        &self,
        outlet: Option<OutletId>,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>>;

    /// [`CustomerStore::lookup`] a page at a time: customers whose index of `kind` holds `mac`,
    /// in id order after `after`, at most `limit`; only customers of `outlet`, if given.
    async fn lookup_page(
        &self,
        kind: &str,
        mac: &[u8; 16],
        outlet: Option<OutletId>,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>>;

    /// Other customers holding one of customer `id`'s index entries of `kinds` (a shared e-mail
    /// or phone), in id order, at most 20.
    async fn sharing_lookups(&self, id: CustomerId, kinds: &[&str])
    -> StoreResult<Vec<CustomerId>>;

    /// Up to `limit` customers (not erased) after `after`, in id order, with no index entry of
    /// `kind` listed: those stored before that index existed, to be indexed.
    async fn missing_lookup(
        &self,
        kind: &str,
        after: Option<CustomerId>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerId>>;

    /// Adds index entries (those already present are kept), in one transaction.
    async fn add_lookups(&self, entries: &[(CustomerId, Lookup)]) -> StoreResult<()>;

    /// Replaces a customer's sealed profile and blind indexes and records the change (previous
    /// values sealed); false if the customer is gone.
    async fn update_customer(
        &self,
        row: &CustomerRow,
        lookups: &[Lookup],
        change: &ChangeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// A customer's profile changes, oldest first (previous values sealed).
    async fn changes(&self, customer: CustomerId) -> StoreResult<Vec<ChangeRow>>;

    /// The profile fields marked verified; `None` if no such customer.
    async fn verified_fields(&self, customer: CustomerId) -> StoreResult<Option<Vec<String>>>;

    /// Marks exactly `fields` verified; false if no such customer.
    async fn set_verified_fields(
        &self,
        customer: CustomerId,
        fields: &[&str],
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Customers whose blind index of `kind` is `mac`.
    async fn lookup(&self, kind: &str, mac: &[u8]) -> StoreResult<Vec<CustomerId>>;

    /// Of `macs`, those some customer's blind index of `kind` holds, each with one such customer
    /// (for many look-ups at once: an import's duplicate check).
    async fn lookup_many(
        &self,
        kind: &str,
        macs: &[[u8; 16]],
    ) -> StoreResult<Vec<([u8; 16], CustomerId)>>;

    /// Number of customers.
    async fn count_customers(&self) -> StoreResult<i64>;

    /// One customer with their wrapped data key and policy facts, in one query (the read path).
    async fn get_customer_for_read(
        &self,
        id: CustomerId,
    ) -> StoreResult<Option<(CustomerRow, StoredKey, AccessFacts)>>;

    /// The policy facts of a customer (outlets, restriction); `None` if there is no such customer.
    async fn access_facts(&self, id: CustomerId) -> StoreResult<Option<AccessFacts>>;

    /// Sets or lifts a customer's restriction of processing; false if no such customer.
    async fn set_restricted(
        &self,
        id: CustomerId,
        restricted: bool,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;
}

/// Interactions and purchases, sealed, and their retention.
#[async_trait::async_trait]
pub trait ActivityStore: Send + Sync + 'static {
    /// Appends an interaction.
    async fn insert_interaction(
        &self,
        row: &InteractionRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// Appends an interaction reported from outside (a social event) unless one with the same
    /// `external_mac` is stored; false, writing nothing, if it is.
    async fn insert_external_interaction(
        &self,
        row: &InteractionRow,
        external_mac: &[u8],
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// A customer's interactions in id order after `after`.
    async fn list_interactions(
        &self,
        customer: CustomerId,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> StoreResult<Vec<InteractionRow>>;

    /// A customer's interactions newest first (by id), before `before`.
    async fn recent_interactions(
        &self,
        customer: CustomerId,
        before: Option<Vec<u8>>,
        limit: u32,
    ) -> StoreResult<Vec<InteractionRow>>;

    /// Appends a purchase.
    async fn insert_purchase(&self, row: &PurchaseRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// A customer's purchases in id order after `after`.
    async fn list_purchases(
        &self,
        customer: CustomerId,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> StoreResult<Vec<PurchaseRow>>;

    /// When the customer's latest purchase or interaction happened (ms), if any.
    async fn last_activity_at(&self, customer: CustomerId) -> StoreResult<Option<i64>>;

    /// A customer's purchases newest first (by id), before `before`.
    async fn recent_purchases(
        &self,
        customer: CustomerId,
        before: Option<Vec<u8>>,
        limit: u32,
    ) -> StoreResult<Vec<PurchaseRow>>;

    /// Moves a duplicate's activity to the survivor in one transaction: `interactions` and
    /// `purchases` are the duplicate's rows re-sealed for the survivor (same ids), its consent
    /// withdrawals are re-owned; no outlet link moves. False (nothing moved) if a row is no longer
    /// the duplicate's or the duplicate has rows not listed.
    async fn move_activity(
        &self,
        from: CustomerId,
        to: CustomerId,
        interactions: &[InteractionRow],
        purchases: &[PurchaseRow],
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Inserts interactions and purchases in one transaction (import, demo data).
    async fn insert_activity(
        &self,
        interactions: &[InteractionRow],
        purchases: &[PurchaseRow],
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// Customers with rows in `table` older than `before` (Unix ms), and how many.
    async fn expired_activity(
        &self,
        table: ActivityTable,
        before: i64,
        limit: u32,
    ) -> StoreResult<Vec<(CustomerId, i64)>>;

    /// Deletes a customer's rows in `table` older than `before`, with the disposal's audit
    /// entry in the same transaction (only if something was deleted). Returns the rows deleted.
    async fn dispose_activity(
        &self,
        customer: CustomerId,
        table: ActivityTable,
        before: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<u64>;

    /// Customers (not erased) with no change, activity or consent event since `before`.
    async fn inactive_customers(&self, before: i64, limit: u32) -> StoreResult<Vec<CustomerId>>;
}

/// Outlets and staff.
#[async_trait::async_trait]
pub trait DirectoryStore: Send + Sync + 'static {
    /// Adds an outlet; [`StoreError::Conflict`] if the name is taken.
    async fn insert_outlet(&self, row: &OutletRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// All outlets.
    async fn list_outlets(&self) -> StoreResult<Vec<OutletRow>>;

    /// Whether an outlet exists.
    async fn outlet_exists(&self, id: OutletId) -> StoreResult<bool>;

    /// Adds a staff member with their outlets.
    async fn insert_staff(&self, row: &StaffRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// All staff.
    async fn list_staff(&self) -> StoreResult<Vec<StaffRow>>;

    /// One staff member.
    async fn get_staff(&self, id: StaffId) -> StoreResult<Option<StaffRow>>;

    /// Disables a staff member at `at` (revoking every token and session they hold, in the same
    /// transaction) or, with `None`, enables them again; false if there is no such staff member.
    async fn set_staff_disabled(
        &self,
        id: StaffId,
        at: Option<i64>,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;
}

/// The consent ledger (append-only).
#[async_trait::async_trait]
pub trait ConsentStore: Send + Sync + 'static {
    /// Appends a consent event.
    async fn insert_consent(&self, row: &ConsentRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// A customer's consent ledger, oldest first.
    async fn consents(&self, customer: CustomerId) -> StoreResult<Vec<ConsentRow>>;

    /// Every consent event of every customer, oldest first: (customer id bytes, purpose,
    /// action, time). For the DPO's chart of consent over time.
    async fn consent_timeline(&self) -> StoreResult<Vec<(Vec<u8>, String, String, i64)>>;
}

/// The purpose registry, every version kept.
#[async_trait::async_trait]
pub trait PurposeStore: Send + Sync + 'static {
    /// Inserts the given purposes where their key is not yet present.
    async fn seed_purposes(&self, purposes: &[PurposeRow]) -> StoreResult<()>;

    /// Registers a new purpose (and its first version); `Conflict` if the key is taken.
    async fn insert_purpose(
        &self,
        purpose: &PurposeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// Replaces a purpose if it is still at `expected_version` with `expected_pii_rule` (false
    /// otherwise), keeping a new notice version beside the old ones.
    async fn update_purpose(
        &self,
        purpose: &PurposeRow,
        expected_version: i64,
        expected_pii_rule: &str,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// All purposes.
    async fn list_purposes(&self) -> StoreResult<Vec<PurposeRow>>;
}

/// The audit log: the outbox, the Merkle tree's entries and hashes, checkpoints, the by-customer index.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// The audit writer's appender: a connection of its own on SQLite, the log pool on
    /// PostgreSQL. Opened once per writer.
    async fn audit_appender(&self) -> StoreResult<Box<dyn AuditAppender>>;

    /// Records audit entries of actions that write nothing else to the database (an export, a
    /// key rotation starting), through the outbox, in one transaction.
    async fn record_audit(&self, entries: &[AuditEntryRow]) -> StoreResult<()>;

    /// Gives the store the tagger of pending audit entries (once; later calls are ignored).
    /// Until then every write that records an audit entry fails.
    fn tag_outbox_with(&self, tagger: std::sync::Arc<dyn OutboxTagger>);

    /// Checks every pending audit entry's tag with `tagger`; changes nothing.
    async fn check_audit_outbox(&self, tagger: &dyn OutboxTagger) -> StoreResult<OutboxCheck>;

    /// Moves up to `limit` entries from the audit outbox (written with the actions they record)
    /// into the log, exactly once. An entry whose tag does not check is not appended: the
    /// sealer's stand-in (`AuditSealer::refused`) is, and the report names it.
    async fn drain_audit_outbox(
        &self,
        limit: u32,
        sealer: &dyn AuditSealer,
        known: Option<AuditTip>,
    ) -> StoreResult<DrainReport>;

    /// The number of entries in the audit log.
    async fn audit_size(&self) -> StoreResult<u64>;

    /// The tree-hash columns of audit entries `indexes` (those that exist).
    async fn audit_entry_hashes(
        &self,
        indexes: &[u64],
    ) -> StoreResult<std::collections::HashMap<u64, Vec<u8>>>;

    /// Audit entries with index in `[start, end)`, in order.
    async fn audit_entries(&self, start: u64, end: u64) -> StoreResult<Vec<StoredAuditEntry>>;

    /// Every signed checkpoint (size, note), by size.
    async fn audit_checkpoints(&self) -> StoreResult<Vec<(u64, String)>>;

    /// The latest signed checkpoint.
    async fn latest_audit_checkpoint(&self) -> StoreResult<Option<(u64, String)>>;

    /// Stores a checkpoint signed apart from an append.
    async fn add_audit_checkpoint(&self, size: u64, note: &str) -> StoreResult<()>;

    /// Indexes up to `limit` more audit entries by customer; returns the new watermark.
    async fn index_audit(&self, limit: u64) -> StoreResult<u64>;

    /// A customer's audit entries, newest first, with index below `before`.
    async fn customer_audit(
        &self,
        customer: CustomerId,
        before: u64,
        limit: u32,
    ) -> StoreResult<Vec<StoredAuditEntry>>;

    /// The by-customer index's watermark: entries below it are indexed.
    async fn audit_index_watermark(&self) -> StoreResult<u64>;

    /// Every row of the by-customer index the access log reads, (customer id, entry index),
    /// handed to `page` `limit` at a time, all from one snapshot of the index.
    async fn audit_index_scan(
        &self,
        limit: u32,
        page: &mut (dyn FnMut(Vec<(Vec<u8>, u64)>) + Send),
    ) -> StoreResult<()>;

    /// The largest audit entry index stored, if any.
    async fn audit_extent(&self) -> StoreResult<Option<u64>>;

    /// Number of audit entries about a customer (tests and reports).
    async fn count_audit_entries(&self, customer: CustomerId) -> StoreResult<i64>;
}

/// Access alerts for the DPO.
#[async_trait::async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// Records an access alert.
    async fn insert_alert(&self, row: &AlertRow) -> StoreResult<()>;

    /// One access alert by id.
    async fn get_alert(&self, id: &[u8]) -> StoreResult<Option<AlertRow>>;

    /// Alerts, newest first, before `before` (an alert id), at most `limit`.
    async fn list_alerts(&self, before: Option<Vec<u8>>, limit: u32) -> StoreResult<Vec<AlertRow>>;
}

/// Tokens, sign-in sessions and staff credentials (hashes only).
#[async_trait::async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// Stores a new API token (its hash).
    async fn insert_token(&self, row: &TokenRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// An API token by id.
    async fn get_token(&self, id: TokenId) -> StoreResult<Option<TokenRow>>;

    /// Every API token and sign-in session, oldest first.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>>;

    /// Records that a token was seen in use at `at` (Unix ms).
    async fn touch_token(&self, id: TokenId, at: i64) -> StoreResult<()>;

    /// Revokes a token (with its audit entries); false if it was unknown or already revoked.
    async fn revoke_token(
        &self,
        id: TokenId,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Sign-in sessions that expired or were revoked before `before` (Unix ms): counted, or
    /// deleted when `delete`.
    async fn dead_sessions(&self, before: i64, delete: bool) -> StoreResult<u64>;

    /// Sets a staff member's sign-in credentials, replacing any they had, and in the same
    /// transaction revokes their live tokens named `session_name` (their sign-in sessions).
    async fn set_staff_credentials(
        &self,
        row: &CredentialRow,
        session_name: &str,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// The credentials whose login has this MAC.
    async fn staff_credentials(&self, login_mac: &[u8]) -> StoreResult<Option<CredentialRow>>;
}

/// The customer portal: one-time codes, sessions, and contact changes waiting for approval.
#[async_trait::async_trait]
pub trait PortalStore: Send + Sync + 'static {
    /// Stores a portal sign-in code (its MAC) with its audit entries.
    async fn insert_portal_code(
        &self,
        row: &PortalCodeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// Records a change of a customer's e-mail address or phone number, with its audit entries;
    /// a pending one supersedes the customer's earlier pending changes.
    async fn insert_contact_change(
        &self,
        row: &ContactChangeRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// Unconfirmed e-mail changes whose code went to the address with this blind index and still
    /// works at `now` (ms), newest first.
    async fn pending_contact_changes(
        &self,
        sent_to_mac: &[u8],
        now: i64,
    ) -> StoreResult<Vec<ContactChangeRow>>;

    /// Claims one try of a pending change's code before it is compared, atomically; false if
    /// `max_tries` are spent, it expired before `now` or it was confirmed.
    async fn claim_contact_change_try(
        &self,
        id: uuid::Uuid,
        max_tries: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// Marks a pending change confirmed at `now`, once (false if it was already, or expired or
    /// was superseded), and voids the customer's other pending changes.
    async fn confirm_contact_change(
        &self,
        id: uuid::Uuid,
        now: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// A customer's latest contact change that took effect, if any.
    async fn last_contact_change(
        &self,
        customer: CustomerId,
    ) -> StoreResult<Option<ContactChangeRow>>;

    /// A portal sign-in code by its challenge id.
    async fn portal_code(&self, id: uuid::Uuid) -> StoreResult<Option<PortalCodeRow>>;

    /// Claims one try of a challenge's code before it is checked, in one atomic step: false if
    /// `max_tries` are spent or the code expired before `now` (ms). Concurrent tries cannot share
    /// a count (issue 15, finding 4).
    async fn claim_portal_code_try(
        &self,
        id: uuid::Uuid,
        max_tries: i64,
        now: i64,
    ) -> StoreResult<bool>;

    /// Spends the code `code` and opens `session` in one transaction; false if the code was
    /// already spent (or is not this customer's).
    async fn open_portal_session(
        &self,
        code: uuid::Uuid,
        session: &PortalSessionRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// A portal session by id.
    async fn portal_session(&self, id: uuid::Uuid) -> StoreResult<Option<PortalSessionRow>>;

    /// Ends a portal session (with its audit entries); false if there was none.
    async fn close_portal_session(
        &self,
        id: uuid::Uuid,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Portal codes and sessions that expired before `before` (Unix ms): counted, or deleted
    /// when `delete`.
    async fn dead_portal(&self, before: i64, delete: bool) -> StoreResult<u64>;
}

/// Data-subject requests.
#[async_trait::async_trait]
pub trait RightsStore: Send + Sync + 'static {
    /// Records a new data-subject request.
    async fn insert_request(&self, row: &RequestRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// One data-subject request.
    async fn get_request(&self, id: steward_domain::RequestId) -> StoreResult<Option<RequestRow>>;

    /// Claims one try of an in-progress request's e-mailed code before it is checked, in one atomic
    /// step; the tries counted so far, this one included, or `None` if `max_tries` are spent or
    /// there is no code to try (issue 15, finding 7).
    async fn claim_request_code_try(
        &self,
        id: steward_domain::RequestId,
        max_tries: i64,
    ) -> StoreResult<Option<i64>>;

    /// Replaces a request's mutable columns if its status is still `was` (false otherwise).
    async fn update_request(
        &self,
        row: &RequestRow,
        was: &str,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Open and in-progress requests due before `due_before` (Unix ms), soonest first.
    async fn list_requests(
        &self,
        due_before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<RequestRow>>;
}

/// Legal holds, crypto-shredding and the purge that follows it.
#[async_trait::async_trait]
pub trait ErasureStore: Send + Sync + 'static {
    /// Whether a customer exists (not erased) and whether a legal hold blocks their erasure.
    async fn customer_standing(&self, id: CustomerId) -> StoreResult<CustomerStanding>;

    /// Sets (`Some` case reference) or lifts (`None`) a legal hold; false if no such customer.
    async fn set_legal_hold(
        &self,
        id: CustomerId,
        reference: Option<&str>,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Crypto-shreds a customer in one transaction: data key, blind-index entries, consent
    /// events, outlet links and the profile's ciphertext go; the erasure is recorded. The rows
    /// left are counted up to `count_up_to` per table (bounded work for any history).
    async fn erase_customer(
        &self,
        id: CustomerId,
        journal_seq: i64,
        at: i64,
        count_up_to: u64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<Erased>;

    /// Deletes up to `limit` ciphertext rows an erasure left; once none are left, the tombstone
    /// goes and the erasure is marked purged. Returns the rows deleted (0: complete).
    async fn purge_customer(&self, id: CustomerId, limit: u32, at: i64) -> StoreResult<u64>;

    /// Every erasure recorded, in journal order.
    async fn erasures(&self) -> StoreResult<Vec<ErasureRow>>;
}

/// The confidentiality notice and the staff's acknowledgements of it.
#[async_trait::async_trait]
pub trait NoticeStore: Send + Sync + 'static {
    /// Publishes a version of the notice; `Conflict` if that version exists (published meanwhile).
    async fn publish_notice(&self, row: &NoticeRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// The latest version, if any was published.
    async fn current_notice(&self) -> StoreResult<Option<NoticeRow>>;

    /// Records (or renews) a staff member's acknowledgement of a version.
    async fn acknowledge(
        &self,
        row: &AcknowledgementRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// Each staff member's latest acknowledgement.
    async fn latest_acknowledgements(&self) -> StoreResult<Vec<AcknowledgementRow>>;
}

/// Segments, and the paged reads their evaluation makes.
#[async_trait::async_trait]
pub trait SegmentStore: Send + Sync + 'static {
    /// Stores a new segment.
    async fn insert_segment(&self, row: &SegmentRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// One segment.
    async fn segment(&self, id: SegmentId) -> StoreResult<Option<SegmentRow>>;

    /// Every segment, newest first.
    async fn segments(&self) -> StoreResult<Vec<SegmentRow>>;

    /// Up to `limit` customers (not erased) after `after` in id order, with the facts `scan`
    /// asks for.
    async fn segment_page(
        &self,
        after: Option<CustomerId>,
        limit: u32,
        scan: &SegmentScan,
    ) -> StoreResult<SegmentPage>;
}

/// Campaigns: messages to segments under a marketing purpose.
#[async_trait::async_trait]
pub trait CampaignStore: Send + Sync + 'static {
    /// Stores a new campaign.
    async fn insert_campaign(&self, row: &CampaignRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// One campaign.
    async fn campaign(&self, id: CampaignId) -> StoreResult<Option<CampaignRow>>;

    /// Every campaign, newest first.
    async fn campaigns(&self) -> StoreResult<Vec<CampaignRow>>;

    /// The campaigns being sent, oldest start first.
    async fn campaigns_sending(&self) -> StoreResult<Vec<CampaignRow>>;

    /// Starts a draft: one queued delivery per member, the sender recorded, in one transaction
    /// with its audit entry; false if it was not a draft (nothing changed).
    async fn start_campaign(
        &self,
        id: CampaignId,
        sender: Sender,
        members: &[CustomerId],
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Claims up to `limit` queued deliveries for the claim `claim` (they become `sending`,
    /// committed) and returns them with their recipient (`None` if erased since), in id order.
    async fn claim_deliveries(
        &self,
        campaign: CampaignId,
        claim: &[u8; 16],
        limit: u32,
        at: i64,
    ) -> StoreResult<Vec<(DeliveryId, Option<CustomerId>)>>;

    /// Records, committed durably, that the hand-over of `rows` (delivery, the customer it was
    /// prepared for) begins; returns those `claim` still holds for that customer (only they may
    /// be handed over).
    async fn mark_handed(
        &self,
        claim: &[u8; 16],
        rows: &[(DeliveryId, CustomerId)],
        at: i64,
    ) -> StoreResult<Vec<DeliveryId>>;

    /// How many messages under `purpose` each of `customers` was claimed for since `since`
    /// (sending, sent or uncertain), for the frequency cap; customers with none are absent.
    async fn recent_messages(
        &self,
        customers: &[CustomerId],
        purpose: &str,
        since: i64,
    ) -> StoreResult<Vec<(CustomerId, u64)>>;

    /// Records what became of deliveries `claim` holds (rows it no longer holds are left alone).
    async fn record_outcomes(&self, claim: &[u8; 16], outcomes: &[Outcome]) -> StoreResult<()>;

    /// Settles claims older than `claimed_before` and never settled: `uncertain` where the
    /// hand-over began before it, queued again where it never began. Returns (uncertain,
    /// queued again).
    async fn expire_claims(&self, claimed_before: i64) -> StoreResult<(u64, u64)>;

    /// Marks a campaign sent if none of its deliveries is queued or claimed; false otherwise.
    async fn finish_campaign(
        &self,
        id: CampaignId,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// A campaign's deliveries counted by state and reason.
    async fn delivery_counts(&self, id: CampaignId) -> StoreResult<DeliveryCounts>;

    /// One delivery.
    async fn delivery(&self, id: DeliveryId) -> StoreResult<Option<DeliveryRow>>;

    /// Records that the recipient unsubscribed through a delivery; false if already recorded.
    async fn mark_unsubscribed(&self, id: DeliveryId, at: i64) -> StoreResult<bool>;

    /// The campaigns a customer was a recipient of, with their delivery and when it was sent.
    async fn customer_deliveries(
        &self,
        customer: CustomerId,
    ) -> StoreResult<Vec<(CampaignRow, DeliveryRow, Option<i64>)>>;
}

/// Staff messages to one customer, their threads and replies, and undeliverable addresses.
#[async_trait::async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores a message to send (its interaction and its row) with its audit entry, starting
    /// `new_thread` or, without one, extending the message's thread to `expires_at`; false (nothing
    /// stored) if the customer was erased or that thread is no longer theirs.
    async fn insert_message(
        &self,
        new_thread: Option<&ThreadRow>,
        interaction: &InteractionRow,
        message: &MessageRow,
        expires_at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Stores a reply in its thread with its audit entry; false (nothing stored) if the thread
    /// or its customer is gone.
    async fn insert_reply(
        &self,
        interaction: &InteractionRow,
        message: &MessageRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// One thread.
    async fn thread(&self, id: ThreadId) -> StoreResult<Option<ThreadRow>>;

    /// The thread whose reply alias has this keyed MAC.
    async fn thread_by_alias(&self, alias_mac: &[u8]) -> StoreResult<Option<ThreadRow>>;

    /// A customer's threads and their messages, oldest first.
    async fn customer_threads(
        &self,
        customer: CustomerId,
    ) -> StoreResult<(Vec<ThreadRow>, Vec<MessageRow>)>;

    /// One message.
    async fn message(&self, id: InteractionId) -> StoreResult<Option<MessageRow>>;

    /// A message's text: the interaction of its id.
    async fn message_body(&self, id: InteractionId) -> StoreResult<Option<InteractionRow>>;

    /// Records, committed durably, that the hand-over of a queued message begins; false if it
    /// was not queued (another process has it, or it was settled).
    async fn begin_handover(&self, id: InteractionId, at: i64) -> StoreResult<bool>;

    /// Settles a message that is in one of the states `from`; false if it was not.
    async fn settle_message(
        &self,
        id: InteractionId,
        from: &[&str],
        state: &str,
        reason: Option<&str>,
        at: i64,
    ) -> StoreResult<bool>;

    /// Marks hand-overs begun before `handed_before` and never settled uncertain, and returns
    /// (up to 256) messages queued before `queued_before` with the number marked uncertain.
    async fn pending_messages(
        &self,
        queued_before: i64,
        handed_before: i64,
        at: i64,
    ) -> StoreResult<(Vec<InteractionId>, u64)>;

    /// Records that the customer's address of this blind index bounced, and the delivery or
    /// message that bounced as failed, with the audit entry.
    async fn mark_undeliverable(
        &self,
        customer: CustomerId,
        address_mac: &[u8],
        bounced: Bounced,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// The addresses (blind indexes) of these customers known to be undeliverable.
    async fn undeliverable(
        &self,
        customers: &[CustomerId],
    ) -> StoreResult<Vec<(CustomerId, Vec<u8>)>>;
}

/// Purchase categories marked as special categories of data (personalisation leaves them out).
#[async_trait::async_trait]
pub trait PersonalisationStore: Send + Sync + 'static {
    /// Marks `category` as revealing `data_category` (replacing an earlier marking), with the
    /// audit entry.
    async fn mark_category(
        &self,
        category: &str,
        data_category: &str,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// Every marked category: (category, data category, when marked), by category.
    async fn marked_categories(&self) -> StoreResult<Vec<(String, String, i64)>>;

    /// Whether any purchase is in `category`.
    async fn purchase_category_used(&self, category: &str) -> StoreResult<bool>;
}

/// Analytics: released answers and the privacy budget they spend (issue 21).
#[async_trait::async_trait]
pub trait AnalyticsStore: Send + Sync + 'static {
    /// The answer released for this query hash under this purpose in this window, whoever
    /// asked, if any.
    async fn release(
        &self,
        purpose: &str,
        window_start: i64,
        query_hash: &[u8],
    ) -> StoreResult<Option<ReleaseRow>>;

    /// (ε in thousandths, δ in billionths) the analyst spent under the purpose in the window.
    async fn spent(
        &self,
        analyst: &str,
        purpose: &str,
        window_start: i64,
    ) -> StoreResult<(i64, i64)>;

    /// Adds `cost` (ε in thousandths, δ in billionths) to the analyst's spending under the
    /// purpose in the window if the sums stay within `limit`; false (nothing added) otherwise.
    async fn reserve_budget(
        &self,
        analyst: &str,
        purpose: &str,
        window_start: i64,
        cost: (i64, i64),
        limit: (i64, i64),
    ) -> StoreResult<bool>;

    /// Gives back a reservation whose release was not made.
    async fn refund_budget(
        &self,
        analyst: &str,
        purpose: &str,
        window_start: i64,
        cost: (i64, i64),
    ) -> StoreResult<()>;

    /// Stores a release with its audit entry, in one transaction; the release already there if
    /// the same query was released meanwhile.
    async fn record_release(
        &self,
        row: &ReleaseRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<Recorded>;

    /// Every analyst's spending in the window starting at `window_start`, most spent first.
    async fn budgets(&self, window_start: i64) -> StoreResult<Vec<BudgetRow>>;

    /// Every release under the purpose in the window, newest first.
    async fn releases(&self, purpose: &str, window_start: i64) -> StoreResult<Vec<ReleaseRow>>;
}

/// Anonymous surveys: definitions, invitations, spent tokens and answers (issue 21).
#[async_trait::async_trait]
pub trait SurveyStore: Send + Sync + 'static {
    /// Stores a new survey with its audit entry.
    async fn insert_survey(&self, row: &SurveyRow, audit: &[AuditEntryRow]) -> StoreResult<()>;

    /// One survey.
    async fn survey(&self, id: SurveyId) -> StoreResult<Option<SurveyRow>>;

    /// Every survey, newest first.
    async fn surveys(&self) -> StoreResult<Vec<SurveyRow>>;

    /// How many were asked, got a token, answered.
    async fn survey_counts(&self, id: SurveyId) -> StoreResult<SurveyCounts>;

    /// Invites `customers` (those already invited stay as they are) and marks the survey sent,
    /// with the audit entry; how many were newly invited.
    async fn invite(
        &self,
        id: SurveyId,
        customers: &[CustomerId],
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<u64>;

    /// The surveys a customer was invited to: when, and whether their token was issued.
    async fn invitations(&self, customer: CustomerId) -> StoreResult<Vec<(SurveyId, i64, bool)>>;

    /// Marks the customer's one token issued, with the audit entry; false if they were not
    /// invited or had theirs already.
    async fn issue_token(
        &self,
        id: SurveyId,
        customer: CustomerId,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Spends the token and puts the sealed answer in the survey's pool, in one transaction.
    async fn record_pending(
        &self,
        id: SurveyId,
        token_hash: &[u8],
        pending_id: [u8; 16],
        sealed: &[u8],
    ) -> StoreResult<Stored>;

    /// If at least `at_least` answers wait that `open` can open (pending id, sealed → the
    /// answer's option per question), adds them all to the survey's totals and deletes them, in
    /// one transaction; rows that do not open are deleted and counted. (answers added, rows
    /// dropped); (0, 0) and nothing changed when too few wait.
    async fn flush_pending(
        &self,
        id: SurveyId,
        at_least: u64,
        open: &(dyn for<'x> Fn(&'x [u8], &'x [u8]) -> Option<Vec<u8>> + Send + Sync),
    ) -> StoreResult<(u64, u64)>;

    /// The survey's totals: answers counted, and per (question, answer) how many gave it.
    async fn tallies(&self, id: SurveyId) -> StoreResult<(u64, Vec<(u32, u32, i64)>)>;
}

/// Recipients, agreements, disclosures and the notifications that follow changes (issue 22).
#[async_trait::async_trait]
pub trait SharingStore: Send + Sync + 'static {
    /// Registers a recipient, with the audit entry.
    async fn insert_recipient(
        &self,
        row: &RecipientRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<()>;

    /// Every recipient, by name.
    async fn recipients(&self) -> StoreResult<Vec<RecipientRow>>;

    /// One recipient.
    async fn recipient(&self, id: RecipientId) -> StoreResult<Option<RecipientRow>>;

    /// Records an agreement with the audit entry; one that supersedes another ends it at its own
    /// start, in the same transaction. Nothing is stored unless [`AgreementStored::Stored`].
    async fn insert_agreement(
        &self,
        row: &AgreementRow,
        audit: &[AuditEntryRow],
    ) -> StoreResult<AgreementStored>;

    /// Ends an agreement at `at` (unless it ended earlier), with the audit entry; false if none
    /// did end.
    async fn end_agreement(
        &self,
        id: AgreementId,
        at: i64,
        audit: &[AuditEntryRow],
    ) -> StoreResult<bool>;

    /// Every agreement (of one recipient), by start.
    async fn agreements(&self, recipient: Option<RecipientId>) -> StoreResult<Vec<AgreementRow>>;

    /// One agreement.
    async fn agreement(&self, id: AgreementId) -> StoreResult<Option<AgreementRow>>;

    /// Records a disclosure, in one transaction with the checks that it may still be made
    /// (see [`NewDisclosure`]); the reference the recipient knows the customer by (their id, or
    /// its pseudonym, given now if it had none), or `None` (nothing recorded) if it may not.
    async fn record_disclosure(&self, d: &NewDisclosure<'_>) -> StoreResult<Option<String>>;

    /// A recipient's pseudonym for a customer, if it was given one.
    async fn pseudonym_of(
        &self,
        recipient: RecipientId,
        customer: CustomerId,
    ) -> StoreResult<Option<String>>;

    /// The customer a recipient's pseudonym stands for; `None` if unknown or erased.
    async fn pseudonym_customer(
        &self,
        recipient: RecipientId,
        pseudonym: &str,
    ) -> StoreResult<Option<CustomerId>>;

    /// What went where about a customer, per recipient, agreement and purpose.
    async fn disclosures_of(&self, customer: CustomerId) -> StoreResult<Vec<DisclosureRow>>;

    /// Claims up to `limit` notifications due at `now` until `lease_until` (a sender that dies
    /// holding them leaves them to the next after the lease).
    async fn claim_notifications(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<NotificationRow>>;

    /// Records how a delivery attempt ended.
    async fn settle_notification(&self, id: &str, settled: &Settled) -> StoreResult<()>;

    /// The newest notifications (to one recipient).
    async fn notifications(
        &self,
        recipient: Option<RecipientId>,
        limit: u32,
    ) -> StoreResult<Vec<NotificationRow>>;
}

/// The engine, compaction and consistent copies.
#[async_trait::async_trait]
pub trait MaintenanceStore: Send + Sync + 'static {
    /// The engine behind this store.
    fn backend(&self) -> Backend;

    /// Makes deleted content leave the database's files (SQLite: folds and truncates the WAL).
    async fn compact(&self) -> StoreResult<()>;

    /// One round trip to the database: whether it answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Writes a consistent copy of the data and log databases to two new files, while serving.
    async fn backup_into(&self, data: &std::path::Path, log: &std::path::Path) -> StoreResult<()>;
}

/// Declares [`Store`] as the sum of the context traits, implemented for every type that implements
/// them all, and the [`prelude`] that brings them into scope: one list of the contexts.
macro_rules! contexts {
    ($($context:ident),* $(,)?) => {
        /// Everything Steward keeps: every context's store in one handle, for the composition
        /// root. Services that need one context take that context's trait (`Arc<dyn Store>`
        /// upcasts to it). One call is one transaction.
        pub trait Store: $($context +)* {}

        impl<T: $($context +)*> Store for T {}

        /// Every context's store trait, to call their methods on a concrete store (a trait object
        /// of [`Store`] needs no import).
        pub mod prelude {
            pub use crate::{Store, $($context),*};
        }
    };
}

contexts!(
    KeyStore,
    CustomerStore,
    ActivityStore,
    DirectoryStore,
    ConsentStore,
    PurposeStore,
    AuditStore,
    AlertStore,
    IdentityStore,
    PortalStore,
    RightsStore,
    ErasureStore,
    NoticeStore,
    SegmentStore,
    CampaignStore,
    MessageStore,
    PersonalisationStore,
    AnalyticsStore,
    SurveyStore,
    SharingStore,
    MaintenanceStore,
    ClusterStore,
);

/// A shared handle to a store.
pub type DynStore = Arc<dyn Store>;

/// Opens the store named by `url` (`sqlite://…` or `postgres://…`) and migrates it.
pub async fn open(url: &str) -> StoreResult<DynStore> {
    let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        postgres::open(url).await?
    } else {
        sqlite::open(url).await?
    };
    Ok(Arc::new(store))
}

#[cfg(test)]
mod lockstep {
    /// The first migration written as a pair (issue 15); older ones differ in number by history.
    const PAIRED_FROM: u64 = 20261204000014;

    /// (version, name) of each migration in `dir` from [`PAIRED_FROM`] on.
    fn paired(dir: &str) -> Vec<(u64, String)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut out: Vec<(u64, String)> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let (version, rest) = name.split_once('_')?;
                let version: u64 = version.parse().ok()?;
                (version >= PAIRED_FROM).then(|| (version, rest.to_owned()))
            })
            .collect();
        out.sort();
        out
    }

    /// Every new migration comes as a pair: the same version and name on both backends.
    #[test]
    fn new_migrations_come_in_pairs() {
        let (sqlite, postgres) = (paired("migrations/sqlite"), paired("migrations/postgres"));
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "migrations/sqlite and migrations/postgres differ"
        );
    }
}

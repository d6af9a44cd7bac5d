-- Sharing under agreement (issue 22). Keep in lockstep with the other backend: same version, same
-- name.
-- Recipients of disclosures: processors and third parties, registered by the DPO. Business data,
-- no customer's.
CREATE TABLE recipients (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    country TEXT NOT NULL,
    contact TEXT,
    webhook_url TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
-- Agreements: never changed but to end them, never deleted. A new version names the one it
-- supersedes, which ends when the new one starts.
CREATE TABLE agreements (
    id BLOB PRIMARY KEY,
    recipient_id BLOB NOT NULL REFERENCES recipients (id),
    version INTEGER NOT NULL,
    supersedes BLOB REFERENCES agreements (id),
    purposes TEXT NOT NULL,
    categories TEXT NOT NULL,
    lawful_basis TEXT NOT NULL,
    document_sha256 TEXT NOT NULL,
    identity TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX agreements_by_recipient ON agreements (recipient_id, starts_at);
-- What each customer's data went to: one row per recipient, agreement, purpose and category,
-- with the reference the recipient knows them by (their id, or a pseudonym). Read for the
-- portal, the export, and to know whom a change must follow; deleted with the customer, after
-- the erasure's notifications are queued in the same transaction.
CREATE TABLE disclosures (
    customer_id BLOB NOT NULL,
    recipient_id BLOB NOT NULL,
    agreement_id BLOB NOT NULL,
    purpose TEXT NOT NULL,
    category TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    times INTEGER NOT NULL,
    PRIMARY KEY (customer_id, recipient_id, agreement_id, purpose, category)
) STRICT, WITHOUT ROWID;
CREATE INDEX disclosures_by_recipient ON disclosures (recipient_id, customer_id);
-- A pseudonymous recipient's pseudonyms: random, one per recipient and customer, mapped back
-- only through this table, and gone with the customer (nothing can recompute them).
CREATE TABLE shared_pseudonyms (
    recipient_id BLOB NOT NULL,
    pseudonym TEXT NOT NULL,
    customer_id BLOB NOT NULL,
    PRIMARY KEY (recipient_id, pseudonym)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX shared_pseudonyms_by_customer ON shared_pseudonyms (customer_id, recipient_id);
-- Notifications of changes to recipients, queued in the change's own transaction and delivered
-- at least once by the sender, the id being the webhook-id. They carry the reference the
-- recipient already holds, the change and the categories concerned: never a value.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    recipient_id BLOB NOT NULL REFERENCES recipients (id),
    change TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    categories TEXT NOT NULL,
    purpose TEXT,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    claimed_until INTEGER,
    delivered_at INTEGER,
    last_error TEXT
) STRICT;
CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at);
-- A recipient's tokens act for it.
ALTER TABLE api_tokens ADD COLUMN recipient_id BLOB REFERENCES recipients (id);

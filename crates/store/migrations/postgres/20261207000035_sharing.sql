-- Sharing under agreement (issue 22). Keep in lockstep with the other backend: same version, same
-- name.
-- Recipients of disclosures: processors and third parties, registered by the DPO. Business data,
-- no customer's.
CREATE TABLE recipients (
    id BYTEA PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    country TEXT NOT NULL,
    contact TEXT,
    webhook_url TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Agreements: never changed but to end them, never deleted. A new version names the one it
-- supersedes, which ends when the new one starts.
CREATE TABLE agreements (
    id BYTEA PRIMARY KEY,
    recipient_id BYTEA NOT NULL REFERENCES recipients (id),
    version BIGINT NOT NULL,
    supersedes BYTEA REFERENCES agreements (id),
    purposes TEXT NOT NULL,
    categories TEXT NOT NULL,
    lawful_basis TEXT NOT NULL,
    document_sha256 TEXT NOT NULL,
    identity TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX agreements_by_recipient ON agreements (recipient_id, starts_at);
-- What each customer's data went to: one row per recipient, agreement, purpose and category,
-- with the reference the recipient knows them by (their id, or a pseudonym). Read for the
-- portal, the export, and to know whom a change must follow; deleted with the customer, after
-- the erasure's notifications are queued in the same transaction.
CREATE TABLE disclosures (
    customer_id BYTEA NOT NULL,
    recipient_id BYTEA NOT NULL,
    agreement_id BYTEA NOT NULL,
    purpose TEXT NOT NULL,
    category TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    times BIGINT NOT NULL,
    PRIMARY KEY (customer_id, recipient_id, agreement_id, purpose, category)
);
CREATE INDEX disclosures_by_recipient ON disclosures (recipient_id, customer_id);
-- A pseudonymous recipient's pseudonyms: random, one per recipient and customer, mapped back
-- only through this table, and gone with the customer (nothing can recompute them).
CREATE TABLE shared_pseudonyms (
    recipient_id BYTEA NOT NULL,
    pseudonym TEXT NOT NULL,
    customer_id BYTEA NOT NULL,
    PRIMARY KEY (recipient_id, pseudonym)
);
CREATE UNIQUE INDEX shared_pseudonyms_by_customer ON shared_pseudonyms (customer_id, recipient_id);
-- Notifications of changes to recipients, queued in the change's own transaction and delivered
-- at least once by the sender, the id being the webhook-id. They carry the reference the
-- recipient already holds, the change and the categories concerned: never a value.
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    recipient_id BYTEA NOT NULL REFERENCES recipients (id),
    change TEXT NOT NULL,
    customer_ref TEXT NOT NULL,
    categories TEXT NOT NULL,
    purpose TEXT,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    delivered_at BIGINT,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at);
-- A recipient's tokens act for it.
ALTER TABLE api_tokens ADD COLUMN recipient_id BYTEA REFERENCES recipients (id);

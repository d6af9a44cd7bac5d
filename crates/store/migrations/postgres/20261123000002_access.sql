-- Access model (PostgreSQL). Keep in lockstep with ../sqlite.

-- A token acts for a staff member (their roles and outlets) or as a service client (its role).
ALTER TABLE api_tokens ADD COLUMN staff_id BYTEA REFERENCES staff (id);

-- Processing restricted (GDPR Art. 18): readable only for legal obligations.
ALTER TABLE customers ADD COLUMN restricted BIGINT NOT NULL DEFAULT 0;

-- The outlets a customer belongs to: where registered and where they bought. Kept in clear
-- (ids only) so the policy can scope staff to their outlets without unsealing purchases.
CREATE TABLE customer_outlets (
    customer_id BYTEA NOT NULL REFERENCES customers (id),
    outlet_id BYTEA NOT NULL REFERENCES outlets (id),
    PRIMARY KEY (customer_id, outlet_id)
);
INSERT INTO customer_outlets (customer_id, outlet_id) SELECT id, outlet_id FROM customers WHERE outlet_id IS NOT NULL;

-- The consent ledger: append-only grant and withdraw events.
CREATE TABLE consent_events (
    id BYTEA PRIMARY KEY,
    customer_id BYTEA NOT NULL REFERENCES customers (id),
    purpose TEXT NOT NULL REFERENCES purposes (key),
    action TEXT NOT NULL CHECK (action IN ('grant', 'withdraw')),
    source TEXT NOT NULL,
    notice_version BIGINT NOT NULL,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX consent_events_by_customer ON consent_events (customer_id, id);

-- Access decisions (PostgreSQL). Keep in lockstep with ../sqlite.
-- One row per decided read, allowed or denied: who (a pseudonym), about which customer, for which
-- purpose, the outcome per field and the policies behind it. Never a value, never reason text.
CREATE TABLE access_decisions (
    id BYTEA PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    customer_id BYTEA NOT NULL,
    purpose TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('allow', 'deny')),
    fields TEXT NOT NULL,
    policies TEXT NOT NULL,
    reason_given BIGINT NOT NULL,
    break_glass BIGINT NOT NULL
);
CREATE INDEX access_decisions_by_customer ON access_decisions (customer_id, id);

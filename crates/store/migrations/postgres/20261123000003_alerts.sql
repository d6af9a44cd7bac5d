-- Access alerts for the DPO (PostgreSQL). Keep in lockstep with ../sqlite.
-- Principals appear as stable pseudonyms (staff id or token id); no personal value, no reason text.
CREATE TABLE access_alerts (
    id BYTEA PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('break_glass', 'bulk_access')),
    principal TEXT NOT NULL,
    customer_id BYTEA,
    purpose TEXT NOT NULL,
    detail TEXT NOT NULL
);

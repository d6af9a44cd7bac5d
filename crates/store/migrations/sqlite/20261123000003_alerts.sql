-- Access alerts for the DPO (SQLite). Keep in lockstep with ../postgres.
-- Principals appear as stable pseudonyms (staff id or token id); no personal value, no reason text.
CREATE TABLE access_alerts (
    id BLOB PRIMARY KEY,
    occurred_at INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('break_glass', 'bulk_access')),
    principal TEXT NOT NULL,
    customer_id BLOB,
    purpose TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT, WITHOUT ROWID;

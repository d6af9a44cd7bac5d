-- Access decisions (SQLite). Keep in lockstep with ../postgres.
-- One row per decided read, allowed or denied: who (a pseudonym), about which customer, for which
-- purpose, the outcome per field and the policies behind it. Never a value, never reason text.
CREATE TABLE access_decisions (
    id BLOB PRIMARY KEY,
    occurred_at INTEGER NOT NULL,
    principal TEXT NOT NULL,
    customer_id BLOB NOT NULL,
    purpose TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('allow', 'deny')),
    fields TEXT NOT NULL,
    policies TEXT NOT NULL,
    reason_given INTEGER NOT NULL,
    break_glass INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX access_decisions_by_customer ON access_decisions (customer_id, id);

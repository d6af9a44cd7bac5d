-- The decision log's own SQLite file (see src/sqlite.rs for why it is a file of its own). The
-- table is the one PostgreSQL keeps beside the data (../postgres/20261123000004_decisions.sql).
-- One row per decided read, allowed or denied: who (a pseudonym), about which customer, for which
-- purpose, the outcome per field and the policies behind it. Never a value, never reason text.
-- Append-only by id (UUIDv7, time-ordered), and deliberately without an index by customer: one
-- would put a random B-tree page into the WAL for every record on the read path (measured: 0.45
-- of the plain baseline instead of 0.56). The audit log builds its per-customer view its own way.
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

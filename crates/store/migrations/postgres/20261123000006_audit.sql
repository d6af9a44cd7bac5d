-- The audit log (PostgreSQL). Keep in lockstep with ../sqlite-log/20261123000002_audit.sql.
-- Entries are the leaves of an RFC 6962 Merkle tree: `leaf` holds the exact bytes that were
-- hashed; the other columns are copies for queries, checked against the leaf by `audit verify`.
CREATE TABLE audit_entries (
    idx BIGINT PRIMARY KEY,
    leaf BYTEA NOT NULL,
    occurred_at BIGINT NOT NULL,
    action TEXT NOT NULL,
    customer_id BYTEA,
    -- The tree hashes this entry's append wrote: its leaf hash, then those of the subtrees
    -- it completed (the "stored hash" order of Go's sumdb/tlog), 32 bytes each.
    hashes BYTEA NOT NULL
);
-- The number of entries; appenders lock this row (SELECT … FOR UPDATE), so several servers on
-- one database append to one log with no fork and no gap.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL
);
INSERT INTO audit_head (id, size) VALUES (1, 0);
-- Signed tree heads: C2SP signed notes holding tlog-checkpoint bodies. Nothing unsigned is kept
-- beside them, so that every stored byte of every audit table is checked by `audit verify`.
CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);

-- The audit log (PostgreSQL). Keep in lockstep with ../sqlite-log/20261123000002_audit.sql.
-- Entries are the leaves of an RFC 6962 Merkle tree: `leaf` holds the exact bytes that were
-- hashed; the other columns are copies for queries, checked against the leaf by `audit verify`.
CREATE TABLE audit_entries (
    idx BIGINT PRIMARY KEY,
    leaf BYTEA NOT NULL,
    occurred_at BIGINT NOT NULL,
    action TEXT NOT NULL,
    customer_id BYTEA
);
-- Every hash of the tree in the stored-hash order: append-only.
CREATE TABLE audit_hashes (
    idx BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
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

-- The audit log (SQLite, in the log's own file). Keep in lockstep with
-- ../postgres/20261123000006_audit.sql.
-- Entries are the leaves of an RFC 6962 Merkle tree: `leaf` holds the exact bytes that were
-- hashed; the other columns are copies for queries, checked against the leaf by `audit verify`.
CREATE TABLE audit_entries (
    idx INTEGER PRIMARY KEY,
    leaf BLOB NOT NULL,
    occurred_at INTEGER NOT NULL,
    action TEXT NOT NULL,
    customer_id BLOB
) STRICT;
-- Every hash of the tree in the stored-hash order (leaf hash of entry n, then the subtrees it
-- completes): append-only, so an append writes to the end of one B-tree.
CREATE TABLE audit_hashes (
    idx INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
) STRICT;
-- The number of entries; appenders lock it to serialise (no fork, no gap).
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL
) STRICT;
INSERT INTO audit_head (id, size) VALUES (1, 0);
-- Signed tree heads: C2SP signed notes holding tlog-checkpoint bodies. Nothing unsigned is kept
-- beside them, so that every stored byte of every audit table is checked by `audit verify`.
CREATE TABLE audit_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
) STRICT;

-- The audit log (SQLite, in the log's own file). Keep in lockstep with
-- ../postgres/20261123000006_audit.sql.
-- Entries are the leaves of an RFC 6962 Merkle tree: `leaf` holds the exact bytes that were
-- hashed; the other columns are copies for queries, checked against the leaf by `audit verify`.
CREATE TABLE audit_entries (
    idx INTEGER PRIMARY KEY,
    leaf BLOB NOT NULL,
    occurred_at INTEGER NOT NULL,
    action TEXT NOT NULL,
    customer_id BLOB,
    -- The tree hashes this entry's append wrote: its leaf hash, then those of the subtrees
    -- it completed (the "stored hash" order of Go's sumdb/tlog), 32 bytes each.
    hashes BLOB NOT NULL
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

-- Audit entries of writes (SQLite, data file). Keep in lockstep with
-- ../postgres/20261123000008_audit_outbox.sql.
-- A write and its audit entry commit in one transaction here; the log writer then moves entries
-- into the Merkle log (in the log's own file) and records how far it got there, in the same
-- transaction as the append (`audit_drain`), so each entry lands exactly once.
CREATE TABLE audit_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    leaf BLOB NOT NULL,
    occurred_at INTEGER NOT NULL,
    action TEXT NOT NULL,
    customer_id BLOB
) STRICT;

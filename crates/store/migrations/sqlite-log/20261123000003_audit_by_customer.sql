-- Who looked at a customer's data: the audit entries about each customer (SQLite, log file).
-- Keep in lockstep with ../postgres/20261123000007_audit_by_customer.sql.
-- Built behind the log rather than in its appends (a random B-tree page per entry on the read
-- path halved read throughput, measured): `indexed` says how far; queries scan the short tail
-- past it. `audit verify` checks these rows against the entries below `indexed`.
CREATE TABLE audit_by_customer (
    customer_id BLOB NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (customer_id, idx)
) STRICT, WITHOUT ROWID;
CREATE TABLE audit_index_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed INTEGER NOT NULL
) STRICT;
INSERT INTO audit_index_state (id, indexed) VALUES (1, 0);

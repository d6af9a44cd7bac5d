-- Who looked at a customer's data: the audit entries about each customer (SQLite), in a file of
-- its own beside the audit log (`steward-audit-index.db`). The table is the one PostgreSQL keeps
-- beside the entries (../postgres/20261123000007_audit_by_customer.sql).
--
-- Why a file of its own (issue 19): a row per entry keyed by customer lands on a random page of
-- the B-tree, so indexing wrote about one 4 KiB page per audited read into the log's WAL. Built
-- in the log's file, it held the log's write lock while every read waited for its entry (7–33 ms
-- per 256 entries, measured), and it filled the WAL so fast that the log's WAL restart, which
-- copies those pages back under the write lock, stalled every read again (35–43 ms every few
-- seconds). Here it has its own lock and WAL: appends never wait for it.
--
-- Derived data: built behind the log (`indexed` says how far; queries scan the short tail past
-- it), rebuilt from the entries if lost, and checked by `audit verify` against the entries below
-- `indexed`. Installations from before carried it in the log file; it is rebuilt here.
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

-- The by-customer index as sorted runs (issue 19). Keyed (customer, entry), each step of the
-- indexer put its rows at random places of one B-tree and so rewrote about one 4 KiB page per
-- audited read (WAL, then checkpoint): with 100,000 customers that was a fifth of a read's CPU
-- and most of its p99. Now each step is a run of its own, keyed (run, customer, entry): the step's
-- rows, sorted, are appended at the B-tree's right edge, and every four runs of a level are merged
-- into one of the next, so that a customer's entries are found with one seek per run. Keep in
-- lockstep with ../postgres/20261212000042_audit_index_runs.sql.
--
-- Derived data, as before: run 0 holds every row indexed before this migration and is never
-- merged. `run` defaults to 0 so that a row written by hand is still a row of the index (and
-- `audit verify` counts it).
CREATE TABLE audit_by_customer_runs (
    run INTEGER NOT NULL DEFAULT 0,
    customer_id BLOB NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (run, customer_id, idx)
) STRICT, WITHOUT ROWID;
INSERT INTO audit_by_customer_runs (run, customer_id, idx)
    SELECT 0, customer_id, idx FROM audit_by_customer ORDER BY customer_id, idx;
DROP TABLE audit_by_customer;
ALTER TABLE audit_by_customer_runs RENAME TO audit_by_customer;
-- The runs and their levels: a run of level n holds about 4^n steps.
CREATE TABLE audit_index_runs (
    run INTEGER PRIMARY KEY,
    level INTEGER NOT NULL
) STRICT;
INSERT INTO audit_index_runs (run, level) VALUES (0, 1000);

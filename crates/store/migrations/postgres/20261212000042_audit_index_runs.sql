-- The by-customer index as sorted runs (issue 19): see
-- ../sqlite-index/20261212000002_audit_index_runs.sql, kept in lockstep. Run 0 holds every row
-- indexed before this migration and is never merged.
ALTER TABLE audit_by_customer ADD COLUMN run BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_by_customer DROP CONSTRAINT audit_by_customer_pkey;
ALTER TABLE audit_by_customer ADD PRIMARY KEY (run, customer_id, idx);
CREATE TABLE audit_index_runs (
    run BIGINT PRIMARY KEY,
    level INTEGER NOT NULL
);
INSERT INTO audit_index_runs (run, level) VALUES (0, 1000);

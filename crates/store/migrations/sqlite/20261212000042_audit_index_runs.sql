-- The by-customer index as sorted runs: on SQLite the index has a file of its own, and its
-- migration is ../sqlite-index/20261212000002_audit_index_runs.sql. This migration keeps the two
-- backends' histories in step.
SELECT 1;

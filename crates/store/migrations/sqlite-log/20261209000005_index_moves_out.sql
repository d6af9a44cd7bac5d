-- The by-customer index moves to a file of its own (../sqlite-index/20261209000001_audit_by_customer.sql,
-- where it is rebuilt from the entries): indexing in the log's file held the log's write lock
-- and filled its WAL, stalling every read waiting for its entry (issue 19).
DROP TABLE audit_by_customer;
DROP TABLE audit_index_state;

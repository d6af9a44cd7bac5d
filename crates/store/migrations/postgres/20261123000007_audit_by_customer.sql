-- Who looked at a customer's data (PostgreSQL). Keep in lockstep with
-- ../sqlite-log/20261123000003_audit_by_customer.sql.
CREATE TABLE audit_by_customer (
    customer_id BYTEA NOT NULL,
    idx BIGINT NOT NULL,
    PRIMARY KEY (customer_id, idx)
);
CREATE TABLE audit_index_state (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    indexed BIGINT NOT NULL
);
INSERT INTO audit_index_state (id, indexed) VALUES (1, 0);

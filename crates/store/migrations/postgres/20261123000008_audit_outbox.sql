-- Audit entries of writes (PostgreSQL). Keep in lockstep with
-- ../sqlite/20261123000006_audit_outbox.sql and ../sqlite-log/20261123000004_audit_drain.sql.
CREATE TABLE audit_outbox (
    seq BIGSERIAL PRIMARY KEY,
    leaf BYTEA NOT NULL,
    occurred_at BIGINT NOT NULL,
    action TEXT NOT NULL,
    customer_id BYTEA
);
CREATE TABLE audit_drain (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO audit_drain (id, last_seq) VALUES (1, 0);

-- How far the audit outbox of the data file has been moved into this log (see
-- ../sqlite/20261123000006_audit_outbox.sql).
CREATE TABLE audit_drain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL
) STRICT;
INSERT INTO audit_drain (id, last_seq) VALUES (1, 0);

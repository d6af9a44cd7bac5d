-- An access alert for a caller who sizes too many segments in an hour (issue 18: differencing
-- segments can single a customer out). Keep in lockstep with ../postgres: same version, same
-- name. SQLite cannot change a CHECK constraint in place: the table is rebuilt.
CREATE TABLE access_alerts_new (
    id BLOB PRIMARY KEY,
    occurred_at INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('break_glass', 'bulk_access', 'fraud_review', 'segment_evaluations')),
    principal TEXT NOT NULL,
    customer_id BLOB,
    purpose TEXT NOT NULL,
    detail TEXT NOT NULL,
    reason BLOB
) STRICT, WITHOUT ROWID;
INSERT INTO access_alerts_new (id, occurred_at, kind, principal, customer_id, purpose, detail, reason)
SELECT id, occurred_at, kind, principal, customer_id, purpose, detail, reason FROM access_alerts;
DROP TABLE access_alerts;
ALTER TABLE access_alerts_new RENAME TO access_alerts;

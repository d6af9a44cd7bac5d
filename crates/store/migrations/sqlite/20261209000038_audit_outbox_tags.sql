-- Pending audit entries carry a keyed tag (HMAC-SHA256 under the keyring's `audit_outbox` key)
-- over their number and every column, checked before the log writer appends them and by
-- `steward audit verify`. Keep in lockstep with ../postgres/20261209000038_audit_outbox_tags.sql.
-- Entries still pending at this upgrade have no tag: they are refused like any other row that
-- does not check (a stand-in goes into the log) and kept below.
ALTER TABLE audit_outbox ADD COLUMN tag BLOB;
-- Refused rows, as they were (each column capped at 64 KiB), for whoever investigates.
CREATE TABLE audit_outbox_refused (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    leaf BLOB,
    occurred_at INTEGER,
    action BLOB,
    customer_id BLOB,
    tag BLOB,
    refused_at INTEGER NOT NULL
) STRICT;

-- Pending audit entries carry a keyed tag (HMAC-SHA256 under the keyring's `audit_outbox` key)
-- over their number and every column, checked before the log writer appends them and by
-- `steward audit verify`. Keep in lockstep with ../sqlite/20261209000038_audit_outbox_tags.sql.
-- Entries still pending at this upgrade have no tag: they are refused like any other row that
-- does not check (a stand-in goes into the log) and kept below. Upgrade every node together:
-- an older node's untagged entries would be refused too.
ALTER TABLE audit_outbox ADD COLUMN tag BYTEA;
-- Refused rows, as they were (each column capped at 64 KiB), for whoever investigates.
CREATE TABLE audit_outbox_refused (
    id BIGSERIAL PRIMARY KEY,
    seq BIGINT NOT NULL,
    leaf BYTEA,
    occurred_at BIGINT,
    action BYTEA,
    customer_id BYTEA,
    tag BYTEA,
    refused_at BIGINT NOT NULL
);

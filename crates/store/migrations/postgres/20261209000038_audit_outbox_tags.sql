-- Pending audit entries carry a keyed tag (HMAC-SHA256 under the keyring's `audit_outbox` key),
-- checked before the log writer appends them and by `steward audit verify`. Keep in lockstep
-- with ../sqlite/20261209000038_audit_outbox_tags.sql.
ALTER TABLE audit_outbox ADD COLUMN tag BYTEA;
-- Entries still pending at this upgrade were written without a tag; the writer appends them as
-- they are (and verify counts them apart). Any later entry without a tag is refused. Every node
-- is upgraded together: an older node's untagged entries would be refused.
CREATE TABLE audit_outbox_untagged (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO audit_outbox_untagged (id, last_seq)
    SELECT 1, coalesce(max(seq), 0) FROM audit_outbox;

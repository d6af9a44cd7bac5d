-- Campaigns (issue 18, point 2): a message to a segment under a marketing purpose. Subject and
-- body are the business's templates (placeholders name profile fields; no customer's value is
-- ever in them); the author is kept as the audit log's pseudonym.
-- Keep in lockstep with the other backend: same version, same name.
CREATE TABLE campaigns (
    id BYTEA PRIMARY KEY,
    segment_id BYTEA NOT NULL REFERENCES segments (id),
    purpose TEXT NOT NULL REFERENCES purposes (key),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'sending', 'sent')),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

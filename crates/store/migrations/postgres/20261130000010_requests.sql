-- Data-subject requests (issue 5), with DRP states. No personal value in clear: corrections are
-- sealed under the customer's data key; the one-time code is kept only as a keyed MAC.
CREATE TABLE rights_requests (
    id BYTEA PRIMARY KEY,
    customer_id BYTEA NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'export', 'rectification', 'erasure', 'restriction', 'objection')),
    status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'fulfilled', 'denied', 'revoked', 'expired')),
    reason TEXT,
    identity TEXT NOT NULL CHECK (identity IN ('unverified', 'email_code', 'in_person')),
    created_at BIGINT NOT NULL,
    deadline_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    corrections BYTEA,
    code_mac BYTEA,
    code_expires_at BIGINT,
    code_attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX rights_requests_by_deadline ON rights_requests (deadline_at);
CREATE INDEX rights_requests_by_customer ON rights_requests (customer_id);

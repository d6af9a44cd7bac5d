-- Customer privacy portal (issue 6): one-time sign-in codes and the sessions they open. A code is
-- kept only as a keyed MAC, a session only as an Argon2id hash of its secret. A code row with no
-- customer is a decoy for an address that matched nobody: no code opens it, and it looks the same.
CREATE TABLE portal_codes (
    id BYTEA PRIMARY KEY,
    customer_id BYTEA,
    code_mac BYTEA NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_codes_by_customer ON portal_codes (customer_id);

CREATE TABLE portal_sessions (
    id BYTEA PRIMARY KEY,
    customer_id BYTEA NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_by_customer ON portal_sessions (customer_id);

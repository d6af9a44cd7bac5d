-- What several servers on one database share (issue 24): the token buckets of the rate limits,
-- the failed sign-ins of the brake and the customers each reader met for the bulk-access guard.
-- Keys and items are MACs, never a token, an address, a staff id or a customer id in clear.
CREATE TABLE shared_buckets (
    key BYTEA PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    granted DOUBLE PRECISION NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    -- The bucket's rate and size at its last take, so that pruning drops only full buckets.
    per_second DOUBLE PRECISION NOT NULL,
    burst DOUBLE PRECISION NOT NULL
);

CREATE TABLE shared_seen (
    key BYTEA NOT NULL,
    item BYTEA NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (key, item)
);
CREATE INDEX shared_seen_by_time ON shared_seen (key, at);

CREATE TABLE shared_events (
    id BIGSERIAL PRIMARY KEY,
    key BYTEA NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX shared_events_by_time ON shared_events (key, at);

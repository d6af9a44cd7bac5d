-- What several servers on one database share (issue 24): the token buckets of the rate limits
-- and the windowed counters of the sign-in brake and the bulk-access guard. Keys are MACs or
-- digests, never a token, an address or a name in clear.
CREATE TABLE shared_buckets (
    key BYTEA PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    granted DOUBLE PRECISION NOT NULL,
    at TIMESTAMPTZ NOT NULL
);

CREATE TABLE shared_counters (
    key BYTEA NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);

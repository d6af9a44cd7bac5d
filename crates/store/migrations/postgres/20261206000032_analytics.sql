-- Differentially private analytics (issue 21). Keep in lockstep with the other backend: same
-- version, same name.
-- The privacy budget spent per analyst (the principal's id: a staff member or a token), purpose
-- and 30-day window: epsilon in thousandths, delta in billionths. A release adds to it in the same
-- transaction that stores the release and its audit entry, and only while the sum stays within
-- the budget, so two concurrent queries cannot both spend the last of it.
CREATE TABLE analytics_budget (
    analyst TEXT NOT NULL,
    purpose TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    epsilon_milli BIGINT NOT NULL,
    delta_nano BIGINT NOT NULL,
    PRIMARY KEY (analyst, purpose, window_start)
);
-- Each released answer, under the SHA-256 of its query's whole body: the same query in the same
-- window and purpose returns it at no cost to whoever asks (the analyst who paid for it is
-- kept), so asking again, alone or with a colleague, cannot average the noise away. The query
-- and the answer hold no identity: group keys (outlets, categories, months, channels, tiers,
-- segments) and noisy totals.
CREATE TABLE analytics_releases (
    analyst TEXT NOT NULL,
    purpose TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    query_hash BYTEA NOT NULL,
    query TEXT NOT NULL,
    answer TEXT NOT NULL,
    epsilon_milli BIGINT NOT NULL,
    delta_nano BIGINT NOT NULL,
    released_at BIGINT NOT NULL,
    PRIMARY KEY (purpose, window_start, query_hash)
);

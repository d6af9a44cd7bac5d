-- Purchase categories marked as a special category of data (issue 20). Keep in lockstep with the
-- other backend: same version, same name.
-- The DPO marks a purchase category (e.g. `pharmacy`) with the fideslang category it reveals
-- (e.g. `user.health_and_medical`): purchases in it are then neither input nor output of
-- personalisation. A marking is changed, never silently dropped: each change is an audit entry.
CREATE TABLE purchase_categories (
    category TEXT PRIMARY KEY,
    data_category TEXT NOT NULL,
    marked_at BIGINT NOT NULL
);

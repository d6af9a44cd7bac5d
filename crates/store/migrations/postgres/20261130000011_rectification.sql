-- Rectification (issue 5): fields marked verified (names only) need staff confirmation before a
-- customer's correction is applied, and every change keeps the previous values, sealed under
-- the customer's data key like the data itself.
ALTER TABLE customers ADD COLUMN verified_fields TEXT NOT NULL DEFAULT '';

CREATE TABLE customer_changes (
    id BYTEA PRIMARY KEY,
    customer_id BYTEA NOT NULL,
    changed_at BIGINT NOT NULL,
    fields TEXT NOT NULL,
    previous BYTEA NOT NULL
);
CREATE INDEX customer_changes_by_customer ON customer_changes (customer_id, id);

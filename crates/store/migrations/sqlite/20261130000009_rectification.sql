-- Rectification (issue 5): fields marked verified (names only) need staff confirmation before a
-- customer's correction is applied, and every change keeps the previous values, sealed under
-- the customer's data key like the data itself.
ALTER TABLE customers ADD COLUMN verified_fields TEXT NOT NULL DEFAULT '';

CREATE TABLE customer_changes (
    id BLOB PRIMARY KEY,
    customer_id BLOB NOT NULL,
    changed_at INTEGER NOT NULL,
    fields TEXT NOT NULL,
    previous BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX customer_changes_by_customer ON customer_changes (customer_id, id);

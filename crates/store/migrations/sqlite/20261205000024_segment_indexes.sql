-- Segments (issue 18) read every customer's purchases and interactions by customer id: the
-- per-customer indexes now also hold the clear columns a segment's rules look at (time,
-- category, channel), so a segment's evaluation reads the index alone instead of one table
-- look-up per row. The same order (customer, id) still serves each customer's history. Nothing
-- sealed is copied: these columns are in clear in the tables already.
-- Keep in lockstep with the other backend: same version, same name.
DROP INDEX purchases_by_customer;
CREATE INDEX purchases_by_customer ON purchases (customer_id, id, occurred_at, category);
DROP INDEX interactions_by_customer;
CREATE INDEX interactions_by_customer ON interactions (customer_id, id, occurred_at, channel);

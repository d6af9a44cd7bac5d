-- A customer's look-up entries of one kind, found through one index: the start-up look for
-- customers missing an index kind probed (kind, mac, customer_id) by kind alone when the
-- planner misjudged the tables' sizes, scanning every entry of the kind per customer.
CREATE INDEX lookup_index_by_customer_kind ON lookup_index (customer_id, kind);
DROP INDEX lookup_index_by_customer;

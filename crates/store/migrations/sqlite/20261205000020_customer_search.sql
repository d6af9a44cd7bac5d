-- Customer search (issue 17): a page of one outlet's customers in id order, for the console's
-- list and its filter by outlet. Name search itself needs no new table: its keyed prefix buckets
-- are blind-index entries of kinds `name2` and `name3` (see docs/architecture.md, "Search").
-- Keep in lockstep with the other backend: same version, same name.
CREATE INDEX customer_outlets_by_outlet ON customer_outlets (outlet_id, customer_id);

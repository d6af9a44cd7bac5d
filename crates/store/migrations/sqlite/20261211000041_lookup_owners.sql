-- Each customer's blind-index entries, listed on one row ("kind:hex;kind:hex…", the MAC's hex
-- without its trailing zero digits: a name bucket is two bytes padded with zeros), so that
-- rectification and erasure delete exactly those entries by key. It replaces the index on
-- (customer_id, kind), which held every entry a second time: eight B-tree inserts fewer per
-- imported customer, and a smaller data file (issue 19). The list says no more
-- than lookup_index itself (which MAC belongs to which customer) and goes with the entries.
CREATE TABLE lookup_owners (
    customer_id BLOB PRIMARY KEY,
    entries TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO lookup_owners (customer_id, entries)
    SELECT customer_id, group_concat(kind || ':' || rtrim(hex(mac), '0'), ';') FROM lookup_index GROUP BY customer_id;
DROP INDEX lookup_index_by_customer_kind;

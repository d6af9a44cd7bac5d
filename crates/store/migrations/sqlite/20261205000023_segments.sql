-- Segments (issue 18): rules that pick customers, as marketing defines them. The rules name
-- product categories, outlets, purposes, channels, languages and windows, never a customer or a
-- personal value; the author is kept as the audit log's pseudonym, not a staff id.
-- Keep in lockstep with the other backend: same version, same name.
CREATE TABLE segments (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    rules TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Steward's initial schema (SQLite). Keep in lockstep with ../postgres: same tables, same columns.
-- Every personal value is a BLOB sealed by the application; nothing personal is stored in clear.

-- Keys of the installation (e.g. the blind-index key), each wrapped by a master key.
CREATE TABLE keyring (
    name TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped BLOB NOT NULL
) STRICT;

-- One data key per customer, wrapped by a master key. Destroying the row erases the customer.
CREATE TABLE data_keys (
    customer_id BLOB PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX data_keys_by_master ON data_keys (master_key_id);

CREATE TABLE outlets (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

-- Staff names are sealed under the installation's directory key.
CREATE TABLE staff (
    id BLOB PRIMARY KEY,
    name BLOB NOT NULL,
    roles TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE staff_outlets (
    staff_id BLOB NOT NULL REFERENCES staff (id),
    outlet_id BLOB NOT NULL REFERENCES outlets (id),
    PRIMARY KEY (staff_id, outlet_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE customers (
    id BLOB PRIMARY KEY,
    outlet_id BLOB REFERENCES outlets (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    name BLOB,
    email BLOB,
    phone BLOB,
    address BLOB,
    date_of_birth BLOB
) STRICT, WITHOUT ROWID;

-- Blind indexes: keyed MACs of normalised values, held apart from the values.
CREATE TABLE lookup_index (
    kind TEXT NOT NULL,
    mac BLOB NOT NULL,
    customer_id BLOB NOT NULL,
    PRIMARY KEY (kind, mac, customer_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX lookup_index_by_customer ON lookup_index (customer_id);

CREATE TABLE interactions (
    id BLOB PRIMARY KEY,
    customer_id BLOB NOT NULL REFERENCES customers (id),
    channel TEXT NOT NULL,
    source TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    body BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX interactions_by_customer ON interactions (customer_id, id);

-- Item, amount, outlet and seller are sealed; category, currency and time stay in clear for
-- aggregate reports.
CREATE TABLE purchases (
    id BLOB PRIMARY KEY,
    customer_id BLOB NOT NULL REFERENCES customers (id),
    category TEXT NOT NULL,
    currency TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    item BLOB NOT NULL,
    amount BLOB NOT NULL,
    outlet BLOB NOT NULL,
    seller BLOB
) STRICT, WITHOUT ROWID;
CREATE INDEX purchases_by_customer ON purchases (customer_id, id);

-- API tokens: only an Argon2id hash of the secret is kept.
CREATE TABLE api_tokens (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE TABLE purposes (
    key TEXT PRIMARY KEY,
    lawful_basis TEXT NOT NULL,
    data_use TEXT NOT NULL,
    categories TEXT NOT NULL,
    retention_days INTEGER NOT NULL,
    notice_version INTEGER NOT NULL,
    notice_text TEXT NOT NULL
) STRICT;

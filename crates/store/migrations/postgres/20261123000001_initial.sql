-- Steward's initial schema (PostgreSQL). Keep in lockstep with ../sqlite: same tables, same columns.
-- Every personal value is a BLOB sealed by the application; nothing personal is stored in clear.

-- Keys of the installation (e.g. the blind-index key), each wrapped by a master key.
CREATE TABLE keyring (
    name TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL
);

-- One data key per customer, wrapped by a master key. Destroying the row erases the customer.
CREATE TABLE data_keys (
    customer_id BYTEA PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX data_keys_by_master ON data_keys (master_key_id);

CREATE TABLE outlets (
    id BYTEA PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Staff names are sealed under the installation's directory key.
CREATE TABLE staff (
    id BYTEA PRIMARY KEY,
    name BYTEA NOT NULL,
    roles TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE staff_outlets (
    staff_id BYTEA NOT NULL REFERENCES staff (id),
    outlet_id BYTEA NOT NULL REFERENCES outlets (id),
    PRIMARY KEY (staff_id, outlet_id)
);

CREATE TABLE customers (
    id BYTEA PRIMARY KEY,
    outlet_id BYTEA REFERENCES outlets (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    name BYTEA,
    email BYTEA,
    phone BYTEA,
    address BYTEA,
    date_of_birth BYTEA
);

-- Blind indexes: keyed MACs of normalised values, held apart from the values.
CREATE TABLE lookup_index (
    kind TEXT NOT NULL,
    mac BYTEA NOT NULL,
    customer_id BYTEA NOT NULL,
    PRIMARY KEY (kind, mac, customer_id)
);
CREATE INDEX lookup_index_by_customer ON lookup_index (customer_id);

CREATE TABLE interactions (
    id BYTEA PRIMARY KEY,
    customer_id BYTEA NOT NULL REFERENCES customers (id),
    channel TEXT NOT NULL,
    source TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    body BYTEA NOT NULL
);
CREATE INDEX interactions_by_customer ON interactions (customer_id, id);

-- Item, amount, outlet and seller are sealed; category, currency and time stay in clear for
-- aggregate reports.
CREATE TABLE purchases (
    id BYTEA PRIMARY KEY,
    customer_id BYTEA NOT NULL REFERENCES customers (id),
    category TEXT NOT NULL,
    currency TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    item BYTEA NOT NULL,
    amount BYTEA NOT NULL,
    outlet BYTEA NOT NULL,
    seller BYTEA
);
CREATE INDEX purchases_by_customer ON purchases (customer_id, id);

-- API tokens: only an Argon2id hash of the secret is kept.
CREATE TABLE api_tokens (
    id BYTEA PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE purposes (
    key TEXT PRIMARY KEY,
    lawful_basis TEXT NOT NULL,
    data_use TEXT NOT NULL,
    categories TEXT NOT NULL,
    retention_days BIGINT NOT NULL,
    notice_version BIGINT NOT NULL,
    notice_text TEXT NOT NULL
);

-- Erasure by crypto-shredding (issue 5). An erased customer keeps a tombstone row until their
-- remaining ciphertext is purged; `erasures` remembers every erasure (ids and times only) so that
-- a replay of the erasure journal after a restore knows what is already done.
ALTER TABLE customers ADD COLUMN erased_at BIGINT;
-- A legal hold blocks erasure; it holds a case reference (letters, digits, . _ / -), never a name.
ALTER TABLE customers ADD COLUMN legal_hold TEXT;

CREATE TABLE erasures (
    customer_id BYTEA PRIMARY KEY,
    journal_seq BIGINT NOT NULL,
    erased_at BIGINT NOT NULL,
    purged_at BIGINT
);

-- Changes of the contact details that decide who can act as a customer (issue 15, finding 1).
-- Keep in lockstep with the other backend: same version, same name.
-- A new e-mail address waits here, sealed under the customer's data key, until it is confirmed
-- with the code sent for it — to the address on record when staff asked for the change, to the
-- new one when the customer did; only then does it replace the profile's address (and so the
-- portal's sign-in address). A phone change is recorded as confirmed at once. `value_mac` is the
-- blind index of the new value, `sent_to_mac` that of the address the code went to, `previous`
-- the address on record before (sealed); `code_mac` a keyed MAC of the row id and the code.
-- Erasure deletes the rows with the customer's other index entries.
CREATE TABLE contact_changes (
    id BLOB PRIMARY KEY,
    customer_id BLOB NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('email', 'phone')),
    value BLOB NOT NULL,
    value_mac BLOB NOT NULL,
    sent_to_mac BLOB NOT NULL,
    previous BLOB,
    code_mac BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    confirmed_at INTEGER
) STRICT;
CREATE INDEX contact_changes_by_customer ON contact_changes (customer_id);
CREATE INDEX contact_changes_by_sent_to ON contact_changes (sent_to_mac);

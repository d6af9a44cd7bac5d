-- Staff sign-in (issue 6): a login and an Argon2id password hash per staff member. The login is
-- kept only as a keyed MAC (it usually spells a name); sessions are API tokens that expire.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;

CREATE TABLE staff_credentials (
    staff_id BLOB PRIMARY KEY REFERENCES staff (id),
    login_mac BLOB NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

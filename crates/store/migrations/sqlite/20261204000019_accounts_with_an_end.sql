-- Accounts with an end (issue 17): when a token was last used (kept at most every 30 seconds, as
-- a server re-checks it), and when a staff member was disabled (their tokens and sessions are
-- revoked in the same transaction; a disabled staff member neither signs in nor authenticates).
-- Keep in lockstep with the other backend: same version, same name.
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE staff ADD COLUMN disabled_at INTEGER;

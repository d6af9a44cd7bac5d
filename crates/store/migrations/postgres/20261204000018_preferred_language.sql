-- The customer's preferred language (issue 16, part 4: the first field added through the one
-- declaration in steward_domain::profile). Sealed under the customer's data key like every
-- profile field; erasure clears it with the rest of the profile.
-- Keep in lockstep with the other backend: same version, same name.
ALTER TABLE customers ADD COLUMN preferred_language BYTEA;

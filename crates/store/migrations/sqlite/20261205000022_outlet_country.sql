-- An outlet's country (ISO 3166-1 alpha-2, issue 17): staff there may type phone numbers as
-- their customers say them, in the national format, and Steward knows the country code.
-- Keep in lockstep with the other backend: same version, same name.
ALTER TABLE outlets ADD COLUMN country TEXT;

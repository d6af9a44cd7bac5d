-- Personal data found in free text (issue 23). Keep in lockstep with the other backend: same
-- version, same name.
-- What a purpose does with personal data found in a text recorded under it: keep (sealed as
-- written), mask or redact. Existing purposes keep texts as they were kept before.
ALTER TABLE purposes ADD COLUMN pii_rule TEXT NOT NULL DEFAULT 'keep'
  CHECK (pii_rule IN ('keep', 'mask', 'redact'));
-- The kinds of personal data found in an interaction's text (CREDIT_CARD, IBAN_CODE, …; names
-- only, never a value), so the policy can withhold such texts from staff who do not need them.
-- Texts recorded before this version were not examined.
ALTER TABLE interactions ADD COLUMN pii_types TEXT NOT NULL DEFAULT '';

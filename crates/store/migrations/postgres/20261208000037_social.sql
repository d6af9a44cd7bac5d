-- Social CRM without shadow profiles (issue 23). Keep in lockstep with the other backend: same
-- version, same name.
-- A customer's handles on social platforms: profile data, sealed under the customer's key like
-- every profile field (blind indexes in lookup_index, kind 'social').
ALTER TABLE customers ADD COLUMN social_handles BYTEA;
-- A social event's platform id, as a keyed MAC of platform and id: a repeated event is stored
-- once. NULL for every other interaction.
ALTER TABLE interactions ADD COLUMN external_mac BYTEA;
CREATE UNIQUE INDEX interactions_external_mac ON interactions (external_mac);

-- The sender looks for claims left unsettled (issue 18) every second while a campaign is being
-- sent: an index on exactly those rows, so that look-up does not read every delivery ever made.
-- Keep in lockstep with the other backend: same version, same name.
CREATE INDEX campaign_deliveries_claimed ON campaign_deliveries (claimed_at) WHERE state = 'sending';

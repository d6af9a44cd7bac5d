-- Claims that say who holds them and whether the hand-over began (issue 18). Keep in lockstep
-- with the other backend: same version, same name.
-- `claimed_by` is a random id per claimed batch: only its claimer marks, hands over and settles
-- those rows, so a claim that expired and was taken again elsewhere is not also handed over
-- here. `handed_at` is committed just before the hand-over begins: a claim that expires without
-- it was certainly never handed over and goes back to the queue; one with it is uncertain.
ALTER TABLE campaign_deliveries ADD COLUMN claimed_by BYTEA;
ALTER TABLE campaign_deliveries ADD COLUMN handed_at BIGINT;
-- The sender looks for claims left unsettled every second while a campaign is being sent: an
-- index on exactly those rows, so that look-up does not read every delivery ever made.
CREATE INDEX campaign_deliveries_claimed ON campaign_deliveries (claimed_at) WHERE state = 'sending';

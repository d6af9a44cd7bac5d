-- What a campaign does for a recipient who has not agreed to personalisation when its body says
-- {{recommendations}} (issue 20): `send` the campaign without them, or `skip` the recipient. Keep
-- in lockstep with the other backend: same version, same name.
ALTER TABLE campaigns ADD COLUMN without_recommendations TEXT NOT NULL DEFAULT 'send';

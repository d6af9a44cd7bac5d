-- Access alerts for fraud reviews, and the reason of each flagged read kept sealed under the
-- customer's data key for the DPO (issue 15, finding 6). Keep in lockstep with ../sqlite: same
-- version, same name.
ALTER TABLE access_alerts DROP CONSTRAINT access_alerts_kind_check;
ALTER TABLE access_alerts ADD CONSTRAINT access_alerts_kind_check CHECK (kind IN ('break_glass', 'bulk_access', 'fraud_review'));
ALTER TABLE access_alerts ADD COLUMN reason BYTEA;

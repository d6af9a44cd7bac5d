-- An access alert for a caller who sizes too many segments in an hour (issue 18: differencing
-- segments can single a customer out). Keep in lockstep with ../sqlite: same version, same name.
ALTER TABLE access_alerts DROP CONSTRAINT access_alerts_kind_check;
ALTER TABLE access_alerts ADD CONSTRAINT access_alerts_kind_check CHECK (kind IN ('break_glass', 'bulk_access', 'fraud_review', 'segment_evaluations'));

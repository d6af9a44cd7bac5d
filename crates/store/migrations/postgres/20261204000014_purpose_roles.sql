-- Purposes bound to roles (issue 15, postgres). Keep in lockstep with the other backend: same version,
-- same name. Each purpose names the roles that may declare it for a read; a purpose registered
-- before this names the DPO alone, except the shipped ones, which get their shipped roles.
ALTER TABLE purposes ADD COLUMN roles TEXT NOT NULL DEFAULT '["dpo"]';
UPDATE purposes SET roles = '["dpo","sales_associate","store_manager","support_agent"]' WHERE key IN ('service', 'order_fulfilment');
UPDATE purposes SET roles = '["dpo","marketing"]' WHERE key IN ('marketing_email', 'personalisation');
UPDATE purposes SET roles = '["dpo","store_manager"]' WHERE key = 'fraud_prevention';
UPDATE purposes SET roles = '["analyst","dpo"]' WHERE key = 'analytics';
UPDATE purposes SET roles = '["dpo","sales_associate","store_manager"]' WHERE key = 'allocation';

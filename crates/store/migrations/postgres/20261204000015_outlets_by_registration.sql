-- A customer belongs to the outlet that registered them, no longer to every outlet where a purchase
-- was recorded (issue 15, finding 2: any associate could record a zero-amount purchase and make a
-- customer theirs). Purchases are shown in full per record, to the staff of their own outlet.
-- Keep in lockstep with the other backend: same version, same name.
DELETE FROM customer_outlets WHERE NOT EXISTS (
    SELECT 1 FROM customers c WHERE c.id = customer_outlets.customer_id AND c.outlet_id = customer_outlets.outlet_id
);

-- Sending campaigns (issue 18, points 2-4). Keep in lockstep with the other backend: same
-- version, same name.
-- Who a campaign sends for: the staff member (or, for a service client, the token) that started
-- it. The sender decides each recipient at send time with their roles as they are then, so a
-- campaign stops if its sender loses the right to send it.
ALTER TABLE campaigns ADD COLUMN sender_staff BLOB;
ALTER TABLE campaigns ADD COLUMN sender_token BLOB;
ALTER TABLE campaigns ADD COLUMN started_at INTEGER;
ALTER TABLE campaigns ADD COLUMN finished_at INTEGER;
-- One row per member of the segment when sending started: its state only. No address, no name,
-- no text: the message is rendered and sealed nowhere, only handed to the mail server.
-- A row moves queued -> sending (claimed, committed before the hand-off) -> sent | failed, or
-- queued -> sending -> skipped (reason: consent, cap, undeliverable, policy, erased); a row left
-- in `sending` by a process that died is marked `uncertain` and never sent again.
-- `customer_id` is cleared when the customer is erased: the counts stay, the link goes.
CREATE TABLE campaign_deliveries (
    id BLOB PRIMARY KEY,
    campaign_id BLOB NOT NULL REFERENCES campaigns (id),
    customer_id BLOB,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'uncertain', 'failed', 'skipped')),
    reason TEXT,
    claimed_at INTEGER,
    sent_at INTEGER,
    unsubscribed_at INTEGER,
    UNIQUE (campaign_id, customer_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX campaign_deliveries_by_state ON campaign_deliveries (campaign_id, state, id);
-- The frequency cap counts a customer's recent messages per purpose.
CREATE INDEX campaign_deliveries_by_customer ON campaign_deliveries (customer_id, purpose, claimed_at);

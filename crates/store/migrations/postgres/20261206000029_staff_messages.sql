-- Staff write to a customer by id and read the replies (issue 18, points 5-6). Keep in lockstep
-- with the other backend: same version, same name.
-- A thread is one conversation with one customer under one purpose. Its reply alias (160 random
-- bits) is kept sealed under the customer's data key, for the next message in the thread, and
-- found again only by its keyed MAC: the table holds no address, and an erasure (which deletes
-- these rows and destroys the key) leaves no alias that still reaches anyone.
CREATE TABLE message_threads (
    id BYTEA PRIMARY KEY,
    customer_id BYTEA NOT NULL REFERENCES customers (id),
    purpose TEXT NOT NULL,
    subject BYTEA NOT NULL,
    alias BYTEA NOT NULL,
    alias_mac BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX message_threads_by_customer ON message_threads (customer_id, id);
-- Each message of a thread: its text is the interaction of the same id (sealed like any other);
-- this row holds its subject (sealed), its direction and, for a message sent, its delivery state only:
-- queued -> sending (committed durably before the hand-over) -> sent | failed; one left sending
-- by a process that died is `uncertain` and never sent again.
CREATE TABLE thread_messages (
    id BYTEA PRIMARY KEY,
    thread_id BYTEA NOT NULL REFERENCES message_threads (id),
    customer_id BYTEA NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
    subject BYTEA,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'uncertain', 'failed', 'received')),
    reason TEXT,
    sender_staff BYTEA,
    sender_token BYTEA,
    created_at BIGINT NOT NULL,
    handed_at BIGINT,
    settled_at BIGINT
);
CREATE INDEX thread_messages_by_thread ON thread_messages (thread_id, id);
CREATE INDEX thread_messages_by_customer ON thread_messages (customer_id);
CREATE INDEX thread_messages_pending ON thread_messages (created_at) WHERE state IN ('queued', 'sending');
-- Addresses a delivery status notification said cannot be delivered to: the blind index of the
-- address (the address itself is only sealed in the profile), so a new address is tried again.
CREATE TABLE undeliverable_addresses (
    customer_id BYTEA NOT NULL,
    address_mac BYTEA NOT NULL,
    marked_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id, address_mac)
);

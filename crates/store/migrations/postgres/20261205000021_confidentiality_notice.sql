-- Staff who have agreed to the rules (issue 17, point 8): the DPO's confidentiality notice, every
-- version kept, and each staff member's acknowledgement of a version. The notice is the
-- business's text, not personal data; an acknowledgement names a staff member, never a customer.
-- Keep in lockstep with the other backend: same version, same name.
CREATE TABLE confidentiality_notices (
    version BIGINT PRIMARY KEY,
    text TEXT NOT NULL,
    published_at BIGINT NOT NULL
);

CREATE TABLE acknowledgements (
    staff_id BYTEA NOT NULL REFERENCES staff (id),
    version BIGINT NOT NULL,
    acknowledged_at BIGINT NOT NULL,
    PRIMARY KEY (staff_id, version)
);

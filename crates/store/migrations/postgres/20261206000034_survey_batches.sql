-- Survey answers wait in a pool until ten have come, then join the answers together (issue 21).
-- Keep in lockstep with the other backend: same version, same name.
-- Each waiting answer is sealed under the installation's directory key, so a copy of the
-- database taken between two answers shows one more opaque row, never what it says. When ten
-- are waiting they are opened, added to the survey's totals and deleted here, in one
-- transaction: the totals move ten answers or more at a time.
CREATE TABLE survey_pending (
    survey_id BYTEA NOT NULL REFERENCES surveys (id),
    id BYTEA NOT NULL,
    sealed BYTEA NOT NULL,
    PRIMARY KEY (survey_id, id)
);

-- Survey answers wait in a pool until ten have come, then join the answers together (issue 21).
-- Keep in lockstep with the other backend: same version, same name.
-- Each waiting answer is sealed under the installation's directory key, so a copy of the
-- database taken between two answers shows one more opaque row, never what it says. When ten
-- are waiting they are opened, moved to survey_responses under fresh random ids with the day of
-- the move, and deleted here, in one transaction: answers appear ten at a time.
CREATE TABLE survey_pending (
    survey_id BLOB NOT NULL REFERENCES surveys (id),
    id BLOB NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (survey_id, id)
) STRICT, WITHOUT ROWID;

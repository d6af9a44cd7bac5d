-- Anonymous surveys (issue 21). Keep in lockstep with the other backend: same version, same name.
-- A survey: its questions (the business's words, no one's data), the segment and purpose it
-- was sent under, and its RSA blind-signature key: the public half as SPKI DER, the secret half
-- sealed under the installation's directory key.
CREATE TABLE surveys (
    id BLOB PRIMARY KEY,
    title TEXT NOT NULL,
    questions TEXT NOT NULL,
    segment_id BLOB NOT NULL,
    purpose TEXT NOT NULL,
    public_key BLOB NOT NULL,
    secret_key BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
) STRICT, WITHOUT ROWID;
-- Who was asked, and whether their one token was issued (when is in the audit log, not here).
-- This reveals participation, never an answer; it goes with an erasure.
CREATE TABLE survey_invitations (
    survey_id BLOB NOT NULL REFERENCES surveys (id),
    customer_id BLOB NOT NULL,
    invited_at INTEGER NOT NULL,
    issued INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (survey_id, customer_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX survey_invitations_by_customer ON survey_invitations (customer_id);
-- Tokens used: the SHA-256 of each token's message, so none answers twice. Nothing ties a
-- token to the customer it was issued to: the server signed it blind.
CREATE TABLE survey_spent_tokens (
    survey_id BLOB NOT NULL REFERENCES surveys (id),
    token_hash BLOB NOT NULL,
    PRIMARY KEY (survey_id, token_hash)
) STRICT, WITHOUT ROWID;
-- The answers, as totals only: per question and answer, how many gave it, and how many
-- answered in all. No row per respondent is ever kept, so no combination of answers can single
-- anyone out. Answers reach these totals ten or more at a time (see the `survey_batches`
-- migration).
CREATE TABLE survey_tallies (
    survey_id BLOB NOT NULL REFERENCES surveys (id),
    question INTEGER NOT NULL,
    answer INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (survey_id, question, answer)
) STRICT, WITHOUT ROWID;
CREATE TABLE survey_totals (
    survey_id BLOB PRIMARY KEY REFERENCES surveys (id),
    responses INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Anonymous surveys (issue 21). Keep in lockstep with the other backend: same version, same name.
-- A survey: its questions (the business's words, no one's data), the segment and purpose it
-- was sent under, and its RSA blind-signature key: the public half as SPKI DER, the secret half
-- sealed under the installation's directory key.
CREATE TABLE surveys (
    id BYTEA PRIMARY KEY,
    title TEXT NOT NULL,
    questions TEXT NOT NULL,
    segment_id BYTEA NOT NULL,
    purpose TEXT NOT NULL,
    public_key BYTEA NOT NULL,
    secret_key BYTEA NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
-- Who was asked, and whether their one token was issued (when is in the audit log, not here).
-- This reveals participation, never an answer; it goes with an erasure.
CREATE TABLE survey_invitations (
    survey_id BYTEA NOT NULL REFERENCES surveys (id),
    customer_id BYTEA NOT NULL,
    invited_at BIGINT NOT NULL,
    issued BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (survey_id, customer_id)
);
CREATE INDEX survey_invitations_by_customer ON survey_invitations (customer_id);
-- Tokens used: the SHA-256 of each token's message, so none answers twice. Nothing ties a
-- token to the customer it was issued to: the server signed it blind.
CREATE TABLE survey_spent_tokens (
    survey_id BYTEA NOT NULL REFERENCES surveys (id),
    token_hash BYTEA NOT NULL,
    PRIMARY KEY (survey_id, token_hash)
);
-- The answers, as totals only: per question and answer, how many gave it, and how many
-- answered in all. No row per respondent is ever kept, so no combination of answers can single
-- anyone out. Answers reach these totals ten or more at a time (see the `survey_batches`
-- migration).
CREATE TABLE survey_tallies (
    survey_id BYTEA NOT NULL REFERENCES surveys (id),
    question BIGINT NOT NULL,
    answer BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (survey_id, question, answer)
);
CREATE TABLE survey_totals (
    survey_id BYTEA PRIMARY KEY REFERENCES surveys (id),
    responses BIGINT NOT NULL
);

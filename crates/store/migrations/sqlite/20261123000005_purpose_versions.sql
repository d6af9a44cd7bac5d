-- Every version of every purpose (sqlite). Keep in lockstep with ../postgres.
-- Consents name the notice version the customer was shown; this keeps what that version said, so
-- that an export or a dispute can show it after the DPO has changed the purpose.
CREATE TABLE purpose_versions (
    key TEXT NOT NULL,
    notice_version INTEGER NOT NULL,
    lawful_basis TEXT NOT NULL,
    data_use TEXT NOT NULL,
    categories TEXT NOT NULL,
    retention_days INTEGER NOT NULL,
    notice_text TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (key, notice_version)
) STRICT;
INSERT INTO purpose_versions (key, notice_version, lawful_basis, data_use, categories, retention_days, notice_text, recorded_at)
SELECT key, notice_version, lawful_basis, data_use, categories, retention_days, notice_text, CAST(strftime('%s', 'now') AS INTEGER) * 1000 FROM purposes;

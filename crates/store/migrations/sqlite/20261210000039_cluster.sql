-- Issue 24's shared limits live in PostgreSQL only: one process serves a SQLite file, and counts
-- its limits in memory, exactly. This migration keeps the two backends' histories in step.
SELECT 1;

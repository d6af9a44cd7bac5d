//! Steward's integration tests, in one binary to save link time. Every scenario that touches
//! storage runs on SQLite and on PostgreSQL (see `support::backend_tests!`).

// Tests fail loudly by design: a panic with its message is the report.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod access;
mod accounts;
mod analytics;
mod audit;
mod backups;
mod binary;
mod browser;
mod browser_journeys;
mod cluster;
mod conformance;
mod console;
mod console_admin;
mod console_forms;
mod crash;
mod door;
mod duplicates;
mod erasure;
mod failover;
mod holes;
mod http;
mod layers;
mod limits;
mod lookups;
mod mail;
mod matrix;
mod merge;
mod messages;
mod notice;
mod outbox;
mod personalisation;
mod pg_connections;
mod pg_instance;
mod pii;
mod plaintext;
mod portal;
mod portal_rights;
mod profile_field;
mod purposes;
mod requests;
mod retention;
mod search;
mod segments;
mod sharing;
mod sign_in;
mod smtp;
mod social;
mod support;
mod surveys;
mod tamper;
mod timeline;
mod walk;
mod webhooks;
mod widening;

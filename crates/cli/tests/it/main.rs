//! Steward's integration tests, in one binary to save link time. Every scenario that touches
//! storage runs on SQLite and on PostgreSQL (see `support::backend_tests!`).

// mod binary;
mod conformance;
mod http;
// mod plaintext;
mod support;

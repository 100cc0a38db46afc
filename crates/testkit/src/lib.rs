//! Test helpers shared by every backend: the store conformance suite, a real server on port 0, fresh PostgreSQL
//! databases, and ledger history written in the past.

pub mod conformance;
pub mod history;
pub mod pg;
pub mod server;
pub mod webhooks;

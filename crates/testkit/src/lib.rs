//! Test helpers shared by every backend: the store conformance suite, a real server on port 0, and fresh
//! PostgreSQL databases.

pub mod conformance;
pub mod pg;
pub mod server;
pub mod webhooks;

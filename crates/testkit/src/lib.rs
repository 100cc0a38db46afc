//! Test helpers shared by every backend: the store conformance suite and a real server on port 0.

pub mod conformance;
pub mod server;

//! Integration tests: every use case through the real HTTP server on port 0 with a fresh database, and the CLI
//! through the real binary. One test binary keeps linking cheap on small CI machines.

mod catalog;
mod cli;
mod common;
mod conventions;
mod inventory;
mod locations;
mod orders;
mod stress;

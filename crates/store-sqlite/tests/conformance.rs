//! Runs the backend-independent store conformance suite against SQLite: once on a fresh database file per test
//! (the real configuration: WAL, a pool of connections) and once on a fresh in-memory database (one connection).

use std::sync::Arc;

use app::Store;
use stockroom_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// A new database file in its own temporary directory; the directory lives as long as the returned guard.
async fn file_store() -> (TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("stockroom.db").display());
    let store = SqliteStore::connect(&url).await.expect("connect");
    (dir, Arc::new(store))
}

async fn memory_store() -> ((), Arc<dyn Store>) {
    ((), Arc::new(SqliteStore::connect("sqlite::memory:").await.expect("connect")))
}

mod file {
    use super::*;
    testkit::conformance_suite!(file_store());
    testkit::webhook_conformance_suite!(file_store());
}

mod memory {
    use super::*;
    testkit::conformance_suite!(memory_store());
    testkit::webhook_conformance_suite!(memory_store());
}

//! The PostgreSQL store on a fresh database per test (see `testkit::pg`).

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use stockroom_store_postgres::PgStore;
pub use testkit::pg::TestDb;

/// A store (a node) on the test's database, migrated.
pub async fn store(db: &TestDb) -> PgStore {
    PgStore::connect_with(db.options()).await.unwrap_or_else(|e| panic!("connecting to the test database: {e}"))
}

/// The conformance suite's `(guard, store)`.
pub async fn conformance_store(db: TestDb) -> (TestDb, Arc<dyn app::Store>) {
    let store = store(&db).await;
    (db, Arc::new(store))
}

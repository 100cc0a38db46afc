//! Runs the backend-independent store conformance suite against PostgreSQL: each test on a database of its own,
//! created on the server named by `STOCKROOM_TEST_POSTGRES_URL` and dropped when the test ends. Without that
//! variable every test says it was skipped and passes without connecting (see `common`).

mod common;

use common::{conformance_store, TestDb};

// The block returns from the test before anything connects when no server is configured; otherwise it is the
// future of a fresh `(guard, store)`.
testkit::conformance_suite!({
    let Some(db) = TestDb::create().await else { return };
    conformance_store(db)
});

testkit::webhook_conformance_suite!({
    let Some(db) = TestDb::create().await else { return };
    conformance_store(db)
});

//! A fresh PostgreSQL database per test, dropped when the test ends, passes or panics; for every crate whose tests
//! run on PostgreSQL.
//!
//! The server comes from `STOCKROOM_TEST_POSTGRES_URL` (`postgres://postgres@127.0.0.1:5432/test`; `.ci/run` sets
//! it). Each test creates `stockroom_test_<pid>_<time>_<n>` next to the database the URL names, and its guard drops
//! it again with `WITH (FORCE)`, which also ends the connections that the test's background tasks (an App's
//! write path and hold sweeper) still hold. Without the variable the tests say so once and pass without
//! connecting, so that `cargo test` works on a machine without PostgreSQL.

use std::io::Write as _;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

pub const URL_VAR: &str = "STOCKROOM_TEST_POSTGRES_URL";

/// A database of its own for one test; dropped with the guard.
pub struct TestDb {
    /// Where `CREATE DATABASE` and `DROP DATABASE` are run from.
    admin: PgConnectOptions,
    name: String,
    options: PgConnectOptions,
    url: String,
}

impl TestDb {
    /// A new, empty database, or `None` (after saying so once) when no server is configured.
    pub async fn create() -> Option<TestDb> {
        let url = match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => {
                skip_notice();
                return None;
            }
        };
        let base =
            PgConnectOptions::from_str(&url).unwrap_or_else(|e| panic!("{URL_VAR} is not a PostgreSQL URL: {e}"));
        let (mut conn, admin) = admin_connection(&base).await;
        let name = unique_name();
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
        let _ = conn.close().await;
        let url = with_database(&url, &name);
        Some(TestDb { admin, options: base.database(&name), name, url })
    }

    /// The test database's URL, for a server or CLI process of its own.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connection options for the test's database: every store made from them is another node.
    pub fn options(&self) -> PgConnectOptions {
        self.options.clone()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on from within; a thread with a small
        // runtime of its own can, and joining it makes sure the database is gone before the test is reported.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let mut conn = PgConnection::connect_with(&admin).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await?;
                let _ = conn.close().await;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}

/// A connection for creating and dropping databases: to the database the URL names if it exists, else to the
/// `postgres` maintenance database, which every server has.
async fn admin_connection(base: &PgConnectOptions) -> (PgConnection, PgConnectOptions) {
    let first = match PgConnection::connect_with(base).await {
        Ok(conn) => return (conn, base.clone()),
        Err(e) => e,
    };
    let fallback = base.clone().database("postgres");
    match PgConnection::connect_with(&fallback).await {
        Ok(conn) => (conn, fallback),
        Err(second) => panic!(
            "{URL_VAR} is set, but PostgreSQL cannot be reached: {first}; and through the postgres database: {second}"
        ),
    }
}

/// The URL with its database replaced: `postgres://u@h:5432/test?x=y` → `postgres://u@h:5432/NAME?x=y`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..].find('/').map(|i| i + after_scheme).unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database name no other test, nor another run at the same time, will pick.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("stockroom_test_{}_{nanos}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Says once per test binary that the PostgreSQL tests did not really run. Written to the process's stderr
/// directly: the test harness captures `eprintln!` of passing tests, and this must be seen.
fn skip_notice() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the PostgreSQL tests need a server; set {URL_VAR} (e.g. \
             postgres://postgres@127.0.0.1:5432/test) to run them. They pass without checking anything."
        );
    });
}

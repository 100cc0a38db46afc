//! The PostgreSQL store: every store trait of `app`, for one server node or several sharing one database.
//!
//! Unlike the SQLite store there is no write lock in the process: several `stockroom serve` processes may write
//! to the same database, so every guarantee has to come from the database itself.
//!
//! * The ledger's one write path ([`app::store::LedgerStore::apply_batch`]) runs each batch in one READ COMMITTED
//!   transaction that first takes a transaction-scoped advisory lock per item of the batch, in ascending item
//!   order, then row locks on the orders and holds it may rewrite, and only then reads what it decides on. Two
//!   batches that share an item therefore run one after the other on any number of nodes; batches over
//!   different items run side by side. Consistent lock order keeps deadlocks out, and should one happen anyway
//!   (or a serialization failure), the batch is decided again on freshly loaded state.
//! * Balances are written as increments and re-read in the same statement; the CHECK constraints refuse any
//!   state below zero, and a balance that does not come out as decided sends the batch round again. So even a
//!   batch that (by a bug) touched an item it had not locked could not oversell or overwrite another node's work.
//! * Uniqueness (SKUs, paths, a source's order numbers, idempotency keys, customers' email and phone) is left to
//!   unique constraints, which see every node's writes.
//!
//! Queries are checked at run time (no `query!` macros), so that the crate builds without a database. Lists are
//! bound as PostgreSQL arrays and expanded with `UNNEST`, so that a statement's text never depends on how many
//! rows it writes: one prepared statement serves every batch size, and there is no limit on parameters to chunk
//! around.

mod bundles;
mod catalog;
mod channels;
mod codec;
mod idempotency;
mod ledger;
mod locations;
mod orders;
mod pick_lists;
mod purchasing;
mod reports;
mod trust;
mod valuation;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use app::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres, QueryBuilder, Transaction};

use crate::codec::internal;

/// Connections per node. Each node's write path runs one batch at a time; the rest serve reads, which PostgreSQL
/// runs in parallel with the writes.
const MAX_CONNECTIONS: u32 = 16;

/// How long a request waits for a free connection before it is told the store is unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection used this recently is handed out as it is; one idle for longer is pinged first, and replaced if
/// the server has gone away from it (a restart, a proxy's idle cut). sqlx would otherwise ping before every use,
/// which doubles the round trips of each statement run straight on the pool.
const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// How long a session of ours may sit idle inside a transaction before the server ends it. Our transactions never
/// wait on anything but the database, so a session idle this long belongs to a node that hung mid-batch; ending it
/// releases the item locks it holds, which would otherwise stop every node from selling those items.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// The PostgreSQL store. Cheap to clone: clones share the connection pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and brings its schema
    /// up to date. Several nodes may call this at once: sqlx's migrator takes an advisory lock, so migrations run
    /// once.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("bad PostgreSQL URL: {}", redact(url, &e))))?;
        PgStore::connect_with(options).await
    }

    /// [`PgStore::connect`] with options built in code (tests, embedding).
    pub async fn connect_with(mut options: PgConnectOptions) -> Result<PgStore, StoreError> {
        // Settings given in the URL win over ours.
        if options.get_application_name().is_none() {
            options = options.application_name("stockroom");
        }
        let given = options.get_options().unwrap_or_default().to_string();
        if !given.contains("idle_in_transaction_session_timeout") {
            options = options.options([("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT)]);
        }
        // A commit is acknowledged only once it is on disk, whatever the server's default: an acknowledged stock
        // movement must never be lost. (An operator who accepts that risk says so in the URL.)
        if !given.contains("synchronous_commit") {
            options = options.options([("synchronous_commit", "on")]);
        }
        let what =
            format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or_default());
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_AFTER_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Internal(format!("cannot connect to PostgreSQL at {what}: {e}")))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("cannot migrate the PostgreSQL database {what}: {e}")))?;
        Ok(PgStore { pool })
    }

    /// The connection pool, for tools and tests that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a write transaction (READ COMMITTED, the server's default).
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(internal)
    }
}

/// The error of a URL that did not parse, without the URL's password should the error repeat it.
fn redact(url: &str, e: &sqlx::Error) -> String {
    let message = e.to_string();
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user_info, _)| user_info.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => message.replace(p, "***"),
        None => message,
    }
}

/// Commits when `result` is `Ok`, and rolls back at once otherwise, so that locks are released without waiting
/// for the connection to go back to the pool.
async fn finish<T>(tx: Transaction<'static, Postgres>, result: Result<T, StoreError>) -> Result<T, StoreError> {
    match result {
        Ok(v) => {
            tx.commit().await.map_err(internal)?;
            Ok(v)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback of a failed write transaction failed");
            }
            Err(e)
        }
    }
}

/// Appends "`column` is the location at `path` or lies below it". Not LIKE: `_` and `%` are wildcards there, and
/// location codes may contain `_`.
fn push_within<'a>(qb: &mut QueryBuilder<'a, Postgres>, column: &str, path: &'a str) {
    qb.push(format!("({column} = "))
        .push_bind(path)
        .push(format!(" OR starts_with({column}, "))
        .push_bind(path)
        .push(" || '/'))");
}

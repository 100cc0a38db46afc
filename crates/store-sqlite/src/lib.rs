//! The embedded SQLite store: one database file in WAL mode, implementing every store trait of `app`.
//!
//! Reads use the connection pool freely (WAL lets them run beside a writer). Writes are serialized within the
//! process by one async mutex held across each write transaction, and every write transaction starts with
//! `BEGIN IMMEDIATE`: SQLite has a single writer anyway, and taking the write lock up front avoids the deadlock of
//! two deferred transactions that both try to upgrade from reading to writing. Ledger batches write on a
//! connection of their own ([`LedgerWriter`]), which keeps their statements prepared.

mod bundles;
mod catalog;
mod channels;
mod codec;
mod direct;
mod idempotency;
mod ledger;
mod locations;
mod orders;
mod pick_lists;
mod purchasing;
mod readers;
mod reports;
mod trust;
mod valuation;
mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use app::store::StoreResult;
use app::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::codec::internal;

/// The largest number of bound parameters we put in one statement. SQLite allows 32766; staying far below keeps
/// statements small enough to prepare quickly while still cutting round trips by hundreds.
const MAX_PARAMS: usize = 3_000;

/// The most items a read takes on the caller's thread ([`readers`]); a read of more goes through sqlx's pool,
/// on its worker thread, so that no read of a whole catalog page holds up the requests sharing this thread.
const POINT_READ_ITEMS: usize = 64;

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in a file database's pool: readers run in parallel beside the single writer.
const MAX_CONNECTIONS: u32 = 8;

/// When a commit is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is synced before it is acknowledged, so it survives a power loss. The
    /// default: an acknowledged stock movement must never be lost.
    #[default]
    Full,
    /// `synchronous=NORMAL` in WAL mode: a commit survives the process crashing (it is in the WAL file), but the
    /// last commits before a power loss or OS crash may be lost; the WAL is synced at checkpoints. Much cheaper
    /// per commit; for machines with power-loss protection (battery-backed or enterprise SSDs, cloud volumes).
    Normal,
}

/// The SQLite store. Cheap to clone: clones share the pool and the write lock.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Held across every write transaction, so that this process never has two writers waiting on each other.
    /// It guards the ledger's own connection too.
    write_lock: Arc<Mutex<LedgerWriter>>,
    /// The point reads' own connections ([`readers`]); `None` for an in-memory database, which is the pool's one
    /// connection and cannot be opened again.
    readers: Option<Arc<readers::Readers>>,
}

/// The connection ledger batches write on, kept open for the life of the process so that the statements
/// [`direct`] prepares on it stay prepared from batch to batch. An in-memory database has only the pool's one
/// connection, so its batches borrow that one, as other writes do, and prepare their statements each time.
pub(crate) struct LedgerWriter {
    /// Where to open the connection; `None` for an in-memory database.
    options: Option<SqliteConnectOptions>,
    /// Declared before `conn`, so dropped first: it uses `conn`'s handle.
    statements: Option<direct::Statements>,
    conn: Option<sqlx::SqliteConnection>,
}

impl std::fmt::Debug for LedgerWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerWriter").field("open", &self.conn.is_some()).finish()
    }
}

impl LedgerWriter {
    /// Closes the connection (statements first): the next batch opens a new one. After any failed batch, so that
    /// a connection in a bad state is never reused.
    fn reset(&mut self) {
        self.statements = None;
        self.conn = None;
    }
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`: `sqlite://path.db`, `sqlite:path.db`, a
    /// plain file path, or `sqlite::memory:` for a private in-memory database. Commits are synced to disk before
    /// they are acknowledged ([`Durability::Full`]).
    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        Self::connect_with(url, Durability::Full).await
    }

    /// [`SqliteStore::connect`] with a chosen durability.
    pub async fn connect_with(url: &str, durability: Durability) -> Result<SqliteStore, StoreError> {
        let (options, in_memory) = parse_url(url)?;
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // No ping before each use (sqlx's default): a connection to a local file has no peer that could have gone
        // away, and the ping is a round trip to the connection's thread, as dear as a small statement.
        let pool_options = SqlitePoolOptions::new().test_before_acquire(false);
        let pool_options = if in_memory {
            // An in-memory database lives as long as its connection: one connection, never closed while the
            // pool lives, is the database.
            pool_options.max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
        } else {
            pool_options.max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Internal(format!("cannot open SQLite database '{url}': {e}")))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Internal(format!("cannot migrate SQLite database '{url}': {e}")))?;
        // Serialized (SQLite's own mutex on every call): the statements cached on this connection are finalized on
        // the caller's thread when it is reset or dropped, possibly while sqlx's worker still runs a rollback it
        // queued on it.
        let ledger_options = (!in_memory).then(|| options.clone().serialized(true));
        let writer = LedgerWriter { options: ledger_options, statements: None, conn: None };
        let readers = (!in_memory).then(|| Arc::new(readers::Readers::new(options.get_filename().to_path_buf())));
        Ok(SqliteStore { pool, write_lock: Arc::new(Mutex::new(writer)), readers })
    }

    /// Writes a consistent copy of the database to `path` while it stays in use: `VACUUM INTO` reads one snapshot
    /// (WAL lets writers go on meanwhile) and writes a compact new file, which must not exist yet.
    pub async fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        if path.exists() {
            return Err(StoreError::Internal(format!("{} exists already; choose a new file", path.display())));
        }
        let target = path.to_str().ok_or_else(|| StoreError::Internal("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO ?").bind(target).execute(&self.pool).await.map_err(internal)?;
        Ok(())
    }

    /// The connection pool, for tools and tests that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs a point read on this thread ([`readers`]): on a read connection of its own, or, for an in-memory
    /// database, on the pool's connection, borrowed from sqlx for the call.
    async fn read<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> StoreResult<T>) -> StoreResult<T> {
        if let Some(readers) = &self.readers {
            return readers.run(f);
        }
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        let mut handle = conn.lock_handle().await.map_err(internal)?;
        direct::with_handle(&mut handle, None, f)
    }

    /// Starts a write transaction: takes the process's write lock, then SQLite's (`BEGIN IMMEDIATE`).
    async fn write(&self) -> Result<WriteTx<'_>, StoreError> {
        let guard = self.write_lock.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(internal)?;
        Ok(WriteTx { tx, _guard: guard })
    }
}

/// A write transaction together with the process's write lock. Fields drop in order: the transaction (rolled back
/// unless committed) before the lock is released.
struct WriteTx<'a> {
    tx: Transaction<'static, Sqlite>,
    _guard: MutexGuard<'a, LedgerWriter>,
}

impl WriteTx<'_> {
    /// Commits when `result` is `Ok`, and rolls back at once otherwise, so that the next writer never waits for
    /// a rollback that was only queued.
    async fn finish<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        finish(self.tx, result).await
    }
}

/// Commits `tx` when `result` is `Ok`, and rolls back at once otherwise.
async fn finish<T>(tx: Transaction<'_, Sqlite>, result: Result<T, StoreError>) -> Result<T, StoreError> {
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

/// Reads the URL forms [`SqliteStore::connect`] accepts; the flag tells an in-memory database.
fn parse_url(url: &str) -> Result<(SqliteConnectOptions, bool), StoreError> {
    let bad = |e: sqlx::Error| StoreError::Internal(format!("bad SQLite URL '{url}': {e}"));
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url).map_err(bad)?;
        let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let in_memory = rest.starts_with(":memory:") || rest.contains("mode=memory");
        Ok((options, in_memory))
    } else if url == ":memory:" {
        Ok((SqliteConnectOptions::from_str("sqlite::memory:").map_err(bad)?, true))
    } else {
        // A plain path is taken literally: no URL decoding, so `?` and `%` in file names mean themselves.
        Ok((SqliteConnectOptions::new().filename(Path::new(url)), false))
    }
}

/// Splits `items` into chunks that bind at most [`MAX_PARAMS`] parameters when each item binds `per_item`.
fn chunks<T>(items: &[T], per_item: usize) -> std::slice::Chunks<'_, T> {
    items.chunks((MAX_PARAMS / per_item.max(1)).max(1))
}

/// `?, ?, ?` with `n` placeholders, for `IN (...)` lists.
fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// Appends "`column` is the location at `path` or lies below it". Not LIKE: `_` and `%` are wildcards there,
/// and location codes may contain `_`.
fn push_within<'a>(qb: &mut QueryBuilder<'a, Sqlite>, column: &str, path: &'a str) {
    qb.push(format!("({column} = "))
        .push_bind(path)
        .push(format!(" OR substr({column}, 1, length("))
        .push_bind(path)
        .push(") + 1) = ")
        .push_bind(path)
        .push(" || '/')");
}

#[cfg(test)]
mod tests;

//! Point reads on the caller's thread: the lookups a shop or a picker makes most (one SKU's levels, its channel
//! availability, the holds due), run with rusqlite on read connections this process keeps open.
//!
//! sqlx runs every SQLite statement on its connection's worker thread and hands the result back over a channel.
//! A lookup of a few rows costs SQLite microseconds, but each of its statements costs two thread switches, and on a
//! busy machine every switch waits for a core: an availability lookup made of four statements took 0.3 ms idle and
//! over 10 ms at p99 beside a full order load, most of it in the run queue. Here the statements run where the
//! request already is. WAL lets a reader run beside the writer without waiting for it, so a read blocks its thread
//! only for the microseconds SQLite spends on it; only short reads bounded by a key belong here.
//!
//! Each statement has one fixed text (lists bind as one JSON array), so each connection prepares it once.

use std::path::PathBuf;
use std::sync::Mutex;

use app::store::StoreResult;
use rusqlite::{Connection, OpenFlags, Params, Row};

use crate::codec::internal;

/// Read connections kept open between reads; more are opened when more reads run at once, and closed after.
const MAX_IDLE: usize = 8;

/// Room for every statement of the reads that run here.
const STATEMENT_CACHE: usize = 32;

/// The read connections of one database file.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish()
    }
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Readers {
        Readers { path, idle: Mutex::new(Vec::new()) }
    }

    /// Runs `f` on an idle read connection (or a new one), on this thread.
    pub(crate) fn run<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = f(&conn);
        // A connection left inside a transaction (a read that failed halfway) would pin an old snapshot and keep
        // the WAL from being checkpointed: it is closed instead of kept.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        result
    }

    /// How many connections wait for the next read.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn open(&self) -> StoreResult<Connection> {
        // Opened read-write, not read-only: a read-only connection to a WAL database fails where a read-write one
        // does not (no `-shm` file yet, a WAL left by a crash to recover). `query_only` refuses every write.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| internal(format!("cannot open a read connection to {}: {e}", self.path.display())))?;
        conn.busy_timeout(crate::BUSY_TIMEOUT).map_err(internal)?;
        conn.pragma_update(None, "query_only", true).map_err(internal)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// Every row `sql` yields for `params`, each decoded by `decode`, on a statement the connection keeps prepared.
pub(crate) fn all<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(internal)?;
    let mut rows = stmt.query(params).map_err(internal)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(internal)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// The first row `sql` yields for `params`, decoded by `decode`, if there is one.
pub(crate) fn first<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = c.prepare_cached(sql).map_err(internal)?;
    let mut rows = stmt.query(params).map_err(internal)?;
    rows.next().map_err(internal)?.map(decode).transpose()
}

//! The ledger batch's frequent statements, run synchronously on the write transaction's own SQLite handle.
//!
//! sqlx runs every SQLite statement on its connection's worker thread and hands the result back over a channel:
//! two thread switches per statement. A batch runs about a dozen statements while it holds the only write lock,
//! so under load those switches, not SQLite, are what every other writer waits for. Borrowing the connection's
//! handle from sqlx once per batch section (one hand-off) and running the statements here with rusqlite, on the
//! same linked libsqlite3, removes them. On the ledger's own connection the transaction begins and commits here
//! too. Rarer statements (documents, order and hold updates) stay on sqlx.
//!
//! Every statement here has one fixed text (lists bind as one JSON array, inserts as one row run once per row), so
//! that on the ledger's own connection ([`crate::LedgerWriter`]) each is prepared once for the process's life:
//! parsing, not running, was most of what these statements cost.

use std::collections::{BTreeSet, HashSet};

use app::store::{HoldId, HoldRecord, NewMovement, OrderId, OrderRecord, OutboxEvent, StoreResult};
use app::trust::NewAuditEntry;
use app::StoreError;
use chrono::{DateTime, Utc};
use domain::orders::HoldStatus;
use domain::stock::{Balance, BalanceKey, Balances, ItemId, StockState};
use rusqlite::{ffi, params_from_iter, Connection};
use sqlx::sqlite::LockedSqliteHandle;

use crate::codec::{enum_name, internal, micros, to_json, STATE_COLUMNS};
use crate::placeholders;

/// rusqlite's view of one sqlx connection's handle, with the statements it has prepared on it. Kept beside the
/// connection for its whole life ([`crate::LedgerWriter`]), so that a batch finds its statements prepared.
pub(crate) struct Statements {
    conn: Connection,
}

/// Runs `f` on the connection behind `handle`, on this thread. With `cache`, on the statements kept there (made
/// on first use, or anew if the handle is another connection's); without, on statements prepared for this call.
pub(crate) fn with_handle<T>(
    handle: &mut LockedSqliteHandle<'_>,
    cache: Option<&mut Option<Statements>>,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let raw = handle.as_raw_handle().as_ptr();
    // SAFETY: `raw` is sqlx's open connection, which is ours alone until `handle` drops (its worker thread waits
    // for the lock meanwhile), and every statement run through the `Connection` made from it runs here, inside
    // that window. `from_handle` does not take ownership: dropping the `Connection` finalizes only the statements
    // it prepared and leaves the connection open. A cached `Connection` lives in `LedgerWriter` beside the sqlx
    // connection it belongs to and is dropped first, by `reset`; that drop may happen outside the window (while
    // sqlx's worker runs a rollback it queued), which is why that connection is opened serialized: SQLite's own
    // mutex then orders the two threads' calls.
    match cache {
        Some(slot) => {
            if slot.as_ref().is_some_and(|s| unsafe { s.conn.handle() } != raw) {
                // `reset` always drops both together, so this is a bug; the old handle may be closed, and its
                // statements must not be finalized through it.
                return Err(StoreError::Internal("the ledger's cached statements belong to another connection".into()));
            }
            if slot.is_none() {
                let conn = unsafe { Connection::from_handle(raw) }.map_err(internal)?;
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                *slot = Some(Statements { conn });
            }
            f(&slot.as_ref().expect("made above").conn)
        }
        None => {
            let conn = unsafe { Connection::from_handle(raw) }.map_err(internal)?;
            f(&conn)
        }
    }
}

/// Room for every statement of this module.
const STATEMENT_CACHE: usize = 32;

/// Maps a database error as [`crate::codec::db_error`] does for sqlx's, so callers see the same conflicts: sqlx
/// turns on extended result codes for its connections, and these statements run on them.
fn db_error(e: rusqlite::Error, foreign_key: &str) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, message) = &e {
        match err.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_CHECK => {
                let message = message.as_deref().unwrap_or_default();
                let constraint = message.split_once(": ").map(|(_, c)| c).unwrap_or(message);
                return StoreError::Conflict { constraint: constraint.to_string() };
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return StoreError::Conflict { constraint: foreign_key.to_string() },
            _ => {}
        }
    }
    StoreError::Internal(e.to_string())
}

fn db(e: rusqlite::Error) -> StoreError {
    db_error(e, "foreign_key")
}

/// Begins the batch's write transaction if the database's write lock is free now, and says whether it did. A
/// writer in another process (or another store on the same file) may hold it: waiting for it here would block
/// the async runtime's thread for up to the busy timeout, so the caller waits on sqlx's thread instead.
/// A transaction still open here was left by a batch that never finished: it is rolled back first, as closing
/// the connection would have.
pub(crate) fn try_begin_immediate(conn: &Connection) -> StoreResult<bool> {
    if !conn.is_autocommit() {
        tracing::warn!("the ledger's connection was left in a transaction; rolling it back");
        rollback(conn)?;
    }
    conn.busy_timeout(std::time::Duration::ZERO).map_err(db)?;
    let begun = conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([]));
    conn.busy_timeout(crate::BUSY_TIMEOUT).map_err(db)?;
    match begun {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => Ok(false),
        Err(e) => Err(db(e)),
    }
}

/// Commits the batch's transaction.
pub(crate) fn commit(conn: &Connection) -> StoreResult<()> {
    conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([])).map_err(db)?;
    Ok(())
}

/// Rolls back the batch's transaction, if one is open (SQLite may have rolled it back itself on some errors).
pub(crate) fn rollback(conn: &Connection) -> StoreResult<()> {
    if !conn.is_autocommit() {
        conn.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([])).map_err(db)?;
    }
    Ok(())
}

/// The time of a write transaction: now, but never before the newest movement (clocks step back; another process
/// may have written with a clock slightly ahead), so that movement times follow commit order.
pub(crate) fn transaction_time(conn: &Connection) -> StoreResult<DateTime<Utc>> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT MAX(recorded_at) FROM movements")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db)?;
    let now = Utc::now();
    Ok(match last.and_then(DateTime::<Utc>::from_timestamp_micros) {
        Some(last) if last > now => last,
        _ => now,
    })
}

/// `items` as one JSON array parameter: every list of ids binds as one value, so a statement's text is the same
/// whatever the list's length and stays prepared (`IN (SELECT value FROM json_each(?))` uses the indexes as an
/// `IN` list does).
fn json_ids(items: &[i64]) -> String {
    let mut s = String::with_capacity(items.len() * 8 + 2);
    s.push('[');
    for (i, id) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&id.to_string());
    }
    s.push(']');
    s
}

/// Every stored balance of `items` (sorted, distinct), at every location.
pub(crate) fn load_balances(conn: &Connection, items: &[ItemId]) -> StoreResult<Balances> {
    let mut out = Balances::new();
    if items.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT item_id, location_id, {STATE_COLUMNS} FROM stock_levels \
          WHERE item_id IN (SELECT value FROM json_each(?))"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let mut rows = stmt.query([json_ids(items)]).map_err(db)?;
    while let Some(row) = rows.next().map_err(db)? {
        let key: BalanceKey = (row.get(0).map_err(internal)?, row.get(1).map_err(internal)?);
        let mut b = Balance::default();
        for (i, state) in StockState::ALL.into_iter().enumerate() {
            b.add(state, row.get::<_, i64>(2 + i).map_err(internal)?);
        }
        out.insert(key, b);
    }
    Ok(out)
}

/// The ids of the orders that still owe units of any of `items`, oldest placement first (then lowest id), each
/// once even when it owes several of the items.
pub(crate) fn backorder_queue(conn: &Connection, items: &[ItemId]) -> StoreResult<Vec<OrderId>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut queue: BTreeSet<(i64, OrderId)> = BTreeSet::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT placed_at, order_id FROM order_backorders \
              WHERE item_id IN (SELECT value FROM json_each(?))",
        )
        .map_err(db)?;
    let rows = stmt.query_map([json_ids(items)], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db)?;
    for row in rows {
        queue.insert(row.map_err(db)?);
    }
    // The rows of one order all carry its placed_at (they are rewritten together), so an id repeats only if that
    // ever broke; keeping the first keeps the queue a list of distinct orders regardless.
    let mut seen = HashSet::with_capacity(queue.len());
    Ok(queue.into_iter().map(|(_, id)| id).filter(|id| seen.insert(*id)).collect())
}

/// Which of the given (source, external number) pairs stored orders have.
pub(crate) fn taken_numbers(conn: &Connection, numbers: &[(String, String)]) -> StoreResult<HashSet<(String, String)>> {
    let mut taken = HashSet::new();
    if numbers.is_empty() {
        return Ok(taken);
    }
    let pairs = serde_json::to_string(numbers).map_err(internal)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT source, external_number FROM orders WHERE (source, external_number) IN \
             (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))",
        )
        .map_err(db)?;
    let rows = stmt.query_map([pairs], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db)?;
    for row in rows {
        taken.insert(row.map_err(db)?);
    }
    Ok(taken)
}

/// The active holds whose expiry is at or before `at`, and the items they hold: the batch loads the holds with
/// the others by id, and the items' balances with its own, since ending a hold gives its units back.
pub(crate) fn due_holds(conn: &Connection, at: DateTime<Utc>) -> StoreResult<(Vec<HoldId>, Vec<ItemId>)> {
    let mut stmt = conn.prepare_cached("SELECT id, doc FROM holds WHERE status = ? AND expires_at <= ?").map_err(db)?;
    let mut rows = stmt.query(rusqlite::params![HoldStatus::Active.as_str(), micros(at)]).map_err(db)?;
    let (mut ids, mut items) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next().map_err(db)? {
        ids.push(row.get::<_, HoldId>(0).map_err(internal)?);
        let doc: String = row.get(1).map_err(internal)?;
        let hold: domain::orders::Hold = app::store_codec::from_json("hold", &doc)?;
        items.extend(hold.lines.iter().map(|l| l.item));
    }
    Ok((ids, items))
}

/// Writes the movements and returns their ids in the order given. Every insert of the batch is one prepared
/// single-row statement run once per row: SQLite parses it once, where a multi-row INSERT would be parsed anew for
/// every batch size, and parsing is what such a statement costs most.
pub(crate) fn insert_movements(conn: &Connection, movements: &[NewMovement]) -> StoreResult<Vec<i64>> {
    if movements.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO movements (item_id, quantity, from_location_id, from_state, to_location_id, to_state, \
             reason, reference, note, actor, request_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(db)?;
    let mut out = Vec::with_capacity(movements.len());
    for m in movements {
        out.push(
            stmt.insert(rusqlite::params![
                m.item_id,
                m.quantity,
                m.from_location_id,
                m.from_state.map(|s| s.as_str()),
                m.to_location_id,
                m.to_state.map(|s| s.as_str()),
                m.reason.as_str(),
                m.reference,
                m.note,
                m.actor,
                m.request_id,
                micros(m.recorded_at),
            ])
            .map_err(db)?,
        );
    }
    Ok(out)
}

pub(crate) fn insert_events(conn: &Connection, events: &[OutboxEvent], now: DateTime<Utc>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut stmt =
        conn.prepare_cached("INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)").map_err(db)?;
    for e in events {
        stmt.execute(rusqlite::params![e.topic, e.payload.to_string(), micros(now)]).map_err(db)?;
    }
    Ok(())
}

/// Writes changed balances. The CHECK constraints refuse a negative state here, failing the whole batch.
pub(crate) fn upsert_balances(conn: &Connection, changed: &[(BalanceKey, Balance)]) -> StoreResult<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let sets: Vec<String> = StockState::ALL.iter().map(|s| format!("{0} = excluded.{0}", s.as_str())).collect();
    let sql = format!(
        "INSERT INTO stock_levels (item_id, location_id, {STATE_COLUMNS}) VALUES ({}) \
         ON CONFLICT (item_id, location_id) DO UPDATE SET {}",
        placeholders(2 + StockState::ALL.len()),
        sets.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    for ((item, location), bal) in changed {
        let values = [*item, *location].into_iter().chain(StockState::ALL.iter().map(|s| bal.get(*s)));
        stmt.execute(params_from_iter(values)).map_err(db)?;
    }
    Ok(())
}

/// Inserts new orders (their ids are ignored) with their backorder rows; returns the new ids in the order given.
/// The columns besides the document are copied out of it, as [`crate::orders`] describes.
pub(crate) fn insert_orders(conn: &Connection, orders: &[OrderRecord]) -> StoreResult<Vec<OrderId>> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO orders (source, external_number, request_hash, customer_id, currency, payment_terms, \
             status, notes, doc, placed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(db)?;
    let mut out = Vec::with_capacity(orders.len());
    for rec in orders {
        let id = stmt
            .insert(rusqlite::params![
                rec.source,
                rec.external_number,
                rec.request_hash,
                rec.customer_id,
                rec.currency,
                enum_name(&rec.payment_terms)?,
                enum_name(&rec.order.status)?,
                rec.notes,
                to_json("order", &rec.order)?,
                micros(rec.placed_at),
                micros(rec.updated_at),
            ])
            .map_err(|e| crate::orders::external_number_conflict(db_error(e, "orders.customer_id")))?;
        out.push(id);
    }
    // A new order has no backorder rows yet: write them all at once, without deleting first.
    let mut backorder = None;
    for (id, rec) in out.iter().zip(orders) {
        for item in rec.order.open_demand_items() {
            if backorder.is_none() {
                backorder = Some(
                    conn.prepare_cached("INSERT INTO order_backorders (order_id, item_id, placed_at) VALUES (?, ?, ?)")
                        .map_err(db)?,
                );
            }
            let stmt = backorder.as_mut().expect("prepared above");
            stmt.execute(rusqlite::params![id, item, micros(rec.placed_at)])
                .map_err(|e| db_error(e, "order_backorders.item_id"))?;
        }
    }
    Ok(out)
}

/// Inserts new holds (their ids are ignored); returns the new ids in the order given.
pub(crate) fn insert_holds(conn: &Connection, holds: &[HoldRecord]) -> StoreResult<Vec<HoldId>> {
    if holds.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO holds (status, expires_at, doc, skus, quantities, reference, order_id, created_at, \
             updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(db)?;
    let mut out = Vec::with_capacity(holds.len());
    for rec in holds {
        let id = stmt
            .insert(rusqlite::params![
                rec.hold.status.as_str(),
                micros(rec.hold.expires_at),
                to_json("hold", &rec.hold)?,
                to_json("hold SKUs", &rec.skus)?,
                to_json("hold quantities", &rec.quantities)?,
                rec.reference,
                rec.order_id,
                micros(rec.created_at),
                micros(rec.updated_at),
            ])
            .map_err(|e| db_error(e, "holds.order_id"))?;
        out.push(id);
    }
    Ok(out)
}

/// Writes the audit entries of the batch's commands.
pub(crate) fn insert_audit(conn: &Connection, entries: &[NewAuditEntry]) -> StoreResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO audit_log (at, actor_key_id, actor_name, request_id, entity, entity_id, action, status, \
             summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(db)?;
    for e in entries {
        stmt.execute(rusqlite::params![
            micros(e.at),
            e.actor_key_id,
            e.actor_name,
            e.request_id,
            e.entity,
            e.entity_id,
            e.action,
            i64::from(e.status),
            e.summary
        ])
        .map_err(db)?;
    }
    Ok(())
}

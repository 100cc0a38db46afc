//! The ledger: the one write path ([`LedgerStore::apply_batch`]) and the reads of balances and movements.
//!
//! A batch loads everything it may decide on (the balances of its items, its orders and the orders waiting for
//! those items, its holds and the due ones) inside its write transaction, lets `decide` change that state, and
//! writes the result in the same transaction: movements, events, and every balance, order and hold that changed.
//! The statements every batch runs go straight to the connection's SQLite handle ([`crate::direct`]): a batch
//! that needs no stored order, hold or document runs from `BEGIN IMMEDIATE` to `COMMIT` in one hand-off.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::str::FromStr;

use app::purchasing_store::{DocumentId, DocumentRecord};
use app::store::{
    BatchIds, BatchScope, BatchState, BatchWrites, Decide, HoldId, LedgerStore, LevelFilter, LevelRow, MovementFilter,
    MovementRecord, NewMovement, OrderId, StoreResult,
};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::stock::{Balance, BalanceKey, ItemId, Reason, StockState};
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection as _, QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::codec::{balance, db, from_micros, internal, micros, parse, parse_state, Cols};
use crate::{direct, orders, purchasing, push_within, SqliteStore};

/// The ids to write back: those `decide` named, and those whose record it changed without naming them (the trait
/// promises that every change is written), in id order so that batches lock and write reproducibly.
fn changed_ids<T: PartialEq>(before: &BTreeMap<i64, T>, after: &BTreeMap<i64, T>, named: &[i64]) -> Vec<i64> {
    let mut ids: BTreeSet<i64> = named.iter().copied().collect();
    ids.extend(after.iter().filter(|(id, rec)| before.get(id) != Some(rec)).map(|(id, _)| *id));
    ids.into_iter().collect()
}

fn level_row(row: &impl Cols) -> StoreResult<LevelRow> {
    Ok(LevelRow {
        item_id: row.col("item_id")?,
        sku: row.col("sku")?,
        location_id: row.col("location_id")?,
        path: row.col("path")?,
        balance: balance(row)?,
    })
}

/// One item's listed level rows, in path order, when the item comes after `after_item`: the page
/// [`push_levels_page`] makes for a filter of that item alone, read on the caller's thread ([`crate::readers`]).
fn item_levels_on(c: &rusqlite::Connection, item: ItemId, after_item: Option<ItemId>) -> StoreResult<Vec<LevelRow>> {
    if after_item.is_some_and(|after| item <= after) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT s.item_id, i.sku, s.location_id, l.path, {states} FROM stock_levels s \
           JOIN locations l ON l.id = s.location_id JOIN items i ON i.id = s.item_id \
          WHERE s.item_id = ? AND {listed} ORDER BY l.path",
        states = state_columns("s"),
        listed = any_nonzero("s"),
    );
    crate::readers::all(c, &sql, [item], |r| level_row(r))
}

/// `s.available, s.committed, …` for a table alias.
fn state_columns(alias: &str) -> String {
    StockState::ALL.iter().map(|s| format!("{alias}.{}", s.as_str())).collect::<Vec<_>>().join(", ")
}

/// `(s.available <> 0 OR s.committed <> 0 OR …)`.
fn any_nonzero(alias: &str) -> String {
    let parts: Vec<String> = StockState::ALL.iter().map(|s| format!("{alias}.{} <> 0", s.as_str())).collect();
    format!("({})", parts.join(" OR "))
}

/// Which movements a fold reads.
#[derive(Clone, Copy, Default)]
struct FoldScope {
    as_of: Option<DateTime<Utc>>,
    after_item: Option<ItemId>,
    item: Option<ItemId>,
}

impl FoldScope {
    fn push_conditions(&self, qb: &mut QueryBuilder<'_, Sqlite>) {
        if let Some(t) = self.as_of {
            qb.push(" AND recorded_at <= ").push_bind(micros(t));
        }
        if let Some(after) = self.after_item {
            qb.push(" AND item_id > ").push_bind(after);
        }
        if let Some(item) = self.item {
            qb.push(" AND item_id = ").push_bind(item);
        }
    }
}

/// Appends a CTE `folded AS (…)`: the movements in `scope` folded into balances per (item, location). Each
/// stocked side adds (to) or subtracts (from) its quantity in its state; virtual sides have no state and no
/// balance, so they are skipped.
fn push_folded_cte(qb: &mut QueryBuilder<'_, Sqlite>, scope: FoldScope) {
    let mut sums = String::new();
    for s in StockState::ALL {
        let _ = write!(sums, ", SUM(CASE WHEN state = '{0}' THEN q ELSE 0 END) AS {0}", s.as_str());
    }
    qb.push(format!(
        "folded AS MATERIALIZED (SELECT item_id, location_id{sums} FROM ( \
           SELECT item_id, to_location_id AS location_id, to_state AS state, quantity AS q FROM movements \
            WHERE to_state IS NOT NULL"
    ));
    scope.push_conditions(qb);
    qb.push(
        " UNION ALL SELECT item_id, from_location_id, from_state, -quantity FROM movements WHERE from_state IS NOT NULL",
    );
    scope.push_conditions(qb);
    qb.push(") GROUP BY item_id, location_id)");
}

/// Appends the conditions a listed level row meets: in the location subtree (when given) and not all zero.
fn push_level_filter<'a>(qb: &mut QueryBuilder<'a, Sqlite>, within: &'a Option<String>) {
    if let Some(within) = within {
        qb.push(" AND ");
        push_within(qb, "l.path", within);
    }
    qb.push(format!(" AND {}", any_nonzero("s")));
}

/// Appends the paged level query over `source` (`stock_levels`, or the `folded` CTE pushed before it): first the
/// ids of the next `item_limit` items that have a listed row, then those items' listed rows in item, then path
/// order. Finding the page first lets SQLite walk the primary key and stop early instead of reading every row.
fn push_levels_page<'a>(
    qb: &mut QueryBuilder<'a, Sqlite>,
    source: &str,
    filter: &'a LevelFilter,
    after_item: Option<ItemId>,
    item_limit: u32,
) {
    qb.push(format!(
        "page AS (SELECT DISTINCT s.item_id FROM {source} s JOIN locations l ON l.id = s.location_id WHERE s.item_id > "
    ))
    .push_bind(after_item.unwrap_or(i64::MIN));
    if let Some(item) = filter.item_id {
        qb.push(" AND s.item_id = ").push_bind(item);
    }
    push_level_filter(qb, &filter.within);
    qb.push(" ORDER BY s.item_id LIMIT ").push_bind(i64::from(item_limit));
    qb.push(format!(
        ") SELECT s.item_id, i.sku, s.location_id, l.path, {states} FROM page p \
           JOIN {source} s ON s.item_id = p.item_id JOIN locations l ON l.id = s.location_id \
           JOIN items i ON i.id = s.item_id WHERE 1 = 1",
        states = state_columns("s"),
    ));
    push_level_filter(qb, &filter.within);
    qb.push(" ORDER BY s.item_id, l.path");
}

/// Every row of a balance source with the natural keys of its item and location.
fn all_levels_sql(source: &str) -> String {
    format!(
        "SELECT s.item_id, i.sku, s.location_id, l.path, {states} FROM {source} s \
           JOIN items i ON i.id = s.item_id JOIN locations l ON l.id = s.location_id \
          ORDER BY s.item_id, l.path",
        states = state_columns("s"),
    )
}

fn movement_record(row: &SqliteRow) -> StoreResult<MovementRecord> {
    let reason: String = row.try_get("reason").map_err(internal)?;
    Ok(MovementRecord {
        id: row.try_get("id").map_err(internal)?,
        sku: row.try_get("sku").map_err(internal)?,
        from_path: row.try_get("from_path").map_err(internal)?,
        to_path: row.try_get("to_path").map_err(internal)?,
        movement: NewMovement {
            item_id: row.try_get("item_id").map_err(internal)?,
            quantity: row.try_get("quantity").map_err(internal)?,
            from_location_id: row.try_get("from_location_id").map_err(internal)?,
            from_state: parse_state(row.try_get("from_state").map_err(internal)?)?,
            to_location_id: row.try_get("to_location_id").map_err(internal)?,
            to_state: parse_state(row.try_get("to_state").map_err(internal)?)?,
            reason: parse("reason", Reason::from_str(&reason))?,
            reference: row.try_get("reference").map_err(internal)?,
            note: row.try_get("note").map_err(internal)?,
            actor: row.try_get("actor").map_err(internal)?,
            request_id: row.try_get("request_id").map_err(internal)?,
            recorded_at: from_micros(row.try_get("recorded_at").map_err(internal)?)?,
        },
    })
}

/// One batch on `conn`: the reads every batch makes, `decide`, and the writes, all on the connection's handle
/// (see `direct`) in one hand-off when the batch needs no stored order, hold or document, as most batches do.
/// Those are read and written by id through sqlx, which takes a hand-off of its own for the reads and another
/// for the writes on the handle.
async fn run_batch(
    conn: &mut SqliteConnection,
    mut cache: Option<&mut Option<direct::Statements>>,
    scope: &BatchScope,
    decide: &mut Decide<'_>,
    tx: TxControl,
) -> StoreResult<BatchIds> {
    let mut begun = tx == TxControl::Caller;
    let first = loop {
        let mut handle = conn.lock_handle().await.map_err(internal)?;
        let first = direct::with_handle(&mut handle, cache.as_deref_mut(), |c| {
            if !begun && !direct::try_begin_immediate(c)? {
                return Ok(None);
            }
            let (state, due_holds) = read_state(c, scope)?;
            let needs_records = !(scope.orders.is_empty()
                && scope.holds.is_empty()
                && scope.documents.is_empty()
                && due_holds.is_empty()
                && state.backorder_queue.is_empty());
            if needs_records {
                return Ok(Some(First::NeedsRecords(state, due_holds)));
            }
            let mut decided = Decided::make(state, decide);
            let commit_here = tx == TxControl::Own && decided.updates_nothing();
            let ids = decided.insert(c, commit_here)?;
            Ok(Some(First::Written(Box::new(decided), ids, commit_here)))
        })?;
        drop(handle);
        match first {
            Some(first) => break first,
            // Another writer has the database: wait for it with sqlx, on its thread, as long as the busy timeout.
            None => {
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.map_err(internal)?;
                begun = true;
            }
        }
    };
    let (decided, ids, committed) = match first {
        First::Written(decided, ids, committed) => (*decided, ids, committed),
        First::NeedsRecords(mut state, due_holds) => {
            let mut order_ids: Vec<OrderId> = scope.orders.iter().chain(&state.backorder_queue).copied().collect();
            order_ids.sort_unstable();
            order_ids.dedup();
            state.orders = orders::load_orders(conn, &order_ids).await?;
            let mut hold_ids: Vec<HoldId> = scope.holds.iter().chain(&due_holds).copied().collect();
            hold_ids.sort_unstable();
            hold_ids.dedup();
            state.holds = orders::load_holds(conn, &hold_ids).await?;
            state.documents = purchasing::load_documents(conn, &scope.documents).await?;
            let mut decided = Decided::make(state, decide);
            // Documents first: a stale one fails the batch before anything else is written.
            purchasing::write_changed(conn, &decided.documents_before, &decided.state.documents).await?;
            let commit_here = tx == TxControl::Own && decided.updates_nothing();
            let mut handle = conn.lock_handle().await.map_err(internal)?;
            let ids = direct::with_handle(&mut handle, cache.as_deref_mut(), |c| decided.insert(c, commit_here))?;
            (decided, ids, commit_here)
        }
    };
    // Updates of stored orders and holds stay on sqlx, after the inserts (a hold may name an order placed now).
    orders::update_orders(conn, &decided.state.orders, &decided.changed_orders).await?;
    orders::update_holds(conn, &decided.state.holds, &decided.changed_holds).await?;
    if tx == TxControl::Own && !committed {
        let mut handle = conn.lock_handle().await.map_err(internal)?;
        direct::with_handle(&mut handle, cache, direct::commit)?;
    }
    Ok(ids)
}

/// How a batch's first hand-off ended.
enum First {
    /// Decided and inserted (and committed, when the flag says so).
    Written(Box<Decided>, BatchIds, bool),
    /// Read, but stored orders, holds or documents are needed before deciding; with the due holds' ids.
    NeedsRecords(BatchState, Vec<HoldId>),
}

/// The batch's state as the handle reads it: time, balances, backorder queue and taken order numbers, with no
/// order, hold or document yet; and the ids of the holds that are due, when the scope asks for them.
fn read_state(c: &rusqlite::Connection, scope: &BatchScope) -> StoreResult<(BatchState, Vec<HoldId>)> {
    let now = direct::transaction_time(c)?;
    let (due, mut items) = if scope.due_holds { direct::due_holds(c, now)? } else { (Vec::new(), Vec::new()) };
    items.extend_from_slice(&scope.items);
    items.sort_unstable();
    items.dedup();
    let balances = direct::load_balances(c, &items)?;
    let backorder_queue = direct::backorder_queue(c, &items)?;
    let taken_numbers = direct::taken_numbers(c, &scope.order_numbers)?;
    let state = BatchState {
        now,
        items,
        balances,
        orders: BTreeMap::new(),
        backorder_queue,
        holds: BTreeMap::new(),
        taken_numbers,
        documents: BTreeMap::new(),
    };
    Ok((state, due))
}

/// What `decide` made of a batch's state, with what changed.
struct Decided {
    state: BatchState,
    writes: BatchWrites,
    /// Changed balances, in key order: a stable write order makes batches reproducible.
    balances: Vec<(BalanceKey, Balance)>,
    changed_orders: Vec<OrderId>,
    changed_holds: Vec<HoldId>,
    documents_before: BTreeMap<DocumentId, DocumentRecord>,
}

impl Decided {
    fn make(mut state: BatchState, decide: &mut Decide<'_>) -> Decided {
        let (balances_before, orders_before, holds_before, documents_before) =
            (state.balances.clone(), state.orders.clone(), state.holds.clone(), state.documents.clone());
        let writes = decide(&mut state);
        let mut balances: Vec<(BalanceKey, Balance)> = state
            .balances
            .iter()
            .filter(|(key, bal)| balances_before.get(key).copied().unwrap_or_default() != **bal)
            .map(|(key, bal)| (*key, *bal))
            .collect();
        balances.sort_unstable_by_key(|(key, _)| *key);
        let changed_orders = changed_ids(&orders_before, &state.orders, &writes.changed_orders);
        let changed_holds = changed_ids(&holds_before, &state.holds, &writes.changed_holds);
        Decided { state, writes, balances, changed_orders, changed_holds, documents_before }
    }

    /// No stored order or hold to update, so the inserts are the batch's last writes.
    fn updates_nothing(&self) -> bool {
        self.changed_orders.is_empty() && self.changed_holds.is_empty()
    }

    /// The inserts every batch makes (and the balances), then the commit when `commit`.
    fn insert(&mut self, c: &rusqlite::Connection, commit: bool) -> StoreResult<BatchIds> {
        let writes = &mut self.writes;
        let movements = direct::insert_movements(c, &writes.movements)?;
        direct::upsert_balances(c, &self.balances)?;
        let orders = direct::insert_orders(c, &writes.new_orders)?;
        app::webhook_store::fill_new_order_ids(&mut writes.events, &orders);
        direct::insert_events(c, &writes.events, self.state.now)?;
        let holds = direct::insert_holds(c, &writes.new_holds)?;
        direct::insert_audit(c, &app::store::resolve_batch_audit(&writes.audit, &orders, &holds))?;
        if commit {
            direct::commit(c)?;
        }
        Ok(BatchIds { movements, orders, holds })
    }
}

/// Who begins and ends a batch's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxControl {
    /// The caller, through sqlx.
    Caller,
    /// [`run_batch`] itself, on the handle, in the hand-offs it makes anyway: sqlx's `begin` and `commit` would
    /// each cost two more thread switches, and under load those were half of a batch's time.
    Own,
}

/// Resets the ledger's connection when dropped before the batch on it finished.
struct ResetUnlessFinished<'a> {
    writer: &'a mut crate::LedgerWriter,
    finished: bool,
}

impl Drop for ResetUnlessFinished<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.writer.reset();
        }
    }
}

/// Rolls back the failed batch's transaction on the ledger's connection, if one is open. A failure is reported
/// as the batch's own error is, and the connection is then reset anyway unless the error was a conflict.
async fn rollback(conn: &mut SqliteConnection, cache: &mut Option<direct::Statements>) {
    let done = match conn.lock_handle().await {
        Ok(mut handle) => direct::with_handle(&mut handle, Some(cache), direct::rollback),
        Err(e) => Err(internal(e)),
    };
    if let Err(e) = done {
        tracing::warn!(error = %e, "rollback of a failed ledger batch failed");
    }
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn apply_batch(&self, scope: &BatchScope, decide: &mut Decide<'_>) -> StoreResult<BatchIds> {
        let mut guard = self.write_lock.lock().await;
        // Until the batch has finished, the connection may hold its open transaction: should the batch never
        // finish (a panic in `decide`), the connection is closed, which rolls it back.
        let mut open = ResetUnlessFinished { writer: &mut guard, finished: false };
        let writer = &mut *open.writer;
        if writer.conn.is_none() {
            if let Some(options) = &writer.options {
                writer.conn = Some(SqliteConnection::connect_with(options).await.map_err(internal)?);
            }
        }
        let result = match &mut writer.conn {
            Some(conn) => {
                let result = run_batch(conn, Some(&mut writer.statements), scope, decide, TxControl::Own).await;
                if result.is_err() {
                    rollback(conn, &mut writer.statements).await;
                }
                result
            }
            None => {
                let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(internal)?;
                let result = run_batch(&mut tx, None, scope, decide, TxControl::Caller).await;
                crate::finish(tx, result).await
            }
        };
        match &result {
            // A constraint refused the batch: rolled back, and the connection is as good as before.
            Ok(_) | Err(StoreError::Conflict { .. }) => open.finished = true,
            // Anything else may have left the connection in a state not to trust with the next batch.
            Err(e) => tracing::warn!(error = %e, "ledger batch failed; reopening the ledger's connection"),
        }
        result
    }

    async fn levels(
        &self,
        filter: &LevelFilter,
        after_item: Option<ItemId>,
        item_limit: u32,
    ) -> StoreResult<Vec<LevelRow>> {
        // One SKU's levels, what shops and pickers ask most, is a point read.
        if let (Some(item), None, 1..) = (filter.item_id, &filter.within, item_limit) {
            return self.read(|c| item_levels_on(c, item, after_item)).await;
        }
        let mut qb = QueryBuilder::<Sqlite>::new("WITH ");
        push_levels_page(&mut qb, "stock_levels", filter, after_item, item_limit);
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(level_row).collect()
    }

    async fn levels_as_of(
        &self,
        filter: &LevelFilter,
        as_of: DateTime<Utc>,
        after_item: Option<ItemId>,
        item_limit: u32,
    ) -> StoreResult<Vec<LevelRow>> {
        // The item conditions are applied inside the fold too, so that the index on (item_id, id) narrows the
        // movements read; the fold is materialized once and then paged like the stored balances.
        let mut qb = QueryBuilder::<Sqlite>::new("WITH ");
        push_folded_cte(&mut qb, FoldScope { as_of: Some(as_of), after_item, item: filter.item_id });
        qb.push(", ");
        push_levels_page(&mut qb, "folded", filter, after_item, item_limit);
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(level_row).collect()
    }

    async fn movements(
        &self,
        filter: &MovementFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<MovementRecord>> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT m.id, m.item_id, i.sku, m.quantity, m.from_location_id, f.path AS from_path, m.from_state, \
                    m.to_location_id, t.path AS to_path, m.to_state, m.reason, m.reference, m.note, m.actor, \
                    m.request_id, m.recorded_at \
               FROM movements m JOIN items i ON i.id = m.item_id \
               JOIN locations f ON f.id = m.from_location_id JOIN locations t ON t.id = m.to_location_id \
              WHERE m.id > ",
        );
        qb.push_bind(after.unwrap_or(i64::MIN));
        if let Some(item) = filter.item_id {
            qb.push(" AND m.item_id = ").push_bind(item);
        }
        if let Some(reason) = filter.reason {
            qb.push(" AND m.reason = ").push_bind(reason.as_str());
        }
        if let Some(from) = filter.from {
            qb.push(" AND m.recorded_at >= ").push_bind(micros(from));
        }
        if let Some(to) = filter.to {
            qb.push(" AND m.recorded_at < ").push_bind(micros(to));
        }
        if let Some(within) = &filter.within {
            qb.push(" AND (");
            push_within(&mut qb, "f.path", within);
            qb.push(" OR ");
            push_within(&mut qb, "t.path", within);
            qb.push(")");
        }
        qb.push(" ORDER BY m.id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(movement_record).collect()
    }

    async fn balances_and_ledger(&self) -> StoreResult<(Vec<LevelRow>, Vec<LevelRow>)> {
        // One read transaction: in WAL mode it sees one snapshot from its first read to its end, so no batch can
        // commit between reading the balances and folding the ledger.
        let mut tx = self.pool.begin().await.map_err(internal)?;
        let stored = sqlx::query(&all_levels_sql("stock_levels")).fetch_all(&mut *tx).await.map_err(db)?;
        let mut qb = QueryBuilder::<Sqlite>::new("WITH ");
        push_folded_cte(&mut qb, FoldScope::default());
        qb.push(" ");
        qb.push(all_levels_sql("folded"));
        let folded = qb.build().fetch_all(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(internal)?;
        let stored = stored.iter().map(level_row).collect::<StoreResult<Vec<_>>>()?;
        let folded = folded.iter().map(level_row).collect::<StoreResult<Vec<_>>>()?;
        Ok((stored, folded))
    }
}

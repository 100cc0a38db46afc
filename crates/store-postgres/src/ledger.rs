//! The ledger: the one write path ([`LedgerStore::apply_batch`]) and the reads of balances and movements.
//!
//! A batch runs in one READ COMMITTED transaction, in this order:
//!
//! 1. **Lock.** A transaction-scoped advisory lock per item of the scope (plus the items of the holds due when the
//!    batch began, read without locks, when the batch ends due holds), in ascending item id order, all in one
//!    statement. Balance rows may not exist yet, so they cannot be row-locked; the item's advisory lock stands for
//!    all its balances, at every location, existing or not. Every batch first takes the key -1, which stands for
//!    all items, shared; a batch of more than a thousand items takes it exclusively instead of its items' locks,
//!    which would not fit PostgreSQL's lock table. Every batch locks in the same order, so two batches never wait
//!    on each other in a circle.
//! 2. **Read**, in statements started after the locks, so that they see everything committed before them: the
//!    newest movement time, the balances and the backorder queue of the items and which of the scope's order
//!    numbers are taken, in one statement; then the orders (the scope's and the queue's) and the scope's holds
//!    with row locks in id order, and, when the lock statement found any, the due holds with `SKIP LOCKED`.
//! 3. **Decide**: the app's closure changes the state and says what to write.
//! 4. **Write** and commit: movements and new orders and holds under ids drawn from their sequences beforehand (so
//!    that ids follow the batch's order for sure), events and audit entries (with the movements, in one
//!    statement), every changed balance as an increment re-read in the same statement, and every changed order and
//!    hold.
//!
//! A deadlock or serialization failure, or a balance that does not come out as decided (someone changed it without
//! the item's lock, which a correct batch never does), rolls the transaction back and runs the batch again from
//! step 1: `decide` is called again with freshly loaded state, as its contract allows.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use app::store::{
    BatchIds, BatchScope, BatchState, Decide, LedgerStore, LevelFilter, LevelRow, MovementFilter, MovementRecord,
    NewMovement, OrderId, OutboxEvent, StoreResult,
};
use app::trust::NewAuditEntry;
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::orders::HoldStatus;
use domain::stock::{Balance, BalanceKey, Balances, ItemId, Reason, StockState};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::codec::{
    balance, db, db_error, from_micros, get, internal, is_retryable, micros, parse, parse_state, STATE_COLUMNS,
};
use crate::{orders, push_within, PgStore};

/// How many times a batch is run before a retryable failure is reported. Lock order keeps deadlocks rare; a batch
/// that still fails this often is fighting something that retrying will not fix.
const MAX_ATTEMPTS: u32 = 5;

/// The pause before the second run of a batch; doubled for each further run.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);

/// Why one run of a batch failed.
#[derive(Debug)]
pub(crate) enum BatchError {
    /// A statement failed; the name is what to report should it be a foreign key violation.
    Db(sqlx::Error, &'static str),
    Store(StoreError),
    /// A balance came out other than decided: it changed outside the locks this batch holds.
    Stale(String),
}

impl BatchError {
    pub(crate) fn db(e: sqlx::Error) -> BatchError {
        BatchError::Db(e, "foreign_key")
    }

    pub(crate) fn db_fk(e: sqlx::Error, foreign_key: &'static str) -> BatchError {
        BatchError::Db(e, foreign_key)
    }

    /// Whether running the batch again on fresh state may succeed.
    fn retryable(&self) -> bool {
        match self {
            BatchError::Db(e, _) => is_retryable(e),
            BatchError::Stale(_) => true,
            BatchError::Store(_) => false,
        }
    }

    pub(crate) fn into_store(self) -> StoreError {
        match self {
            BatchError::Db(e, foreign_key) => db_error(e, foreign_key),
            BatchError::Store(e) => e,
            BatchError::Stale(what) => StoreError::Internal(what),
        }
    }
}

impl From<StoreError> for BatchError {
    fn from(e: StoreError) -> Self {
        BatchError::Store(e)
    }
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Db(e, _) => write!(f, "{e}"),
            BatchError::Store(e) => write!(f, "{e}"),
            BatchError::Stale(what) => f.write_str(what),
        }
    }
}

/// Sorted and without repeats.
fn distinct(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The advisory lock key that stands for every item at once. Item ids start at 1, so no item has it.
pub(crate) const ALL_ITEMS_KEY: i64 = -1;

/// The most items a batch locks one by one. PostgreSQL's lock table is shared by all sessions and small (by
/// default about 6,400 locks); a batch of more items (a stock import of a whole catalog) would fill it and fail
/// with "out of shared memory". Such a batch takes [`ALL_ITEMS_KEY`] exclusively instead, which every other batch
/// takes shared before its item locks: it waits for the batches running and runs alone.
const MAX_ITEM_LOCKS: i64 = 1000;

/// Takes the locks of a batch in one statement: [`ALL_ITEMS_KEY`] (shared, or exclusive for a batch of more than
/// [`MAX_ITEM_LOCKS`] items), then the advisory lock of every item of the scope and, when `due_at` is given, of
/// every item of the holds due by then, in ascending id order (every batch locks in that order, the shared key
/// first). Returns the items and whether any hold was due. The due holds are read without locks, only to learn
/// their items (they are locked further down); the statement's ordered subquery yields the keys in order, and
/// each one's lock is taken as its row is produced. The locks are released when the transaction ends.
async fn lock_items(
    conn: &mut PgConnection,
    items: &[ItemId],
    due_at: Option<DateTime<Utc>>,
) -> Result<(Vec<ItemId>, bool), BatchError> {
    if items.is_empty() && due_at.is_none() {
        return Ok((Vec::new(), false));
    }
    let rows: Vec<(ItemId, bool)> = sqlx::query_as(
        "WITH ids AS MATERIALIZED ( \
             SELECT id, bool_or(due) AS due FROM ( \
                 SELECT $5::int8 AS id, false AS due \
                 UNION ALL \
                 SELECT id, false FROM UNNEST($1::int8[]) AS s (id) \
                 UNION ALL \
                 SELECT (l.line->>'item')::int8, true FROM holds h, jsonb_array_elements(h.doc->'lines') AS l (line) \
                  WHERE $2 AND h.status = $3 AND h.expires_at <= $4) a \
             GROUP BY id) \
         SELECT u.id, u.due FROM ( \
             SELECT id, due, (SELECT count(*) FROM ids) > $6 + 1 AS whole FROM ids ORDER BY id) u \
         LEFT JOIN LATERAL (SELECT pg_advisory_xact_lock_shared(u.id) WHERE u.id = $5 AND NOT u.whole) AS s ON true \
         LEFT JOIN LATERAL (SELECT pg_advisory_xact_lock(u.id) WHERE (u.id = $5) = u.whole) AS x ON true",
    )
    .bind(items)
    .bind(due_at.is_some())
    .bind(HoldStatus::Active.as_str())
    .bind(due_at.map_or(0, micros))
    .bind(ALL_ITEMS_KEY)
    .bind(MAX_ITEM_LOCKS)
    .fetch_all(&mut *conn)
    .await
    .map_err(BatchError::db)?;
    let any_due = rows.iter().any(|(_, due)| *due);
    Ok((rows.into_iter().map(|(id, _)| id).filter(|id| *id != ALL_ITEMS_KEY).collect(), any_due))
}

/// What a batch reads in one statement right after its locks, so that it sees everything committed before them.
struct Locked {
    /// The batch's time: now, but never before the newest movement (clocks step back, and another node's clock may
    /// run slightly ahead), so that the movements of any one item follow commit order in time.
    now: DateTime<Utc>,
    /// Every stored balance of the items, at every location (a balance without a row is absent: zero).
    balances: Balances,
    /// The orders that still owe units of any of the items, oldest placement first (then lowest id), each once.
    backorder_queue: Vec<OrderId>,
    /// Which of the scope's (source, external number) pairs stored orders already have.
    taken_numbers: HashSet<(String, String)>,
}

/// Reads [`Locked`] in one round trip and one row: the balances come as one array per column, beside the
/// newest movement time, the backorder queue and the taken numbers.
async fn read_locked(
    conn: &mut PgConnection,
    items: &[ItemId],
    numbers: &[(String, String)],
) -> Result<Locked, BatchError> {
    let (sources, externals): (Vec<&str>, Vec<&str>) = numbers.iter().map(|(s, n)| (s.as_str(), n.as_str())).unzip();
    let states: Vec<String> = StockState::ALL.iter().map(|s| format!("array_agg({0}) AS {0}", s.as_str())).collect();
    let sql = format!(
        "SELECT l.last, q.queue, n.sources, n.numbers, b.* \
           FROM (SELECT MAX(recorded_at) AS last FROM movements) l \
          CROSS JOIN (SELECT ARRAY(SELECT o.order_id FROM (SELECT DISTINCT placed_at, order_id FROM order_backorders \
                                                            WHERE item_id = ANY($1)) o \
                                    ORDER BY o.placed_at, o.order_id) AS queue) q \
          CROSS JOIN (SELECT array_agg(o.source) AS sources, array_agg(o.external_number) AS numbers FROM orders o \
                        JOIN UNNEST($2::text[], $3::text[]) AS t (source, external_number) \
                          ON o.source = t.source AND o.external_number = t.external_number) n \
          CROSS JOIN (SELECT array_agg(item_id) AS item_ids, array_agg(location_id) AS location_ids, {} \
                        FROM stock_levels WHERE item_id = ANY($1)) b",
        states.join(", ")
    );
    let row = sqlx::query(&sql)
        .bind(items)
        .bind(&sources)
        .bind(&externals)
        .fetch_one(&mut *conn)
        .await
        .map_err(BatchError::db)?;
    let last: Option<i64> = get(&row, "last")?;
    let queue: Vec<OrderId> = get(&row, "queue")?;
    let sources: Option<Vec<String>> = get(&row, "sources")?;
    let taken: Option<Vec<String>> = get(&row, "numbers")?;
    // Every aggregate runs over the same rows, so the arrays line up (all NULL when the items have no balance).
    let item_ids: Vec<i64> = get::<Option<Vec<i64>>>(&row, "item_ids")?.unwrap_or_default();
    let location_ids: Vec<i64> = get::<Option<Vec<i64>>>(&row, "location_ids")?.unwrap_or_default();
    let mut balances: Vec<((i64, i64), Balance)> =
        item_ids.into_iter().zip(location_ids).map(|key| (key, Balance::default())).collect();
    for state in StockState::ALL {
        let column: Vec<i64> = get::<Option<Vec<i64>>>(&row, state.as_str())?.unwrap_or_default();
        if column.len() != balances.len() {
            return Err(StoreError::Internal("the batch read's balance arrays differ in length".into()).into());
        }
        for ((_, balance), quantity) in balances.iter_mut().zip(column) {
            balance.add(state, quantity);
        }
    }
    let now = Utc::now();
    let now = match last.and_then(DateTime::<Utc>::from_timestamp_micros) {
        Some(last) if last > now => last,
        _ => now,
    };
    // The rows of one order all carry its placed_at (they are rewritten together), so an id repeats only if that
    // ever broke; keeping the first keeps the queue a list of distinct orders regardless.
    let mut seen = HashSet::with_capacity(queue.len());
    let backorder_queue = queue.into_iter().filter(|id| seen.insert(*id)).collect();
    let taken_numbers = sources.unwrap_or_default().into_iter().zip(taken.unwrap_or_default()).collect();
    Ok(Locked { now, balances: balances.into_iter().collect(), backorder_queue, taken_numbers })
}

/// Locks and loads what a batch over `scope` sees (steps 1 and 2 of the module's list).
async fn load_state(conn: &mut PgConnection, scope: &BatchScope) -> Result<BatchState, BatchError> {
    // Ending a due hold gives its reserved units back, so its items' balances must be locked too. The batch ends
    // the holds due when it began (`due_at`); one falling due while it waits for its locks is the next batch's.
    let due_at = scope.due_holds.then(Utc::now);
    let (items, any_due) = lock_items(conn, &scope.items, due_at).await?;
    let Locked { now, balances, backorder_queue, taken_numbers } =
        read_locked(conn, &items, &scope.order_numbers).await?;
    let order_ids = distinct(scope.orders.iter().chain(&backorder_queue).copied().collect());
    let orders = orders::lock_orders(conn, &order_ids).await?;
    let mut holds = orders::lock_holds(conn, &distinct(scope.holds.clone())).await?;
    if let (true, Some(due_at)) = (any_due, due_at) {
        // A hold due then but unseen by the lock statement (another node's clock runs ahead) may belong to an item
        // this batch has not locked; ending it here could not write its balances safely, so it is left for the next
        // batch, which will lock its items.
        let locked: BTreeSet<ItemId> = items.iter().copied().collect();
        for (id, rec) in orders::lock_due_holds(conn, due_at).await? {
            if rec.hold.lines.iter().all(|l| locked.contains(&l.item)) {
                holds.entry(id).or_insert(rec);
            }
        }
    }
    let documents = crate::purchasing::lock_documents(conn, &distinct(scope.documents.clone())).await?;
    Ok(BatchState { now, items, balances, orders, backorder_queue, holds, taken_numbers, documents })
}

/// The ids to write back: those `decide` named, and those whose record it changed without naming them (the trait
/// promises that every change is written), in id order so that batches write reproducibly.
fn changed_ids<T: PartialEq>(before: &BTreeMap<i64, T>, after: &BTreeMap<i64, T>, named: &[i64]) -> Vec<i64> {
    let mut ids: BTreeSet<i64> = named.iter().copied().collect();
    ids.extend(after.iter().filter(|(id, rec)| before.get(id) != Some(rec)).map(|(id, _)| *id));
    ids.into_iter().collect()
}

/// The ids a batch's inserts will get, drawn from the sequences in one round trip: `n` ids per table, ascending,
/// so that the i-th row written gets the i-th id and ids follow the order of the writes. Concurrent batches draw
/// from the same sequences, so a batch's ids are ascending but not necessarily consecutive.
async fn draw_ids(
    conn: &mut PgConnection,
    movements: usize,
    orders: usize,
    holds: usize,
) -> Result<BatchIds, BatchError> {
    if movements + orders + holds == 0 {
        return Ok(BatchIds::default());
    }
    let count = |n: usize| i64::try_from(n).map_err(internal);
    let (mut m, mut o, mut h): (Vec<i64>, Vec<i64>, Vec<i64>) = sqlx::query_as(
        "SELECT ARRAY(SELECT nextval('movements_id_seq') FROM generate_series(1, $1)), \
                ARRAY(SELECT nextval('orders_id_seq') FROM generate_series(1, $2)), \
                ARRAY(SELECT nextval('holds_id_seq') FROM generate_series(1, $3))",
    )
    .bind(count(movements)?)
    .bind(count(orders)?)
    .bind(count(holds)?)
    .fetch_one(&mut *conn)
    .await
    .map_err(BatchError::db)?;
    for ids in [&mut m, &mut o, &mut h] {
        ids.sort_unstable();
    }
    if (m.len(), o.len(), h.len()) != (movements, orders, holds) {
        return Err(StoreError::Internal("the sequences handed out the wrong number of ids".into()).into());
    }
    Ok(BatchIds { movements: m, orders: o, holds: h })
}

/// Writes the movements under the given ids, the events, and the audit entries of the batch's commands, in one
/// statement (data-modifying `WITH` parts): one round trip for the three appends every batch makes.
async fn insert_appends(
    conn: &mut PgConnection,
    ids: &[i64],
    movements: &[NewMovement],
    events: &[OutboxEvent],
    now: DateTime<Utc>,
    audit: &[NewAuditEntry],
) -> Result<(), BatchError> {
    if movements.is_empty() && events.is_empty() && audit.is_empty() {
        return Ok(());
    }
    let items: Vec<i64> = movements.iter().map(|m| m.item_id).collect();
    let quantities: Vec<i64> = movements.iter().map(|m| m.quantity).collect();
    let from: Vec<i64> = movements.iter().map(|m| m.from_location_id).collect();
    let from_states: Vec<Option<&str>> = movements.iter().map(|m| m.from_state.map(StockState::as_str)).collect();
    let to: Vec<i64> = movements.iter().map(|m| m.to_location_id).collect();
    let to_states: Vec<Option<&str>> = movements.iter().map(|m| m.to_state.map(StockState::as_str)).collect();
    let reasons: Vec<&str> = movements.iter().map(|m| m.reason.as_str()).collect();
    let references: Vec<Option<&str>> = movements.iter().map(|m| m.reference.as_deref()).collect();
    let notes: Vec<Option<&str>> = movements.iter().map(|m| m.note.as_deref()).collect();
    let actors: Vec<&str> = movements.iter().map(|m| m.actor.as_str()).collect();
    let request_ids: Vec<Option<&str>> = movements.iter().map(|m| m.request_id.as_deref()).collect();
    let recorded_at: Vec<i64> = movements.iter().map(|m| micros(m.recorded_at)).collect();
    let topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    let payloads: Vec<String> = events.iter().map(|e| e.payload.to_string()).collect();
    let audit_at: Vec<i64> = audit.iter().map(|e| micros(e.at)).collect();
    let audit_keys: Vec<Option<i64>> = audit.iter().map(|e| e.actor_key_id).collect();
    let audit_names: Vec<&str> = audit.iter().map(|e| e.actor_name.as_str()).collect();
    let audit_requests: Vec<Option<&str>> = audit.iter().map(|e| e.request_id.as_deref()).collect();
    let audit_entities: Vec<&str> = audit.iter().map(|e| e.entity.as_str()).collect();
    let audit_entity_ids: Vec<Option<&str>> = audit.iter().map(|e| e.entity_id.as_deref()).collect();
    let audit_actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    let audit_statuses: Vec<i32> = audit.iter().map(|e| i32::from(e.status)).collect();
    let audit_summaries: Vec<&str> = audit.iter().map(|e| e.summary.as_str()).collect();
    sqlx::query(
        "WITH m AS (INSERT INTO movements (id, item_id, quantity, from_location_id, from_state, to_location_id, \
                    to_state, reason, reference, note, actor, request_id, recorded_at) \
                    SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::int8[], \
                                         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
                                         $12::text[], $13::int8[])), \
              e AS (INSERT INTO outbox (topic, payload, created_at) \
                    SELECT u.topic, u.payload::jsonb, $16 FROM UNNEST($14::text[], $15::text[]) AS u (topic, payload)) \
         INSERT INTO audit_log (at, actor_key_id, actor_name, request_id, entity, entity_id, action, status, summary) \
         SELECT * FROM UNNEST($17::int8[], $18::int8[], $19::text[], $20::text[], $21::text[], $22::text[], \
                              $23::text[], $24::int4[], $25::text[])",
    )
    .bind(ids)
    .bind(&items)
    .bind(&quantities)
    .bind(&from)
    .bind(&from_states)
    .bind(&to)
    .bind(&to_states)
    .bind(&reasons)
    .bind(&references)
    .bind(&notes)
    .bind(&actors)
    .bind(&request_ids)
    .bind(&recorded_at)
    .bind(&topics)
    .bind(&payloads)
    .bind(micros(now))
    .bind(&audit_at)
    .bind(&audit_keys)
    .bind(&audit_names)
    .bind(&audit_requests)
    .bind(&audit_entities)
    .bind(&audit_entity_ids)
    .bind(&audit_actions)
    .bind(&audit_statuses)
    .bind(&audit_summaries)
    .execute(&mut *conn)
    .await
    .map_err(BatchError::db)?;
    Ok(())
}

/// One array per column of balance rows: item, location, then the seven states in [`StockState::ALL`] order.
struct BalanceArrays {
    items: Vec<i64>,
    locations: Vec<i64>,
    states: [Vec<i64>; 7],
}

impl BalanceArrays {
    fn new(rows: &[(BalanceKey, Balance)]) -> BalanceArrays {
        let mut states: [Vec<i64>; 7] = Default::default();
        for (i, state) in StockState::ALL.into_iter().enumerate() {
            states[i] = rows.iter().map(|(_, b)| b.get(state)).collect();
        }
        BalanceArrays {
            items: rows.iter().map(|((item, _), _)| *item).collect(),
            locations: rows.iter().map(|((_, location), _)| *location).collect(),
            states,
        }
    }

    fn bind<'q>(
        &'q self,
        mut q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        q = q.bind(&self.items).bind(&self.locations);
        for column in &self.states {
            q = q.bind(column);
        }
        q
    }
}

/// `UNNEST($1::int8[], …, $9::int8[]) AS u (item_id, location_id, available, …)`.
fn unnest_balances() -> String {
    let arrays: Vec<String> = (1..=9).map(|i| format!("${i}::int8[]")).collect();
    format!("UNNEST({}) AS u (item_id, location_id, {STATE_COLUMNS})", arrays.join(", "))
}

/// Writes every changed balance as an increment and checks that each comes out as decided.
///
/// Balances that existed when the batch read them are raised or lowered by the difference (`UPDATE … SET
/// available = available + delta`); new ones are inserted (and, should one have appeared meanwhile, raised
/// instead). The CHECK constraints refuse any state below zero, failing the whole batch. Each statement returns
/// the balances it left, and a balance other than the decided one means it changed outside this batch's locks:
/// the batch is run again rather than committed on a stale decision.
async fn write_balances(conn: &mut PgConnection, before: &Balances, after: &Balances) -> Result<(), BatchError> {
    // Sorted, so that batches touch rows in one order (they hold the items' locks, but row locks are taken too).
    let mut raised: Vec<(BalanceKey, Balance)> = Vec::new();
    let mut inserted: Vec<(BalanceKey, Balance)> = Vec::new();
    for (key, bal) in after {
        match before.get(key) {
            Some(old) if old == bal => {}
            Some(old) => {
                let mut delta = Balance::default();
                for state in StockState::ALL {
                    delta.add(state, bal.get(state) - old.get(state));
                }
                raised.push((*key, delta));
            }
            None if *bal == Balance::default() => {}
            None => inserted.push((*key, *bal)),
        }
    }
    raised.sort_unstable_by_key(|(key, _)| *key);
    inserted.sort_unstable_by_key(|(key, _)| *key);
    let sets: Vec<String> = StockState::ALL.iter().map(|s| format!("{0} = s.{0} + u.{0}", s.as_str())).collect();
    let returning = format!("RETURNING s.item_id, s.location_id, {}", state_columns("s"));
    let mut written: Vec<PgRow> = Vec::with_capacity(raised.len() + inserted.len());
    if !raised.is_empty() {
        let sql = format!(
            "UPDATE stock_levels s SET {} FROM {} \
              WHERE s.item_id = u.item_id AND s.location_id = u.location_id {returning}",
            sets.join(", "),
            unnest_balances(),
        );
        let arrays = BalanceArrays::new(&raised);
        written.extend(arrays.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await.map_err(BatchError::db)?);
    }
    if !inserted.is_empty() {
        let excluded: Vec<String> =
            StockState::ALL.iter().map(|s| format!("{0} = s.{0} + excluded.{0}", s.as_str())).collect();
        let sql = format!(
            "INSERT INTO stock_levels AS s (item_id, location_id, {STATE_COLUMNS}) SELECT * FROM {} \
             ON CONFLICT (item_id, location_id) DO UPDATE SET {} {returning}",
            unnest_balances(),
            excluded.join(", "),
        );
        let arrays = BalanceArrays::new(&inserted);
        written.extend(
            arrays
                .bind(sqlx::query(&sql))
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| BatchError::db_fk(e, "stock_levels.location_id"))?,
        );
    }
    if written.len() != raised.len() + inserted.len() {
        return Err(BatchError::Stale(format!(
            "wrote {} of {} changed balances: a balance row vanished",
            written.len(),
            raised.len() + inserted.len()
        )));
    }
    for row in &written {
        let key: BalanceKey = (get(row, "item_id")?, get(row, "location_id")?);
        let stored = balance(row)?;
        if after.get(&key) != Some(&stored) {
            return Err(BatchError::Stale(format!(
                "the balance of item {} at location {} came out as {stored:?}, not as decided ({:?}): it changed \
                 outside the batch's locks",
                key.0,
                key.1,
                after.get(&key)
            )));
        }
    }
    Ok(())
}

/// One run of a batch: lock, read, decide, write. The caller commits or rolls back.
async fn run_batch(
    conn: &mut PgConnection,
    scope: &BatchScope,
    decide: &mut Decide<'_>,
) -> Result<BatchIds, BatchError> {
    let mut state = load_state(conn, scope).await?;
    let now = state.now;
    let (balances_before, orders_before, holds_before, documents_before) =
        (state.balances.clone(), state.orders.clone(), state.holds.clone(), state.documents.clone());
    let mut writes = decide(&mut state);
    // Documents first: a stale one fails the batch before anything else is written.
    crate::purchasing::write_changed(conn, &documents_before, &state.documents).await?;

    let ids = draw_ids(conn, writes.movements.len(), writes.new_orders.len(), writes.new_holds.len()).await?;
    app::webhook_store::fill_new_order_ids(&mut writes.events, &ids.orders);
    let audit = app::store::resolve_batch_audit(&writes.audit, &ids.orders, &ids.holds);
    insert_appends(conn, &ids.movements, &writes.movements, &writes.events, now, &audit).await?;
    write_balances(conn, &balances_before, &state.balances).await?;
    orders::insert_orders(conn, &ids.orders, &writes.new_orders).await?;
    let changed_orders = changed_ids(&orders_before, &state.orders, &writes.changed_orders);
    orders::update_orders(conn, &state.orders, &changed_orders).await?;
    orders::insert_holds(conn, &ids.holds, &writes.new_holds).await?;
    let changed_holds = changed_ids(&holds_before, &state.holds, &writes.changed_holds);
    orders::update_holds(conn, &state.holds, &changed_holds).await?;
    Ok(ids)
}

fn level_row(row: &PgRow) -> StoreResult<LevelRow> {
    Ok(LevelRow {
        item_id: get(row, "item_id")?,
        sku: get(row, "sku")?,
        location_id: get(row, "location_id")?,
        path: get(row, "path")?,
        balance: balance(row)?,
    })
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
    fn push_conditions(&self, qb: &mut QueryBuilder<'_, Postgres>) {
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
/// balance, so they are skipped. SUM of bigints is NUMERIC in PostgreSQL, hence the casts back.
fn push_folded_cte(qb: &mut QueryBuilder<'_, Postgres>, scope: FoldScope) {
    let mut sums = String::new();
    for s in StockState::ALL {
        let _ = write!(sums, ", SUM(CASE WHEN state = '{0}' THEN q ELSE 0 END)::int8 AS {0}", s.as_str());
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
    qb.push(") AS sides GROUP BY item_id, location_id)");
}

/// Appends the conditions a listed level row meets: in the location subtree (when given) and not all zero.
fn push_level_filter<'a>(qb: &mut QueryBuilder<'a, Postgres>, within: &'a Option<String>) {
    if let Some(within) = within {
        qb.push(" AND ");
        push_within(qb, "l.path", within);
    }
    qb.push(format!(" AND {}", any_nonzero("s")));
}

/// Appends the paged level query over `source` (`stock_levels`, or the `folded` CTE pushed before it): first the
/// ids of the next `item_limit` items that have a listed row, then those items' listed rows in item, then path
/// order. Finding the page first lets the planner walk the primary key and stop early instead of reading every row.
fn push_levels_page<'a>(
    qb: &mut QueryBuilder<'a, Postgres>,
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
           JOIN items i ON i.id = s.item_id WHERE TRUE",
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

fn movement_record(row: &PgRow) -> StoreResult<MovementRecord> {
    Ok(MovementRecord {
        id: get(row, "id")?,
        sku: get(row, "sku")?,
        from_path: get(row, "from_path")?,
        to_path: get(row, "to_path")?,
        movement: NewMovement {
            item_id: get(row, "item_id")?,
            quantity: get(row, "quantity")?,
            from_location_id: get(row, "from_location_id")?,
            from_state: parse_state(get(row, "from_state")?)?,
            to_location_id: get(row, "to_location_id")?,
            to_state: parse_state(get(row, "to_state")?)?,
            reason: parse("reason", Reason::from_str(&get::<String>(row, "reason")?))?,
            reference: get(row, "reference")?,
            note: get(row, "note")?,
            actor: get(row, "actor")?,
            request_id: get(row, "request_id")?,
            recorded_at: from_micros(get(row, "recorded_at")?)?,
        },
    })
}

#[async_trait]
impl LedgerStore for PgStore {
    async fn apply_batch(&self, scope: &BatchScope, decide: &mut Decide<'_>) -> StoreResult<BatchIds> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1.. {
            let mut tx = self.begin().await?;
            let result = match run_batch(&mut tx, scope, decide).await {
                Ok(ids) => tx.commit().await.map(|()| ids).map_err(BatchError::db),
                Err(e) => {
                    if let Err(rollback) = tx.rollback().await {
                        tracing::warn!(error = %rollback, "rollback of a failed batch failed");
                    }
                    Err(e)
                }
            };
            match result {
                Ok(ids) => return Ok(ids),
                Err(e) if e.retryable() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "batch lost a race; running it again on fresh state");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    if e.retryable() {
                        tracing::warn!(error = %e, attempts = attempt, "batch kept losing races; giving up");
                    }
                    return Err(e.into_store());
                }
            }
        }
        unreachable!("the attempts loop only ends by returning")
    }

    async fn levels(
        &self,
        filter: &LevelFilter,
        after_item: Option<ItemId>,
        item_limit: u32,
    ) -> StoreResult<Vec<LevelRow>> {
        let mut qb = QueryBuilder::<Postgres>::new("WITH ");
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
        let mut qb = QueryBuilder::<Postgres>::new("WITH ");
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
        let mut qb = QueryBuilder::<Postgres>::new(
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
        // One REPEATABLE READ transaction sees one snapshot from its first statement to its end, so no batch of
        // any node can commit between reading the balances and folding the ledger.
        let mut tx =
            self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await.map_err(internal)?;
        let stored = sqlx::query(&all_levels_sql("stock_levels")).fetch_all(&mut *tx).await.map_err(db)?;
        let mut qb = QueryBuilder::<Postgres>::new("WITH ");
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

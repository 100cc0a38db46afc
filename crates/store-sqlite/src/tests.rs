//! SQLite-specific checks: URL forms, pragmas, migrations on reopen, the triggers that keep the ledger immutable,
//! and the columns copied out of order and hold documents.

use app::store::{
    BatchScope, BatchState, BatchWrites, CatalogStore, HoldRecord, LedgerStore, LocationStore, NewMovement,
    OrderRecord, OrderStore, OutboxEvent,
};
use chrono::Utc;
use domain::catalog::{InventoryPolicy, ProductFields, ProductStatus, VariantFields};
use domain::stock::{Reason, StockState, VirtualKind};
use rust_decimal::Decimal;
use sqlx::Row;

use super::*;

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    (dir, path)
}

async fn pragma(store: &SqliteStore, name: &str) -> String {
    let row = sqlx::query(&format!("PRAGMA {name}")).fetch_one(store.pool()).await.unwrap();
    // Journal mode answers as text, the others as integers.
    row.try_get::<String, _>(0).or_else(|_| row.try_get::<i64, _>(0).map(|v| v.to_string())).unwrap()
}

async fn count(store: &SqliteStore, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(store.pool()).await.unwrap()
}

#[tokio::test]
async fn every_url_form_opens_the_same_file() {
    let (_dir, path) = temp_db();
    let p = path.display().to_string();
    for url in [format!("sqlite://{p}"), format!("sqlite:{p}"), p.clone()] {
        let store = SqliteStore::connect(&url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(count(&store, "locations").await, 5, "{url}");
        store.pool().close().await;
    }
    assert!(path.exists());
}

#[tokio::test]
async fn a_plain_path_is_taken_literally() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd name %20 #1.db");
    let store = SqliteStore::connect(&path.display().to_string()).await.unwrap();
    store.pool().close().await;
    assert!(path.exists(), "the file is created under exactly the given name");
}

#[tokio::test]
async fn file_databases_are_durable_wal_with_foreign_keys() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::connect(&path.display().to_string()).await.unwrap();
    assert_eq!(pragma(&store, "journal_mode").await, "wal");
    assert_eq!(pragma(&store, "synchronous").await, "2", "FULL");
    assert_eq!(pragma(&store, "foreign_keys").await, "1");
    assert_eq!(pragma(&store, "busy_timeout").await, "10000");
}

#[tokio::test]
async fn memory_databases_are_one_shared_database() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let other = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let fields = location_fields();
    store.create_location(None, "WH1", domain::location::LocationKind::Warehouse, &fields, Utc::now()).await.unwrap();
    assert!(store.get_location("WH1").await.unwrap().is_some(), "every read sees the writes");
    assert!(store.clone().get_location("WH1").await.unwrap().is_some(), "clones share the database");
    assert!(other.get_location("WH1").await.unwrap().is_none(), "each connect is a database of its own");
    assert_eq!(store.pool().options().get_max_connections(), 1);
}

#[tokio::test]
async fn migrations_run_once_and_data_survives_reopening() {
    let (_dir, path) = temp_db();
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store
        .create_location(None, "WH1", domain::location::LocationKind::Warehouse, &location_fields(), Utc::now())
        .await
        .unwrap();
    store.pool().close().await;

    let reopened = SqliteStore::connect(&url).await.unwrap();
    assert!(reopened.get_location("WH1").await.unwrap().is_some());
    assert_eq!(count(&reopened, "locations").await, 6, "the virtual locations were seeded once");
    let known = sqlx::migrate!("./migrations").iter().count() as i64;
    assert_eq!(count(&reopened, "_sqlx_migrations").await, known, "each migration is recorded once");
    assert_eq!(reopened.virtual_locations().await.unwrap().len(), VirtualKind::ALL.len());
}

#[tokio::test]
async fn bad_urls_are_reported() {
    assert!(matches!(SqliteStore::connect("sqlite://x.db?mode=nonsense").await, Err(StoreError::Internal(_))));
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no/such/dir/x.db");
    assert!(matches!(SqliteStore::connect(&missing_dir.display().to_string()).await, Err(StoreError::Internal(_))));
}

fn location_fields() -> app::store::LocationFields {
    app::store::LocationFields {
        name: "Main".into(),
        address: None,
        latitude: None,
        longitude: None,
        pick_sequence: None,
        sellable: true,
    }
}

/// A store with one item received into one bin; returns the item id.
async fn store_with_a_movement() -> (SqliteStore, i64) {
    store_with_a_movement_at("sqlite::memory:").await
}

async fn store_with_a_movement_at(url: &str) -> (SqliteStore, i64) {
    let store = SqliteStore::connect(url).await.unwrap();
    let now = Utc::now();
    let product = ProductFields {
        handle: "tee".into(),
        title: "Tee".into(),
        description: String::new(),
        vendor: None,
        category: None,
        tags: vec![],
        images: vec![],
        status: ProductStatus::Draft,
        options: vec![],
    };
    let variant = VariantFields {
        sku: "TEE".into(),
        barcode: None,
        options: vec![],
        price: Decimal::new(100, 2),
        compare_at_price: None,
        currency: "EUR".into(),
        cost: None,
        weight_grams: None,
        length_mm: None,
        width_mm: None,
        height_mm: None,
        tracked: true,
        inventory_policy: InventoryPolicy::Deny,
    };
    let item = store.create_product(&product, &[variant], now).await.unwrap().variants[0].item_id;
    let wh = store
        .create_location(None, "WH1", domain::location::LocationKind::Warehouse, &location_fields(), now)
        .await
        .unwrap();
    let bin = store
        .create_location(Some(wh.id), "WH1/B1", domain::location::LocationKind::Bin, &location_fields(), now)
        .await
        .unwrap();
    let supplier = store.virtual_locations().await.unwrap()[&VirtualKind::Supplier];
    let m = NewMovement {
        item_id: item,
        quantity: 3,
        from_location_id: supplier,
        from_state: None,
        to_location_id: bin.id,
        to_state: Some(StockState::Available),
        reason: Reason::Received,
        reference: None,
        note: None,
        actor: "test".into(),
        request_id: None,
        recorded_at: now,
    };
    let mut decide = |state: &mut BatchState| {
        state.balances.entry((item, bin.id)).or_default().add(StockState::Available, 3);
        BatchWrites {
            movements: vec![NewMovement { recorded_at: state.now, ..m.clone() }],
            events: vec![OutboxEvent { topic: "t".into(), payload: serde_json::json!({"n": 1}) }],
            ..Default::default()
        }
    };
    store.apply_batch(&BatchScope { items: vec![item], ..Default::default() }, &mut decide).await.unwrap();
    (store, item)
}

/// One available unit of `item` taken out of `bin` as a correction.
fn correction(item: i64, bin: i64, adjustment: i64, at: chrono::DateTime<Utc>) -> NewMovement {
    NewMovement {
        item_id: item,
        quantity: 1,
        from_location_id: bin,
        from_state: Some(StockState::Available),
        to_location_id: adjustment,
        to_state: None,
        reason: Reason::Correction,
        reference: None,
        note: None,
        actor: "test".into(),
        request_id: None,
        recorded_at: at,
    }
}

/// On a file database, batches run on the ledger's own connection, kept with its prepared statements from batch
/// to batch. One that the database refuses (here the CHECK against a negative balance, after its movement was
/// inserted) is rolled back whole, and the connection goes on serving the next batches.
#[tokio::test]
async fn a_refused_batch_is_rolled_back_and_the_ledger_goes_on() {
    let (_dir, path) = temp_db();
    let (store, item) = store_with_a_movement_at(&path.display().to_string()).await;
    let bin = store.get_location("WH1/B1").await.unwrap().unwrap().id;
    let adjustment = store.virtual_locations().await.unwrap()[&VirtualKind::Adjustment];
    let scope = BatchScope { items: vec![item], ..Default::default() };
    let out = |state: &BatchState| correction(item, bin, adjustment, state.now);
    let mut overdraw = |state: &mut BatchState| {
        state.balances.entry((item, bin)).or_default().add(StockState::Available, -5);
        BatchWrites {
            movements: vec![NewMovement { quantity: 5, ..out(state) }],
            events: vec![OutboxEvent { topic: "lost".into(), payload: serde_json::json!({}) }],
            ..Default::default()
        }
    };
    let refused = store.apply_batch(&scope, &mut overdraw).await.unwrap_err();
    assert!(matches!(refused, StoreError::Conflict { .. }), "{refused:?}");
    assert_eq!((count(&store, "movements").await, count(&store, "outbox").await), (1, 1), "nothing of it stays");
    for n in 0..3 {
        let mut take = |state: &mut BatchState| {
            assert_eq!(state.balances[&(item, bin)].available, 3 - n);
            state.balances.entry((item, bin)).or_default().add(StockState::Available, -1);
            BatchWrites { movements: vec![out(state)], ..Default::default() }
        };
        store.apply_batch(&scope, &mut take).await.unwrap();
    }
    assert_eq!(count(&store, "movements").await, 4);
    let mut guard = store.write_lock.lock().await;
    assert!(guard.statements.is_some(), "the ledger keeps its prepared statements between batches");
    let conn = guard.conn.as_mut().expect("and its connection");
    for (pragma, value) in [("foreign_keys", 1), ("synchronous", 2), ("busy_timeout", 10_000)] {
        let v: i64 = sqlx::query_scalar(&format!("PRAGMA {pragma}")).fetch_one(&mut *conn).await.unwrap();
        assert_eq!(v, value, "{pragma}");
    }
}

/// A batch begins and commits its transaction on the ledger's connection itself. One whose `decide` panics never
/// gets to either: the connection is closed, which rolls the transaction back, so that no other writer waits on
/// its lock, and the next batch opens a new connection and commits.
#[tokio::test]
async fn a_batch_that_panics_leaves_no_transaction_behind() {
    let (_dir, path) = temp_db();
    let (store, item) = store_with_a_movement_at(&path.display().to_string()).await;
    let bin = store.get_location("WH1/B1").await.unwrap().unwrap().id;
    let scope = BatchScope { items: vec![item], ..Default::default() };
    let panicking = store.clone();
    let task = tokio::spawn(async move {
        let scope = BatchScope { items: vec![item], ..Default::default() };
        let mut boom = |_: &mut BatchState| -> BatchWrites { panic!("decide failed") };
        panicking.apply_batch(&scope, &mut boom).await
    });
    assert!(task.await.unwrap_err().is_panic());
    assert!(store.write_lock.lock().await.conn.is_none(), "the connection the batch began on is closed");
    // Another writer gets the database's write lock: with the transaction still open, it would wait out the busy
    // timeout and fail with "database is locked".
    store
        .create_location(None, "WH2", domain::location::LocationKind::Warehouse, &location_fields(), Utc::now())
        .await
        .unwrap();
    let adjustment = store.virtual_locations().await.unwrap()[&VirtualKind::Adjustment];
    let mut take = |state: &mut BatchState| {
        state.balances.entry((item, bin)).or_default().add(StockState::Available, -1);
        BatchWrites {
            movements: vec![correction(item, bin, adjustment, state.now)],
            events: vec![OutboxEvent { topic: "after".into(), payload: serde_json::json!({}) }],
            ..Default::default()
        }
    };
    store.apply_batch(&scope, &mut take).await.unwrap();
    let available: i64 = sqlx::query_scalar("SELECT available FROM stock_levels WHERE item_id = ? AND location_id = ?")
        .bind(item)
        .bind(bin)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!((available, count(&store, "outbox").await), (2, 2), "the next batch commits");
}

/// Another writer on the same file (another process, or here another store) may hold SQLite's write lock when a
/// batch begins. The batch then waits for it on sqlx's thread, not on the runtime's: on this test's one-thread
/// runtime, waiting there would keep the other writer from ever committing, and the batch would fail with
/// "database is locked" after the busy timeout.
#[tokio::test]
async fn a_batch_waits_for_another_writer_without_blocking_the_runtime() {
    let (_dir, path) = temp_db();
    let (store, item) = store_with_a_movement_at(&path.display().to_string()).await;
    let bin = store.get_location("WH1/B1").await.unwrap().unwrap().id;
    let other = SqliteStore::connect(&path.display().to_string()).await.unwrap();
    let mut held = other.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("UPDATE outbox SET topic = 'seen'").execute(&mut *held).await.unwrap();
    let batch = {
        let store = store.clone();
        tokio::spawn(async move {
            let scope = BatchScope { items: vec![item], ..Default::default() };
            let mut record = |state: &mut BatchState| {
                assert_eq!(state.balances[&(item, bin)].available, 3);
                BatchWrites {
                    events: vec![OutboxEvent { topic: "after".into(), payload: serde_json::json!({}) }],
                    ..Default::default()
                }
            };
            store.apply_batch(&scope, &mut record).await
        })
    };
    // Let the batch find the lock taken and start waiting. This thread runs the batch too: it gets back here
    // within the sleep unless the batch blocked it, which it would do for the whole busy timeout.
    let asleep = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(asleep.elapsed() < BUSY_TIMEOUT / 2, "the batch blocked the runtime's thread for {:?}", asleep.elapsed());
    held.commit().await.unwrap();
    batch.await.unwrap().unwrap();
    let topics: Vec<String> =
        sqlx::query_scalar("SELECT topic FROM outbox ORDER BY id").fetch_all(store.pool()).await.unwrap();
    assert_eq!(topics, ["seen", "after"], "the other writer's change, then the batch's");
}

#[tokio::test]
async fn the_ledger_refuses_updates_and_deletes() {
    let (store, _) = store_with_a_movement().await;
    let update = sqlx::query("UPDATE movements SET quantity = 99").execute(store.pool()).await.unwrap_err();
    assert!(update.to_string().contains("immutable"), "{update}");
    let delete = sqlx::query("DELETE FROM movements").execute(store.pool()).await.unwrap_err();
    assert!(delete.to_string().contains("immutable"), "{delete}");
    let q: i64 = sqlx::query_scalar("SELECT quantity FROM movements").fetch_one(store.pool()).await.unwrap();
    assert_eq!(q, 3);
}

#[tokio::test]
async fn batches_write_their_outbox_events() {
    let (store, _) = store_with_a_movement().await;
    let (topic, payload): (String, String) =
        sqlx::query_as("SELECT topic, payload FROM outbox WHERE delivered_at IS NULL")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(topic, "t");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&payload).unwrap(), serde_json::json!({"n": 1}));
}

#[tokio::test]
async fn database_errors_name_the_constraint() {
    let (store, item) = store_with_a_movement().await;
    let unique =
        sqlx::query("INSERT INTO items (sku, created_at) VALUES ('TEE', 0)").execute(store.pool()).await.unwrap_err();
    assert!(matches!(codec::db(unique), StoreError::Conflict { constraint } if constraint == "items.sku"));
    let check = sqlx::query("UPDATE stock_levels SET reserved = -1 WHERE item_id = ?")
        .bind(item)
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(matches!(codec::db(check), StoreError::Conflict { constraint } if constraint == "stock_levels.reserved"));
    let fk = sqlx::query("INSERT INTO stock_levels (item_id, location_id) VALUES (?, 9999)")
        .bind(item)
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(
        matches!(codec::db_error(fk, "stock_levels.location_id"), StoreError::Conflict { constraint } if constraint == "stock_levels.location_id")
    );
}

#[tokio::test]
async fn large_batches_are_written_in_chunks() {
    // More items, movements and balances than fit one statement: loading, inserting and upserting must all chunk.
    let (store, _) = store_with_a_movement().await;
    let now = Utc::now();
    let wh = store.get_location("WH1").await.unwrap().unwrap();
    let mut bins = Vec::new();
    for i in 0..40 {
        let path = format!("WH1/X{i}");
        let rec = store
            .create_location(Some(wh.id), &path, domain::location::LocationKind::Bin, &location_fields(), now)
            .await;
        bins.push(rec.unwrap().id);
    }
    let mut items = Vec::new();
    for i in 0..60 {
        let v = VariantFields {
            sku: format!("S{i}"),
            barcode: None,
            options: vec![],
            price: Decimal::ONE,
            compare_at_price: None,
            currency: "EUR".into(),
            cost: None,
            weight_grams: None,
            length_mm: None,
            width_mm: None,
            height_mm: None,
            tracked: true,
            inventory_policy: InventoryPolicy::Deny,
        };
        let product = ProductFields {
            handle: format!("p{i}"),
            title: "P".into(),
            description: String::new(),
            vendor: None,
            category: None,
            tags: vec![],
            images: vec![],
            status: ProductStatus::Active,
            options: vec![],
        };
        items.push(store.create_product(&product, &[v], now).await.unwrap().variants[0].item_id);
    }
    let adjustment = store.virtual_locations().await.unwrap()[&VirtualKind::Adjustment];
    let keys: Vec<(i64, i64)> = items.iter().flat_map(|i| bins.iter().map(move |b| (*i, *b))).collect();
    assert!(keys.len() * 9 > MAX_PARAMS, "the writes must exceed one chunk");
    let movements: Vec<NewMovement> = keys
        .iter()
        .map(|(item, bin)| NewMovement {
            item_id: *item,
            quantity: 1 + bin % 3,
            from_location_id: adjustment,
            from_state: None,
            to_location_id: *bin,
            to_state: Some(StockState::Available),
            reason: Reason::Import,
            reference: None,
            note: None,
            actor: "import".into(),
            request_id: None,
            recorded_at: now,
        })
        .collect();
    // Ids of no item pad the scope beyond one chunk of reads; they simply load nothing.
    let padding = (1_000_000..).take(MAX_PARAMS + 10);
    let scope = BatchScope { items: items.iter().copied().chain(padding).collect(), ..Default::default() };
    let mut decide = |state: &mut BatchState| {
        for m in &movements {
            state.balances.entry((m.item_id, m.to_location_id)).or_default().add(StockState::Available, m.quantity);
        }
        BatchWrites { movements: movements.clone(), ..Default::default() }
    };
    let ids = store.apply_batch(&scope, &mut decide).await.unwrap().movements;
    assert_eq!(ids.len(), keys.len());
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "ids are consecutive and in order");
    // Spot-check that ids map to their movements in order.
    let last: (i64, i64) = sqlx::query_as("SELECT item_id, to_location_id FROM movements WHERE id = ?")
        .bind(ids[ids.len() - 1])
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(last, keys[keys.len() - 1]);

    // A second batch over the same items sees every stored balance, in every location.
    let mut seen = 0;
    let mut total = 0;
    let mut check = |state: &mut BatchState| {
        seen = state.balances.len();
        total = state.balances.values().map(|v| v.available).sum::<i64>();
        BatchWrites::default()
    };
    store.apply_batch(&scope, &mut check).await.unwrap();
    assert_eq!(seen, keys.len());
    assert_eq!(total, movements.iter().map(|m| m.quantity).sum::<i64>());
    let (stored, folded) = store.balances_and_ledger().await.unwrap();
    assert_eq!(stored.len(), keys.len() + 1);
    assert_eq!(stored, folded);
}

#[tokio::test]
async fn order_and_hold_columns_follow_their_documents() {
    use domain::order::{NewLine, Order, OrderStatus, PaymentTerms};
    use domain::orders::{Hold, HoldStatus, WarehouseStock};

    let (store, item) = store_with_a_movement().await;
    let now = Utc::now();
    let wh = store.get_location("WH1").await.unwrap().unwrap().id;
    let line = NewLine {
        sku: "TEE".into(),
        item,
        quantity: 2,
        unit_price: Decimal::ONE,
        discount: Decimal::ZERO,
        tax: Decimal::ZERO,
        policy: InventoryPolicy::Backorder,
        tracked: true,
        bundle: None,
    };
    let stock = std::collections::HashMap::from([(item, vec![WarehouseStock { warehouse: wh, bins: vec![] }])]);
    let (order, _) = Order::place(vec![line], &stock).unwrap();
    let record = OrderRecord {
        id: 0,
        source: "shop".into(),
        external_number: Some("7".into()),
        request_hash: "h".into(),
        customer_id: None,
        currency: "EUR".into(),
        payment_terms: PaymentTerms::Invoice,
        notes: None,
        order,
        placed_at: now,
        updated_at: now,
    };
    let hold = HoldRecord {
        id: 0,
        hold: Hold { expires_at: now, status: HoldStatus::Active, lines: vec![] },
        skus: vec![],
        quantities: vec![],
        reference: None,
        order_id: None,
        created_at: now,
        updated_at: now,
    };
    let mut place = |_: &mut BatchState| BatchWrites {
        new_orders: vec![record.clone()],
        new_holds: vec![hold.clone()],
        ..Default::default()
    };
    let ids = store.apply_batch(&BatchScope::default(), &mut place).await.unwrap();
    let (order_id, hold_id) = (ids.orders[0], ids.holds[0]);
    let columns = |sql: &'static str, id: i64| {
        let pool = store.pool().clone();
        async move { sqlx::query_as::<_, (String, String)>(sql).bind(id).fetch_one(&pool).await.unwrap() }
    };
    let order_sql = "SELECT payment_terms, status FROM orders WHERE id = ?";
    assert_eq!(columns(order_sql, order_id).await, ("invoice".into(), "open".into()));
    let queue: Vec<(i64, i64)> = sqlx::query_as("SELECT item_id, placed_at FROM order_backorders WHERE order_id = ?")
        .bind(order_id)
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(queue, [(item, now.timestamp_micros())], "the queue row carries the placement time");

    // Cancel the order and expire the hold in the state: the columns follow, and the queue row goes.
    let scope = BatchScope { orders: vec![order_id], holds: vec![hold_id], ..Default::default() };
    let mut cancel = |state: &mut BatchState| {
        state.orders.get_mut(&order_id).unwrap().order.cancel_all().unwrap();
        state.holds.get_mut(&hold_id).unwrap().hold.status = HoldStatus::Expired;
        BatchWrites { changed_orders: vec![order_id], changed_holds: vec![hold_id], ..Default::default() }
    };
    store.apply_batch(&scope, &mut cancel).await.unwrap();
    assert_eq!(columns(order_sql, order_id).await.1, "cancelled");
    assert_eq!(store.get_order(order_id).await.unwrap().unwrap().order.status, OrderStatus::Cancelled);
    assert_eq!(count(&store, "order_backorders").await, 0);
    let hold_sql = "SELECT status, json_extract(doc, '$.status') FROM holds WHERE id = ?";
    assert_eq!(columns(hold_sql, hold_id).await, ("expired".into(), "expired".into()));

    // A changed id that the batch never loaded is a bug of the caller, and fails the batch.
    let mut stray = |_: &mut BatchState| BatchWrites { changed_orders: vec![order_id], ..Default::default() };
    let err = store.apply_batch(&BatchScope::default(), &mut stray).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(ref m) if m.contains("not in the batch")), "{err:?}");
}

#[tokio::test]
async fn pick_list_orders_follow_the_lines() {
    use app::store::{PickListLine, PickListRecord, PickListStatus};
    use domain::order::{NewLine, Order, PaymentTerms};
    use domain::orders::WarehouseStock;

    let (store, item) = store_with_a_movement().await;
    let now = Utc::now();
    let wh = store.get_location("WH1").await.unwrap().unwrap().id;
    let line = NewLine {
        sku: "TEE".into(),
        item,
        quantity: 1,
        unit_price: Decimal::ONE,
        discount: Decimal::ZERO,
        tax: Decimal::ZERO,
        policy: InventoryPolicy::Backorder,
        tracked: true,
        bundle: None,
    };
    let stock = std::collections::HashMap::from([(item, vec![WarehouseStock { warehouse: wh, bins: vec![] }])]);
    let order = |n: &str| OrderRecord {
        id: 0,
        source: "shop".into(),
        external_number: Some(n.into()),
        request_hash: "h".into(),
        customer_id: None,
        currency: "EUR".into(),
        payment_terms: PaymentTerms::Invoice,
        notes: None,
        order: Order::place(vec![line.clone()], &stock).unwrap().0,
        placed_at: now,
        updated_at: now,
    };
    let orders = vec![order("1"), order("2")];
    let mut place = |_: &mut BatchState| BatchWrites { new_orders: orders.clone(), ..Default::default() };
    let ids = store.apply_batch(&BatchScope::default(), &mut place).await.unwrap().orders;
    let (o1, o2) = (ids[0], ids[1]);

    let pick = |order_id| PickListLine {
        order_id,
        line: 0,
        sku: "TEE".into(),
        bin: "WH1/BIN".into(),
        pick_sequence: None,
        quantity: 1,
        picked: 0,
    };
    let list = PickListRecord {
        id: 0,
        warehouse_id: wh,
        warehouse: String::new(),
        status: PickListStatus::Open,
        lines: vec![pick(o2), pick(o1), pick(o2)],
        created_at: now,
        updated_at: now,
    };
    let created = store.create_pick_list(&list).await.unwrap();
    let rows = || async {
        sqlx::query_as::<_, (i64, i64)>("SELECT pick_list_id, order_id FROM pick_list_orders ORDER BY order_id")
            .fetch_all(store.pool())
            .await
            .unwrap()
    };
    assert_eq!(rows().await, [(created.id, o1), (created.id, o2)], "each order of the lines once");
    let status: String = sqlx::query_scalar("SELECT status FROM pick_lists").fetch_one(store.pool()).await.unwrap();
    assert_eq!(status, "open");

    store.update_pick_list(&PickListRecord { lines: vec![pick(o2)], ..created.clone() }).await.unwrap();
    assert_eq!(rows().await, [(created.id, o2)], "rewritten from the new lines");

    // A line of an unknown order, or an unknown warehouse, fails the whole write.
    let stray = PickListRecord { lines: vec![pick(o1), pick(o2 + 100)], ..created.clone() };
    let err = store.update_pick_list(&stray).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "pick_list_orders.order_id"));
    assert_eq!(store.get_pick_list(created.id).await.unwrap().unwrap().lines, [pick(o2)], "the update rolled back");
    assert_eq!(rows().await, [(created.id, o2)]);
    let err = store.create_pick_list(&stray).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "pick_list_orders.order_id"));
    let err = store.create_pick_list(&PickListRecord { warehouse_id: wh + 100, ..list }).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { ref constraint } if constraint == "pick_lists.warehouse_id"));
    assert_eq!(count(&store, "pick_lists").await, 1, "no failed create left a pick list");
}

#[tokio::test]
async fn orders_being_picked_is_one_indexed_query() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let sql = format!("EXPLAIN QUERY PLAN {}", pick_lists::ORDERS_BEING_PICKED);
    let rows = sqlx::query(&sql).bind(1_i64).bind("open").fetch_all(store.pool()).await.unwrap();
    // Each row is (id, parent, notused, detail).
    let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>(3)).collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("SEARCH p USING COVERING INDEX pick_lists_warehouse_status (warehouse_id=? AND status=?)"),
        "{plan}"
    );
    assert!(plan.contains("SEARCH o USING PRIMARY KEY (pick_list_id=?)"), "{plan}");
    assert!(!plan.contains("SCAN"), "no table is scanned: {plan}");
}

#[test]
fn state_columns_name_every_state() {
    let names: Vec<&str> = StockState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(codec::STATE_COLUMNS, names.join(", "));
}

#[test]
fn placeholders_and_chunks_fit_sqlite_limits() {
    assert_eq!(placeholders(3), "?, ?, ?");
    let items = vec![0; 10_000];
    assert!(chunks(&items, 17).all(|c| c.len() * 17 <= MAX_PARAMS));
    assert_eq!(chunks(&items, 1).map(<[i32]>::len).sum::<usize>(), items.len());
}

#[tokio::test]
async fn point_reads_see_committed_batches_and_refuse_writes() {
    let (_dir, path) = temp_db();
    let (store, item) = store_with_a_movement_at(&path.display().to_string()).await;
    let readers = store.readers.clone().expect("a file database has read connections");
    let filter = app::store::LevelFilter { item_id: Some(item), within: None };
    let rows = store.levels(&filter, None, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "the point read sees the batch committed on the ledger's connection: {rows:?}");

    let refused = readers.run(|c| c.execute("DELETE FROM idempotency_keys", []).map_err(internal));
    assert!(refused.is_err(), "a read connection refuses to write");
    let refused = readers.run(|c| c.execute("UPDATE items SET sku = 'X'", []).map_err(internal));
    assert!(refused.is_err(), "a read connection refuses to write");
    assert_eq!(store.levels(&filter, None, 10).await.unwrap(), rows);
}

#[tokio::test]
async fn a_read_connection_left_in_a_transaction_is_closed_not_kept() {
    let (_dir, path) = temp_db();
    let (store, _) = store_with_a_movement_at(&path.display().to_string()).await;
    let readers = store.readers.clone().unwrap();
    readers.run(|c| c.query_row("SELECT COUNT(*) FROM items", [], |r| r.get::<_, i64>(0)).map_err(internal)).unwrap();
    let kept = readers.idle();
    assert!(kept >= 1, "a finished read keeps its connection");
    let left_open = readers.run(|c| {
        c.execute_batch("BEGIN; SELECT COUNT(*) FROM movements;").map_err(internal)?;
        Err::<(), _>(StoreError::Internal("failed halfway".into()))
    });
    assert!(left_open.is_err());
    assert_eq!(readers.idle(), kept - 1, "a connection inside a transaction would pin its snapshot: it is closed");
}

//! PostgreSQL-specific checks: what the conformance suite cannot see through the traits (the triggers that keep the
//! ledger immutable and its sides honest, constraint names, migrations under concurrent start), and above all
//! several nodes on one database: two `PgStore`s, each with its own pool, standing for two server processes.
//! No oversell, holds that expire once, idempotency keys claimed once, a batch that decided on state it had not
//! locked refused by the database rather than committed, and webhook fan-out in event order though outbox ids
//! commit out of order.
//!
//! Like the conformance suite, each test makes a database of its own and passes without connecting when
//! `STOCKROOM_TEST_POSTGRES_URL` is unset.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use app::inventory::{AdjustmentLine, AdjustmentRequest};
use app::orders::{NewOrder, NewOrderLine};
use app::store::{
    BatchScope, BatchState, BatchWrites, CatalogStore, HoldRecord, IdempotencyState, IdempotencyStore, LedgerStore,
    LevelFilter, LocationFields, LocationStore, MovementFilter, NewMovement, OrderFilter, OrderStore,
};
use app::webhook_store::{
    DeliveryOutcome, EndpointFields, EndpointRecord, FanOut, NewAttempt, OutboxRecord, WebhookStore,
};
use app::{Actor, App, AppError, LedgerConfig, StoreError};
use chrono::{DateTime, Duration, Utc};
use common::TestDb;
use domain::catalog::{InventoryPolicy, ProductFields, ProductStatus, VariantFields};
use domain::location::LocationKind;
use domain::order::PaymentTerms;
use domain::orders::{Hold, HoldStatus, LineAllocation, Pick};
use domain::stock::{ItemId, LocationId, Reason, StockState, VirtualKind};
use rust_decimal::Decimal;
use stockroom_store_postgres::PgStore;

// ---------------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------------

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is in range")
}

fn fields(name: &str) -> LocationFields {
    LocationFields {
        name: name.into(),
        address: None,
        latitude: None,
        longitude: None,
        pick_sequence: None,
        sellable: true,
    }
}

/// One product with one variant per SKU, sold only from stock (`deny`); returns the item ids.
async fn items(store: &PgStore, skus: &[&str]) -> Vec<ItemId> {
    let product = ProductFields {
        handle: "hot".into(),
        title: "The hot item".into(),
        description: String::new(),
        vendor: None,
        category: None,
        tags: vec![],
        images: vec![],
        status: ProductStatus::Active,
        options: vec![],
    };
    let variants: Vec<VariantFields> = skus
        .iter()
        .map(|sku| VariantFields {
            sku: (*sku).into(),
            barcode: None,
            options: vec![],
            price: Decimal::new(1990, 2),
            compare_at_price: None,
            currency: "EUR".into(),
            cost: None,
            weight_grams: None,
            length_mm: None,
            width_mm: None,
            height_mm: None,
            tracked: true,
            inventory_policy: InventoryPolicy::Deny,
        })
        .collect();
    let rec = store.create_product(&product, &variants, now()).await.expect("create product");
    rec.variants.iter().map(|v| v.item_id).collect()
}

/// A warehouse `WH1` with a zone `WH1/Z` and a bin `WH1/Z/B1`; returns (warehouse, zone, bin).
async fn warehouse(store: &PgStore) -> (LocationId, LocationId, LocationId) {
    let t = now();
    let wh = store.create_location(None, "WH1", LocationKind::Warehouse, &fields("WH1"), t).await.unwrap();
    let zone = store.create_location(Some(wh.id), "WH1/Z", LocationKind::Zone, &fields("Z"), t).await.unwrap();
    let bin = store.create_location(Some(zone.id), "WH1/Z/B1", LocationKind::Bin, &fields("B1"), t).await.unwrap();
    (wh.id, zone.id, bin.id)
}

fn movement(
    item: ItemId,
    quantity: i64,
    from: (LocationId, Option<StockState>),
    to: (LocationId, Option<StockState>),
    reason: Reason,
    at: DateTime<Utc>,
) -> NewMovement {
    NewMovement {
        item_id: item,
        quantity,
        from_location_id: from.0,
        from_state: from.1,
        to_location_id: to.0,
        to_state: to.1,
        reason,
        reference: None,
        note: None,
        actor: "test".into(),
        request_id: None,
        recorded_at: at,
    }
}

/// Books movements through the write path, moving the balances along without any check of the domain's.
async fn book(store: &PgStore, movements: Vec<NewMovement>) -> Result<Vec<i64>, StoreError> {
    let mut items: Vec<ItemId> = movements.iter().map(|m| m.item_id).collect();
    items.sort_unstable();
    items.dedup();
    let mut decide = |state: &mut BatchState| {
        for m in &movements {
            if let Some(s) = m.from_state {
                state.balances.entry((m.item_id, m.from_location_id)).or_default().add(s, -m.quantity);
            }
            if let Some(s) = m.to_state {
                state.balances.entry((m.item_id, m.to_location_id)).or_default().add(s, m.quantity);
            }
        }
        BatchWrites { movements: movements.clone(), ..Default::default() }
    };
    store.apply_batch(&BatchScope { items, ..Default::default() }, &mut decide).await.map(|ids| ids.movements)
}

/// Receives `quantity` available units of `item` into `bin`.
async fn receive(store: &PgStore, item: ItemId, bin: LocationId, quantity: i64) {
    let supplier = store.virtual_locations().await.unwrap()[&VirtualKind::Supplier];
    let m = movement(item, quantity, (supplier, None), (bin, Some(StockState::Available)), Reason::Received, now());
    book(store, vec![m]).await.expect("receiving stock");
}

/// The stored balance of one item in one bin.
async fn level(store: &PgStore, item: ItemId, bin: LocationId) -> domain::stock::Balance {
    let rows = store.levels(&LevelFilter { item_id: Some(item), within: None }, None, 10).await.unwrap();
    rows.iter().find(|r| r.location_id == bin).map(|r| r.balance).unwrap_or_default()
}

/// The stored and folded balances of the whole database agree, read in one snapshot.
async fn assert_ledger_agrees(store: &PgStore) {
    let (stored, folded) = store.balances_and_ledger().await.unwrap();
    let key = |rows: Vec<app::store::LevelRow>| {
        rows.into_iter().map(|r| ((r.item_id, r.location_id), r.balance)).collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(key(stored), key(folded), "the stored balances are the ledger folded");
}

// ---------------------------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------------------------

/// Two nodes starting at once both migrate (one of them waits for the other's migration lock); the schema and
/// its seeded virtual locations exist once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(db) = TestDb::create().await else { return };
    let (a, b) = tokio::join!(PgStore::connect_with(db.options()), PgStore::connect_with(db.options()));
    let (a, b) = (a.expect("first node"), b.expect("second node"));
    let migrations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(a.pool()).await.unwrap();
    // However many migrations there are (each branch may add its own), each is recorded once.
    assert_eq!(migrations, sqlx::migrate!("./migrations").iter().count() as i64);
    let locations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM locations").fetch_one(b.pool()).await.unwrap();
    assert_eq!(locations, 5, "the virtual locations were seeded once");
    assert_eq!(b.virtual_locations().await.unwrap().len(), VirtualKind::ALL.len());
    for (setting, value) in [("synchronous_commit", "on"), ("idle_in_transaction_session_timeout", "1min")] {
        let shown: String = sqlx::query_scalar(&format!("SHOW {setting}")).fetch_one(a.pool()).await.unwrap();
        assert_eq!(shown, value, "{setting}");
    }
    let again = common::store(&db).await;
    assert_eq!(again.virtual_locations().await.unwrap(), a.virtual_locations().await.unwrap());
}

/// A pooled connection whose session the server ended while it sat idle (a restart, a proxy's idle cut) is
/// checked and replaced before use, so the next statement succeeds. Connections in steady use are not pinged.
#[tokio::test]
async fn a_connection_cut_while_idle_is_replaced_before_use() {
    use sqlx::Connection;
    let Some(db) = TestDb::create().await else { return };
    let store = common::store(&db).await;
    let before: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(store.pool()).await.unwrap();
    let mut admin = sqlx::PgConnection::connect_with(&db.options()).await.unwrap();
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!ended.is_empty() && ended.iter().all(|e| *e), "{ended:?}");
    // Past the idle time after which a connection is pinged before use (5 s).
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    let after: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(store.pool()).await.unwrap();
    assert_ne!(after, before, "a new session");
    assert_eq!(store.virtual_locations().await.unwrap().len(), VirtualKind::ALL.len());
}

/// Every state of a balance has a CHECK of its own, named as the app expects.
#[tokio::test]
async fn every_stock_state_is_checked_by_name() {
    let Some(db) = TestDb::create().await else { return };
    let store = common::store(&db).await;
    let mut names: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint WHERE conrelid = 'stock_levels'::regclass AND contype = 'c'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    names.sort();
    let mut expected: Vec<String> = StockState::ALL.iter().map(|s| format!("stock_levels.{}", s.as_str())).collect();
    expected.sort();
    assert_eq!(names, expected);

    // And a batch that drives one below zero is refused under that name, writing nothing.
    let item = items(&store, &["A"]).await[0];
    let (_, _, bin) = warehouse(&store).await;
    receive(&store, item, bin, 2).await;
    let customer = store.virtual_locations().await.unwrap()[&VirtualKind::Customer];
    let m = movement(item, 3, (bin, Some(StockState::Available)), (customer, None), Reason::Other, now());
    match book(&store, vec![m]).await {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, "stock_levels.available"),
        other => panic!("expected the stock_levels.available check, got {other:?}"),
    }
    assert_eq!(level(&store, item, bin).await.available, 2);
}

/// The ledger cannot be edited, deleted or truncated, even with raw SQL and even where no row matches.
#[tokio::test]
async fn movements_are_immutable_in_the_database() {
    let Some(db) = TestDb::create().await else { return };
    let store = common::store(&db).await;
    let item = items(&store, &["A"]).await[0];
    let (_, _, bin) = warehouse(&store).await;
    receive(&store, item, bin, 5).await;
    for sql in [
        "UPDATE movements SET quantity = 50",
        "UPDATE movements SET note = 'x' WHERE id < 0",
        "DELETE FROM movements",
        "DELETE FROM movements WHERE id < 0",
        "TRUNCATE movements CASCADE",
    ] {
        let err = sqlx::query(sql).execute(store.pool()).await.expect_err(sql);
        assert!(err.to_string().contains("movements are immutable"), "{sql}: {err}");
    }
    let all = store.movements(&MovementFilter::default(), None, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].movement.quantity, 5);
}

/// A side has a state exactly when its location is a bin; the database refuses anything else by name.
#[tokio::test]
async fn movement_sides_must_match_their_locations() {
    let Some(db) = TestDb::create().await else { return };
    let store = common::store(&db).await;
    let item = items(&store, &["A"]).await[0];
    let (_, zone, bin) = warehouse(&store).await;
    let supplier = store.virtual_locations().await.unwrap()[&VirtualKind::Supplier];
    use StockState::Available;
    let t = now();
    for (what, m) in [
        (
            "a state at a virtual location",
            movement(item, 1, (supplier, Some(Available)), (bin, Some(Available)), Reason::Received, t),
        ),
        ("no state at a bin", movement(item, 1, (supplier, None), (bin, None), Reason::Received, t)),
        ("a state at a zone", movement(item, 1, (supplier, None), (zone, Some(Available)), Reason::Received, t)),
    ] {
        // Straight into the table: through `book` the balances' own checks might refuse first.
        let result = sqlx::query(
            "INSERT INTO movements (item_id, quantity, from_location_id, from_state, to_location_id, to_state, \
             reason, actor, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'test', 0)",
        )
        .bind(m.item_id)
        .bind(m.quantity)
        .bind(m.from_location_id)
        .bind(m.from_state.map(StockState::as_str))
        .bind(m.to_location_id)
        .bind(m.to_state.map(StockState::as_str))
        .bind(m.reason.as_str())
        .execute(store.pool())
        .await;
        match result {
            Err(sqlx::Error::Database(e)) => assert_eq!(e.constraint(), Some("movements.side"), "{what}: {e}"),
            other => panic!("{what}: expected the movements.side rule, got {other:?}"),
        }
    }
    // Through the write path, the same rule is a conflict naming it.
    let m = movement(item, 1, (supplier, None), (zone, Some(Available)), Reason::Received, t);
    match book(&store, vec![m]).await {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, "movements.side"),
        other => panic!("expected the movements.side conflict, got {other:?}"),
    }
    assert!(store.movements(&MovementFilter::default(), None, 10).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Several nodes
// ---------------------------------------------------------------------------------------------------------------

/// 200 batches at once over two nodes, each taking one unit if one is left: exactly the 50 in stock are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_never_oversell_through_apply_batch() {
    let Some(db) = TestDb::create().await else { return };
    let nodes = [Arc::new(common::store(&db).await), Arc::new(common::store(&db).await)];
    let item = items(&nodes[0], &["HOT"]).await[0];
    let (_, _, bin) = warehouse(&nodes[0]).await;
    receive(&nodes[1], item, bin, 50).await;

    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = nodes[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut decide = |state: &mut BatchState| {
                let bal = state.balances.entry((item, bin)).or_default();
                if bal.available < 1 {
                    return BatchWrites::default();
                }
                bal.add(StockState::Available, -1);
                bal.add(StockState::Committed, 1);
                let m = movement(
                    item,
                    1,
                    (bin, Some(StockState::Available)),
                    (bin, Some(StockState::Committed)),
                    Reason::Order,
                    state.now,
                );
                BatchWrites { movements: vec![m], ..Default::default() }
            };
            let scope = BatchScope { items: vec![item], ..Default::default() };
            store.apply_batch(&scope, &mut decide).await.map(|ids| ids.movements.len())
        }));
    }
    let mut taken = 0;
    for task in tasks {
        taken += task.await.expect("task").expect("every batch commits, with or without a unit");
    }
    assert_eq!(taken, 50, "exactly the stock was taken");
    let bal = level(&nodes[0], item, bin).await;
    assert_eq!((bal.available, bal.committed), (0, 50));
    assert_ledger_agrees(&nodes[1]).await;
}

/// A batch of more items than PostgreSQL's lock table holds (25,000 item locks; here the table takes between
/// 10,000 and 20,000) commits: it takes the all-items key instead of one lock per item. Small batches on another node,
/// run meanwhile, wait for it or go before it, and every unit is booked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_more_items_than_the_lock_table_holds_commits() {
    let Some(db) = TestDb::create().await else { return };
    let nodes = [Arc::new(common::store(&db).await), Arc::new(common::store(&db).await)];
    let skus: Vec<String> = (0..25_000).map(|i| format!("SKU-{i}")).collect();
    let items = items(&nodes[0], &skus.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let (_, _, bin) = warehouse(&nodes[0]).await;
    let supplier = nodes[0].virtual_locations().await.unwrap()[&VirtualKind::Supplier];
    let small = {
        let (store, item) = (nodes[1].clone(), items[0]);
        tokio::spawn(async move {
            for _ in 0..40 {
                receive(&store, item, bin, 1).await;
            }
        })
    };
    let receipts: Vec<NewMovement> = items
        .iter()
        .map(|i| movement(*i, 2, (supplier, None), (bin, Some(StockState::Available)), Reason::Received, now()))
        .collect();
    let ids = book(&nodes[0], receipts).await.expect("the big batch commits");
    assert_eq!(ids.len(), 25_000);
    small.await.unwrap();
    assert_eq!(level(&nodes[0], items[0], bin).await.available, 42);
    assert_eq!(level(&nodes[1], items[24_999], bin).await.available, 2);
    assert_ledger_agrees(&nodes[1]).await;
}

/// Two apps (two server nodes, each with its own write path and group commit) on one database, 200 buyers of one
/// unit each against 50 in stock: exactly 50 orders, nothing oversold, and `verify` is clean on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_never_oversell_through_the_app() {
    let Some(db) = TestDb::create().await else { return };
    let stores = [Arc::new(common::store(&db).await), Arc::new(common::store(&db).await)];
    let item = items(&stores[0], &["HOT"]).await[0];
    let (_, _, bin) = warehouse(&stores[0]).await;
    let apps = [
        App::start(stores[0].clone(), LedgerConfig::default()).await.unwrap(),
        App::start(stores[1].clone(), LedgerConfig { max_batch: 16, ..Default::default() }).await.unwrap(),
    ];
    let receipt = AdjustmentRequest {
        lines: vec![AdjustmentLine {
            sku: "HOT".into(),
            location: "WH1/Z/B1".into(),
            state: None,
            delta: Some(50),
            set: None,
            expected_on_hand: None,
            reason: Reason::Received,
            note: None,
        }],
        reference: None,
    };
    apps[1].adjust(receipt, Actor::new("receiving")).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..200 {
        let app = apps[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let order = NewOrder {
                source: "shop".into(),
                external_number: Some(format!("FLASH-{i}")),
                customer: None,
                currency: "EUR".into(),
                payment_terms: PaymentTerms::Prepaid,
                notes: None,
                hold_id: None,
                lines: vec![NewOrderLine {
                    sku: "HOT".into(),
                    quantity: 1,
                    unit_price: None,
                    discount: None,
                    tax: None,
                }],
            };
            app.place_order(order, format!("fingerprint-{i}"), Actor::new(format!("buyer-{i}"))).await
        }));
    }
    let (mut sold, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok((_, created)) => {
                assert!(created, "every order number is new");
                sold += 1;
            }
            Err(AppError::InsufficientStock { .. }) => refused += 1,
            Err(other) => panic!("an order failed other than for stock: {other:?}"),
        }
    }
    assert_eq!((sold, refused), (50, 150), "exactly the stock was sold");
    let bal = level(&stores[1], item, bin).await;
    assert_eq!((bal.available, bal.committed), (0, 50), "nothing oversold");
    let orders = stores[0].list_orders(&OrderFilter::default(), None, 1_000).await.unwrap();
    assert_eq!(orders.len(), 50, "one order per unit sold, none lost or doubled");
    for app in &apps {
        assert!(app.verify().await.unwrap().is_empty(), "verify is clean");
    }
}

/// Due holds swept by both nodes at once are each ended exactly once: one release movement per hold, and every
/// reserved unit back to available.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_expire_once_across_nodes() {
    let Some(db) = TestDb::create().await else { return };
    let nodes = [Arc::new(common::store(&db).await), Arc::new(common::store(&db).await)];
    let item = items(&nodes[0], &["HOT"]).await[0];
    let (wh, _, bin) = warehouse(&nodes[0]).await;
    receive(&nodes[0], item, bin, 20).await;

    // Twenty holds of one unit each, all already due.
    let t = now();
    let holds: Vec<HoldRecord> = (0..20)
        .map(|i| HoldRecord {
            id: 0,
            hold: Hold {
                expires_at: t - Duration::seconds(i + 1),
                status: HoldStatus::Active,
                lines: vec![LineAllocation {
                    line: 0,
                    item,
                    picks: vec![Pick { warehouse: wh, bin, quantity: 1 }],
                    backordered: 0,
                    oversold: 0,
                }],
            },
            skus: vec!["HOT".into()],
            quantities: vec![1],
            reference: None,
            order_id: None,
            created_at: t,
            updated_at: t,
        })
        .collect();
    let mut reserve = |state: &mut BatchState| {
        let bal = state.balances.entry((item, bin)).or_default();
        bal.add(StockState::Available, -20);
        bal.add(StockState::Reserved, 20);
        let m = movement(
            item,
            20,
            (bin, Some(StockState::Available)),
            (bin, Some(StockState::Reserved)),
            Reason::Hold,
            state.now,
        );
        BatchWrites { movements: vec![m], new_holds: holds.clone(), ..Default::default() }
    };
    let scope = BatchScope { items: vec![item], ..Default::default() };
    assert_eq!(nodes[0].apply_batch(&scope, &mut reserve).await.unwrap().holds.len(), 20);

    // Both nodes sweep, several times each, at the same time.
    let ended = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (store, ended) = (nodes[i % 2].clone(), ended.clone());
        tasks.push(tokio::spawn(async move {
            let mut count = 0;
            let mut expire = |state: &mut BatchState| {
                count = 0;
                let now = state.now;
                let mut writes = BatchWrites::default();
                for (id, rec) in state.holds.iter_mut() {
                    if rec.hold.status != HoldStatus::Active || rec.hold.expires_at > now {
                        continue;
                    }
                    for line in &rec.hold.lines {
                        for pick in &line.picks {
                            let bal = state.balances.entry((line.item, pick.bin)).or_default();
                            bal.add(StockState::Reserved, -pick.quantity);
                            bal.add(StockState::Available, pick.quantity);
                            writes.movements.push(movement(
                                line.item,
                                pick.quantity,
                                (pick.bin, Some(StockState::Reserved)),
                                (pick.bin, Some(StockState::Available)),
                                Reason::Hold,
                                now,
                            ));
                        }
                    }
                    rec.hold.status = HoldStatus::Expired;
                    rec.updated_at = now;
                    writes.changed_holds.push(*id);
                    count += 1;
                }
                writes
            };
            let scope = BatchScope { due_holds: true, ..Default::default() };
            store.apply_batch(&scope, &mut expire).await.expect("sweep");
            ended.fetch_add(count, Ordering::Relaxed);
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(ended.load(Ordering::Relaxed), 20, "each hold was ended by exactly one sweep");
    assert!(nodes[1].due_holds(now() + Duration::days(1)).await.unwrap().is_empty());
    let bal = level(&nodes[1], item, bin).await;
    assert_eq!((bal.available, bal.reserved), (20, 0), "every reserved unit came back once");
    let releases = nodes[0]
        .movements(
            &MovementFilter { item_id: Some(item), reason: Some(Reason::Hold), within: None, ..Default::default() },
            None,
            100,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.movement.to_state == Some(StockState::Available))
        .count();
    assert_eq!(releases, 20);
    assert_ledger_agrees(&nodes[0]).await;
}

/// The same idempotency key sent to both nodes at once is claimed by exactly one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_are_claimed_once_across_nodes() {
    let Some(db) = TestDb::create().await else { return };
    let nodes = [Arc::new(common::store(&db).await), Arc::new(common::store(&db).await)];
    let t = now();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = nodes[i % 2].clone();
        tasks.push(tokio::spawn(async move { store.begin_request("api-key-1", "key", "hash", t).await }));
    }
    let mut states = Vec::new();
    for task in tasks {
        states.push(task.await.expect("task").expect("begin request"));
    }
    assert_eq!(states.iter().filter(|s| **s == IdempotencyState::New).count(), 1, "{states:?}");
    assert!(states.iter().all(|s| matches!(s, IdempotencyState::New | IdempotencyState::InProgress)));
    nodes[0].complete_request("api-key-1", "key", 201, b"{}", "application/json").await.unwrap();
    assert!(matches!(
        nodes[1].begin_request("api-key-1", "key", "hash", t).await.unwrap(),
        IdempotencyState::Completed { status: 201, .. }
    ));
}

/// A batch that decides on a balance it neither locked nor read (an item outside its scope) cannot commit that
/// decision: the balance comes out other than decided, the batch is decided again on fresh state a few times,
/// and then refused. Nothing of it is written.
#[tokio::test]
async fn a_decision_on_unlocked_stock_is_refused() {
    let Some(db) = TestDb::create().await else { return };
    let store = common::store(&db).await;
    let ids = items(&store, &["A", "B"]).await;
    let (a, b) = (ids[0], ids[1]);
    let (_, _, bin) = warehouse(&store).await;
    receive(&store, b, bin, 7).await;
    let movements_before = store.movements(&MovementFilter::default(), None, 100).await.unwrap();

    // Scoped to A, but books a receipt of B: the batch sees no balance of B and decides "B is now 1".
    let supplier = store.virtual_locations().await.unwrap()[&VirtualKind::Supplier];
    let runs = AtomicUsize::new(0);
    let mut decide = |state: &mut BatchState| {
        runs.fetch_add(1, Ordering::Relaxed);
        state.balances.entry((b, bin)).or_default().add(StockState::Available, 1);
        let m = movement(b, 1, (supplier, None), (bin, Some(StockState::Available)), Reason::Received, state.now);
        BatchWrites { movements: vec![m], ..Default::default() }
    };
    let result = store.apply_batch(&BatchScope { items: vec![a], ..Default::default() }, &mut decide).await;
    assert!(
        matches!(result, Err(StoreError::Internal(ref m)) if m.contains("outside the batch's locks")),
        "{result:?}"
    );
    assert!(runs.load(Ordering::Relaxed) > 1, "the batch was decided again before it was refused");
    assert_eq!(level(&store, b, bin).await.available, 7, "the stored balance is untouched");
    assert_eq!(store.movements(&MovementFilter::default(), None, 100).await.unwrap(), movements_before);
    assert_ledger_agrees(&store).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Webhooks: outbox ids that commit out of order
// ---------------------------------------------------------------------------------------------------------------

/// Commits one outbox event on its own (autocommit), as another node's batch would.
async fn commit_event(store: &PgStore, n: i64) {
    sqlx::query("INSERT INTO outbox (topic, payload, created_at) VALUES ('inventory.changed', $1::jsonb, 0)")
        .bind(format!("{{\"n\": {n}}}"))
        .execute(store.pool())
        .await
        .unwrap();
}

/// Draws an outbox id inside a transaction that stays open, as a batch still on its way to commit does.
async fn event_in_flight(store: &PgStore, n: i64) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("INSERT INTO outbox (topic, payload, created_at) VALUES ('inventory.changed', $1::jsonb, 0)")
        .bind(format!("{{\"n\": {n}}}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

/// Everything fanned out so far, as the one endpoint receives it (one delivery at a time, each acknowledged).
async fn drain(store: &PgStore) -> Vec<i64> {
    let t = now();
    let mut got = vec![];
    for token in 0.. {
        let claimed = store.claim_deliveries(t, t + Duration::seconds(30), 10, token).await.unwrap();
        let Some(d) = claimed.first() else { return got };
        got.push(d.event.payload["n"].as_i64().unwrap());
        let attempt = NewAttempt {
            delivery_id: d.id,
            claim_token: token,
            attempted_at: t,
            status_code: Some(204),
            error: None,
            duration_ms: 1,
            outcome: DeliveryOutcome::Delivered,
        };
        store.record_attempt(&attempt).await.unwrap();
    }
    unreachable!()
}

/// An event whose id was drawn by a transaction still open holds back the later ids other writers committed, so
/// the endpoint hears them in id order; once that transaction rolls back, fan-out moves over its id without
/// waiting for the backstop.
#[tokio::test]
async fn fan_out_waits_for_an_outbox_id_still_in_flight_and_not_for_one_rolled_back() {
    let Some(db) = TestDb::create().await else { return };
    let store = common::store(&db).await;
    let fields = EndpointFields {
        url: "https://shop.example/hooks".into(),
        event_types: vec![],
        channel: None,
        enabled: true,
        disabled_reason: None,
    };
    store.create_endpoint(&fields, "whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=", now()).await.unwrap();
    let all = |_: &EndpointRecord, _: &OutboxRecord| true;

    let first = event_in_flight(&store, 1).await;
    commit_event(&store, 2).await;
    assert_eq!(store.fan_out(10, now(), &all).await.unwrap(), FanOut::default(), "2 waits for 1");
    assert_eq!(store.fan_out(10, now(), &all).await.unwrap(), FanOut::default(), "and keeps waiting");
    first.commit().await.unwrap();
    assert_eq!(store.fan_out(10, now(), &all).await.unwrap(), FanOut { events: 2, deliveries: 2 });
    assert_eq!(drain(&store).await, [1, 2], "in id order, though 2 committed first");

    let lost = event_in_flight(&store, 3).await;
    commit_event(&store, 4).await;
    assert_eq!(store.fan_out(10, now(), &all).await.unwrap(), FanOut::default(), "4 waits for 3");
    lost.rollback().await.unwrap();
    // Settled once every transaction that was running when the gap was seen has ended. Xids are shared by the
    // whole server, so the other tests' transactions count too: they end within moments, the backstop is a minute.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let taken = loop {
        let f = store.fan_out(10, now(), &all).await.unwrap();
        if f.events > 0 || std::time::Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(taken, FanOut { events: 1, deliveries: 1 }, "3 is gone");

    // A transaction that drew no outbox id holds nothing back where nothing is missing.
    let mut unrelated = store.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut *unrelated).await.unwrap();
    commit_event(&store, 5).await;
    assert_eq!(store.fan_out(10, now(), &all).await.unwrap(), FanOut { events: 1, deliveries: 1 });
    assert_eq!(drain(&store).await, [4, 5]);
    unrelated.rollback().await.unwrap();
}

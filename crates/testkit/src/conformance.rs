//! The store conformance suite: behaviour every backend must show, written once against `app`'s store traits.
//!
//! Each `pub async fn` takes a fresh, empty, migrated store and panics on the first deviation. A backend runs all
//! of them with [`conformance_suite!`](crate::conformance_suite):
//!
//! ```ignore
//! async fn fresh() -> (tempfile::TempDir, Arc<dyn app::Store>) { /* a new database per test */ }
//! testkit::conformance_suite!(fresh());
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use app::inventory::{AdjustmentLine, AdjustmentRequest, MoveLineRequest, MoveRequest};
use app::store::{
    Address, BatchIds, BatchScope, BatchState, BatchWrites, CustomerFields, CustomerId, CustomerRecord, HoldId,
    HoldRecord, IdempotencyState, LevelFilter, LevelRow, LocationFields, LocationFilter, LocationRecord,
    MovementFilter, NewMovement, OrderFilter, OrderId, OrderRecord, OutboxEvent, PickListLine, PickListRecord,
    PickListStatus, ProductFilter, SellableBin, StoreResult, VariantFilter,
};
use app::{Actor, App, AppError, LedgerConfig, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use domain::catalog::{InventoryPolicy, ProductFields, ProductStatus, VariantFields};
use domain::location::LocationKind;
use domain::order::{NewLine, Order, OrderStatus, PaymentTerms};
use domain::orders::{BinStock, Hold, HoldStatus, LineAllocation, Pick, WarehouseStock};
use domain::stock::{Balance, ItemId, LocationId, Reason, StockState, VirtualKind};
use rust_decimal::Decimal;

mod bundles;
pub use bundles::*;
mod channels;
pub use channels::*;
mod purchasing;
pub use purchasing::*;
mod reports;
pub use reports::*;
mod trust;
pub use trust::*;
mod valuation;
pub use valuation::*;

/// Expands to one `#[tokio::test]` per suite function. `$make` is an expression of a future that yields
/// `(guard, store)`: the guard (a temporary directory, a database handle to drop, or `()`) lives until the test
/// ends, and the store is a fresh, empty, migrated `Arc<dyn app::Store>`. The calling crate needs `tokio` with
/// the `macros` and `rt` features.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            catalog_crud,
            product_filters_and_pagination,
            location_tree,
            ledger_apply_batch_and_levels,
            ledger_rejects_negative_balances_at_database,
            levels_as_of,
            movements_filters_and_pagination,
            default_bins_and_empty_bin,
            ledger_is_immutable,
            idempotency_states,
            import_products_upsert,
            balances_and_ledger_agree,
            delete_guards,
            write_path_through_the_app,
            concurrent_commands_through_the_app,
            customers_crud,
            orders_and_holds_through_apply_batch,
            backorder_queue_oldest_first,
            external_number_uniqueness_fails_the_batch,
            due_holds_are_active_and_past_expiry,
            sellable_bins_skip_unsellable,
            pick_lists_round_trip,
            orders_being_picked_are_on_open_lists_of_the_warehouse,
            bundle_components_round_trip,
            bundle_definitions_are_checked_by_the_database,
            racing_definitions_never_close_a_loop,
            channels_crud_and_rules,
            channel_item_facts_and_stock,
            lookup_inputs_read_together,
            availability_feed_sequences_and_lease,
            documents_round_trip_with_versions,
            documents_change_with_their_batch,
            trust_keys_audit_and_hold_channels,
            web_sessions_live_expire_and_end,
            valuation_settings_periods_and_landed_costs,
            replenishment_alerts_compare_and_set,
            variant_search_ranks_and_escapes_wildcards,
            sales_per_day_groups_shipments_by_utc_day,
            dashboard_counts_in_full_and_caps_rows,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let (_guard, store) = $make.await;
                $crate::conformance::$name(store).await;
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------------

/// The current time at the precision every store keeps (microseconds), so that records compare equal.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is in range")
}

fn product(handle: &str) -> ProductFields {
    ProductFields {
        handle: handle.into(),
        title: format!("Title of {handle}"),
        description: "A description with ünïcode and 'quotes'.".into(),
        vendor: Some("Acme".into()),
        category: Some("Apparel > Shirts".into()),
        tags: vec!["summer".into(), "cotton".into()],
        images: vec![format!("https://img.example/{handle}.jpg")],
        status: ProductStatus::Active,
        options: vec!["Color".into()],
    }
}

fn variant(sku: &str) -> VariantFields {
    VariantFields {
        sku: sku.into(),
        barcode: Some(format!("BC-{sku}")),
        options: vec![format!("colour-{sku}")],
        price: Decimal::new(1990, 2),
        compare_at_price: Some(Decimal::new(2500, 2)),
        currency: "EUR".into(),
        cost: Some(Decimal::new(70_125, 4)),
        weight_grams: Some(180),
        length_mm: Some(300),
        width_mm: None,
        height_mm: Some(5),
        tracked: true,
        inventory_policy: InventoryPolicy::Deny,
    }
}

fn location_fields(name: &str) -> LocationFields {
    LocationFields {
        name: name.into(),
        address: None,
        latitude: None,
        longitude: None,
        pick_sequence: None,
        sellable: true,
    }
}

/// Creates a location below `parent` (or at the root), with the path built from the parent's.
async fn location(
    store: &dyn Store,
    parent: Option<&LocationRecord>,
    code: &str,
    kind: LocationKind,
) -> LocationRecord {
    let path = match parent {
        Some(p) => format!("{}/{code}", p.path),
        None => code.to_string(),
    };
    store
        .create_location(parent.map(|p| p.id), &path, kind, &location_fields(code), now())
        .await
        .unwrap_or_else(|e| panic!("creating location {path}: {e}"))
}

/// A product with one variant per SKU; returns the item ids in SKU order.
async fn items(store: &dyn Store, handle: &str, skus: &[&str]) -> Vec<ItemId> {
    let variants: Vec<VariantFields> = skus.iter().map(|s| variant(s)).collect();
    let rec = store.create_product(&product(handle), &variants, now()).await.expect("create product");
    rec.variants.iter().map(|v| v.item_id).collect()
}

/// Two warehouses with bins: `WH1/A/1`, `WH1/A/2`, `WH2/1`; returns the bins' ids in that order.
async fn bins(store: &dyn Store) -> [LocationId; 3] {
    let wh1 = location(store, None, "WH1", LocationKind::Warehouse).await;
    let zone = location(store, Some(&wh1), "A", LocationKind::Zone).await;
    let b1 = location(store, Some(&zone), "1", LocationKind::Bin).await;
    let b2 = location(store, Some(&zone), "2", LocationKind::Bin).await;
    let wh2 = location(store, None, "WH2", LocationKind::Warehouse).await;
    let b3 = location(store, Some(&wh2), "1", LocationKind::Bin).await;
    [b1.id, b2.id, b3.id]
}

async fn virtual_id(store: &dyn Store, kind: VirtualKind) -> LocationId {
    store.virtual_locations().await.expect("virtual locations")[&kind]
}

/// A movement from a virtual location into a stocked state (`from_state: None`) or between stocked states.
#[allow(clippy::too_many_arguments)]
fn movement(
    item: ItemId,
    quantity: i64,
    from: LocationId,
    from_state: Option<StockState>,
    to: LocationId,
    to_state: Option<StockState>,
    reason: Reason,
    at: DateTime<Utc>,
) -> NewMovement {
    NewMovement {
        item_id: item,
        quantity,
        from_location_id: from,
        from_state,
        to_location_id: to,
        to_state,
        reason,
        reference: Some("REF-1".into()),
        note: None,
        actor: "conformance".into(),
        request_id: Some("req-1".into()),
        recorded_at: at,
    }
}

/// The items some movements move: the scope a batch of them reads.
fn items_of(movements: &[NewMovement]) -> Vec<ItemId> {
    let mut items: Vec<ItemId> = movements.iter().map(|m| m.item_id).collect();
    items.sort_unstable();
    items.dedup();
    items
}

/// Books movements through the one write path, updating balances as the domain would (without its checks, so
/// that the database's own checks can be tested too). The movements keep their own times, so that tests of past
/// levels can place them in time.
async fn book(store: &dyn Store, movements: Vec<NewMovement>) -> StoreResult<Vec<i64>> {
    let scope = BatchScope { items: items_of(&movements), ..Default::default() };
    let mut decide = |state: &mut BatchState| {
        for m in &movements {
            if let Some(s) = m.from_state {
                state.balances.entry((m.item_id, m.from_location_id)).or_default().add(s, -m.quantity);
            }
            if let Some(s) = m.to_state {
                state.balances.entry((m.item_id, m.to_location_id)).or_default().add(s, m.quantity);
            }
        }
        let event =
            OutboxEvent { topic: "test.booked".into(), payload: serde_json::json!({ "count": movements.len() }) };
        BatchWrites { movements: movements.clone(), events: vec![event], ..Default::default() }
    };
    store.apply_batch(&scope, &mut decide).await.map(|ids| ids.movements)
}

/// Runs one batch over `scope` that writes nothing, and returns the state it saw.
async fn observe(store: &dyn Store, scope: BatchScope) -> BatchState {
    let mut seen = None;
    let mut decide = |state: &mut BatchState| {
        seen = Some(state.clone());
        BatchWrites::default()
    };
    let ids = store.apply_batch(&scope, &mut decide).await.expect("an observing batch");
    assert_eq!(ids, BatchIds::default(), "a batch that writes nothing gets no ids");
    seen.expect("decide was called")
}

fn balance(pairs: &[(StockState, i64)]) -> Balance {
    let mut b = Balance::default();
    for (s, q) in pairs {
        b.add(*s, *q);
    }
    b
}

/// Level rows as `(sku, path) -> balance`, for comparisons that read well in a failure message.
fn by_name(rows: &[LevelRow]) -> BTreeMap<(String, String), Balance> {
    rows.iter().map(|r| ((r.sku.clone(), r.path.clone()), r.balance)).collect()
}

fn key(sku: &str, path: &str) -> (String, String) {
    (sku.to_string(), path.to_string())
}

/// The constraint named by a `Conflict`, or a panic naming what came instead.
fn conflict<T: std::fmt::Debug>(r: StoreResult<T>) -> String {
    match r {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a Conflict, got {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(r: StoreResult<T>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn all_levels(store: &dyn Store) -> Vec<LevelRow> {
    store.levels(&LevelFilter::default(), None, 1_000).await.expect("levels")
}

async fn all_movements(store: &dyn Store) -> Vec<app::store::MovementRecord> {
    store.movements(&MovementFilter::default(), None, 10_000).await.expect("movements")
}

// ---------------------------------------------------------------------------------------------------------------
// Catalog
// ---------------------------------------------------------------------------------------------------------------

/// Products and variants are created, read, changed and deleted; uniqueness clashes name the column.
pub async fn catalog_crud(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t0 = now();
    let tee = product("tee");
    let rec = store.create_product(&tee, &[variant("TEE-RED"), variant("TEE-BLUE")], t0).await.unwrap();
    assert_eq!(rec.fields, tee);
    assert_eq!((rec.created_at, rec.updated_at), (t0, t0));
    let skus: Vec<&str> = rec.variants.iter().map(|v| v.fields.sku.as_str()).collect();
    assert_eq!(skus, ["TEE-RED", "TEE-BLUE"], "variants come in position (creation) order");
    assert_eq!(rec.variants[0].fields, variant("TEE-RED"), "every variant field round-trips, decimals exactly");
    assert!(rec.variants.iter().all(|v| v.product_id == rec.id && v.created_at == t0));
    assert_ne!(rec.variants[0].item_id, rec.variants[1].item_id, "each variant has its own item");

    assert_eq!(store.get_product(rec.id).await.unwrap().as_ref(), Some(&rec));
    assert_eq!(store.get_product_by_handle("tee").await.unwrap().as_ref(), Some(&rec));
    assert_eq!(store.get_product(rec.id + 1000).await.unwrap(), None);
    assert_eq!(store.get_product_by_handle("nope").await.unwrap(), None);

    // Clashes name the column, and a failed create leaves nothing behind.
    assert!(conflict(store.create_product(&tee, &[], t0).await).contains("handle"));
    assert!(conflict(store.create_product(&product("other"), &[variant("OTHER-1"), variant("TEE-RED")], t0).await)
        .contains("sku"));
    assert_eq!(store.get_product_by_handle("other").await.unwrap(), None, "the failed create was rolled back");
    assert!(store.resolve_skus(&["OTHER-1".into()]).await.unwrap().is_empty());

    // Update.
    let t1 = t0 + Duration::seconds(5);
    let mut changed = tee.clone();
    changed.title = "New title".into();
    changed.tags = vec!["winter".into()];
    changed.vendor = None;
    let updated = store.update_product(rec.id, &changed, t1).await.unwrap();
    assert_eq!(updated.fields, changed);
    assert_eq!((updated.created_at, updated.updated_at), (t0, t1));
    assert_eq!(updated.variants, rec.variants, "updating a product leaves its variants alone");
    not_found(store.update_product(rec.id + 1000, &changed, t1).await);
    store.create_product(&product("second"), &[], t0).await.unwrap();
    let mut steal = changed.clone();
    steal.handle = "second".into();
    assert!(conflict(store.update_product(rec.id, &steal, t1).await).contains("handle"));

    // Variants.
    let green = store.create_variant(rec.id, &variant("TEE-GREEN"), t1).await.unwrap();
    assert_eq!(green.fields, variant("TEE-GREEN"));
    assert_eq!(green.product_id, rec.id);
    not_found(store.create_variant(rec.id + 1000, &variant("LOST"), t1).await);
    assert!(conflict(store.create_variant(rec.id, &variant("TEE-RED"), t1).await).contains("sku"));
    let reread = store.get_product(rec.id).await.unwrap().unwrap();
    let skus: Vec<&str> = reread.variants.iter().map(|v| v.fields.sku.as_str()).collect();
    assert_eq!(skus, ["TEE-RED", "TEE-BLUE", "TEE-GREEN"], "a new variant goes last");
    assert_eq!(store.get_variant(green.id).await.unwrap().as_ref(), Some(&green));
    assert_eq!(store.get_variant(green.id + 1000).await.unwrap(), None);

    // Changing a variant's SKU renames its item: the item id (and so its ledger history) stays.
    let mut renamed = variant("TEE-LIME");
    renamed.price = Decimal::new(2100, 2);
    renamed.barcode = None;
    let lime = store.update_variant(green.id, &renamed, t1).await.unwrap();
    assert_eq!(lime.fields, renamed);
    assert_eq!(lime.item_id, green.item_id);
    let resolved = store.resolve_skus(&["TEE-LIME".into(), "TEE-GREEN".into(), "TEE-RED".into()]).await.unwrap();
    assert_eq!(resolved.get("TEE-LIME"), Some(&green.item_id));
    assert_eq!(resolved.get("TEE-RED"), Some(&rec.variants[0].item_id));
    assert!(!resolved.contains_key("TEE-GREEN"));
    let variants = store
        .variants_by_skus(&["TEE-LIME".into(), "TEE-GREEN".into(), "TEE-RED".into(), "TEE-RED".into()])
        .await
        .unwrap();
    assert_eq!(variants.len(), 2, "one entry per known SKU: {variants:?}");
    assert_eq!(variants.get("TEE-LIME"), Some(&app::store::SkuVariant { variant: lime.clone(), is_bundle: false }));
    assert_eq!(
        variants.get("TEE-RED"),
        Some(&app::store::SkuVariant { variant: rec.variants[0].clone(), is_bundle: false })
    );
    assert!(store.variants_by_skus(&[]).await.unwrap().is_empty());
    assert!(conflict(store.update_variant(green.id, &variant("TEE-BLUE"), t1).await).contains("sku"));
    not_found(store.update_variant(green.id + 1000, &renamed, t1).await);

    // Delete a variant: its item goes too.
    store.delete_variant(lime.id).await.unwrap();
    assert_eq!(store.get_variant(lime.id).await.unwrap(), None);
    assert!(store.resolve_skus(&["TEE-LIME".into()]).await.unwrap().is_empty());
    not_found(store.delete_variant(lime.id).await);

    // Delete the product: variants and items go with it, and the SKUs are free again.
    store.delete_product(rec.id).await.unwrap();
    assert_eq!(store.get_product(rec.id).await.unwrap(), None);
    assert!(store.resolve_skus(&["TEE-RED".into(), "TEE-BLUE".into()]).await.unwrap().is_empty());
    assert_eq!(store.get_variant(rec.variants[0].id).await.unwrap(), None);
    not_found(store.delete_product(rec.id).await);
    store.create_product(&product("reuse"), &[variant("TEE-RED")], t1).await.expect("a freed SKU can be reused");
}

/// Product and variant lists filter exactly as documented and paginate by id without gaps or repeats.
pub async fn product_filters_and_pagination(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t = now();
    let mut specs = Vec::new();
    for (i, (status, vendor, category, tags)) in [
        (ProductStatus::Active, Some("Acme"), Some("Apparel > Shirts"), vec!["summer"]),
        (ProductStatus::Draft, Some("Acme"), Some("Apparel"), vec!["winter", "summer"]),
        (ProductStatus::Archived, Some("Other"), Some("Apparel > Shirts > Tees"), vec![]),
        (ProductStatus::Active, None, Some("Apparel Deluxe"), vec!["summer sale"]),
        (ProductStatus::Active, Some("acme"), None, vec!["SUMMER"]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut f = product(&format!("p{i}"));
        f.title = format!("Product {i} 100%_pure");
        f.status = status;
        f.vendor = vendor.map(String::from);
        f.category = category.map(String::from);
        f.tags = tags.into_iter().map(String::from).collect();
        let rec = store.create_product(&f, &[variant(&format!("SKU-{i}-A")), variant(&format!("SKU-{i}-B"))], t).await;
        specs.push(rec.unwrap());
    }
    let ids = |recs: Vec<app::store::ProductRecord>| recs.into_iter().map(|r| r.fields.handle).collect::<Vec<_>>();
    let list = |f: ProductFilter| async move { ids(store.list_products(&f, None, 100).await.unwrap()) };

    assert_eq!(list(ProductFilter::default()).await, ["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(
        list(ProductFilter { status: Some(ProductStatus::Active), ..Default::default() }).await,
        ["p0", "p3", "p4"]
    );
    assert_eq!(list(ProductFilter { vendor: Some("Acme".into()), ..Default::default() }).await, ["p0", "p1"]);
    assert_eq!(
        list(ProductFilter { category: Some("Apparel".into()), ..Default::default() }).await,
        ["p0", "p1", "p2"],
        "a category matches itself and everything below it, not names that merely start alike"
    );
    assert_eq!(
        list(ProductFilter { category: Some("Apparel > Shirts".into()), ..Default::default() }).await,
        ["p0", "p2"]
    );
    assert_eq!(
        list(ProductFilter { tag: Some("summer".into()), ..Default::default() }).await,
        ["p0", "p1"],
        "tags match exactly"
    );
    assert_eq!(
        list(ProductFilter { q: Some("PRODUCT 3".into()), ..Default::default() }).await,
        ["p3"],
        "q ignores case"
    );
    assert_eq!(list(ProductFilter { q: Some("P4".into()), ..Default::default() }).await, ["p4"], "q searches handles");
    assert_eq!(list(ProductFilter { q: Some("100%_p".into()), ..Default::default() }).await.len(), 5);
    assert!(list(ProductFilter { q: Some("1%0".into()), ..Default::default() }).await.is_empty(), "% is no wildcard");
    assert!(
        list(ProductFilter { q: Some("Product_1".into()), ..Default::default() }).await.is_empty(),
        "_ is no wildcard"
    );
    assert_eq!(list(ProductFilter { sku: Some("SKU-2-B".into()), ..Default::default() }).await, ["p2"]);
    assert!(list(ProductFilter { sku: Some("SKU-2".into()), ..Default::default() }).await.is_empty());
    assert_eq!(
        list(ProductFilter {
            status: Some(ProductStatus::Active),
            tag: Some("summer".into()),
            vendor: Some("Acme".into()),
            ..Default::default()
        })
        .await,
        ["p0"],
        "filters combine"
    );

    // Listed products carry their variants in order.
    let all = store.list_products(&ProductFilter::default(), None, 100).await.unwrap();
    assert_eq!(all, specs, "a listed product equals the product read alone, variants included");

    // Pagination: pages of two, each after the last id of the previous page.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_products(&ProductFilter::default(), after, 2).await.unwrap();
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|p| p.id);
        seen.extend(page.into_iter().map(|p| p.fields.handle));
    }
    assert_eq!(seen, ["p0", "p1", "p2", "p3", "p4"]);

    // Variants.
    let vlist = |f: VariantFilter, after: Option<i64>, limit: u32| async move {
        store.list_variants(&f, after, limit).await.unwrap().into_iter().map(|v| v.fields.sku).collect::<Vec<_>>()
    };
    assert_eq!(
        vlist(VariantFilter { product_id: Some(specs[1].id), ..Default::default() }, None, 10).await,
        ["SKU-1-A", "SKU-1-B"]
    );
    assert_eq!(vlist(VariantFilter { sku: Some("SKU-3-A".into()), ..Default::default() }, None, 10).await, ["SKU-3-A"]);
    assert_eq!(
        vlist(VariantFilter { barcode: Some("BC-SKU-4-B".into()), ..Default::default() }, None, 10).await,
        ["SKU-4-B"]
    );
    let first = store.list_variants(&VariantFilter::default(), None, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0].id < w[1].id), "variants are listed in id order");
    let rest = store.list_variants(&VariantFilter::default(), Some(first[2].id), 100).await.unwrap();
    assert_eq!(first.len() + rest.len(), 10);
    assert!(rest.iter().all(|v| v.id > first[2].id));
}

// ---------------------------------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------------------------------

/// The tree: built-in virtual locations, paths, subtree filters without wildcard surprises, and delete rules.
pub async fn location_tree(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let virtuals = store.virtual_locations().await.unwrap();
    assert_eq!(virtuals.len(), 5);
    for kind in VirtualKind::ALL {
        let rec = store.get_location(kind.code()).await.unwrap().expect("virtual location exists");
        assert_eq!((rec.id, rec.kind, rec.virtual_kind), (virtuals[&kind], LocationKind::Virtual, Some(kind)));
        assert_eq!(rec.parent_id, None);
    }

    let t = now();
    let address = Address {
        line1: "Dock 4".into(),
        line2: None,
        city: "Hamburg".into(),
        postal_code: "20457".into(),
        region: Some("HH".into()),
        country: "DE".into(),
    };
    let fields = LocationFields {
        name: "Main warehouse".into(),
        address: Some(address),
        latitude: Some(53.54),
        longitude: Some(9.98),
        pick_sequence: None,
        sellable: true,
    };
    let wh1 = store.create_location(None, "WH1", LocationKind::Warehouse, &fields, t).await.unwrap();
    assert_eq!(
        (wh1.path.as_str(), wh1.code.as_str(), wh1.kind, wh1.parent_id),
        ("WH1", "WH1", LocationKind::Warehouse, None)
    );
    assert_eq!(wh1.fields, fields, "fields round-trip, address included");
    assert_eq!((wh1.created_at, wh1.updated_at), (t, t));
    assert_eq!(store.get_location("WH1").await.unwrap().as_ref(), Some(&wh1));

    let zone = location(store, Some(&wh1), "Z", LocationKind::Zone).await;
    let shelf = location(store, Some(&zone), "S1", LocationKind::Shelf).await;
    let b1 = location(store, Some(&shelf), "B1", LocationKind::Bin).await;
    let b2 = location(store, Some(&shelf), "B_2", LocationKind::Bin).await;
    let wh10 = location(store, None, "WH10", LocationKind::Warehouse).await;
    assert_eq!((b2.path.as_str(), b2.code.as_str(), b2.parent_id), ("WH1/Z/S1/B_2", "B_2", Some(shelf.id)));

    assert!(conflict(
        store.create_location(Some(shelf.id), "WH1/Z/S1/B1", LocationKind::Bin, &location_fields("x"), t).await
    )
    .contains("path"));

    let paths = |recs: Vec<LocationRecord>| recs.into_iter().map(|r| r.path).collect::<Vec<_>>();
    let list = |f: LocationFilter| async move { paths(store.list_locations(&f, None, 100).await.unwrap()) };
    assert_eq!(
        list(LocationFilter { within: Some("WH1".into()), ..Default::default() }).await,
        ["WH1", "WH1/Z", "WH1/Z/S1", "WH1/Z/S1/B1", "WH1/Z/S1/B_2"],
        "within is the location and its subtree, not WH10"
    );
    assert!(
        list(LocationFilter { within: Some("WH1/Z/S1/B_".into()), ..Default::default() }).await.is_empty(),
        "_ is no wildcard"
    );
    assert!(
        list(LocationFilter { within: Some("WH1/Z/S1/B%".into()), ..Default::default() }).await.is_empty(),
        "% is no wildcard"
    );
    assert_eq!(
        list(LocationFilter { kind: Some(LocationKind::Bin), ..Default::default() }).await,
        ["WH1/Z/S1/B1", "WH1/Z/S1/B_2"]
    );
    assert_eq!(
        list(LocationFilter { parent_id: Some(shelf.id), ..Default::default() }).await,
        ["WH1/Z/S1/B1", "WH1/Z/S1/B_2"]
    );
    assert_eq!(list(LocationFilter { kind: Some(LocationKind::Virtual), ..Default::default() }).await.len(), 5);

    let all = store.list_locations(&LocationFilter::default(), None, 100).await.unwrap();
    assert_eq!(all.len(), 11);
    let page1 = store.list_locations(&LocationFilter::default(), None, 4).await.unwrap();
    let page2 = store.list_locations(&LocationFilter::default(), page1.last().map(|l| l.id), 100).await.unwrap();
    assert_eq!([page1, page2].concat(), all, "pages join up to the whole list");

    let found = store.resolve_paths(&["WH1/Z/S1/B1".into(), "WH10".into(), "NOWHERE".into()]).await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found["WH1/Z/S1/B1"], b1);
    assert_eq!(found["WH10"].id, wh10.id);

    // Update.
    let t1 = t + Duration::seconds(1);
    let mut f = b1.fields.clone();
    f.name = "Bin one".into();
    f.pick_sequence = Some(7);
    f.sellable = false;
    let updated = store.update_location(b1.id, &f, t1).await.unwrap();
    assert_eq!(updated.fields, f);
    assert_eq!((updated.path.as_str(), updated.created_at, updated.updated_at), ("WH1/Z/S1/B1", b1.created_at, t1));
    not_found(store.update_location(b1.id + 1000, &f, t1).await);

    // Delete: not with children; leaves go.
    assert!(conflict(store.delete_location(shelf.id).await).contains("parent"));
    store.delete_location(b2.id).await.unwrap();
    assert_eq!(store.get_location("WH1/Z/S1/B_2").await.unwrap(), None);
    not_found(store.delete_location(b2.id).await);
    store.delete_location(wh10.id).await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------------------------------

/// `apply_batch` hands `decide` the current balances, writes what it returns, and `levels` reads it back.
pub async fn ledger_apply_batch_and_levels(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, b2, b3] = bins(store).await;
    let it = items(store, "tee", &["A", "B", "C"]).await;
    let (a, b, c) = (it[0], it[1], it[2]);
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let t = now();
    use StockState::*;

    let ids = book(
        store,
        vec![
            movement(a, 10, supplier, None, b1, Some(Available), Reason::Received, t),
            movement(b, 5, supplier, None, b2, Some(Available), Reason::Received, t),
            movement(c, 7, supplier, None, b3, Some(Incoming), Reason::Received, t),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids follow the order of the movements: {ids:?}");
    let written = all_movements(store).await;
    assert_eq!(written.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert_eq!(written[1].movement.item_id, b, "the second id is the second movement");

    // decide sees every stored balance of the scope's items, and nothing of other items.
    let seen = observe(store, BatchScope { items: vec![a], ..Default::default() }).await;
    assert_eq!(seen.balances.get(&(a, b1)).copied(), Some(balance(&[(Available, 10)])));
    assert_eq!(seen.balances.get(&(a, b2)).copied().unwrap_or_default(), Balance::default());
    assert!(seen.balances.keys().all(|(item, _)| *item == a), "only the scope's items: {:?}", seen.balances);
    assert!(seen.now >= t, "the transaction's time is never before the newest movement");

    // A move between bins and states.
    book(store, vec![movement(a, 3, b1, Some(Available), b2, Some(Damaged), Reason::Move, t)]).await.unwrap();
    let levels = all_levels(store).await;
    let expected = BTreeMap::from([
        (key("A", "WH1/A/1"), balance(&[(Available, 7)])),
        (key("A", "WH1/A/2"), balance(&[(Damaged, 3)])),
        (key("B", "WH1/A/2"), balance(&[(Available, 5)])),
        (key("C", "WH2/1"), balance(&[(Incoming, 7)])),
    ]);
    assert_eq!(by_name(&levels), expected);
    let seen = observe(store, BatchScope { items: vec![a, c], ..Default::default() }).await;
    let mut keys: Vec<_> = seen.balances.keys().copied().collect();
    keys.sort_unstable();
    assert_eq!(keys, [(a, b1), (a, b2), (c, b3)], "every location of every scope item");
    let order: Vec<(ItemId, &str)> = levels.iter().map(|r| (r.item_id, r.path.as_str())).collect();
    assert_eq!(order, [(a, "WH1/A/1"), (a, "WH1/A/2"), (b, "WH1/A/2"), (c, "WH2/1")], "item order, then path order");
    assert!(levels
        .iter()
        .all(|r| r.location_id
            == [b1, b2, b3][["WH1/A/1", "WH1/A/2", "WH2/1"].iter().position(|p| *p == r.path).unwrap()]));

    // Filters and pagination by item.
    let f_item = LevelFilter { item_id: Some(a), within: None };
    let a_rows: Vec<LevelRow> = levels.iter().filter(|r| r.item_id == a).cloned().collect();
    assert_eq!(store.levels(&f_item, None, 10).await.unwrap(), a_rows, "one item's rows, as the full list has them");
    assert_eq!(store.levels(&f_item, Some(a - 1), 1).await.unwrap(), a_rows, "a page before the item holds it");
    assert!(store.levels(&f_item, Some(a), 10).await.unwrap().is_empty(), "a page after the item is empty");
    let f_within = LevelFilter { item_id: None, within: Some("WH1/A/2".into()) };
    let rows = store.levels(&f_within, None, 10).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.sku.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    let f_wh = LevelFilter { item_id: None, within: Some("WH1".into()) };
    assert_eq!(store.levels(&f_wh, None, 10).await.unwrap().len(), 3);
    let f_wh2 = LevelFilter { item_id: None, within: Some("WH2".into()) };
    assert_eq!(
        by_name(&store.levels(&f_wh2, None, 10).await.unwrap()).keys().collect::<Vec<_>>(),
        [&key("C", "WH2/1")]
    );
    let first = store.levels(&LevelFilter::default(), None, 1).await.unwrap();
    assert_eq!(first.len(), 2, "item_limit counts items, not rows: A has two bins");
    assert!(first.iter().all(|r| r.item_id == a));
    let next = store.levels(&LevelFilter::default(), Some(a), 1).await.unwrap();
    assert_eq!(next.iter().map(|r| r.item_id).collect::<Vec<_>>(), [b]);
    assert!(store.levels(&LevelFilter::default(), Some(c), 10).await.unwrap().is_empty());

    // Zero balances are stored but not listed.
    book(store, vec![movement(b, 5, b2, Some(Available), supplier, None, Reason::Correction, t)]).await.unwrap();
    let levels = by_name(&all_levels(store).await);
    assert!(!levels.contains_key(&key("B", "WH1/A/2")), "an all-zero balance is not listed");
    assert_eq!(levels.len(), 3);
    let f_b = LevelFilter { item_id: Some(b), within: None };
    assert!(store.levels(&f_b, None, 10).await.unwrap().is_empty(), "nor for an item filter");
}

/// The database itself refuses a negative state, failing the whole batch: no movement, event or balance stays.
pub async fn ledger_rejects_negative_balances_at_database(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, b2, _] = bins(store).await;
    let a = items(store, "tee", &["A"]).await[0];
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let t = now();
    use StockState::*;
    book(store, vec![movement(a, 5, supplier, None, b1, Some(Available), Reason::Received, t)]).await.unwrap();
    let levels_before = all_levels(store).await;
    let movements_before = all_movements(store).await;

    // A decide that (wrongly) drives a balance negative: it moves 8 of the 5 units.
    let result = book(
        store,
        vec![
            movement(a, 1, supplier, None, b2, Some(Available), Reason::Received, t),
            movement(a, 8, b1, Some(Available), b2, Some(Available), Reason::Move, t),
        ],
    )
    .await;
    let constraint = conflict(result);
    assert!(constraint.contains("stock"), "the stock_levels check names itself: {constraint}");
    assert_eq!(all_levels(store).await, levels_before, "no balance changed");
    assert_eq!(all_movements(store).await, movements_before, "no movement was written");

    // Another state, set directly in the map.
    let mut decide = |state: &mut BatchState| {
        state.balances.entry((a, b2)).or_default().add(Reserved, -1);
        let movements = vec![movement(a, 1, b2, Some(Reserved), supplier, None, Reason::Correction, state.now)];
        BatchWrites { movements, ..Default::default() }
    };
    assert!(store.apply_batch(&BatchScope { items: vec![a], ..Default::default() }, &mut decide).await.is_err());

    // A movement must move something: a zero quantity is refused too.
    assert!(book(store, vec![movement(a, 0, supplier, None, b1, Some(Available), Reason::Received, t)]).await.is_err());

    assert_eq!(all_levels(store).await, levels_before);
    assert_eq!(all_movements(store).await, movements_before);
    let (stored, folded) = store.balances_and_ledger().await.unwrap();
    assert_eq!(by_name(&stored), by_name(&folded), "the failed batches left the cache and the ledger in step");

    // The store still works after the failures.
    book(store, vec![movement(a, 5, b1, Some(Available), b2, Some(Available), Reason::Move, t)]).await.unwrap();
    assert_eq!(by_name(&all_levels(store).await), BTreeMap::from([(key("A", "WH1/A/2"), balance(&[(Available, 5)]))]));
}

/// Levels at a past time are folded from the movements recorded up to then.
pub async fn levels_as_of(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, b2, b3] = bins(store).await;
    let it = items(store, "tee", &["A", "B"]).await;
    let (a, b) = (it[0], it[1]);
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let scrap = virtual_id(store, VirtualKind::Scrap).await;
    let t1 = now() - Duration::hours(3);
    let t2 = t1 + Duration::hours(1);
    let t3 = t2 + Duration::hours(1);
    use StockState::*;
    book(
        store,
        vec![
            movement(a, 10, supplier, None, b1, Some(Available), Reason::Received, t1),
            movement(b, 4, supplier, None, b3, Some(Available), Reason::Received, t1),
        ],
    )
    .await
    .unwrap();
    book(store, vec![movement(a, 4, b1, Some(Available), b2, Some(QualityControl), Reason::Move, t2)]).await.unwrap();
    book(
        store,
        vec![
            movement(a, 6, b1, Some(Available), scrap, None, Reason::Damaged, t3),
            movement(b, 4, b3, Some(Available), scrap, None, Reason::Shrinkage, t3),
        ],
    )
    .await
    .unwrap();

    let as_of = |t: DateTime<Utc>, filter: LevelFilter| async move {
        by_name(&store.levels_as_of(&filter, t, None, 100).await.unwrap())
    };
    assert!(as_of(t1 - Duration::seconds(1), LevelFilter::default()).await.is_empty());
    assert_eq!(
        as_of(t1, LevelFilter::default()).await,
        BTreeMap::from([
            (key("A", "WH1/A/1"), balance(&[(Available, 10)])),
            (key("B", "WH2/1"), balance(&[(Available, 4)]))
        ]),
        "as_of includes movements recorded at exactly that time"
    );
    assert_eq!(
        as_of(t2 + Duration::minutes(30), LevelFilter::default()).await,
        BTreeMap::from([
            (key("A", "WH1/A/1"), balance(&[(Available, 6)])),
            (key("A", "WH1/A/2"), balance(&[(QualityControl, 4)])),
            (key("B", "WH2/1"), balance(&[(Available, 4)])),
        ])
    );
    let latest = as_of(now(), LevelFilter::default()).await;
    assert_eq!(
        latest,
        BTreeMap::from([(key("A", "WH1/A/2"), balance(&[(QualityControl, 4)]))]),
        "zero balances are left out"
    );
    assert_eq!(latest, by_name(&all_levels(store).await), "as of now equals the stored levels");

    // Filters and pagination behave as for current levels.
    let at = t2;
    assert_eq!(as_of(at, LevelFilter { item_id: Some(b), within: None }).await.len(), 1);
    assert_eq!(as_of(at, LevelFilter { item_id: None, within: Some("WH1".into()) }).await.len(), 2);
    assert_eq!(as_of(at, LevelFilter { item_id: None, within: Some("WH1/A/2".into()) }).await.len(), 1);
    let page = store.levels_as_of(&LevelFilter::default(), at, None, 1).await.unwrap();
    assert_eq!(page.iter().map(|r| (r.item_id, r.path.as_str())).collect::<Vec<_>>(), [(a, "WH1/A/1"), (a, "WH1/A/2")]);
    let page = store.levels_as_of(&LevelFilter::default(), at, Some(a), 1).await.unwrap();
    assert_eq!(page.iter().map(|r| (r.item_id, r.sku.as_str(), r.location_id)).collect::<Vec<_>>(), [(b, "B", b3)]);
}

/// Default bins: one per item and warehouse, replaced when set again, removed when cleared, dropped with their bin.
/// The empty-bin search skips bins holding any units, stays inside the warehouse, and takes bins that are nobody's
/// default first.
pub async fn default_bins_and_empty_bin(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, b2, b3] = bins(store).await;
    let it = items(store, "tee", &["A", "B"]).await;
    let (a, b) = (it[0], it[1]);
    let wh1 = store.get_location("WH1").await.unwrap().unwrap().id;
    let wh2 = store.get_location("WH2").await.unwrap().unwrap().id;
    let t = now();
    assert_eq!(store.default_bin(a, wh1).await.unwrap(), None);
    store.set_default_bin(a, wh1, b1, t).await.unwrap();
    store.set_default_bin(a, wh1, b2, t).await.unwrap();
    store.set_default_bin(a, wh2, b3, t).await.unwrap();
    assert_eq!(store.default_bin(a, wh1).await.unwrap().as_deref(), Some("WH1/A/2"), "replaced");
    assert_eq!(store.default_bin(a, wh2).await.unwrap().as_deref(), Some("WH2/1"), "per warehouse");
    assert_eq!(store.default_bin(b, wh1).await.unwrap(), None, "per item");

    assert_eq!(store.empty_bin("WH1").await.unwrap().as_deref(), Some("WH1/A/1"), "WH1/A/2 is a default");
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    book(store, vec![movement(b, 1, supplier, None, b1, Some(StockState::Damaged), Reason::Received, t)])
        .await
        .unwrap();
    assert_eq!(store.empty_bin("WH1").await.unwrap().as_deref(), Some("WH1/A/2"), "damaged units are units");
    book(store, vec![movement(b, 1, supplier, None, b2, Some(StockState::Available), Reason::Received, t)])
        .await
        .unwrap();
    assert_eq!(store.empty_bin("WH1").await.unwrap(), None);
    assert_eq!(store.empty_bin("WH").await.unwrap(), None, "WH is not WH1's parent");
    assert_eq!(store.empty_bin("WH2").await.unwrap().as_deref(), Some("WH2/1"));

    assert!(store.clear_default_bin(a, wh1).await.unwrap());
    assert!(!store.clear_default_bin(a, wh1).await.unwrap(), "nothing left to clear");
    assert_eq!(store.default_bin(a, wh1).await.unwrap(), None);
    assert_eq!(store.default_bin(a, wh2).await.unwrap().as_deref(), Some("WH2/1"));
    store.delete_location(b3).await.unwrap();
    assert_eq!(store.default_bin(a, wh2).await.unwrap(), None, "gone with its bin");
}

/// The movement history: every field read back, filtered by item, reason and location subtree, paginated by id.
pub async fn movements_filters_and_pagination(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, b2, b3] = bins(store).await;
    let it = items(store, "tee", &["A", "B"]).await;
    let (a, b) = (it[0], it[1]);
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let t = now();
    use StockState::*;
    let mut first = movement(a, 10, supplier, None, b1, Some(Available), Reason::Received, t);
    first.note = Some("first delivery".into());
    first.reference = None;
    first.request_id = None;
    let mut written = vec![first];
    written.push(movement(b, 10, supplier, None, b3, Some(Available), Reason::Received, t));
    for i in 0..5 {
        written.push(movement(a, 1, b1, Some(Available), b2, Some(Available), Reason::Move, t + Duration::seconds(i)));
    }
    written.push(movement(b, 2, b3, Some(Available), b3, Some(Damaged), Reason::Damaged, t));
    let mut ids = Vec::new();
    for chunk in written.chunks(3) {
        ids.extend(book(store, chunk.to_vec()).await.unwrap());
    }

    let all = all_movements(store).await;
    assert_eq!(all.len(), written.len());
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    for (rec, m) in all.iter().zip(&written) {
        assert_eq!(&rec.movement, m, "every field round-trips");
    }
    assert_eq!((all[0].sku.as_str(), all[0].from_path.as_str(), all[0].to_path.as_str()), ("A", "SUPPLIER", "WH1/A/1"));
    assert_eq!((all[7].sku.as_str(), all[7].from_path.as_str(), all[7].to_path.as_str()), ("B", "WH2/1", "WH2/1"));

    let list = |f: MovementFilter| async move {
        store.movements(&f, None, 100).await.unwrap().into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    let pick = |idx: &[usize]| idx.iter().map(|i| ids[*i]).collect::<Vec<_>>();
    assert_eq!(list(MovementFilter { item_id: Some(b), ..Default::default() }).await, pick(&[1, 7]));
    assert_eq!(list(MovementFilter { reason: Some(Reason::Received), ..Default::default() }).await, pick(&[0, 1]));
    assert_eq!(list(MovementFilter { within: Some("WH2".into()), ..Default::default() }).await, pick(&[1, 7]));
    assert_eq!(
        list(MovementFilter { within: Some("WH1/A/2".into()), ..Default::default() }).await,
        pick(&[2, 3, 4, 5, 6]),
        "into"
    );
    assert_eq!(
        list(MovementFilter { within: Some("WH1/A/1".into()), ..Default::default() }).await,
        pick(&[0, 2, 3, 4, 5, 6]),
        "out of"
    );
    assert_eq!(list(MovementFilter { within: Some("SUPPLIER".into()), ..Default::default() }).await, pick(&[0, 1]));
    assert!(
        list(MovementFilter { within: Some("WH".into()), ..Default::default() }).await.is_empty(),
        "WH is not WH1's parent"
    );
    assert_eq!(
        list(MovementFilter {
            item_id: Some(a),
            reason: Some(Reason::Move),
            within: Some("WH1".into()),
            ..Default::default()
        })
        .await,
        pick(&[2, 3, 4, 5, 6])
    );
    // The moves are one second apart from t: [t+1s, t+3s) holds the second and third, the bounds are exact.
    let range = MovementFilter {
        reason: Some(Reason::Move),
        from: Some(t + Duration::seconds(1)),
        to: Some(t + Duration::seconds(3)),
        ..Default::default()
    };
    assert_eq!(list(range).await, pick(&[3, 4]), "from is inclusive, to exclusive");
    assert_eq!(list(MovementFilter { from: Some(t + Duration::seconds(4)), ..Default::default() }).await, pick(&[6]));
    assert_eq!(list(MovementFilter { to: Some(t), ..Default::default() }).await, pick(&[]));

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store.movements(&MovementFilter::default(), after, 3).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().map(|m| m.id);
        paged.extend(page.into_iter().map(|m| m.id));
    }
    assert_eq!(paged, ids, "pages join up in id order without gaps or repeats");
    let filtered =
        store.movements(&MovementFilter { item_id: Some(a), ..Default::default() }, Some(ids[3]), 2).await.unwrap();
    assert_eq!(filtered.iter().map(|m| m.id).collect::<Vec<_>>(), pick(&[4, 5]));
}

/// Nothing a store offers rewrites history: failed batches, refused deletes and corrections leave every recorded
/// movement exactly as it was, and a correction is a new movement with a later id. (The triggers that forbid
/// UPDATE and DELETE on the ledger table are tested by each backend, as the traits offer no way to try them.)
pub async fn ledger_is_immutable(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, _, _] = bins(store).await;
    let a = items(store, "tee", &["A"]).await[0];
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let t = now();
    use StockState::*;
    book(store, vec![movement(a, 10, supplier, None, b1, Some(Available), Reason::Received, t)]).await.unwrap();
    let history = all_movements(store).await;

    let product = store.get_product_by_handle("tee").await.unwrap().unwrap();
    assert!(store.delete_product(product.id).await.is_err());
    assert!(store.delete_variant(product.variants[0].id).await.is_err());
    assert!(store.delete_location(b1).await.is_err());
    assert!(book(store, vec![movement(a, 11, b1, Some(Available), supplier, None, Reason::Correction, t)])
        .await
        .is_err());
    assert_eq!(all_movements(store).await, history);

    // A correction reverses the receipt with a new entry; the original stays.
    let correction =
        book(store, vec![movement(a, 10, b1, Some(Available), supplier, None, Reason::Correction, t)]).await.unwrap();
    let after = all_movements(store).await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], history[0]);
    assert!(correction[0] > history[0].id);

    // Renaming the SKU does not rewrite history either: the movement keeps its item and reads the new name.
    let mut v = product.variants[0].fields.clone();
    v.sku = "A-NEW".into();
    store.update_variant(product.variants[0].id, &v, t).await.unwrap();
    let renamed = all_movements(store).await;
    assert_eq!(renamed[0].movement, history[0].movement);
    assert_eq!(renamed[0].sku, "A-NEW");
}

// ---------------------------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------------------------

/// New, in progress, completed (replayed), mismatched, aborted, scoped, and forgotten after a day.
pub async fn idempotency_states(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t = now();
    assert_eq!(store.begin_request("key-1", "k", "hash-a", t).await.unwrap(), IdempotencyState::New);
    assert_eq!(store.begin_request("key-1", "k", "hash-a", t).await.unwrap(), IdempotencyState::InProgress);
    assert_eq!(store.begin_request("key-1", "k", "hash-b", t).await.unwrap(), IdempotencyState::Mismatch);
    assert_eq!(
        store.begin_request("key-2", "k", "hash-b", t).await.unwrap(),
        IdempotencyState::New,
        "keys are per scope"
    );

    let body = b"{\"id\":1,\"bytes\":\"\xff\"}".to_vec();
    store.complete_request("key-1", "k", 201, &body, "application/json").await.unwrap();
    assert_eq!(
        store.begin_request("key-1", "k", "hash-a", t).await.unwrap(),
        IdempotencyState::Completed { status: 201, body: body.clone(), content_type: "application/json".into() }
    );
    assert_eq!(store.begin_request("key-1", "k", "hash-b", t).await.unwrap(), IdempotencyState::Mismatch);
    assert!(
        store.complete_request("key-1", "unknown", 200, b"", "text/plain").await.is_err(),
        "completing an unclaimed key fails"
    );

    // Abort frees the key for a fresh attempt; aborting twice is harmless.
    store.abort_request("key-2", "k").await.unwrap();
    store.abort_request("key-2", "k").await.unwrap();
    assert_eq!(store.begin_request("key-2", "k", "hash-c", t).await.unwrap(), IdempotencyState::New);

    // After a day a key is forgotten.
    let later = t + Duration::hours(25);
    assert_eq!(store.begin_request("key-1", "k", "hash-b", later).await.unwrap(), IdempotencyState::New);
    assert_eq!(store.begin_request("key-2", "k", "hash-x", later).await.unwrap(), IdempotencyState::New);
}

// ---------------------------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------------------------

/// A product import creates or updates by handle, and variants by SKU within their product, all or nothing.
pub async fn import_products_upsert(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t = now();
    let first =
        vec![(product("tee"), vec![variant("TEE-1"), variant("TEE-2")]), (product("cap"), vec![variant("CAP-1")])];
    let summary = store.import_products(&first, t).await.unwrap();
    assert_eq!(
        summary,
        app::store::ImportSummary {
            products_created: 2,
            products_updated: 0,
            variants_created: 3,
            variants_updated: 0
        }
    );
    let tee = store.get_product_by_handle("tee").await.unwrap().unwrap();
    assert_eq!(tee.fields, product("tee"));
    assert_eq!(tee.variants.iter().map(|v| v.fields.clone()).collect::<Vec<_>>(), [variant("TEE-1"), variant("TEE-2")]);

    let t1 = t + Duration::seconds(10);
    let mut tee2 = product("tee");
    tee2.title = "Tee, improved".into();
    let mut v2 = variant("TEE-2");
    v2.price = Decimal::new(999, 2);
    let second = vec![(tee2.clone(), vec![v2.clone(), variant("TEE-3")]), (product("sock"), vec![variant("SOCK-1")])];
    let summary = store.import_products(&second, t1).await.unwrap();
    assert_eq!(
        summary,
        app::store::ImportSummary {
            products_created: 1,
            products_updated: 1,
            variants_created: 2,
            variants_updated: 1
        }
    );
    let tee_after = store.get_product_by_handle("tee").await.unwrap().unwrap();
    assert_eq!(tee_after.id, tee.id, "updated in place");
    assert_eq!((tee_after.fields.clone(), tee_after.created_at, tee_after.updated_at), (tee2, t, t1));
    let by_sku: HashMap<&str, &app::store::VariantRecord> =
        tee_after.variants.iter().map(|v| (v.fields.sku.as_str(), v)).collect();
    assert_eq!(by_sku.len(), 3, "variants not in the file stay");
    assert_eq!(by_sku["TEE-2"].fields, v2);
    assert_eq!(by_sku["TEE-2"].item_id, tee.variants[1].item_id, "an updated variant keeps its item");
    assert_eq!(by_sku["TEE-1"].fields, variant("TEE-1"));
    assert_eq!(tee_after.variants.last().map(|v| v.fields.sku.as_str()), Some("TEE-3"), "new variants go last");

    // A SKU of another product clashes, and nothing of that import is written.
    let bad = vec![(product("new-one"), vec![variant("NEW-1")]), (product("tee"), vec![variant("CAP-1")])];
    assert!(conflict(store.import_products(&bad, t1).await).contains("sku"));
    assert_eq!(store.get_product_by_handle("new-one").await.unwrap(), None, "the import was all or nothing");
    assert!(store.resolve_skus(&["NEW-1".into()]).await.unwrap().is_empty());
    assert_eq!(store.list_products(&ProductFilter::default(), None, 100).await.unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------------------------
// Verification and delete guards
// ---------------------------------------------------------------------------------------------------------------

/// The stored balances always equal the ledger folded, zero rows included.
pub async fn balances_and_ledger_agree(store: Arc<dyn Store>) {
    let (stored, folded) = store.balances_and_ledger().await.unwrap();
    assert!(stored.is_empty() && folded.is_empty(), "a new store has neither balances nor movements");

    let s = store.as_ref();
    let [b1, b2, b3] = bins(s).await;
    let it = items(s, "tee", &["A", "B"]).await;
    let supplier = virtual_id(s, VirtualKind::Supplier).await;
    let customer = virtual_id(s, VirtualKind::Customer).await;
    let t = now();
    use StockState::*;
    book(
        s,
        vec![
            movement(it[0], 9, supplier, None, b1, Some(Available), Reason::Received, t),
            movement(it[1], 4, supplier, None, b3, Some(Incoming), Reason::Received, t),
        ],
    )
    .await
    .unwrap();
    book(s, vec![movement(it[0], 9, b1, Some(Available), b2, Some(Committed), Reason::Move, t)]).await.unwrap();
    book(s, vec![movement(it[0], 2, b2, Some(Committed), customer, None, Reason::Other, t)]).await.unwrap();

    let (stored, folded) = store.balances_and_ledger().await.unwrap();
    let stored = by_name(&stored);
    assert_eq!(stored, by_name(&folded));
    assert_eq!(stored.get(&key("A", "WH1/A/1")), Some(&Balance::default()), "a balance emptied stays as a zero row");
    assert_eq!(stored.get(&key("A", "WH1/A/2")), Some(&balance(&[(Committed, 7)])));
    assert_eq!(stored.get(&key("B", "WH2/1")), Some(&balance(&[(Incoming, 4)])));
    assert_eq!(stored.len(), 3);

    // Through the app's verify, too.
    let app = App::start(store.clone(), LedgerConfig::default()).await.unwrap();
    assert!(app.verify().await.unwrap().is_empty());
}

/// Products, variants and locations with ledger history cannot be deleted; others can.
pub async fn delete_guards(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, b2, _] = bins(store).await;
    let it = items(store, "tee", &["A", "B"]).await;
    let free = items(store, "cap", &["C"]).await;
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let t = now();
    book(store, vec![movement(it[0], 1, supplier, None, b1, Some(StockState::Available), Reason::Received, t)])
        .await
        .unwrap();
    // Booked and booked back out: the balance is zero, but the history remains.
    book(store, vec![movement(it[0], 1, b1, Some(StockState::Available), supplier, None, Reason::Correction, t)])
        .await
        .unwrap();

    let tee = store.get_product_by_handle("tee").await.unwrap().unwrap();
    assert!(conflict(store.delete_product(tee.id).await).contains("movements"));
    assert!(conflict(store.delete_variant(tee.variants[0].id).await).contains("movements"));
    assert_eq!(store.get_product(tee.id).await.unwrap(), Some(tee.clone()), "the refused delete changed nothing");
    // B has no history of its own and can go; the product cannot while A has history.
    store.delete_variant(tee.variants[1].id).await.unwrap();
    let cap = store.get_product_by_handle("cap").await.unwrap().unwrap();
    store.delete_product(cap.id).await.unwrap();
    assert!(store.resolve_skus(&["C".into()]).await.unwrap().is_empty());
    assert_eq!(free.len(), 1);

    let zone = store.get_location("WH1/A").await.unwrap().unwrap();
    let constraint = conflict(store.delete_location(b1).await);
    assert!(constraint.contains("movements") || constraint.contains("stock"), "{constraint}");
    assert!(conflict(store.delete_location(zone.id).await).contains("parent"));
    store.delete_location(b2).await.expect("a bin without history can be deleted");
    assert!(store.get_location("WH1/A/1").await.unwrap().is_some());
}

// ---------------------------------------------------------------------------------------------------------------
// The real write path
// ---------------------------------------------------------------------------------------------------------------

fn adjust_line(sku: &str, location: &str, delta: i64, reason: Reason) -> AdjustmentLine {
    AdjustmentLine {
        sku: sku.into(),
        location: location.into(),
        state: None,
        delta: Some(delta),
        set: None,
        expected_on_hand: None,
        reason,
        note: None,
    }
}

/// Adjustments and moves through `App`, as the API runs them: receipts, refusals, and the resulting levels.
pub async fn write_path_through_the_app(store: Arc<dyn Store>) {
    let s = store.as_ref();
    bins(s).await;
    items(s, "tee", &["A"]).await;
    let app = App::start(store.clone(), LedgerConfig::default()).await.unwrap();
    let actor = Actor { name: "alice".into(), request_id: Some("req-42".into()) };

    let receipt = app
        .adjust(
            AdjustmentRequest {
                lines: vec![adjust_line("A", "WH1/A/1", 10, Reason::Received)],
                reference: Some("PO-1".into()),
            },
            actor.clone(),
        )
        .await
        .unwrap();
    assert_eq!(receipt.movements.len(), 1);
    let m = &receipt.movements[0];
    assert_eq!(
        (m.sku.as_str(), m.quantity, m.from.location.as_str(), m.to.location.as_str()),
        ("A", 10, "SUPPLIER", "WH1/A/1")
    );
    assert_eq!(
        (m.actor.as_str(), m.request_id.as_deref(), m.reference.as_deref()),
        ("alice", Some("req-42"), Some("PO-1"))
    );
    assert_eq!(receipt.levels.len(), 1);
    assert_eq!((receipt.levels[0].quantities.available, receipt.levels[0].quantities.on_hand), (10, 10));

    let moved = app
        .move_stock(
            MoveRequest {
                lines: vec![MoveLineRequest {
                    sku: "A".into(),
                    quantity: 4,
                    from_location: "WH1/A/1".into(),
                    to_location: Some("WH2/1".into()),
                    from_state: None,
                    to_state: Some(StockState::QualityControl),
                    reason: None,
                    note: Some("inspect".into()),
                }],
                reference: None,
            },
            actor.clone(),
        )
        .await
        .unwrap();
    assert!(moved.movements[0].id > m.id, "the ledger's ids grow");

    // Too much: refused by the domain, nothing written.
    let err = app
        .adjust(
            AdjustmentRequest { lines: vec![adjust_line("A", "WH1/A/1", -7, Reason::Shrinkage)], reference: None },
            actor.clone(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::InsufficientStock { .. }), "{err:?}");

    let levels = by_name(&all_levels(s).await);
    assert_eq!(
        levels,
        BTreeMap::from([
            (key("A", "WH1/A/1"), balance(&[(StockState::Available, 6)])),
            (key("A", "WH2/1"), balance(&[(StockState::QualityControl, 4)])),
        ])
    );
    assert_eq!(all_movements(s).await.len(), 2);
    assert!(app.verify().await.unwrap().is_empty());
}

/// Many commands at once go through group commit: each keeps its own result and none is lost.
pub async fn concurrent_commands_through_the_app(store: Arc<dyn Store>) {
    bins(store.as_ref()).await;
    items(store.as_ref(), "tee", &["A", "B"]).await;
    let app = App::start(store.clone(), LedgerConfig { max_batch: 8, queue_capacity: 64, ..Default::default() })
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let sku = if i % 2 == 0 { "A" } else { "B" };
            app.adjust(
                AdjustmentRequest { lines: vec![adjust_line(sku, "WH1/A/1", 1, Reason::Received)], reference: None },
                Actor::new(format!("worker-{i}")),
            )
            .await
        }));
    }
    // Interleave some that must fail: more than is there.
    let failing = app
        .adjust(
            AdjustmentRequest { lines: vec![adjust_line("A", "WH1/A/2", -1, Reason::Shrinkage)], reference: None },
            Actor::new("x"),
        )
        .await;
    assert!(matches!(failing, Err(AppError::InsufficientStock { .. })));
    let mut ids = Vec::new();
    for task in tasks {
        let receipt = task.await.expect("task").expect("adjust");
        ids.push(receipt.movements[0].id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every command got its own movement id");

    let levels = by_name(&all_levels(store.as_ref()).await);
    assert_eq!(levels[&key("A", "WH1/A/1")].available, 20);
    assert_eq!(levels[&key("B", "WH1/A/1")].available, 20);
    assert_eq!(all_movements(store.as_ref()).await.len(), 40);
    assert!(app.verify().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Customers, orders and holds
// ---------------------------------------------------------------------------------------------------------------

fn customer(name: &str, email: Option<&str>, phone: Option<&str>) -> CustomerFields {
    CustomerFields { name: name.into(), email: email.map(Into::into), phone: phone.map(Into::into), addresses: vec![] }
}

fn address(city: &str) -> Address {
    Address {
        line1: "1 Main Street".into(),
        line2: Some("Unit 2".into()),
        city: city.into(),
        postal_code: "9000".into(),
        region: None,
        country: "BE".into(),
    }
}

/// A tracked line at 19.90 with 3.80 tax; what stock does not cover is backordered.
fn new_line(sku: &str, item: ItemId, quantity: i64) -> NewLine {
    NewLine {
        sku: sku.into(),
        item,
        quantity,
        unit_price: Decimal::new(1990, 2),
        discount: Decimal::new(100, 2),
        tax: Decimal::new(380, 2),
        policy: InventoryPolicy::Backorder,
        tracked: true,
        bundle: None,
    }
}

/// The stock of one bin of one warehouse: `available` units of each item listed there, none of the others.
fn one_bin(lines: &[NewLine], warehouse: LocationId, bin: LocationId, available: &[(ItemId, i64)]) -> StockMap {
    lines
        .iter()
        .map(|l| {
            let units = available.iter().find(|(item, _)| *item == l.item).map_or(0, |(_, n)| *n);
            let bins = vec![BinStock { bin, pick_sequence: None, available: units }];
            (l.item, vec![WarehouseStock { warehouse, bins }])
        })
        .collect()
}

type StockMap = HashMap<ItemId, Vec<WarehouseStock>>;

/// An order of `lines` placed by the domain against one bin; what the bin lacks is backordered.
fn place(lines: Vec<NewLine>, warehouse: LocationId, bin: LocationId, available: &[(ItemId, i64)]) -> Order {
    let stock = one_bin(&lines, warehouse, bin, available);
    Order::place(lines, &stock).expect("placing the order").0
}

fn order_record(
    source: &str,
    external_number: Option<&str>,
    customer_id: Option<CustomerId>,
    order: Order,
    placed_at: DateTime<Utc>,
) -> OrderRecord {
    OrderRecord {
        id: 0,
        source: source.into(),
        external_number: external_number.map(Into::into),
        request_hash: format!("hash of {source} {external_number:?}"),
        customer_id,
        currency: "EUR".into(),
        payment_terms: PaymentTerms::Invoice,
        notes: Some("Leave at the door, 'please'.".into()),
        order,
        placed_at,
        updated_at: placed_at,
    }
}

/// A hold of 2 units of `item` in `bin`.
fn hold_record(
    status: HoldStatus,
    expires_at: DateTime<Utc>,
    item: ItemId,
    (warehouse, bin): (LocationId, LocationId),
    created_at: DateTime<Utc>,
) -> HoldRecord {
    let line = LineAllocation {
        line: 0,
        item,
        picks: vec![Pick { warehouse, bin, quantity: 2 }],
        backordered: 0,
        oversold: 0,
    };
    HoldRecord {
        id: 0,
        hold: Hold { expires_at, status, lines: vec![line] },
        skus: vec!["A".into()],
        quantities: vec![2],
        reference: Some("cart-7".into()),
        order_id: None,
        created_at,
        updated_at: created_at,
    }
}

/// One batch that only inserts orders and holds.
async fn insert(store: &dyn Store, orders: Vec<OrderRecord>, holds: Vec<HoldRecord>) -> StoreResult<BatchIds> {
    let mut decide =
        |_: &mut BatchState| BatchWrites { new_orders: orders.clone(), new_holds: holds.clone(), ..Default::default() };
    store.apply_batch(&BatchScope::default(), &mut decide).await
}

async fn order_ids(store: &dyn Store, filter: OrderFilter, after: Option<OrderId>, limit: u32) -> Vec<OrderId> {
    store.list_orders(&filter, after, limit).await.expect("list orders").iter().map(|o| o.id).collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

async fn due_ids(store: &dyn Store, at: DateTime<Utc>) -> Vec<HoldId> {
    sorted(store.due_holds(at).await.expect("due holds").iter().map(|h| h.id).collect())
}

/// Customers are created, read, changed, found by email or else phone, and searched; email and phone are unique.
pub async fn customers_crud(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t0 = now();
    let mut ann = customer("Ann Smith", Some("ann@example.com"), Some("+3212345678"));
    ann.addresses = vec![address("Ghent"), address("Bruges")];
    let rec = store.create_customer(&ann, t0).await.unwrap();
    assert_eq!((&rec.fields, rec.created_at, rec.updated_at), (&ann, t0, t0), "every field round-trips");
    assert_eq!(store.get_customer(rec.id).await.unwrap().as_ref(), Some(&rec));
    assert_eq!(store.get_customer(rec.id + 1000).await.unwrap(), None);

    // Email and phone are each unique, and the clash names which; customers without them never clash.
    let same_email = customer("Other", Some("ann@example.com"), None);
    assert_eq!(conflict(store.create_customer(&same_email, t0).await), "customers.email");
    let same_phone = customer("Other", None, Some("+3212345678"));
    assert_eq!(conflict(store.create_customer(&same_phone, t0).await), "customers.phone");
    let bob = store.create_customer(&customer("Bob Jones", None, None), t0).await.unwrap();
    let carl = store.create_customer(&customer("Carl", Some("carl@shop.example"), None), t0).await.unwrap();
    let dora = store.create_customer(&customer("Dora", None, Some("+3298765")), t0).await.unwrap();
    store.create_customer(&customer("Eve", None, None), t0).await.expect("no email and no phone never clash");

    // Update.
    let t1 = t0 + Duration::seconds(5);
    let mut robert = customer("Robert Jones", Some("bob@example.com"), Some("+3255555"));
    let updated = store.update_customer(bob.id, &robert, t1).await.unwrap();
    assert_eq!((&updated.fields, updated.created_at, updated.updated_at), (&robert, t0, t1));
    assert_eq!(store.get_customer(bob.id).await.unwrap().as_ref(), Some(&updated));
    not_found(store.update_customer(bob.id + 1000, &robert, t1).await);
    robert.phone = Some("+3298765".into());
    assert_eq!(conflict(store.update_customer(bob.id, &robert, t1).await), "customers.phone");
    assert_eq!(
        store.get_customer(bob.id).await.unwrap().as_ref(),
        Some(&updated),
        "the refused update changed nothing"
    );

    // Find by email, else by phone.
    let find = |email: Option<&'static str>, phone: Option<&'static str>| async move {
        store.find_customer(email, phone).await.expect("find customer").map(|c| c.id)
    };
    assert_eq!(find(Some("ann@example.com"), None).await, Some(rec.id));
    assert_eq!(find(None, Some("+3298765")).await, Some(dora.id));
    assert_eq!(find(Some("carl@shop.example"), Some("+3298765")).await, Some(carl.id), "the email wins");
    assert_eq!(find(Some("nobody@example.com"), Some("+3298765")).await, Some(dora.id), "else the phone");
    assert_eq!(find(Some("nobody@example.com"), None).await, None);
    assert_eq!(find(None, None).await, None);

    // Search: a substring of the name or email in any case, or a prefix of the phone; pages by id.
    let list = |q: Option<&'static str>, after: Option<i64>, limit: u32| async move {
        let found = store.list_customers(q, after, limit).await.expect("list customers");
        found.into_iter().map(|c: CustomerRecord| c.fields.name).collect::<Vec<_>>()
    };
    assert_eq!(list(None, None, 100).await, ["Ann Smith", "Robert Jones", "Carl", "Dora", "Eve"]);
    assert_eq!(list(Some("JONES"), None, 100).await, ["Robert Jones"]);
    assert_eq!(list(Some("Example"), None, 100).await, ["Ann Smith", "Robert Jones", "Carl"]);
    assert_eq!(list(Some("+329"), None, 100).await, ["Dora"]);
    assert_eq!(list(Some("+32"), None, 100).await, ["Ann Smith", "Robert Jones", "Dora"]);
    assert!(list(Some("98765"), None, 100).await.is_empty(), "a phone matches by prefix only");
    assert!(list(Some("%"), None, 100).await.is_empty(), "search text is literal, not a pattern");
    assert_eq!(list(None, None, 2).await, ["Ann Smith", "Robert Jones"]);
    assert_eq!(list(None, Some(bob.id), 2).await, ["Carl", "Dora"]);
    assert_eq!(list(Some("a"), Some(carl.id), 10).await, ["Dora"]);
}

/// One batch commits stock, places an order and a hold; both read back exactly, and a later batch that loads them
/// by id writes its changes back.
pub async fn orders_and_holds_through_apply_batch(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let [b1, _, _] = bins(s).await;
    let wh1 = s.get_location("WH1").await.unwrap().expect("WH1").id;
    let it = items(s, "tee", &["A", "B"]).await;
    let (a, b) = (it[0], it[1]);
    let supplier = virtual_id(s, VirtualKind::Supplier).await;
    let t = now();
    use StockState::*;
    book(s, vec![movement(a, 5, supplier, None, b1, Some(Available), Reason::Received, t)]).await.unwrap();
    let ann = s.create_customer(&customer("Ann", Some("ann@example.com"), None), t).await.unwrap();

    // 3 A from the bin, 2 B backordered; and a hold on 2 more A.
    let order = place(vec![new_line("A", a, 3), new_line("B", b, 2)], wh1, b1, &[(a, 5)]);
    assert_eq!((order.lines[0].committed(), order.lines[1].backordered), (3, 2));
    let new_order = order_record("shop", Some("1001"), Some(ann.id), order, t);
    let new_hold = hold_record(HoldStatus::Active, t + Duration::minutes(15), a, (wh1, b1), t);
    let mut decide = |state: &mut BatchState| {
        let bal = state.balances.entry((a, b1)).or_default();
        bal.add(Available, -5);
        bal.add(Committed, 3);
        bal.add(Reserved, 2);
        BatchWrites {
            movements: vec![
                movement(a, 3, b1, Some(Available), b1, Some(Committed), Reason::Order, state.now),
                movement(a, 2, b1, Some(Available), b1, Some(Reserved), Reason::Hold, state.now),
            ],
            events: vec![OutboxEvent { topic: "order.created".into(), payload: serde_json::json!({}) }],
            new_orders: vec![new_order.clone()],
            new_holds: vec![new_hold.clone()],
            ..Default::default()
        }
    };
    let ids = s.apply_batch(&BatchScope { items: vec![a, b], ..Default::default() }, &mut decide).await.unwrap();
    assert_eq!((ids.movements.len(), ids.orders.len(), ids.holds.len()), (2, 1, 1));
    let (order_id, hold_id) = (ids.orders[0], ids.holds[0]);

    let stored = s.get_order(order_id).await.unwrap().expect("the order was written");
    assert_eq!(stored, OrderRecord { id: order_id, ..new_order.clone() }, "every field round-trips, the document too");
    assert_eq!(s.find_order("shop", "1001").await.unwrap().as_ref(), Some(&stored));
    assert_eq!(s.find_order("web", "1001").await.unwrap(), None, "numbers are per source");
    assert_eq!(s.find_order("shop", "1002").await.unwrap(), None);
    assert_eq!(s.get_order(order_id + 1000).await.unwrap(), None);
    let hold = s.get_hold(hold_id).await.unwrap().expect("the hold was written");
    assert_eq!(hold, HoldRecord { id: hold_id, ..new_hold.clone() });
    assert_eq!(s.get_hold(hold_id + 1000).await.unwrap(), None);
    assert_eq!(
        by_name(&all_levels(s).await),
        BTreeMap::from([(key("A", "WH1/A/1"), balance(&[(Committed, 3), (Reserved, 2)]))]),
        "the stock was promised in the same batch"
    );

    // A second order, by phone, without a number or a customer, then cancelled: it owes nothing.
    let mut phone = place(vec![new_line("B", b, 1)], wh1, b1, &[]);
    assert_eq!(phone.lines[0].backordered, 1);
    assert!(phone.cancel_all().unwrap().is_none(), "only owed units, nothing to release");
    let phone_id = insert(s, vec![order_record("phone", None, None, phone, t)], vec![]).await.unwrap().orders[0];
    assert!(phone_id > order_id);

    let all = || OrderFilter::default();
    assert_eq!(order_ids(s, all(), None, 100).await, [order_id, phone_id]);
    assert_eq!(order_ids(s, OrderFilter { source: Some("shop".into()), ..all() }, None, 100).await, [order_id]);
    assert_eq!(order_ids(s, OrderFilter { source: Some("phone".into()), ..all() }, None, 100).await, [phone_id]);
    assert_eq!(order_ids(s, OrderFilter { customer_id: Some(ann.id), ..all() }, None, 100).await, [order_id]);
    assert_eq!(order_ids(s, OrderFilter { status: Some(OrderStatus::Open), ..all() }, None, 100).await, [order_id]);
    let cancelled = OrderFilter { status: Some(OrderStatus::Cancelled), ..all() };
    assert_eq!(order_ids(s, cancelled, None, 100).await, [phone_id]);
    assert_eq!(order_ids(s, OrderFilter { backordered: true, ..all() }, None, 100).await, [order_id]);
    let both = OrderFilter { backordered: true, source: Some("phone".into()), ..all() };
    assert!(order_ids(s, both, None, 100).await.is_empty(), "filters combine");
    assert_eq!(order_ids(s, all(), None, 1).await, [order_id]);
    assert_eq!(order_ids(s, all(), Some(order_id), 100).await, [phone_id]);
    let newest = || OrderFilter { newest_first: true, ..all() };
    assert_eq!(order_ids(s, newest(), None, 100).await, [phone_id, order_id]);
    assert_eq!(order_ids(s, newest(), None, 1).await, [phone_id]);
    assert_eq!(order_ids(s, newest(), Some(phone_id), 100).await, [order_id], "the cursor pages towards older");
    assert_eq!(order_ids(s, OrderFilter { source: Some("shop".into()), ..newest() }, None, 100).await, [order_id]);

    // A batch loads its orders and holds by id, and writes back the ones it names as changed.
    let t1 = t + Duration::seconds(30);
    let mut decide = |state: &mut BatchState| {
        assert_eq!(state.orders.keys().copied().collect::<Vec<_>>(), [order_id]);
        assert_eq!(state.holds.keys().copied().collect::<Vec<_>>(), [hold_id]);
        assert!(state.backorder_queue.is_empty(), "no item in scope, no queue");
        let order = state.orders.get_mut(&order_id).expect("the scope's order");
        order.notes = None;
        order.updated_at = t1;
        let hold = state.holds.get_mut(&hold_id).expect("the scope's hold");
        hold.hold.status = HoldStatus::Converted;
        hold.order_id = Some(order_id);
        hold.updated_at = t1;
        BatchWrites { changed_orders: vec![order_id], changed_holds: vec![hold_id], ..Default::default() }
    };
    let scope = BatchScope { orders: vec![order_id], holds: vec![hold_id], ..Default::default() };
    assert_eq!(s.apply_batch(&scope, &mut decide).await.unwrap(), BatchIds::default());
    let order = s.get_order(order_id).await.unwrap().unwrap();
    assert_eq!((order.notes.as_deref(), order.updated_at, order.placed_at), (None, t1, t));
    let hold = s.get_hold(hold_id).await.unwrap().unwrap();
    assert_eq!(
        (hold.hold.status, hold.order_id, hold.updated_at, hold.created_at),
        (HoldStatus::Converted, Some(order_id), t1, t)
    );

    let (stored, folded) = s.balances_and_ledger().await.unwrap();
    assert_eq!(by_name(&stored), by_name(&folded));
}

/// A batch over an item sees the orders that owe units of it, oldest placement first; an order leaves the queue
/// once its demand is filled and it is written back.
pub async fn backorder_queue_oldest_first(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let [b1, _, _] = bins(s).await;
    let wh1 = s.get_location("WH1").await.unwrap().expect("WH1").id;
    let it = items(s, "tee", &["A", "B"]).await;
    let (a, b) = (it[0], it[1]);
    let supplier = virtual_id(s, VirtualKind::Supplier).await;
    let t = now();

    // Inserted newest first, so that the queue can only be right by placement time, not by id.
    let newer = order_record("shop", Some("2"), None, place(vec![new_line("A", a, 4)], wh1, b1, &[]), t);
    let older_order = place(vec![new_line("A", a, 1), new_line("B", b, 1)], wh1, b1, &[]);
    let older = order_record("shop", Some("1"), None, older_order, t - Duration::hours(1));
    let only_b =
        order_record("shop", Some("3"), None, place(vec![new_line("B", b, 2)], wh1, b1, &[]), t - Duration::hours(2));
    let newer_id = insert(s, vec![newer.clone()], vec![]).await.unwrap().orders[0];
    let ids = insert(s, vec![older.clone(), only_b], vec![]).await.unwrap().orders;
    let (older_id, only_b_id) = (ids[0], ids[1]);
    assert!(newer_id < older_id && older_id < only_b_id, "ids follow insertion");

    let state = observe(s, BatchScope { items: vec![a], ..Default::default() }).await;
    assert_eq!(state.backorder_queue, [older_id, newer_id], "oldest placement first");
    assert_eq!(state.orders.keys().copied().collect::<Vec<_>>(), [newer_id, older_id], "the waiting orders are loaded");
    assert_eq!(state.orders[&older_id], OrderRecord { id: older_id, ..older.clone() });
    let state = observe(s, BatchScope { items: vec![a, b], ..Default::default() }).await;
    assert_eq!(
        state.backorder_queue,
        [only_b_id, older_id, newer_id],
        "each order once, though it waits for two items"
    );
    let state = observe(s, BatchScope { orders: vec![newer_id], ..Default::default() }).await;
    assert!(state.backorder_queue.is_empty());
    assert_eq!(state.orders.keys().copied().collect::<Vec<_>>(), [newer_id], "the scope's own orders are loaded");

    // Stock arrives and fills the queue in order: the older order's unit of A first, then 3 of the newer's 4.
    book(s, vec![movement(a, 4, supplier, None, b1, Some(StockState::Available), Reason::Received, t)]).await.unwrap();
    let fill = |state: &mut BatchState, name_them: bool| {
        let mut stock = vec![WarehouseStock {
            warehouse: wh1,
            bins: vec![BinStock {
                bin: b1,
                pick_sequence: None,
                available: state.balances.get(&(a, b1)).map_or(0, |bal| bal.available),
            }],
        }];
        let mut writes = BatchWrites::default();
        for id in state.backorder_queue.clone() {
            let rec = state.orders.get_mut(&id).expect("queued orders are loaded");
            for m in rec.order.fill(a, &mut stock) {
                let bal = state.balances.entry((m.item, m.from_location)).or_default();
                bal.add(m.from_state, -m.quantity);
                bal.add(m.to_state, m.quantity);
                writes.movements.push(movement(
                    m.item,
                    m.quantity,
                    m.from_location,
                    Some(m.from_state),
                    m.to_location,
                    Some(m.to_state),
                    Reason::Order,
                    state.now,
                ));
                rec.updated_at = state.now;
            }
            if name_them {
                writes.changed_orders.push(id);
            }
        }
        writes
    };
    let ids = s.apply_batch(&BatchScope { items: vec![a], ..Default::default() }, &mut |st| fill(st, true)).await;
    assert_eq!(ids.unwrap().movements.len(), 2);
    let older_now = s.get_order(older_id).await.unwrap().unwrap();
    assert_eq!((older_now.order.lines[0].backordered, older_now.order.lines[0].committed()), (0, 1));
    let state = observe(s, BatchScope { items: vec![a], ..Default::default() }).await;
    assert_eq!(state.backorder_queue, [newer_id], "the filled order left A's queue");
    let state = observe(s, BatchScope { items: vec![b], ..Default::default() }).await;
    assert_eq!(state.backorder_queue, [only_b_id, older_id], "but still waits for B");
    let backordered = OrderFilter { backordered: true, ..Default::default() };
    assert_eq!(order_ids(s, backordered.clone(), None, 100).await, [newer_id, older_id, only_b_id]);

    // The last unit of A: changed in the state without being named, which is written all the same.
    book(s, vec![movement(a, 1, supplier, None, b1, Some(StockState::Available), Reason::Received, t)]).await.unwrap();
    s.apply_batch(&BatchScope { items: vec![a], ..Default::default() }, &mut |st| fill(st, false)).await.unwrap();
    assert!(observe(s, BatchScope { items: vec![a], ..Default::default() }).await.backorder_queue.is_empty());
    assert_eq!(order_ids(s, backordered, None, 100).await, [older_id, only_b_id]);
    assert_eq!(s.get_order(newer_id).await.unwrap().unwrap().order.lines[0].committed(), 4);
    let (stored, folded) = s.balances_and_ledger().await.unwrap();
    assert_eq!(by_name(&stored), by_name(&folded));
}

/// A second order under a source's number fails its whole batch: no movement, balance, event, order or hold.
pub async fn external_number_uniqueness_fails_the_batch(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let [b1, _, _] = bins(s).await;
    let wh1 = s.get_location("WH1").await.unwrap().expect("WH1").id;
    let a = items(s, "tee", &["A"]).await[0];
    let supplier = virtual_id(s, VirtualKind::Supplier).await;
    let t = now();
    use StockState::*;
    book(s, vec![movement(a, 5, supplier, None, b1, Some(Available), Reason::Received, t)]).await.unwrap();
    let order = || place(vec![new_line("A", a, 1)], wh1, b1, &[(a, 5)]);
    insert(s, vec![order_record("shop", Some("1001"), None, order(), t)], vec![]).await.unwrap();
    let (levels, movements) = (all_levels(s).await, all_movements(s).await);
    let orders = s.list_orders(&OrderFilter::default(), None, 100).await.unwrap();

    // A batch learns which of its order numbers are taken, per source.
    let asked: Vec<(String, String)> = [("shop", "1001"), ("web", "1001"), ("shop", "1002"), ("shop", "1001")]
        .iter()
        .map(|(s, n)| (s.to_string(), n.to_string()))
        .collect();
    let seen = observe(s, BatchScope { order_numbers: asked, ..Default::default() }).await;
    let taken: Vec<&(String, String)> = seen.taken_numbers.iter().collect();
    assert_eq!(taken, [&("shop".to_string(), "1001".to_string())]);

    let mut decide = |state: &mut BatchState| {
        let bal = state.balances.entry((a, b1)).or_default();
        bal.add(Available, -2);
        bal.add(Reserved, 2);
        BatchWrites {
            movements: vec![movement(a, 2, b1, Some(Available), b1, Some(Reserved), Reason::Hold, state.now)],
            events: vec![OutboxEvent { topic: "hold.created".into(), payload: serde_json::json!({}) }],
            new_orders: vec![
                order_record("web", Some("1001"), None, order(), state.now),
                order_record("shop", Some("1001"), None, order(), state.now),
            ],
            new_holds: vec![hold_record(HoldStatus::Active, t - Duration::minutes(1), a, (wh1, b1), t)],
            ..Default::default()
        }
    };
    let result = s.apply_batch(&BatchScope { items: vec![a], ..Default::default() }, &mut decide).await;
    assert_eq!(conflict(result), "orders.external_number");
    assert_eq!(all_levels(s).await, levels, "no balance changed");
    assert_eq!(all_movements(s).await, movements, "no movement was written");
    assert_eq!(s.list_orders(&OrderFilter::default(), None, 100).await.unwrap(), orders, "no order was written");
    assert!(s.due_holds(t + Duration::days(1)).await.unwrap().is_empty(), "no hold was written");
    assert_eq!(s.find_order("web", "1001").await.unwrap(), None);

    // Another source may use the number, and orders without a number never clash.
    let ok = vec![
        order_record("web", Some("1001"), None, order(), t),
        order_record("phone", None, None, order(), t),
        order_record("phone", None, None, order(), t),
    ];
    assert_eq!(insert(s, ok, vec![]).await.unwrap().orders.len(), 3);
    assert_eq!(s.list_orders(&OrderFilter::default(), None, 100).await.unwrap().len(), 4);
}

/// Due holds are the active ones whose expiry has come (at or before the time asked); a batch can load them.
pub async fn due_holds_are_active_and_past_expiry(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let [b1, _, _] = bins(s).await;
    let wh1 = s.get_location("WH1").await.unwrap().expect("WH1").id;
    let a = items(s, "tee", &["A"]).await[0];
    let t = now();
    let past = t - Duration::minutes(1);
    let hold = |status, expires_at| hold_record(status, expires_at, a, (wh1, b1), t - Duration::hours(3));
    let ids = insert(
        s,
        vec![],
        vec![
            hold(HoldStatus::Active, past),
            hold(HoldStatus::Active, t + Duration::hours(1)),
            hold(HoldStatus::Released, past),
            hold(HoldStatus::Expired, past - Duration::hours(1)),
            hold(HoldStatus::Converted, past),
            hold(HoldStatus::Active, past - Duration::minutes(5)),
        ],
    )
    .await
    .unwrap()
    .holds;
    assert_eq!(ids.len(), 6);
    assert_eq!(due_ids(s, t).await, [ids[0], ids[5]]);
    assert_eq!(due_ids(s, past).await, [ids[0], ids[5]], "a hold is due at its expiry itself");
    assert_eq!(due_ids(s, past - Duration::microseconds(1)).await, [ids[5]]);
    assert_eq!(due_ids(s, t + Duration::hours(2)).await, [ids[0], ids[1], ids[5]]);
    assert!(due_ids(s, past - Duration::hours(1)).await.is_empty());
    let due = s.due_holds(t).await.unwrap();
    assert_eq!(due.iter().find(|h| h.id == ids[0]), Some(&HoldRecord { id: ids[0], ..hold(HoldStatus::Active, past) }));

    // A batch asked for due holds loads them beside its own; one not asked loads only its own.
    let state = observe(s, BatchScope { holds: vec![ids[2]], due_holds: true, ..Default::default() }).await;
    assert_eq!(state.holds.keys().copied().collect::<Vec<_>>(), sorted(vec![ids[0], ids[2], ids[5]]));
    assert_eq!(state.items, [a], "ending the due holds gives their units back: their items' balances are loaded");
    let state = observe(s, BatchScope { holds: vec![ids[0]], ..Default::default() }).await;
    assert_eq!(state.holds.keys().copied().collect::<Vec<_>>(), [ids[0]]);
    assert!(state.items.is_empty());

    // Expiring them in a batch, as the worker does, takes them off the list.
    let mut decide = |state: &mut BatchState| {
        let now = state.now;
        let mut writes = BatchWrites::default();
        for (id, h) in state.holds.iter_mut().filter(|(_, h)| h.hold.status == HoldStatus::Active) {
            h.hold.status = HoldStatus::Expired;
            h.updated_at = now;
            writes.changed_holds.push(*id);
        }
        writes
    };
    s.apply_batch(&BatchScope { due_holds: true, ..Default::default() }, &mut decide).await.unwrap();
    assert!(due_ids(s, t).await.is_empty());
    assert_eq!(due_ids(s, t + Duration::hours(2)).await, [ids[1]]);
    assert_eq!(s.get_hold(ids[0]).await.unwrap().unwrap().hold.status, HoldStatus::Expired);
}

/// Sellable bins are the bins marked sellable with no unsellable location above them, each with its warehouse.
pub async fn sellable_bins_skip_unsellable(store: Arc<dyn Store>) {
    let s = store.as_ref();
    assert!(s.sellable_bins().await.unwrap().is_empty(), "virtual locations are never sellable bins");
    let wh1 = location(s, None, "WH1", LocationKind::Warehouse).await;
    let zone = location(s, Some(&wh1), "A", LocationKind::Zone).await;
    let b1 = location(s, Some(&zone), "1", LocationKind::Bin).await;
    let b2 = location(s, Some(&zone), "2", LocationKind::Bin).await;
    let shelf = location(s, Some(&zone), "S", LocationKind::Shelf).await;
    let under_shelf = location(s, Some(&shelf), "3", LocationKind::Bin).await;
    // Its path starts like the unsellable shelf's, but it is not below it.
    let lookalike = location(s, Some(&zone), "SX", LocationKind::Bin).await;
    let wh2 = location(s, None, "WH2", LocationKind::Warehouse).await;
    let b4 = location(s, Some(&wh2), "1", LocationKind::Bin).await;
    let returns = location(s, Some(&wh2), "RET", LocationKind::Zone).await;
    location(s, Some(&returns), "1", LocationKind::Bin).await;
    let wh3 = location(s, None, "WH3", LocationKind::Warehouse).await;
    location(s, Some(&wh3), "1", LocationKind::Bin).await;

    let t = now();
    for l in [&b2, &shelf, &returns, &wh3] {
        let fields = LocationFields { sellable: false, ..l.fields.clone() };
        s.update_location(l.id, &fields, t).await.unwrap();
    }
    let fields = LocationFields { pick_sequence: Some(7), ..b4.fields.clone() };
    s.update_location(b4.id, &fields, t).await.unwrap();

    let mut got = s.sellable_bins().await.unwrap();
    got.sort_by_key(|b| b.bin);
    let bin = |bin: &LocationRecord, warehouse: &LocationRecord, pick_sequence| SellableBin {
        bin: bin.id,
        warehouse: warehouse.id,
        pick_sequence,
    };
    assert_eq!(got, [bin(&b1, &wh1, None), bin(&lookalike, &wh1, None), bin(&b4, &wh2, Some(7))]);
    assert!(!got.iter().any(|b| b.bin == under_shelf.id), "a sellable bin under an unsellable shelf is not sold from");
}

// ---------------------------------------------------------------------------------------------------------------
// Pick lists
// ---------------------------------------------------------------------------------------------------------------

/// One stop of a pick list, nothing picked yet.
fn pick_line(
    order_id: OrderId,
    line: usize,
    sku: &str,
    bin: &str,
    pick_sequence: Option<i64>,
    quantity: i64,
) -> PickListLine {
    PickListLine { order_id, line, sku: sku.into(), bin: bin.into(), pick_sequence, quantity, picked: 0 }
}

/// A pick list to create: no id, and a warehouse path the store must ignore (it reads the real one).
fn pick_list(
    warehouse_id: LocationId,
    status: PickListStatus,
    lines: Vec<PickListLine>,
    created_at: DateTime<Utc>,
) -> PickListRecord {
    PickListRecord {
        id: 0,
        warehouse_id,
        warehouse: "not read by the store".into(),
        status,
        lines,
        created_at,
        updated_at: created_at,
    }
}

/// `n` orders of two lines of `item`, placed (and backordered) in `warehouse`; returns their ids.
async fn some_orders(
    store: &dyn Store,
    n: usize,
    item: ItemId,
    warehouse: LocationId,
    bin: LocationId,
) -> Vec<OrderId> {
    let orders = (0..n)
        .map(|i| {
            let order = place(vec![new_line("A", item, 1), new_line("A", item, 2)], warehouse, bin, &[]);
            order_record("shop", Some(&format!("PL-{i}")), None, order, now())
        })
        .collect();
    let ids = insert(store, orders, vec![]).await.expect("inserting orders").orders;
    assert_eq!(ids.len(), n);
    ids
}

async fn pick_list_ids(
    store: &dyn Store,
    warehouse_id: Option<LocationId>,
    status: Option<PickListStatus>,
    after: Option<i64>,
    limit: u32,
) -> Vec<i64> {
    store
        .list_pick_lists(warehouse_id, status, after, limit)
        .await
        .expect("list pick lists")
        .iter()
        .map(|p| p.id)
        .collect()
}

/// A pick list is created (its id assigned, its warehouse's path read), read back, updated (status and lines, not
/// its warehouse or creation time), and listed by warehouse and status in id order with paging.
pub async fn pick_lists_round_trip(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let [b1, _, _] = bins(s).await;
    let wh1 = s.get_location("WH1").await.unwrap().expect("WH1").id;
    let wh2 = s.get_location("WH2").await.unwrap().expect("WH2").id;
    let a = items(s, "tee", &["A"]).await[0];
    let orders = some_orders(s, 2, a, wh1, b1).await;
    let (o1, o2) = (orders[0], orders[1]);
    let t = now();

    // Two orders, one of them with two stops, in walking order (a bin without a sequence last).
    let lines = vec![
        pick_line(o2, 0, "A", "WH1/A/1", Some(1), 1),
        pick_line(o1, 1, "A", "WH1/A/1", Some(1), 2),
        pick_line(o1, 0, "A", "WH1/A/2", None, 1),
    ];
    let new = PickListRecord { id: 4242, ..pick_list(wh1, PickListStatus::Open, lines.clone(), t) };
    let created = s.create_pick_list(&new).await.expect("create pick list");
    assert_ne!(created.id, 4242, "the given id is ignored");
    assert!(created.id > 0);
    let expected = PickListRecord { id: created.id, warehouse: "WH1".into(), ..new.clone() };
    assert_eq!(created, expected, "every field round-trips; the warehouse is its path");
    assert_eq!(s.get_pick_list(created.id).await.unwrap().as_ref(), Some(&expected));
    assert_eq!(s.get_pick_list(created.id + 1000).await.unwrap(), None);

    // The picker confirms the stops and the list is done: status, lines and update time are written.
    let t1 = t + Duration::minutes(5);
    let picked_lines: Vec<PickListLine> =
        lines.iter().map(|l| PickListLine { picked: l.quantity, ..l.clone() }).collect();
    let change = PickListRecord {
        status: PickListStatus::Picked,
        lines: picked_lines.clone(),
        updated_at: t1,
        warehouse: String::new(),
        ..created.clone()
    };
    let updated = s.update_pick_list(&change).await.expect("update pick list");
    let expected = PickListRecord { status: PickListStatus::Picked, lines: picked_lines, updated_at: t1, ..expected };
    assert_eq!(updated, expected);
    assert_eq!(updated.created_at, t, "the creation time stays");
    assert_eq!(s.get_pick_list(created.id).await.unwrap().as_ref(), Some(&expected));
    not_found(s.update_pick_list(&PickListRecord { id: created.id + 1000, ..change.clone() }).await);
    assert_eq!(s.get_pick_list(created.id).await.unwrap().as_ref(), Some(&expected), "a failed update changes nothing");

    // A pick list without lines (yet) is stored as well.
    let empty = s.create_pick_list(&pick_list(wh2, PickListStatus::Open, vec![], t)).await.unwrap();
    assert_eq!((empty.warehouse.as_str(), empty.lines.len()), ("WH2", 0));

    // Listing: filters combine, ids ascend, pages join up.
    let line = |o: OrderId, bin: &str| pick_line(o, 0, "A", bin, None, 1);
    let c1 =
        s.create_pick_list(&pick_list(wh1, PickListStatus::Cancelled, vec![line(o1, "WH1/A/1")], t)).await.unwrap();
    let open = s.create_pick_list(&pick_list(wh1, PickListStatus::Open, vec![line(o2, "WH1/A/2")], t)).await.unwrap();
    let w2 = s.create_pick_list(&pick_list(wh2, PickListStatus::Picked, vec![line(o1, "WH2/1")], t)).await.unwrap();
    let all = [created.id, empty.id, c1.id, open.id, w2.id];
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ids follow creation: {all:?}");
    assert_eq!(pick_list_ids(s, None, None, None, 100).await, all);
    assert_eq!(pick_list_ids(s, Some(wh1), None, None, 100).await, [created.id, c1.id, open.id]);
    assert_eq!(pick_list_ids(s, Some(wh2), None, None, 100).await, [empty.id, w2.id]);
    assert_eq!(pick_list_ids(s, None, Some(PickListStatus::Open), None, 100).await, [empty.id, open.id]);
    assert_eq!(pick_list_ids(s, None, Some(PickListStatus::Picked), None, 100).await, [created.id, w2.id]);
    assert_eq!(pick_list_ids(s, Some(wh1), Some(PickListStatus::Picked), None, 100).await, [created.id]);
    assert_eq!(pick_list_ids(s, Some(wh2), Some(PickListStatus::Cancelled), None, 100).await, Vec::<i64>::new());
    assert_eq!(pick_list_ids(s, Some(b1), None, None, 100).await, Vec::<i64>::new(), "a bin has no pick lists");
    assert_eq!(pick_list_ids(s, None, None, None, 2).await, all[..2]);
    assert_eq!(pick_list_ids(s, None, None, Some(all[1]), 2).await, all[2..4]);
    assert_eq!(pick_list_ids(s, Some(wh1), None, Some(created.id), 1).await, [c1.id]);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = pick_list_ids(s, None, None, after, 2).await;
        let Some(&last) = page.last() else { break };
        paged.extend(page);
        after = Some(last);
    }
    assert_eq!(paged, all, "pages join up in id order without gaps or repeats");
    let listed = s.list_pick_lists(Some(wh1), Some(PickListStatus::Picked), None, 10).await.unwrap();
    assert_eq!(listed, [expected], "listed records are whole");
}

/// The orders being picked in a warehouse are the distinct orders with a line on one of its OPEN pick lists: not on
/// picked or cancelled ones, not on another warehouse's; and they follow every update of a list's lines and status.
pub async fn orders_being_picked_are_on_open_lists_of_the_warehouse(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let [b1, _, b3] = bins(s).await;
    let wh1 = s.get_location("WH1").await.unwrap().expect("WH1").id;
    let wh2 = s.get_location("WH2").await.unwrap().expect("WH2").id;
    let a = items(s, "tee", &["A"]).await[0];
    let o = some_orders(s, 6, a, wh1, b1).await;
    let t = now();
    let picking = |warehouse| async move { s.orders_being_picked(warehouse).await.expect("orders being picked") };
    assert!(picking(wh1).await.is_empty(), "no pick lists, nothing being picked");

    let line = |order: OrderId, index: usize, bin: &str| pick_line(order, index, "A", bin, None, 1);
    let create = |warehouse, status, lines| async move {
        s.create_pick_list(&pick_list(warehouse, status, lines, t)).await.expect("create pick list")
    };
    // WH1: an open list of o[2] (twice) and o[0]; a picked list of o[3]; a cancelled list of o[4] and o[0].
    let open1 = create(
        wh1,
        PickListStatus::Open,
        vec![line(o[2], 0, "WH1/A/1"), line(o[0], 0, "WH1/A/1"), line(o[2], 1, "WH1/A/2")],
    )
    .await;
    create(wh1, PickListStatus::Picked, vec![line(o[3], 0, "WH1/A/1")]).await;
    let cancelled =
        create(wh1, PickListStatus::Cancelled, vec![line(o[4], 0, "WH1/A/1"), line(o[0], 1, "WH1/A/1")]).await;
    // WH2: an open list of o[5] and o[2] (an order may be picked in two warehouses); a cancelled one of o[1].
    create(wh2, PickListStatus::Open, vec![line(o[5], 0, "WH2/1"), line(o[2], 1, "WH2/1")]).await;
    create(wh2, PickListStatus::Cancelled, vec![line(o[1], 0, "WH2/1")]).await;

    assert_eq!(picking(wh1).await, [o[0], o[2]], "distinct, in id order, only from WH1's open list");
    assert_eq!(picking(wh2).await, sorted(vec![o[5], o[2]]));
    assert!(picking(b1).await.is_empty(), "a location without pick lists");
    assert!(picking(b3).await.is_empty());

    // A second open list in WH1 adds its orders; the cancelled list's orders may go on it.
    let open2 = create(wh1, PickListStatus::Open, vec![line(o[4], 0, "WH1/A/1")]).await;
    assert_eq!(picking(wh1).await, [o[0], o[2], o[4]]);

    // Rewriting an open list's lines replaces its orders: o[0] leaves, o[1] comes.
    let t1 = t + Duration::minutes(1);
    let relined = PickListRecord {
        lines: vec![line(o[2], 0, "WH1/A/1"), line(o[1], 0, "WH1/A/2")],
        updated_at: t1,
        ..open1.clone()
    };
    s.update_pick_list(&relined).await.unwrap();
    assert_eq!(picking(wh1).await, [o[1], o[2], o[4]]);

    // Done or abandoned lists no longer count; reopening a cancelled one counts again.
    s.update_pick_list(&PickListRecord { status: PickListStatus::Picked, ..relined.clone() }).await.unwrap();
    assert_eq!(picking(wh1).await, [o[4]]);
    s.update_pick_list(&PickListRecord { status: PickListStatus::Cancelled, updated_at: t1, ..open2 }).await.unwrap();
    assert!(picking(wh1).await.is_empty(), "only picked and cancelled lists left in WH1");
    s.update_pick_list(&PickListRecord { status: PickListStatus::Open, updated_at: t1, ..cancelled }).await.unwrap();
    assert_eq!(picking(wh1).await, [o[0], o[4]]);
    assert_eq!(picking(wh2).await, sorted(vec![o[5], o[2]]), "WH2 never changed");

    // An open list whose lines are all removed carries no order.
    let cleared = PickListRecord { status: PickListStatus::Open, lines: vec![], updated_at: t1, ..relined };
    s.update_pick_list(&cleared).await.unwrap();
    assert_eq!(picking(wh1).await, [o[0], o[4]]);
}

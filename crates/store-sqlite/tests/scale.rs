//! Scale check (ignored by default; run with `cargo test -p stockroom-store-sqlite --test scale -- --ignored
//! --nocapture`): a 100k-SKU catalog import, a 100k-line stock import as one batch of 500k movements, and the
//! reads over them, with timings printed. It asserts results, not speeds, so that it never flakes on a busy box.

use std::time::Instant;

use app::store::{
    BatchScope, BatchState, BatchWrites, CatalogStore, LedgerStore, LevelFilter, LocationFields, LocationStore,
    MovementFilter, NewMovement, VariantFilter,
};
use chrono::Utc;
use domain::catalog::{InventoryPolicy, ProductFields, ProductStatus, VariantFields};
use domain::location::LocationKind;
use domain::stock::{BalanceKey, Reason, StockState, VirtualKind};
use rust_decimal::Decimal;
use stockroom_store_sqlite::SqliteStore;

const SKUS: usize = 100_000;

fn product(i: usize) -> (ProductFields, Vec<VariantFields>) {
    let fields = ProductFields {
        handle: format!("p{i}"),
        title: format!("Product {i}"),
        description: String::new(),
        vendor: None,
        category: None,
        tags: vec![],
        images: vec![],
        status: ProductStatus::Active,
        options: vec![],
    };
    let variant = VariantFields {
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
    (fields, vec![variant])
}

fn fields() -> LocationFields {
    LocationFields {
        name: "x".into(),
        address: None,
        latitude: None,
        longitude: None,
        pick_sequence: None,
        sellable: true,
    }
}

#[tokio::test]
#[ignore = "takes tens of seconds; run on demand"]
async fn a_large_catalog_and_stock_import() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&dir.path().join("scale.db").display().to_string()).await.unwrap();
    let now = Utc::now();

    let products: Vec<_> = (0..SKUS).map(product).collect();
    let t = Instant::now();
    let summary = store.import_products(&products, now).await.unwrap();
    eprintln!("import {SKUS} products: {:?}", t.elapsed());
    assert_eq!((summary.products_created, summary.variants_created), (SKUS, SKUS));
    let t = Instant::now();
    let summary = store.import_products(&products, now).await.unwrap();
    eprintln!("re-import {SKUS} products: {:?}", t.elapsed());
    assert_eq!((summary.products_updated, summary.variants_updated), (SKUS, SKUS));

    let skus: Vec<String> = (0..SKUS).map(|i| format!("S{i}")).collect();
    let t = Instant::now();
    let items = store.resolve_skus(&skus).await.unwrap();
    eprintln!("resolve {SKUS} SKUs: {:?}", t.elapsed());
    assert_eq!(items.len(), SKUS);
    let t = Instant::now();
    let found = store.list_variants(&VariantFilter { sku: Some("S5000".into()), ..Default::default() }, None, 1).await;
    eprintln!("one variant by SKU: {:?}", t.elapsed());
    assert_eq!(found.unwrap()[0].fields.sku, "S5000");

    let wh = store.create_location(None, "WH", LocationKind::Warehouse, &fields(), now).await.unwrap();
    let bin = store.create_location(Some(wh.id), "WH/B", LocationKind::Bin, &fields(), now).await.unwrap();
    let adjustment = store.virtual_locations().await.unwrap()[&VirtualKind::Adjustment];
    let keys: Vec<BalanceKey> = skus.iter().map(|s| (items[s], bin.id)).collect();
    let states = [
        StockState::Available,
        StockState::Damaged,
        StockState::QualityControl,
        StockState::SafetyStock,
        StockState::Incoming,
    ];
    let movements: Vec<NewMovement> = keys
        .iter()
        .flat_map(|(item, bin)| {
            states.map(|state| NewMovement {
                item_id: *item,
                quantity: 2,
                from_location_id: adjustment,
                from_state: None,
                to_location_id: *bin,
                to_state: Some(state),
                reason: Reason::Import,
                reference: None,
                note: None,
                actor: "import".into(),
                request_id: None,
                recorded_at: now,
            })
        })
        .collect();
    let scope = BatchScope { items: keys.iter().map(|(item, _)| *item).collect(), ..Default::default() };
    let mut decide = |state: &mut BatchState| {
        for m in &movements {
            state.balances.entry((m.item_id, m.to_location_id)).or_default().add(m.to_state.unwrap(), m.quantity);
        }
        let movements = movements.iter().map(|m| NewMovement { recorded_at: state.now, ..m.clone() }).collect();
        BatchWrites { movements, ..Default::default() }
    };
    let t = Instant::now();
    let ids = store.apply_batch(&scope, &mut decide).await.unwrap().movements;
    eprintln!("apply_batch of {} items and {} movements: {:?}", keys.len(), movements.len(), t.elapsed());
    assert_eq!(ids.len(), movements.len());

    let t = Instant::now();
    let page = store.levels(&LevelFilter::default(), Some(items["S50000"]), 51).await.unwrap();
    eprintln!("a page of levels: {:?}", t.elapsed());
    assert_eq!(page.len(), 51);
    let t = Instant::now();
    let page = store.levels_as_of(&LevelFilter::default(), Utc::now(), Some(items["S50000"]), 51).await.unwrap();
    eprintln!("a page of levels as of now: {:?}", t.elapsed());
    assert_eq!(page.len(), 51);
    let t = Instant::now();
    let filter = MovementFilter { item_id: Some(items["S777"]), ..Default::default() };
    assert_eq!(store.movements(&filter, None, 51).await.unwrap().len(), states.len());
    eprintln!("one item's movements: {:?}", t.elapsed());
    let t = Instant::now();
    let (stored, folded) = store.balances_and_ledger().await.unwrap();
    eprintln!("balances and ledger: {:?}", t.elapsed());
    assert_eq!(stored, folded);
}

//! Conformance of the valuation store: settings round-trip and are replaced whole, a period locks once, landed
//! costs keep their exact decimal and need a real document, and alert state is written with its events only when
//! nobody changed it since it was read (what keeps two nodes from raising one alert twice).

use super::*;
use app::store::{DocKind, DocumentRecord};
use app::valuation_store::LandedCostRecord;

pub async fn valuation_settings_periods_and_landed_costs(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert_eq!(store.get_setting("costing").await.unwrap(), None);
    let first = serde_json::json!({"default_method": "fifo", "items": {"A": "average"}});
    store.put_setting("costing", &first, now()).await.unwrap();
    assert_eq!(store.get_setting("costing").await.unwrap(), Some(first));
    let second = serde_json::json!({"default_method": "average"});
    store.put_setting("costing", &second, now()).await.unwrap();
    assert_eq!(store.get_setting("costing").await.unwrap(), Some(second), "replaced whole");

    store.lock_period("2026-03", now()).await.unwrap();
    store.lock_period("2026-01", now()).await.unwrap();
    conflict(store.lock_period("2026-03", now()).await);
    conflict(store.lock_period("2026-3", now()).await);
    let locked: Vec<String> = store.locked_periods().await.unwrap().into_iter().map(|(p, _)| p).collect();
    assert_eq!(locked, vec!["2026-01".to_string(), "2026-03".to_string()], "in period order, each once");

    let po = DocumentRecord {
        id: 0,
        kind: DocKind::PurchaseOrder,
        status: "received".into(),
        open: false,
        body: serde_json::json!({"lines": []}),
        version: 0,
        created_at: now(),
        updated_at: now(),
    };
    let po = store.insert_document(&po, &[]).await.unwrap();
    let rec = LandedCostRecord {
        id: 0,
        purchase_order_id: po.id,
        receipt_number: 1,
        amount: "12.3456".parse().unwrap(),
        currency: "EUR".into(),
        basis: "quantity".into(),
        description: Some("freight".into()),
        created_at: now(),
    };
    let saved = store.add_landed_cost(&rec).await.unwrap();
    assert!(saved.id > 0);
    assert_eq!(store.landed_costs().await.unwrap(), vec![saved.clone()], "exact decimal and fields");
    let negative = LandedCostRecord { amount: "-1".parse().unwrap(), ..rec.clone() };
    conflict(store.add_landed_cost(&negative).await);
    let orphan = LandedCostRecord { purchase_order_id: po.id + 1000, ..rec.clone() };
    conflict(store.add_landed_cost(&orphan).await);
    assert_eq!(store.landed_costs().await.unwrap().len(), 1, "refused writes left nothing");
}

pub async fn replenishment_alerts_compare_and_set(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let item = items(store, "alerts", &["A"]).await[0];
    let [bin, _, _] = bins(store).await;
    let wh = store.get_location("WH1").await.unwrap().unwrap().id;
    assert_ne!(wh, bin);
    let before = store.outbox_after(0, 1000).await.unwrap().len();
    let event = |t: &str| OutboxEvent { topic: t.into(), payload: serde_json::json!({"sku": "A"}) };
    let raised = serde_json::json!({"reorder_point_reached": true, "stockout_projected": null});

    assert!(store
        .record_alerts(item, wh, None, &raised, &[event("stock.reorder_point_reached")], now())
        .await
        .unwrap());
    // A second evaluation that read the state before the first wrote it changes nothing and raises nothing.
    assert!(!store
        .record_alerts(item, wh, None, &raised, &[event("stock.reorder_point_reached")], now())
        .await
        .unwrap());
    let stale = serde_json::json!({"reorder_point_reached": false, "stockout_projected": null});
    assert!(!store.record_alerts(item, wh, Some(&stale), &stale, &[event("x")], now()).await.unwrap());
    let rows = store.alert_states().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].item_id, rows[0].warehouse_id, &rows[0].state), (item, wh, &raised));
    let after: Vec<String> =
        store.outbox_after(0, 1000).await.unwrap().into_iter().skip(before).map(|e| e.topic).collect();
    assert_eq!(after, vec!["stock.reorder_point_reached".to_string()], "one event, from the write that won");

    // Re-armed from the state it read: written, with no event.
    let rearmed = serde_json::json!({"reorder_point_reached": false, "stockout_projected": null});
    assert!(store.record_alerts(item, wh, Some(&raised), &rearmed, &[], now()).await.unwrap());
    assert_eq!(store.alert_states().await.unwrap()[0].state, rearmed);
}

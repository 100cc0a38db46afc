//! Conformance of the purchasing documents: they round-trip with their events, list per kind and status, write
//! only at the version read, and change in a ledger batch together with its movements or not at all.

use super::*;
use app::store::{DocKind, DocumentFilter, DocumentRecord};

fn doc(kind: DocKind, status: &str, open: bool, body: serde_json::Value) -> DocumentRecord {
    let at = now();
    DocumentRecord { id: 0, kind, status: status.into(), open, body, version: 0, created_at: at, updated_at: at }
}

fn event(topic: &str) -> OutboxEvent {
    OutboxEvent { topic: topic.into(), payload: serde_json::json!({ "status": "draft" }) }
}

pub async fn documents_round_trip_with_versions(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let before = store.outbox_after(0, 1_000).await.unwrap().len();
    let po = store
        .insert_document(&doc(DocKind::PurchaseOrder, "ordered", true, serde_json::json!({"n": 1})), &[event("po.x")])
        .await
        .unwrap();
    assert!(po.id > 0);
    assert_eq!(po.version, 1);
    assert_eq!(po.body, serde_json::json!({"n": 1}));
    let events = store.outbox_after(0, 1_000).await.unwrap();
    assert_eq!(events.len(), before + 1, "the event is written with the document");
    assert_eq!(events.last().unwrap().payload["id"], po.id, "and names it");
    let supplier =
        store.insert_document(&doc(DocKind::Supplier, "active", false, serde_json::json!({})), &[]).await.unwrap();
    let draft = store
        .insert_document(&doc(DocKind::PurchaseOrder, "draft", false, serde_json::json!({"n": 2})), &[])
        .await
        .unwrap();
    assert_eq!(store.get_document(supplier.id).await.unwrap().unwrap().kind, DocKind::Supplier);
    assert_eq!(store.get_document(999_999).await.unwrap(), None);

    let all = store.list_documents(DocKind::PurchaseOrder, &DocumentFilter::default(), None, 10).await.unwrap();
    assert_eq!(all.iter().map(|d| d.id).collect::<Vec<_>>(), vec![po.id, draft.id]);
    let page = store.list_documents(DocKind::PurchaseOrder, &DocumentFilter::default(), Some(po.id), 10).await.unwrap();
    assert_eq!(page.iter().map(|d| d.id).collect::<Vec<_>>(), vec![draft.id]);
    let drafts = DocumentFilter { status: Some("draft".into()) };
    assert_eq!(store.list_documents(DocKind::PurchaseOrder, &drafts, None, 10).await.unwrap().len(), 1);
    let open = store.open_documents(&[DocKind::PurchaseOrder, DocKind::Transfer]).await.unwrap();
    assert_eq!(open.iter().map(|d| d.id).collect::<Vec<_>>(), vec![po.id]);

    // A write at the version read succeeds and bumps it; a stale one changes nothing.
    let mut changed = po.clone();
    changed.status = "closed".into();
    changed.open = false;
    changed.body = serde_json::json!({"n": 3});
    let written = store.update_document(&changed, &[event("po.closed")]).await.unwrap();
    assert_eq!((written.version, written.status.as_str(), written.open), (2, "closed", false));
    let mut stale = po.clone();
    stale.body = serde_json::json!({"n": 4});
    assert_eq!(conflict(store.update_document(&stale, &[event("po.stale")]).await), "documents.version");
    let now_stored = store.get_document(po.id).await.unwrap().unwrap();
    assert_eq!(now_stored.body, serde_json::json!({"n": 3}));
    let topics: Vec<String> = store.outbox_after(0, 1_000).await.unwrap().into_iter().map(|e| e.topic).collect();
    assert!(!topics.contains(&"po.stale".to_string()), "a refused write leaves no event");
    assert!(store.open_documents(&[DocKind::PurchaseOrder]).await.unwrap().is_empty());
    let mut unknown = po.clone();
    unknown.id = 999_999;
    not_found(store.update_document(&unknown, &[]).await);
}

pub async fn documents_change_with_their_batch(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let item = items(store, "docs", &["D"]).await[0];
    let [b1, ..] = bins(store).await;
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let rec = store
        .insert_document(&doc(DocKind::PurchaseOrder, "ordered", true, serde_json::json!({"received": 0})), &[])
        .await
        .unwrap();

    // A batch that receives: the document and the movement commit together.
    let receive = |quantity: i64, version: Option<i64>| {
        let m = movement(item, quantity, supplier, None, b1, Some(StockState::Available), Reason::Received, now());
        move |state: &mut BatchState| {
            let d = state.documents.get_mut(&rec.id).expect("the batch loads its document");
            let got = d.body["received"].as_i64().unwrap();
            d.body = serde_json::json!({ "received": got + quantity });
            if let Some(v) = version {
                d.version = v;
            }
            state.balances.entry((item, b1)).or_default().add(StockState::Available, quantity);
            BatchWrites { movements: vec![m.clone()], ..Default::default() }
        }
    };
    let scope = BatchScope { items: vec![item], documents: vec![rec.id], ..Default::default() };
    let mut decide = receive(4, None);
    store.apply_batch(&scope, &mut decide).await.unwrap();
    let stored = store.get_document(rec.id).await.unwrap().unwrap();
    assert_eq!((stored.body["received"].as_i64(), stored.version), (Some(4), 2));
    assert_eq!(all_movements(store).await.len(), 1);

    // A stale document (another writer came first) fails the whole batch: no movement, no balance change.
    let mut stale = receive(2, Some(1));
    assert_eq!(conflict(store.apply_batch(&scope, &mut stale).await), "documents.version");
    let stored = store.get_document(rec.id).await.unwrap().unwrap();
    assert_eq!((stored.body["received"].as_i64(), stored.version), (Some(4), 2));
    assert_eq!(all_movements(store).await.len(), 1);
    assert_eq!(by_name(&all_levels(store).await)[&key("D", "WH1/A/1")].available, 4);

    // A batch the database refuses (a negative balance) leaves the document as it was.
    let mut overdraw = |state: &mut BatchState| {
        let d = state.documents.get_mut(&rec.id).unwrap();
        d.body = serde_json::json!({ "received": -100 });
        state.balances.entry((item, b1)).or_default().add(StockState::Available, -10);
        let m = movement(item, 10, b1, Some(StockState::Available), supplier, None, Reason::Correction, now());
        BatchWrites { movements: vec![m], ..Default::default() }
    };
    assert!(store.apply_batch(&scope, &mut overdraw).await.is_err());
    assert_eq!(store.get_document(rec.id).await.unwrap().unwrap().body["received"], 4);
    assert!(store.balances_and_ledger().await.map(|(a, b)| a == b).unwrap());
}

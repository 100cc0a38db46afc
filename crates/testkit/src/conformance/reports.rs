//! Conformance of the overview reads: the one-box variant search ranks exact SKU or barcode, then SKU prefixes,
//! then titles, with LIKE's wildcards meaning themselves; sales per day are shipments from a bin to the customer,
//! grouped by UTC day within a half-open window; the dashboard's counts are in full while its rows are capped.

use super::*;
use app::report_store::DashboardQuery;

pub async fn variant_search_ranks_and_escapes_wildcards(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t = now();
    // Created so that id order is the reverse of rank order.
    let mut lid = product("lid");
    lid.title = "Lid for the CUP-1".into();
    store.create_product(&lid, &[variant("LID-1")], t).await.unwrap();
    let mut cup = product("cup");
    cup.title = "Big 100%_mug".into();
    let mut exact = variant("cup-1");
    exact.barcode = Some("4006381333931".into());
    store.create_product(&cup, &[variant("CUP-10"), exact, variant("XCUP-1")], t).await.unwrap();

    let search = |q: &str, limit: u32| {
        let f = VariantFilter { q: Some(q.to_string()), ..Default::default() };
        async move {
            store.list_variants(&f, None, limit).await.unwrap().into_iter().map(|v| v.fields.sku).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("CUP-1", 10).await, ["cup-1", "CUP-10", "LID-1"], "exact (any case), prefix, title");
    assert_eq!(search("4006381333931", 10).await, ["cup-1"], "barcode, exactly");
    assert_eq!(search("400638133393", 10).await, Vec::<String>::new());
    assert_eq!(search("CUP_1", 10).await, Vec::<String>::new(), "`_` is not a wildcard");
    assert_eq!(search("C%1", 10).await, Vec::<String>::new(), "`%` is not a wildcard");
    assert_eq!(search("0%_M", 10).await, ["CUP-10", "cup-1", "XCUP-1"], "titles by substring, then by id");
    assert_eq!(search("cup", 1).await, ["CUP-10"], "at most `limit`");
    // Other filters still apply with a search.
    let f = VariantFilter { q: Some("cup".into()), barcode: Some("4006381333931".into()), ..Default::default() };
    assert_eq!(store.list_variants(&f, None, 10).await.unwrap().len(), 1);
}

pub async fn sales_per_day_groups_shipments_by_utc_day(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, _, b3] = bins(store).await;
    let it = items(store, "tee", &["A", "B"]).await;
    let (a, b) = (it[0], it[1]);
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let customer = virtual_id(store, VirtualKind::Customer).await;
    let adjustment = virtual_id(store, VirtualKind::Adjustment).await;
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let micro = Duration::microseconds(1);
    use StockState::*;
    let sale = |item, q, bin, at| movement(item, q, bin, Some(Available), customer, None, Reason::Shipment, at);
    book(
        store,
        vec![
            movement(a, 100, supplier, None, b1, Some(Available), Reason::Received, day(1)),
            movement(b, 100, supplier, None, b3, Some(Available), Reason::Received, day(1)),
            sale(a, 1, b1, day(2) - micro), // before the window
            sale(a, 2, b1, day(2)),         // its first instant
            sale(a, 3, b1, day(3) - micro), // the same UTC day, its last instant
            sale(b, 4, b3, day(3)),         // another item, the next day
            sale(a, 5, b1, day(5) - micro), // the window's last instant
            sale(a, 6, b1, day(5)),         // after it
            movement(a, 7, customer, None, b1, Some(Available), Reason::Return, day(3)),
            movement(a, 8, b1, Some(Available), adjustment, None, Reason::Shrinkage, day(3)),
            movement(a, 9, b1, Some(Available), customer, None, Reason::Correction, day(3)),
        ],
    )
    .await
    .unwrap();
    let d = |n: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, n).unwrap();
    let all = store.sales_per_day(customer, None, day(2), day(5)).await.unwrap();
    assert_eq!(all, vec![(d(2), 5), (d(3), 4), (d(4), 5)], "days with sales, in order");
    assert_eq!(store.sales_per_day(customer, Some(b), day(2), day(5)).await.unwrap(), vec![(d(3), 4)]);
    assert_eq!(store.sales_per_day(customer, Some(a), day(10), day(20)).await.unwrap(), vec![]);
}

pub async fn dashboard_counts_in_full_and_caps_rows(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let t = now();
    let q = |low_stock: i64, rows: u32| DashboardQuery { now: t, holds_until: t + Duration::hours(1), low_stock, rows };
    let empty = store.dashboard(&q(5, 10)).await.unwrap();
    assert_eq!(empty, Default::default(), "nothing needs attention in an empty store");

    let [b1, b2, _] = bins(store).await;
    let it = items(store, "tee", &["A", "B", "C"]).await;
    let mut untracked = variant("U");
    untracked.tracked = false;
    store.create_product(&product("service"), &[untracked], t).await.unwrap();
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    use StockState::*;
    book(
        store,
        vec![
            movement(it[0], 2, supplier, None, b1, Some(Available), Reason::Received, t),
            movement(it[0], 2, supplier, None, b2, Some(Available), Reason::Received, t),
            movement(it[0], 9, supplier, None, b2, Some(Damaged), Reason::Received, t),
            movement(it[1], 9, supplier, None, b1, Some(Available), Reason::Received, t),
        ],
    )
    .await
    .unwrap();
    let d = store.dashboard(&q(5, 10)).await.unwrap();
    let low: Vec<(String, i64)> = d.low_stock.rows.iter().map(|r| (r.sku.clone(), r.available)).collect();
    assert_eq!(low, vec![("C".to_string(), 0), ("A".to_string(), 4)], "available summed over bins, lowest first");
    assert_eq!(d.low_stock.count, 2, "untracked items are never low");
    let capped = store.dashboard(&q(9, 1)).await.unwrap();
    assert_eq!((capped.low_stock.count, capped.low_stock.rows.len()), (3, 1), "the count in full, the rows capped");
    assert_eq!(store.dashboard(&q(0, 10)).await.unwrap().low_stock.count, 1);
}

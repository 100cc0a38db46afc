//! Conformance of the bundle store: definitions round-trip in order, the reachable part of the graph is read
//! whole, and the database refuses loops, a bundle in itself, bad quantities, unknown items, a bundle whose item
//! holds stock, and any movement of a bundle's own item.

use super::*;
use app::store::BundleEdge;
use domain::bundle::Component;

fn c(item: ItemId, quantity: i64) -> Component {
    Component { item, quantity }
}

/// The edges read from `roots`, as `(bundle, component sku, quantity)`.
async fn edges(store: &dyn Store, roots: &[ItemId]) -> Vec<(ItemId, String, i64)> {
    let edges: Vec<BundleEdge> = store.bundle_edges(roots).await.expect("bundle edges");
    edges.into_iter().map(|e| (e.bundle, e.component_sku, e.quantity)).collect()
}

pub async fn bundle_components_round_trip(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let it = items(store, "kits", &["KIT", "A", "B", "C", "GIFT"]).await;
    let (kit, a, b, cc, gift) = (it[0], it[1], it[2], it[3], it[4]);
    assert_eq!(edges(store, &[kit, a]).await, vec![], "no item is a bundle yet");

    store.set_bundle_components(kit, &[c(b, 3), c(a, 1)]).await.unwrap();
    assert_eq!(edges(store, &[kit]).await, vec![(kit, "B".into(), 3), (kit, "A".into(), 1)], "in definition order");
    // A nested bundle: reading from the outer one returns the inner one's edges too.
    store.set_bundle_components(gift, &[c(kit, 2), c(cc, 1)]).await.unwrap();
    let mut got = edges(store, &[gift]).await;
    got.sort();
    let mut want = vec![
        (gift, "KIT".to_string(), 2),
        (gift, "C".to_string(), 1),
        (kit, "B".to_string(), 3),
        (kit, "A".to_string(), 1),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(edges(store, &[a, cc]).await, vec![], "components are not bundles");
    let flags: BTreeMap<String, bool> = store
        .variants_by_skus(&["KIT".into(), "GIFT".into(), "A".into(), "C".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|(sku, v)| (sku, v.is_bundle))
        .collect();
    let want: BTreeMap<String, bool> =
        [("A", false), ("C", false), ("GIFT", true), ("KIT", true)].map(|(s, b)| (s.to_string(), b)).into();
    assert_eq!(flags, want, "resolving SKUs tells bundles apart");
    // Upwards: C is in GIFT; A is in KIT, which is in GIFT.
    let above = |edges: Vec<BundleEdge>| {
        let mut v: Vec<(ItemId, ItemId)> = edges.into_iter().map(|e| (e.bundle, e.component)).collect();
        v.sort();
        v
    };
    assert_eq!(above(store.bundles_using(&[cc]).await.unwrap()), vec![(gift, cc)]);
    let mut want_up = vec![(kit, a), (gift, kit)];
    want_up.sort();
    assert_eq!(above(store.bundles_using(&[a]).await.unwrap()), want_up);
    assert_eq!(above(store.bundles_using(&[gift]).await.unwrap()), vec![], "nothing is made of GIFT");

    // Replacing is whole, and an empty list makes an ordinary item again.
    store.set_bundle_components(kit, &[c(cc, 2)]).await.unwrap();
    assert_eq!(edges(store, &[kit]).await, vec![(kit, "C".into(), 2)]);
    store.set_bundle_components(kit, &[]).await.unwrap();
    assert_eq!(edges(store, &[kit]).await, vec![]);
    assert_eq!(edges(store, &[gift]).await.len(), 2);
}

pub async fn bundle_definitions_are_checked_by_the_database(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let [b1, _, _] = bins(store).await;
    let it = items(store, "kits", &["KIT", "A", "B", "GIFT"]).await;
    let (kit, a, b, gift) = (it[0], it[1], it[2], it[3]);
    store.set_bundle_components(kit, &[c(a, 1), c(b, 2)]).await.unwrap();
    store.set_bundle_components(gift, &[c(kit, 1)]).await.unwrap();
    let before = edges(store, &[kit, gift, a]).await;

    // A loop through nested bundles: A → GIFT → KIT → A.
    assert!(conflict(store.set_bundle_components(a, &[c(gift, 1)]).await).contains("cycle"));
    assert!(conflict(store.set_bundle_components(kit, &[c(kit, 1)]).await).contains("contains_itself"));
    assert!(conflict(store.set_bundle_components(kit, &[c(a, 0)]).await).contains("quantity"));
    assert!(conflict(store.set_bundle_components(kit, &[c(i64::MAX / 2, 1)]).await).contains("component_item_id"));
    assert_eq!(edges(store, &[kit, gift, a]).await, before, "a refused definition changes nothing");

    // An item holding stock cannot become a bundle; once booked out (balance zero), it can.
    let supplier = virtual_id(store, VirtualKind::Supplier).await;
    let t = now();
    use StockState::Available;
    book(store, vec![movement(b, 2, supplier, None, b1, Some(Available), Reason::Received, t)]).await.unwrap();
    assert!(conflict(store.set_bundle_components(b, &[c(a, 1)]).await).contains("bundle_has_stock"));
    book(store, vec![movement(b, 2, b1, Some(Available), supplier, None, Reason::Correction, t)]).await.unwrap();
    store.set_bundle_components(b, &[c(a, 1)]).await.unwrap();
    store.set_bundle_components(b, &[]).await.unwrap();

    // The database refuses any movement of a bundle's own item, whatever the application decided.
    let levels_before = all_levels(store).await;
    let refused = book(store, vec![movement(kit, 1, supplier, None, b1, Some(Available), Reason::Received, t)]).await;
    assert!(refused.is_err(), "a bundle's own item never holds stock: {refused:?}");
    assert_eq!(all_levels(store).await, levels_before);
    let (stored, folded) = store.balances_and_ledger().await.unwrap();
    assert_eq!(by_name(&stored), by_name(&folded));
}

/// Two definitions that would close a loop together, sent at once: the store lets at most one of them through.
pub async fn racing_definitions_never_close_a_loop(store: Arc<dyn Store>) {
    let it = items(store.as_ref(), "kits", &["P", "Q", "R"]).await;
    let (p, q, r) = (it[0], it[1], it[2]);
    for round in 0..5 {
        let (s1, s2) = (store.clone(), store.clone());
        let (first, second) = tokio::join!(async move { s1.set_bundle_components(p, &[c(q, 1)]).await }, async move {
            s2.set_bundle_components(q, &[c(p, 1)]).await
        },);
        let passed = [first.is_ok(), second.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(passed, 1, "round {round}: exactly one of two looping definitions passes");
        for refused in [first, second].into_iter().filter_map(Result::err) {
            assert!(
                matches!(&refused, StoreError::Conflict { constraint } if constraint.contains("cycle")),
                "{refused}"
            );
        }
        let graph = app::store::bundle_graph(&store.bundle_edges(&[p, q, r]).await.unwrap());
        assert!(domain::bundle::flatten(p, &graph).is_ok() && domain::bundle::flatten(q, &graph).is_ok(), "no loop");
        store.set_bundle_components(p, &[]).await.unwrap();
        store.set_bundle_components(q, &[c(r, 1)]).await.unwrap();
        store.set_bundle_components(q, &[]).await.unwrap();
    }
}

//! Conformance of the channel store: channels and their warehouse lists, rule sets, the facts rules read, and the
//! materialized availability with its feed sequence, lease and watermark.

use std::collections::BTreeMap;
use std::sync::Arc;

use app::channel_store::{ChannelFields, ComputedAvailability, FeedRow};
use app::store::{OutboxEvent, Store};
use app::StoreError;
use chrono::Duration;
use domain::availability::{AvailabilityStatus, RuleSet, RuleSource};
use domain::catalog::InventoryPolicy;
use domain::location::LocationKind;
use domain::stock::{ItemId, LocationId, Reason, StockState};
use rust_decimal::Decimal;

use super::{book, conflict, items, location, movement, not_found, now, virtual_id};

fn fields(code: &str) -> ChannelFields {
    ChannelFields {
        code: code.into(),
        name: format!("Shop {code}"),
        market_country: "DE".into(),
        currency: "EUR".into(),
        prices: BTreeMap::from([("SKU-1".into(), Decimal::new(1250, 2))]),
        price_lists: BTreeMap::from([("vip".into(), BTreeMap::from([("SKU-1".into(), Decimal::new(999, 2))]))]),
        tax_rates: BTreeMap::from([("standard".into(), Decimal::new(190, 1))]),
    }
}

fn event(n: i64) -> OutboxEvent {
    OutboxEvent { topic: "channel.changed".into(), payload: serde_json::json!({ "n": n }) }
}

async fn topics(store: &dyn Store) -> Vec<String> {
    store.outbox_after(0, 1000).await.unwrap().into_iter().map(|e| e.topic).collect()
}

pub async fn channels_crud_and_rules(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let wh1 = location(store, None, "WH1", LocationKind::Warehouse).await;
    let wh2 = location(store, None, "WH2", LocationKind::Warehouse).await;
    let t = now();
    let web = store.create_channel(&fields("web"), &[wh2.id, wh1.id], &event(1), t).await.unwrap();
    assert_eq!(web.fields, fields("web"));
    assert_eq!(web.warehouses, vec![(wh2.id, "WH2".to_string()), (wh1.id, "WH1".to_string())]);
    assert_eq!(store.get_channel("web").await.unwrap(), Some(web.clone()));
    assert!(conflict(store.create_channel(&fields("web"), &[], &event(2), t).await).contains("channels.code"));
    // A warehouse listed twice, or one that does not exist, is refused by the database too.
    assert!(store.create_channel(&fields("x"), &[wh1.id, wh1.id], &event(2), t).await.is_err());
    assert!(store.create_channel(&fields("y"), &[wh1.id + 1000], &event(2), t).await.is_err());
    assert_eq!(store.get_channel("x").await.unwrap(), None);
    let shop = store.create_channel(&fields("shop"), &[wh1.id], &event(3), t).await.unwrap();
    let page: Vec<String> = store.list_channels(None, 1).await.unwrap().into_iter().map(|c| c.fields.code).collect();
    assert_eq!(page, ["web"]);
    let page: Vec<String> =
        store.list_channels(Some(web.id), 10).await.unwrap().into_iter().map(|c| c.fields.code).collect();
    assert_eq!(page, ["shop"]);

    let mut changed = fields("web");
    changed.name = "Web".into();
    changed.prices.clear();
    let t2 = t + Duration::seconds(1);
    let web2 = store.update_channel(web.id, &changed, &[wh1.id], &event(4), t2).await.unwrap();
    assert_eq!((web2.fields.clone(), web2.warehouses.len(), web2.updated_at), (changed, 1, t2));
    not_found(store.update_channel(shop.id + 1000, &fields("z"), &[], &event(5), t2).await);

    // Rules: one set per scope, replaced whole, listed in (scope, key) order.
    let buffer = RuleSet { channel_buffer: Some(2), ..Default::default() };
    let share =
        RuleSet { share_percent: Some(50), excluded_warehouses: Some(vec!["WH2".into()]), ..Default::default() };
    store.put_rules(web.id, &RuleSource::Channel, &buffer, &event(6), t).await.unwrap();
    store.put_rules(web.id, &RuleSource::Item("SKU-1".into()), &buffer, &event(7), t).await.unwrap();
    store.put_rules(web.id, &RuleSource::Item("SKU-1".into()), &share, &event(8), t).await.unwrap();
    store.put_rules(web.id, &RuleSource::Category("Apparel".into()), &share, &event(9), t).await.unwrap();
    assert_eq!(
        store.channel_rules(web.id).await.unwrap(),
        vec![
            (RuleSource::Category("Apparel".into()), share.clone()),
            (RuleSource::Channel, buffer.clone()),
            (RuleSource::Item("SKU-1".into()), share.clone()),
        ]
    );
    assert!(store.channel_rules(shop.id).await.unwrap().is_empty());
    assert!(store.delete_rules(web.id, &RuleSource::Channel, &event(10)).await.unwrap());
    assert!(!store.delete_rules(web.id, &RuleSource::Channel, &event(11)).await.unwrap());
    assert_eq!(store.channel_rules(web.id).await.unwrap().len(), 2);

    // Each change wrote its event in its own transaction; a failed or empty one wrote none.
    let ns: Vec<i64> = store
        .outbox_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.topic == "channel.changed")
        .map(|e| e.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [1, 3, 4, 6, 7, 8, 9, 10]);

    store.delete_channel(web.id, &event(12)).await.unwrap();
    assert_eq!(store.get_channel("web").await.unwrap(), None);
    not_found(store.delete_channel(web.id, &event(13)).await);
    assert!(store.channel_rules(web.id).await.unwrap().is_empty(), "rules go with their channel");
}

pub async fn channel_item_facts_and_stock(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let ids = items(store, "tee", &["SKU-1", "SKU-2", "SKU-3"]).await;
    let f = store.item_facts_by_sku("SKU-2").await.unwrap().expect("facts");
    assert_eq!((f.item_id, f.policy, f.category.as_deref()), (ids[1], InventoryPolicy::Deny, Some("Apparel > Shirts")));
    assert_eq!(f.tags, ["summer", "cotton"]);
    assert_eq!(store.item_facts_by_sku("NOPE").await.unwrap(), None);
    let some: Vec<_> = store.item_facts(Some(&[ids[2], ids[0], 999_999]), None, 10).await.unwrap();
    assert_eq!(some.iter().map(|f| f.item_id).collect::<Vec<_>>(), [ids[0], ids[2]]);
    let page: Vec<_> = store.item_facts(None, Some(ids[0]), 1).await.unwrap();
    assert_eq!(page.iter().map(|f| f.item_id).collect::<Vec<_>>(), [ids[1]]);

    let wh = location(store, None, "WH1", LocationKind::Warehouse).await;
    let bin = location(store, Some(&wh), "1", LocationKind::Bin).await;
    let supplier = virtual_id(store, domain::stock::VirtualKind::Supplier).await;
    let t = now();
    let av = Some(StockState::Available);
    let committed = Some(StockState::Committed);
    book(store, vec![movement(ids[0], 7, supplier, None, bin.id, av, Reason::Received, t)]).await.unwrap();
    book(store, vec![movement(ids[0], 2, bin.id, av, bin.id, committed, Reason::Order, t)]).await.unwrap();
    book(store, vec![movement(ids[0], 1, bin.id, av, bin.id, committed, Reason::Order, t - Duration::days(10))])
        .await
        .unwrap();
    assert_eq!(store.bin_available(&[ids[0], ids[1]]).await.unwrap(), vec![(ids[0], bin.id, 4)]);
    let sold = store.units_ordered_since(&[ids[0], ids[1]], t - Duration::days(3)).await.unwrap();
    assert_eq!(sold.get(&ids[0]), Some(&2));
    assert_eq!(sold.get(&ids[1]), None);
}

/// A lookup's inputs read together are what the separate reads give: the facts, the bundle rows reachable from
/// the item, and the positive bins of the item and of everything those rows reach (and of nothing else).
pub async fn lookup_inputs_read_together(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let ids = items(store, "kit", &["GIFT", "KIT", "A", "C", "OTHER"]).await;
    let (gift, kit, a, cc, other) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    let wh = location(store, None, "WH1", LocationKind::Warehouse).await;
    let (bin1, bin2) = (
        location(store, Some(&wh), "1", LocationKind::Bin).await.id,
        location(store, Some(&wh), "2", LocationKind::Bin).await.id,
    );
    let supplier = virtual_id(store, domain::stock::VirtualKind::Supplier).await;
    let (t, av) = (now(), Some(StockState::Available));
    let received = |item, quantity, bin| movement(item, quantity, supplier, None, bin, av, Reason::Received, t);
    book(store, vec![received(a, 5, bin1), received(a, 2, bin2), received(cc, 3, bin2), received(other, 9, bin1)])
        .await
        .unwrap();
    let committed = Some(StockState::Committed);
    book(store, vec![movement(cc, 3, bin2, av, bin2, committed, Reason::Order, t)]).await.unwrap();
    let component = |item, quantity| domain::bundle::Component { item, quantity };
    store.set_bundle_components(kit, &[component(a, 2)]).await.unwrap();
    store.set_bundle_components(gift, &[component(kit, 1), component(cc, 1)]).await.unwrap();

    let sorted = |mut v: Vec<(ItemId, LocationId, i64)>| {
        v.sort_unstable();
        v
    };
    for (sku, reached) in [("GIFT", vec![gift, kit, a, cc]), ("KIT", vec![kit, a]), ("A", vec![a]), ("C", vec![cc])] {
        let got = store.lookup_inputs(sku).await.unwrap().unwrap_or_else(|| panic!("{sku} is known"));
        assert_eq!(Some(got.facts.clone()), store.item_facts_by_sku(sku).await.unwrap(), "{sku}");
        assert_eq!(got.edges, store.bundle_edges(&[got.facts.item_id]).await.unwrap(), "{sku}: in definition order");
        assert_eq!(sorted(got.bins), sorted(store.bin_available(&reached).await.unwrap()), "{sku}");
    }
    let a_bins = store.lookup_inputs("A").await.unwrap().unwrap().bins;
    assert_eq!(sorted(a_bins), vec![(a, bin1, 5), (a, bin2, 2)], "positive bins of the item only");
    assert!(store.lookup_inputs("C").await.unwrap().unwrap().bins.is_empty(), "no bin with units available");
    assert_eq!(store.lookup_inputs("NOPE").await.unwrap(), None);
}

pub async fn availability_feed_sequences_and_lease(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let ids = items(store, "tee", &["SKU-1", "SKU-2"]).await;
    let wh = location(store, None, "WH1", LocationKind::Warehouse).await;
    let web = store.create_channel(&fields("web"), &[wh.id], &event(0), now()).await.unwrap();
    let shop = store.create_channel(&fields("shop"), &[wh.id], &event(0), now()).await.unwrap();
    let t = now();
    let row = |channel, item, quantity, status| ComputedAvailability {
        channel_id: channel,
        item_id: item,
        quantity,
        status,
        listed: true,
    };
    let events = |old: Option<&FeedRow>, new: &FeedRow| {
        vec![OutboxEvent {
            topic: "availability.updated".into(),
            payload: serde_json::json!({ "seq": new.seq, "old": old.map(|o| o.quantity) }),
        }]
    };

    // Without the lease nothing is written.
    let err = store
        .write_availability("node-a", &[row(web.id, ids[0], 1, AvailabilityStatus::InStock)], None, &events, t)
        .await;
    assert!(
        matches!(err, Err(StoreError::Conflict { ref constraint }) if constraint == "feed_state.leader"),
        "{err:?}"
    );
    assert!(store.acquire_feed_lease("node-a", t + Duration::seconds(10), t).await.unwrap());
    assert!(store.acquire_feed_lease("node-a", t + Duration::seconds(20), t).await.unwrap(), "renewed");
    assert!(!store.acquire_feed_lease("node-b", t + Duration::seconds(10), t + Duration::seconds(5)).await.unwrap());

    let first = vec![
        row(web.id, ids[0], 5, AvailabilityStatus::InStock),
        row(web.id, ids[1], 0, AvailabilityStatus::OutOfStock),
        row(shop.id, ids[0], 2, AvailabilityStatus::LowStock),
    ];
    let written = store.write_availability("node-a", &first, Some(3), &events, t).await.unwrap();
    assert_eq!(written.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!((written[0].sku.as_str(), written[2].channel_id), ("SKU-1", shop.id));
    assert_eq!(store.feed_watermark().await.unwrap(), 3);
    // The same state again writes nothing; one change gets the next sequence, and its event sees the old row.
    assert!(store.write_availability("node-a", &first, None, &events, t).await.unwrap().is_empty());
    let again =
        [row(web.id, ids[0], 4, AvailabilityStatus::InStock), row(web.id, ids[1], 0, AvailabilityStatus::OutOfStock)];
    let written = store.write_availability("node-a", &again, Some(1), &events, t).await.unwrap();
    assert_eq!((written.len(), written[0].seq, written[0].quantity), (1, 4, 4));
    assert_eq!(store.feed_watermark().await.unwrap(), 3, "the watermark never goes back");
    let ev: Vec<serde_json::Value> = store
        .outbox_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.topic == "availability.updated")
        .map(|e| e.payload)
        .collect();
    assert_eq!(ev.last().unwrap(), &serde_json::json!({ "seq": 4, "old": 5 }));
    assert_eq!(ev.len(), 4);

    // The feed: one channel's rows after a sequence, in sequence order; the snapshot in item order.
    let feed = store.availability_changes(web.id, 0, 10).await.unwrap();
    assert_eq!(feed.iter().map(|r| (r.seq, r.item_id)).collect::<Vec<_>>(), [(2, ids[1]), (4, ids[0])]);
    assert_eq!(store.availability_changes(web.id, 2, 10).await.unwrap().len(), 1);
    assert_eq!(store.availability_changes(shop.id, 0, 10).await.unwrap()[0].status, AvailabilityStatus::LowStock);
    let snap = store.availability_rows(web.id, None, 1).await.unwrap();
    assert_eq!((snap.len(), snap[0].item_id, snap[0].quantity), (1, ids[0], 4));
    assert_eq!(store.availability_rows(web.id, Some(ids[0]), 10).await.unwrap()[0].item_id, ids[1]);

    // Another node takes over once the lease ran out; the old holder is fenced off.
    let later = t + Duration::seconds(30);
    assert!(store.acquire_feed_lease("node-b", later + Duration::seconds(10), later).await.unwrap());
    let stale = [row(web.id, ids[0], 9, AvailabilityStatus::InStock)];
    assert!(store.write_availability("node-a", &stale, None, &events, later).await.is_err());
    let fresh = [row(web.id, ids[0], 3, AvailabilityStatus::InStock)];
    assert_eq!(store.write_availability("node-b", &fresh, None, &events, later).await.unwrap()[0].seq, 5);
    assert!(topics(store).await.iter().filter(|t| *t == "availability.updated").count() == 5);

    // Deleting the channel deletes its rows.
    store.delete_channel(web.id, &event(0)).await.unwrap();
    assert!(store.availability_changes(web.id, 0, 10).await.unwrap().is_empty());
}

//! Each availability rule alone and combined, the explanation line by line, precedence, and properties.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn wh(list: &[(&str, i64)]) -> Stock {
    Stock::Warehouses(list.iter().map(|(c, q)| (c.to_string(), *q)).collect())
}

fn eval(stock: Stock, policy: InventoryPolicy, sales: i64, rules: &[(RuleSource, RuleSet)]) -> Evaluation {
    let stack = RuleStack::for_item(
        rules.iter().map(|(s, r)| (s, r)),
        "SKU-1",
        Some("Apparel > Shirts"),
        &["sale".to_string(), "summer".to_string()],
    );
    evaluate(&Input { stock, catalog_policy: policy, recent_sales: sales, rules: stack })
}

/// The explanation as `rule source before->after` lines, for line-by-line comparison.
fn lines(e: &Evaluation) -> Vec<String> {
    e.steps.iter().map(|s| format!("{} {} {}->{}", s.rule, s.source, s.before, s.after)).collect()
}

fn channel(r: RuleSet) -> (RuleSource, RuleSet) {
    (RuleSource::Channel, r)
}

#[test]
fn no_rules_sums_the_warehouses_and_follows_the_catalog_policy() {
    let e = eval(wh(&[("WH1", 3), ("WH2", 4)]), InventoryPolicy::Deny, 0, &[]);
    assert_eq!((e.quantity, e.status, e.listed, e.pooled), (7, AvailabilityStatus::InStock, true, 7));
    assert_eq!(lines(&e), ["stock stock 7->7", "policy catalog 7->7"]);
    assert_eq!(e.steps[0].detail, "available in the channel's warehouses (WH1: 3, WH2: 4)");
}

#[test]
fn negative_warehouse_stock_counts_as_zero() {
    let e = eval(wh(&[("WH1", -3), ("WH2", 4)]), InventoryPolicy::Deny, 0, &[]);
    assert_eq!(e.quantity, 4);
}

#[test]
fn excluded_warehouses_drop_their_stock() {
    let r = RuleSet { excluded_warehouses: Some(vec!["WH2".into()]), ..Default::default() };
    let e = eval(wh(&[("WH1", 3), ("WH2", 4)]), InventoryPolicy::Deny, 0, &[channel(r)]);
    assert_eq!(e.quantity, 3);
    assert_eq!(lines(&e), ["stock stock 7->7", "excluded_warehouses channel 7->3", "policy catalog 3->3"]);
}

#[test]
fn safety_stock_holds_back_per_warehouse_never_below_zero() {
    let r =
        RuleSet { safety_stock: Some(BTreeMap::from([("WH1".into(), 5), ("WH2".into(), 1)])), ..Default::default() };
    let e = eval(wh(&[("WH1", 3), ("WH2", 4)]), InventoryPolicy::Deny, 0, &[channel(r)]);
    assert_eq!((e.quantity, e.pooled), (3, 3));
    assert_eq!(lines(&e), ["stock stock 7->7", "safety_stock channel 7->3", "policy catalog 3->3"]);
    assert_eq!(e.steps[1].detail, "held back per warehouse (WH1: 3 of 5, WH2: 1 of 1)");
}

#[test]
fn channel_buffer_holds_back_units() {
    let r = RuleSet { channel_buffer: Some(2), ..Default::default() };
    let e = eval(wh(&[("WH1", 5)]), InventoryPolicy::Deny, 0, &[channel(r.clone())]);
    assert_eq!(lines(&e), ["stock stock 5->5", "channel_buffer channel 5->3", "policy catalog 3->3"]);
    let e = eval(wh(&[("WH1", 1)]), InventoryPolicy::Deny, 0, &[channel(r)]);
    assert_eq!((e.quantity, e.status), (0, AvailabilityStatus::OutOfStock));
}

#[test]
fn velocity_buffer_holds_back_recent_sales() {
    let r = RuleSet { velocity_days: Some(3), ..Default::default() };
    let e = eval(wh(&[("WH1", 10)]), InventoryPolicy::Deny, 4, &[channel(r)]);
    assert_eq!(lines(&e), ["stock stock 10->10", "velocity_days channel 10->6", "policy catalog 6->6"]);
    assert_eq!(e.steps[1].detail, "4 units sold in the last 3 days held back (3 days of average daily sales)");
}

#[test]
fn share_caps_take_a_part_of_the_pooled_stock() {
    let pct = RuleSet { share_percent: Some(50), ..Default::default() };
    let e = eval(wh(&[("WH1", 9)]), InventoryPolicy::Deny, 0, &[channel(pct)]);
    assert_eq!(lines(&e), ["stock stock 9->9", "share_percent channel 9->4", "policy catalog 4->4"]);
    let units = RuleSet { share_units: Some(2), ..Default::default() };
    let e = eval(wh(&[("WH1", 9)]), InventoryPolicy::Deny, 0, &[channel(units)]);
    assert_eq!(lines(&e), ["stock stock 9->9", "share_units channel 9->2", "policy catalog 2->2"]);
}

#[test]
fn policy_at_zero_decides_the_status() {
    for (policy, status) in [
        (InventoryPolicy::Deny, AvailabilityStatus::OutOfStock),
        (InventoryPolicy::Continue, AvailabilityStatus::InStock),
        (InventoryPolicy::Backorder, AvailabilityStatus::Backorder),
    ] {
        let e = eval(wh(&[("WH1", 0)]), policy, 0, &[]);
        assert_eq!((e.quantity, e.status), (0, status), "{policy:?}");
        // A channel may override the catalog's policy.
        let r = RuleSet { policy: Some(policy), ..Default::default() };
        let e = eval(wh(&[("WH1", 0)]), InventoryPolicy::Deny, 0, &[channel(r)]);
        assert_eq!(e.status, status);
        assert_eq!(lines(&e)[1], "policy channel 0->0");
    }
}

#[test]
fn low_stock_and_hide_below_set_status_and_listing() {
    let r = RuleSet { low_stock_below: Some(5), hide_below: Some(3), ..Default::default() };
    let e = eval(wh(&[("WH1", 4)]), InventoryPolicy::Deny, 0, &[channel(r.clone())]);
    assert_eq!((e.quantity, e.status, e.listed), (4, AvailabilityStatus::LowStock, true));
    assert_eq!(
        lines(&e),
        ["stock stock 4->4", "policy catalog 4->4", "low_stock_below channel 4->4", "hide_below channel 4->4"]
    );
    let e = eval(wh(&[("WH1", 2)]), InventoryPolicy::Deny, 0, &[channel(r.clone())]);
    assert_eq!((e.status, e.listed), (AvailabilityStatus::LowStock, false));
    assert_eq!(e.steps[3].detail, "below 3: hidden");
    let e = eval(wh(&[("WH1", 9)]), InventoryPolicy::Deny, 0, &[channel(r.clone())]);
    assert_eq!((e.status, e.listed), (AvailabilityStatus::InStock, true));
    // Zero is out of stock, not low stock.
    let e = eval(wh(&[("WH1", 0)]), InventoryPolicy::Deny, 0, &[channel(r)]);
    assert_eq!(e.status, AvailabilityStatus::OutOfStock);
}

#[test]
fn pooled_stock_of_a_bundle_skips_warehouse_rules() {
    let r = RuleSet { excluded_warehouses: Some(vec!["WH1".into()]), channel_buffer: Some(1), ..Default::default() };
    let e = eval(
        Stock::Pooled { available: 4, note: "bundle: min over components".into() },
        InventoryPolicy::Deny,
        0,
        &[channel(r)],
    );
    assert_eq!(lines(&e), ["stock stock 4->4", "channel_buffer channel 4->3", "policy catalog 3->3"]);
}

#[test]
fn every_rule_combined_in_the_documented_order() {
    let r = RuleSet {
        policy: Some(InventoryPolicy::Backorder),
        safety_stock: Some(BTreeMap::from([("WH1".into(), 2)])),
        channel_buffer: Some(1),
        share_percent: Some(80),
        share_units: Some(100),
        velocity_days: Some(7),
        hide_below: Some(1),
        low_stock_below: Some(10),
        excluded_warehouses: Some(vec!["WH3".into()]),
    };
    let e = eval(wh(&[("WH1", 12), ("WH2", 10), ("WH3", 50)]), InventoryPolicy::Deny, 3, &[channel(r)]);
    assert_eq!(
        lines(&e),
        [
            "stock stock 72->72",
            "excluded_warehouses channel 72->22",
            "safety_stock channel 22->20",
            "channel_buffer channel 20->19",
            "velocity_days channel 19->16",
            "share_percent channel 16->16",
            "share_units channel 16->16",
            "policy channel 16->16",
            "low_stock_below channel 16->16",
            "hide_below channel 16->16",
        ]
    );
    assert_eq!((e.quantity, e.status, e.listed, e.pooled), (16, AvailabilityStatus::InStock, true, 20));
}

#[test]
fn the_most_specific_scope_wins_per_field() {
    let rules = vec![
        channel(RuleSet { channel_buffer: Some(1), hide_below: Some(2), ..Default::default() }),
        (RuleSource::Category("Apparel".into()), RuleSet { channel_buffer: Some(2), ..Default::default() }),
        (RuleSource::Category("Apparel > Shirts".into()), RuleSet { channel_buffer: Some(3), ..Default::default() }),
        (RuleSource::Tag("summer".into()), RuleSet { channel_buffer: Some(4), ..Default::default() }),
        (RuleSource::Tag("sale".into()), RuleSet { share_units: Some(5), ..Default::default() }),
        (RuleSource::Item("SKU-1".into()), RuleSet { share_units: Some(6), ..Default::default() }),
        // Not this item's: ignored.
        (RuleSource::Item("OTHER".into()), RuleSet { channel_buffer: Some(90), ..Default::default() }),
        (RuleSource::Tag("winter".into()), RuleSet { channel_buffer: Some(91), ..Default::default() }),
        (
            RuleSource::Category("Apparel > Shirtsleeves".into()),
            RuleSet { channel_buffer: Some(92), ..Default::default() },
        ),
    ];
    let e = eval(wh(&[("WH1", 20)]), InventoryPolicy::Deny, 0, &rules);
    assert_eq!(
        lines(&e),
        [
            "stock stock 20->20",
            "channel_buffer tag:summer 20->16",
            "share_units item:SKU-1 16->6",
            "policy catalog 6->6",
            "hide_below channel 6->6",
        ]
    );
    // Without the tag, the deepest category wins over its parent.
    let e = eval(wh(&[("WH1", 20)]), InventoryPolicy::Deny, 0, &rules[..3]);
    assert_eq!(lines(&e)[1], "channel_buffer category:Apparel > Shirts 20->17");
}

#[test]
fn validation_names_each_bad_field() {
    let r = RuleSet {
        channel_buffer: Some(-1),
        share_percent: Some(101),
        velocity_days: Some(0),
        safety_stock: Some(BTreeMap::from([("WH1".into(), -2)])),
        ..Default::default()
    };
    let mut p = Problems::default();
    r.validate("rules.", &mut p);
    let fields: Vec<&str> = p.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["rules.channel_buffer", "rules.share_percent", "rules.velocity_days", "rules.safety_stock.WH1"]
    );
    let mut p = Problems::default();
    RuleSet { share_percent: Some(100), ..Default::default() }.validate("", &mut p);
    assert!(p.is_empty());
}

fn arb_rules() -> impl Strategy<Value = RuleSet> {
    (
        prop::option::of(prop_oneof![
            Just(InventoryPolicy::Deny),
            Just(InventoryPolicy::Continue),
            Just(InventoryPolicy::Backorder)
        ]),
        prop::option::of(0i64..20),
        prop::option::of(0i64..20),
        prop::option::of(0i64..=100),
        prop::option::of(0i64..50),
        prop::option::of(1i64..30),
        prop::option::of(0i64..20),
        prop::option::of(0i64..20),
        prop::option::of(prop::sample::subsequence(vec!["WH1".to_string(), "WH2".to_string()], 0..=2)),
    )
        .prop_map(|(policy, safety, buffer, pct, units, days, hide, low, excluded)| RuleSet {
            policy,
            safety_stock: safety.map(|n| BTreeMap::from([("WH1".to_string(), n)])),
            channel_buffer: buffer,
            share_percent: pct,
            share_units: units,
            velocity_days: days,
            hide_below: hide,
            low_stock_below: low,
            excluded_warehouses: excluded,
        })
}

proptest! {
    #[test]
    fn quantity_is_never_negative_nor_above_the_stock(
        a in -10i64..100, b in -10i64..100, sales in 0i64..50, r in arb_rules()
    ) {
        let e = eval(wh(&[("WH1", a), ("WH2", b)]), InventoryPolicy::Deny, sales, &[channel(r)]);
        prop_assert!(e.quantity >= 0);
        prop_assert!(e.quantity <= e.pooled);
        prop_assert!(e.pooled <= a.max(0) + b.max(0));
        // The explanation chains: each step starts where the previous ended, and ends at the result.
        for w in e.steps.windows(2) {
            prop_assert_eq!(w[0].after, w[1].before);
        }
        prop_assert_eq!(e.steps.last().unwrap().after, e.quantity);
        // A positive quantity is always sellable; zero is in stock only when the policy keeps selling.
        if e.quantity > 0 {
            prop_assert!(matches!(e.status, AvailabilityStatus::InStock | AvailabilityStatus::LowStock));
        } else {
            prop_assert!(e.status != AvailabilityStatus::LowStock);
        }
    }

    #[test]
    fn more_stock_never_shows_less(a in 0i64..100, extra in 0i64..50, sales in 0i64..50, r in arb_rules()) {
        let rules = [channel(r)];
        let low = eval(wh(&[("WH1", a), ("WH2", 3)]), InventoryPolicy::Deny, sales, &rules);
        let high = eval(wh(&[("WH1", a + extra), ("WH2", 3)]), InventoryPolicy::Deny, sales, &rules);
        prop_assert!(high.quantity >= low.quantity);
        // Listing is monotone too: what is listed stays listed with more stock.
        prop_assert!(!low.listed || high.listed);
    }

    #[test]
    fn more_sales_never_show_more(a in 0i64..100, sales in 0i64..50, more in 0i64..50, r in arb_rules()) {
        let rules = [channel(r)];
        let few = eval(wh(&[("WH1", a)]), InventoryPolicy::Deny, sales, &rules);
        let many = eval(wh(&[("WH1", a)]), InventoryPolicy::Deny, sales + more, &rules);
        prop_assert!(many.quantity <= few.quantity);
    }

    #[test]
    fn deny_at_zero_is_out_of_stock(r in arb_rules(), sales in 0i64..10) {
        let r = RuleSet { policy: Some(InventoryPolicy::Deny), ..r };
        let e = eval(wh(&[("WH1", 0)]), InventoryPolicy::Backorder, sales, &[channel(r)]);
        prop_assert_eq!(e.status, AvailabilityStatus::OutOfStock);
    }
}

//! Hand-computed reorder points, order quantities, cover, stock-out dates, stock health and alerts; tabled normal
//! quantiles; and property tests of the inverse normal and of suggestions over random inputs.

use super::*;
use crate::forecast::{Accuracy, DemandClass, Model};
use proptest::prelude::*;

fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(n)
}

fn flat(rate: f64, sigma: f64) -> Forecast {
    Forecast {
        model: Model::Ses { alpha: 0.1 },
        class: DemandClass::Smooth,
        first_day: day(0),
        daily: vec![rate; 90],
        sigma_daily: sigma,
        accuracy: Accuracy { mase: Some(0.8), mae: 1.0, rmse: 1.0, bias: 0.0, errors: 10, origins: 1 },
    }
}

fn policy() -> OrderPolicy {
    OrderPolicy {
        min_order_qty: 100,
        pack_size: 12,
        review_days: 14.0,
        holding_cost_per_unit_year: None,
        ordering_cost: None,
    }
}

const LEAD: LeadTime = LeadTime { mean_days: 4.0, sd_days: 1.0 };

#[test]
fn inverse_normal_matches_tables() {
    for (p, z) in [
        (0.5, 0.0),
        (0.8, 0.841_621_233_6),
        (0.9, 1.281_551_565_5),
        (0.95, 1.644_853_626_9),
        (0.975, 1.959_963_985),
        (0.99, 2.326_347_874),
        (0.999, 3.090_232_306),
        (0.01, -2.326_347_874),
        (1e-6, -4.753_424_309),
    ] {
        let got = inverse_normal_cdf(p).unwrap();
        assert!((got - z).abs() < 1e-8, "p={p}: {got} vs {z}");
    }
    for p in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        assert_eq!(inverse_normal_cdf(p), Err(ReplenishmentError::BadProbability));
    }
    assert!((normal_cdf(1.959_963_985) - 0.975).abs() < 1e-7);
    assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
}

#[test]
fn reorder_point_hand_computed() {
    // L = 4, σL = 1, d = 10, σd = 3: σ = sqrt(4·9 + 100·1) = sqrt(136) ≈ 11.662; z(0.95) ≈ 1.645; SS ≈ 19.18.
    let r = reorder_point(&flat(10.0, 3.0), LEAD, 0.95).unwrap();
    assert!((r.lead_time_demand - 40.0).abs() < 1e-9);
    assert!((r.sigma - 136f64.sqrt()).abs() < 1e-9);
    assert!((r.safety_stock - 19.182).abs() < 1e-3, "{}", r.safety_stock);
    assert_eq!(r.units, 60);
    // A certain lead time and a perfect forecast need no safety stock.
    let r = reorder_point(&flat(10.0, 0.0), LeadTime { mean_days: 4.5, sd_days: 0.0 }, 0.99).unwrap();
    assert_eq!((r.safety_stock, r.units), (0.0, 45));
    assert_eq!(reorder_point(&flat(1.0, 1.0), LEAD, 0.4), Err(ReplenishmentError::BadServiceLevel));
    assert_eq!(reorder_point(&flat(1.0, 1.0), LEAD, 1.0), Err(ReplenishmentError::BadServiceLevel));
    let bad = LeadTime { mean_days: 0.0, sd_days: 0.0 };
    assert_eq!(reorder_point(&flat(1.0, 1.0), bad, 0.9), Err(ReplenishmentError::BadLeadTime));
}

#[test]
fn suggestion_respects_minimum_and_packs() {
    let f = flat(10.0, 3.0);
    let pos = Position { on_hand: 50, on_order: 0, committed: 5 };
    let p = plan(&f, pos, &[], LEAD, 0.95, &policy()).unwrap();
    // Position 45 ≤ 60: order up to 60 + 14 days × 10 = 200, i.e. 155, rounded up to 13 packs of 12.
    assert_eq!((p.inventory_position, p.order_up_to, p.suggested_quantity, p.eoq), (45, 200, 156, None));
    assert_eq!(p.days_of_cover, Some(4.5));
    assert_eq!(p.projected_stockout, Some(day(4)));
    // The minimum order wins over a small need.
    let small = OrderPolicy { review_days: 0.0, ..policy() };
    let p = plan(&f, Position { on_hand: 58, on_order: 0, committed: 0 }, &[], LEAD, 0.95, &small).unwrap();
    assert_eq!(p.suggested_quantity, 108);
    // Above the reorder point nothing is ordered.
    let p = plan(&f, Position { on_hand: 40, on_order: 21, committed: 0 }, &[], LEAD, 0.95, &policy()).unwrap();
    assert_eq!(p.suggested_quantity, 0);
}

#[test]
fn economic_order_quantity_when_costs_are_set() {
    // D = 3650 a year, S = 50, H = 2: sqrt(2·3650·50/2) = sqrt(182500) ≈ 427.2.
    let pol = OrderPolicy {
        holding_cost_per_unit_year: Some(Decimal::from(2)),
        ordering_cost: Some(Decimal::from(50)),
        ..policy()
    };
    let p = plan(&flat(10.0, 3.0), Position { on_hand: 50, on_order: 0, committed: 5 }, &[], LEAD, 0.95, &pol).unwrap();
    assert_eq!(p.eoq, Some(427));
    assert_eq!(p.order_up_to, 60 + 427);
    assert_eq!(p.suggested_quantity, 444); // 442 needed, 37 packs of 12
    assert_eq!(economic_order_quantity(0.0, Decimal::ONE, Decimal::ONE), None);
    for bad in [
        OrderPolicy { pack_size: 0, ..policy() },
        OrderPolicy { min_order_qty: -1, ..policy() },
        OrderPolicy { holding_cost_per_unit_year: Some(Decimal::ZERO), ..policy() },
        OrderPolicy { ordering_cost: Some(Decimal::NEGATIVE_ONE), ..policy() },
    ] {
        assert!(
            plan(&flat(1.0, 1.0), Position { on_hand: 0, on_order: 0, committed: 0 }, &[], LEAD, 0.9, &bad).is_err()
        );
    }
}

#[test]
fn stockout_projection_counts_expected_receipts() {
    let f = flat(10.0, 0.0);
    // 45 → 35 → 25 → +20 → 35 → 25 → 15 → 5, and day 6 cannot be met.
    assert_eq!(projected_stockout(45, &[(day(2), 20)], &f), Some(day(6)));
    // An overdue receipt counts from the first day.
    assert_eq!(projected_stockout(45, &[(day(-3), 10)], &f), Some(day(5)));
    assert_eq!(projected_stockout(0, &[], &f), Some(day(0)));
    assert_eq!(projected_stockout(10_000, &[], &f), None);
    assert_eq!(projected_stockout(0, &[], &flat(0.0, 0.0)), None);
    assert_eq!(days_of_cover(10_000, &f), Some(1000.0));
    assert_eq!(days_of_cover(5, &flat(0.0, 0.0)), None);
}

#[test]
fn velocity_ignores_stocked_out_days() {
    let mut days = vec![Some(1.0); 90];
    for d in days.iter_mut().rev().take(7).step_by(2) {
        *d = None; // 4 of the last 7 days out of stock
    }
    let s = DemandSeries::new(day(0), days).unwrap();
    let [v7, v30, v90] = velocities(&s);
    assert_eq!((v7.in_stock_days, v7.units, v7.per_day), (3, 3.0, Some(1.0)));
    assert_eq!((v30.in_stock_days, v30.per_day), (26, Some(1.0)));
    assert_eq!(v90.window_days, 90);
    let gone = DemandSeries::new(day(0), vec![None; 10]).unwrap();
    assert_eq!(velocity(&gone, 7).per_day, None);
}

#[test]
fn overstock_and_dead_stock() {
    let rules = HealthRules { dead_after_days: 90, overstock_cover_days: 60.0 };
    let v = Decimal::from(1000);
    assert_eq!(
        classify(day(100), 500, v, Some(day(5)), Some(day(0)), 2.0, rules),
        StockHealth::Dead { days_since_sale: Some(95), value_tied_up: v }
    );
    assert_eq!(
        classify(day(100), 5, v, None, Some(day(1)), 0.0, rules),
        StockHealth::Dead { days_since_sale: None, value_tied_up: v }
    );
    assert_eq!(
        classify(day(100), 5, v, None, None, 0.0, rules),
        StockHealth::Dead { days_since_sale: None, value_tied_up: v }
    );
    // Received last month and not sold yet: too early to call it dead; with no demand forecast it is all excess.
    assert!(matches!(
        classify(day(100), 5, v, None, Some(day(70)), 0.0, rules),
        StockHealth::Overstock { excess_units: 5, .. }
    ));
    // 60 days × 2 a day = 120 units of cover; 380 of 500 units are excess, 76% of the value.
    assert_eq!(
        classify(day(100), 500, v, Some(day(99)), None, 2.0, rules),
        StockHealth::Overstock { excess_units: 380, excess_value: Decimal::from(760), value_on_hand: v }
    );
    assert_eq!(classify(day(100), 100, v, Some(day(99)), None, 2.0, rules), StockHealth::Healthy);
    assert_eq!(classify(day(100), 0, v, None, None, 2.0, rules), StockHealth::Empty);
}

#[test]
fn alerts_fire_once_per_episode() {
    let f = flat(10.0, 3.0);
    let at = |on_hand| plan(&f, Position { on_hand, on_order: 0, committed: 0 }, &[], LEAD, 0.95, &policy()).unwrap();
    let (a, s) = decide_alerts(AlertState::default(), &at(100), day(0), 4);
    assert!(a.is_empty());
    let (a, s) = decide_alerts(s, &at(30), day(0), 4);
    assert_eq!(
        a,
        vec![
            Alert::ReorderPointReached { inventory_position: 30, reorder_point: 60 },
            Alert::StockoutProjected { date: day(3) }
        ]
    );
    assert_eq!(a[0].event_type(), "stock.reorder_point_reached");
    assert_eq!(a[1].event_type(), "stock.stockout_projected");
    // Same situation again: nothing new.
    let (a, s) = decide_alerts(s, &at(30), day(0), 4);
    assert!(a.is_empty());
    // Worse: the stock-out moves earlier and is raised again.
    let (a, s) = decide_alerts(s, &at(15), day(0), 4);
    assert_eq!(a, vec![Alert::StockoutProjected { date: day(1) }]);
    // Replenished: both re-arm, and the next dip raises them again.
    let (a, s) = decide_alerts(s, &at(500), day(0), 4);
    assert!(a.is_empty());
    assert_eq!(s, AlertState::default());
    let (a, _) = decide_alerts(s, &at(30), day(0), 4);
    assert_eq!(a.len(), 2);
    // An item nobody buys, with nothing on hand, needs no order and raises nothing.
    let idle =
        plan(&flat(0.0, 0.0), Position { on_hand: 0, on_order: 0, committed: 0 }, &[], LEAD, 0.95, &policy()).unwrap();
    assert_eq!((idle.reorder_point.units, idle.suggested_quantity), (0, 0));
    assert_eq!(decide_alerts(AlertState::default(), &idle, day(0), 4).0, vec![]);
}

proptest! {
    #[test]
    fn inverse_normal_inverts_the_cdf(p in 1e-6f64..(1.0 - 1e-6)) {
        let x = inverse_normal_cdf(p).unwrap();
        prop_assert!((normal_cdf(x) - p).abs() < 2e-7);
        let y = inverse_normal_cdf(1.0 - p).unwrap();
        prop_assert!((x + y).abs() < 1e-6 * (1.0 + x.abs()));
        let bigger = inverse_normal_cdf((p + 1e-4).min(1.0 - 1e-7)).unwrap();
        prop_assert!(bigger >= x);
    }

    #[test]
    fn suggestions_are_whole_packs_that_restore_the_position(
        rate in 0.0f64..50.0,
        sigma in 0.0f64..20.0,
        lead in 1.0f64..60.0,
        lead_sd in 0.0f64..10.0,
        service in 0.5f64..0.999,
        on_hand in 0i64..2000,
        on_order in 0i64..500,
        committed in 0i64..100,
        moq in 0i64..300,
        pack in 1i64..50,
        review in 0.0f64..60.0,
    ) {
        let f = flat(rate, sigma);
        let pol = OrderPolicy { min_order_qty: moq, pack_size: pack, review_days: review, ..policy() };
        let lt = LeadTime { mean_days: lead, sd_days: lead_sd };
        let p = plan(&f, Position { on_hand, on_order, committed }, &[], lt, service, &pol).unwrap();
        let r = p.reorder_point;
        prop_assert!(r.safety_stock >= 0.0 && r.units as f64 >= r.lead_time_demand - 1e-6);
        prop_assert!(r.units as f64 >= r.lead_time_demand + r.safety_stock - 1e-6);
        let higher = reorder_point(&f, lt, (service + 0.0005).min(MAX_SERVICE_LEVEL)).unwrap();
        prop_assert!(higher.units >= r.units);
        let q = p.suggested_quantity;
        prop_assert_eq!(q % pack, 0);
        if q > 0 {
            prop_assert!(q >= moq);
            prop_assert!(p.inventory_position + q >= p.order_up_to);
            prop_assert!(p.inventory_position <= r.units);
        } else {
            prop_assert!(p.inventory_position > r.units || p.order_up_to <= p.inventory_position);
        }
        // Without receipts, the stock-out day is where the cover ends.
        if let (Some(c), Some(d)) = (p.days_of_cover, p.projected_stockout) {
            prop_assert!((d - f.first_day).num_days() == c.floor() as i64 || (c.fract() == 0.0 && (d - f.first_day).num_days() == c as i64));
        }
    }
}

//! Unit and property tests of purchase orders, transfers, counts, incoming, ABC classes and promise dates.

use super::*;
use proptest::prelude::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("valid")
}

fn po(quantities: &[i64], tolerance_percent: u32) -> PurchaseOrder {
    PurchaseOrder {
        supplier_id: 1,
        warehouse: 10,
        currency: "EUR".into(),
        status: PoStatus::Ordered,
        tolerance_percent,
        lines: quantities
            .iter()
            .enumerate()
            .map(|(i, q)| PoLine {
                sku: format!("S{i}"),
                item: i as ItemId + 1,
                quantity: *q,
                unit_cost: Decimal::new(250, 2),
                expected_date: None,
                received: 0,
                closed: 0,
            })
            .collect(),
        receipts: vec![],
        notes: None,
    }
}

fn rl(line: usize, quantity: i64) -> ReceiveLine {
    ReceiveLine { line, quantity, bin: 100, location: "WH/B".into(), state: StockState::Available }
}

fn transfer(quantities: &[i64]) -> Transfer {
    Transfer {
        from_warehouse: 10,
        to_warehouse: 20,
        status: TransferStatus::Draft,
        expected_date: None,
        lines: quantities
            .iter()
            .enumerate()
            .map(|(i, q)| TransferLine {
                sku: format!("S{i}"),
                item: i as ItemId + 1,
                quantity: *q,
                from_bin: 11,
                from_location: "A/B".into(),
                shipped: 0,
                received: 0,
                damaged: 0,
                lost: 0,
            })
            .collect(),
    }
}

#[test]
fn receiving_in_two_parts_ends_received_and_keeps_unit_costs() {
    let mut o = po(&[10], 0);
    o.receive(&[rl(0, 4)], now(), None).unwrap();
    assert_eq!(o.status, PoStatus::PartiallyReceived);
    assert_eq!(o.incoming(), vec![(1, 6)]);
    o.receive(&[rl(0, 6)], now(), None).unwrap();
    assert_eq!(o.status, PoStatus::Received);
    assert!(o.incoming().is_empty());
    assert_eq!(o.receipts.len(), 2);
    assert_eq!(o.receipts[1].number, 2);
    assert_eq!(o.receipts[0].lines[0].unit_cost, Decimal::new(250, 2));
}

#[test]
fn over_receipt_needs_a_tolerance_and_changes_nothing_when_refused() {
    let mut o = po(&[10], 0);
    let before = o.clone();
    assert_eq!(
        o.receive(&[rl(0, 11)], now(), None),
        Err(PurchasingError::OverReceipt { line: 0, allowed: 10, requested: 11 })
    );
    assert_eq!(o, before);
    let mut o = po(&[10], 10);
    o.receive(&[rl(0, 11)], now(), None).unwrap();
    assert_eq!(o.status, PoStatus::Received);
    assert_eq!(o.receivable(0), 0);
}

#[test]
fn cancelled_and_closed_orders_take_nothing() {
    let mut o = po(&[10], 0);
    o.receive(&[rl(0, 3)], now(), None).unwrap();
    assert!(o.cancel().is_err(), "something was received: close it short instead");
    o.close().unwrap();
    assert!(o.incoming().is_empty());
    assert!(matches!(o.receive(&[rl(0, 1)], now(), None), Err(PurchasingError::WrongStatus { .. })));
    let mut o = po(&[10], 0);
    o.cancel().unwrap();
    assert!(o.receive(&[rl(0, 1)], now(), None).is_err());
}

#[test]
fn a_transfer_loss_leaves_transit_and_incoming() {
    let mut t = transfer(&[5]);
    assert!(t.incoming().is_empty(), "a draft is not on its way");
    t.ship().unwrap();
    assert_eq!(t.incoming(), vec![(1, 5)]);
    t.receive(&[TransferArrival { line: 0, received: 3, damaged: 0, lost: 1 }]).unwrap();
    assert_eq!(t.status, TransferStatus::PartiallyReceived);
    assert_eq!(t.incoming(), vec![(1, 1)]);
    assert!(t.receive(&[TransferArrival { line: 0, received: 2, damaged: 0, lost: 0 }]).is_err());
    t.receive(&[TransferArrival { line: 0, received: 0, damaged: 1, lost: 0 }]).unwrap();
    assert_eq!(t.status, TransferStatus::Received);
}

#[test]
fn counts_approve_once_with_the_snapshot_difference() {
    let mut c = Count {
        status: CountStatus::Open,
        blind: true,
        lines: vec![CountLine {
            sku: "S".into(),
            item: 1,
            bin: 2,
            location: "W/B".into(),
            expected: 10,
            counted: None,
            unit_value: Decimal::ONE,
        }],
        snapshot_at: now(),
        approved_at: None,
        scope: None,
    };
    assert_eq!(c.approve(now()), Err(PurchasingError::NothingCounted));
    assert!(c.record(0, -1).is_err());
    c.record(0, 9).unwrap();
    assert_eq!(c.approve(now()).unwrap(), vec![(1, 2, -1)]);
    assert_eq!(c.approve(now()), Err(PurchasingError::AlreadyApproved));
}

#[test]
fn stock_found_off_the_snapshot_is_counted_from_zero_inside_the_scope_only() {
    let line = |item, bin, location: &str| CountLine {
        sku: format!("S{item}"),
        item,
        bin,
        location: location.into(),
        expected: 7,
        counted: Some(3),
        unit_value: Decimal::ONE,
    };
    let mut c = Count {
        status: CountStatus::Open,
        blind: false,
        lines: vec![line(1, 2, "W/B")],
        snapshot_at: now(),
        approved_at: None,
        scope: Some(CountScope { within: Some("W".into()), items: None }),
    };
    assert_eq!(c.found(line(1, 2, "W/B")), Ok(0), "a snapshot line is reused");
    assert_eq!(c.found(line(5, 3, "W/C")), Ok(1));
    assert_eq!((c.lines[1].expected, c.lines[1].counted), (0, None));
    assert!(matches!(c.found(line(5, 4, "WX/C")), Err(PurchasingError::OutsideCount { .. })), "WX is not under W");
    assert!(c.found(line(5, 4, "V/C")).is_err());
    c.record(1, 4).unwrap();
    assert_eq!(c.approve(now()).unwrap(), vec![(1, 2, -4), (5, 3, 4)]);
    assert_eq!(c.found(line(6, 3, "W/C")), Err(PurchasingError::AlreadyApproved));

    let items = CountScope { within: None, items: Some(vec![1]) };
    assert!(items.covers(1, "ANY/BIN") && !items.covers(2, "ANY/BIN"));
    let mut old = Count { scope: None, status: CountStatus::Open, ..c };
    assert!(old.found(line(1, 9, "W/D")).is_err(), "a count without a scope takes its snapshot lines only");
}

#[test]
fn abc_classes_follow_cumulative_value() {
    let values = vec![(1, Decimal::from(80)), (2, Decimal::from(15)), (3, Decimal::from(5)), (4, Decimal::ZERO)];
    let c = abc_classes(&values, Decimal::new(8, 1), Decimal::new(95, 2));
    assert_eq!(c[&1], AbcClass::A);
    assert_eq!(c[&2], AbcClass::B);
    assert_eq!(c[&3], AbcClass::C);
    assert_eq!(c[&4], AbcClass::C);
}

#[test]
fn promise_dates_are_first_come_first_served() {
    let d = |n| NaiveDate::from_ymd_opt(2030, 1, n);
    let dates = promise_dates(&[3, 3, 5], &[(d(20), 4), (d(10), 2)]);
    // 2 units arrive on the 10th and 4 on the 20th: the first order needs the 20th's too.
    assert_eq!(dates, vec![d(20), d(20), None]);
}

#[derive(Debug, Clone)]
enum PoOp {
    Receive(usize, i64),
    Close,
}

#[derive(Debug, Clone)]
enum TransferOp {
    Arrive(usize, i64, i64, i64),
}

proptest! {
    /// Incoming of a purchase order is always ordered − received − closed per line (never negative, zero once
    /// the order is no longer open), whatever sequence of receipts and closing is tried.
    #[test]
    fn incoming_of_a_purchase_order_matches_its_lines(
        quantities in prop::collection::vec(1i64..50, 1..4),
        tolerance in 0u32..30,
        ops in prop::collection::vec(prop_oneof![
            4 => (0usize..4, -2i64..40).prop_map(|(l, q)| PoOp::Receive(l, q)),
            1 => Just(PoOp::Close),
        ], 0..12),
    ) {
        let mut o = po(&quantities, tolerance);
        let mut received = vec![0i64; quantities.len()];
        let mut closed = false;
        for op in ops {
            match op {
                PoOp::Receive(line, q) => {
                    let allowed = if line < quantities.len() && !closed {
                        let limit = quantities[line] + quantities[line] * i64::from(tolerance) / 100;
                        limit - received[line]
                    } else { 0 };
                    let ok = o.receive(&[rl(line, q)], now(), None).is_ok();
                    prop_assert_eq!(ok, !closed && line < quantities.len() && q >= 1 && q <= allowed);
                    if ok {
                        received[line] += q;
                        // Every line in full: the order is received and takes no more receipts, even within
                        // the tolerance.
                        if received.iter().zip(&quantities).all(|(r, q)| r >= q) { closed = true; }
                    }
                }
                PoOp::Close => {
                    let was_open = o.status.is_open();
                    prop_assert_eq!(o.close().is_ok(), was_open);
                    if was_open { closed = true; }
                }
            }
            let incoming: i64 = o.incoming().iter().map(|(_, q)| q).sum();
            let expected: i64 = if o.status.is_open() {
                quantities.iter().zip(&received).map(|(q, r)| (q - r).max(0)).sum()
            } else { 0 };
            prop_assert_eq!(incoming, expected);
            for (l, r) in o.lines.iter().zip(&received) {
                prop_assert_eq!(l.received, *r);
                prop_assert!(l.open() >= 0);
            }
            let all_in = quantities.iter().zip(&received).all(|(q, r)| r >= q);
            if !closed && all_in { prop_assert_eq!(o.status, PoStatus::Received); }
        }
    }

    /// Units on a transfer are conserved: shipped = received + damaged + lost + in transit, in transit never goes
    /// negative, and incoming at the destination is exactly what is in transit.
    #[test]
    fn transit_of_a_transfer_is_conserved(
        quantities in prop::collection::vec(1i64..30, 1..4),
        ops in prop::collection::vec(
            (0usize..4, 0i64..12, 0i64..4, 0i64..4).prop_map(|(l, r, d, x)| TransferOp::Arrive(l, r, d, x)),
            0..12),
    ) {
        let mut t = transfer(&quantities);
        t.ship().unwrap();
        for TransferOp::Arrive(line, r, d, x) in ops {
            let before = t.clone();
            let in_transit = t.lines.get(line).map(|l| l.in_transit()).unwrap_or(0);
            let ok = t.receive(&[TransferArrival { line, received: r, damaged: d, lost: x }]).is_ok();
            prop_assert_eq!(ok, line < quantities.len() && r + d + x > 0 && r + d + x <= in_transit
                && before.status.is_open());
            if !ok { prop_assert_eq!(&t, &before); }
            for (l, q) in t.lines.iter().zip(&quantities) {
                prop_assert_eq!(l.shipped, *q);
                prop_assert!(l.in_transit() >= 0);
                prop_assert_eq!(l.received + l.damaged + l.lost + l.in_transit(), l.shipped);
            }
            let by_key = incoming(std::iter::empty(), [&t]);
            let total: i64 = by_key.values().sum();
            prop_assert_eq!(total, t.lines.iter().map(|l| l.in_transit()).sum::<i64>());
            prop_assert!(by_key.keys().all(|(_, w)| *w == t.to_warehouse));
            prop_assert_eq!(t.status == TransferStatus::Received, t.lines.iter().all(|l| l.in_transit() == 0));
        }
    }

    /// Promise dates never promise more than the supplies hold: the backorders that get a date need together no
    /// more units than the supplies up to that date.
    #[test]
    fn promise_dates_never_overpromise(
        backorders in prop::collection::vec(0i64..20, 0..6),
        supplies in prop::collection::vec((1u32..28, 0i64..20), 0..5),
    ) {
        let supplies: Vec<(Option<NaiveDate>, i64)> =
            supplies.into_iter().map(|(d, q)| (NaiveDate::from_ymd_opt(2030, 1, d), q)).collect();
        let dates = promise_dates(&backorders, &supplies);
        prop_assert_eq!(dates.len(), backorders.len());
        let mut need = 0;
        for (b, d) in backorders.iter().zip(&dates) {
            need += b;
            if let Some(d) = d {
                let by_then: i64 = supplies.iter().filter(|(s, _)| s.is_some_and(|s| s <= *d)).map(|s| s.1).sum();
                prop_assert!(need <= by_then);
            }
        }
    }
}

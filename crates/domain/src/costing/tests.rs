//! Hand-computed FIFO and average examples (partial receipts, returns, rounding, bad input), and property tests:
//! value never negative and reconciled, FIFO and average agreeing when all units leave, batching-independence and
//! valuation as of a time equal to folding the prefix.

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;
use std::str::FromStr;

/// Decimal literals without a macro crate: `d("12.5")`.
fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

fn receipt(id: MovementId, quantity: i64, unit_cost: &str, landed: &str) -> CostMovement {
    CostMovement {
        id,
        at: at(id),
        kind: CostMovementKind::Receipt {
            quantity,
            unit_cost: d(unit_cost),
            landed_cost: d(landed),
            currency: "EUR".into(),
        },
    }
}
fn out(id: MovementId, quantity: i64, reason: OutboundReason) -> CostMovement {
    CostMovement { id, at: at(id), kind: CostMovementKind::Outbound { quantity, reason } }
}
fn ship(id: MovementId, quantity: i64) -> CostMovement {
    out(id, quantity, OutboundReason::Shipment)
}
fn ret(id: MovementId, quantity: i64, shipment: MovementId) -> CostMovement {
    CostMovement { id, at: at(id), kind: CostMovementKind::ReturnRestocked { quantity, shipment } }
}
fn adj_in(id: MovementId, quantity: i64) -> CostMovement {
    CostMovement { id, at: at(id), kind: CostMovementKind::AdjustmentIn { quantity, unit_cost: None, currency: None } }
}

fn check_reconciles(l: &CostLedger) {
    let (i, o) = l.totals();
    assert_eq!(l.on_hand().value, i - o);
    assert!(l.layers().all(|x| x.value >= Decimal::ZERO && x.quantity > 0));
}

#[test]
fn fifo_hand_computed_with_partial_receipts_and_a_return() {
    let mut l = CostLedger::new(CostMethod::Fifo, "EUR").unwrap();
    // Two partial receipts of one purchase order line, at different costs.
    l.apply(&receipt(1, 10, "5.00", "0")).unwrap();
    l.apply(&receipt(2, 10, "6.00", "0")).unwrap();
    // 10 × 5 + 5 × 6 = 80.
    let s = l.apply(&ship(3, 15)).unwrap();
    assert_eq!((s.kind, s.value), (CostedKind::Shipment, d("80")));
    assert_eq!(l.on_hand(), Valuation { quantity: 5, value: d("30"), currency: "EUR".into() });
    // A third of the shipment comes back at a third of its cost: 80 / 3 = 26.6667.
    let r = l.apply(&ret(4, 5, 3)).unwrap();
    assert_eq!(r.value, d("26.6667"));
    // The remaining 10 returnable units keep the rest exactly: 53.3333.
    assert_eq!(l.apply(&ret(5, 10, 3)).unwrap().value, d("53.3333"));
    assert!(matches!(l.apply(&ret(6, 1, 3)), Err(CostError::ReturnExceedsShipment { returnable: 0, .. })));
    // FIFO: the 5 left at 6.00 go first, then the first return layer.
    assert_eq!(l.apply(&ship(7, 10)).unwrap().value, d("56.6667"));
    assert_eq!(l.apply(&out(8, 10, OutboundReason::Scrap)).unwrap().value, d("53.3333"));
    assert_eq!(l.on_hand().quantity, 0);
    assert_eq!(l.on_hand().value, Decimal::ZERO);
    check_reconciles(&l);
}

#[test]
fn average_hand_computed() {
    let mut l = CostLedger::new(CostMethod::Average, "EUR").unwrap();
    l.apply(&receipt(1, 10, "5.00", "0")).unwrap();
    l.apply(&receipt(2, 10, "6.00", "0")).unwrap();
    // Pool 20 units / 110: 15 units take 82.5.
    assert_eq!(l.apply(&ship(3, 15)).unwrap().value, d("82.5"));
    l.apply(&receipt(4, 5, "7.00", "0")).unwrap(); // pool 10 / 62.5
    assert_eq!(l.current_unit_cost(), Some(d("6.25")));
    assert_eq!(l.apply(&out(5, 3, OutboundReason::Shrinkage)).unwrap().value, d("18.75"));
    // Found units take the running average 43.75 / 7 = 6.25.
    assert_eq!(l.apply(&adj_in(6, 2)).unwrap().value, d("12.5"));
    // The return takes back what the shipment cost (5.50 each), not today's average.
    assert_eq!(l.apply(&ret(7, 2, 3)).unwrap().value, d("11"));
    assert_eq!(l.on_hand(), Valuation { quantity: 11, value: d("67.25"), currency: "EUR".into() });
    check_reconciles(&l);
}

#[test]
fn average_rounding_stays_in_the_pool_and_leaves_with_the_last_unit() {
    let mut l = CostLedger::new(CostMethod::Average, "EUR").unwrap();
    l.apply(&receipt(1, 3, "1.00", "0")).unwrap();
    l.apply(&receipt(2, 1, "0.01", "0")).unwrap(); // 4 units / 3.01
    assert_eq!(l.apply(&ship(3, 1)).unwrap().value, d("0.7525"));
    assert_eq!(l.apply(&ship(4, 1)).unwrap().value, d("0.7525"));
    assert_eq!(l.apply(&ship(5, 1)).unwrap().value, d("0.7525"));
    assert_eq!(l.apply(&ship(6, 1)).unwrap().value, d("0.7525"));
    let mut l = CostLedger::new(CostMethod::Average, "EUR").unwrap();
    l.apply(&receipt(1, 3, "0.0001", "0")).unwrap(); // 3 units / 0.0003
    l.apply(&receipt(2, 3, "0", "0.0001")).unwrap(); // 6 units / 0.0004
    let a = l.apply(&ship(3, 4)).unwrap().value; // 0.000267 → 0.0003
    let b = l.apply(&ship(4, 2)).unwrap().value; // the rest exactly
    assert_eq!((a, b), (d("0.0003"), d("0.0001")));
    check_reconciles(&l);
}

#[test]
fn landed_costs_are_part_of_the_layer() {
    let mut l = CostLedger::new(CostMethod::Fifo, "EUR").unwrap();
    let r = l.apply(&receipt(1, 4, "2.50", "1.20")).unwrap();
    assert_eq!((r.value, r.landed_value), (d("11.20"), d("1.20")));
    assert_eq!(l.apply(&ship(2, 1)).unwrap().value, d("2.8"));
}

#[test]
fn landed_cost_allocation_by_value_and_by_quantity() {
    let lines =
        [ReceiptLineCost { quantity: 10, unit_cost: d("10") }, ReceiptLineCost { quantity: 10, unit_cost: d("5") }];
    assert_eq!(allocate_landed_cost(&lines, d("10"), AllocationBasis::Value).unwrap(), vec![d("6.6667"), d("3.3333")]);
    assert_eq!(allocate_landed_cost(&lines, d("10"), AllocationBasis::Quantity).unwrap(), vec![d("5"), d("5")]);
    let three = [ReceiptLineCost { quantity: 1, unit_cost: d("1") }; 3];
    assert_eq!(
        allocate_landed_cost(&three, d("10"), AllocationBasis::Value).unwrap(),
        vec![d("3.3334"), d("3.3333"), d("3.3333")]
    );
    // Free lines fall back to quantity rather than dividing by zero.
    let free = [ReceiptLineCost { quantity: 1, unit_cost: d("0") }, ReceiptLineCost { quantity: 3, unit_cost: d("0") }];
    assert_eq!(allocate_landed_cost(&free, d("4"), AllocationBasis::Value).unwrap(), vec![d("1"), d("3")]);
    assert_eq!(allocate_landed_cost(&lines, d("-1"), AllocationBasis::Value), Err(CostError::NegativeCost));
    assert!(allocate_landed_cost(&[], d("1"), AllocationBasis::Value).is_err());
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    assert!(matches!(CostLedger::new(CostMethod::Fifo, "eur"), Err(CostError::BadCurrency(_))));
    let mut l = CostLedger::new(CostMethod::Fifo, "EUR").unwrap();
    assert_eq!(l.apply(&adj_in(1, 1)), Err(CostError::NoCurrentCost));
    assert_eq!(l.apply(&receipt(2, 1, "-0.01", "0")), Err(CostError::NegativeCost));
    assert_eq!(l.apply(&receipt(2, 1, "1", "-1")), Err(CostError::NegativeCost));
    let mut usd = receipt(2, 1, "1", "0");
    if let CostMovementKind::Receipt { currency, .. } = &mut usd.kind {
        *currency = "USD".into();
    }
    assert_eq!(l.apply(&usd), Err(CostError::CurrencyMismatch { given: "USD".into(), ledger: "EUR".into() }));
    assert_eq!(l.apply(&receipt(2, 0, "1", "0")), Err(CostError::NonPositiveQuantity));
    l.apply(&receipt(10, 2, "1", "0")).unwrap();
    let before = l.clone();
    assert_eq!(l.apply(&ship(11, 3)), Err(CostError::NotEnoughStock { on_hand: 2, requested: 3 }));
    assert_eq!(l.apply(&ship(5, 1)), Err(CostError::OutOfOrder { id: 5 }));
    assert_eq!(l.apply(&ret(12, 1, 10)), Err(CostError::UnknownShipment(10)));
    assert_eq!(l.apply(&receipt(10, 1, "1", "0")).unwrap_err(), CostError::DuplicateMovement(10));
    assert_eq!(l, before);
    // A batch with one bad movement keeps none of it.
    assert_eq!(l.apply_batch(&[ship(20, 1), ship(21, 5)]).unwrap_err().0, 1);
    assert_eq!(l, before);
}

#[test]
fn fifo_adjustment_in_takes_the_latest_cost_even_when_empty() {
    let mut l = CostLedger::new(CostMethod::Fifo, "EUR").unwrap();
    l.apply(&receipt(1, 1, "3", "0")).unwrap();
    l.apply(&receipt(2, 1, "4", "0")).unwrap();
    l.apply(&ship(3, 2)).unwrap();
    assert_eq!(l.apply(&adj_in(4, 2)).unwrap().value, d("8"));
}

#[test]
fn average_adjustment_in_takes_the_last_average_once_empty() {
    let mut l = CostLedger::new(CostMethod::Average, "EUR").unwrap();
    l.apply(&receipt(1, 1, "3", "0")).unwrap();
    l.apply(&receipt(2, 1, "4", "0")).unwrap();
    l.apply(&ship(3, 2)).unwrap();
    assert_eq!(l.current_unit_cost(), Some(d("3.5")));
    assert_eq!(l.apply(&adj_in(4, 2)).unwrap().value, d("7"));
}

#[test]
fn as_of_reads_the_history() {
    let mut l = CostLedger::new(CostMethod::Fifo, "EUR").unwrap();
    l.apply(&receipt(1, 10, "5", "0")).unwrap();
    l.apply(&ship(3, 4)).unwrap();
    assert_eq!(l.as_of(at(0)).quantity, 0);
    assert_eq!(l.as_of(at(2)), Valuation { quantity: 10, value: d("50"), currency: "EUR".into() });
    assert_eq!(l.as_of(at(3)).value, d("30"));
}

#[test]
fn a_book_keeps_one_ledger_per_item_and_warehouse() {
    let mut book = CostBook::default();
    let north = CostKey { item: 1, warehouse: Some(10) };
    let south = CostKey { item: 1, warehouse: Some(20) };
    book.apply(north, CostMethod::Fifo, "EUR", &receipt(1, 1, "5", "0")).unwrap();
    book.apply(south, CostMethod::Fifo, "EUR", &receipt(2, 1, "9", "0")).unwrap();
    // Each warehouse ships from its own layers.
    assert_eq!(book.apply(south, CostMethod::Fifo, "EUR", &ship(3, 1)).unwrap().value, d("9"));
    assert_eq!(
        book.apply(north, CostMethod::Average, "EUR", &ship(4, 1)),
        Err(CostError::MethodMismatch { given: CostMethod::Average, ledger: CostMethod::Fifo })
    );
    assert!(matches!(book.apply(north, CostMethod::Fifo, "USD", &ship(4, 1)), Err(CostError::CurrencyMismatch { .. })));
    // A failed first movement creates no ledger.
    let east = CostKey { item: 1, warehouse: Some(30) };
    assert!(book.apply(east, CostMethod::Fifo, "EUR", &ship(5, 1)).is_err());
    assert!(book.ledger(east).is_none());
    let v = book.valuation_as_of(at(10));
    assert_eq!(
        v.iter().map(|(k, v)| (k.warehouse, v.value)).collect::<Vec<_>>(),
        vec![(Some(10), d("5")), (Some(20), d("0"))]
    );
}

/// Abstract steps, resolved against the quantities on hand so that every generated sequence is valid.
#[derive(Debug, Clone)]
enum Step {
    Receive { quantity: i64, cents: i64, landed_cents: i64 },
    Found { quantity: i64 },
    Leave { per_mille: i64, reason: u8 },
    Return { pick: usize, per_mille: i64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1i64..50, 0i64..10_000, 0i64..500)
            .prop_map(|(quantity, cents, landed_cents)| Step::Receive { quantity, cents, landed_cents }),
        1 => (1i64..10).prop_map(|quantity| Step::Found { quantity }),
        3 => (1i64..=1000, 0u8..3).prop_map(|(per_mille, reason)| Step::Leave { per_mille, reason }),
        1 => (0usize..100, 1i64..=1000).prop_map(|(pick, per_mille)| Step::Return { pick, per_mille }),
    ]
}

/// Turns steps into concrete movements, ending with everything leaving when `drain` is set.
fn movements(steps: &[Step], returns: bool, drain: bool) -> Vec<CostMovement> {
    let mut on_hand = 0i64;
    let mut shipped: Vec<(MovementId, i64)> = Vec::new();
    let mut ever_received = false;
    let mut out_ = Vec::new();
    let mut id = 0;
    for s in steps {
        id += 1;
        let m = match *s {
            Step::Receive { quantity, cents, landed_cents } => {
                ever_received = true;
                on_hand += quantity;
                receipt(id, quantity, &format!("{}.{:02}", cents / 100, cents % 100), &format!("0.{landed_cents:04}"))
            }
            Step::Found { quantity } if ever_received => {
                on_hand += quantity;
                adj_in(id, quantity)
            }
            Step::Leave { per_mille, reason } if on_hand > 0 => {
                let q = (on_hand * per_mille / 1000).max(1);
                on_hand -= q;
                let reason =
                    [OutboundReason::Shipment, OutboundReason::Scrap, OutboundReason::Shrinkage][reason as usize];
                if reason == OutboundReason::Shipment {
                    shipped.push((id, q));
                }
                out(id, q, reason)
            }
            Step::Return { pick, per_mille } if returns && !shipped.is_empty() => {
                let i = pick % shipped.len();
                let q = (shipped[i].1 * per_mille / 1000).max(1).min(shipped[i].1);
                shipped[i].1 -= q;
                let sid = shipped[i].0;
                if shipped[i].1 == 0 {
                    shipped.remove(i);
                }
                on_hand += q;
                ret(id, q, sid)
            }
            _ => continue,
        };
        out_.push(m);
    }
    if drain && on_hand > 0 {
        out_.push(ship(id + 1, on_hand));
    }
    out_
}

fn fold(method: CostMethod, ms: &[CostMovement]) -> CostLedger {
    let mut l = CostLedger::new(method, "EUR").unwrap();
    for m in ms {
        l.apply(m).unwrap();
    }
    l
}

proptest! {
    #[test]
    fn value_is_never_negative_and_always_reconciles(steps in prop::collection::vec(step(), 0..60), fifo: bool) {
        let method = if fifo { CostMethod::Fifo } else { CostMethod::Average };
        let mut l = CostLedger::new(method, "EUR").unwrap();
        for m in movements(&steps, true, false) {
            let c = l.apply(&m).unwrap();
            prop_assert!(c.value >= Decimal::ZERO);
            prop_assert!(c.value_after >= Decimal::ZERO);
            let (i, o) = l.totals();
            prop_assert_eq!(l.on_hand().value, i - o);
            prop_assert!(l.layers().all(|x| x.value >= Decimal::ZERO));
        }
        if l.on_hand().quantity == 0 {
            prop_assert_eq!(l.on_hand().value, Decimal::ZERO);
        }
    }

    #[test]
    fn fifo_and_average_agree_on_totals_when_everything_leaves(steps in prop::collection::vec(step(), 0..60)) {
        // Without found units or returns, which take method-dependent costs, the same receipts go in either way.
        let steps: Vec<Step> = steps.into_iter().filter(|s| !matches!(s, Step::Found { .. })).collect();
        let ms = movements(&steps, false, true);
        let f = fold(CostMethod::Fifo, &ms);
        let a = fold(CostMethod::Average, &ms);
        prop_assert_eq!(f.on_hand().quantity, 0);
        prop_assert_eq!(f.totals(), a.totals());
        prop_assert_eq!(f.totals().0, f.totals().1);
        prop_assert_eq!(a.on_hand().value, Decimal::ZERO);
    }

    #[test]
    fn batching_does_not_change_the_result(
        steps in prop::collection::vec(step(), 0..60),
        cuts in prop::collection::vec(1usize..8, 0..20),
        fifo: bool,
    ) {
        let method = if fifo { CostMethod::Fifo } else { CostMethod::Average };
        let ms = movements(&steps, true, false);
        let one_by_one = fold(method, &ms);
        let mut batched = CostLedger::new(method, "EUR").unwrap();
        let mut rest = &ms[..];
        let mut cuts = cuts.into_iter().cycle();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            batched.apply_batch(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
        prop_assert_eq!(batched, one_by_one);
    }

    #[test]
    fn valuation_as_of_is_the_fold_of_the_prefix(steps in prop::collection::vec(step(), 0..60), t in 0i64..70, fifo: bool) {
        let method = if fifo { CostMethod::Fifo } else { CostMethod::Average };
        let ms = movements(&steps, true, false);
        let l = fold(method, &ms);
        let prefix: Vec<CostMovement> = ms.iter().filter(|m| m.at <= at(t)).cloned().collect();
        prop_assert_eq!(l.as_of(at(t)), fold(method, &prefix).on_hand());
        prop_assert_eq!(l.as_of(at(t)), valuation_as_of(method, "EUR", &ms, at(t)).unwrap());
    }

    #[test]
    fn allocation_adds_up_exactly(
        lines in prop::collection::vec((1i64..100, 0i64..10_000), 1..10),
        total_cents in 0i64..1_000_000,
        by_value: bool,
    ) {
        let lines: Vec<ReceiptLineCost> =
            lines.into_iter().map(|(q, c)| ReceiptLineCost { quantity: q, unit_cost: Decimal::new(c, 2) }).collect();
        let total = Decimal::new(total_cents, 2);
        let basis = if by_value { AllocationBasis::Value } else { AllocationBasis::Quantity };
        let shares = allocate_landed_cost(&lines, total, basis).unwrap();
        prop_assert_eq!(shares.iter().copied().sum::<Decimal>(), total);
        prop_assert!(shares.iter().all(|s| *s >= Decimal::ZERO));
    }
}

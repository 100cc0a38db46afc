//! Unit tests of the ledger rules, and property tests of random command sequences against a reference model.

use super::*;
use proptest::prelude::*;

const SUPPLIER: LocationId = 1;
const ADJ: LocationId = 3;
const BIN_A: LocationId = 10;
const BIN_B: LocationId = 11;

fn adjust(item: ItemId, location: LocationId, state: StockState, change: Change) -> AdjustLine {
    AdjustLine { item, location, state, change, source: SUPPLIER, sink: ADJ }
}

#[test]
fn receiving_then_moving_keeps_on_hand() {
    let mut b = Balances::new();
    apply(&LedgerOp::Adjust(vec![adjust(1, BIN_A, StockState::Available, Change::Delta(10))]), &mut b).unwrap();
    let ms = apply(
        &LedgerOp::Move(vec![MoveLine {
            item: 1,
            quantity: 4,
            from_location: BIN_A,
            from_state: StockState::Available,
            to_location: BIN_B,
            to_state: StockState::Damaged,
        }]),
        &mut b,
    )
    .unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(b[&(1, BIN_A)].available, 6);
    assert_eq!(b[&(1, BIN_B)].damaged, 4);
    assert_eq!(b[&(1, BIN_B)].on_hand(), 4);
}

#[test]
fn a_failing_line_leaves_everything_untouched() {
    let mut b = Balances::new();
    apply(&LedgerOp::Adjust(vec![adjust(1, BIN_A, StockState::Available, Change::Delta(5))]), &mut b).unwrap();
    let before = b.clone();
    let err = apply(
        &LedgerOp::Adjust(vec![
            adjust(1, BIN_A, StockState::Available, Change::Delta(-3)),
            adjust(1, BIN_A, StockState::Available, Change::Delta(-3)),
        ]),
        &mut b,
    )
    .unwrap_err();
    assert_eq!(
        err,
        LedgerError::InsufficientStock {
            line: 1,
            item: 1,
            location: BIN_A,
            state: StockState::Available,
            on_hand_in_state: 2,
            requested: 3
        }
    );
    assert_eq!(b, before);
}

#[test]
fn set_uses_compare_and_set_on_on_hand() {
    let mut b = Balances::new();
    apply(&LedgerOp::Adjust(vec![adjust(1, BIN_A, StockState::Damaged, Change::Delta(2))]), &mut b).unwrap();
    let stale = apply(
        &LedgerOp::Adjust(vec![adjust(
            1,
            BIN_A,
            StockState::Available,
            Change::Set { quantity: 7, expected_on_hand: Some(0) },
        )]),
        &mut b,
    );
    assert!(matches!(stale, Err(LedgerError::StaleExpectedOnHand { expected: 0, actual: 2, .. })));
    let ms = apply(
        &LedgerOp::Adjust(vec![adjust(
            1,
            BIN_A,
            StockState::Available,
            Change::Set { quantity: 7, expected_on_hand: Some(2) },
        )]),
        &mut b,
    )
    .unwrap();
    assert_eq!(ms[0].quantity, 7);
    assert_eq!(b[&(1, BIN_A)].on_hand(), 9);
    // Setting to the current value books nothing.
    let none = apply(
        &LedgerOp::Adjust(vec![adjust(
            1,
            BIN_A,
            StockState::Available,
            Change::Set { quantity: 7, expected_on_hand: None },
        )]),
        &mut b,
    )
    .unwrap();
    assert!(none.is_empty());
}

#[test]
fn zero_or_oversized_quantities_are_refused() {
    let mut b = Balances::new();
    assert!(matches!(
        apply(&LedgerOp::Adjust(vec![adjust(1, BIN_A, StockState::Available, Change::Delta(0))]), &mut b),
        Err(LedgerError::InvalidLine { field: "delta", .. })
    ));
    let mv = |q| {
        LedgerOp::Move(vec![MoveLine {
            item: 1,
            quantity: q,
            from_location: BIN_A,
            from_state: StockState::Available,
            to_location: BIN_B,
            to_state: StockState::Available,
        }])
    };
    assert!(matches!(apply(&mv(0), &mut b), Err(LedgerError::InvalidLine { field: "quantity", .. })));
    assert!(matches!(apply(&mv(-2), &mut b), Err(LedgerError::InvalidLine { field: "quantity", .. })));
    assert!(matches!(apply(&LedgerOp::Move(vec![]), &mut b), Err(LedgerError::LineCount)));
}

#[test]
fn adjustment_counterparts_follow_the_reason() {
    assert_eq!(Reason::Received.counterpart(true), VirtualKind::Supplier);
    assert_eq!(Reason::Shrinkage.counterpart(false), VirtualKind::Scrap);
    assert_eq!(Reason::Correction.counterpart(false), VirtualKind::Adjustment);
    for r in Reason::ALL {
        assert_eq!(r.as_str().parse::<Reason>().unwrap(), r);
    }
    for s in StockState::ALL {
        assert_eq!(s.as_str().parse::<StockState>().unwrap(), s);
    }
}

// ---- property tests -------------------------------------------------------------------------------------------

const ITEMS: i64 = 3;
const BINS: [LocationId; 3] = [BIN_A, BIN_B, 12];
const STATES: [StockState; 5] = [
    StockState::Available,
    StockState::Damaged,
    StockState::QualityControl,
    StockState::SafetyStock,
    StockState::Incoming,
];

fn arb_state() -> impl Strategy<Value = StockState> {
    proptest::sample::select(STATES.to_vec())
}

/// Mostly small amounts, so that commands interact, plus the edges of what a line may carry and beyond.
fn arb_amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => -20i64..=20,
        1 => proptest::sample::select(vec![
            i64::MIN,
            i64::MIN + 1,
            -MAX_LINE_QUANTITY - 1,
            -MAX_LINE_QUANTITY,
            MAX_LINE_QUANTITY,
            MAX_LINE_QUANTITY + 1,
            i64::MAX,
        ]),
    ]
}

fn arb_adjust_line() -> impl Strategy<Value = AdjustLine> {
    (
        1..=ITEMS,
        proptest::sample::select(BINS.to_vec()),
        arb_state(),
        arb_amount(),
        proptest::option::of(0i64..30),
        any::<bool>(),
    )
        .prop_map(|(item, location, state, n, expected, is_set)| AdjustLine {
            item,
            location,
            state,
            change: if is_set {
                Change::Set { quantity: n.saturating_abs(), expected_on_hand: expected }
            } else {
                Change::Delta(n)
            },
            source: SUPPLIER,
            sink: ADJ,
        })
}

fn arb_move_line() -> impl Strategy<Value = MoveLine> {
    (
        1..=ITEMS,
        prop_oneof![8 => 0i64..15, 1 => proptest::sample::select(vec![i64::MIN, -1, MAX_LINE_QUANTITY + 1, i64::MAX])],
        proptest::sample::select(BINS.to_vec()),
        arb_state(),
        proptest::sample::select(BINS.to_vec()),
        arb_state(),
    )
        .prop_map(|(item, quantity, from_location, from_state, to_location, to_state)| MoveLine {
            item,
            quantity,
            from_location,
            from_state,
            to_location,
            to_state,
        })
}

fn arb_op() -> impl Strategy<Value = LedgerOp> {
    prop_oneof![
        proptest::collection::vec(arb_adjust_line(), 0..4).prop_map(LedgerOp::Adjust),
        proptest::collection::vec(arb_move_line(), 0..4).prop_map(LedgerOp::Move),
    ]
}

/// The simplest possible model: a map of (item, location, state) → quantity, and a command either fits
/// completely or is refused.
fn model_apply(model: &mut HashMap<(ItemId, LocationId, StockState), i64>, op: &LedgerOp) -> bool {
    let mut next = model.clone();
    let ok = match op {
        LedgerOp::Adjust(lines) if !lines.is_empty() => lines.iter().all(|l| {
            let on_hand: i64 = STATES
                .iter()
                .filter(|s| s.is_on_hand())
                .map(|s| next.get(&(l.item, l.location, *s)).copied().unwrap_or(0))
                .sum();
            let cur = next.entry((l.item, l.location, l.state)).or_insert(0);
            match l.change {
                Change::Delta(d) => {
                    if d == 0 || !(-MAX_LINE_QUANTITY..=MAX_LINE_QUANTITY).contains(&d) || *cur + d < 0 {
                        return false;
                    }
                    *cur += d;
                    true
                }
                Change::Set { quantity, expected_on_hand } => {
                    if quantity > MAX_LINE_QUANTITY || expected_on_hand.is_some_and(|e| e != on_hand) {
                        return false;
                    }
                    *cur = quantity;
                    true
                }
            }
        }),
        LedgerOp::Move(lines) if !lines.is_empty() => lines.iter().all(|l| {
            if !(1..=MAX_LINE_QUANTITY).contains(&l.quantity)
                || (l.from_location == l.to_location && l.from_state == l.to_state)
            {
                return false;
            }
            let from = next.entry((l.item, l.from_location, l.from_state)).or_insert(0);
            if *from < l.quantity {
                return false;
            }
            *from -= l.quantity;
            *next.entry((l.item, l.to_location, l.to_state)).or_insert(0) += l.quantity;
            true
        }),
        _ => false,
    };
    if ok {
        *model = next;
    }
    ok
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_sequences_keep_every_invariant(ops in proptest::collection::vec(arb_op(), 1..60)) {
        let mut balances = Balances::new();
        let mut model = HashMap::new();
        let mut ledger: Vec<Movement> = Vec::new();
        for op in &ops {
            let before = balances.clone();
            let result = apply(op, &mut balances);
            let accepted = model_apply(&mut model, op);
            prop_assert_eq!(result.is_ok(), accepted, "domain and model disagree on {:?}", op);
            match result {
                Ok(ms) => {
                    for m in &ms {
                        prop_assert!(m.quantity > 0);
                    }
                    ledger.extend(ms);
                }
                Err(_) => prop_assert_eq!(&balances, &before),
            }
            // Every state stays non-negative, and on_hand is exactly what the model holds at that place, incoming
            // excluded.
            for ((item, loc), b) in &balances {
                prop_assert!(b.is_valid());
                let model_on_hand: i64 = model
                    .iter()
                    .filter(|((i, l, s), _)| i == item && l == loc && s.is_on_hand())
                    .map(|(_, q)| *q)
                    .sum();
                prop_assert_eq!(b.on_hand(), model_on_hand);
            }
            // Folding the ledger gives the stored balances.
            let folded = fold(&ledger);
            for (k, b) in &balances {
                prop_assert_eq!(folded.get(k).copied().unwrap_or_default(), *b);
            }
            for (k, b) in &folded {
                prop_assert_eq!(balances.get(k).copied().unwrap_or_default(), *b);
            }
            // And the model agrees state by state.
            for ((item, loc, state), q) in &model {
                prop_assert_eq!(balances.get(&(*item, *loc)).copied().unwrap_or_default().get(*state), *q);
            }
        }
    }
}

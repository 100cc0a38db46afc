//! Unit tests of allocation and hold rules, and property tests against brute-force reference computations.

use super::*;
use crate::stock::{apply, Balance, Balances};
use proptest::prelude::*;

use InventoryPolicy::{Backorder, Continue, Deny};

const WH1: LocationId = 100;
const WH2: LocationId = 200;
const WH3: LocationId = 300;

fn bin(bin: LocationId, pick_sequence: Option<i64>, available: i64) -> BinStock {
    BinStock { bin, pick_sequence, available }
}

fn wh(warehouse: LocationId, bins: Vec<BinStock>) -> WarehouseStock {
    WarehouseStock { warehouse, bins }
}

fn line(item: ItemId, quantity: i64, policy: InventoryPolicy) -> DemandLine {
    DemandLine { item, quantity, policy }
}

fn stock_of(entries: Vec<(ItemId, Vec<WarehouseStock>)>) -> HashMap<ItemId, Vec<WarehouseStock>> {
    entries.into_iter().collect()
}

/// The picks of one line as (warehouse, bin, quantity), easy to compare.
fn picks(a: &Allocation, line: usize) -> Vec<(LocationId, LocationId, i64)> {
    a.lines[line].picks.iter().map(|p| (p.warehouse, p.bin, p.quantity)).collect()
}

// ----- warehouse choice -----

#[test]
fn one_warehouse_covering_the_whole_order_wins_over_priority() {
    // WH1 comes first and covers item 1, but only WH2 covers both lines, so the order ships from WH2 alone.
    let stock = stock_of(vec![
        (1, vec![wh(WH1, vec![bin(101, Some(1), 10)]), wh(WH2, vec![bin(201, Some(1), 10)])]),
        (2, vec![wh(WH1, vec![bin(102, Some(1), 1)]), wh(WH2, vec![bin(202, Some(1), 5)])]),
    ]);
    let a = allocate(&[line(1, 3, Deny), line(2, 4, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH2, 201, 3)]);
    assert_eq!(picks(&a, 1), vec![(WH2, 202, 4)]);
}

#[test]
fn the_first_covering_warehouse_in_priority_order_wins() {
    let stock = stock_of(vec![(
        1,
        vec![
            wh(WH1, vec![bin(101, Some(1), 2)]),
            wh(WH2, vec![bin(201, Some(1), 9)]),
            wh(WH3, vec![bin(301, None, 9)]),
        ],
    )]);
    let a = allocate(&[line(1, 5, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH2, 201, 5)]);
}

#[test]
fn same_item_lines_count_together_for_the_whole_order_warehouse() {
    // Each line alone fits WH1 (4 units), both together do not; WH2 has 8, so both lines go there.
    let stock = stock_of(vec![(1, vec![wh(WH1, vec![bin(101, Some(1), 4)]), wh(WH2, vec![bin(201, Some(1), 8)])])]);
    let a = allocate(&[line(1, 3, Deny), line(1, 3, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH2, 201, 3)]);
    assert_eq!(picks(&a, 1), vec![(WH2, 201, 3)]);
}

#[test]
fn without_a_whole_order_warehouse_lines_go_to_the_first_covering_one_and_split_only_when_needed() {
    let stock = stock_of(vec![
        (1, vec![wh(WH1, vec![bin(101, Some(1), 5)]), wh(WH2, vec![bin(201, Some(1), 0)])]),
        (2, vec![wh(WH1, vec![bin(102, Some(1), 0)]), wh(WH2, vec![bin(202, Some(1), 5)])]),
        (3, vec![wh(WH1, vec![bin(103, Some(1), 4)]), wh(WH2, vec![bin(203, Some(1), 4)])]),
        (4, vec![wh(WH1, vec![bin(104, Some(1), 2)]), wh(WH2, vec![bin(204, Some(1), 9)])]),
    ]);
    let order = [line(1, 5, Deny), line(2, 5, Deny), line(3, 6, Deny), line(4, 3, Deny)];
    let a = allocate(&order, &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH1, 101, 5)], "only WH1 has item 1");
    assert_eq!(picks(&a, 1), vec![(WH2, 202, 5)], "only WH2 has item 2");
    assert_eq!(picks(&a, 2), vec![(WH1, 103, 4), (WH2, 203, 2)], "no warehouse covers 6 alone: split by priority");
    assert_eq!(picks(&a, 3), vec![(WH2, 204, 3)], "WH2 covers it alone, so WH1's 2 units are not split off");
}

#[test]
fn a_split_follows_priority_order_and_skips_empty_warehouses() {
    let stock = stock_of(vec![
        (
            1,
            vec![
                wh(WH1, vec![bin(101, Some(1), 0)]),
                wh(WH2, vec![bin(201, Some(1), 3)]),
                wh(WH3, vec![bin(301, Some(1), 3)]),
            ],
        ),
        (2, vec![wh(WH1, vec![bin(102, Some(1), 1)]), wh(WH2, vec![]), wh(WH3, vec![])]),
    ]);
    let a = allocate(&[line(1, 5, Deny), line(2, 1, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH2, 201, 3), (WH3, 301, 2)]);
    assert_eq!(picks(&a, 1), vec![(WH1, 102, 1)]);
}

// ----- bin choice -----

#[test]
fn one_covering_bin_beats_several_bins_earlier_in_pick_order() {
    let stock = stock_of(vec![(
        1,
        vec![wh(WH1, vec![bin(101, Some(1), 3), bin(102, Some(2), 3), bin(103, Some(9), 6), bin(104, Some(5), 5)])],
    )]);
    let a = allocate(&[line(1, 6, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH1, 103, 6)], "the only single bin that covers 6");
}

#[test]
fn among_covering_bins_the_lowest_pick_sequence_wins_with_none_last_then_bin_id() {
    let bins = vec![bin(101, None, 9), bin(102, Some(7), 9), bin(104, Some(3), 9), bin(103, Some(3), 9)];
    let stock = stock_of(vec![(1, vec![wh(WH1, bins)])]);
    let a = allocate(&[line(1, 4, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH1, 103, 4)], "sequence 3 ties between 103 and 104; the lower id wins");

    let stock = stock_of(vec![(1, vec![wh(WH1, vec![bin(101, None, 9), bin(109, Some(100), 9)])])]);
    let a = allocate(&[line(1, 4, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH1, 109, 4)], "a bin without a sequence comes after every sequenced bin");
}

#[test]
fn with_several_bins_needed_the_fewest_then_the_earliest_in_pick_order() {
    // Two bins are needed for 15. Largest-first would pick 102 and 103 (10 + 10); {101, 102} is as few bins and
    // earlier in the walk, and it is emptied in pick order.
    let stock = stock_of(vec![(
        1,
        vec![wh(WH1, vec![bin(101, Some(1), 5), bin(102, Some(2), 10), bin(103, Some(3), 10), bin(104, Some(0), 1)])],
    )]);
    let a = allocate(&[line(1, 15, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH1, 101, 5), (WH1, 102, 10)]);

    // For 16, {101, 102} no longer reaches; 101 cannot be in any two-bin set (5 + 10 < 16), so {102, 103}.
    let a = allocate(&[line(1, 16, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH1, 102, 10), (WH1, 103, 6)]);
}

#[test]
fn a_later_line_of_the_same_item_gets_what_the_earlier_left() {
    let stock = stock_of(vec![(1, vec![wh(WH1, vec![bin(101, Some(1), 4), bin(102, Some(2), 6)])])]);
    let a = allocate(&[line(1, 5, Deny), line(1, 5, Deny)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH1, 102, 5)], "one bin covers 5");
    assert_eq!(picks(&a, 1), vec![(WH1, 101, 4), (WH1, 102, 1)], "the rest: both bins, in pick order");
    assert_eq!(a.picked(), 10);
}

// ----- policies at zero -----

#[test]
fn deny_names_every_short_line_with_what_it_could_have_had() {
    let stock = stock_of(vec![
        (1, vec![wh(WH1, vec![bin(101, Some(1), 3)]), wh(WH2, vec![bin(201, Some(1), 2)])]),
        (2, vec![wh(WH1, vec![bin(102, Some(1), 10)]), wh(WH2, vec![])]),
        (3, vec![wh(WH1, vec![]), wh(WH2, vec![])]),
    ]);
    let order = [
        line(1, 4, Deny),     // fits: 5 over both warehouses
        line(2, 1, Deny),     // fits
        line(1, 4, Deny),     // short: only 1 left after line 0
        line(3, 2, Deny),     // short: none at all
        line(3, 2, Continue), // never short: it oversells
        line(1, 1, Deny),     // short: line 2 counted as taking the last unit
    ];
    let err = allocate(&order, &stock).unwrap_err();
    assert_eq!(
        err,
        AllocationError::Shortage(Shortage {
            lines: vec![
                ShortLine { line: 2, item: 1, requested: 4, available: 1 },
                ShortLine { line: 3, item: 3, requested: 2, available: 0 },
                ShortLine { line: 5, item: 1, requested: 1, available: 0 },
            ]
        })
    );
}

#[test]
fn continue_and_backorder_commit_what_there_is_and_record_the_rest() {
    let stock = stock_of(vec![
        (1, vec![wh(WH1, vec![bin(101, Some(1), 3)]), wh(WH2, vec![bin(201, Some(1), 1)])]),
        (2, vec![wh(WH1, vec![bin(102, Some(1), 2)]), wh(WH2, vec![])]),
        (3, vec![wh(WH1, vec![]), wh(WH2, vec![])]),
    ]);
    let a = allocate(&[line(1, 10, Continue), line(2, 5, Backorder), line(3, 2, Backorder)], &stock).unwrap();
    assert_eq!(picks(&a, 0), vec![(WH1, 101, 3), (WH2, 201, 1)]);
    assert_eq!((a.lines[0].oversold, a.lines[0].backordered), (6, 0));
    assert_eq!(picks(&a, 1), vec![(WH1, 102, 2)]);
    assert_eq!((a.lines[1].oversold, a.lines[1].backordered), (0, 3));
    assert_eq!(picks(&a, 2), vec![]);
    assert_eq!((a.lines[2].oversold, a.lines[2].backordered), (0, 2));
}

#[test]
fn nothing_picked_gives_no_ledger_op() {
    let stock = stock_of(vec![(1, vec![wh(WH1, vec![])])]);
    let a = allocate(&[line(1, 3, Backorder)], &stock).unwrap();
    assert_eq!(a.lines[0].backordered, 3);
    assert_eq!(a.to_ledger_op(), None);
}

#[test]
fn the_ledger_op_commits_in_the_picked_bins() {
    let stock = stock_of(vec![(1, vec![wh(WH1, vec![bin(101, Some(1), 2), bin(102, Some(2), 2)])])]);
    let a = allocate(&[line(1, 3, Continue)], &stock).unwrap();
    let mut b: Balances = [((1, 101), Balance { available: 2, ..Balance::default() })].into_iter().collect();
    b.insert((1, 102), Balance { available: 2, ..Balance::default() });
    apply(&a.to_ledger_op().unwrap(), &mut b).unwrap();
    assert_eq!((b[&(1, 101)].available, b[&(1, 101)].committed), (0, 2));
    assert_eq!((b[&(1, 102)].available, b[&(1, 102)].committed), (1, 1));
}

// ----- bad input -----

#[test]
fn quantities_must_be_between_one_and_the_line_maximum() {
    let stock = stock_of(vec![(1, vec![wh(WH1, vec![bin(101, Some(1), 5)])])]);
    for bad in [0, -1, MAX_LINE_QUANTITY + 1, i64::MIN] {
        assert_eq!(
            allocate(&[line(1, 1, Deny), line(1, bad, Deny)], &stock),
            Err(AllocationError::InvalidQuantity { line: 1 })
        );
    }
    let a = allocate(&[line(1, MAX_LINE_QUANTITY, Continue)], &stock).unwrap();
    assert_eq!(a.lines[0].oversold, MAX_LINE_QUANTITY - 5);
}

#[test]
fn empty_and_oversized_orders_are_refused() {
    let stock = stock_of(vec![(1, vec![wh(WH1, vec![bin(101, Some(1), 5)])])]);
    assert_eq!(allocate(&[], &stock), Err(AllocationError::NoLines));
    let many = vec![line(1, 1, Continue); MAX_ORDER_LINES + 1];
    assert_eq!(allocate(&many, &stock), Err(AllocationError::TooManyLines));
    assert!(allocate(&many[..MAX_ORDER_LINES], &stock).is_ok());
}

#[test]
fn no_warehouses_and_malformed_stock_are_refused() {
    let none = HashMap::new();
    assert_eq!(allocate(&[line(1, 1, Backorder)], &none), Err(AllocationError::NoWarehouses));
    let empty = stock_of(vec![(1, vec![])]);
    assert_eq!(allocate(&[line(1, 1, Backorder)], &empty), Err(AllocationError::NoWarehouses));

    let reason = |r: Result<Allocation, AllocationError>| match r {
        Err(AllocationError::InvalidStock { item, reason }) => (item, reason),
        other => panic!("expected InvalidStock, got {other:?}"),
    };
    // Item 2 is missing while item 1 names a warehouse.
    let missing = stock_of(vec![(1, vec![wh(WH1, vec![])])]);
    assert_eq!(reason(allocate(&[line(1, 1, Deny), line(2, 1, Deny)], &missing)).0, 2);
    // Warehouses in another order.
    let swapped =
        stock_of(vec![(1, vec![wh(WH1, vec![]), wh(WH2, vec![])]), (2, vec![wh(WH2, vec![]), wh(WH1, vec![])])]);
    assert_eq!(reason(allocate(&[line(1, 1, Deny), line(2, 1, Deny)], &swapped)).0, 2);
    let twice = stock_of(vec![(1, vec![wh(WH1, vec![]), wh(WH1, vec![])])]);
    assert_eq!(reason(allocate(&[line(1, 1, Deny)], &twice)), (1, "names a warehouse twice"));
    let bin_twice = stock_of(vec![(1, vec![wh(WH1, vec![bin(101, None, 1)]), wh(WH2, vec![bin(101, None, 1)])])]);
    assert_eq!(reason(allocate(&[line(1, 1, Deny)], &bin_twice)), (1, "names a bin twice"));
    let negative = stock_of(vec![(1, vec![wh(WH1, vec![bin(101, None, -1)])])]);
    assert_eq!(reason(allocate(&[line(1, 1, Deny)], &negative)), (1, "has a negative available quantity"));
}

// ----- holds -----

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

const MAX_TTL: TimeDelta = TimeDelta::minutes(60);

fn hold_lines() -> Vec<LineAllocation> {
    vec![LineAllocation {
        line: 0,
        item: 1,
        picks: vec![Pick { warehouse: WH1, bin: 101, quantity: 2 }, Pick { warehouse: WH1, bin: 102, quantity: 1 }],
        backordered: 0,
        oversold: 0,
    }]
}

fn hold_until(seconds: i64) -> Hold {
    Hold::new(hold_lines(), at(0), at(seconds), MAX_TTL).unwrap()
}

#[test]
fn a_new_hold_needs_a_future_expiry_within_the_maximum() {
    assert_eq!(Hold::new(hold_lines(), at(0), at(0), MAX_TTL), Err(HoldError::ExpiryNotInFuture));
    assert_eq!(Hold::new(hold_lines(), at(0), at(3601), MAX_TTL), Err(HoldError::TtlTooLong { max_ttl: MAX_TTL }));
    let h = Hold::new(hold_lines(), at(0), at(0) + DEFAULT_HOLD_TTL, MAX_TTL).unwrap();
    assert_eq!((h.status, h.expires_at), (HoldStatus::Active, at(900)));
    assert!(Hold::new(hold_lines(), at(0), at(3600), MAX_TTL).is_ok(), "exactly the maximum is allowed");
}

#[test]
fn a_hold_is_live_up_to_but_not_at_its_expiry() {
    let h = hold_until(900);
    assert!(h.is_live(at(0)));
    assert!(h.is_live(at(899)));
    assert!(!h.is_live(at(900)));
    assert!(!h.is_live(at(901)));
    let mut released = h.clone();
    released.release(at(1)).unwrap();
    assert!(!released.is_live(at(1)), "an ended hold never counts");
}

#[test]
fn extending_moves_the_expiry_later_within_the_maximum() {
    let mut h = hold_until(900);
    h.extend(at(600), at(1500), MAX_TTL).unwrap();
    assert_eq!(h.expires_at, at(1500));
    h.extend(at(700), at(1500), MAX_TTL).unwrap();
    assert_eq!(h.expires_at, at(1500), "the same expiry again is a no-op, so a retry does not fail");

    let before = h.clone();
    assert_eq!(h.extend(at(700), at(1400), MAX_TTL), Err(HoldError::WouldShorten { expires_at: at(1500) }));
    assert_eq!(h.extend(at(700), at(700 + 3601), MAX_TTL), Err(HoldError::TtlTooLong { max_ttl: MAX_TTL }));
    assert_eq!(h.extend(at(1500), at(2000), MAX_TTL), Err(HoldError::Expired { expires_at: at(1500) }));
    assert_eq!(h, before, "a refused extension changes nothing");
}

#[test]
fn release_and_convert_only_while_live_and_only_once() {
    let mut h = hold_until(900);
    h.release(at(899)).unwrap();
    assert_eq!(h.status, HoldStatus::Released);
    assert_eq!(h.release(at(899)), Err(HoldError::NotActive(HoldStatus::Released)));
    assert_eq!(h.convert(at(899)), Err(HoldError::NotActive(HoldStatus::Released)));
    assert_eq!(h.expire(at(1000)), Err(HoldError::NotActive(HoldStatus::Released)));

    let mut h = hold_until(900);
    h.convert(at(899)).unwrap();
    assert_eq!(h.status, HoldStatus::Converted);
    assert_eq!(h.convert(at(899)), Err(HoldError::NotActive(HoldStatus::Converted)));
    assert_eq!(h.release(at(899)), Err(HoldError::NotActive(HoldStatus::Converted)));

    let mut h = hold_until(900);
    assert_eq!(h.convert(at(900)), Err(HoldError::Expired { expires_at: at(900) }), "converting at expiry");
    assert_eq!(h.release(at(900)), Err(HoldError::Expired { expires_at: at(900) }));
    assert_eq!(h.status, HoldStatus::Active, "refusals change nothing");
}

#[test]
fn expire_only_when_the_time_is_up() {
    let mut h = hold_until(900);
    assert_eq!(h.expire(at(899)), Err(HoldError::NotDue { expires_at: at(900) }));
    h.expire(at(900)).unwrap();
    assert_eq!(h.status, HoldStatus::Expired);
    assert_eq!(h.expire(at(901)), Err(HoldError::NotActive(HoldStatus::Expired)));
    assert_eq!(h.convert(at(901)), Err(HoldError::NotActive(HoldStatus::Expired)));
}

#[test]
fn hold_ledger_ops_reserve_then_return_or_commit() {
    let h = hold_until(900);
    let start: Balances = [
        ((1, 101), Balance { available: 5, ..Balance::default() }),
        ((1, 102), Balance { available: 1, ..Balance::default() }),
    ]
    .into_iter()
    .collect();
    let mut b = start.clone();
    apply(&h.place_op().unwrap(), &mut b).unwrap();
    assert_eq!((b[&(1, 101)].available, b[&(1, 101)].reserved), (3, 2));
    assert_eq!((b[&(1, 102)].available, b[&(1, 102)].reserved), (0, 1));

    let mut released = b.clone();
    apply(&h.release_op().unwrap(), &mut released).unwrap();
    assert_eq!(released, start);

    apply(&h.convert_op().unwrap(), &mut b).unwrap();
    assert_eq!((b[&(1, 101)].reserved, b[&(1, 101)].committed), (0, 2));
    assert_eq!((b[&(1, 102)].reserved, b[&(1, 102)].committed), (0, 1));
    assert_eq!(b[&(1, 101)].on_hand() + b[&(1, 102)].on_hand(), 6);
}

// ----- property tests -----

const ITEMS: ItemId = 3;
const WAREHOUSES: [LocationId; 3] = [WH1, WH2, WH3];
const BINS_PER_WAREHOUSE: usize = 4;

type Stock = HashMap<ItemId, Vec<WarehouseStock>>;

/// Random stock: every item lists the same 1 to 3 warehouses; each warehouse has up to four bins, whose ids are
/// shared between items (a bin holds several items) and whose pick sequences often tie or are missing.
fn arb_stock() -> impl Strategy<Value = Stock> {
    let bins = proptest::collection::vec((proptest::option::of(0i64..4), 0i64..12), 0..=BINS_PER_WAREHOUSE);
    let per_item = proptest::collection::vec(bins, WAREHOUSES.len());
    (proptest::collection::vec(per_item, ITEMS as usize), 1..=WAREHOUSES.len()).prop_map(|(items, warehouses)| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, per_wh)| {
                let list = per_wh
                    .into_iter()
                    .zip(WAREHOUSES)
                    .take(warehouses)
                    .map(|(bins, w)| WarehouseStock {
                        warehouse: w,
                        bins: bins
                            .into_iter()
                            .enumerate()
                            .map(|(b, (pick_sequence, available))| BinStock {
                                // Ids descend where sequences may ascend, so id order and pick order differ.
                                bin: w + (BINS_PER_WAREHOUSE - b) as i64,
                                pick_sequence,
                                available,
                            })
                            .collect(),
                    })
                    .collect();
                (i as ItemId + 1, list)
            })
            .collect()
    })
}

fn arb_policy() -> impl Strategy<Value = InventoryPolicy> {
    prop_oneof![Just(Deny), Just(Continue), Just(Backorder)]
}

fn arb_lines() -> impl Strategy<Value = Vec<DemandLine>> {
    proptest::collection::vec(
        (1..=ITEMS, 1i64..=25, arb_policy()).prop_map(|(item, quantity, policy)| DemandLine { item, quantity, policy }),
        1..=6,
    )
}

/// Per line, the units no stock covers: per item, lines in order take what is left over all warehouses.
fn reference_shortfalls(lines: &[DemandLine], stock: &Stock) -> Vec<i64> {
    let mut left: HashMap<ItemId, i64> = stock
        .iter()
        .map(|(item, list)| (*item, list.iter().flat_map(|w| &w.bins).map(|b| b.available).sum()))
        .collect();
    lines
        .iter()
        .map(|l| {
            let have = left.entry(l.item).or_default();
            let got = (*have).min(l.quantity);
            *have -= got;
            l.quantity - got
        })
        .collect()
}

/// Brute force over every subset of a warehouse's bins: the fewest bins that cover `quantity`, then the subset
/// whose pick-order positions are lexicographically smallest, emptied in pick order. Returns (bin, units).
fn reference_bins(bins: &[BinLeftRef], quantity: i64) -> Vec<(LocationId, i64)> {
    let mut ordered: Vec<_> = bins.iter().copied().filter(|b| b.2 > 0).collect();
    ordered.sort_by_key(|&(bin, seq, _)| (seq.is_none(), seq, bin));
    let mut best: Option<Vec<usize>> = None;
    for mask in 0u32..(1 << ordered.len()) {
        let set: Vec<usize> = (0..ordered.len()).filter(|i| mask & (1 << i) != 0).collect();
        if set.iter().map(|&i| ordered[i].2).sum::<i64>() < quantity {
            continue;
        }
        let better = match &best {
            None => true,
            Some(b) => (set.len(), &set) < (b.len(), b),
        };
        if better {
            best = Some(set);
        }
    }
    let mut left = quantity;
    best.expect("the caller asks only for what the warehouse holds")
        .into_iter()
        .map(|i| {
            let take = left.min(ordered[i].2);
            left -= take;
            (ordered[i].0, take)
        })
        .collect()
}

fn balances_of(stock: &Stock) -> Balances {
    let mut b = Balances::new();
    for (item, list) in stock {
        for bs in list.iter().flat_map(|w| &w.bins) {
            // Some committed and reserved units already there, which allocation must leave alone.
            b.insert(
                (*item, bs.bin),
                Balance { available: bs.available, committed: 1, reserved: 2, ..Balance::default() },
            );
        }
    }
    b
}

/// A bin as the replay tracks it: (bin, pick_sequence, units left).
type BinLeftRef = (LocationId, Option<i64>, i64);

/// Replays an allocation against the stock, checking the warehouse and bin rules line by line.
fn check_rules(lines: &[DemandLine], stock: &Stock, a: &Allocation) -> Result<(), TestCaseError> {
    let warehouses: Vec<LocationId> = stock[&1].iter().map(|w| w.warehouse).collect();
    // (item, warehouse) -> bins as (bin, pick_sequence, left)
    let mut left: HashMap<(ItemId, LocationId), Vec<BinLeftRef>> = HashMap::new();
    for (item, list) in stock {
        for w in list {
            left.insert((*item, w.warehouse), w.bins.iter().map(|b| (b.bin, b.pick_sequence, b.available)).collect());
        }
    }
    let total = |left: &HashMap<_, Vec<BinLeftRef>>, item: ItemId, w: LocationId| -> i64 {
        left[&(item, w)].iter().map(|b| b.2).sum()
    };
    let mut demand: HashMap<ItemId, i64> = HashMap::new();
    for l in lines {
        *demand.entry(l.item).or_default() += l.quantity;
    }
    let whole = warehouses.iter().copied().find(|&w| demand.iter().all(|(&item, &q)| total(&left, item, w) >= q));

    for (l, la) in lines.iter().zip(&a.lines) {
        let mut by_wh: Vec<(LocationId, Vec<(LocationId, i64)>)> = Vec::new();
        for p in &la.picks {
            prop_assert!(p.quantity >= 1, "empty pick {p:?}");
            match by_wh.last_mut() {
                Some((w, ps)) if *w == p.warehouse => ps.push((p.bin, p.quantity)),
                _ => by_wh.push((p.warehouse, vec![(p.bin, p.quantity)])),
            }
        }
        let distinct: std::collections::HashSet<LocationId> = by_wh.iter().map(|(w, _)| *w).collect();
        prop_assert_eq!(distinct.len(), by_wh.len(), "a warehouse's picks of one line are contiguous");

        let expected_split: Vec<(LocationId, i64)> = if let Some(w) = whole {
            vec![(w, l.quantity)]
        } else if let Some(w) = warehouses.iter().copied().find(|&w| total(&left, l.item, w) >= l.quantity) {
            vec![(w, l.quantity)]
        } else {
            let mut need = l.quantity;
            let mut split = Vec::new();
            for &w in &warehouses {
                let here = need.min(total(&left, l.item, w));
                if here > 0 {
                    split.push((w, here));
                    need -= here;
                }
            }
            split
        };
        let actual_split: Vec<(LocationId, i64)> =
            by_wh.iter().map(|(w, ps)| (*w, ps.iter().map(|p| p.1).sum())).collect();
        prop_assert_eq!(&actual_split, &expected_split, "line {} warehouses", la.line);

        for (w, ps) in &by_wh {
            let bins = left.get_mut(&(l.item, *w)).unwrap();
            let expected = reference_bins(bins, ps.iter().map(|p| p.1).sum());
            prop_assert_eq!(ps, &expected, "line {} bins in warehouse {}", la.line, w);
            for (bin, q) in ps {
                let b = bins.iter_mut().find(|b| b.0 == *bin).unwrap();
                b.2 -= q;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn allocation_matches_the_reference_and_the_ledger(stock in arb_stock(), lines in arb_lines()) {
        let shortfalls = reference_shortfalls(&lines, &stock);
        let expected_short: Vec<ShortLine> = lines
            .iter()
            .zip(&shortfalls)
            .enumerate()
            .filter(|(_, (l, s))| l.policy == Deny && **s > 0)
            .map(|(i, (l, s))| ShortLine { line: i, item: l.item, requested: l.quantity, available: l.quantity - s })
            .collect();

        match allocate(&lines, &stock) {
            Err(AllocationError::Shortage(s)) => {
                // (c) a deny order fails naming exactly the reference's short lines.
                prop_assert!(!expected_short.is_empty());
                prop_assert_eq!(s.lines, expected_short);
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            Ok(a) => {
                prop_assert!(expected_short.is_empty(), "should have failed on {expected_short:?}");
                prop_assert_eq!(a.lines.len(), lines.len());
                // (a) every unit of every line is accounted for, by the line's own policy.
                for ((l, la), shortfall) in lines.iter().zip(&a.lines).zip(&shortfalls) {
                    prop_assert_eq!(la.item, l.item);
                    prop_assert_eq!(la.picked() + la.backordered + la.oversold, l.quantity);
                    prop_assert_eq!(la.backordered, if l.policy == Backorder { *shortfall } else { 0 });
                    prop_assert_eq!(la.oversold, if l.policy == Continue { *shortfall } else { 0 });
                }
                // (b) no bin gives more than it had, and picks name the bin's own warehouse.
                let mut taken: HashMap<(ItemId, LocationId), i64> = HashMap::new();
                for la in &a.lines {
                    for p in &la.picks {
                        let in_wh = stock[&la.item].iter().any(|w| w.warehouse == p.warehouse && w.bins.iter().any(|b| b.bin == p.bin));
                        prop_assert!(in_wh, "pick {p:?} names a bin outside its warehouse");
                        *taken.entry((la.item, p.bin)).or_default() += p.quantity;
                    }
                }
                for ((item, bin), q) in &taken {
                    let had = stock[item].iter().flat_map(|w| &w.bins).find(|b| b.bin == *bin).unwrap().available;
                    prop_assert!(*q <= had, "bin {bin} of item {item}: {q} taken, {had} there");
                }
                // The warehouse and bin rules, replayed line by line.
                check_rules(&lines, &stock, &a)?;
                // (d) the ledger accepts the allocation and commits exactly the picks, bin by bin.
                let before = balances_of(&stock);
                let mut after = before.clone();
                match a.to_ledger_op() {
                    None => prop_assert_eq!(a.picked(), 0),
                    Some(op) => {
                        apply(&op, &mut after).map_err(|e| TestCaseError::fail(format!("ledger refused: {e}")))?;
                    }
                }
                let committed = |b: &Balances| b.values().map(|x| x.committed).sum::<i64>();
                prop_assert_eq!(committed(&after) - committed(&before), a.picked());
                for (key, b0) in &before {
                    let b1 = after[key];
                    let q = taken.get(key).copied().unwrap_or(0);
                    prop_assert_eq!(b1.committed, b0.committed + q);
                    prop_assert_eq!(b1.available, b0.available - q);
                    prop_assert_eq!(b1.reserved, b0.reserved);
                    prop_assert_eq!(b1.on_hand(), b0.on_hand());
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum HoldStep {
    Extend { to_seconds: i64 },
    Release,
    Convert,
    Expire,
}

fn arb_hold_step() -> impl Strategy<Value = (i64, HoldStep)> {
    let step = prop_oneof![
        (0i64..5_000).prop_map(|to_seconds| HoldStep::Extend { to_seconds }),
        Just(HoldStep::Release),
        Just(HoldStep::Convert),
        Just(HoldStep::Expire),
    ];
    // Small time steps so that many steps land just before, at and just after the expiry.
    (0i64..400, step)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Random hold lives: refusals change nothing, endings are final, nothing succeeds on a dead hold, and the
    /// ledger ops of the successful steps leave reserved and committed where the final status says.
    #[test]
    fn hold_lives_keep_the_ledger_consistent(ttl in 1i64..1_000, steps in proptest::collection::vec(arb_hold_step(), 0..12)) {
        let mut now = at(0);
        let mut hold = Hold::new(hold_lines(), now, at(ttl), MAX_TTL).unwrap();
        let start: Balances = [
            ((1, 101), Balance { available: 2, ..Balance::default() }),
            ((1, 102), Balance { available: 4, ..Balance::default() }),
        ]
        .into_iter()
        .collect();
        let mut b = start.clone();
        apply(&hold.place_op().unwrap(), &mut b).unwrap();
        for (advance, step) in steps {
            now += TimeDelta::seconds(advance);
            let before = hold.clone();
            let live = hold.is_live(now);
            let result = match step {
                HoldStep::Extend { to_seconds } => hold.extend(now, at(to_seconds), MAX_TTL),
                HoldStep::Release => hold.release(now),
                HoldStep::Convert => hold.convert(now),
                HoldStep::Expire => hold.expire(now),
            };
            match result {
                Err(_) => prop_assert_eq!(&hold, &before, "a refusal changed the hold"),
                Ok(()) => {
                    prop_assert_eq!(before.status, HoldStatus::Active, "an ended hold changed");
                    if matches!(step, HoldStep::Expire) {
                        prop_assert!(!live && now >= before.expires_at, "expired before its time");
                    } else {
                        prop_assert!(live, "{step:?} succeeded on a hold that was not live");
                    }
                    let op = match hold.status {
                        HoldStatus::Active => None,
                        HoldStatus::Converted => hold.convert_op(),
                        HoldStatus::Released | HoldStatus::Expired => hold.release_op(),
                    };
                    if let Some(op) = op {
                        apply(&op, &mut b).map_err(|e| TestCaseError::fail(format!("ledger refused: {e}")))?;
                    }
                }
            }
            prop_assert!(!hold.is_live(now) || now < hold.expires_at);
        }
        let reserved: i64 = b.values().map(|x| x.reserved).sum();
        let committed: i64 = b.values().map(|x| x.committed).sum();
        let available: i64 = b.values().map(|x| x.available).sum();
        match hold.status {
            HoldStatus::Active => prop_assert_eq!((reserved, committed, available), (3, 0, 3)),
            HoldStatus::Converted => prop_assert_eq!((reserved, committed, available), (0, 3, 3)),
            HoldStatus::Released | HoldStatus::Expired => prop_assert_eq!(&b, &start),
        }
    }
}

//! Property tests of the write path's decisions: random sequences of receipts, orders, cancellations and holds run
//! through the same `Batch` logic the worker uses, with a simulated store between commands, and every invariant
//! checked after each step.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::catalog::InventoryPolicy;
use domain::order::{Disposition, NewLine, Order, PaymentTerms};
use domain::orders::{DemandLine, Hold, HoldStatus};
use domain::payment::PaymentKind;
use domain::stock::{AdjustLine, Balances, Change, StockState};
use proptest::prelude::*;

use super::*;

const ITEMS: [ItemId; 2] = [1, 2];
const SUPPLIER: LocationId = 1;
const SCRAP: LocationId = 2;
/// Two warehouses: 100 with bins 101 and 102, 200 with bin 201.
fn warehouses() -> Warehouses {
    Warehouses(vec![(100, vec![(101, Some(1)), (102, Some(2))]), (200, vec![(201, None)])])
}
const BINS: [LocationId; 3] = [101, 102, 201];

#[derive(Debug, Clone)]
enum Step {
    Receive { item_ix: usize, bin_ix: usize, qty: i64 },
    Shrink { item_ix: usize, bin_ix: usize, qty: i64 },
    Place { lines: Vec<(usize, i64)>, policy: u8 },
    Cancel { order_ix: usize, line: usize, qty: i64, all: bool },
    Hold { item_ix: usize, qty: i64, ttl: i64 },
    Release { hold_ix: usize },
    Convert { hold_ix: usize },
    Wait { seconds: i64 },
    Pay { order_ix: usize },
    Ship { order_ix: usize },
    Return { order_ix: usize, restock: bool },
    Edit { order_ix: usize, line: usize, quantity: i64 },
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..2usize, 0..3usize, 1..8i64).prop_map(|(item_ix, bin_ix, qty)| Step::Receive { item_ix, bin_ix, qty }),
        1 => (0..2usize, 0..3usize, 1..5i64).prop_map(|(item_ix, bin_ix, qty)| Step::Shrink { item_ix, bin_ix, qty }),
        4 => (proptest::collection::vec((0..2usize, 1..6i64), 1..3), 0..3u8).prop_map(|(lines, policy)| Step::Place { lines, policy }),
        2 => (0..8usize, 0..2usize, 1..4i64, any::<bool>()).prop_map(|(order_ix, line, qty, all)| Step::Cancel { order_ix, line, qty, all }),
        2 => (0..2usize, 1..4i64, 1..20i64).prop_map(|(item_ix, qty, ttl)| Step::Hold { item_ix, qty, ttl }),
        1 => (0..6usize).prop_map(|hold_ix| Step::Release { hold_ix }),
        1 => (0..6usize).prop_map(|hold_ix| Step::Convert { hold_ix }),
        1 => (1..15i64).prop_map(|seconds| Step::Wait { seconds }),
        2 => (0..8usize).prop_map(|order_ix| Step::Pay { order_ix }),
        3 => (0..8usize).prop_map(|order_ix| Step::Ship { order_ix }),
        2 => (0..8usize, any::<bool>()).prop_map(|(order_ix, restock)| Step::Return { order_ix, restock }),
        1 => (0..8usize, 0..2usize, 0..7i64).prop_map(|(order_ix, line, quantity)| Step::Edit { order_ix, line, quantity }),
    ]
}

/// The store, simulated: what a real store would hold between batches.
struct Sim {
    now: DateTime<Utc>,
    balances: Balances,
    orders: BTreeMap<OrderId, OrderRecord>,
    holds: BTreeMap<HoldId, HoldRecord>,
    ledger: Vec<NewMovement>,
    events: Vec<OutboxEvent>,
    next_id: i64,
}

fn record() -> OrderRecord {
    let now = Utc.timestamp_opt(0, 0).unwrap();
    OrderRecord {
        id: 0,
        source: "test".into(),
        external_number: None,
        request_hash: String::new(),
        customer_id: None,
        currency: "EUR".into(),
        payment_terms: PaymentTerms::Prepaid,
        notes: None,
        order: Order::empty(),
        placed_at: now,
        updated_at: now,
    }
}

fn new_line(item: ItemId, quantity: i64, policy: InventoryPolicy) -> NewLine {
    NewLine {
        sku: format!("SKU-{item}"),
        item,
        quantity,
        unit_price: rust_decimal::Decimal::ONE,
        discount: rust_decimal::Decimal::ZERO,
        tax: rust_decimal::Decimal::ZERO,
        policy,
        tracked: true,
        bundle: None,
    }
}

impl Sim {
    fn new() -> Sim {
        Sim {
            now: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            balances: Balances::new(),
            orders: BTreeMap::new(),
            holds: BTreeMap::new(),
            ledger: vec![],
            events: vec![],
            next_id: 1,
        }
    }

    /// Runs one command as a batch of its own.
    fn run(&mut self, cmd: Command) -> Result<(), Rejection> {
        self.run_batch(vec![cmd]).pop().unwrap_or(Ok(()))
    }

    /// Runs commands as one batch, as the worker would, and stores what the batch wrote.
    fn run_batch(&mut self, cmds: Vec<Command>) -> Vec<Result<(), Rejection>> {
        let warehouses = warehouses();
        let mut queue: Vec<(DateTime<Utc>, OrderId)> = self
            .orders
            .values()
            .filter(|o| !o.order.open_demand_items().is_empty())
            .map(|o| (o.placed_at, o.id))
            .collect();
        queue.sort();
        let mut state = BatchState {
            now: self.now,
            items: vec![],
            balances: self.balances.clone(),
            orders: self.orders.clone(),
            backorder_queue: queue.into_iter().map(|(_, id)| id).collect(),
            holds: self.holds.clone(),
            taken_numbers: Default::default(),
            documents: Default::default(),
        };
        let mut batch = Batch {
            queue: state.backorder_queue.iter().map(|id| OrderRef::Stored(*id)).collect(),
            state: &mut state,
            writes: BatchWrites::default(),
            changed_orders: BTreeSet::new(),
            changed_holds: BTreeSet::new(),
            warehouses: &warehouses,
            bins: &warehouses.0.iter().cloned().collect(),
            customer: 3,
            numbers: HashSet::new(),
            items: ITEMS.iter().copied().collect(),
            moved: Vec::new(),
            moved_set: HashSet::new(),
        };
        let mut prelude = batch.expire_due(&Actor::new("test"));
        batch.fill_backorders(&mut prelude);
        batch.writes.movements.extend(prelude.movements.iter().cloned());
        let outcomes: Vec<Result<(), Rejection>> = cmds.iter().map(|cmd| batch.apply(cmd).map(|_| ())).collect();
        batch.tell_changes();
        let writes = std::mem::take(&mut batch.writes);
        // Like the store: what the batch's successful commands changed is written, refused ones left no trace.
        self.balances = state.balances;
        self.orders = state.orders;
        self.holds = state.holds;
        self.ledger.extend(writes.movements);
        self.events.extend(writes.events);
        for mut o in writes.new_orders {
            o.id = self.next_id;
            self.next_id += 1;
            self.orders.insert(o.id, o);
        }
        for mut h in writes.new_holds {
            h.id = self.next_id;
            self.next_id += 1;
            self.holds.insert(h.id, h);
        }
        outcomes
    }

    fn check(&self) -> Result<(), TestCaseError> {
        // No state is ever negative.
        for (k, b) in &self.balances {
            prop_assert!(b.is_valid(), "negative balance at {:?}: {:?}", k, b);
        }
        // Committed is exactly what open orders hold in each bin; reserved exactly what active holds hold.
        for &item in &ITEMS {
            for &bin in &BINS {
                let b = self.balances.get(&(item, bin)).copied().unwrap_or_default();
                let committed: i64 = self
                    .orders
                    .values()
                    .flat_map(|o| o.order.lines.iter())
                    .filter(|l| l.item == item)
                    .flat_map(|l| l.picks.iter())
                    .filter(|p| p.bin == bin)
                    .map(|p| p.quantity)
                    .sum();
                prop_assert_eq!(b.committed, committed, "committed of item {} in bin {}", item, bin);
                let reserved: i64 = self
                    .holds
                    .values()
                    .filter(|h| h.hold.status == HoldStatus::Active)
                    .flat_map(|h| h.hold.lines.iter())
                    .filter(|l| l.item == item)
                    .flat_map(|l| l.picks.iter())
                    .filter(|p| p.bin == bin)
                    .map(|p| p.quantity)
                    .sum();
                prop_assert_eq!(b.reserved, reserved, "reserved of item {} in bin {}", item, bin);
            }
            // Nobody waits while stock of the item sits available.
            let waiting =
                self.orders.values().any(|o| o.order.lines.iter().any(|l| l.item == item && l.open_demand() > 0));
            let available: i64 =
                BINS.iter().map(|bin| self.balances.get(&(item, *bin)).map(|b| b.available).unwrap_or(0)).sum();
            prop_assert!(
                !(waiting && available > 0),
                "an order waits for item {} while {} are available",
                item,
                available
            );
        }
        // Units are conserved: what came in, less what was scrapped and shipped, plus what came back into bins.
        for &item in &ITEMS {
            let on_hand: i64 =
                BINS.iter().map(|b| self.balances.get(&(item, *b)).map(|x| x.on_hand()).unwrap_or(0)).sum();
            let received: i64 = self
                .ledger
                .iter()
                .filter(|m| m.item_id == item && m.from_location_id == SUPPLIER)
                .map(|m| m.quantity)
                .sum();
            let scrapped: i64 =
                self.ledger.iter().filter(|m| m.item_id == item && m.to_location_id == SCRAP).map(|m| m.quantity).sum();
            let lines = || self.orders.values().flat_map(|o| o.order.lines.iter().map(move |l| (o, l)));
            let shipped: i64 = lines().filter(|(_, l)| l.item == item).map(|(_, l)| l.shipped).sum();
            let restocked: i64 = self
                .orders
                .values()
                .flat_map(|o| o.order.returns.iter().flat_map(move |r| r.lines.iter().map(move |rl| (o, rl))))
                .filter(|(o, rl)| o.order.lines[rl.line].item == item)
                .flat_map(|(_, rl)| rl.dispositions.iter())
                .filter(|(d, _)| *d != Disposition::Scrap)
                .map(|(_, q)| *q)
                .sum();
            prop_assert_eq!(
                on_hand,
                received - scrapped - shipped + restocked,
                "units of item {} are not conserved",
                item
            );
        }
        // Every order line adds up.
        for o in self.orders.values() {
            for l in &o.order.lines {
                prop_assert_eq!(l.committed() + l.backordered + l.oversold + l.cancelled + l.shipped, l.quantity);
            }
        }
        // Folding the ledger gives the balances.
        let mut folded = Balances::new();
        for m in &self.ledger {
            if let Some(s) = m.from_state {
                folded.entry((m.item_id, m.from_location_id)).or_default().add(s, -m.quantity);
            }
            if let Some(s) = m.to_state {
                folded.entry((m.item_id, m.to_location_id)).or_default().add(s, m.quantity);
            }
        }
        for key in folded.keys().chain(self.balances.keys()) {
            prop_assert_eq!(
                folded.get(key).copied().unwrap_or_default(),
                self.balances.get(key).copied().unwrap_or_default(),
                "ledger and balance differ at {:?}",
                key
            );
        }
        Ok(())
    }
}

fn adjust(item: ItemId, bin: LocationId, delta: i64) -> Command {
    Command::Stock(LedgerCommand {
        op: LedgerOp::Adjust(vec![AdjustLine {
            item,
            location: bin,
            state: StockState::Available,
            change: Change::Delta(delta),
            source: SUPPLIER,
            sink: SCRAP,
        }]),
        lines: vec![LineMeta { reason: if delta > 0 { Reason::Received } else { Reason::Shrinkage }, note: None }],
        reference: None,
        actor: Actor::new("test"),
    })
}

#[test]
fn a_change_of_many_balances_is_told_in_bounded_events() {
    let mut sim = Sim::new();
    // 250 items received into one bin, in one command: 250 balances changed.
    let lines: Vec<AdjustLine> = (1..=250)
        .map(|item| AdjustLine {
            item,
            location: 101,
            state: StockState::Available,
            change: Change::Delta(item),
            source: SUPPLIER,
            sink: SCRAP,
        })
        .collect();
    let meta = vec![LineMeta { reason: Reason::Received, note: None }; lines.len()];
    sim.run(Command::Stock(LedgerCommand {
        op: LedgerOp::Adjust(lines),
        lines: meta,
        reference: None,
        actor: Actor::new("test"),
    }))
    .unwrap();
    let changed: Vec<&serde_json::Value> =
        sim.events.iter().filter(|e| e.topic == "inventory.changed").map(|e| &e.payload["balances"]).collect();
    let sizes: Vec<usize> = changed.iter().map(|b| b.as_array().unwrap().len()).collect();
    assert_eq!(sizes, [EVENT_BALANCES, EVENT_BALANCES, 50], "split in order, none over the bound");
    let told: Vec<(i64, i64)> = changed
        .iter()
        .flat_map(|b| b.as_array().unwrap())
        .map(|b| (b["item_id"].as_i64().unwrap(), b["available"].as_i64().unwrap()))
        .collect();
    assert_eq!(told, (1..=250).map(|i| (i, i)).collect::<Vec<_>>(), "every balance told once, as left");
    assert!(sim.events.iter().all(|e| e.topic == "inventory.changed"));

    // A change of one balance is still one event.
    sim.events.clear();
    sim.run(adjust(1, 101, -1)).unwrap();
    assert_eq!(sim.events.len(), 1);
    assert_eq!(sim.events[0].payload["balances"][0]["available"], 0);
}

/// Orders committed in one batch tell each balance they moved once, as the batch left it, after their own events;
/// a refused order in between tells nothing.
#[test]
fn a_batch_tells_each_moved_balance_once_as_it_left_it() {
    let mut sim = Sim::new();
    sim.run(adjust(1, 101, 3)).unwrap();
    sim.events.clear();
    let order = |qty: i64| {
        Command::PlaceOrder(Box::new(PlaceOrder {
            record: record(),
            lines: vec![new_line(1, qty, InventoryPolicy::Deny)],
            hold: None,
            actor: Actor::new("test"),
            warehouses: None,
        }))
    };
    let outcomes = sim.run_batch(vec![order(1), order(5), order(1)]);
    assert!(outcomes[0].is_ok() && outcomes[1].is_err() && outcomes[2].is_ok(), "{outcomes:?}");
    let topics: Vec<&str> = sim.events.iter().map(|e| e.topic.as_str()).collect();
    assert_eq!(topics, ["order.created", "order.created", "inventory.changed"]);
    let told = &sim.events[2].payload["balances"];
    assert_eq!(told.as_array().unwrap().len(), 1, "one balance, told once: {told}");
    assert_eq!((told[0]["item_id"].as_i64(), told[0]["location_id"].as_i64()), (Some(1), Some(101)));
    assert_eq!(
        (told[0]["available"].as_i64(), told[0]["on_hand"].as_i64()),
        (Some(1), Some(3)),
        "as the batch left it"
    );

    // A batch whose commands all fail tells nothing.
    sim.events.clear();
    assert!(sim.run_batch(vec![order(9)])[0].is_err());
    assert!(sim.events.is_empty(), "{:?}", sim.events);
}

fn hold_record(item: ItemId, qty: i64) -> HoldRecord {
    let now = Utc.timestamp_opt(0, 0).unwrap();
    HoldRecord {
        id: 0,
        hold: Hold { expires_at: now, status: HoldStatus::Active, lines: vec![] },
        skus: vec![format!("SKU-{item}")],
        quantities: vec![qty],
        reference: None,
        order_id: None,
        created_at: now,
        updated_at: now,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_order_and_hold_sequences_keep_every_invariant(
        steps in proptest::collection::vec(arb_step(), 1..40),
        batch_size in 1..4usize,
    ) {
        let mut sim = Sim::new();
        let mut pending = Vec::new();
        for step in steps {
            let order_ids: Vec<OrderId> = sim.orders.keys().copied().collect();
            let hold_ids: Vec<HoldId> = sim.holds.keys().copied().collect();
            let cmd = match step {
                Step::Receive { item_ix, bin_ix, qty } => adjust(ITEMS[item_ix], BINS[bin_ix], qty),
                Step::Shrink { item_ix, bin_ix, qty } => adjust(ITEMS[item_ix], BINS[bin_ix], -qty),
                Step::Place { lines, policy } => {
                    let policy = [InventoryPolicy::Deny, InventoryPolicy::Continue, InventoryPolicy::Backorder][policy as usize];
                    let lines: Vec<NewLine> = lines.iter().map(|(i, q)| new_line(ITEMS[*i], *q, policy)).collect();
                    Command::PlaceOrder(Box::new(PlaceOrder { record: record(), lines, hold: None, actor: Actor::new("test"), warehouses: None }))
                }
                Step::Cancel { order_ix, line, qty, all } => {
                    let Some(id) = order_ids.get(order_ix) else { continue };
                    let lines = if all { vec![] } else { vec![(line, qty)] };
                    Command::CancelOrder { order: *id, lines, actor: Actor::new("test") }
                }
                Step::Hold { item_ix, qty, ttl } => Command::PlaceHold {
                    record: Box::new(hold_record(ITEMS[item_ix], qty)),
                    demand: vec![DemandLine { item: ITEMS[item_ix], quantity: qty, policy: InventoryPolicy::Deny }],
                    ttl: TimeDelta::seconds(ttl),
                    max_ttl: TimeDelta::minutes(10),
                    actor: Actor::new("test"),
                },
                Step::Release { hold_ix } => {
                    let Some(id) = hold_ids.get(hold_ix) else { continue };
                    Command::ChangeHold { hold: *id, change: HoldChange::Release, actor: Actor::new("test") }
                }
                Step::Convert { hold_ix } => {
                    let Some(id) = hold_ids.get(hold_ix) else { continue };
                    let h = &sim.holds[id];
                    let item = h.hold.lines.first().map(|l| l.item).unwrap_or(ITEMS[0]);
                    let lines = vec![new_line(item, h.quantities[0], InventoryPolicy::Deny)];
                    Command::PlaceOrder(Box::new(PlaceOrder { record: record(), lines, hold: Some(*id), actor: Actor::new("test"), warehouses: None }))
                }
                Step::Wait { seconds } => {
                    sim.now += TimeDelta::seconds(seconds);
                    Command::ExpireDueHolds
                }
                Step::Pay { order_ix } => {
                    let Some(id) = order_ids.get(order_ix) else { continue };
                    let o = &sim.orders[id].order;
                    let amount = o.total() - o.payment_totals().net();
                    let step = OrderStep::Pay { kind: PaymentKind::Capture, amount, currency: "EUR".into(), reference: None };
                    Command::OrderStep { order: *id, step, actor: Actor::new("test") }
                }
                Step::Ship { order_ix } => {
                    if order_ids.is_empty() {
                        continue;
                    }
                    let id = &order_ids[order_ix % order_ids.len()];
                    // Pay what is due first, so that shipping is not merely refused.
                    let o = &sim.orders[id].order;
                    let due = o.total() - o.payment_totals().net();
                    if due > rust_decimal::Decimal::ZERO {
                        let pay = OrderStep::Pay { kind: PaymentKind::Capture, amount: due, currency: "EUR".into(), reference: None };
                        let _ = sim.run(Command::OrderStep { order: *id, step: pay, actor: Actor::new("test") });
                        sim.check()?;
                    }
                    let step = OrderStep::Ship { lines: vec![], carriage: Default::default() };
                    Command::OrderStep { order: *id, step, actor: Actor::new("test") }
                }
                Step::Return { order_ix, restock } => {
                    let shipped: Vec<OrderId> =
                        sim.orders.values().filter(|o| o.order.lines.iter().any(|l| l.shipped > 0)).map(|o| o.id).collect();
                    if shipped.is_empty() {
                        continue;
                    }
                    let id = &shipped[order_ix % shipped.len()];
                    let Some(line) = sim.orders[id].order.lines.iter().position(|l| l.shipped > 0) else { continue };
                    let step = OrderStep::RequestReturn { lines: vec![(line, 1, "too small".into())] };
                    let _ = sim.run(Command::OrderStep { order: *id, step, actor: Actor::new("test") });
                    sim.check()?;
                    let index = sim.orders[id].order.returns.len().saturating_sub(1);
                    let disposition = if restock { Disposition::Restock } else { Disposition::Scrap };
                    let step = OrderStep::ReceiveReturn { index, lines: vec![(0, 1, disposition, Some(BINS[0]))] };
                    Command::OrderStep { order: *id, step, actor: Actor::new("test") }
                }
                Step::Edit { order_ix, line, quantity } => {
                    let Some(id) = order_ids.get(order_ix) else { continue };
                    let step = OrderStep::Edit { quantities: vec![(line, quantity)], add: vec![] };
                    Command::OrderStep { order: *id, step, actor: Actor::new("test") }
                }
            };
            // Commands queue up and run together, as concurrent requests do in one batch.
            pending.push(cmd);
            if pending.len() >= batch_size {
                let _ = sim.run_batch(std::mem::take(&mut pending));
                sim.check()?;
            }
        }
        let _ = sim.run_batch(pending);
        sim.check()?;
    }
}

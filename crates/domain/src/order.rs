//! The order aggregate: its lines, what each line has promised from which bins, what is still owed (backordered
//! or oversold), and the rules for cancelling and for filling backorders from arriving stock.
//!
//! Everything that moves stock returns ledger move lines for the one write path to apply; the aggregate itself never
//! touches balances.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::InventoryPolicy;
use crate::orders::{allocate, Allocation, AllocationError, DemandLine, Pick, WarehouseStock};
use crate::stock::{ItemId, LedgerOp, MoveLine, StockState};

/// Where an order stands as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed; some quantity is still to be shipped.
    Open,
    /// Every unit was cancelled.
    Cancelled,
}

/// Whether the order must be paid before it ships.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PaymentTerms {
    #[default]
    Prepaid,
    Invoice,
}

/// One order line with its promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: String,
    pub item: ItemId,
    pub quantity: i64,
    pub unit_price: Decimal,
    /// Discount on the whole line, in the order's currency.
    pub discount: Decimal,
    /// Tax on the whole line, in the order's currency.
    pub tax: Decimal,
    pub policy: InventoryPolicy,
    /// Whether stock is counted for the item; untracked lines promise nothing and owe nothing.
    pub tracked: bool,
    /// Units promised from bins (committed there).
    pub picks: Vec<Pick>,
    /// Units owed with no stock behind them yet, to be filled first-come first-served.
    pub backordered: i64,
    /// Units sold beyond stock on purpose (policy `continue`); filled like backorders when stock arrives.
    pub oversold: i64,
    pub cancelled: i64,
}

impl OrderLine {
    pub fn committed(&self) -> i64 {
        self.picks.iter().map(|p| p.quantity).sum()
    }
    /// Units still owed without stock: backordered plus oversold.
    pub fn open_demand(&self) -> i64 {
        self.backordered + self.oversold
    }
    /// The line's amount: quantity (less cancelled) × unit price − discount + tax. Discount and tax are
    /// prorated when part of the line is cancelled.
    pub fn total(&self) -> Decimal {
        let live = Decimal::from(self.quantity - self.cancelled);
        if self.quantity == 0 {
            return Decimal::ZERO;
        }
        let share = live / Decimal::from(self.quantity);
        (self.unit_price * live + (self.tax - self.discount) * share).round_dp(2)
    }
}

/// The input for one line of a new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    pub sku: String,
    pub item: ItemId,
    pub quantity: i64,
    pub unit_price: Decimal,
    pub discount: Decimal,
    pub tax: Decimal,
    pub policy: InventoryPolicy,
    pub tracked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
}

/// Why a cancellation was refused; `line` is the index of the offending line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("the order is cancelled already")]
    AlreadyCancelled,
    #[error("line {line} does not exist")]
    NoSuchLine { line: usize },
    #[error("line {line}: only {cancellable} units can still be cancelled, {requested} requested")]
    TooMany { line: usize, cancellable: i64, requested: i64 },
    #[error("line {line}: the quantity to cancel must be positive")]
    InvalidQuantity { line: usize },
}

impl Order {
    /// Places an order: allocates the tracked lines against `stock` (warehouses in priority order) and returns the
    /// order with the ledger operation that commits its picks.
    pub fn place(
        lines: Vec<NewLine>,
        stock: &HashMap<ItemId, Vec<WarehouseStock>>,
    ) -> Result<(Order, Option<LedgerOp>), AllocationError> {
        let tracked: Vec<(usize, DemandLine)> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.tracked)
            .map(|(i, l)| (i, DemandLine { item: l.item, quantity: l.quantity, policy: l.policy }))
            .collect();
        let allocation = if tracked.is_empty() {
            Allocation { lines: vec![] }
        } else {
            let demand: Vec<DemandLine> = tracked.iter().map(|(_, d)| *d).collect();
            allocate(&demand, stock).map_err(|e| remap_lines(e, &tracked))?
        };
        let mut order = Order {
            status: OrderStatus::Open,
            lines: lines
                .into_iter()
                .map(|l| OrderLine {
                    sku: l.sku,
                    item: l.item,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    discount: l.discount,
                    tax: l.tax,
                    policy: l.policy,
                    tracked: l.tracked,
                    picks: vec![],
                    backordered: 0,
                    oversold: 0,
                    cancelled: 0,
                })
                .collect(),
        };
        for (a, (index, _)) in allocation.lines.iter().zip(&tracked) {
            let line = &mut order.lines[*index];
            line.picks = a.picks.clone();
            line.backordered = a.backordered;
            line.oversold = a.oversold;
        }
        let op = allocation.to_ledger_op();
        Ok((order, op))
    }

    /// Takes over the picks of a converted hold, whose lines are this order's lines in the same order: the stock is
    /// already reserved, so nothing can be short.
    pub fn from_hold(lines: Vec<NewLine>, hold_lines: &[crate::orders::LineAllocation]) -> Order {
        let mut order = Order { status: OrderStatus::Open, lines: vec![] };
        for (i, l) in lines.into_iter().enumerate() {
            let picks = hold_lines.iter().find(|h| h.line == i).map(|h| h.picks.clone()).unwrap_or_default();
            order.lines.push(OrderLine {
                sku: l.sku,
                item: l.item,
                quantity: l.quantity,
                unit_price: l.unit_price,
                discount: l.discount,
                tax: l.tax,
                policy: l.policy,
                tracked: l.tracked,
                picks,
                backordered: 0,
                oversold: 0,
                cancelled: 0,
            });
        }
        order
    }

    /// Items with units still owed, for the backorder queue.
    pub fn open_demand_items(&self) -> Vec<ItemId> {
        let mut items: Vec<ItemId> = self.lines.iter().filter(|l| l.open_demand() > 0).map(|l| l.item).collect();
        items.sort_unstable();
        items.dedup();
        items
    }

    pub fn committed(&self) -> i64 {
        self.lines.iter().map(OrderLine::committed).sum()
    }

    pub fn total(&self) -> Decimal {
        self.lines.iter().map(OrderLine::total).sum()
    }

    /// Cancels `quantity` units of each given line. Units still owed (backordered, then oversold) go first, since
    /// nothing has to be released for them; then committed units, from the last bin picked. Returns the ledger
    /// operation that releases the committed units (committed → available). All lines or none.
    pub fn cancel(&mut self, requests: &[(usize, i64)]) -> Result<Option<LedgerOp>, CancelError> {
        if self.status == OrderStatus::Cancelled {
            return Err(CancelError::AlreadyCancelled);
        }
        let mut next = self.clone();
        let mut moves = Vec::new();
        for &(line, quantity) in requests {
            let l = next.lines.get_mut(line).ok_or(CancelError::NoSuchLine { line })?;
            if quantity <= 0 {
                return Err(CancelError::InvalidQuantity { line });
            }
            let cancellable = l.quantity - l.cancelled;
            if quantity > cancellable {
                return Err(CancelError::TooMany { line, cancellable, requested: quantity });
            }
            let mut rest = quantity;
            for owed in [&mut l.backordered, &mut l.oversold] {
                let take = rest.min(*owed);
                *owed -= take;
                rest -= take;
            }
            while rest > 0 {
                let Some(pick) = l.picks.last_mut() else { break };
                let take = rest.min(pick.quantity);
                pick.quantity -= take;
                rest -= take;
                moves.push(MoveLine {
                    item: l.item,
                    quantity: take,
                    from_location: pick.bin,
                    from_state: StockState::Committed,
                    to_location: pick.bin,
                    to_state: StockState::Available,
                });
                if pick.quantity == 0 {
                    l.picks.pop();
                }
            }
            l.cancelled += quantity;
        }
        if next.lines.iter().all(|l| l.cancelled == l.quantity) {
            next.status = OrderStatus::Cancelled;
        }
        *self = next;
        Ok((!moves.is_empty()).then_some(LedgerOp::Move(moves)))
    }

    /// Everything still cancellable, line by line.
    pub fn cancel_all(&mut self) -> Result<Option<LedgerOp>, CancelError> {
        let requests: Vec<(usize, i64)> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.quantity > l.cancelled)
            .map(|(i, l)| (i, l.quantity - l.cancelled))
            .collect();
        if requests.is_empty() {
            return Err(CancelError::AlreadyCancelled);
        }
        self.cancel(&requests)
    }

    /// Fills what this order still owes of `item` from `stock` (the item's sellable bins, warehouses in priority
    /// order), taking what there is. Returns the moves (available → committed) and consumes the used stock from
    /// `stock`, so that the next order in the queue sees what is left.
    pub fn fill(&mut self, item: ItemId, stock: &mut [WarehouseStock]) -> Vec<MoveLine> {
        let mut moves = Vec::new();
        for line in self.lines.iter_mut().filter(|l| l.item == item && l.open_demand() > 0) {
            let demand = [DemandLine { item, quantity: line.open_demand(), policy: InventoryPolicy::Backorder }];
            let pool = HashMap::from([(item, stock.to_vec())]);
            let Ok(allocation) = allocate(&demand, &pool) else { continue };
            let Some(got) = allocation.lines.first() else { continue };
            let mut filled = 0;
            for pick in &got.picks {
                filled += pick.quantity;
                moves.push(MoveLine {
                    item,
                    quantity: pick.quantity,
                    from_location: pick.bin,
                    from_state: StockState::Available,
                    to_location: pick.bin,
                    to_state: StockState::Committed,
                });
                for w in stock.iter_mut() {
                    for b in w.bins.iter_mut().filter(|b| b.bin == pick.bin) {
                        b.available -= pick.quantity;
                    }
                }
                match line.picks.iter_mut().find(|p| p.bin == pick.bin) {
                    Some(p) => p.quantity += pick.quantity,
                    None => line.picks.push(*pick),
                }
            }
            let from_backorder = filled.min(line.backordered);
            line.backordered -= from_backorder;
            line.oversold -= filled - from_backorder;
        }
        moves
    }
}

/// Allocation numbers lines among the tracked ones only; the caller speaks of the order's own line numbers.
fn remap_lines(e: AllocationError, tracked: &[(usize, DemandLine)]) -> AllocationError {
    let real = |i: usize| tracked.get(i).map(|(r, _)| *r).unwrap_or(i);
    match e {
        AllocationError::InvalidQuantity { line } => AllocationError::InvalidQuantity { line: real(line) },
        AllocationError::Shortage(mut s) => {
            for l in &mut s.lines {
                l.line = real(l.line);
            }
            AllocationError::Shortage(s)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::BinStock;

    fn line(item: ItemId, quantity: i64, policy: InventoryPolicy) -> NewLine {
        NewLine {
            sku: format!("SKU-{item}"),
            item,
            quantity,
            unit_price: Decimal::new(1000, 2),
            discount: Decimal::ZERO,
            tax: Decimal::ZERO,
            policy,
            tracked: true,
        }
    }

    fn stock(item: ItemId, bins: &[(i64, i64)]) -> HashMap<ItemId, Vec<WarehouseStock>> {
        let bins = bins.iter().map(|&(bin, available)| BinStock { bin, pick_sequence: Some(bin), available }).collect();
        HashMap::from([(item, vec![WarehouseStock { warehouse: 1, bins }])])
    }

    #[test]
    fn placing_commits_picks_and_records_backorders() {
        let (order, op) = Order::place(vec![line(7, 5, InventoryPolicy::Backorder)], &stock(7, &[(10, 3)])).unwrap();
        assert_eq!(order.lines[0].committed(), 3);
        assert_eq!(order.lines[0].backordered, 2);
        assert_eq!(order.open_demand_items(), vec![7]);
        let Some(LedgerOp::Move(moves)) = op else { panic!("expected moves") };
        assert_eq!(moves[0].quantity, 3);
        assert_eq!((moves[0].from_state, moves[0].to_state), (StockState::Available, StockState::Committed));
    }

    #[test]
    fn untracked_lines_promise_nothing_and_keep_their_numbers() {
        let mut untracked = line(8, 2, InventoryPolicy::Deny);
        untracked.tracked = false;
        let err = Order::place(vec![untracked, line(7, 5, InventoryPolicy::Deny)], &stock(7, &[(10, 3)])).unwrap_err();
        let AllocationError::Shortage(s) = err else { panic!("expected a shortage") };
        assert_eq!(s.lines[0].line, 1, "the short line keeps its own number in the order");
    }

    #[test]
    fn cancelling_takes_owed_units_first_then_releases_bins() {
        let (mut order, _) =
            Order::place(vec![line(7, 5, InventoryPolicy::Backorder)], &stock(7, &[(10, 2), (11, 1)])).unwrap();
        assert_eq!(order.lines[0].backordered, 2);
        let op = order.cancel(&[(0, 3)]).unwrap();
        assert_eq!(order.lines[0].backordered, 0);
        assert_eq!(order.lines[0].committed(), 2);
        let Some(LedgerOp::Move(moves)) = op else { panic!("expected a release") };
        assert_eq!(moves.iter().map(|m| m.quantity).sum::<i64>(), 1);
        assert_eq!(moves[0].to_state, StockState::Available);
        assert_eq!(order.cancel(&[(0, 3)]), Err(CancelError::TooMany { line: 0, cancellable: 2, requested: 3 }));
        assert!(order.cancel_all().unwrap().is_some());
        assert_eq!(order.status, OrderStatus::Cancelled);
        assert_eq!(order.committed(), 0);
        assert_eq!(order.cancel_all(), Err(CancelError::AlreadyCancelled));
        assert_eq!(order.total(), Decimal::ZERO);
    }

    #[test]
    fn filling_takes_what_arrived_and_keeps_the_rest_owed() {
        let (mut order, _) = Order::place(vec![line(7, 5, InventoryPolicy::Backorder)], &stock(7, &[])).unwrap();
        assert_eq!(order.lines[0].backordered, 5);
        let mut arrived = stock(7, &[(10, 3)]).remove(&7).unwrap();
        let moves = order.fill(7, &mut arrived);
        assert_eq!(moves.iter().map(|m| m.quantity).sum::<i64>(), 3);
        assert_eq!(order.lines[0].backordered, 2);
        assert_eq!(order.lines[0].committed(), 3);
        assert_eq!(arrived[0].bins[0].available, 0, "the next order in the queue sees what is left");
        assert!(order.fill(7, &mut arrived).is_empty());
    }
}

//! The order aggregate: its lines, what each line has promised from which bins, what is still owed (backordered
//! or oversold), and the rules for cancelling and for filling backorders from arriving stock.
//!
//! Everything that moves stock returns ledger move lines for the one write path to apply; the aggregate itself never
//! touches balances.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bundle::BundlePart;
use crate::catalog::InventoryPolicy;
use crate::orders::{allocate, Allocation, AllocationError, DemandLine, Pick, WarehouseStock};
use crate::payment::{PaymentEntry, PaymentError, PaymentTotals};
use crate::stock::{ItemId, LedgerOp, LocationId, MoveLine, StockState};
use chrono::{DateTime, Utc};

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
    /// Units that left with a shipment.
    #[serde(default)]
    pub shipped: i64,
    /// Set on a component's line: the bundle line it belongs to (see [`crate::bundle`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundlePart>,
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
    /// Where the line stands: nothing shipped, some, or everything that was not cancelled.
    pub fn fulfillment(&self) -> FulfillmentStatus {
        let due = self.quantity - self.cancelled;
        if due == 0 {
            // Every unit was cancelled or edited away.
            FulfillmentStatus::Cancelled
        } else if self.shipped == 0 {
            FulfillmentStatus::Unfulfilled
        } else if self.shipped < due {
            FulfillmentStatus::PartiallyFulfilled
        } else {
            FulfillmentStatus::Fulfilled
        }
    }

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
    /// Set on a component's line of a bundle; the bundle's own line is untracked.
    pub bundle: Option<BundlePart>,
}

/// How far a line or an order has shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentStatus {
    Unfulfilled,
    PartiallyFulfilled,
    Fulfilled,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    #[serde(default)]
    pub payments: Vec<PaymentEntry>,
    #[serde(default)]
    pub shipments: Vec<Shipment>,
    #[serde(default)]
    pub returns: Vec<Return>,
    #[serde(default)]
    pub credit_memos: Vec<CreditMemo>,
    /// Packages packed and not shipped yet; the next shipment without packages of its own takes them.
    #[serde(default)]
    pub packages: Vec<Package>,
}

/// A parcel of a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Package {
    pub weight_grams: i64,
    #[serde(default)]
    pub length_mm: Option<i64>,
    #[serde(default)]
    pub width_mm: Option<i64>,
    #[serde(default)]
    pub height_mm: Option<i64>,
}

/// Units of one line in a shipment or a credit memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineQuantity {
    pub line: usize,
    pub quantity: i64,
}

/// How a shipment travels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Carriage {
    pub carrier: Option<String>,
    pub service: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    #[serde(default)]
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Shipment {
    pub lines: Vec<LineQuantity>,
    #[serde(flatten)]
    pub carriage: Carriage,
    pub shipped_at: DateTime<Utc>,
}

/// What happens to a returned unit when it is received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Back into a bin, available to sell.
    Restock,
    /// Into a bin, waiting for inspection.
    QualityControl,
    /// Into a bin, not sellable.
    Damaged,
    /// Thrown away: never enters stock.
    Scrap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnLine {
    pub line: usize,
    pub quantity: i64,
    pub reason: String,
    pub received: i64,
    /// What was done with the received units, per disposition.
    #[serde(default)]
    pub dispositions: Vec<(Disposition, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Return {
    pub lines: Vec<ReturnLine>,
    pub requested_at: DateTime<Utc>,
    pub received_at: Option<DateTime<Utc>>,
}

/// A credit note for the accounting system: money owed back, with the lines it concerns and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreditMemo {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Decimal,
    pub lines: Vec<LineQuantity>,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// A stock change an order step asks for; the write path turns it into ledger movements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posting {
    /// Between states of bins (commit, release).
    Move(MoveLine),
    /// Committed units leave a bin for the customer (a shipment).
    ToCustomer { item: ItemId, bin: LocationId, quantity: i64 },
    /// Returned units come back from the customer into a bin, in a state.
    FromCustomer { item: ItemId, bin: LocationId, state: StockState, quantity: i64 },
}

/// Why an order step was refused; `line` is the index of the offending line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("the order is cancelled")]
    Cancelled,
    #[error("line {line} does not exist")]
    NoSuchLine { line: usize },
    #[error("line {line}: quantities must be positive")]
    InvalidQuantity { line: usize },
    #[error("line {line}: only {available} units can be {what}, {requested} requested")]
    TooMany { line: usize, what: &'static str, available: i64, requested: i64 },
    #[error("nothing to ship: no committed units are waiting")]
    NothingToShip,
    #[error("the payment is not captured; only orders on invoice ship unpaid")]
    NotPaid,
    #[error("return {index} does not exist")]
    NoSuchReturn { index: usize },
    #[error("line {line}: a bin is needed for disposition {disposition:?}")]
    BinRequired { line: usize, disposition: Disposition },
    #[error("line {line}: {quantity} units cannot go below the {shipped} already shipped")]
    BelowShipped { line: usize, quantity: i64, shipped: i64 },
    #[error(transparent)]
    Allocation(#[from] AllocationError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error("the credit memo's amount must be positive and at most what the order is still worth")]
    InvalidCreditMemo,
    #[error("line {line} is a component of bundle line {bundle}: ask for the bundle line's units")]
    PartOfBundle { line: usize, bundle: usize },
    #[error("line {line} belongs to a bundle: bundle lines are not edited; cancel units or add an order")]
    BundleNotEditable { line: usize },
}

/// Why a cancellation was refused; `line` is the index of the offending line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("the order is cancelled already")]
    AlreadyCancelled,
    #[error("nothing is left to cancel: every unit shipped or was cancelled")]
    NothingToCancel,
    #[error("line {line} does not exist")]
    NoSuchLine { line: usize },
    #[error("line {line}: only {cancellable} units can still be cancelled, {requested} requested")]
    TooMany { line: usize, cancellable: i64, requested: i64 },
    #[error("line {line}: the quantity to cancel must be positive")]
    InvalidQuantity { line: usize },
    #[error("line {line} is a component of bundle line {bundle}: cancel the bundle line's units")]
    PartOfBundle { line: usize, bundle: usize },
}

impl Order {
    /// An open order with no lines yet.
    pub fn empty() -> Order {
        Order {
            status: OrderStatus::Open,
            lines: vec![],
            payments: vec![],
            shipments: vec![],
            returns: vec![],
            credit_memos: vec![],
            packages: vec![],
        }
    }

    pub fn payment_totals(&self) -> PaymentTotals {
        PaymentTotals::of(&self.payments)
    }

    /// The order as a whole: cancelled, or how far its lines have shipped.
    pub fn fulfillment(&self) -> FulfillmentStatus {
        if self.status == OrderStatus::Cancelled {
            return FulfillmentStatus::Cancelled;
        }
        let live: Vec<FulfillmentStatus> =
            self.lines.iter().map(OrderLine::fulfillment).filter(|s| *s != FulfillmentStatus::Cancelled).collect();
        if live.iter().all(|s| *s == FulfillmentStatus::Fulfilled) {
            FulfillmentStatus::Fulfilled
        } else if live.iter().all(|s| *s == FulfillmentStatus::Unfulfilled) {
            FulfillmentStatus::Unfulfilled
        } else {
            FulfillmentStatus::PartiallyFulfilled
        }
    }

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
                    shipped: 0,
                    bundle: l.bundle,
                })
                .collect(),
            ..Order::empty()
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
        let mut order = Order::empty();
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
                shipped: 0,
                bundle: l.bundle,
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
        let requests = self
            .expand_bundle_requests(requests)
            .map_err(|(line, bundle)| CancelError::PartOfBundle { line, bundle })?;
        let mut next = self.clone();
        let mut moves = Vec::new();
        for &(line, quantity) in &requests {
            let l = next.lines.get_mut(line).ok_or(CancelError::NoSuchLine { line })?;
            if quantity <= 0 {
                return Err(CancelError::InvalidQuantity { line });
            }
            let cancellable = l.quantity - l.cancelled - l.shipped;
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
            // A component's line is cancelled through its bundle line.
            .filter(|(_, l)| l.quantity > l.cancelled + l.shipped && l.bundle.is_none())
            .map(|(i, l)| (i, l.quantity - l.cancelled - l.shipped))
            .collect();
        if requests.is_empty() {
            return Err(if self.status == OrderStatus::Cancelled {
                CancelError::AlreadyCancelled
            } else {
                CancelError::NothingToCancel
            });
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

impl Order {
    fn line_mut(&mut self, line: usize) -> Result<&mut OrderLine, OrderError> {
        self.lines.get_mut(line).ok_or(OrderError::NoSuchLine { line })
    }

    fn check_open(&self) -> Result<(), OrderError> {
        match self.status {
            OrderStatus::Cancelled => Err(OrderError::Cancelled),
            OrderStatus::Open => Ok(()),
        }
    }

    /// Records a payment event (authorize, capture, void, refund) against the order's total and currency.
    pub fn pay(
        &mut self,
        currency: &str,
        order_currency: &str,
        kind: crate::payment::PaymentKind,
        amount: Decimal,
        reference: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        let entry = crate::payment::record(
            &self.payments,
            self.total(),
            order_currency,
            crate::payment::PaymentRequest { kind, amount, currency, reference },
            now,
        )?;
        self.payments.push(entry);
        Ok(())
    }

    /// Ships committed units (everything committed when `requests` is empty): they leave their bins for the
    /// customer. Only a paid order ships, unless its terms are invoice.
    pub fn ship(
        &mut self,
        requests: &[(usize, i64)],
        carriage: Carriage,
        terms: PaymentTerms,
        now: DateTime<Utc>,
    ) -> Result<Vec<Posting>, OrderError> {
        self.check_open()?;
        // Captured, not net of refunds: a refund for a returned line must not hold back the rest of the order.
        if terms != PaymentTerms::Invoice && self.payment_totals().captured < self.total() {
            return Err(OrderError::NotPaid);
        }
        let requests: Vec<(usize, i64)> = if requests.is_empty() {
            // Bundles ship whole: as many as every component has committed units for.
            (0..self.lines.len())
                .filter(|i| self.lines[*i].bundle.is_none())
                .map(|i| (i, if self.is_bundle_line(i) { self.complete_bundles(i) } else { self.lines[i].committed() }))
                .filter(|(_, q)| *q > 0)
                .collect()
        } else {
            requests.to_vec()
        };
        if requests.is_empty() {
            return Err(OrderError::NothingToShip);
        }
        let requests = self
            .expand_bundle_requests(&requests)
            .map_err(|(line, bundle)| OrderError::PartOfBundle { line, bundle })?;
        let mut next = self.clone();
        let mut postings = Vec::new();
        for &(line, quantity) in &requests {
            let stockless =
                self.is_bundle_line(line) || self.lines.get(line).is_some_and(|l| l.bundle.is_some() && !l.tracked);
            let l = next.line_mut(line)?;
            if quantity <= 0 {
                return Err(OrderError::InvalidQuantity { line });
            }
            // A bundle's own line and its untracked components hold no stock: they ship with the tracked components.
            if stockless {
                let due = l.quantity - l.cancelled - l.shipped;
                if quantity > due {
                    return Err(OrderError::TooMany { line, what: "shipped", available: due, requested: quantity });
                }
                l.shipped += quantity;
                continue;
            }
            // Only committed units ship: what is backordered or oversold has no stock behind it yet.
            if quantity > l.committed() {
                return Err(OrderError::TooMany {
                    line,
                    what: "shipped",
                    available: l.committed(),
                    requested: quantity,
                });
            }
            let mut rest = quantity;
            while rest > 0 {
                let pick = &mut l.picks[0];
                let take = rest.min(pick.quantity);
                postings.push(Posting::ToCustomer { item: l.item, bin: pick.bin, quantity: take });
                pick.quantity -= take;
                rest -= take;
                if pick.quantity == 0 {
                    l.picks.remove(0);
                }
            }
            l.shipped += quantity;
        }
        let mut carriage = carriage;
        if carriage.packages.is_empty() {
            carriage.packages = std::mem::take(&mut next.packages);
        }
        next.shipments.push(Shipment {
            lines: requests.iter().map(|&(line, quantity)| LineQuantity { line, quantity }).collect(),
            carriage,
            shipped_at: now,
        });
        *self = next;
        Ok(postings)
    }

    /// Re-chooses the bins a line's committed units in `warehouse` come from, as a pick list is made: the units
    /// the line holds there may come from any of the warehouse's `bins` (its own units count as available to it),
    /// the fewest bins first, then the pickers' walking order. Returns the moves: bins given up first
    /// (committed → available), then bins taken (available → committed), so that one move command applies them.
    pub fn replan(&mut self, line: usize, warehouse: LocationId, bins: &[crate::orders::BinStock]) -> Vec<MoveLine> {
        let Some(l) = self.lines.get_mut(line) else { return vec![] };
        let own: HashMap<LocationId, i64> =
            l.picks.iter().filter(|p| p.warehouse == warehouse).fold(HashMap::new(), |mut m, p| {
                *m.entry(p.bin).or_default() += p.quantity;
                m
            });
        let total: i64 = own.values().sum();
        if total == 0 {
            return vec![];
        }
        let pool = vec![WarehouseStock {
            warehouse,
            bins: bins
                .iter()
                .map(|b| crate::orders::BinStock {
                    available: b.available + own.get(&b.bin).copied().unwrap_or(0),
                    ..*b
                })
                .collect(),
        }];
        let demand = [DemandLine { item: l.item, quantity: total, policy: InventoryPolicy::Deny }];
        let Ok(plan) = allocate(&demand, &HashMap::from([(l.item, pool)])) else { return vec![] };
        let new: Vec<Pick> = plan.lines[0].picks.clone();
        let mut releases = Vec::new();
        let mut takes = Vec::new();
        let mut all_bins: Vec<LocationId> = own.keys().copied().chain(new.iter().map(|p| p.bin)).collect();
        all_bins.sort_unstable();
        all_bins.dedup();
        for bin in all_bins {
            let before = own.get(&bin).copied().unwrap_or(0);
            let after: i64 = new.iter().filter(|p| p.bin == bin).map(|p| p.quantity).sum();
            let (from, to, quantity, list) = if after < before {
                (StockState::Committed, StockState::Available, before - after, &mut releases)
            } else if after > before {
                (StockState::Available, StockState::Committed, after - before, &mut takes)
            } else {
                continue;
            };
            list.push(MoveLine {
                item: l.item,
                quantity,
                from_location: bin,
                from_state: from,
                to_location: bin,
                to_state: to,
            });
        }
        l.picks.retain(|p| p.warehouse != warehouse);
        l.picks.extend(new);
        releases.extend(takes);
        releases
    }

    /// Units of a line that may still be asked back: shipped, less what earlier returns asked for.
    fn returnable(&self, line: usize) -> i64 {
        let asked: i64 =
            self.returns.iter().flat_map(|r| r.lines.iter()).filter(|l| l.line == line).map(|l| l.quantity).sum();
        self.lines.get(line).map(|l| l.shipped - asked).unwrap_or(0)
    }

    /// Opens a return for shipped units; returns its index.
    pub fn request_return(&mut self, lines: &[(usize, i64, String)], now: DateTime<Utc>) -> Result<usize, OrderError> {
        let mut ret = Return { lines: vec![], requested_at: now, received_at: None };
        for (line, quantity, reason) in lines {
            let l = self.lines.get(*line).ok_or(OrderError::NoSuchLine { line: *line })?;
            if let Some(part) = l.bundle {
                return Err(OrderError::PartOfBundle { line: *line, bundle: part.line });
            }
            if *quantity <= 0 {
                return Err(OrderError::InvalidQuantity { line: *line });
            }
            let already: i64 = ret.lines.iter().filter(|l| l.line == *line).map(|l| l.quantity).sum();
            let available = self.returnable(*line) - already;
            if *quantity > available {
                return Err(OrderError::TooMany { line: *line, what: "returned", available, requested: *quantity });
            }
            ret.lines.push(ReturnLine {
                line: *line,
                quantity: *quantity,
                reason: reason.clone(),
                received: 0,
                dispositions: vec![],
            });
        }
        self.returns.push(ret);
        Ok(self.returns.len() - 1)
    }

    /// Receives units of a return (`(return line, quantity, disposition, bin)`): restocked, quality-control and
    /// damaged units go into the given bin in that state; scrapped units never enter stock.
    pub fn receive_return(
        &mut self,
        index: usize,
        lines: &[(usize, i64, Disposition, Option<LocationId>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Posting>, OrderError> {
        let mut next = self.clone();
        let ret = next.returns.get_mut(index).ok_or(OrderError::NoSuchReturn { index })?;
        let mut postings = Vec::new();
        for &(rl, quantity, disposition, bin) in lines {
            let r = ret.lines.get_mut(rl).ok_or(OrderError::NoSuchLine { line: rl })?;
            if quantity <= 0 {
                return Err(OrderError::InvalidQuantity { line: rl });
            }
            let open = r.quantity - r.received;
            if quantity > open {
                return Err(OrderError::TooMany { line: rl, what: "received", available: open, requested: quantity });
            }
            let state = match disposition {
                Disposition::Restock => Some(StockState::Available),
                Disposition::QualityControl => Some(StockState::QualityControl),
                Disposition::Damaged => Some(StockState::Damaged),
                Disposition::Scrap => None,
            };
            if let Some(state) = state {
                let bin = bin.ok_or(OrderError::BinRequired { line: rl, disposition })?;
                // A returned bundle comes back as its components.
                for (item, per) in self.stock_items(r.line) {
                    postings.push(Posting::FromCustomer { item, bin, state, quantity: quantity * per });
                }
            }
            r.received += quantity;
            match r.dispositions.iter_mut().find(|(d, _)| *d == disposition) {
                Some((_, q)) => *q += quantity,
                None => r.dispositions.push((disposition, quantity)),
            }
        }
        ret.received_at = Some(now);
        *self = next;
        Ok(postings)
    }

    /// Records what was packed for the next shipment.
    pub fn pack(&mut self, packages: Vec<Package>) -> Result<(), OrderError> {
        self.check_open()?;
        if self.lines.iter().all(|l| l.committed() == 0) {
            return Err(OrderError::NothingToShip);
        }
        self.packages = packages;
        Ok(())
    }

    /// Records a credit memo for the accounting system.
    pub fn credit_memo(
        &mut self,
        amount: Decimal,
        lines: Vec<LineQuantity>,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        // A credit memo gives back money the order was worth: never more than that, less earlier memos.
        let credited: Decimal = self.credit_memos.iter().map(|m| m.amount).sum();
        let gross: Decimal =
            self.lines.iter().map(|l| l.unit_price * Decimal::from(l.quantity) + l.tax - l.discount).sum();
        if amount <= Decimal::ZERO || amount > gross - credited {
            return Err(OrderError::InvalidCreditMemo);
        }
        for l in &lines {
            let line = self.lines.get(l.line).ok_or(OrderError::NoSuchLine { line: l.line })?;
            if l.quantity <= 0 || l.quantity > line.quantity {
                return Err(OrderError::InvalidQuantity { line: l.line });
            }
        }
        self.credit_memos.push(CreditMemo { amount, lines, reason, created_at: now });
        Ok(())
    }

    /// Sets the units still on a line (cancelled ones not counted) after placement: more is allocated like a new
    /// line (the item's policy at zero applies), less releases owed units first, then committed ones. Only the
    /// difference moves; never below what has shipped.
    pub fn change_quantity(
        &mut self,
        line: usize,
        quantity: i64,
        stock: &HashMap<ItemId, Vec<WarehouseStock>>,
    ) -> Result<Vec<Posting>, OrderError> {
        self.check_open()?;
        if self.lines.get(line).is_some_and(|l| l.bundle.is_some()) || self.is_bundle_line(line) {
            return Err(OrderError::BundleNotEditable { line });
        }
        let mut next = self.clone();
        let l = next.line_mut(line)?;
        if quantity < 0 {
            return Err(OrderError::InvalidQuantity { line });
        }
        if quantity < l.shipped {
            return Err(OrderError::BelowShipped { line, quantity, shipped: l.shipped });
        }
        // Callers speak of the units still on the line; the line's quantity also counts its cancelled units.
        let quantity = quantity + l.cancelled;
        let old_quantity = l.quantity;
        let mut postings = Vec::new();
        if quantity > l.quantity {
            let extra = quantity - l.quantity;
            if l.tracked {
                let demand = [DemandLine { item: l.item, quantity: extra, policy: l.policy }];
                let got = allocate(&demand, stock).map_err(|e| match e {
                    AllocationError::Shortage(mut s) => {
                        s.lines.iter_mut().for_each(|x| x.line = line);
                        AllocationError::Shortage(s)
                    }
                    other => other,
                })?;
                let a = &got.lines[0];
                for p in &a.picks {
                    postings.push(Posting::Move(MoveLine {
                        item: l.item,
                        quantity: p.quantity,
                        from_location: p.bin,
                        from_state: StockState::Available,
                        to_location: p.bin,
                        to_state: StockState::Committed,
                    }));
                    match l.picks.iter_mut().find(|x| x.bin == p.bin) {
                        Some(x) => x.quantity += p.quantity,
                        None => l.picks.push(*p),
                    }
                }
                l.backordered += a.backordered;
                l.oversold += a.oversold;
            }
            l.quantity = quantity;
        } else if quantity < l.quantity {
            let mut rest = l.quantity - quantity;
            for owed in [&mut l.backordered, &mut l.oversold] {
                let take = rest.min(*owed);
                *owed -= take;
                rest -= take;
            }
            while rest > 0 {
                let Some(pick) = l.picks.last_mut() else { break };
                let take = rest.min(pick.quantity);
                postings.push(Posting::Move(MoveLine {
                    item: l.item,
                    quantity: take,
                    from_location: pick.bin,
                    from_state: StockState::Committed,
                    to_location: pick.bin,
                    to_state: StockState::Available,
                }));
                pick.quantity -= take;
                rest -= take;
                if pick.quantity == 0 {
                    l.picks.pop();
                }
            }
            // Discount and tax were given for the whole line: they shrink with it.
            let kept = Decimal::from(quantity) / Decimal::from(old_quantity);
            l.discount = (l.discount * kept).round_dp(2);
            l.tax = (l.tax * kept).round_dp(2);
            l.quantity = quantity;
        }
        *self = next;
        Ok(postings)
    }

    /// Adds a line after placement, allocated like the lines placed with the order. Returns its index.
    pub fn add_line(
        &mut self,
        new: NewLine,
        stock: &HashMap<ItemId, Vec<WarehouseStock>>,
    ) -> Result<(usize, Vec<Posting>), OrderError> {
        self.check_open()?;
        if new.bundle.is_some() {
            return Err(OrderError::BundleNotEditable { line: self.lines.len() });
        }
        let quantity = new.quantity;
        let mut next = self.clone();
        next.lines.push(OrderLine { quantity: 0, ..Order::from_hold(vec![new], &[]).lines.remove(0) });
        let index = next.lines.len() - 1;
        let postings = next.change_quantity(index, quantity, stock)?;
        *self = next;
        Ok((index, postings))
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
            bundle: None,
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

#[cfg(test)]
mod replan_tests {
    use super::*;
    use crate::orders::BinStock;

    #[test]
    fn a_pick_list_gathers_a_line_into_the_fewest_bins() {
        let line = NewLine {
            sku: "A".into(),
            item: 7,
            quantity: 4,
            unit_price: Decimal::ONE,
            discount: Decimal::ZERO,
            tax: Decimal::ZERO,
            policy: InventoryPolicy::Deny,
            tracked: true,
            bundle: None,
        };
        let bins = |a: i64, b: i64, c: i64| {
            vec![
                BinStock { bin: 10, pick_sequence: Some(1), available: a },
                BinStock { bin: 11, pick_sequence: Some(2), available: b },
                BinStock { bin: 12, pick_sequence: Some(3), available: c },
            ]
        };
        let stock = HashMap::from([(7, vec![WarehouseStock { warehouse: 1, bins: bins(2, 2, 0) }])]);
        let (mut order, _) = Order::place(vec![line], &stock).unwrap();
        assert_eq!(order.lines[0].picks.len(), 2);
        // Since then bin 12 was filled: all four units can come from it.
        let moves = order.replan(0, 1, &bins(0, 0, 9));
        assert_eq!(order.lines[0].picks, vec![Pick { warehouse: 1, bin: 12, quantity: 4 }]);
        assert_eq!(moves.len(), 3);
        assert!(moves[..2].iter().all(|m| m.to_state == StockState::Available), "bins given up come first");
        assert_eq!((moves[2].to_location, moves[2].quantity, moves[2].to_state), (12, 4, StockState::Committed));
        assert!(order.replan(0, 1, &bins(0, 0, 5)).is_empty(), "already the best plan");
    }
}

//! Inbound and correcting documents as pure rules: purchase orders and their receipts, transfers between
//! warehouses, cycle counts, ABC classes, and the incoming quantities and promise dates derived from open documents.
//!
//! `incoming` is never booked as fake movements: it is derived from the open documents (ordered − received − closed
//! on purchase order lines, shipped − received − damaged − lost on transfers), so that the ledger only ever holds
//! what physically happened and `verify` has nothing to reconcile.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::stock::{ItemId, LocationId, StockState, MAX_LINE_QUANTITY};

/// Most lines on one purchase order, transfer or count.
pub const MAX_DOCUMENT_LINES: usize = 1_000;
/// Largest over-receipt tolerance, in percent of a line's ordered quantity.
pub const MAX_TOLERANCE_PERCENT: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PoStatus {
    Draft,
    Ordered,
    PartiallyReceived,
    Received,
    Cancelled,
    /// Closed short: what was not received will not come.
    Closed,
}

impl PoStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PoStatus::Draft => "draft",
            PoStatus::Ordered => "ordered",
            PoStatus::PartiallyReceived => "partially_received",
            PoStatus::Received => "received",
            PoStatus::Cancelled => "cancelled",
            PoStatus::Closed => "closed",
        }
    }

    /// Whether the supplier still owes units: the open quantities count as incoming.
    pub fn is_open(self) -> bool {
        matches!(self, PoStatus::Ordered | PoStatus::PartiallyReceived)
    }
}

/// One line of a purchase order. Unit costs are in the order's (the supplier's) currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoLine {
    pub sku: String,
    pub item: ItemId,
    pub quantity: i64,
    pub unit_cost: Decimal,
    pub expected_date: Option<NaiveDate>,
    pub received: i64,
    /// Units given up by closing the order short.
    pub closed: i64,
}

impl PoLine {
    /// Units still expected: never negative, even after an over-receipt.
    pub fn open(&self) -> i64 {
        (self.quantity - self.received - self.closed).max(0)
    }
}

/// One line of a receipt: what arrived, where it went, and at what cost (for cost layers later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptLine {
    /// Index of the purchase order line.
    pub line: usize,
    pub sku: String,
    #[serde(skip_serializing, default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub item: ItemId,
    pub quantity: i64,
    #[serde(skip_serializing, default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub bin: LocationId,
    /// Path of the bin the units went into.
    pub location: String,
    /// `available`, or `quality_control` for units to be inspected first.
    pub state: StockState,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_cost: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoReceipt {
    /// 1-based number of the receipt on its order; movements carry `receipt {order}/{number}` as reference.
    pub number: usize,
    pub lines: Vec<ReceiptLine>,
    pub received_at: DateTime<Utc>,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseOrder {
    pub supplier_id: i64,
    pub warehouse: LocationId,
    pub currency: String,
    pub status: PoStatus,
    /// Over-receipt allowed per line, in percent of its quantity (0: never more than ordered).
    pub tolerance_percent: u32,
    pub lines: Vec<PoLine>,
    pub receipts: Vec<PoReceipt>,
    pub notes: Option<String>,
}

/// A line of a receiving request, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveLine {
    pub line: usize,
    pub quantity: i64,
    pub bin: LocationId,
    pub location: String,
    pub state: StockState,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurchasingError {
    #[error("the document is {status}; this needs it to be {needed}")]
    WrongStatus { status: String, needed: &'static str },
    #[error("line {line} does not exist")]
    NoSuchLine { line: usize },
    #[error("line {line}: quantity must be between {min} and {MAX_LINE_QUANTITY}")]
    InvalidQuantity { line: usize, min: i64 },
    #[error("line {line}: {requested} requested but only {allowed} more may be received")]
    OverReceipt { line: usize, allowed: i64, requested: i64 },
    #[error("line {line}: {requested} reported but only {in_transit} are in transit")]
    MoreThanInTransit { line: usize, in_transit: i64, requested: i64 },
    #[error("line {line}: receive units as available or quality_control")]
    InvalidState { line: usize },
    #[error("the count was approved already")]
    AlreadyApproved,
    #[error("no line of the count has been counted")]
    NothingCounted,
    #[error("{sku} in {location} is outside what this count covers")]
    OutsideCount { sku: String, location: String },
}

fn check_quantity(line: usize, q: i64, min: i64) -> Result<(), PurchasingError> {
    if (min..=MAX_LINE_QUANTITY).contains(&q) {
        Ok(())
    } else {
        Err(PurchasingError::InvalidQuantity { line, min })
    }
}

impl PurchaseOrder {
    fn wrong(&self, needed: &'static str) -> PurchasingError {
        PurchasingError::WrongStatus { status: self.status.as_str().into(), needed }
    }

    /// Sends a draft to the supplier: from now on its lines count as incoming.
    pub fn mark_ordered(&mut self) -> Result<(), PurchasingError> {
        if self.status != PoStatus::Draft {
            return Err(self.wrong("draft"));
        }
        self.status = PoStatus::Ordered;
        Ok(())
    }

    /// Cancels an order nothing was received on.
    pub fn cancel(&mut self) -> Result<(), PurchasingError> {
        if !matches!(self.status, PoStatus::Draft | PoStatus::Ordered) {
            return Err(self.wrong("draft or ordered"));
        }
        for l in &mut self.lines {
            l.closed = l.open();
        }
        self.status = PoStatus::Cancelled;
        Ok(())
    }

    /// Closes an order short: what was not received leaves incoming.
    pub fn close(&mut self) -> Result<(), PurchasingError> {
        if !self.status.is_open() {
            return Err(self.wrong("ordered or partially_received"));
        }
        for l in &mut self.lines {
            l.closed += l.open();
        }
        self.status = PoStatus::Closed;
        Ok(())
    }

    /// Most units line `line` may still take: its open quantity plus the tolerance not yet used.
    pub fn receivable(&self, line: usize) -> i64 {
        let Some(l) = self.lines.get(line) else { return 0 };
        let limit = l.quantity + l.quantity * i64::from(self.tolerance_percent) / 100;
        (limit - l.received - l.closed).max(0)
    }

    /// Books a receipt: all lines or none. Returns the receipt's index.
    pub fn receive(
        &mut self,
        lines: &[ReceiveLine],
        now: DateTime<Utc>,
        reference: Option<String>,
    ) -> Result<usize, PurchasingError> {
        if !self.status.is_open() {
            return Err(self.wrong("ordered or partially_received"));
        }
        let mut next = self.clone();
        let mut out = Vec::with_capacity(lines.len());
        for (i, r) in lines.iter().enumerate() {
            check_quantity(i, r.quantity, 1)?;
            if !matches!(r.state, StockState::Available | StockState::QualityControl) {
                return Err(PurchasingError::InvalidState { line: i });
            }
            if r.line >= next.lines.len() {
                return Err(PurchasingError::NoSuchLine { line: r.line });
            }
            let allowed = next.receivable(r.line);
            if r.quantity > allowed {
                return Err(PurchasingError::OverReceipt { line: i, allowed, requested: r.quantity });
            }
            let l = &mut next.lines[r.line];
            l.received += r.quantity;
            out.push(ReceiptLine {
                line: r.line,
                sku: l.sku.clone(),
                item: l.item,
                quantity: r.quantity,
                bin: r.bin,
                location: r.location.clone(),
                state: r.state,
                unit_cost: l.unit_cost,
            });
        }
        next.status =
            if next.lines.iter().all(|l| l.open() == 0) { PoStatus::Received } else { PoStatus::PartiallyReceived };
        let number = next.receipts.len() + 1;
        next.receipts.push(PoReceipt { number, lines: out, received_at: now, reference });
        *self = next;
        Ok(number - 1)
    }

    /// What this order adds to its warehouse's incoming, per item.
    pub fn incoming(&self) -> Vec<(ItemId, i64)> {
        if !self.status.is_open() {
            return vec![];
        }
        self.lines.iter().filter(|l| l.open() > 0).map(|l| (l.item, l.open())).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    Draft,
    InTransit,
    PartiallyReceived,
    Received,
    Cancelled,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Draft => "draft",
            TransferStatus::InTransit => "in_transit",
            TransferStatus::PartiallyReceived => "partially_received",
            TransferStatus::Received => "received",
            TransferStatus::Cancelled => "cancelled",
        }
    }
    pub fn is_open(self) -> bool {
        matches!(self, TransferStatus::InTransit | TransferStatus::PartiallyReceived)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferLine {
    pub sku: String,
    pub item: ItemId,
    pub quantity: i64,
    /// The bin at the source the units are shipped from.
    pub from_bin: LocationId,
    pub from_location: String,
    pub shipped: i64,
    pub received: i64,
    /// Arrived damaged: received into the damaged state.
    pub damaged: i64,
    /// Lost on the way: written off from transit.
    pub lost: i64,
}

impl TransferLine {
    /// Units on the way: shipped and not yet accounted for at the destination.
    pub fn in_transit(&self) -> i64 {
        self.shipped - self.received - self.damaged - self.lost
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from_warehouse: LocationId,
    pub to_warehouse: LocationId,
    pub status: TransferStatus,
    pub expected_date: Option<NaiveDate>,
    pub lines: Vec<TransferLine>,
}

/// What arrived of one transfer line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferArrival {
    pub line: usize,
    pub received: i64,
    pub damaged: i64,
    pub lost: i64,
}

impl Transfer {
    fn wrong(&self, needed: &'static str) -> PurchasingError {
        PurchasingError::WrongStatus { status: self.status.as_str().into(), needed }
    }

    /// Ships every line in full; the caller moves the units from their bins to transit.
    pub fn ship(&mut self) -> Result<(), PurchasingError> {
        if self.status != TransferStatus::Draft {
            return Err(self.wrong("draft"));
        }
        for l in &mut self.lines {
            l.shipped = l.quantity;
        }
        self.status = TransferStatus::InTransit;
        Ok(())
    }

    pub fn cancel(&mut self) -> Result<(), PurchasingError> {
        if self.status != TransferStatus::Draft {
            return Err(self.wrong("draft"));
        }
        self.status = TransferStatus::Cancelled;
        Ok(())
    }

    /// Books arrivals, all or none.
    pub fn receive(&mut self, arrivals: &[TransferArrival]) -> Result<(), PurchasingError> {
        if !self.status.is_open() {
            return Err(self.wrong("in_transit or partially_received"));
        }
        let mut next = self.clone();
        for (i, a) in arrivals.iter().enumerate() {
            for q in [a.received, a.damaged, a.lost] {
                check_quantity(i, q, 0)?;
            }
            let total = a.received + a.damaged + a.lost;
            if total == 0 {
                return Err(PurchasingError::InvalidQuantity { line: i, min: 1 });
            }
            let l = next.lines.get_mut(a.line).ok_or(PurchasingError::NoSuchLine { line: a.line })?;
            if total > l.in_transit() {
                return Err(PurchasingError::MoreThanInTransit {
                    line: i,
                    in_transit: l.in_transit(),
                    requested: total,
                });
            }
            l.received += a.received;
            l.damaged += a.damaged;
            l.lost += a.lost;
        }
        next.status = if next.lines.iter().all(|l| l.in_transit() == 0) {
            TransferStatus::Received
        } else {
            TransferStatus::PartiallyReceived
        };
        *self = next;
        Ok(())
    }

    /// What this transfer adds to its destination's incoming, per item.
    pub fn incoming(&self) -> Vec<(ItemId, i64)> {
        self.lines.iter().filter(|l| l.in_transit() > 0).map(|l| (l.item, l.in_transit())).collect()
    }
}

/// Incoming per (item, warehouse) over every open purchase order and transfer.
pub fn incoming<'a>(
    orders: impl IntoIterator<Item = &'a PurchaseOrder>,
    transfers: impl IntoIterator<Item = &'a Transfer>,
) -> HashMap<(ItemId, LocationId), i64> {
    let mut out: HashMap<(ItemId, LocationId), i64> = HashMap::new();
    for po in orders {
        for (item, q) in po.incoming() {
            *out.entry((item, po.warehouse)).or_default() += q;
        }
    }
    for t in transfers {
        for (item, q) in t.incoming() {
            *out.entry((item, t.to_warehouse)).or_default() += q;
        }
    }
    out.retain(|_, q| *q > 0);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CountStatus {
    Open,
    Approved,
    Cancelled,
}

impl CountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CountStatus::Open => "open",
            CountStatus::Approved => "approved",
            CountStatus::Cancelled => "cancelled",
        }
    }
}

/// One (item, bin) of a count. `expected` is on_hand when the count was opened: the snapshot the counted quantity
/// is compared with, so that movements during the count are neither lost nor counted twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountLine {
    pub sku: String,
    pub item: ItemId,
    pub bin: LocationId,
    pub location: String,
    pub expected: i64,
    pub counted: Option<i64>,
    /// Value of one unit for the variance report (the variant's cost, else its price), in no particular currency.
    pub unit_value: Decimal,
}

impl CountLine {
    /// counted − expected; zero until counted.
    pub fn variance(&self) -> i64 {
        self.counted.map(|c| c - self.expected).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub status: CountStatus,
    /// Hide `expected` from readers until approval, so that counters count instead of confirming.
    pub blind: bool,
    pub lines: Vec<CountLine>,
    pub snapshot_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    /// What the count covers, for stock found that was not on the snapshot. Counts stored before scopes existed
    /// have none and take entries for their snapshot lines only.
    #[serde(default)]
    pub scope: Option<CountScope>,
}

/// What a count covers: bins under `within` (everywhere when absent), and of those the `items` (any when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountScope {
    pub within: Option<String>,
    pub items: Option<Vec<ItemId>>,
}

impl CountScope {
    /// Whether stock of `item` in the bin at `path` is part of the count.
    pub fn covers(&self, item: ItemId, path: &str) -> bool {
        let inside = match &self.within {
            None => true,
            Some(w) => path == w || path.strip_prefix(w.as_str()).is_some_and(|rest| rest.starts_with('/')),
        };
        inside && self.items.as_ref().is_none_or(|items| items.contains(&item))
    }
}

impl Count {
    /// Adds a line for stock found in a bin the snapshot did not list for that item. Every (item, bin) in scope
    /// with stock was on the snapshot, so it held none then: `expected` is 0 and the whole counted quantity is the
    /// difference at the snapshot. Returns the new line's index, or the existing one's.
    pub fn found(&mut self, mut line: CountLine) -> Result<usize, PurchasingError> {
        if self.status != CountStatus::Open {
            return Err(PurchasingError::AlreadyApproved);
        }
        if let Some(i) = self.lines.iter().position(|l| l.item == line.item && l.bin == line.bin) {
            return Ok(i);
        }
        if !self.scope.as_ref().is_some_and(|s| s.covers(line.item, &line.location)) {
            return Err(PurchasingError::OutsideCount { sku: line.sku, location: line.location });
        }
        line.expected = 0;
        line.counted = None;
        self.lines.push(line);
        Ok(self.lines.len() - 1)
    }

    /// Records a counted quantity (replacing an earlier one).
    pub fn record(&mut self, line: usize, counted: i64) -> Result<(), PurchasingError> {
        if self.status != CountStatus::Open {
            return Err(PurchasingError::AlreadyApproved);
        }
        check_quantity(line, counted, 0)?;
        let l = self.lines.get_mut(line).ok_or(PurchasingError::NoSuchLine { line })?;
        l.counted = Some(counted);
        Ok(())
    }

    /// Approves the count: the adjustments to book, `(item, bin, delta)` with delta ≠ 0, to the live balance.
    pub fn approve(&mut self, now: DateTime<Utc>) -> Result<Vec<(ItemId, LocationId, i64)>, PurchasingError> {
        if self.status != CountStatus::Open {
            return Err(PurchasingError::AlreadyApproved);
        }
        if self.lines.iter().all(|l| l.counted.is_none()) {
            return Err(PurchasingError::NothingCounted);
        }
        self.status = CountStatus::Approved;
        self.approved_at = Some(now);
        Ok(self.lines.iter().filter(|l| l.variance() != 0).map(|l| (l.item, l.bin, l.variance())).collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AbcClass {
    A,
    B,
    C,
}

/// ABC classes by sales value: items sorted by value, highest first; those making up the first `a_share` of the
/// total value are A, up to `b_share` B, the rest (and items that sold nothing) C. Shares are fractions (0.8).
pub fn abc_classes(values: &[(ItemId, Decimal)], a_share: Decimal, b_share: Decimal) -> BTreeMap<ItemId, AbcClass> {
    let mut sorted: Vec<(ItemId, Decimal)> = values.to_vec();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: Decimal = sorted.iter().map(|(_, v)| (*v).max(Decimal::ZERO)).sum();
    let mut out = BTreeMap::new();
    let mut before = Decimal::ZERO;
    for (item, v) in sorted {
        let class = if total.is_zero() || v <= Decimal::ZERO {
            AbcClass::C
        } else if before / total < a_share {
            AbcClass::A
        } else if before / total < b_share {
            AbcClass::B
        } else {
            AbcClass::C
        };
        before += v.max(Decimal::ZERO);
        out.insert(item, class);
    }
    out
}

/// Whether an item of `class` counted last at `last` is due at `now`, given the days between counts per class.
pub fn count_due(last: Option<DateTime<Utc>>, frequency_days: i64, now: DateTime<Utc>) -> bool {
    match last {
        None => true,
        Some(t) => now - t >= chrono::TimeDelta::days(frequency_days),
    }
}

/// Promise dates first-come first-served: backordered quantities (oldest first) are covered by the supplies of
/// open documents (earliest date first); each gets the date of the supply that covers its last unit, or none when
/// the supplies run out first. Supplies without a date cover units but promise nothing.
pub fn promise_dates(backorders: &[i64], supplies: &[(Option<NaiveDate>, i64)]) -> Vec<Option<NaiveDate>> {
    let mut supplies: Vec<(Option<NaiveDate>, i64)> = supplies.iter().filter(|s| s.1 > 0).copied().collect();
    // Dated supplies first, in date order; undated ones last.
    supplies.sort_by_key(|(d, _)| (d.is_none(), *d));
    let mut out = Vec::with_capacity(backorders.len());
    let mut i = 0;
    let mut left = supplies.first().map(|s| s.1).unwrap_or(0);
    for &need in backorders {
        let mut need = need.max(0);
        let mut date = None;
        let mut covered = need == 0;
        while need > 0 && i < supplies.len() {
            let take = need.min(left);
            need -= take;
            left -= take;
            date = supplies[i].0;
            if need == 0 {
                covered = true;
            }
            if left == 0 {
                i += 1;
                left = supplies.get(i).map(|s| s.1).unwrap_or(0);
            }
        }
        out.push(if covered { date } else { None });
    }
    out
}

#[cfg(test)]
mod tests;

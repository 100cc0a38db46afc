//! Inventory costing: cost layers per item ledger under FIFO or moving weighted average, and what each movement
//! cost.
//!
//! A [`CostLedger`] is one item's cost history (per warehouse when the caller keeps one ledger per warehouse,
//! otherwise for the whole item). Movements are folded in ledger order; each returns a [`CostedMovement`] saying
//! the value it moved, which is what COGS, shrinkage and the journal are built from.
//!
//! Rounding rule: every value is held at [`COST_SCALE`] decimal places (half away from zero). A receipt's value is
//! `quantity × unit cost + allocated landed cost`, rounded once. An outbound movement that takes part of a layer (or
//! part of the average pool) takes `round(layer value × taken / layer quantity)`; one that empties a layer takes
//! exactly the value left in it. Rounding differences therefore stay inside the layer and leave with its last unit,
//! so `value on hand = Σ inbound values − Σ outbound values` holds exactly, and no layer's value goes negative
//! (a rounded share of a non-negative value is never more than the value itself).
//!
//! One ledger holds one currency. Costs in another currency are refused, never converted.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use rust_decimal::prelude::*;
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};

use crate::codes::validate_currency;
use crate::stock::{ItemId, LocationId};

/// Decimal places every cost value is held at: finer than any currency's minor unit, so that unit costs of cheap
/// items survive, and fixed, so that totals reconcile exactly.
pub const COST_SCALE: u32 = 4;

/// Id of a ledger movement, so that every cost and journal line can be traced back to it.
pub type MovementId = i64;

/// Rounds a value to the cost scale, half away from zero.
pub fn round_cost(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(COST_SCALE, RoundingStrategy::MidpointAwayFromZero)
}

/// How an item's outbound movements are costed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostMethod {
    /// First in, first out: outbound units take the cost of the oldest layer still on hand.
    Fifo,
    /// Moving weighted average: all units on hand share one pool, and outbound units take its running average.
    Average,
}

/// Why units leave. All take their cost from the layers; the reason decides where the journal books it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundReason {
    /// Sold and shipped: cost of goods sold.
    Shipment,
    /// Destroyed or written off: a loss at cost.
    Scrap,
    /// Missing at a count (an adjustment down): a loss at cost.
    Shrinkage,
}

/// What a movement does to an item's costs. Quantities are positive; direction is in the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CostMovementKind {
    /// Goods received against a purchase order: a new layer at `unit_cost` plus this line's share of landed costs.
    Receipt { quantity: i64, unit_cost: Decimal, landed_cost: Decimal, currency: String },
    /// Units found (an adjustment up). They take the current cost unless the caller names one (in `currency`, or
    /// the ledger's when that is absent).
    AdjustmentIn { quantity: i64, unit_cost: Option<Decimal>, currency: Option<String> },
    /// Units leaving for any reason, costed from the layers.
    Outbound { quantity: i64, reason: OutboundReason },
    /// A customer return put back on the shelf: it takes back the cost at which `shipment` left.
    ReturnRestocked { quantity: i64, shipment: MovementId },
}

/// One movement of one item ledger, in ledger order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostMovement {
    pub id: MovementId,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: CostMovementKind,
}

/// Which way a costed movement moved value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostedKind {
    Receipt,
    AdjustmentIn,
    Shipment,
    Scrap,
    Shrinkage,
    ReturnRestocked,
}

impl CostedKind {
    /// Whether the movement brought units (and value) in.
    pub fn is_inbound(self) -> bool {
        matches!(self, CostedKind::Receipt | CostedKind::AdjustmentIn | CostedKind::ReturnRestocked)
    }
}

/// What one movement cost, and where the ledger stood after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostedMovement {
    pub id: MovementId,
    pub at: DateTime<Utc>,
    pub kind: CostedKind,
    pub quantity: i64,
    /// Total value moved, always non-negative; the direction is in `kind`.
    pub value: Decimal,
    /// The part of `value` that is allocated landed cost (receipts only; zero otherwise).
    pub landed_value: Decimal,
    pub currency: String,
    /// Quantity and value on hand after this movement.
    pub on_hand_after: i64,
    pub value_after: Decimal,
}

/// Quantity and value on hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Valuation {
    pub quantity: i64,
    pub value: Decimal,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    #[error("'{0}' is not an ISO 4217 currency code")]
    BadCurrency(String),
    #[error("the cost is in {given}, the item ledger in {ledger}; costs are never converted")]
    CurrencyMismatch { given: String, ledger: String },
    #[error("costs must not be negative")]
    NegativeCost,
    #[error("quantities must be positive")]
    NonPositiveQuantity,
    #[error("only {on_hand} units have a cost on hand, {requested} requested")]
    NotEnoughStock { on_hand: i64, requested: i64 },
    #[error("the item has no cost yet; an adjustment in needs an explicit unit cost")]
    NoCurrentCost,
    #[error("movement {0} is not a shipment of this item ledger")]
    UnknownShipment(MovementId),
    #[error("only {returnable} units of shipment {shipment} can still be returned, {requested} requested")]
    ReturnExceedsShipment { shipment: MovementId, returnable: i64, requested: i64 },
    #[error("movement {id} is dated before the previous movement; costs are folded in ledger order")]
    OutOfOrder { id: MovementId },
    #[error("movement {0} was already costed")]
    DuplicateMovement(MovementId),
    #[error("the item ledger is costed by {ledger:?}, not {given:?}")]
    MethodMismatch { given: CostMethod, ledger: CostMethod },
    #[error("landed costs cannot be allocated: {0}")]
    Allocation(&'static str),
}

/// A quantity of units at one total value. FIFO keeps many, oldest first; average keeps at most one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLayer {
    pub quantity: i64,
    pub value: Decimal,
    /// The movement that created the layer (for the average pool: the first one still pooled).
    pub source: MovementId,
}

/// Takes `take` of `quantity` units worth `value`: the exact remainder when emptying, else the rounded share.
fn share(value: Decimal, quantity: i64, take: i64) -> Decimal {
    if take >= quantity {
        value
    } else {
        round_cost(value * Decimal::from(take) / Decimal::from(quantity))
    }
}

/// What is left of a shipment that can still come back, and at what value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Returnable {
    quantity: i64,
    value: Decimal,
}

/// One item's cost history: layers on hand, what each shipment can still take back, and every costed movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLedger {
    method: CostMethod,
    currency: String,
    layers: VecDeque<CostLayer>,
    /// Unit cost of the latest inbound layer: the "current cost" of a FIFO item once its shelf is empty.
    last_unit_cost: Option<Decimal>,
    returnable: HashMap<MovementId, Returnable>,
    history: Vec<CostedMovement>,
    seen: HashSet<MovementId>,
    total_in: Decimal,
    total_out: Decimal,
}

impl CostLedger {
    pub fn new(method: CostMethod, currency: &str) -> Result<Self, CostError> {
        validate_currency(currency).map_err(|_| CostError::BadCurrency(currency.to_string()))?;
        Ok(Self {
            method,
            currency: currency.to_string(),
            layers: VecDeque::new(),
            last_unit_cost: None,
            returnable: HashMap::new(),
            history: Vec::new(),
            seen: HashSet::new(),
            total_in: Decimal::ZERO,
            total_out: Decimal::ZERO,
        })
    }

    pub fn method(&self) -> CostMethod {
        self.method
    }
    pub fn currency(&self) -> &str {
        &self.currency
    }
    /// Layers on hand, oldest first.
    pub fn layers(&self) -> impl Iterator<Item = &CostLayer> {
        self.layers.iter()
    }
    /// Every costed movement so far, in ledger order.
    pub fn history(&self) -> &[CostedMovement] {
        &self.history
    }
    /// Sum of all inbound values and of all outbound values so far.
    pub fn totals(&self) -> (Decimal, Decimal) {
        (self.total_in, self.total_out)
    }

    pub fn on_hand(&self) -> Valuation {
        Valuation {
            quantity: self.layers.iter().map(|l| l.quantity).sum(),
            value: self.layers.iter().map(|l| l.value).sum(),
            currency: self.currency.clone(),
        }
    }

    /// Quantity and value on hand just after the last movement dated at or before `as_of`.
    pub fn as_of(&self, as_of: DateTime<Utc>) -> Valuation {
        let n = self.history.partition_point(|m| m.at <= as_of);
        match n.checked_sub(1).map(|i| &self.history[i]) {
            Some(m) => Valuation { quantity: m.on_hand_after, value: m.value_after, currency: self.currency.clone() },
            None => Valuation { quantity: 0, value: Decimal::ZERO, currency: self.currency.clone() },
        }
    }

    /// The cost a unit found now would take: the running average, or for FIFO the latest inbound unit cost.
    pub fn current_unit_cost(&self) -> Option<Decimal> {
        match self.method {
            CostMethod::Average => match self.layers.front() {
                Some(l) if l.quantity > 0 => Some(l.value / Decimal::from(l.quantity)),
                _ => self.last_unit_cost,
            },
            CostMethod::Fifo => self.last_unit_cost,
        }
    }

    fn check_currency(&self, given: &str) -> Result<(), CostError> {
        if given == self.currency {
            Ok(())
        } else {
            Err(CostError::CurrencyMismatch { given: given.to_string(), ledger: self.currency.clone() })
        }
    }

    /// Folds one movement in. On error nothing changes.
    pub fn apply(&mut self, m: &CostMovement) -> Result<CostedMovement, CostError> {
        if let Some(last) = self.history.last() {
            if m.at < last.at {
                return Err(CostError::OutOfOrder { id: m.id });
            }
        }
        if self.seen.contains(&m.id) {
            return Err(CostError::DuplicateMovement(m.id));
        }
        let (kind, quantity, value, landed) = match &m.kind {
            CostMovementKind::Receipt { quantity, unit_cost, landed_cost, currency } => {
                self.check_currency(currency)?;
                positive(*quantity)?;
                if unit_cost.is_sign_negative() && !unit_cost.is_zero()
                    || landed_cost.is_sign_negative() && !landed_cost.is_zero()
                {
                    return Err(CostError::NegativeCost);
                }
                let landed = round_cost(*landed_cost);
                let value = round_cost(Decimal::from(*quantity) * unit_cost) + landed;
                self.push_in(m.id, *quantity, value);
                self.last_unit_cost = Some(value / Decimal::from(*quantity));
                (CostedKind::Receipt, *quantity, value, landed)
            }
            CostMovementKind::AdjustmentIn { quantity, unit_cost, currency } => {
                positive(*quantity)?;
                if let Some(c) = currency {
                    self.check_currency(c)?;
                }
                let unit = match unit_cost {
                    Some(u) if u.is_sign_negative() && !u.is_zero() => return Err(CostError::NegativeCost),
                    Some(u) => *u,
                    None => self.current_unit_cost().ok_or(CostError::NoCurrentCost)?,
                };
                let value = round_cost(Decimal::from(*quantity) * unit);
                self.push_in(m.id, *quantity, value);
                if unit_cost.is_some() || self.last_unit_cost.is_none() {
                    self.last_unit_cost = Some(unit);
                }
                (CostedKind::AdjustmentIn, *quantity, value, Decimal::ZERO)
            }
            CostMovementKind::Outbound { quantity, reason } => {
                positive(*quantity)?;
                let on_hand: i64 = self.layers.iter().map(|l| l.quantity).sum();
                if *quantity > on_hand {
                    return Err(CostError::NotEnoughStock { on_hand, requested: *quantity });
                }
                let average_before = self.current_unit_cost();
                let value = self.take(*quantity);
                if self.method == CostMethod::Average && self.layers.is_empty() {
                    // An emptied pool keeps its last average as the current cost for units found later.
                    self.last_unit_cost = average_before;
                }
                let kind = match reason {
                    OutboundReason::Shipment => {
                        self.returnable.insert(m.id, Returnable { quantity: *quantity, value });
                        CostedKind::Shipment
                    }
                    OutboundReason::Scrap => CostedKind::Scrap,
                    OutboundReason::Shrinkage => CostedKind::Shrinkage,
                };
                (kind, *quantity, value, Decimal::ZERO)
            }
            CostMovementKind::ReturnRestocked { quantity, shipment } => {
                positive(*quantity)?;
                let r = self.returnable.get(shipment).ok_or(CostError::UnknownShipment(*shipment))?;
                if *quantity > r.quantity {
                    return Err(CostError::ReturnExceedsShipment {
                        shipment: *shipment,
                        returnable: r.quantity,
                        requested: *quantity,
                    });
                }
                let value = share(r.value, r.quantity, *quantity);
                let r = self.returnable.get_mut(shipment).expect("checked above");
                r.quantity -= quantity;
                r.value -= value;
                self.push_in(m.id, *quantity, value);
                (CostedKind::ReturnRestocked, *quantity, value, Decimal::ZERO)
            }
        };
        if kind.is_inbound() {
            self.total_in += value;
        } else {
            self.total_out += value;
        }
        let after = self.on_hand();
        let costed = CostedMovement {
            id: m.id,
            at: m.at,
            kind,
            quantity,
            value,
            landed_value: landed,
            currency: self.currency.clone(),
            on_hand_after: after.quantity,
            value_after: after.value,
        };
        self.history.push(costed.clone());
        self.seen.insert(m.id);
        Ok(costed)
    }

    /// Folds a batch all-or-nothing: on the first error nothing of the batch is kept.
    pub fn apply_batch(&mut self, batch: &[CostMovement]) -> Result<Vec<CostedMovement>, (usize, CostError)> {
        let mut next = self.clone();
        let mut out = Vec::with_capacity(batch.len());
        for (i, m) in batch.iter().enumerate() {
            out.push(next.apply(m).map_err(|e| (i, e))?);
        }
        *self = next;
        Ok(out)
    }

    fn push_in(&mut self, source: MovementId, quantity: i64, value: Decimal) {
        match self.method {
            CostMethod::Fifo => self.layers.push_back(CostLayer { quantity, value, source }),
            CostMethod::Average => match self.layers.front_mut() {
                Some(pool) => {
                    pool.quantity += quantity;
                    pool.value += value;
                }
                None => self.layers.push_back(CostLayer { quantity, value, source }),
            },
        }
    }

    /// Takes `quantity` units (checked to be on hand) from the oldest layers and returns their value.
    fn take(&mut self, mut quantity: i64) -> Decimal {
        let mut value = Decimal::ZERO;
        while quantity > 0 {
            let layer = self.layers.front_mut().expect("quantity was checked against the layers");
            let n = quantity.min(layer.quantity);
            let v = share(layer.value, layer.quantity, n);
            layer.quantity -= n;
            layer.value -= v;
            value += v;
            quantity -= n;
            if layer.quantity == 0 {
                self.layers.pop_front();
            }
        }
        value
    }
}

/// Which cost ledger a movement belongs to: the item, and the warehouse when the merchant costs per warehouse
/// (`None`: one ledger for the item across all warehouses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CostKey {
    pub item: ItemId,
    pub warehouse: Option<LocationId>,
}

/// The cost ledgers of many items, each created on its first movement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostBook {
    ledgers: BTreeMap<CostKey, CostLedger>,
}

impl CostBook {
    pub fn ledger(&self, key: CostKey) -> Option<&CostLedger> {
        self.ledgers.get(&key)
    }

    /// Folds one movement into `key`'s ledger, creating it with `method` and `currency` on first use. A ledger keeps
    /// the method and currency it was created with: asking for others is an error, never a silent switch.
    pub fn apply(
        &mut self,
        key: CostKey,
        method: CostMethod,
        currency: &str,
        m: &CostMovement,
    ) -> Result<CostedMovement, CostError> {
        let ledger = match self.ledgers.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => {
                let l = e.into_mut();
                if l.currency != currency {
                    return Err(CostError::CurrencyMismatch {
                        given: currency.to_string(),
                        ledger: l.currency.clone(),
                    });
                }
                if l.method != method {
                    return Err(CostError::MethodMismatch { given: method, ledger: l.method });
                }
                l
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                let mut fresh = CostLedger::new(method, currency)?;
                let costed = fresh.apply(m)?;
                e.insert(fresh);
                return Ok(costed);
            }
        };
        ledger.apply(m)
    }

    /// Quantity and value of every ledger as of a time, in key order (ledgers with nothing on hand included).
    pub fn valuation_as_of(&self, as_of: DateTime<Utc>) -> Vec<(CostKey, Valuation)> {
        self.ledgers.iter().map(|(k, l)| (*k, l.as_of(as_of))).collect()
    }
}

fn positive(q: i64) -> Result<(), CostError> {
    if q > 0 {
        Ok(())
    } else {
        Err(CostError::NonPositiveQuantity)
    }
}

/// Folds `movements` dated at or before `as_of` into a fresh ledger: the valuation of the ledger's prefix.
pub fn valuation_as_of(
    method: CostMethod,
    currency: &str,
    movements: &[CostMovement],
    as_of: DateTime<Utc>,
) -> Result<Valuation, CostError> {
    let mut ledger = CostLedger::new(method, currency)?;
    for m in movements.iter().take_while(|m| m.at <= as_of) {
        ledger.apply(m)?;
    }
    Ok(ledger.on_hand())
}

/// How a receipt's landed costs (freight, duty) are spread over its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationBasis {
    /// In proportion to each line's `quantity × unit cost`; falls back to quantity when every line is free.
    Value,
    /// In proportion to each line's quantity.
    Quantity,
}

/// One receipt line as the allocation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptLineCost {
    pub quantity: i64,
    pub unit_cost: Decimal,
}

/// Splits `total` landed cost over the lines by `basis`, at the cost scale. The shares add up to exactly the
/// rounded total: each line gets its share rounded down, and the units of the cost scale left over go one each to
/// the lines with the largest remainders (ties to the earlier line).
pub fn allocate_landed_cost(
    lines: &[ReceiptLineCost],
    total: Decimal,
    basis: AllocationBasis,
) -> Result<Vec<Decimal>, CostError> {
    if total.is_sign_negative() && !total.is_zero() {
        return Err(CostError::NegativeCost);
    }
    if lines.is_empty() {
        return Err(CostError::Allocation("the receipt has no lines"));
    }
    for l in lines {
        positive(l.quantity)?;
        if l.unit_cost.is_sign_negative() && !l.unit_cost.is_zero() {
            return Err(CostError::NegativeCost);
        }
    }
    let by_quantity = || lines.iter().map(|l| Decimal::from(l.quantity)).collect::<Vec<_>>();
    let weights = match basis {
        AllocationBasis::Quantity => by_quantity(),
        AllocationBasis::Value => {
            let w: Vec<Decimal> = lines.iter().map(|l| Decimal::from(l.quantity) * l.unit_cost).collect();
            if w.iter().all(|w| w.is_zero()) {
                by_quantity()
            } else {
                w
            }
        }
    };
    let total = round_cost(total);
    let sum: Decimal = weights.iter().copied().sum();
    let unit = Decimal::new(1, COST_SCALE);
    let mut shares = Vec::with_capacity(lines.len());
    let mut remainders = Vec::with_capacity(lines.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = total * w / sum;
        let floor = exact.round_dp_with_strategy(COST_SCALE, RoundingStrategy::ToZero);
        shares.push(floor);
        remainders.push((exact - floor, i));
    }
    let mut left = total - shares.iter().copied().sum::<Decimal>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.iter().cycle() {
        if left <= Decimal::ZERO {
            break;
        }
        shares[*i] += unit;
        left -= unit;
    }
    Ok(shares)
}

#[cfg(test)]
mod tests;

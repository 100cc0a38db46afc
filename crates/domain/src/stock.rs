//! The stock ledger's rules: states, balances, movements, and how adjustment and move commands become movements.
//!
//! A command is applied all-or-nothing to a set of balances: every line is checked against the balances as the
//! earlier lines of the same command left them, and only a command whose every line passes changes anything.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Row id of an item (one SKU) in the store.
pub type ItemId = i64;
/// Row id of a location in the store.
pub type LocationId = i64;

/// Largest quantity one line may move: far above any real shelf, far below overflow of sums.
pub const MAX_LINE_QUANTITY: i64 = 1_000_000_000;
/// Most lines in one adjustment or move request over the API (bulk imports are one command of any size).
pub const MAX_LINES_PER_COMMAND: usize = 1_000;

/// A named state of stock at a location. All but `incoming` are part of on_hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StockState {
    Available,
    Committed,
    Reserved,
    Damaged,
    QualityControl,
    SafetyStock,
    Incoming,
}

impl StockState {
    pub const ALL: [StockState; 7] = [
        StockState::Available,
        StockState::Committed,
        StockState::Reserved,
        StockState::Damaged,
        StockState::QualityControl,
        StockState::SafetyStock,
        StockState::Incoming,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StockState::Available => "available",
            StockState::Committed => "committed",
            StockState::Reserved => "reserved",
            StockState::Damaged => "damaged",
            StockState::QualityControl => "quality_control",
            StockState::SafetyStock => "safety_stock",
            StockState::Incoming => "incoming",
        }
    }

    /// States an adjustment or a move may name directly. Committed and reserved belong to orders and holds,
    /// which own their own commands, so that no manual change can strand a promise.
    pub fn is_manually_adjustable(self) -> bool {
        !matches!(self, StockState::Committed | StockState::Reserved)
    }

    /// Whether units in this state are physically at the location (counted in on_hand).
    pub fn is_on_hand(self) -> bool {
        self != StockState::Incoming
    }
}

impl fmt::Display for StockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StockState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StockState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown state '{s}'"))
    }
}

/// Why a movement happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Received,
    Correction,
    CycleCount,
    Damaged,
    Shrinkage,
    Restock,
    Promotion,
    Other,
    /// Stock moved between bins or between states by a move command.
    Move,
    /// Stock set by a bulk import.
    Import,
    /// Stock committed to an order line, or released from one (cancellation).
    Order,
    /// Stock reserved by a hold, or released when the hold ends.
    Hold,
    /// Stock that left with a shipment.
    Shipment,
    /// Stock that came back with a return.
    Return,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::Received,
        Reason::Correction,
        Reason::CycleCount,
        Reason::Damaged,
        Reason::Shrinkage,
        Reason::Restock,
        Reason::Promotion,
        Reason::Other,
        Reason::Move,
        Reason::Import,
        Reason::Order,
        Reason::Hold,
        Reason::Shipment,
        Reason::Return,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Received => "received",
            Reason::Correction => "correction",
            Reason::CycleCount => "cycle_count",
            Reason::Damaged => "damaged",
            Reason::Shrinkage => "shrinkage",
            Reason::Restock => "restock",
            Reason::Promotion => "promotion",
            Reason::Other => "other",
            Reason::Move => "move",
            Reason::Import => "import",
            Reason::Order => "order",
            Reason::Hold => "hold",
            Reason::Shipment => "shipment",
            Reason::Return => "return",
        }
    }

    /// The virtual location on the other side of an adjustment with this reason: goods come from a supplier,
    /// damaged goods and shrinkage leave to scrap, everything else balances against the adjustment location.
    pub fn counterpart(self, inbound: bool) -> VirtualKind {
        match (self, inbound) {
            (Reason::Received, true) => VirtualKind::Supplier,
            (Reason::Damaged | Reason::Shrinkage, false) => VirtualKind::Scrap,
            _ => VirtualKind::Adjustment,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| format!("unknown reason '{s}'"))
    }
}

/// The virtual locations that exist from the first migration. They have no balances: they are the ledger's
/// sources and sinks, so that every movement has two sides and the books always balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VirtualKind {
    Supplier,
    Customer,
    Adjustment,
    Scrap,
    Transit,
}

impl VirtualKind {
    pub const ALL: [VirtualKind; 5] = [
        VirtualKind::Supplier,
        VirtualKind::Customer,
        VirtualKind::Adjustment,
        VirtualKind::Scrap,
        VirtualKind::Transit,
    ];

    /// The location code (and path) of the virtual location.
    pub fn code(self) -> &'static str {
        match self {
            VirtualKind::Supplier => "SUPPLIER",
            VirtualKind::Customer => "CUSTOMER",
            VirtualKind::Adjustment => "ADJUSTMENT",
            VirtualKind::Scrap => "SCRAP",
            VirtualKind::Transit => "TRANSIT",
        }
    }
}

/// The quantities of one item at one location, per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Balance {
    pub available: i64,
    pub committed: i64,
    pub reserved: i64,
    pub damaged: i64,
    pub quality_control: i64,
    pub safety_stock: i64,
    pub incoming: i64,
}

impl Balance {
    /// Physically present: every state but incoming.
    pub fn on_hand(&self) -> i64 {
        self.available + self.committed + self.reserved + self.unavailable()
    }

    /// Present but not sellable.
    pub fn unavailable(&self) -> i64 {
        self.damaged + self.quality_control + self.safety_stock
    }

    pub fn get(&self, state: StockState) -> i64 {
        match state {
            StockState::Available => self.available,
            StockState::Committed => self.committed,
            StockState::Reserved => self.reserved,
            StockState::Damaged => self.damaged,
            StockState::QualityControl => self.quality_control,
            StockState::SafetyStock => self.safety_stock,
            StockState::Incoming => self.incoming,
        }
    }

    fn slot(&mut self, state: StockState) -> &mut i64 {
        match state {
            StockState::Available => &mut self.available,
            StockState::Committed => &mut self.committed,
            StockState::Reserved => &mut self.reserved,
            StockState::Damaged => &mut self.damaged,
            StockState::QualityControl => &mut self.quality_control,
            StockState::SafetyStock => &mut self.safety_stock,
            StockState::Incoming => &mut self.incoming,
        }
    }

    /// Adds `delta` to one state without any check; used when folding a ledger that was already checked.
    pub fn add(&mut self, state: StockState, delta: i64) {
        *self.slot(state) += delta;
    }

    pub fn is_zero(&self) -> bool {
        *self == Balance::default()
    }

    /// True when every state is non-negative (the invariant the database double-checks too).
    pub fn is_valid(&self) -> bool {
        StockState::ALL.iter().all(|s| self.get(*s) >= 0)
    }

    /// The sum of two balances, for roll-ups per warehouse and in total.
    pub fn plus(&self, other: &Balance) -> Balance {
        let mut out = *self;
        for s in StockState::ALL {
            out.add(s, other.get(s));
        }
        out
    }
}

/// One side of a movement: a state at a stocked location, or a virtual location that has no balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Endpoint {
    Stock { location: LocationId, state: StockState },
    Virtual { location: LocationId },
}

impl Endpoint {
    pub fn location(&self) -> LocationId {
        match self {
            Endpoint::Stock { location, .. } | Endpoint::Virtual { location } => *location,
        }
    }
    pub fn state(&self) -> Option<StockState> {
        match self {
            Endpoint::Stock { state, .. } => Some(*state),
            Endpoint::Virtual { .. } => None,
        }
    }
}

/// One ledger entry as decided by the domain: `quantity` units of `item` from one endpoint to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub item: ItemId,
    pub quantity: i64,
    pub from: Endpoint,
    pub to: Endpoint,
    /// Index of the command line this movement came from.
    pub line: usize,
}

/// The key of one balance.
pub type BalanceKey = (ItemId, LocationId);

/// Balances touched by a batch, loaded before the batch and written back after.
pub type Balances = HashMap<BalanceKey, Balance>;

/// What an adjustment line does to its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Add (or remove, when negative) this many units.
    Delta(i64),
    /// Set the state to this quantity; when `expected_on_hand` is given the line fails unless on_hand still is that.
    Set { quantity: i64, expected_on_hand: Option<i64> },
}

/// An adjustment line with its SKU and location already resolved to ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdjustLine {
    pub item: ItemId,
    pub location: LocationId,
    pub state: StockState,
    pub change: Change,
    /// The virtual location that supplies the difference when the line adds stock.
    pub source: LocationId,
    /// The virtual location that absorbs the difference when the line removes stock. Chosen apart from `source`
    /// because a `set` only learns its direction from the balance it meets.
    pub sink: LocationId,
}

/// A move line: quantity from (location, state) to (location, state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveLine {
    pub item: ItemId,
    pub quantity: i64,
    pub from_location: LocationId,
    pub from_state: StockState,
    pub to_location: LocationId,
    pub to_state: StockState,
}

/// A command on the ledger. Each is all-or-nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerOp {
    Adjust(Vec<AdjustLine>),
    Move(Vec<MoveLine>),
}

impl LedgerOp {
    /// Every balance the command may read or write.
    pub fn keys(&self) -> Vec<BalanceKey> {
        match self {
            LedgerOp::Adjust(lines) => lines.iter().map(|l| (l.item, l.location)).collect(),
            LedgerOp::Move(lines) => {
                lines.iter().flat_map(|l| [(l.item, l.from_location), (l.item, l.to_location)]).collect()
            }
        }
    }
}

/// Why the ledger refused a command. `line` is the index of the offending line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("line {line}: only {on_hand_in_state} {state} at the location, {requested} requested")]
    InsufficientStock {
        line: usize,
        item: ItemId,
        location: LocationId,
        state: StockState,
        on_hand_in_state: i64,
        requested: i64,
    },
    #[error("line {line}: on_hand is {actual}, not the expected {expected}")]
    StaleExpectedOnHand { line: usize, item: ItemId, location: LocationId, expected: i64, actual: i64 },
    #[error("line {line}: {message}")]
    InvalidLine { line: usize, field: &'static str, message: String },
    #[error("a command needs at least one line")]
    LineCount,
}

fn check_quantity(line: usize, field: &'static str, q: i64, allow_zero: bool) -> Result<(), LedgerError> {
    let ok = if allow_zero { (0..=MAX_LINE_QUANTITY).contains(&q) } else { (1..=MAX_LINE_QUANTITY).contains(&q) };
    if ok {
        Ok(())
    } else {
        let lower = if allow_zero { 0 } else { 1 };
        Err(LedgerError::InvalidLine {
            line,
            field,
            message: format!("must be between {lower} and {MAX_LINE_QUANTITY}"),
        })
    }
}

/// Applies one movement to a scratch set of balances, refusing anything that would leave a state negative.
fn post(scratch: &mut Balances, m: &Movement) -> Result<(), LedgerError> {
    if let Endpoint::Stock { location, state } = m.from {
        let bal = scratch.entry((m.item, location)).or_default();
        let have = bal.get(state);
        if have < m.quantity {
            return Err(LedgerError::InsufficientStock {
                line: m.line,
                item: m.item,
                location,
                state,
                on_hand_in_state: have,
                requested: m.quantity,
            });
        }
        bal.add(state, -m.quantity);
    }
    if let Endpoint::Stock { location, state } = m.to {
        scratch.entry((m.item, location)).or_default().add(state, m.quantity);
    }
    Ok(())
}

/// Decides a command against `balances`. On success the balances are updated and the movements returned; on
/// failure nothing in `balances` changes.
pub fn apply(op: &LedgerOp, balances: &mut Balances) -> Result<Vec<Movement>, LedgerError> {
    let count = match op {
        LedgerOp::Adjust(l) => l.len(),
        LedgerOp::Move(l) => l.len(),
    };
    if count == 0 {
        return Err(LedgerError::LineCount);
    }
    // Work on copies of the touched balances only, so a refusal leaves the caller's map untouched.
    let mut scratch: Balances =
        op.keys().into_iter().map(|k| (k, balances.get(&k).copied().unwrap_or_default())).collect();
    let mut movements = Vec::with_capacity(count);
    match op {
        LedgerOp::Adjust(lines) => {
            for (i, l) in lines.iter().enumerate() {
                let current = scratch.get(&(l.item, l.location)).copied().unwrap_or_default();
                let delta = match l.change {
                    Change::Delta(d) => {
                        // unsigned_abs: i64::MIN.abs() would overflow and slip past the bound.
                        if d == 0 || d.unsigned_abs() > MAX_LINE_QUANTITY as u64 {
                            return Err(LedgerError::InvalidLine {
                                line: i,
                                field: "delta",
                                message: format!("must be non-zero and at most {MAX_LINE_QUANTITY} in size"),
                            });
                        }
                        d
                    }
                    Change::Set { quantity, expected_on_hand } => {
                        check_quantity(i, "set", quantity, true)?;
                        if let Some(expected) = expected_on_hand {
                            if expected != current.on_hand() {
                                return Err(LedgerError::StaleExpectedOnHand {
                                    line: i,
                                    item: l.item,
                                    location: l.location,
                                    expected,
                                    actual: current.on_hand(),
                                });
                            }
                        }
                        quantity - current.get(l.state)
                    }
                };
                if delta == 0 {
                    continue;
                }
                let stock = Endpoint::Stock { location: l.location, state: l.state };
                let m = if delta > 0 {
                    Movement {
                        item: l.item,
                        quantity: delta,
                        from: Endpoint::Virtual { location: l.source },
                        to: stock,
                        line: i,
                    }
                } else {
                    Movement {
                        item: l.item,
                        quantity: -delta,
                        from: stock,
                        to: Endpoint::Virtual { location: l.sink },
                        line: i,
                    }
                };
                post(&mut scratch, &m)?;
                movements.push(m);
            }
        }
        LedgerOp::Move(lines) => {
            for (i, l) in lines.iter().enumerate() {
                check_quantity(i, "quantity", l.quantity, false)?;
                if l.from_location == l.to_location && l.from_state == l.to_state {
                    return Err(LedgerError::InvalidLine {
                        line: i,
                        field: "to",
                        message: "must differ from the source location or state".into(),
                    });
                }
                let m = Movement {
                    item: l.item,
                    quantity: l.quantity,
                    from: Endpoint::Stock { location: l.from_location, state: l.from_state },
                    to: Endpoint::Stock { location: l.to_location, state: l.to_state },
                    line: i,
                };
                post(&mut scratch, &m)?;
                movements.push(m);
            }
        }
    }
    debug_assert!(scratch.values().all(Balance::is_valid));
    balances.extend(scratch);
    Ok(movements)
}

/// Recomputes balances from movements alone: the definition `verify` checks the stored balances against.
pub fn fold<'a>(movements: impl IntoIterator<Item = &'a Movement>) -> Balances {
    let mut out = Balances::new();
    for m in movements {
        if let Endpoint::Stock { location, state } = m.from {
            out.entry((m.item, location)).or_default().add(state, -m.quantity);
        }
        if let Endpoint::Stock { location, state } = m.to {
            out.entry((m.item, location)).or_default().add(state, m.quantity);
        }
    }
    out
}

#[cfg(test)]
mod tests;

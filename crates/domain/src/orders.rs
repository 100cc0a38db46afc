//! Order allocation and holds: which bins an order's lines are promised from, and how a cart hold lives and ends.
//!
//! Both only decide. [`allocate`] reads a snapshot of sellable stock that the caller loaded and says which bins each
//! line takes; the caller turns that into ledger moves ([`Allocation::to_ledger_op`]) and applies them with
//! [`crate::stock::apply`] in the same transaction. `apply` re-checks every bin, so a stale snapshot can make an
//! order fail but can never oversell.
//!
//! Stock is promised at bin level (available → committed for an order, available → reserved for a hold) rather
//! than in a per-item pool, so that on_hand stays the sum of the states at every bin and a pick list later knows
//! where the promised units are.
//!
//! Holds follow the two-phase transfers of TigerBeetle: a hold is pending (`Active`) until it is posted
//! (`Converted` into an order), voided (`Released`) or times out (`Expired`); each ending is final.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::InventoryPolicy;
use crate::stock::{ItemId, LedgerOp, LocationId, MoveLine, StockState, MAX_LINE_QUANTITY};

/// Most lines one order (or hold) may have: far above any real basket, and it bounds the work of one allocation.
pub const MAX_ORDER_LINES: usize = 1_000;

/// How long a hold lives when the client does not say (a checkout's usual reservation window).
pub const DEFAULT_HOLD_TTL: TimeDelta = TimeDelta::minutes(15);

// ---------------------------------------------------------------------------------------------------------------
// Allocation input and output
// ---------------------------------------------------------------------------------------------------------------

/// What one sellable bin holds of one item right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinStock {
    pub bin: LocationId,
    /// The order pickers walk the warehouse in; `None` means the bin has no place in the walk and comes last.
    pub pick_sequence: Option<i64>,
    pub available: i64,
}

/// One warehouse's sellable bins for one item. Bins that are not sellable must not be passed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseStock {
    pub warehouse: LocationId,
    pub bins: Vec<BinStock>,
}

/// One order line as allocation sees it. The same item may appear on several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemandLine {
    pub item: ItemId,
    pub quantity: i64,
    pub policy: InventoryPolicy,
}

/// Units of a line promised from one bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pick {
    pub warehouse: LocationId,
    pub bin: LocationId,
    pub quantity: i64,
}

/// How one order line is covered: `picked() + backordered + oversold == quantity` of the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineAllocation {
    /// Index of the line in the order.
    pub line: usize,
    pub item: ItemId,
    /// Bins in the order they were chosen: warehouses in priority order, bins in pick order within each.
    pub picks: Vec<Pick>,
    /// Units no stock covers, to be filled first-come first-served when stock arrives (policy `backorder`).
    pub backordered: i64,
    /// Units sold beyond stock on purpose (policy `continue`).
    pub oversold: i64,
}

impl LineAllocation {
    /// Units promised from bins.
    pub fn picked(&self) -> i64 {
        self.picks.iter().map(|p| p.quantity).sum()
    }
}

/// The decision for a whole order: one entry per order line, in line order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub lines: Vec<LineAllocation>,
}

impl Allocation {
    /// Units promised from bins over all lines.
    pub fn picked(&self) -> i64 {
        self.lines.iter().map(LineAllocation::picked).sum()
    }

    /// The ledger command that places the order: every pick moves available → committed in its own bin.
    /// `None` when nothing is picked (every unit backordered or oversold), because the ledger refuses empty commands.
    pub fn to_ledger_op(&self) -> Option<LedgerOp> {
        moves_between(&self.lines, StockState::Available, StockState::Committed)
    }
}

/// A `deny` line that stock cannot cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortLine {
    pub line: usize,
    pub item: ItemId,
    pub requested: i64,
    /// What this line could have had: the item's stock left over all warehouses after the earlier lines of the
    /// same item took theirs.
    pub available: i64,
}

/// Every short `deny` line of an order, so that one answer tells the customer all that must change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortage {
    pub lines: Vec<ShortLine>,
}

/// Why an order could not be allocated. Nothing is decided when any of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocationError {
    /// Client error: an order needs at least one line.
    #[error("an order needs at least one line")]
    NoLines,
    /// Client error: more than [`MAX_ORDER_LINES`] lines.
    #[error("an order may have at most {MAX_ORDER_LINES} lines")]
    TooManyLines,
    /// Client error: the first line whose quantity is outside `1..=MAX_LINE_QUANTITY`.
    #[error("line {line}: quantity must be between 1 and {MAX_LINE_QUANTITY}")]
    InvalidQuantity { line: usize },
    /// Configuration error: no demanded item was given any warehouse (the channel sells from none).
    #[error("there is no warehouse to allocate from")]
    NoWarehouses,
    /// Caller bug: the stock snapshot breaks its contract (see [`allocate`]); a server error, not the client's.
    #[error("stock given for item {item} {reason}")]
    InvalidStock { item: ItemId, reason: &'static str },
    /// Client error (`insufficient_stock`): at least one `deny` line cannot be covered.
    #[error("insufficient stock on {} line(s)", .0.lines.len())]
    Shortage(Shortage),
}

// ---------------------------------------------------------------------------------------------------------------
// Allocation rules
// ---------------------------------------------------------------------------------------------------------------

/// Decides where every line of an order is promised from.
///
/// `stock` gives, per item, its sellable bins per warehouse. Contract: every demanded item lists the same
/// warehouses in the same order (the channel's priority order; a warehouse without stock has no bins), no warehouse
/// twice, no bin twice, and no negative quantity; otherwise [`AllocationError::InvalidStock`].
///
/// Rules, in order:
/// 1. If one warehouse covers the whole order (lines of the same item counted together), the first such warehouse
///    in priority order serves every line, so the order ships in one parcel.
/// 2. Otherwise each line, in line order, goes to the first warehouse that covers it alone; only a line no single
///    warehouse covers is split, taking from warehouses in priority order.
/// 3. Within a warehouse the fewest bins are used (fewer stops for the picker); among equally few, the set that
///    comes earliest in pick order (pick sequence, `None` last, then bin id), emptied in pick order.
/// 4. Units an earlier line took are gone for later lines, including lines of the same item.
/// 5. What stock cannot cover follows the line's policy: `deny` fails the whole order naming every short line,
///    `continue` records it as oversold, `backorder` as backordered. A short `deny` line still counts as taking what
///    was there, so the next line of the same item is reported with what would really be left for it.
pub fn allocate(
    lines: &[DemandLine],
    stock: &HashMap<ItemId, Vec<WarehouseStock>>,
) -> Result<Allocation, AllocationError> {
    if lines.is_empty() {
        return Err(AllocationError::NoLines);
    }
    if lines.len() > MAX_ORDER_LINES {
        return Err(AllocationError::TooManyLines);
    }
    if let Some(line) = lines.iter().position(|l| !(1..=MAX_LINE_QUANTITY).contains(&l.quantity)) {
        return Err(AllocationError::InvalidQuantity { line });
    }
    let mut pool = Pool::build(lines, stock)?;
    let whole_order = pool.first_warehouse_covering(lines);

    let mut out = Vec::with_capacity(lines.len());
    let mut short = Vec::new();
    for (index, l) in lines.iter().enumerate() {
        let picks = match whole_order {
            Some(w) => pool.take(l.item, w, l.quantity),
            None => pool.take_by_priority(l.item, l.quantity),
        };
        let picked: i64 = picks.iter().map(|p| p.quantity).sum();
        let missing = l.quantity - picked;
        debug_assert!((0..=l.quantity).contains(&missing));
        debug_assert!(whole_order.is_none() || missing == 0, "the whole-order warehouse covers every line");
        let (mut backordered, mut oversold) = (0, 0);
        if missing > 0 {
            match l.policy {
                InventoryPolicy::Deny => {
                    short.push(ShortLine { line: index, item: l.item, requested: l.quantity, available: picked })
                }
                InventoryPolicy::Continue => oversold = missing,
                InventoryPolicy::Backorder => backordered = missing,
            }
        }
        out.push(LineAllocation { line: index, item: l.item, picks, backordered, oversold });
    }
    if !short.is_empty() {
        return Err(AllocationError::Shortage(Shortage { lines: short }));
    }
    Ok(Allocation { lines: out })
}

/// What is left of one bin while an order is being allocated.
#[derive(Debug, Clone, Copy)]
struct BinLeft {
    bin: LocationId,
    available: i64,
}

/// The stock snapshot as allocation consumes it: per item, per warehouse (by priority index), bins in pick order.
struct Pool {
    warehouses: Vec<LocationId>,
    items: HashMap<ItemId, Vec<Vec<BinLeft>>>,
}

impl Pool {
    fn build(lines: &[DemandLine], stock: &HashMap<ItemId, Vec<WarehouseStock>>) -> Result<Pool, AllocationError> {
        let mut demanded: Vec<ItemId> = Vec::new();
        for l in lines {
            if !demanded.contains(&l.item) {
                demanded.push(l.item);
            }
        }
        let ids = |list: &[WarehouseStock]| list.iter().map(|w| w.warehouse).collect::<Vec<_>>();
        // The priority order is whatever the first item with any warehouse lists; every item must agree with it.
        let warehouses = demanded
            .iter()
            .filter_map(|item| stock.get(item))
            .map(|list| ids(list))
            .find(|list| !list.is_empty())
            .ok_or(AllocationError::NoWarehouses)?;
        let distinct: HashSet<LocationId> = warehouses.iter().copied().collect();

        let mut items = HashMap::with_capacity(demanded.len());
        for item in demanded {
            let invalid = |reason| AllocationError::InvalidStock { item, reason };
            let list = stock.get(&item).map(Vec::as_slice).unwrap_or(&[]);
            if ids(list) != warehouses {
                return Err(invalid("does not list the same warehouses in the same order as the other items"));
            }
            if distinct.len() != warehouses.len() {
                return Err(invalid("names a warehouse twice"));
            }
            let mut seen_bins = HashSet::new();
            let mut per_warehouse = Vec::with_capacity(list.len());
            for ws in list {
                let mut bins: Vec<&BinStock> = Vec::with_capacity(ws.bins.len());
                for b in &ws.bins {
                    if b.available < 0 {
                        return Err(invalid("has a negative available quantity"));
                    }
                    // A bin listed twice would be consumed twice, and the ledger would refuse the second move.
                    if !seen_bins.insert(b.bin) {
                        return Err(invalid("names a bin twice"));
                    }
                    bins.push(b);
                }
                bins.sort_by_key(|b| pick_order(b.pick_sequence, b.bin));
                per_warehouse.push(bins.iter().map(|b| BinLeft { bin: b.bin, available: b.available }).collect());
            }
            items.insert(item, per_warehouse);
        }
        Ok(Pool { warehouses, items })
    }

    /// What is left of `item` in the warehouse at priority index `w`.
    fn total(&self, item: ItemId, w: usize) -> i64 {
        self.items[&item][w].iter().fold(0i64, |sum, b| sum.saturating_add(b.available))
    }

    /// The first warehouse that covers every line on its own, counting lines of the same item together.
    fn first_warehouse_covering(&self, lines: &[DemandLine]) -> Option<usize> {
        let mut demand: Vec<(ItemId, i64)> = Vec::new();
        for l in lines {
            match demand.iter_mut().find(|(item, _)| *item == l.item) {
                Some((_, q)) => *q += l.quantity,
                None => demand.push((l.item, l.quantity)),
            }
        }
        (0..self.warehouses.len()).find(|&w| demand.iter().all(|&(item, q)| self.total(item, w) >= q))
    }

    /// Takes one line from the first warehouse that covers it, or else from each warehouse in priority order.
    /// Returns fewer units than asked only when all warehouses together have fewer.
    fn take_by_priority(&mut self, item: ItemId, quantity: i64) -> Vec<Pick> {
        let count = self.warehouses.len();
        if let Some(w) = (0..count).find(|&w| self.total(item, w) >= quantity) {
            return self.take(item, w, quantity);
        }
        let mut picks = Vec::new();
        let mut left = quantity;
        for w in 0..count {
            if left == 0 {
                break;
            }
            let here = left.min(self.total(item, w));
            if here > 0 {
                picks.extend(self.take(item, w, here));
                left -= here;
            }
        }
        picks
    }

    /// Takes up to `quantity` of `item` from warehouse `w`, choosing bins by [`choose_bins`].
    fn take(&mut self, item: ItemId, w: usize, quantity: i64) -> Vec<Pick> {
        let warehouse = self.warehouses[w];
        let bins = self.items.get_mut(&item).map(|per_wh| &mut per_wh[w]).expect("every demanded item is pooled");
        let quantity = quantity.min(bins.iter().fold(0i64, |sum, b| sum.saturating_add(b.available)));
        if quantity <= 0 {
            return Vec::new();
        }
        let chosen = choose_bins(bins, quantity);
        let mut picks = Vec::with_capacity(chosen.len());
        for (index, take) in chosen {
            debug_assert!(take >= 1 && take <= bins[index].available);
            bins[index].available -= take;
            picks.push(Pick { warehouse, bin: bins[index].bin, quantity: take });
        }
        debug_assert_eq!(picks.iter().map(|p| p.quantity).sum::<i64>(), quantity);
        picks
    }
}

/// The walk order of bins: by pick sequence with unsequenced bins last, then by bin id so the order is total.
fn pick_order(pick_sequence: Option<i64>, bin: LocationId) -> (bool, Option<i64>, LocationId) {
    (pick_sequence.is_none(), pick_sequence, bin)
}

/// Sum of the `n` largest values, without overflow.
fn largest_sum(mut values: Vec<i64>, n: usize) -> i64 {
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.iter().take(n).fold(0i64, |sum, v| sum.saturating_add(*v))
}

/// Chooses bins (given in pick order) for `quantity`, which the bins together must cover. Returns (index, units)
/// in pick order, every units at least 1.
///
/// The fewest bins first: taking the largest bins reaches the quantity soonest, so their count is the minimum.
/// Among sets of that size, the one earliest in pick order: walk the bins in pick order and keep a bin whenever
/// the set can still be completed to the minimum size with the largest later bins. The chosen bins are emptied in
/// pick order; none ends up unused, since fewer bins would otherwise have done.
fn choose_bins(bins: &[BinLeft], quantity: i64) -> Vec<(usize, i64)> {
    let candidates: Vec<usize> = (0..bins.len()).filter(|&i| bins[i].available > 0).collect();
    let mut sizes: Vec<i64> = candidates.iter().map(|&i| bins[i].available).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let (mut fewest, mut reach) = (0usize, 0i64);
    for size in sizes {
        if reach >= quantity {
            break;
        }
        reach = reach.saturating_add(size);
        fewest += 1;
    }
    assert!(reach >= quantity, "choose_bins is only asked for what the bins hold");

    let mut chosen: Vec<usize> = Vec::with_capacity(fewest);
    let mut chosen_sum = 0i64;
    for (pos, &i) in candidates.iter().enumerate() {
        let room = fewest - chosen.len();
        if room == 0 {
            break;
        }
        let later: Vec<i64> = candidates[pos + 1..].iter().map(|&j| bins[j].available).collect();
        let best_with_this = chosen_sum.saturating_add(bins[i].available).saturating_add(largest_sum(later, room - 1));
        if best_with_this >= quantity {
            chosen.push(i);
            chosen_sum = chosen_sum.saturating_add(bins[i].available);
        }
    }
    debug_assert_eq!(chosen.len(), fewest);

    let mut left = quantity;
    chosen
        .into_iter()
        .map(|i| {
            let take = left.min(bins[i].available);
            left -= take;
            (i, take)
        })
        .collect()
}

/// One move per pick, from `from` to `to` in the pick's own bin; `None` when there are no picks.
fn moves_between(lines: &[LineAllocation], from: StockState, to: StockState) -> Option<LedgerOp> {
    let moves: Vec<MoveLine> = lines
        .iter()
        .flat_map(|l| {
            l.picks.iter().map(move |p| MoveLine {
                item: l.item,
                quantity: p.quantity,
                from_location: p.bin,
                from_state: from,
                to_location: p.bin,
                to_state: to,
            })
        })
        .collect();
    if moves.is_empty() {
        None
    } else {
        Some(LedgerOp::Move(moves))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Holds
// ---------------------------------------------------------------------------------------------------------------

/// Where a hold is in its life. Only `Active` can change; the other three are endings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Stock is reserved until `expires_at` (exclusive).
    Active,
    /// Became an order: the reserved units are now committed.
    Converted,
    /// Given up by the client: the reserved units are available again.
    Released,
    /// Timed out: the reserved units are available again.
    Expired,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Converted => "converted",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for HoldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a hold transition was refused. The hold is unchanged whenever one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    /// The hold is still `Active` in storage but its time is up; it no longer reserves anything.
    #[error("the hold expired at {expires_at}")]
    Expired { expires_at: DateTime<Utc> },
    /// The hold already ended.
    #[error("the hold is {0}, not active")]
    NotActive(HoldStatus),
    /// The requested expiry is further from now than the configured maximum time to live.
    #[error("a hold may last at most {} seconds from now", .max_ttl.num_seconds())]
    TtlTooLong { max_ttl: TimeDelta },
    /// The requested expiry is not after now, so the hold would be born dead.
    #[error("the expiry must be later than now")]
    ExpiryNotInFuture,
    /// Extending may only move the expiry later (or keep it), never bring it forward.
    #[error("the hold already lasts until {expires_at}; extending cannot shorten it")]
    WouldShorten { expires_at: DateTime<Utc> },
    /// Expiring a hold whose time is not yet up.
    #[error("the hold does not expire until {expires_at}")]
    NotDue { expires_at: DateTime<Utc> },
}

/// A reservation of bin stock with an expiry. Its lines are an order allocation, so converting it hands the order
/// exactly the bins it reserved, with no second availability check that could fail.
///
/// A hold is live on the half-open interval `[placed, expires_at)`: at `expires_at` itself it is already expired,
/// so an extension that starts where the old one ends never overlaps it and no instant is counted twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub expires_at: DateTime<Utc>,
    pub status: HoldStatus,
    pub lines: Vec<LineAllocation>,
}

/// Checks an expiry requested at `now` against the maximum time to live.
fn check_expiry(now: DateTime<Utc>, expires_at: DateTime<Utc>, max_ttl: TimeDelta) -> Result<(), HoldError> {
    if expires_at <= now {
        return Err(HoldError::ExpiryNotInFuture);
    }
    if expires_at - now > max_ttl {
        return Err(HoldError::TtlTooLong { max_ttl });
    }
    Ok(())
}

impl Hold {
    /// A new active hold over `lines` (usually `allocate(..)?.lines`), living until `expires_at`.
    pub fn new(
        lines: Vec<LineAllocation>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        max_ttl: TimeDelta,
    ) -> Result<Hold, HoldError> {
        check_expiry(now, expires_at, max_ttl)?;
        Ok(Hold { expires_at, status: HoldStatus::Active, lines })
    }

    /// Whether the hold reserves stock at `now`. Reads must use this rather than the stored status, so that an
    /// expired hold stops counting the instant it expires, not when the cleanup worker gets to it.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.status == HoldStatus::Active && now < self.expires_at
    }

    fn check_live(&self, now: DateTime<Utc>) -> Result<(), HoldError> {
        match self.status {
            HoldStatus::Active if now < self.expires_at => Ok(()),
            HoldStatus::Active => Err(HoldError::Expired { expires_at: self.expires_at }),
            other => Err(HoldError::NotActive(other)),
        }
    }

    /// Moves the expiry to `new_expires_at` (for example when payment starts). Only a live hold can be extended,
    /// the new expiry may not be earlier than the current one, and at most `max_ttl` after `now`.
    pub fn extend(
        &mut self,
        now: DateTime<Utc>,
        new_expires_at: DateTime<Utc>,
        max_ttl: TimeDelta,
    ) -> Result<(), HoldError> {
        self.check_live(now)?;
        if new_expires_at < self.expires_at {
            return Err(HoldError::WouldShorten { expires_at: self.expires_at });
        }
        check_expiry(now, new_expires_at, max_ttl)?;
        self.expires_at = new_expires_at;
        Ok(())
    }

    /// Gives the stock back at the client's request. Refused once the hold has expired: it already stopped
    /// counting, and recording it as released would hide that it timed out (the caller expires it instead).
    pub fn release(&mut self, now: DateTime<Utc>) -> Result<(), HoldError> {
        self.check_live(now)?;
        self.status = HoldStatus::Released;
        Ok(())
    }

    /// Turns the hold into an order's commitment. Only a live hold converts: an expired one's stock may already
    /// be promised to someone else.
    pub fn convert(&mut self, now: DateTime<Utc>) -> Result<(), HoldError> {
        self.check_live(now)?;
        self.status = HoldStatus::Converted;
        Ok(())
    }

    /// Records that the hold timed out; the cleanup worker's step. Only an active hold whose time is up.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Result<(), HoldError> {
        match self.status {
            HoldStatus::Active if now >= self.expires_at => {
                self.status = HoldStatus::Expired;
                Ok(())
            }
            HoldStatus::Active => Err(HoldError::NotDue { expires_at: self.expires_at }),
            other => Err(HoldError::NotActive(other)),
        }
    }

    /// The ledger command that places the hold: available → reserved in every picked bin.
    pub fn place_op(&self) -> Option<LedgerOp> {
        moves_between(&self.lines, StockState::Available, StockState::Reserved)
    }

    /// The ledger command after a release or an expiry: reserved → available in every picked bin.
    pub fn release_op(&self) -> Option<LedgerOp> {
        moves_between(&self.lines, StockState::Reserved, StockState::Available)
    }

    /// The ledger command after a conversion: reserved → committed in every picked bin.
    pub fn convert_op(&self) -> Option<LedgerOp> {
        moves_between(&self.lines, StockState::Reserved, StockState::Committed)
    }
}

#[cfg(test)]
mod tests;

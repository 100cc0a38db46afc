//! Replenishment math: sales velocity, safety stock and reorder point for a service level, days of cover,
//! projected stock-out, suggested order quantity (minimum order, pack size, economic order quantity), overstock and
//! dead-stock classification, and when to raise the stock alerts.
//!
//! Safety stock covers both uncertain demand and an uncertain lead time: over a lead time of `L` days (standard
//! deviation `σL`) with mean daily demand `d` and daily forecast error `σd`, demand over the lead time has standard
//! deviation `σ = sqrt(L·σd² + d²·σL²)`, and safety stock is `z·σ` where `z` is the standard normal quantile of the
//! target service level (the chance of not running out during one replenishment cycle).
//!
//! Inventory position = on hand + on order − committed: what will be left to sell once everything already
//! promised has shipped and everything already ordered has come in. Orders are suggested when it is at or below the
//! reorder point.

use chrono::{Duration, NaiveDate};
use rust_decimal::prelude::*;
use serde::{Deserialize, Serialize};

use crate::costing::round_cost;
use crate::forecast::{DemandSeries, Forecast};

/// Event type raised when an item's inventory position reaches its reorder point.
pub const REORDER_POINT_REACHED: &str = "stock.reorder_point_reached";
/// Event type raised when an item is projected to run out before a new order could arrive.
pub const STOCKOUT_PROJECTED: &str = "stock.stockout_projected";
/// The velocity windows the issue asks for, in days.
pub const VELOCITY_WINDOWS: [usize; 3] = [7, 30, 90];
/// Highest service level accepted: beyond it safety stock grows without bound for almost no gain.
pub const MAX_SERVICE_LEVEL: f64 = 0.9999;

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
pub enum ReplenishmentError {
    #[error("the probability must lie strictly between 0 and 1")]
    BadProbability,
    #[error("the service level must be at least 0.5 and at most {MAX_SERVICE_LEVEL}")]
    BadServiceLevel,
    #[error("the lead time must be finite, positive, with a non-negative standard deviation")]
    BadLeadTime,
    #[error("{0} must not be negative")]
    Negative(&'static str),
    #[error("{0} must be positive")]
    NotPositive(&'static str),
}

/// Units sold per day over the last `window_days` of a series, counting only days in stock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Velocity {
    pub window_days: usize,
    pub in_stock_days: usize,
    pub units: f64,
    /// `units / in_stock_days`; `None` when the item was never in stock in the window (unknown, not zero).
    pub per_day: Option<f64>,
}

/// Velocity over the last `window` days of `series` (its last day is the newest). Per channel: pass the series of
/// that channel's sales (with the item's stocked-out days, which no channel could sell on).
pub fn velocity(series: &DemandSeries, window: usize) -> Velocity {
    let days = series.days();
    let from = days.len().saturating_sub(window);
    let (mut units, mut in_stock) = (0.0, 0usize);
    for d in days[from..].iter().flatten() {
        units += d;
        in_stock += 1;
    }
    Velocity {
        window_days: window,
        in_stock_days: in_stock,
        units,
        per_day: (in_stock > 0).then(|| units / in_stock as f64),
    }
}

/// Velocities over 7, 30 and 90 days.
pub fn velocities(series: &DemandSeries) -> [Velocity; 3] {
    VELOCITY_WINDOWS.map(|w| velocity(series, w))
}

/// The standard normal quantile: `x` with `P(Z ≤ x) = p`, by Acklam's rational approximation (relative error below
/// 1.2e-9 over the whole range, far finer than any service level is known).
pub fn inverse_normal_cdf(p: f64) -> Result<f64, ReplenishmentError> {
    if !(p > 0.0 && p < 1.0) {
        return Err(ReplenishmentError::BadProbability);
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    };
    Ok(x)
}

/// The standard normal distribution function, via the complementary error function (Numerical Recipes' `erfcc`,
/// fractional error below 1.2e-7 everywhere).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let erfc = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - erfc / 2.0
    } else {
        erfc / 2.0
    }
}

/// A supplier's lead time in days: mean and standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeadTime {
    pub mean_days: f64,
    pub sd_days: f64,
}

impl LeadTime {
    fn validate(&self) -> Result<(), ReplenishmentError> {
        if self.mean_days.is_finite() && self.mean_days > 0.0 && self.sd_days.is_finite() && self.sd_days >= 0.0 {
            Ok(())
        } else {
            Err(ReplenishmentError::BadLeadTime)
        }
    }
}

/// The reorder point and how it was made up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReorderPoint {
    /// Forecast demand over the mean lead time.
    pub lead_time_demand: f64,
    /// `sqrt(L·σd² + d²·σL²)`.
    pub sigma: f64,
    pub z: f64,
    pub safety_stock: f64,
    /// `lead_time_demand + safety_stock`, rounded up to whole units.
    pub units: i64,
}

/// Reorder point for `service_level` (0.5 ≤ level ≤ [`MAX_SERVICE_LEVEL`]).
pub fn reorder_point(
    forecast: &Forecast,
    lead_time: LeadTime,
    service_level: f64,
) -> Result<ReorderPoint, ReplenishmentError> {
    lead_time.validate()?;
    if !(0.5..=MAX_SERVICE_LEVEL).contains(&service_level) {
        return Err(ReplenishmentError::BadServiceLevel);
    }
    let l = lead_time.mean_days;
    let dlt = forecast.demand_over(l);
    let d = dlt / l;
    let sd = forecast.sigma_daily;
    let sigma = (l * sd * sd + d * d * lead_time.sd_days * lead_time.sd_days).sqrt();
    let z = inverse_normal_cdf(service_level)?;
    let safety_stock = (z * sigma).max(0.0);
    // A hair of tolerance so that 12.000000000001 from float sums does not become 13 units.
    let units = (dlt + safety_stock - 1e-9).ceil().max(0.0) as i64;
    Ok(ReorderPoint { lead_time_demand: dlt, sigma, z, safety_stock, units })
}

/// Days the stock on hand lasts at the forecast rate (past the horizon, at its tail rate); `None` when demand is
/// zero, so the stock never runs out.
pub fn days_of_cover(on_hand: i64, forecast: &Forecast) -> Option<f64> {
    let mut left = on_hand.max(0) as f64;
    for (i, d) in forecast.daily.iter().enumerate() {
        if left < *d {
            return Some(i as f64 + left / d);
        }
        left -= d;
    }
    let tail = forecast.tail_mean();
    (tail > 0.0).then(|| forecast.daily.len() as f64 + left / tail)
}

/// The first day (from the forecast's first day) on which the stock cannot meet that day's forecast, counting
/// receipts expected on their day; `None` when that does not happen within the forecast horizon.
pub fn projected_stockout(on_hand: i64, incoming: &[(NaiveDate, i64)], forecast: &Forecast) -> Option<NaiveDate> {
    let arriving = |pred: &dyn Fn(NaiveDate) -> bool| -> f64 {
        incoming.iter().filter(|(when, _)| pred(*when)).map(|(_, q)| *q as f64).sum()
    };
    // Receipts already overdue are counted as arriving on the first day.
    let mut stock = on_hand as f64 + arriving(&|w| w < forecast.first_day);
    for (i, d) in forecast.daily.iter().enumerate() {
        let day = forecast.first_day + Duration::days(i as i64);
        stock += arriving(&|w| w == day);
        if stock < *d {
            return Some(day);
        }
        stock -= d;
    }
    None
}

/// Stock on hand, on order and committed to orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub on_hand: i64,
    pub on_order: i64,
    pub committed: i64,
}

impl Position {
    pub fn inventory_position(&self) -> i64 {
        self.on_hand + self.on_order - self.committed
    }
}

/// How the supplier sells and what ordering costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPolicy {
    /// Smallest quantity the supplier accepts (0 or 1 for none).
    pub min_order_qty: i64,
    /// Orders are whole packs of this many units (1 for single units).
    pub pack_size: i64,
    /// Days of demand one order covers when no economic order quantity applies.
    pub review_days: f64,
    /// Cost of holding one unit for a year; with `ordering_cost`, enables the economic order quantity.
    pub holding_cost_per_unit_year: Option<Decimal>,
    /// Fixed cost of placing one order.
    pub ordering_cost: Option<Decimal>,
}

impl OrderPolicy {
    fn validate(&self) -> Result<(), ReplenishmentError> {
        if self.min_order_qty < 0 {
            return Err(ReplenishmentError::Negative("min_order_qty"));
        }
        if self.pack_size <= 0 {
            return Err(ReplenishmentError::NotPositive("pack_size"));
        }
        if !(self.review_days.is_finite() && self.review_days >= 0.0) {
            return Err(ReplenishmentError::Negative("review_days"));
        }
        if self.holding_cost_per_unit_year.is_some_and(|h| h <= Decimal::ZERO) {
            return Err(ReplenishmentError::NotPositive("holding_cost_per_unit_year"));
        }
        if self.ordering_cost.is_some_and(|s| s < Decimal::ZERO) {
            return Err(ReplenishmentError::Negative("ordering_cost"));
        }
        Ok(())
    }
}

/// Economic order quantity `sqrt(2·D·S / H)` for annual demand `D`, order cost `S` and yearly holding cost `H`,
/// rounded to whole units (at least one).
pub fn economic_order_quantity(annual_demand: f64, ordering_cost: Decimal, holding_cost: Decimal) -> Option<i64> {
    let s = ordering_cost.to_f64()?;
    let h = holding_cost.to_f64()?;
    if annual_demand <= 0.0 || h <= 0.0 || s < 0.0 {
        return None;
    }
    Some(((2.0 * annual_demand * s / h).sqrt().round() as i64).max(1))
}

/// Rounds a needed quantity up to the supplier's minimum and then to whole packs.
pub fn round_order_quantity(needed: i64, min_order_qty: i64, pack_size: i64) -> i64 {
    if needed <= 0 {
        return 0;
    }
    let q = needed.max(min_order_qty);
    (q + pack_size - 1) / pack_size * pack_size
}

/// Everything the buyer sees for one item at one warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub reorder_point: ReorderPoint,
    pub inventory_position: i64,
    /// Economic order quantity, when holding and ordering costs are set and there is demand.
    pub eoq: Option<i64>,
    /// Days the stock on hand and not committed lasts at the forecast rate.
    pub days_of_cover: Option<f64>,
    /// When the stock on hand and not committed, plus expected receipts, first falls short of a day's forecast.
    pub projected_stockout: Option<NaiveDate>,
    /// Reorder point plus one cycle (EOQ, else `review_days` of demand): what an order brings the position up to.
    pub order_up_to: i64,
    /// Units to order now (whole packs, at least the minimum), 0 when the position is above the reorder point.
    pub suggested_quantity: i64,
}

/// The reorder decision for one item at one warehouse.
pub fn plan(
    forecast: &Forecast,
    position: Position,
    incoming: &[(NaiveDate, i64)],
    lead_time: LeadTime,
    service_level: f64,
    policy: &OrderPolicy,
) -> Result<Plan, ReplenishmentError> {
    policy.validate()?;
    let rop = reorder_point(forecast, lead_time, service_level)?;
    let annual = forecast.demand_over(365.0);
    let eoq = match (policy.ordering_cost, policy.holding_cost_per_unit_year) {
        (Some(s), Some(h)) => economic_order_quantity(annual, s, h),
        _ => None,
    };
    let cycle = match eoq {
        Some(q) => q,
        None => {
            // Demand in the review period after the lead time, as that is when this order's stock sells.
            let l = lead_time.mean_days;
            (forecast.demand_over(l + policy.review_days) - forecast.demand_over(l) - 1e-9).ceil().max(0.0) as i64
        }
    };
    let ip = position.inventory_position();
    let order_up_to = rop.units + cycle;
    let suggested_quantity = if ip <= rop.units {
        round_order_quantity(order_up_to - ip, policy.min_order_qty, policy.pack_size)
    } else {
        0
    };
    Ok(Plan {
        reorder_point: rop,
        inventory_position: ip,
        days_of_cover: days_of_cover(position.on_hand - position.committed, forecast),
        projected_stockout: projected_stockout(position.on_hand - position.committed, incoming, forecast),
        eoq,
        order_up_to,
        suggested_quantity,
    })
}

/// Thresholds for the overstock and dead-stock report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthRules {
    /// Stock with no sale in this many days is dead.
    pub dead_after_days: i64,
    /// Stock beyond this many days of cover is overstock.
    pub overstock_cover_days: f64,
}

/// Where an item's stock stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StockHealth {
    /// No stock: nothing tied up.
    Empty,
    /// On hand, but no sale in `dead_after_days` (or none since it was stocked); all of its value is tied up.
    Dead {
        days_since_sale: Option<i64>,
        value_tied_up: Decimal,
    },
    /// More than the cover bound; the excess units and their share of the value are tied up.
    Overstock {
        excess_units: i64,
        excess_value: Decimal,
        value_on_hand: Decimal,
    },
    Healthy,
}

/// Classifies stock of `on_hand` units worth `value_on_hand` (from the cost ledger) with `daily_demand` forecast.
/// `stocked_since` is when the item was first received: a new item is not dead merely for not having sold yet, so
/// without a sale its age counts from then (and with neither date it is dead).
pub fn classify(
    as_of: NaiveDate,
    on_hand: i64,
    value_on_hand: Decimal,
    last_sale: Option<NaiveDate>,
    stocked_since: Option<NaiveDate>,
    daily_demand: f64,
    rules: HealthRules,
) -> StockHealth {
    if on_hand <= 0 {
        return StockHealth::Empty;
    }
    let days_since_sale = last_sale.map(|d| (as_of - d).num_days());
    let idle_days = last_sale.or(stocked_since).map(|d| (as_of - d).num_days());
    if idle_days.is_none_or(|d| d >= rules.dead_after_days) {
        return StockHealth::Dead { days_since_sale, value_tied_up: value_on_hand };
    }
    let cover_units = (rules.overstock_cover_days * daily_demand.max(0.0)).ceil();
    let excess = if cover_units.is_finite() { on_hand - (cover_units as i64).min(on_hand) } else { 0 };
    if excess > 0 {
        let excess_value = round_cost(value_on_hand * Decimal::from(excess) / Decimal::from(on_hand));
        StockHealth::Overstock { excess_units: excess, excess_value, value_on_hand }
    } else {
        StockHealth::Healthy
    }
}

/// What alerts were last raised for an item, so that each is raised once per episode and not on every run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub reorder_point_reached: bool,
    pub stockout_projected: Option<NaiveDate>,
}

/// An alert to publish as an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Alert {
    #[serde(rename = "stock.reorder_point_reached")]
    ReorderPointReached { inventory_position: i64, reorder_point: i64 },
    #[serde(rename = "stock.stockout_projected")]
    StockoutProjected { date: NaiveDate },
}

impl Alert {
    pub fn event_type(&self) -> &'static str {
        match self {
            Alert::ReorderPointReached { .. } => REORDER_POINT_REACHED,
            Alert::StockoutProjected { .. } => STOCKOUT_PROJECTED,
        }
    }
}

/// Decides which alerts to raise now. The reorder alert is raised when the position first reaches the reorder point
/// with an order due, and re-armed once that is no longer so. The stock-out alert is raised when a stock-out is projected within
/// `window_days` of `as_of` (typically the lead time: sooner than a new order could arrive), again if the projected
/// date moves earlier, and re-armed once no stock-out is projected within the window.
pub fn decide_alerts(
    previous: AlertState,
    plan: &Plan,
    as_of: NaiveDate,
    window_days: i64,
) -> (Vec<Alert>, AlertState) {
    let mut alerts = Vec::new();
    let mut next = previous;
    // Due only when an order would actually be suggested: an item without demand sits at a reorder point of zero
    // without needing anything.
    let reached = plan.inventory_position <= plan.reorder_point.units && plan.suggested_quantity > 0;
    if reached && !previous.reorder_point_reached {
        alerts.push(Alert::ReorderPointReached {
            inventory_position: plan.inventory_position,
            reorder_point: plan.reorder_point.units,
        });
    }
    next.reorder_point_reached = reached;
    let soon = plan.projected_stockout.filter(|d| *d <= as_of + Duration::days(window_days));
    match (soon, previous.stockout_projected) {
        (Some(d), Some(before)) if d >= before => {}
        (Some(d), _) => alerts.push(Alert::StockoutProjected { date: d }),
        (None, _) => {}
    }
    next.stockout_projected = soon;
    (alerts, next)
}

#[cfg(test)]
mod tests;

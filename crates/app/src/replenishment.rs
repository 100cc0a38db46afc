//! Replenishment from the ledger: daily demand per item (and warehouse and channel) with stocked-out days, sales
//! velocity, forecasts, reorder suggestions turned into draft purchase orders, the stock-health report, and the
//! reorder and stock-out alerts raised once per episode.
//!
//! Demand is what shipped (movements to the customer), dated by the day it shipped. A day is stocked out when it
//! ended with nothing available at the warehouse (for the item as a whole: at all warehouses together); those days
//! are gaps in the series, not zeros, so lost sales do not read as low demand.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate, Utc};
use domain::forecast::{forecast, Accuracy, DemandClass, DemandSeries, Forecast, ForecastConfig, ForecastError, Model};
use domain::replenishment::{
    classify, decide_alerts, plan, velocity, AlertState, HealthRules, LeadTime, OrderPolicy, Plan, Position,
    StockHealth, VELOCITY_WINDOWS,
};
use domain::stock::{ItemId, Reason, StockState, VirtualKind};
use domain::FieldError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ledger::Actor;
use crate::page::PageRequest;
use crate::purchasing::{NewPoLine, NewPurchaseOrder, PurchaseOrderView, SupplierView};
use crate::store::{LevelFilter, OrderId, OutboxEvent};
use crate::valuation::Fold;
use crate::{App, AppError, AppResult, StoreError};

/// Replenishment settings: the service level safety stock aims for, how long one order should last, lead-time
/// spread, the optional economic-order-quantity costs, and the stock-health thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplenishmentSettings {
    #[serde(default = "default_service_level")]
    pub service_level: f64,
    #[serde(default = "default_review_days")]
    pub review_days: f64,
    /// Standard deviation of suppliers' lead times, in days.
    #[serde(default)]
    pub lead_time_sd_days: f64,
    #[serde(default)]
    pub holding_cost_per_unit_year: Option<Decimal>,
    #[serde(default)]
    pub ordering_cost: Option<Decimal>,
    #[serde(default = "default_dead_after_days")]
    pub dead_after_days: i64,
    #[serde(default = "default_overstock_cover_days")]
    pub overstock_cover_days: f64,
}

fn default_service_level() -> f64 {
    0.95
}
fn default_review_days() -> f64 {
    14.0
}
fn default_dead_after_days() -> i64 {
    90
}
/// How often servers evaluate the replenishment alerts on their own.
pub const EVALUATION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

fn default_overstock_cover_days() -> f64 {
    180.0
}

impl Default for ReplenishmentSettings {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("every field has a default")
    }
}

/// Daily facts of one item (at one warehouse, or everywhere): the change of available stock and what shipped per
/// channel.
#[derive(Debug, Default, Clone)]
struct Days {
    days: BTreeMap<NaiveDate, (i64, BTreeMap<String, i64>)>,
}

/// Whether a movement is a sale, the one definition of demand: a `shipment` from a bin (a stock state) to the
/// customer location. Returns (customer → bin, reason `return`) do not subtract; the sales-per-day report
/// ([`crate::report_store::ReportStore::sales_per_day`]) counts the same movements in SQL.
pub(crate) fn is_sale(m: &crate::store::NewMovement, customer: domain::stock::LocationId) -> bool {
    m.reason == Reason::Shipment && m.to_location_id == customer && m.from_state.is_some()
}

/// Demand history of every item, per warehouse (`Some(path)`) and in total (`None`).
pub(crate) struct Demand {
    series: HashMap<(ItemId, Option<String>), Days>,
    pub skus: HashMap<ItemId, String>,
    pub today: NaiveDate,
}

impl Demand {
    /// The day series of `key` up to today, and per-channel sales; `None` when the item never moved there.
    fn build(&self, key: &(ItemId, Option<String>), channel: Option<&str>) -> Option<(DemandSeries, Vec<String>)> {
        let d = self.series.get(key)?;
        let first = *d.days.keys().next()?;
        let start = first.max(self.today - Duration::days(domain::forecast::MAX_DAYS as i64 - 1));
        let mut sales = Vec::new();
        let mut channels: Vec<String> = Vec::new();
        for (day, (_, shipped)) in &d.days {
            for c in shipped.keys() {
                if !channels.contains(c) {
                    channels.push(c.clone());
                }
            }
            if *day < start || *day > self.today {
                continue;
            }
            let units: i64 =
                shipped.iter().filter(|(c, _)| channel.is_none_or(|w| w == c.as_str())).map(|(_, q)| q).sum();
            if units > 0 {
                sales.push((*day, units));
            }
        }
        // Days with no movement keep the balance of the day before: fill the stocked-out runs between entries.
        let mut stocked_out = Vec::new();
        let mut balance = 0i64;
        let mut iter = d.days.iter().peekable();
        let mut day = first;
        while day <= self.today {
            while let Some((d0, (delta, _))) = iter.peek() {
                if **d0 == day {
                    balance += *delta;
                    iter.next();
                } else {
                    break;
                }
            }
            if day >= start && balance <= 0 {
                stocked_out.push(day);
            }
            day += Duration::days(1);
        }
        let series = DemandSeries::from_sales(start, self.today, &sales, &stocked_out).ok()?;
        Some((series, channels))
    }
}

/// A forecast for planning: the domain's model when the history allows, else the mean of the known days.
struct Basis {
    forecast: Forecast,
    /// `forecast` or `velocity`.
    kind: &'static str,
}

/// The series with its last day (today, still running) as a gap: a day half over would read as low demand and pull
/// a fitted level down, while a gap is stepped over like a stocked-out day.
fn complete_days(series: &DemandSeries) -> DemandSeries {
    let mut days = series.days().to_vec();
    if let Some(today) = days.last_mut() {
        *today = None;
    }
    DemandSeries::new(series.start(), days).unwrap_or_else(|_| series.clone())
}

fn demand_basis(series: &DemandSeries) -> Option<Basis> {
    match forecast(&complete_days(series), &ForecastConfig::default()) {
        Ok(f) => Some(Basis { forecast: f, kind: "forecast" }),
        Err(ForecastError::NotEnoughHistory { .. }) => {
            // Too short to choose a model: plan at the observed rate (days in stock only), with its spread as
            // the daily error. Shown as `velocity`, never as a fitted model.
            let known: Vec<f64> = series.days().iter().rev().take(90).flatten().copied().collect();
            if known.is_empty() {
                return None;
            }
            let n = known.len() as f64;
            let mean = known.iter().sum::<f64>() / n;
            let sd = (known.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
            Some(Basis {
                forecast: Forecast {
                    model: if mean > 0.0 { Model::Ses { alpha: 0.0 } } else { Model::NoDemand },
                    class: if mean > 0.0 { DemandClass::Smooth } else { DemandClass::None },
                    first_day: series.next_day(),
                    daily: vec![mean; 90],
                    sigma_daily: sd,
                    accuracy: Accuracy { mase: None, mae: 0.0, rmse: 0.0, bias: 0.0, errors: 0, origins: 0 },
                },
                kind: "velocity",
            })
        }
        Err(_) => None,
    }
}

fn warehouse_of(path: &str) -> String {
    path.split('/').next().unwrap_or(path).to_string()
}

impl App {
    pub async fn replenishment_settings(&self) -> AppResult<ReplenishmentSettings> {
        match self.store.get_setting("replenishment").await? {
            Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Internal(e.to_string()).into()),
            None => Ok(ReplenishmentSettings::default()),
        }
    }

    pub async fn set_replenishment_settings(&self, s: ReplenishmentSettings) -> AppResult<ReplenishmentSettings> {
        let mut errors = Vec::new();
        if !(0.5..=domain::replenishment::MAX_SERVICE_LEVEL).contains(&s.service_level) {
            errors.push(FieldError::new("service_level", "must be between 0.5 and 0.9999"));
        }
        if !(s.review_days.is_finite() && (0.0..=365.0).contains(&s.review_days)) {
            errors.push(FieldError::new("review_days", "must be 0 to 365"));
        }
        if !(s.lead_time_sd_days.is_finite() && (0.0..=365.0).contains(&s.lead_time_sd_days)) {
            errors.push(FieldError::new("lead_time_sd_days", "must be 0 to 365"));
        }
        if s.holding_cost_per_unit_year.is_some_and(|h| h <= Decimal::ZERO) {
            errors.push(FieldError::new("holding_cost_per_unit_year", "must be positive"));
        }
        if s.ordering_cost.is_some_and(|h| h < Decimal::ZERO) {
            errors.push(FieldError::new("ordering_cost", "must not be negative"));
        }
        if !(1..=3650).contains(&s.dead_after_days) {
            errors.push(FieldError::new("dead_after_days", "must be 1 to 3650"));
        }
        if !(s.overstock_cover_days.is_finite() && s.overstock_cover_days > 0.0) {
            errors.push(FieldError::new("overstock_cover_days", "must be positive"));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let v = serde_json::to_value(&s).map_err(|e| StoreError::Internal(e.to_string()))?;
        self.store.put_setting("replenishment", &v, Utc::now()).await?;
        Ok(s)
    }

    /// One pass over the ledger: available changes and shipments per item, warehouse, day and channel.
    pub(crate) async fn demand(&self) -> AppResult<Demand> {
        let movements = self.all_movements().await?;
        let customer = self.virtuals.get(&VirtualKind::Customer).copied();
        let mut sources: HashMap<OrderId, String> = HashMap::new();
        let mut d = Demand { series: HashMap::new(), skus: HashMap::new(), today: Utc::now().date_naive() };
        for rec in movements {
            let m = &rec.movement;
            let day = m.recorded_at.date_naive();
            d.skus.entry(m.item_id).or_insert_with(|| rec.sku.clone());
            let mut touch = |wh: Option<String>, delta: i64, channel: Option<(&str, i64)>| {
                let e = d.series.entry((m.item_id, wh)).or_default().days.entry(day).or_default();
                e.0 += delta;
                if let Some((c, q)) = channel {
                    *e.1.entry(c.to_string()).or_default() += q;
                }
            };
            let shipped = customer.is_some_and(|c| is_sale(m, c));
            let channel = if shipped {
                let order: Option<OrderId> =
                    m.reference.as_deref().and_then(|r| r.strip_prefix("order ")).and_then(|s| s.parse().ok());
                match order {
                    Some(o) => {
                        if let std::collections::hash_map::Entry::Vacant(e) = sources.entry(o) {
                            e.insert(self.store.get_order(o).await?.map(|r| r.source).unwrap_or_default());
                        }
                        Some(sources[&o].clone())
                    }
                    None => Some(String::new()),
                }
            } else {
                None
            };
            let out_avail = if m.from_state == Some(StockState::Available) { -m.quantity } else { 0 };
            let in_avail = if m.to_state == Some(StockState::Available) { m.quantity } else { 0 };
            let from_wh = m.from_state.map(|_| warehouse_of(&rec.from_path));
            let to_wh = m.to_state.map(|_| warehouse_of(&rec.to_path));
            let sale = channel.as_deref().map(|c| (c, m.quantity));
            if let Some(wh) = &from_wh {
                touch(Some(wh.clone()), out_avail, sale);
            }
            if let Some(wh) = &to_wh {
                touch(Some(wh.clone()), in_avail, None);
            }
            touch(None, out_avail + in_avail, sale);
        }
        Ok(d)
    }

    async fn sku_item(&self, sku: &str) -> AppResult<ItemId> {
        let found = self.store.resolve_skus(&[sku.to_string()]).await?;
        found.get(sku).copied().ok_or_else(|| AppError::NotFound { entity: "sku", key: sku.to_string() })
    }

    pub async fn velocity(&self, sku: &str) -> AppResult<VelocityView> {
        let item = self.sku_item(sku).await?;
        let demand = self.demand().await?;
        let key = (item, None);
        let Some((series, channels)) = demand.build(&key, None) else {
            return Ok(VelocityView { sku: sku.into(), as_of: demand.today, stocked_out_days_90: 0, windows: vec![] });
        };
        let mut per_channel = Vec::new();
        for c in &channels {
            if let Some((s, _)) = demand.build(&key, Some(c)) {
                per_channel.push((c.clone(), s));
            }
        }
        let stocked_out = series.days().iter().rev().take(90).filter(|d| d.is_none()).count();
        let windows = VELOCITY_WINDOWS
            .iter()
            .map(|&w| {
                let v = velocity(&series, w);
                WindowView {
                    days: w,
                    in_stock_days: v.in_stock_days,
                    units: v.units,
                    per_day: v.per_day,
                    channels: per_channel
                        .iter()
                        .map(|(c, s)| {
                            let v = velocity(s, w);
                            ChannelVelocity { channel: c.clone(), units: v.units, per_day: v.per_day }
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(VelocityView { sku: sku.into(), as_of: demand.today, stocked_out_days_90: stocked_out, windows })
    }

    pub async fn item_forecast(&self, sku: &str) -> AppResult<ForecastView> {
        let item = self.sku_item(sku).await?;
        let demand = self.demand().await?;
        let Some((series, _)) = demand.build(&(item, None), None) else {
            return Ok(ForecastView::NotEnoughHistory {
                sku: sku.into(),
                observed_days: 0,
                needed_days: domain::forecast::MIN_OBSERVED_DAYS + ForecastConfig::default().backtest_horizon,
            });
        };
        match forecast(&complete_days(&series), &ForecastConfig::default()) {
            Ok(f) => Ok(ForecastView::Forecast {
                sku: sku.into(),
                model: f.model.name().into(),
                parameters: f.model,
                class: f.class,
                first_day: f.first_day,
                next_7_days: f.demand_over(7.0),
                next_30_days: f.demand_over(30.0),
                daily: f.daily.clone(),
                mase: f.accuracy.mase,
                bias: f.accuracy.bias,
                mae: f.accuracy.mae,
                backtest_origins: f.accuracy.origins,
            }),
            Err(ForecastError::NotEnoughHistory { observed, needed }) => {
                Ok(ForecastView::NotEnoughHistory { sku: sku.into(), observed_days: observed, needed_days: needed })
            }
            Err(e) => Err(AppError::conflict("forecast_failed", e.to_string())),
        }
    }

    async fn all_suppliers(&self) -> AppResult<Vec<SupplierView>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_suppliers(PageRequest { after, limit: 100 }).await?;
            let last = page.items.last().map(|s| s.id);
            let more = page.next_cursor.is_some();
            out.extend(page.items);
            if !more {
                return Ok(out);
            }
            after = last;
        }
    }

    /// The plan of every item a supplier sells, at every warehouse it has history in (or the one asked for).
    pub async fn suggestions(&self, warehouse: Option<&str>, supplier: Option<i64>) -> AppResult<Vec<SuggestionView>> {
        Ok(self.plans(warehouse, supplier).await?.into_iter().filter(|s| s.suggested_quantity > 0).collect())
    }

    async fn plans(&self, warehouse: Option<&str>, supplier: Option<i64>) -> AppResult<Vec<SuggestionView>> {
        let settings = self.replenishment_settings().await?;
        let warehouse = match warehouse {
            None => None,
            Some(p) => {
                let p = p.trim().trim_matches('/');
                match self.store.get_location(p).await? {
                    Some(l) if l.kind == domain::location::LocationKind::Warehouse => Some(l),
                    _ => return Err(AppError::NotFound { entity: "warehouse", key: p.to_string() }),
                }
            }
        };
        let mut suppliers = self.all_suppliers().await?;
        if let Some(id) = supplier {
            suppliers.retain(|s| s.id == id);
            if suppliers.is_empty() {
                return Err(AppError::NotFound { entity: "supplier", key: id.to_string() });
            }
        }
        // Per SKU the supplier that delivers soonest, then cheapest.
        let mut best: BTreeMap<String, (&SupplierView, &crate::purchasing::SupplierItem, u32)> = BTreeMap::new();
        for s in &suppliers {
            for i in &s.items {
                let lead = i.lead_time_days.unwrap_or(s.lead_time_days);
                let better = match best.get(&i.sku) {
                    None => true,
                    Some((_, b, bl)) => (lead, i.unit_cost) < (*bl, b.unit_cost),
                };
                if better {
                    best.insert(i.sku.clone(), (s, i, lead));
                }
            }
        }
        let demand = self.demand().await?;
        let skus: Vec<String> = best.keys().cloned().collect();
        let items = self.store.resolve_skus(&skus).await?;
        let incoming = self.incoming().await?;
        let supplies = self.supplies().await?;
        let mut wh_ids: HashMap<String, Option<i64>> = HashMap::new();
        let mut out = Vec::new();
        for (sku, (s, si, lead)) in &best {
            let Some(&item) = items.get(sku) else { continue };
            let mut whs: Vec<String> = demand
                .series
                .keys()
                .filter(|(i, w)| *i == item && w.is_some())
                .filter_map(|(_, w)| w.clone())
                .collect();
            whs.sort();
            if let Some(w) = &warehouse {
                whs.retain(|x| *x == w.path);
            }
            for wh in whs {
                let Some((series, _)) = demand.build(&(item, Some(wh.clone())), None) else { continue };
                let Some(basis) = demand_basis(&series) else { continue };
                if let std::collections::hash_map::Entry::Vacant(e) = wh_ids.entry(wh.clone()) {
                    e.insert(self.store.get_location(&wh).await?.map(|l| l.id));
                }
                let Some(wh_id) = wh_ids[&wh] else { continue };
                let filter = LevelFilter { item_id: Some(item), within: Some(wh.clone()) };
                let levels = self.store.levels(&filter, None, 1000).await?;
                let on_hand: i64 = levels.iter().map(|r| r.balance.on_hand()).sum();
                let committed: i64 = levels.iter().map(|r| r.balance.committed).sum();
                let on_order = incoming.get(&(item, wh_id)).copied().unwrap_or(0);
                let dated: Vec<(NaiveDate, i64)> = supplies
                    .get(&item)
                    .map(|v| v.iter().filter_map(|(d, q)| d.map(|d| (d, *q))).collect())
                    .unwrap_or_default();
                let policy = OrderPolicy {
                    min_order_qty: si.min_order_quantity,
                    pack_size: si.pack_size,
                    review_days: settings.review_days,
                    holding_cost_per_unit_year: settings.holding_cost_per_unit_year,
                    ordering_cost: settings.ordering_cost,
                };
                let lead_time = LeadTime { mean_days: f64::from((*lead).max(1)), sd_days: settings.lead_time_sd_days };
                let position = Position { on_hand, on_order, committed };
                let p = plan(&basis.forecast, position, &dated, lead_time, settings.service_level, &policy)
                    .map_err(|e| AppError::conflict("replenishment_failed", e.to_string()))?;
                out.push(SuggestionView::new(sku, &wh, wh_id, item, s, si, *lead, &basis, position, &p));
            }
        }
        Ok(out)
    }

    /// Turns selected suggestions into draft purchase orders, one per supplier and warehouse, through
    /// purchasing's own create path.
    pub async fn suggestions_to_purchase_orders(
        &self,
        req: SuggestionOrderRequest,
        actor: Actor,
    ) -> AppResult<Vec<PurchaseOrderView>> {
        if req.lines.is_empty() || req.lines.len() > 500 {
            return Err(AppError::field("lines", "must name 1 to 500 suggestions"));
        }
        let plans = self.suggestions(None, None).await?;
        let mut groups: BTreeMap<(i64, String), Vec<NewPoLine>> = BTreeMap::new();
        let mut errors = Vec::new();
        for (i, l) in req.lines.iter().enumerate() {
            let wh = l.warehouse.trim().trim_matches('/');
            let Some(s) = plans.iter().find(|s| s.sku == l.sku && s.warehouse == wh) else {
                errors.push(FieldError::new(format!("lines[{i}]"), format!("no suggestion for {} at {wh}", l.sku)));
                continue;
            };
            let quantity = l.quantity.unwrap_or(s.suggested_quantity);
            if quantity <= 0 {
                errors.push(FieldError::new(format!("lines[{i}].quantity"), "must be positive"));
                continue;
            }
            groups.entry((s.supplier_id, s.warehouse.clone())).or_default().push(NewPoLine {
                sku: s.sku.clone(),
                quantity,
                unit_cost: None,
                expected_date: None,
            });
        }
        if !errors.is_empty() {
            return Err(AppError::UnknownReference(errors));
        }
        let mut out = Vec::new();
        for ((supplier_id, warehouse), lines) in groups {
            out.push(
                self.create_purchase_order(
                    NewPurchaseOrder {
                        supplier_id,
                        warehouse,
                        lines,
                        tolerance_percent: 0,
                        notes: Some("from replenishment suggestions".into()),
                        order: false,
                    },
                    actor.clone(),
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// Runs the plans and raises each alert once per episode, writing the new alert state with its events.
    pub async fn evaluate_replenishment(&self) -> AppResult<EvaluationView> {
        let plans = self.plans(None, None).await?;
        let states: HashMap<(ItemId, i64), serde_json::Value> =
            self.store.alert_states().await?.into_iter().map(|r| ((r.item_id, r.warehouse_id), r.state)).collect();
        let today = Utc::now().date_naive();
        let mut raised = Vec::new();
        for p in &plans {
            let stored = states.get(&(p.item_id, p.warehouse_id));
            let previous: AlertState = stored.and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
            let (alerts, next) = decide_alerts(previous, &p.plan, today, i64::from(p.lead_time_days.max(1)));
            if next == previous && stored.is_some() {
                continue;
            }
            let events: Vec<OutboxEvent> = alerts
                .iter()
                .map(|a| {
                    let mut payload = serde_json::to_value(a).unwrap_or_default();
                    payload["sku"] = serde_json::json!(p.sku);
                    payload["warehouse"] = serde_json::json!(p.warehouse);
                    payload["suggested_quantity"] = serde_json::json!(p.suggested_quantity);
                    payload["supplier_id"] = serde_json::json!(p.supplier_id);
                    OutboxEvent { topic: a.event_type().to_string(), payload }
                })
                .collect();
            let state = serde_json::to_value(next).map_err(|e| StoreError::Internal(e.to_string()))?;
            let written =
                self.store.record_alerts(p.item_id, p.warehouse_id, stored, &state, &events, Utc::now()).await?;
            if written {
                raised.extend(alerts.iter().map(|a| RaisedAlert {
                    event_type: a.event_type().to_string(),
                    sku: p.sku.clone(),
                    warehouse: p.warehouse.clone(),
                }));
            }
        }
        Ok(EvaluationView { evaluated: plans.len(), raised })
    }

    /// Evaluates the plans every `interval` until the process ends, like `POST /v1/replenishment/evaluate`. Two
    /// nodes may both run it: the alert state is written compare-and-set with its events, so each alert is still
    /// raised once; the loser's round only costs its reads.
    pub fn start_replenishment_worker(&self, interval: std::time::Duration) {
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match app.evaluate_replenishment().await {
                    Ok(v) if !v.raised.is_empty() => {
                        tracing::info!(evaluated = v.evaluated, raised = v.raised.len(), "replenishment alerts raised")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "replenishment evaluation failed"),
                }
            }
        });
    }

    pub async fn stock_health(&self, warehouse: Option<&str>) -> AppResult<StockHealthReport> {
        let settings = self.replenishment_settings().await?;
        let rules = HealthRules {
            dead_after_days: settings.dead_after_days,
            overstock_cover_days: settings.overstock_cover_days,
        };
        let valuation = self.valuation_report(None, warehouse).await?;
        let fold: Fold = self.fold_costs(None).await?;
        let demand = self.demand().await?;
        let wh = valuation.warehouse.clone();
        let by_sku: HashMap<&str, ItemId> = fold.items.iter().map(|(id, (sku, _, _))| (sku.as_str(), *id)).collect();
        let mut lines = Vec::new();
        let mut tied: BTreeMap<String, Decimal> = BTreeMap::new();
        for v in &valuation.items {
            let Some(&item) = by_sku.get(v.sku.as_str()) else { continue };
            let key = (item, wh.clone());
            let built = demand.build(&key, None);
            let (last_sale, stocked_since, per_day) = match &built {
                None => (None, None, 0.0),
                Some((series, _)) => {
                    let last = series
                        .days()
                        .iter()
                        .enumerate()
                        .rev()
                        .find(|(_, d)| d.is_some_and(|x| x > 0.0))
                        .map(|(i, _)| series.start() + Duration::days(i as i64));
                    (last, Some(series.start()), velocity(series, 90).per_day.unwrap_or(0.0))
                }
            };
            let health = classify(demand.today, v.quantity, v.value, last_sale, stocked_since, per_day, rules);
            let value_tied_up = match &health {
                StockHealth::Dead { value_tied_up, .. } => *value_tied_up,
                StockHealth::Overstock { excess_value, .. } => *excess_value,
                _ => Decimal::ZERO,
            };
            if !value_tied_up.is_zero() {
                *tied.entry(v.currency.clone()).or_default() += value_tied_up;
            }
            lines.push(StockHealthLine {
                sku: v.sku.clone(),
                quantity: v.quantity,
                value: v.value,
                currency: v.currency.clone(),
                last_sale,
                daily_demand: per_day,
                value_tied_up,
                health,
            });
        }
        Ok(StockHealthReport {
            warehouse: wh,
            dead_after_days: rules.dead_after_days,
            overstock_cover_days: rules.overstock_cover_days,
            items: lines,
            value_tied_up: tied
                .into_iter()
                .map(|(currency, value)| crate::valuation::MoneyTotal { currency, value })
                .collect(),
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct ChannelVelocity {
    pub channel: String,
    pub units: f64,
    pub per_day: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowView {
    pub days: usize,
    /// Days of the window the item was in stock; only these count.
    pub in_stock_days: usize,
    pub units: f64,
    /// `null` when the item was out of stock the whole window.
    pub per_day: Option<f64>,
    pub channels: Vec<ChannelVelocity>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VelocityView {
    pub sku: String,
    pub as_of: NaiveDate,
    pub stocked_out_days_90: usize,
    pub windows: Vec<WindowView>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ForecastView {
    Forecast {
        sku: String,
        model: String,
        parameters: Model,
        class: DemandClass,
        first_day: NaiveDate,
        next_7_days: f64,
        next_30_days: f64,
        daily: Vec<f64>,
        mase: Option<f64>,
        bias: f64,
        mae: f64,
        backtest_origins: usize,
    },
    NotEnoughHistory {
        sku: String,
        observed_days: usize,
        needed_days: usize,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct SuggestionView {
    pub sku: String,
    pub warehouse: String,
    pub supplier_id: i64,
    pub supplier: String,
    /// `forecast` (a model chosen by backtest) or `velocity` (too little history: the observed daily rate).
    pub demand_basis: &'static str,
    /// The chosen model's name when `demand_basis` is `forecast`.
    pub model: Option<String>,
    pub daily_demand: f64,
    pub lead_time_days: u32,
    pub on_hand: i64,
    pub committed: i64,
    pub on_order: i64,
    pub inventory_position: i64,
    pub safety_stock: f64,
    pub reorder_point: i64,
    pub days_of_cover: Option<f64>,
    pub projected_stockout: Option<NaiveDate>,
    pub economic_order_quantity: Option<i64>,
    pub suggested_quantity: i64,
    pub min_order_quantity: i64,
    pub pack_size: i64,
    pub unit_cost: Decimal,
    pub currency: String,
    #[serde(skip)]
    item_id: ItemId,
    #[serde(skip)]
    warehouse_id: i64,
    #[serde(skip)]
    plan: Plan,
}

impl SuggestionView {
    #[allow(clippy::too_many_arguments)]
    fn new(
        sku: &str,
        wh: &str,
        warehouse_id: i64,
        item_id: ItemId,
        s: &SupplierView,
        si: &crate::purchasing::SupplierItem,
        lead: u32,
        basis: &Basis,
        position: Position,
        p: &Plan,
    ) -> Self {
        Self {
            sku: sku.into(),
            warehouse: wh.into(),
            supplier_id: s.id,
            supplier: s.name.clone(),
            demand_basis: basis.kind,
            model: (basis.kind == "forecast").then(|| basis.forecast.model.name().to_string()),
            daily_demand: basis.forecast.demand_over(30.0) / 30.0,
            lead_time_days: lead,
            on_hand: position.on_hand,
            committed: position.committed,
            on_order: position.on_order,
            inventory_position: p.inventory_position,
            safety_stock: p.reorder_point.safety_stock,
            reorder_point: p.reorder_point.units,
            days_of_cover: p.days_of_cover,
            projected_stockout: p.projected_stockout,
            economic_order_quantity: p.eoq,
            suggested_quantity: p.suggested_quantity,
            min_order_quantity: si.min_order_quantity,
            pack_size: si.pack_size,
            unit_cost: si.unit_cost,
            currency: s.currency.clone(),
            item_id,
            warehouse_id,
            plan: p.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestionOrderLine {
    pub sku: String,
    /// Path of the warehouse.
    pub warehouse: String,
    /// The suggested quantity when absent.
    #[serde(default)]
    pub quantity: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestionOrderRequest {
    pub lines: Vec<SuggestionOrderLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RaisedAlert {
    #[serde(rename = "type")]
    pub event_type: String,
    pub sku: String,
    pub warehouse: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvaluationView {
    pub evaluated: usize,
    pub raised: Vec<RaisedAlert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StockHealthLine {
    pub sku: String,
    pub quantity: i64,
    pub value: Decimal,
    pub currency: String,
    pub last_sale: Option<NaiveDate>,
    /// Units per day in stock over the last 90 days.
    pub daily_demand: f64,
    pub value_tied_up: Decimal,
    pub health: StockHealth,
}

#[derive(Debug, Clone, Serialize)]
pub struct StockHealthReport {
    pub warehouse: Option<String>,
    pub dead_after_days: i64,
    pub overstock_cover_days: f64,
    pub items: Vec<StockHealthLine>,
    pub value_tied_up: Vec<crate::valuation::MoneyTotal>,
}

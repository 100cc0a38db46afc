//! The overview reports behind the dashboard: units sold per day, and the floor's and back office's counts (orders
//! to pick, backorders, low stock, projected stock-outs, holds about to expire, webhook endpoints in trouble).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::stock::VirtualKind;
use serde::Serialize;

use crate::report_store::{Counted, DashboardQuery};
use crate::store::{HoldId, OrderId};
use crate::{App, AppError, AppResult, StoreError};

/// Days the sales report covers when not told.
pub const DEFAULT_SALES_DAYS: u32 = 90;
/// Most days the sales report covers: two years.
pub const MAX_SALES_DAYS: u32 = 730;
/// Total available stock at or below which an item is low, when not told.
pub const DEFAULT_LOW_STOCK: i64 = 5;
/// Rows of each dashboard list; the counts are in full.
pub const DASHBOARD_ROWS: u32 = 10;
/// How far ahead the dashboard looks for expiring holds.
pub const HOLDS_EXPIRING_WITHIN: Duration = Duration::hours(1);

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DaySales {
    /// A UTC day.
    pub date: NaiveDate,
    pub units: i64,
}

/// Units sold per UTC day, oldest first, every day present (zeros included); today is the last and still running.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SalesPerDayView {
    /// The SKU asked for; absent: every item.
    pub sku: Option<String>,
    pub days: Vec<DaySales>,
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DashboardOrder {
    pub id: OrderId,
    pub source: String,
    pub external_number: Option<String>,
    pub placed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderCount {
    pub count: i64,
    /// The oldest, at most 10.
    pub orders: Vec<DashboardOrder>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LowStockItem {
    pub sku: String,
    /// Available units in every bin together.
    pub available: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LowStockCount {
    /// The threshold used: total available at or below it.
    pub threshold: i64,
    pub count: i64,
    /// The lowest first, at most 10.
    pub items: Vec<LowStockItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockoutItem {
    pub sku: String,
    pub warehouse: String,
    /// The projected day of the stock-out.
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockoutCount {
    pub count: i64,
    /// The soonest first, at most 10.
    pub items: Vec<StockoutItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExpiringHold {
    pub id: HoldId,
    pub reference: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldCount {
    pub count: i64,
    /// The soonest first, at most 10.
    pub holds: Vec<ExpiringHold>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TroubledEndpoint {
    /// The endpoint's id; its URL is not shown here, since URLs may carry a token and endpoints are the admin's.
    pub id: i64,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed attempts.
    pub failing_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointCount {
    pub count: i64,
    /// At most 10, by id.
    pub endpoints: Vec<TroubledEndpoint>,
}

/// What needs attention now.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DashboardView {
    pub as_of: DateTime<Utc>,
    /// Orders with status `open` that have committed units in a bin (a line with picks) and are on no open pick
    /// list: what a new pick list would gather.
    pub ready_to_pick: OrderCount,
    /// Orders that still owe units with no stock behind them (backordered or oversold), whatever their status.
    pub backordered: OrderCount,
    /// Tracked items (not bundles, products not archived) with total available stock at or below `low_stock`.
    pub low_stock: LowStockCount,
    /// Items and warehouses whose replenishment alert state projects a stock-out (the state as of the last
    /// evaluation: hourly, or `POST /v1/replenishment/evaluate`).
    pub stockouts_projected: StockoutCount,
    /// Active holds expiring within the next hour.
    pub holds_expiring: HoldCount,
    /// Webhook endpoints disabled or failing.
    pub webhooks_failing: EndpointCount,
}

fn orders(c: Counted<crate::report_store::OrderBrief>) -> OrderCount {
    OrderCount {
        count: c.count,
        orders: c
            .rows
            .into_iter()
            .map(|o| DashboardOrder {
                id: o.id,
                source: o.source,
                external_number: o.external_number,
                placed_at: o.placed_at,
            })
            .collect(),
    }
}

impl App {
    /// Units sold per UTC day for the last `days` days (today included), of one SKU or of every item.
    pub async fn sales_per_day(&self, days: Option<u32>, sku: Option<&str>) -> AppResult<SalesPerDayView> {
        let days = days.unwrap_or(DEFAULT_SALES_DAYS);
        if !(1..=MAX_SALES_DAYS).contains(&days) {
            return Err(AppError::field("days", format!("must be 1 to {MAX_SALES_DAYS}")));
        }
        let item = match sku {
            Some(sku) => {
                let found = self.store.resolve_skus(&[sku.to_string()]).await?;
                Some(*found.get(sku).ok_or_else(|| AppError::NotFound { entity: "sku", key: sku.to_string() })?)
            }
            None => None,
        };
        let customer = *self
            .virtuals
            .get(&VirtualKind::Customer)
            .ok_or_else(|| StoreError::Internal("the customer location is missing".into()))?;
        let today = Utc::now().date_naive();
        let first = today - Duration::days(i64::from(days) - 1);
        let from = first.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        let to = (today + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        let rows = self.store.sales_per_day(customer, item, from, to).await?;
        Ok(fill_days(sku, first, today, &rows))
    }

    /// The dashboard's counts and first rows. `low_stock`: total available at or below which an item is low.
    pub async fn dashboard(&self, low_stock: Option<i64>) -> AppResult<DashboardView> {
        let low_stock = low_stock.unwrap_or(DEFAULT_LOW_STOCK);
        if !(0..=1_000_000).contains(&low_stock) {
            return Err(AppError::field("low_stock", "must be 0 to 1000000"));
        }
        let now = Utc::now();
        let q = DashboardQuery { now, holds_until: now + HOLDS_EXPIRING_WITHIN, low_stock, rows: DASHBOARD_ROWS };
        let r = self.store.dashboard(&q).await?;
        Ok(DashboardView {
            as_of: now,
            ready_to_pick: orders(r.ready_to_pick),
            backordered: orders(r.backordered),
            low_stock: LowStockCount {
                threshold: low_stock,
                count: r.low_stock.count,
                items: r
                    .low_stock
                    .rows
                    .into_iter()
                    .map(|l| LowStockItem { sku: l.sku, available: l.available })
                    .collect(),
            },
            stockouts_projected: StockoutCount {
                count: r.stockouts.count,
                items: r
                    .stockouts
                    .rows
                    .into_iter()
                    .map(|s| StockoutItem { sku: s.sku, warehouse: s.warehouse, date: s.date })
                    .collect(),
            },
            holds_expiring: HoldCount {
                count: r.holds_expiring.count,
                holds: r
                    .holds_expiring
                    .rows
                    .into_iter()
                    .map(|h| ExpiringHold { id: h.id, reference: h.reference, expires_at: h.expires_at })
                    .collect(),
            },
            webhooks_failing: EndpointCount {
                count: r.webhooks.count,
                endpoints: r
                    .webhooks
                    .rows
                    .into_iter()
                    .map(|e| TroubledEndpoint {
                        id: e.id,
                        enabled: e.enabled,
                        disabled_reason: e.disabled_reason,
                        failing_since: e.failing_since,
                    })
                    .collect(),
            },
        })
    }
}

/// Every day from `first` to `last`, with the units of the days the store found and zero for the others.
fn fill_days(sku: Option<&str>, first: NaiveDate, last: NaiveDate, rows: &[(NaiveDate, i64)]) -> SalesPerDayView {
    let found: std::collections::HashMap<NaiveDate, i64> = rows.iter().copied().collect();
    let mut days = Vec::new();
    let mut day = first;
    while day <= last {
        days.push(DaySales { date: day, units: found.get(&day).copied().unwrap_or(0) });
        day += Duration::days(1);
    }
    let total = days.iter().map(|d| d.units).sum();
    SalesPerDayView { sku: sku.map(str::to_string), days, total }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_is_present_and_days_outside_the_window_are_ignored() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let rows = [(d("2026-10-31"), 9), (d("2026-11-02"), 3), (d("2026-11-04"), 4)];
        let v = fill_days(None, d("2026-11-01"), d("2026-11-04"), &rows);
        let got: Vec<(String, i64)> = v.days.iter().map(|x| (x.date.to_string(), x.units)).collect();
        assert_eq!(
            got,
            vec![
                ("2026-11-01".into(), 0),
                ("2026-11-02".into(), 3),
                ("2026-11-03".into(), 0),
                ("2026-11-04".into(), 4)
            ]
        );
        assert_eq!(v.total, 7);
    }
}

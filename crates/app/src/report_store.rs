//! The store trait of the overview reports: units sold per day and the dashboard's counts, each answered by a few
//! grouped, indexed queries rather than by folding the ledger or every order in Rust.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::stock::{ItemId, LocationId};

use crate::store::{HoldId, OrderId, StoreResult};

/// What the dashboard asks for.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    pub now: DateTime<Utc>,
    /// Holds expiring at or before this instant (and after `now`) are listed.
    pub holds_until: DateTime<Utc>,
    /// Items whose total available stock is at or below this are low.
    pub low_stock: i64,
    /// Most rows of each list; the counts are always in full.
    pub rows: u32,
}

/// An order in one of the dashboard's lists.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBrief {
    pub id: OrderId,
    pub source: String,
    pub external_number: Option<String>,
    pub placed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LowStockRow {
    pub sku: String,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StockoutRow {
    pub sku: String,
    pub warehouse: String,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HoldBrief {
    pub id: HoldId,
    pub reference: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointBrief {
    pub id: i64,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
}

/// A count in full and its first rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted<T> {
    pub count: i64,
    pub rows: Vec<T>,
}

impl<T> Default for Counted<T> {
    fn default() -> Self {
        Counted { count: 0, rows: Vec::new() }
    }
}

/// The dashboard as the store reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DashboardRecord {
    /// Open orders with committed units in a bin (a line with picks) that are on no open pick list; oldest first.
    pub ready_to_pick: Counted<OrderBrief>,
    /// Orders that still owe units (backordered or oversold); oldest first.
    pub backordered: Counted<OrderBrief>,
    /// Tracked, non-bundle items of products not archived, lowest available first.
    pub low_stock: Counted<LowStockRow>,
    /// Items and warehouses whose last replenishment alert state projects a stock-out; soonest first.
    pub stockouts: Counted<StockoutRow>,
    /// Active holds expiring in `(now, holds_until]`; soonest first.
    pub holds_expiring: Counted<HoldBrief>,
    /// Webhook endpoints disabled, or failing (a run of failed attempts since `failing_since`).
    pub webhooks: Counted<EndpointBrief>,
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Units of sales per UTC day in `[from, to)`, for days with any: movements with reason `shipment` from a bin
    /// (a state) to `customer`, the demand [`crate::replenishment`] forecasts from. Only `item` when given.
    async fn sales_per_day(
        &self,
        customer: LocationId,
        item: Option<ItemId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(NaiveDate, i64)>>;
    async fn dashboard(&self, q: &DashboardQuery) -> StoreResult<DashboardRecord>;
}

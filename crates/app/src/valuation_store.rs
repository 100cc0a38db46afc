//! The store trait of valuation and replenishment: settings, landed costs per receipt, locked accounting periods
//! and replenishment alert state. Costs themselves are never stored; they are folded from the ledger.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::stock::{ItemId, LocationId};
use rust_decimal::Decimal;

use crate::store::{OutboxEvent, StoreResult};

/// A landed cost (freight, duty) entered against one receipt of a purchase order.
#[derive(Debug, Clone, PartialEq)]
pub struct LandedCostRecord {
    /// 0 until the store inserts it.
    pub id: i64,
    pub purchase_order_id: i64,
    pub receipt_number: i64,
    pub amount: Decimal,
    pub currency: String,
    /// `value` or `quantity`: how the amount is spread over the receipt's lines.
    pub basis: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The last alert state of one item at one warehouse.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStateRow {
    pub item_id: ItemId,
    pub warehouse_id: LocationId,
    pub state: serde_json::Value,
}

#[async_trait]
pub trait ValuationStore: Send + Sync {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn put_setting(&self, key: &str, value: &serde_json::Value, now: DateTime<Utc>) -> StoreResult<()>;
    /// Locked periods (`YYYY-MM`) with when they were locked, in period order.
    async fn locked_periods(&self) -> StoreResult<Vec<(String, DateTime<Utc>)>>;
    /// Locks a period; `Conflict { constraint: "period_locks.period" }` when it is locked already.
    async fn lock_period(&self, period: &str, now: DateTime<Utc>) -> StoreResult<()>;
    async fn add_landed_cost(&self, rec: &LandedCostRecord) -> StoreResult<LandedCostRecord>;
    /// Every landed cost, in id order.
    async fn landed_costs(&self) -> StoreResult<Vec<LandedCostRecord>>;
    async fn alert_states(&self) -> StoreResult<Vec<AlertStateRow>>;
    /// Writes `state` with `events` in one transaction if the stored state still equals `expected` (`None`: no
    /// row yet). Returns false, writing nothing, when another evaluation changed it first.
    async fn record_alerts(
        &self,
        item: ItemId,
        warehouse: LocationId,
        expected: Option<&serde_json::Value>,
        state: &serde_json::Value,
        events: &[OutboxEvent],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

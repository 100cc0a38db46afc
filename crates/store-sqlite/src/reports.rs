//! The overview reports in SQLite: sales per day grouped in SQL, and the dashboard's lists, each one indexed query
//! that carries its full count along (`COUNT(*) OVER ()`) with its first rows.

use app::report_store::{
    Counted, DashboardQuery, DashboardRecord, EndpointBrief, HoldBrief, LowStockRow, OrderBrief, ReportStore,
    StockoutRow,
};
use app::store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::stock::{ItemId, LocationId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::codec::{db, from_micros, internal, micros};
use crate::SqliteStore;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Open orders with a committed pick in a bin, on no open pick list.
const READY_TO_PICK: &str = "SELECT o.id, o.source, o.external_number, o.placed_at, COUNT(*) OVER () AS total \
     FROM orders o WHERE o.status = 'open' \
     AND EXISTS (SELECT 1 FROM json_each(o.doc, '$.lines') l, json_each(l.value, '$.picks') p \
                 WHERE json_extract(p.value, '$.quantity') > 0) \
     AND NOT EXISTS (SELECT 1 FROM pick_list_orders po JOIN pick_lists pl ON pl.id = po.pick_list_id \
                     WHERE po.order_id = o.id AND pl.status = 'open') \
     ORDER BY o.placed_at, o.id LIMIT ?";

/// The backorder queue's orders (it holds one row per order and item owed).
const BACKORDERED: &str = "SELECT o.id, o.source, o.external_number, o.placed_at, COUNT(*) OVER () AS total \
     FROM orders o WHERE o.id IN (SELECT order_id FROM order_backorders) ORDER BY o.placed_at, o.id LIMIT ?";

const LOW_STOCK: &str = "SELECT sku, available, COUNT(*) OVER () AS total FROM ( \
     SELECT i.sku, COALESCE((SELECT SUM(sl.available) FROM stock_levels sl WHERE sl.item_id = i.id), 0) AS available \
     FROM items i JOIN variants v ON v.item_id = i.id JOIN products p ON p.id = v.product_id \
     WHERE v.tracked = 1 AND p.status <> 'archived' \
     AND NOT EXISTS (SELECT 1 FROM bundle_components b WHERE b.bundle_item_id = i.id)) \
     WHERE available <= ? ORDER BY available, sku LIMIT ?";

const STOCKOUTS: &str = "SELECT i.sku, l.path, json_extract(a.state, '$.stockout_projected') AS day, \
     COUNT(*) OVER () AS total FROM replenishment_alerts a JOIN items i ON i.id = a.item_id \
     JOIN locations l ON l.id = a.warehouse_id WHERE json_extract(a.state, '$.stockout_projected') IS NOT NULL \
     ORDER BY day, i.sku, l.path LIMIT ?";

const HOLDS_EXPIRING: &str = "SELECT id, reference, expires_at, COUNT(*) OVER () AS total FROM holds \
     WHERE status = 'active' AND expires_at > ? AND expires_at <= ? ORDER BY expires_at, id LIMIT ?";

const WEBHOOKS: &str = "SELECT id, enabled, disabled_reason, failing_since, COUNT(*) OVER () AS total \
     FROM webhook_endpoints WHERE enabled = 0 OR failing_since IS NOT NULL ORDER BY id LIMIT ?";

fn counted<T>(rows: &[SqliteRow], one: impl Fn(&SqliteRow) -> StoreResult<T>) -> StoreResult<Counted<T>> {
    let count = match rows.first() {
        Some(r) => r.try_get::<i64, _>("total").map_err(internal)?,
        None => 0,
    };
    Ok(Counted { count, rows: rows.iter().map(one).collect::<StoreResult<_>>()? })
}

fn order_brief(r: &SqliteRow) -> StoreResult<OrderBrief> {
    Ok(OrderBrief {
        id: r.try_get("id").map_err(internal)?,
        source: r.try_get("source").map_err(internal)?,
        external_number: r.try_get("external_number").map_err(internal)?,
        placed_at: from_micros(r.try_get("placed_at").map_err(internal)?)?,
    })
}

#[async_trait]
impl ReportStore for SqliteStore {
    async fn sales_per_day(
        &self,
        customer: LocationId,
        item: Option<ItemId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<(NaiveDate, i64)>> {
        // `movements_reason_recorded_at` narrows to the window's shipments; the rest is checked row by row.
        let mut sql = format!(
            "SELECT recorded_at / {MICROS_PER_DAY} AS day, SUM(quantity) FROM movements \
             WHERE reason = 'shipment' AND recorded_at >= ? AND recorded_at < ? AND to_location_id = ? \
             AND from_state IS NOT NULL"
        );
        if item.is_some() {
            sql.push_str(" AND item_id = ?");
        }
        sql.push_str(" GROUP BY day ORDER BY day");
        let mut q = sqlx::query_as::<_, (i64, i64)>(&sql).bind(micros(from)).bind(micros(to)).bind(customer);
        if let Some(item) = item {
            q = q.bind(item);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db)?;
        rows.into_iter().map(|(day, units)| Ok((epoch_day(day)?, units))).collect()
    }

    async fn dashboard(&self, q: &DashboardQuery) -> StoreResult<DashboardRecord> {
        let limit = i64::from(q.rows);
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        let rows = sqlx::query(READY_TO_PICK).bind(limit).fetch_all(&mut *conn).await.map_err(db)?;
        let ready_to_pick = counted(&rows, order_brief)?;
        let rows = sqlx::query(BACKORDERED).bind(limit).fetch_all(&mut *conn).await.map_err(db)?;
        let backordered = counted(&rows, order_brief)?;
        let rows = sqlx::query(LOW_STOCK).bind(q.low_stock).bind(limit).fetch_all(&mut *conn).await.map_err(db)?;
        let low_stock = counted(&rows, |r| {
            Ok(LowStockRow {
                sku: r.try_get("sku").map_err(internal)?,
                available: r.try_get("available").map_err(internal)?,
            })
        })?;
        let rows = sqlx::query(STOCKOUTS).bind(limit).fetch_all(&mut *conn).await.map_err(db)?;
        let stockouts = counted(&rows, |r| {
            let day: String = r.try_get("day").map_err(internal)?;
            Ok(StockoutRow {
                sku: r.try_get("sku").map_err(internal)?,
                warehouse: r.try_get("path").map_err(internal)?,
                date: day.parse().map_err(internal)?,
            })
        })?;
        let rows = sqlx::query(HOLDS_EXPIRING)
            .bind(micros(q.now))
            .bind(micros(q.holds_until))
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        let holds_expiring = counted(&rows, |r| {
            Ok(HoldBrief {
                id: r.try_get("id").map_err(internal)?,
                reference: r.try_get("reference").map_err(internal)?,
                expires_at: from_micros(r.try_get("expires_at").map_err(internal)?)?,
            })
        })?;
        let rows = sqlx::query(WEBHOOKS).bind(limit).fetch_all(&mut *conn).await.map_err(db)?;
        let webhooks = counted(&rows, |r| {
            let failing: Option<i64> = r.try_get("failing_since").map_err(internal)?;
            Ok(EndpointBrief {
                id: r.try_get("id").map_err(internal)?,
                enabled: r.try_get::<i64, _>("enabled").map_err(internal)? == 1,
                disabled_reason: r.try_get("disabled_reason").map_err(internal)?,
                failing_since: failing.map(from_micros).transpose()?,
            })
        })?;
        Ok(DashboardRecord { ready_to_pick, backordered, low_stock, stockouts, holds_expiring, webhooks })
    }
}

fn epoch_day(day: i64) -> StoreResult<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::Duration::days(day)))
        .ok_or_else(|| internal(format!("day {day} is out of range")))
}

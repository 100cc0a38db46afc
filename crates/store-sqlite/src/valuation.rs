//! Valuation and replenishment state in SQLite: settings, landed costs, period locks and alert state.

use app::store::{OutboxEvent, StoreResult};
use app::valuation_store::{AlertStateRow, LandedCostRecord, ValuationStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::stock::{ItemId, LocationId};
use sqlx::Row;

use crate::codec::{db, from_micros, internal, micros};
use crate::SqliteStore;

#[async_trait]
impl ValuationStore for SqliteStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<serde_json::Value>> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM valuation_settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        v.map(|s| serde_json::from_str(&s).map_err(internal)).transpose()
    }

    async fn put_setting(&self, key: &str, value: &serde_json::Value, now: DateTime<Utc>) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = sqlx::query(
            "INSERT INTO valuation_settings (key, value, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value.to_string())
        .bind(micros(now))
        .execute(&mut *w.tx)
        .await
        .map(|_| ())
        .map_err(db);
        w.finish(result).await
    }

    async fn locked_periods(&self) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT period, locked_at FROM period_locks ORDER BY period")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter().map(|(p, t)| Ok((p, from_micros(t)?))).collect()
    }

    async fn lock_period(&self, period: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = sqlx::query("INSERT INTO period_locks (period, locked_at) VALUES (?, ?)")
            .bind(period)
            .bind(micros(now))
            .execute(&mut *w.tx)
            .await
            .map(|_| ())
            .map_err(db);
        w.finish(result).await
    }

    async fn add_landed_cost(&self, rec: &LandedCostRecord) -> StoreResult<LandedCostRecord> {
        let mut w = self.write().await?;
        let result = sqlx::query_scalar(
            "INSERT INTO landed_costs (purchase_order_id, receipt_number, amount, currency, basis, description, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(rec.purchase_order_id)
        .bind(rec.receipt_number)
        .bind(rec.amount.to_string())
        .bind(&rec.currency)
        .bind(&rec.basis)
        .bind(&rec.description)
        .bind(micros(rec.created_at))
        .fetch_one(&mut *w.tx)
        .await
        .map(|id: i64| LandedCostRecord { id, ..rec.clone() })
        .map_err(db);
        w.finish(result).await
    }

    async fn landed_costs(&self) -> StoreResult<Vec<LandedCostRecord>> {
        let rows = sqlx::query(
            "SELECT id, purchase_order_id, receipt_number, amount, currency, basis, description, created_at \
             FROM landed_costs ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let amount: String = r.try_get("amount").map_err(internal)?;
                Ok(LandedCostRecord {
                    id: r.try_get("id").map_err(internal)?,
                    purchase_order_id: r.try_get("purchase_order_id").map_err(internal)?,
                    receipt_number: r.try_get("receipt_number").map_err(internal)?,
                    amount: amount.parse().map_err(internal)?,
                    currency: r.try_get("currency").map_err(internal)?,
                    basis: r.try_get("basis").map_err(internal)?,
                    description: r.try_get("description").map_err(internal)?,
                    created_at: from_micros(r.try_get("created_at").map_err(internal)?)?,
                })
            })
            .collect()
    }

    async fn alert_states(&self) -> StoreResult<Vec<AlertStateRow>> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT item_id, warehouse_id, state FROM replenishment_alerts ORDER BY item_id, warehouse_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|(item_id, warehouse_id, s)| {
                Ok(AlertStateRow { item_id, warehouse_id, state: serde_json::from_str(&s).map_err(internal)? })
            })
            .collect()
    }

    async fn record_alerts(
        &self,
        item: ItemId,
        warehouse: LocationId,
        expected: Option<&serde_json::Value>,
        state: &serde_json::Value,
        events: &[OutboxEvent],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // The write lock (BEGIN IMMEDIATE) serialises evaluations, so read-compare-write is safe here.
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let current: Option<String> =
                sqlx::query_scalar("SELECT state FROM replenishment_alerts WHERE item_id = ? AND warehouse_id = ?")
                    .bind(item)
                    .bind(warehouse)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
            let current: Option<serde_json::Value> =
                current.map(|s| serde_json::from_str(&s).map_err(internal)).transpose()?;
            if current.as_ref() != expected {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO replenishment_alerts (item_id, warehouse_id, state, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (item_id, warehouse_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )
            .bind(item)
            .bind(warehouse)
            .bind(state.to_string())
            .bind(micros(now))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            for e in events {
                sqlx::query("INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)")
                    .bind(&e.topic)
                    .bind(e.payload.to_string())
                    .bind(micros(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
            }
            Ok(true)
        }
        .await;
        w.finish(result).await
    }
}

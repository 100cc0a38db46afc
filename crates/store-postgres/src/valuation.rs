//! Valuation and replenishment state in PostgreSQL: settings, landed costs, period locks and alert state.

use app::store::{OutboxEvent, StoreResult};
use app::valuation_store::{AlertStateRow, LandedCostRecord, ValuationStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::stock::{ItemId, LocationId};
use sqlx::Row;

use crate::codec::{db, from_micros, internal, micros};
use crate::{finish, PgStore};

#[async_trait]
impl ValuationStore for PgStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<serde_json::Value>> {
        let v: Option<String> = sqlx::query_scalar("SELECT value::text FROM valuation_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        v.map(|s| serde_json::from_str(&s).map_err(internal)).transpose()
    }

    async fn put_setting(&self, key: &str, value: &serde_json::Value, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO valuation_settings (key, value, updated_at) VALUES ($1, $2::jsonb, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value.to_string())
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn locked_periods(&self) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT period, locked_at FROM period_locks ORDER BY period")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter().map(|(p, t)| Ok((p, from_micros(t)?))).collect()
    }

    async fn lock_period(&self, period: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("INSERT INTO period_locks (period, locked_at) VALUES ($1, $2)")
            .bind(period)
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn add_landed_cost(&self, rec: &LandedCostRecord) -> StoreResult<LandedCostRecord> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO landed_costs (purchase_order_id, receipt_number, amount, currency, basis, description, \
             created_at) VALUES ($1, $2, $3::numeric, $4, $5, $6, $7) RETURNING id",
        )
        .bind(rec.purchase_order_id)
        .bind(rec.receipt_number)
        .bind(rec.amount.to_string())
        .bind(&rec.currency)
        .bind(&rec.basis)
        .bind(&rec.description)
        .bind(micros(rec.created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(LandedCostRecord { id, ..rec.clone() })
    }

    async fn landed_costs(&self) -> StoreResult<Vec<LandedCostRecord>> {
        let rows = sqlx::query(
            "SELECT id, purchase_order_id, receipt_number, amount::text AS amount, currency, basis, description, \
             created_at FROM landed_costs ORDER BY id",
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
            "SELECT item_id, warehouse_id, state::text FROM replenishment_alerts ORDER BY item_id, warehouse_id",
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
        let mut tx = self.pool.begin().await.map_err(internal)?;
        let result = async {
            let conn = &mut *tx;
            // A first state races on the primary key: the loser inserts nothing and reads the winner's row.
            sqlx::query(
                "INSERT INTO replenishment_alerts (item_id, warehouse_id, state, updated_at) \
                 VALUES ($1, $2, 'null'::jsonb, $3) ON CONFLICT DO NOTHING",
            )
            .bind(item)
            .bind(warehouse)
            .bind(micros(now))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            // The row lock makes a second node's evaluation wait, then see this one's state and back off.
            let current: String = sqlx::query_scalar(
                "SELECT state::text FROM replenishment_alerts WHERE item_id = $1 AND warehouse_id = $2 FOR UPDATE",
            )
            .bind(item)
            .bind(warehouse)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            let current: serde_json::Value = serde_json::from_str(&current).map_err(internal)?;
            let current = if current.is_null() { None } else { Some(current) };
            if current.as_ref() != expected {
                return Ok(false);
            }
            sqlx::query(
                "UPDATE replenishment_alerts SET state = $3::jsonb, updated_at = $4 \
                 WHERE item_id = $1 AND warehouse_id = $2",
            )
            .bind(item)
            .bind(warehouse)
            .bind(state.to_string())
            .bind(micros(now))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            for e in events {
                sqlx::query("INSERT INTO outbox (topic, payload, created_at) VALUES ($1, $2::jsonb, $3)")
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
        finish(tx, result).await
    }
}

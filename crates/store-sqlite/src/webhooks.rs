//! Webhooks on SQLite: endpoints, fan-out of outbox events into deliveries, claims and the attempt log
//! ([`app::webhook_store::WebhookStore`]).
//!
//! Every write runs under the store's single write lock (`BEGIN IMMEDIATE`), which is what makes fan-out happen once
//! and a claim exclusive here; the lease columns still matter, for a process that dies holding a claim. One writer
//! at a time also means outbox ids commit in id order, so fan-out never meets an id still in flight (PostgreSQL's
//! fan-out has to wait for those).

use app::store::StoreResult;
use app::webhook_store::{
    AttemptRecord, ClaimedDelivery, DeliveryOutcome, EndpointFields, EndpointRecord, EventFilter, EventSelector,
    FanOut, NewAttempt, OutboxRecord, Recorded, WebhookStore,
};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::codec::{db, from_json, from_micros, internal, micros, to_json};
use crate::{chunks, SqliteStore};

const ENDPOINT_COLUMNS: &str =
    "id, url, secret, event_types, channel, enabled, disabled_reason, failing_since, created_at, updated_at";

fn opt_time(v: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    v.map(from_micros).transpose()
}

fn endpoint(row: &SqliteRow) -> StoreResult<EndpointRecord> {
    let types: String = row.try_get("event_types").map_err(internal)?;
    Ok(EndpointRecord {
        id: row.try_get("id").map_err(internal)?,
        fields: EndpointFields {
            url: row.try_get("url").map_err(internal)?,
            event_types: from_json("endpoint event types", &types)?,
            channel: row.try_get("channel").map_err(internal)?,
            enabled: row.try_get("enabled").map_err(internal)?,
            disabled_reason: row.try_get("disabled_reason").map_err(internal)?,
        },
        secret: row.try_get("secret").map_err(internal)?,
        failing_since: opt_time(row.try_get("failing_since").map_err(internal)?)?,
        created_at: from_micros(row.try_get("created_at").map_err(internal)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(internal)?)?,
    })
}

fn outbox(row: &SqliteRow) -> StoreResult<OutboxRecord> {
    let payload: String = row.try_get("payload").map_err(internal)?;
    Ok(OutboxRecord {
        id: row.try_get("event_id").map_err(internal)?,
        topic: row.try_get("topic").map_err(internal)?,
        payload: serde_json::from_str(&payload).map_err(internal)?,
        created_at: from_micros(row.try_get("event_created_at").map_err(internal)?)?,
    })
}

/// Outbox rows a range replay reads at a time.
const REPLAY_PAGE: usize = 1000;

async fn endpoint_by_id(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<EndpointRecord>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(endpoint).transpose()
}

async fn enabled_endpoints(conn: &mut SqliteConnection) -> StoreResult<Vec<EndpointRecord>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enabled = 1 ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(endpoint).collect()
}

/// Inserts one pending delivery (due now) per (endpoint, event) pair, in the order given.
async fn insert_deliveries(
    conn: &mut SqliteConnection,
    pairs: &[(i64, i64)],
    replay: bool,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for chunk in chunks(pairs, 5) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, due_at, replay, created_at) ",
        );
        qb.push_values(chunk, |mut b, (endpoint, event)| {
            b.push_bind(*endpoint)
                .push_bind(*event)
                .push_bind("pending")
                .push_bind(micros(now))
                .push_bind(replay)
                .push_bind(micros(now));
        });
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

const EVENT_COLUMNS: &str = "o.id AS event_id, o.topic, o.payload, o.created_at AS event_created_at";

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_endpoint(
        &self,
        fields: &EndpointFields,
        secret: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<EndpointRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO webhook_endpoints (url, secret, event_types, channel, enabled, disabled_reason, \
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(&fields.url)
            .bind(secret)
            .bind(to_json("endpoint event types", &fields.event_types)?)
            .bind(&fields.channel)
            .bind(fields.enabled)
            .bind(&fields.disabled_reason)
            .bind(micros(now))
            .bind(micros(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            endpoint_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn update_endpoint(
        &self,
        id: i64,
        fields: &EndpointFields,
        now: DateTime<Utc>,
    ) -> StoreResult<EndpointRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let n = sqlx::query(
                "UPDATE webhook_endpoints SET url = ?, event_types = ?, channel = ?, disabled_reason = ?, \
                 failing_since = CASE WHEN ? AND NOT enabled THEN NULL ELSE failing_since END, enabled = ?, \
                 updated_at = ? WHERE id = ?",
            )
            .bind(&fields.url)
            .bind(to_json("endpoint event types", &fields.event_types)?)
            .bind(&fields.channel)
            .bind(&fields.disabled_reason)
            .bind(fields.enabled)
            .bind(fields.enabled)
            .bind(micros(now))
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            endpoint_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn set_endpoint_secret(&self, id: i64, secret: &str, now: DateTime<Utc>) -> StoreResult<EndpointRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let n = sqlx::query("UPDATE webhook_endpoints SET secret = ?, updated_at = ? WHERE id = ?")
                .bind(secret)
                .bind(micros(now))
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            endpoint_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn delete_endpoint(&self, id: i64) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = async {
            let n = sqlx::query("DELETE FROM webhook_endpoints WHERE id = ?")
                .bind(id)
                .execute(&mut *w.tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }
        .await;
        w.finish(result).await
    }

    async fn get_endpoint(&self, id: i64) -> StoreResult<Option<EndpointRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        endpoint_by_id(&mut conn, id).await
    }

    async fn list_endpoints(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<EndpointRecord>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id > ? ORDER BY id LIMIT ?");
        let rows = sqlx::query(&sql).bind(after.unwrap_or(0)).bind(limit).fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(endpoint).collect()
    }

    async fn fan_out(&self, limit: u32, now: DateTime<Utc>, passes: &EventFilter<'_>) -> StoreResult<FanOut> {
        // Most polls find nothing: look before taking the write lock, which the ledger needs.
        let pending: Option<i64> =
            sqlx::query_scalar("SELECT id FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        if pending.is_none() {
            return Ok(FanOut::default());
        }
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let sql =
                format!("SELECT {EVENT_COLUMNS} FROM outbox o WHERE o.delivered_at IS NULL ORDER BY o.id LIMIT ?");
            let rows = sqlx::query(&sql).bind(limit).fetch_all(&mut *conn).await.map_err(db)?;
            let events = rows.iter().map(outbox).collect::<StoreResult<Vec<_>>>()?;
            let Some(last) = events.last().map(|e| e.id) else { return Ok(FanOut::default()) };
            let endpoints = enabled_endpoints(conn).await?;
            let pairs: Vec<(i64, i64)> = events
                .iter()
                .flat_map(|e| endpoints.iter().filter(|ep| passes(ep, e)).map(move |ep| (ep.id, e.id)))
                .collect();
            insert_deliveries(conn, &pairs, false, now).await?;
            let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
            for chunk in chunks(&ids, 1) {
                let mut qb = QueryBuilder::<Sqlite>::new("UPDATE outbox SET delivered_at = ");
                qb.push_bind(micros(now)).push(" WHERE id IN (");
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(&mut *conn).await.map_err(db)?;
            }
            sqlx::query("UPDATE webhook_cursor SET last_event_id = max(last_event_id, ?) WHERE id = 1")
                .bind(last)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            Ok(FanOut { events: events.len(), deliveries: pairs.len() })
        }
        .await;
        w.finish(result).await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        token: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        // Most polls find nothing due: look before taking the write lock, which the ledger needs.
        let due: Option<i64> =
            sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE status = 'pending' AND due_at <= ? LIMIT 1")
                .bind(micros(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let sql = format!(
                "SELECT d.id, d.endpoint_id, d.attempts, d.first_attempt_at, e.url, e.secret, {EVENT_COLUMNS} \
                 FROM webhook_deliveries d \
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 JOIN outbox o ON o.id = d.event_id \
                 WHERE d.status = 'pending' AND e.enabled = 1 AND d.due_at <= ?1 \
                   AND (d.claimed_until IS NULL OR d.claimed_until < ?1) \
                   AND d.id = (SELECT min(p.id) FROM webhook_deliveries p \
                               WHERE p.endpoint_id = d.endpoint_id AND p.status = 'pending') \
                 ORDER BY d.id LIMIT ?2"
            );
            let rows = sqlx::query(&sql).bind(micros(now)).bind(limit).fetch_all(&mut *conn).await.map_err(db)?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in &rows {
                let attempts: i64 = row.try_get("attempts").map_err(internal)?;
                claimed.push(ClaimedDelivery {
                    id: row.try_get("id").map_err(internal)?,
                    endpoint_id: row.try_get("endpoint_id").map_err(internal)?,
                    url: row.try_get("url").map_err(internal)?,
                    secret: row.try_get("secret").map_err(internal)?,
                    event: outbox(row)?,
                    attempts: attempts as u32,
                    first_attempt_at: opt_time(row.try_get("first_attempt_at").map_err(internal)?)?,
                    claim_token: token,
                });
            }
            for d in &claimed {
                sqlx::query("UPDATE webhook_deliveries SET claimed_until = ?, claim_token = ? WHERE id = ?")
                    .bind(micros(lease_until))
                    .bind(token)
                    .bind(d.id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db)?;
            }
            Ok(claimed)
        }
        .await;
        w.finish(result).await
    }

    async fn record_attempt(&self, a: &NewAttempt) -> StoreResult<Recorded> {
        let (status, due, finished, next) = match a.outcome {
            DeliveryOutcome::Delivered => ("delivered", None, Some(micros(a.attempted_at)), None),
            DeliveryOutcome::RetryAt(at) => ("pending", Some(micros(at)), None, Some(micros(at))),
            DeliveryOutcome::Failed => ("failed", None, Some(micros(a.attempted_at)), None),
        };
        let succeeded = matches!(a.outcome, DeliveryOutcome::Delivered);
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let endpoint_id: Option<i64> = sqlx::query_scalar(
                "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, \
                 first_attempt_at = coalesce(first_attempt_at, ?), due_at = coalesce(?, due_at), finished_at = ?, \
                 claimed_until = NULL, claim_token = NULL \
                 WHERE id = ? AND claim_token = ? AND status = 'pending' RETURNING endpoint_id",
            )
            .bind(status)
            .bind(micros(a.attempted_at))
            .bind(due)
            .bind(finished)
            .bind(a.delivery_id)
            .bind(a.claim_token)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            let Some(endpoint_id) = endpoint_id else { return Ok(Recorded::ClaimLost) };
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, endpoint_id, attempted_at, status_code, error, \
                 duration_ms, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(a.delivery_id)
            .bind(endpoint_id)
            .bind(micros(a.attempted_at))
            .bind(a.status_code.map(i64::from))
            .bind(&a.error)
            .bind(a.duration_ms.max(0))
            .bind(next)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            let failing_since: Option<i64> = sqlx::query_scalar(
                "UPDATE webhook_endpoints SET failing_since = CASE WHEN ? THEN NULL \
                 ELSE coalesce(failing_since, ?) END WHERE id = ? RETURNING failing_since",
            )
            .bind(succeeded)
            .bind(micros(a.attempted_at))
            .bind(endpoint_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            Ok(Recorded::Logged { endpoint_id, failing_since: opt_time(failing_since)? })
        }
        .await;
        w.finish(result).await
    }

    async fn disable_endpoint(&self, id: i64, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            if endpoint_by_id(conn, id).await?.is_none() {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? \
                 WHERE id = ? AND enabled = 1",
            )
            .bind(reason)
            .bind(micros(now))
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(())
        }
        .await;
        w.finish(result).await
    }

    async fn list_attempts(
        &self,
        endpoint_id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AttemptRecord>> {
        let rows = sqlx::query(
            "SELECT a.id, a.delivery_id, d.event_id, o.topic, a.attempted_at, a.status_code, a.error, a.duration_ms, \
             a.next_attempt_at FROM webhook_attempts a \
             JOIN webhook_deliveries d ON d.id = a.delivery_id JOIN outbox o ON o.id = d.event_id \
             WHERE a.endpoint_id = ? AND a.id < ? ORDER BY a.id DESC LIMIT ?",
        )
        .bind(endpoint_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let status: Option<i64> = row.try_get("status_code").map_err(internal)?;
                Ok(AttemptRecord {
                    id: row.try_get("id").map_err(internal)?,
                    delivery_id: row.try_get("delivery_id").map_err(internal)?,
                    event_id: row.try_get("event_id").map_err(internal)?,
                    topic: row.try_get("topic").map_err(internal)?,
                    attempted_at: from_micros(row.try_get("attempted_at").map_err(internal)?)?,
                    status_code: status.map(|s| s as u16),
                    error: row.try_get("error").map_err(internal)?,
                    duration_ms: row.try_get("duration_ms").map_err(internal)?,
                    next_attempt_at: opt_time(row.try_get("next_attempt_at").map_err(internal)?)?,
                })
            })
            .collect()
    }

    async fn replay_events(
        &self,
        endpoint_id: i64,
        selector: EventSelector,
        max: u32,
        passes: &EventFilter<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let endpoint = endpoint_by_id(conn, endpoint_id).await?.ok_or(StoreError::NotFound)?;
            let events: Vec<OutboxRecord> = match selector {
                EventSelector::One(id) => {
                    let sql = format!("SELECT {EVENT_COLUMNS} FROM outbox o WHERE o.id = ?");
                    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
                    vec![outbox(&row.ok_or(StoreError::NotFound)?)?]
                }
                EventSelector::Range { from, to } => {
                    // Read in pages and stop once too many match: a wide range never sits in memory whole.
                    let sql = format!(
                        "SELECT {EVENT_COLUMNS} FROM outbox o WHERE o.created_at >= ? AND o.created_at < ? \
                         AND o.id > ? ORDER BY o.id LIMIT {REPLAY_PAGE}"
                    );
                    let (mut matched, mut after) = (Vec::new(), i64::MIN);
                    loop {
                        let rows = sqlx::query(&sql)
                            .bind(micros(from))
                            .bind(micros(to))
                            .bind(after)
                            .fetch_all(&mut *conn)
                            .await
                            .map_err(db)?;
                        let page = rows.iter().map(outbox).collect::<StoreResult<Vec<_>>>()?;
                        after = match page.last() {
                            Some(e) => e.id,
                            None => break,
                        };
                        matched.extend(page.into_iter().filter(|e| passes(&endpoint, e)));
                        if matched.len() > max as usize || rows.len() < REPLAY_PAGE {
                            break;
                        }
                    }
                    matched
                }
            };
            if events.len() > max as usize {
                return Err(StoreError::Conflict { constraint: "webhook_replay.max".into() });
            }
            let pairs: Vec<(i64, i64)> = events.iter().map(|e| (endpoint_id, e.id)).collect();
            insert_deliveries(conn, &pairs, true, now).await?;
            Ok(pairs.len())
        }
        .await;
        w.finish(result).await
    }
}

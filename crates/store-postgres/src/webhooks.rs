//! Webhooks on PostgreSQL: endpoints, fan-out of outbox events into deliveries, claims and the attempt log
//! ([`app::webhook_store::WebhookStore`]), for any number of nodes on one database.
//!
//! Fan-out locks the one cursor row `FOR UPDATE`, so it runs once at a time across nodes, and takes the events not
//! yet stamped rather than "those after the cursor": ids are drawn before commit, so a later id may commit first,
//! and a cursor alone would skip the earlier one for good. Claims take due deliveries `FOR UPDATE SKIP LOCKED`:
//! nodes never wait on each other and never claim the same delivery; a lease brings back a dead node's claims.

use app::store::StoreResult;
use app::webhook_store::{
    AttemptRecord, ClaimedDelivery, DeliveryOutcome, EndpointFields, EndpointRecord, EventFilter, EventSelector,
    FanOut, NewAttempt, OutboxRecord, Recorded, WebhookStore,
};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;

use crate::codec::{db, from_micros, get, internal, micros};
use crate::{finish, PgStore};

const ENDPOINT_COLUMNS: &str =
    "id, url, secret, event_types, channel, enabled, disabled_reason, failing_since, created_at, updated_at";

const EVENT_COLUMNS: &str = "o.id AS event_id, o.topic, o.payload::text AS payload, o.created_at AS event_created_at";

fn opt_time(v: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    v.map(from_micros).transpose()
}

fn endpoint(row: &PgRow) -> StoreResult<EndpointRecord> {
    Ok(EndpointRecord {
        id: get(row, "id")?,
        fields: EndpointFields {
            url: get(row, "url")?,
            event_types: get(row, "event_types")?,
            channel: get(row, "channel")?,
            enabled: get(row, "enabled")?,
            disabled_reason: get(row, "disabled_reason")?,
        },
        secret: get(row, "secret")?,
        failing_since: opt_time(get(row, "failing_since")?)?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

fn outbox(row: &PgRow) -> StoreResult<OutboxRecord> {
    Ok(OutboxRecord {
        id: get(row, "event_id")?,
        topic: get(row, "topic")?,
        payload: serde_json::from_str(&get::<String>(row, "payload")?).map_err(internal)?,
        created_at: from_micros(get(row, "event_created_at")?)?,
    })
}

/// Outbox rows a range replay reads at a time.
const REPLAY_PAGE: usize = 1000;

async fn endpoint_by_id(conn: &mut PgConnection, id: i64) -> StoreResult<Option<EndpointRecord>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(endpoint).transpose()
}

/// Inserts one pending delivery (due now) per (endpoint, event) pair, in the order given (ids follow it).
async fn insert_deliveries(
    conn: &mut PgConnection,
    pairs: &[(i64, i64)],
    replay: bool,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let endpoints: Vec<i64> = pairs.iter().map(|p| p.0).collect();
    let events: Vec<i64> = pairs.iter().map(|p| p.1).collect();
    sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, due_at, replay, created_at) \
         SELECT u.endpoint_id, u.event_id, 'pending', $3, $4, $3 \
         FROM UNNEST($1::int8[], $2::int8[]) WITH ORDINALITY AS u (endpoint_id, event_id, n) ORDER BY u.n",
    )
    .bind(&endpoints)
    .bind(&events)
    .bind(micros(now))
    .bind(replay)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Runs `f` in a transaction, committing when it succeeds.
macro_rules! in_tx {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut tx = $store.begin().await?;
        let result = async {
            let $conn: &mut PgConnection = &mut *tx;
            $body
        }
        .await;
        finish(tx, result).await
    }};
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_endpoint(
        &self,
        fields: &EndpointFields,
        secret: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<EndpointRecord> {
        let sql = format!(
            "INSERT INTO webhook_endpoints (url, secret, event_types, channel, enabled, disabled_reason, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {ENDPOINT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&fields.url)
            .bind(secret)
            .bind(&fields.event_types)
            .bind(&fields.channel)
            .bind(fields.enabled)
            .bind(&fields.disabled_reason)
            .bind(micros(now))
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        endpoint(&row)
    }

    async fn update_endpoint(
        &self,
        id: i64,
        fields: &EndpointFields,
        now: DateTime<Utc>,
    ) -> StoreResult<EndpointRecord> {
        let sql = format!(
            "UPDATE webhook_endpoints SET url = $1, event_types = $2, channel = $3, disabled_reason = $4, \
             failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END, enabled = $5, \
             updated_at = $6 WHERE id = $7 RETURNING {ENDPOINT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&fields.url)
            .bind(&fields.event_types)
            .bind(&fields.channel)
            .bind(&fields.disabled_reason)
            .bind(fields.enabled)
            .bind(micros(now))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        endpoint(&row.ok_or(StoreError::NotFound)?)
    }

    async fn set_endpoint_secret(&self, id: i64, secret: &str, now: DateTime<Utc>) -> StoreResult<EndpointRecord> {
        let sql = format!(
            "UPDATE webhook_endpoints SET secret = $1, updated_at = $2 WHERE id = $3 RETURNING {ENDPOINT_COLUMNS}"
        );
        let row =
            sqlx::query(&sql).bind(secret).bind(micros(now)).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        endpoint(&row.ok_or(StoreError::NotFound)?)
    }

    async fn delete_endpoint(&self, id: i64) -> StoreResult<()> {
        let n = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        if n == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn get_endpoint(&self, id: i64) -> StoreResult<Option<EndpointRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        endpoint_by_id(&mut conn, id).await
    }

    async fn list_endpoints(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<EndpointRecord>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(endpoint).collect()
    }

    async fn fan_out(&self, limit: u32, now: DateTime<Utc>, passes: &EventFilter<'_>) -> StoreResult<FanOut> {
        // Most polls find nothing: look before locking the cursor.
        let pending: Option<i64> =
            sqlx::query_scalar("SELECT id FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        if pending.is_none() {
            return Ok(FanOut::default());
        }
        in_tx!(self, |conn| {
            sqlx::query("SELECT last_event_id FROM webhook_cursor WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
            let sql =
                format!("SELECT {EVENT_COLUMNS} FROM outbox o WHERE o.delivered_at IS NULL ORDER BY o.id LIMIT $1");
            let rows = sqlx::query(&sql).bind(i64::from(limit)).fetch_all(&mut *conn).await.map_err(db)?;
            let events = rows.iter().map(outbox).collect::<StoreResult<Vec<_>>>()?;
            let Some(last) = events.last().map(|e| e.id) else { return Ok(FanOut::default()) };
            let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enabled ORDER BY id");
            let rows = sqlx::query(&sql).fetch_all(&mut *conn).await.map_err(db)?;
            let endpoints = rows.iter().map(endpoint).collect::<StoreResult<Vec<_>>>()?;
            let pairs: Vec<(i64, i64)> = events
                .iter()
                .flat_map(|e| endpoints.iter().filter(|ep| passes(ep, e)).map(move |ep| (ep.id, e.id)))
                .collect();
            insert_deliveries(conn, &pairs, false, now).await?;
            let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
            sqlx::query("UPDATE outbox SET delivered_at = $1 WHERE id = ANY($2::int8[])")
                .bind(micros(now))
                .bind(&ids)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            sqlx::query("UPDATE webhook_cursor SET last_event_id = GREATEST(last_event_id, $1) WHERE id = 1")
                .bind(last)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            Ok(FanOut { events: events.len(), deliveries: pairs.len() })
        })
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        token: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        // Most polls find nothing due: a plain read costs less than a transaction.
        let due: Option<i64> =
            sqlx::query_scalar("SELECT id FROM webhook_deliveries WHERE status = 'pending' AND due_at <= $1 LIMIT 1")
                .bind(micros(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        in_tx!(self, |conn| {
            // The head of each endpoint's queue, then lock what is due of those heads; a head another node is
            // claiming right now is skipped, and so (being the head) is everything behind it.
            let sql = format!(
                "WITH heads AS (SELECT min(id) AS id FROM webhook_deliveries WHERE status = 'pending' \
                                GROUP BY endpoint_id) \
                 SELECT d.id, d.endpoint_id, d.attempts, d.first_attempt_at, e.url, e.secret, {EVENT_COLUMNS} \
                 FROM webhook_deliveries d \
                 JOIN heads h ON h.id = d.id \
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 JOIN outbox o ON o.id = d.event_id \
                 WHERE d.status = 'pending' AND e.enabled AND d.due_at <= $1 \
                   AND (d.claimed_until IS NULL OR d.claimed_until < $1) \
                 ORDER BY d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED"
            );
            let rows =
                sqlx::query(&sql).bind(micros(now)).bind(i64::from(limit)).fetch_all(&mut *conn).await.map_err(db)?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in &rows {
                claimed.push(ClaimedDelivery {
                    id: get(row, "id")?,
                    endpoint_id: get(row, "endpoint_id")?,
                    url: get(row, "url")?,
                    secret: get(row, "secret")?,
                    event: outbox(row)?,
                    attempts: get::<i32>(row, "attempts")? as u32,
                    first_attempt_at: opt_time(get(row, "first_attempt_at")?)?,
                    claim_token: token,
                });
            }
            let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
            if !ids.is_empty() {
                sqlx::query(
                    "UPDATE webhook_deliveries SET claimed_until = $1, claim_token = $2 WHERE id = ANY($3::int8[])",
                )
                .bind(micros(lease_until))
                .bind(token)
                .bind(&ids)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            }
            Ok(claimed)
        })
    }

    async fn record_attempt(&self, a: &NewAttempt) -> StoreResult<Recorded> {
        let (status, due, finished, next) = match a.outcome {
            DeliveryOutcome::Delivered => ("delivered", None, Some(micros(a.attempted_at)), None),
            DeliveryOutcome::RetryAt(at) => ("pending", Some(micros(at)), None, Some(micros(at))),
            DeliveryOutcome::Failed => ("failed", None, Some(micros(a.attempted_at)), None),
        };
        let succeeded = matches!(a.outcome, DeliveryOutcome::Delivered);
        in_tx!(self, |conn| {
            let endpoint_id: Option<i64> = sqlx::query_scalar(
                "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, \
                 first_attempt_at = coalesce(first_attempt_at, $2), due_at = coalesce($3, due_at), finished_at = $4, \
                 claimed_until = NULL, claim_token = NULL \
                 WHERE id = $5 AND claim_token = $6 AND status = 'pending' RETURNING endpoint_id",
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
                 duration_ms, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(a.delivery_id)
            .bind(endpoint_id)
            .bind(micros(a.attempted_at))
            .bind(a.status_code.map(i32::from))
            .bind(&a.error)
            .bind(a.duration_ms.max(0))
            .bind(next)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            let failing_since: Option<i64> = sqlx::query_scalar(
                "UPDATE webhook_endpoints SET failing_since = CASE WHEN $1 THEN NULL \
                 ELSE coalesce(failing_since, $2) END WHERE id = $3 RETURNING failing_since",
            )
            .bind(succeeded)
            .bind(micros(a.attempted_at))
            .bind(endpoint_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            Ok(Recorded::Logged { endpoint_id, failing_since: opt_time(failing_since)? })
        })
    }

    async fn disable_endpoint(&self, id: i64, reason: &str, now: DateTime<Utc>) -> StoreResult<()> {
        in_tx!(self, |conn| {
            if endpoint_by_id(conn, id).await?.is_none() {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $1, updated_at = $2 \
                 WHERE id = $3 AND enabled",
            )
            .bind(reason)
            .bind(micros(now))
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(())
        })
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
             WHERE a.endpoint_id = $1 AND a.id < $2 ORDER BY a.id DESC LIMIT $3",
        )
        .bind(endpoint_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(AttemptRecord {
                    id: get(row, "id")?,
                    delivery_id: get(row, "delivery_id")?,
                    event_id: get(row, "event_id")?,
                    topic: get(row, "topic")?,
                    attempted_at: from_micros(get(row, "attempted_at")?)?,
                    status_code: get::<Option<i32>>(row, "status_code")?.map(|s| s as u16),
                    error: get(row, "error")?,
                    duration_ms: get(row, "duration_ms")?,
                    next_attempt_at: opt_time(get(row, "next_attempt_at")?)?,
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
        in_tx!(self, |conn| {
            let endpoint = endpoint_by_id(conn, endpoint_id).await?.ok_or(StoreError::NotFound)?;
            let events: Vec<OutboxRecord> = match selector {
                EventSelector::One(id) => {
                    let sql = format!("SELECT {EVENT_COLUMNS} FROM outbox o WHERE o.id = $1");
                    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
                    vec![outbox(&row.ok_or(StoreError::NotFound)?)?]
                }
                EventSelector::Range { from, to } => {
                    // Read in pages and stop once too many match: a wide range never sits in memory whole.
                    let sql = format!(
                        "SELECT {EVENT_COLUMNS} FROM outbox o WHERE o.created_at >= $1 AND o.created_at < $2 \
                         AND o.id > $3 ORDER BY o.id LIMIT {REPLAY_PAGE}"
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
        })
    }
}

//! Webhooks on PostgreSQL: endpoints, fan-out of outbox events into deliveries, claims and the attempt log
//! ([`app::webhook_store::WebhookStore`]), for any number of nodes on one database.
//!
//! Fan-out locks the one cursor row `FOR UPDATE`, so it runs once at a time across nodes. Ids are drawn before
//! commit, so a later id may commit first: fan-out takes the events in id order and stops before an id that is
//! missing until no transaction that could still commit it is running (see [`settle`] and migration 0010), so
//! that each endpoint hears events in id order. Claims take due deliveries `FOR UPDATE SKIP LOCKED`: nodes never
//! wait on each other and never claim the same delivery; a lease brings back a dead node's claims.

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

/// How long fan-out waits for the transactions that could still commit a missing outbox id before it moves over
/// the id anyway: a session left open in a transaction must not hold every webhook back for good.
const GAP_BACKSTOP_MICROS: i64 = 60_000_000;

/// A gap fan-out saw in the outbox (migration 0010): every id below `below` that was missing then is settled once
/// a snapshot's xmin reaches `horizon`, the xmax of the snapshot that saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Gap {
    below: i64,
    horizon: i64,
    seen_at: i64,
}

/// What fan-out takes of the pending events it read.
#[derive(Debug, PartialEq)]
struct Settled {
    /// How many of the pending ids, from the first.
    take: usize,
    /// Every id up to here is fanned out or settled as never to be committed.
    cursor: i64,
    /// The observation still waited on, if any.
    gap: Option<Gap>,
    /// Whether a gap was moved over because it outwaited [`GAP_BACKSTOP_MICROS`], not because it was settled.
    forced: bool,
}

/// Walks the pending ids (ascending) from the cursor and stops before the first missing id that may still commit.
/// An id at or below the cursor is one that came in after its gap was given up, and goes out at once.
/// `snapshot` is `(xmin, xmax)` of the snapshot the ids were read in; `now` is in microseconds.
fn settle(cursor: i64, gap: Option<Gap>, pending: &[i64], snapshot: (i64, i64), now: i64) -> Settled {
    let (xmin, xmax) = snapshot;
    let mut s = Settled { take: 0, cursor, gap, forced: false };
    for (i, &id) in pending.iter().enumerate() {
        if id > s.cursor + 1 {
            // Missing: s.cursor + 1 ..= id - 1. An earlier observation covers them if it saw an id at or above this.
            let g = match s.gap {
                Some(g) if id <= g.below => g,
                _ => *s.gap.insert(Gap { below: pending[pending.len() - 1], horizon: xmax, seen_at: now }),
            };
            if xmin < g.horizon {
                if now - g.seen_at < GAP_BACKSTOP_MICROS {
                    break;
                }
                s.forced = true;
            }
        }
        s.take = i + 1;
        s.cursor = s.cursor.max(id);
    }
    if s.gap.is_some_and(|g| s.cursor + 1 >= g.below) {
        s.gap = None;
    }
    s
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
            let cursor = sqlx::query("SELECT * FROM webhook_cursor WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
            let gap = match get::<Option<i64>>(&cursor, "gap_below")? {
                Some(below) => {
                    Some(Gap { below, horizon: get(&cursor, "gap_horizon")?, seen_at: get(&cursor, "gap_seen_at")? })
                }
                None => None,
            };
            // The snapshot's bounds come from the statement that reads the events, so they describe what it saw.
            let sql = format!(
                "SELECT {EVENT_COLUMNS}, pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS snapshot_xmin, \
                 pg_snapshot_xmax(pg_current_snapshot())::text::int8 AS snapshot_xmax \
                 FROM outbox o WHERE o.delivered_at IS NULL ORDER BY o.id LIMIT $1"
            );
            let rows = sqlx::query(&sql).bind(i64::from(limit)).fetch_all(&mut *conn).await.map_err(db)?;
            let Some(first) = rows.first() else { return Ok(FanOut::default()) };
            let (xmin, xmax): (i64, i64) = (get(first, "snapshot_xmin")?, get(first, "snapshot_xmax")?);
            let mut events = rows.iter().map(outbox).collect::<StoreResult<Vec<_>>>()?;
            let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
            let settled = settle(get(&cursor, "last_event_id")?, gap, &ids, (xmin, xmax), micros(now));
            if settled.forced {
                tracing::warn!(
                    cursor = settled.cursor,
                    "webhook fan-out moved over outbox ids still unaccounted for after {} s: a transaction open \
                     that long holds them; if it commits, its events go out late, out of order",
                    GAP_BACKSTOP_MICROS / 1_000_000
                );
            }
            events.truncate(settled.take);
            let stored_gap = settled.gap.map(|g| (g.below, g.horizon, g.seen_at));
            sqlx::query(
                "UPDATE webhook_cursor SET last_event_id = GREATEST(last_event_id, $1), gap_below = $2, \
                 gap_horizon = $3, gap_seen_at = $4 WHERE id = 1",
            )
            .bind(settled.cursor)
            .bind(stored_gap.map(|g| g.0))
            .bind(stored_gap.map(|g| g.1))
            .bind(stored_gap.map(|g| g.2))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            if events.is_empty() {
                return Ok(FanOut::default());
            }
            let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE enabled ORDER BY id");
            let rows = sqlx::query(&sql).fetch_all(&mut *conn).await.map_err(db)?;
            let endpoints = rows.iter().map(endpoint).collect::<StoreResult<Vec<_>>>()?;
            let pairs: Vec<(i64, i64)> = events
                .iter()
                .flat_map(|e| endpoints.iter().filter(|ep| passes(ep, e)).map(move |ep| (ep.id, e.id)))
                .collect();
            insert_deliveries(conn, &pairs, false, now).await?;
            sqlx::query("UPDATE outbox SET delivered_at = $1 WHERE id = ANY($2::int8[])")
                .bind(micros(now))
                .bind(&ids[..events.len()])
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    const NOW: i64 = 1_000_000_000;

    #[test]
    fn a_missing_id_holds_back_the_ids_above_it_until_its_writers_are_gone() {
        // 3 is missing and something is in flight (xmin 7 < xmax 9): take 1 and 2 only, and remember the gap.
        let s = settle(0, None, &[1, 2, 4, 5], (7, 9), NOW);
        let gap = Gap { below: 5, horizon: 9, seen_at: NOW };
        assert_eq!(s, Settled { take: 2, cursor: 2, gap: Some(gap), forced: false });
        // Still in flight later: nothing moves.
        let s = settle(2, Some(gap), &[4, 5], (8, 12), NOW + 1_000);
        assert_eq!(s, Settled { take: 0, cursor: 2, gap: Some(gap), forced: false });
        // It committed: 3 is visible now and everything goes out in order.
        let s = settle(2, Some(gap), &[3, 4, 5], (10, 12), NOW + 2_000);
        assert_eq!(s, Settled { take: 3, cursor: 5, gap: None, forced: false });
    }

    #[test]
    fn a_missing_id_whose_writers_all_ended_was_rolled_back() {
        let gap = Gap { below: 5, horizon: 9, seen_at: NOW };
        let s = settle(2, Some(gap), &[4, 5, 7], (9, 12), NOW + 1_000);
        // 3 is given up; 6 was missing behind 5 too, but that observation never saw 6: it is looked at afresh.
        assert_eq!(s.take, 2);
        assert_eq!(s.cursor, 5);
        assert_eq!(s.gap, Some(Gap { below: 7, horizon: 12, seen_at: NOW + 1_000 }));
        // With nothing in flight at all, a gap first seen is settled on the spot.
        assert_eq!(settle(0, None, &[2, 3], (20, 20), NOW), Settled { take: 2, cursor: 3, gap: None, forced: false });
    }

    #[test]
    fn a_gap_older_than_the_backstop_is_moved_over_and_a_late_id_still_goes_out() {
        let gap = Gap { below: 5, horizon: 9, seen_at: NOW };
        let s = settle(2, Some(gap), &[4, 5], (8, 12), NOW + GAP_BACKSTOP_MICROS - 1);
        assert_eq!(s.take, 0);
        let s = settle(2, Some(gap), &[4, 5], (8, 12), NOW + GAP_BACKSTOP_MICROS);
        assert_eq!(s, Settled { take: 2, cursor: 5, gap: None, forced: true });
        // The open transaction commits 3 after all: it is not lost.
        assert_eq!(settle(5, None, &[3, 6], (13, 13), NOW), Settled { take: 2, cursor: 6, gap: None, forced: false });
    }

    /// Writers that take an xid, draw outbox ids and commit or roll back in any interleaving, and fan-outs in
    /// between: what fan-out hands on is every committed id, once, in ascending order.
    #[derive(Default)]
    struct World {
        next_xid: i64,
        next_id: i64,
        running: Vec<(i64, Vec<i64>)>,
        visible: BTreeSet<i64>,
        committed: Vec<i64>,
        cursor: i64,
        gap: Option<Gap>,
        sent: Vec<i64>,
    }

    impl World {
        fn fan_out(&mut self) {
            let xmax = self.next_xid;
            let xmin = self.running.iter().map(|t| t.0).min().unwrap_or(xmax);
            let pending: Vec<i64> = self.visible.iter().copied().collect();
            let s = settle(self.cursor, self.gap, &pending, (xmin, xmax), NOW);
            assert!(!s.forced);
            for id in &pending[..s.take] {
                self.visible.remove(id);
                self.sent.push(*id);
            }
            (self.cursor, self.gap) = (s.cursor, s.gap);
        }
    }

    proptest! {
        // Cheap cases, and the interleavings that matter are a few ops among many: run plenty.
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn fan_out_hands_on_committed_ids_once_in_order(ops in prop::collection::vec((0u8..5, 0usize..8), 0..80)) {
            let mut w = World { next_xid: 100, next_id: 1, ..World::default() };
            for (op, pick) in ops {
                let n = w.running.len();
                match op {
                    0 => {
                        w.running.push((w.next_xid, vec![]));
                        w.next_xid += 1;
                    }
                    1 if n > 0 => {
                        w.running[pick % n].1.push(w.next_id);
                        w.next_id += 1;
                    }
                    2 if n > 0 => {
                        let (_, ids) = w.running.remove(pick % n);
                        w.visible.extend(&ids);
                        w.committed.extend(ids);
                    }
                    3 if n > 0 => {
                        w.running.remove(pick % n);
                    }
                    _ => w.fan_out(),
                }
                prop_assert!(w.sent.windows(2).all(|p| p[0] < p[1]), "in order: {:?}", w.sent);
            }
            for (_, ids) in std::mem::take(&mut w.running) {
                w.visible.extend(&ids);
                w.committed.extend(ids);
            }
            w.fan_out();
            w.committed.sort_unstable();
            prop_assert_eq!(&w.sent, &w.committed);
        }
    }
}

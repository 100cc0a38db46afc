//! Idempotency keys: claiming a key, storing the first response, and recognizing retries and misuse, across every
//! node that shares the database.
//!
//! A key is claimed by inserting its row (`ON CONFLICT DO NOTHING`): of two nodes that insert the same key at the
//! same moment, the second waits for the first insert to commit and then inserts nothing, so exactly one of them
//! is told `New`. Every other caller reads the row that is there.

use app::store::{IdempotencyState, IdempotencyStore, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::codec::{db, get, internal, micros};
use crate::PgStore;

/// How long a key is remembered. Clients retry within minutes; a day covers an overnight outage.
const KEY_LIFETIME_HOURS: i64 = 24;

/// How often a claim is tried again when the key vanished between our insert and our read (its first request
/// aborted, or it expired): each try either claims the key or reads it.
const CLAIM_ATTEMPTS: usize = 5;

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn begin_request(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        // Forgetting expired keys here, a few at a time on every request, keeps the table small without a
        // separate sweeper; the index on created_at makes it cheap. Autocommitted on its own: it must not hold
        // row locks while the claim below waits on another node.
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(micros(now - Duration::hours(KEY_LIFETIME_HOURS)))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        for _ in 0..CLAIM_ATTEMPTS {
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map_err(db)?;
            if claimed.rows_affected() == 1 {
                return Ok(IdempotencyState::New);
            }
            let row = sqlx::query(
                "SELECT request_hash, status, body, content_type FROM idempotency_keys WHERE scope = $1 AND key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
            // Gone again (aborted or expired by another node in between): claim it afresh.
            let Some(row) = row else { continue };
            let stored_hash: String = get(&row, "request_hash")?;
            if stored_hash != request_hash {
                return Ok(IdempotencyState::Mismatch);
            }
            let status: Option<i32> = get(&row, "status")?;
            return Ok(match status {
                None => IdempotencyState::InProgress,
                Some(status) => IdempotencyState::Completed {
                    status: u16::try_from(status).map_err(internal)?,
                    body: get::<Option<Vec<u8>>>(&row, "body")?.unwrap_or_default(),
                    content_type: get::<Option<String>>(&row, "content_type")?.unwrap_or_default(),
                },
            });
        }
        Err(StoreError::Internal(format!("idempotency key '{key}' kept vanishing while being claimed")))
    }

    async fn complete_request(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
        content_type: &str,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE idempotency_keys SET status = $1, body = $2, content_type = $3 WHERE scope = $4 AND key = $5",
        )
        .bind(i32::from(status))
        .bind(body)
        .bind(content_type)
        .bind(scope)
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn abort_request(&self, scope: &str, key: &str) -> StoreResult<()> {
        // Releasing a key that is already gone (expired, or aborted twice) is fine: the goal is that it is free.
        sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}

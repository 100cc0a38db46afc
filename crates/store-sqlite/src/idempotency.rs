//! Idempotency keys: claiming a key, storing the first response, and recognizing retries and misuse.

use app::store::{IdempotencyState, IdempotencyStore, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

use crate::codec::{db, internal, micros};
use crate::SqliteStore;

/// How long a key is remembered. Clients retry within minutes; a day covers an overnight outage.
const KEY_LIFETIME_HOURS: i64 = 24;

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn begin_request(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            // Forgetting expired keys here, a few at a time on every request, keeps the table small without a
            // separate sweeper; the index on created_at makes it cheap.
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
                .bind(micros(now - Duration::hours(KEY_LIFETIME_HOURS)))
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(micros(now))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            if claimed.rows_affected() == 1 {
                return Ok(IdempotencyState::New);
            }
            let row = sqlx::query(
                "SELECT request_hash, status, body, content_type FROM idempotency_keys WHERE scope = ? AND key = ?",
            )
            .bind(scope)
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            let stored_hash: String = row.try_get("request_hash").map_err(internal)?;
            if stored_hash != request_hash {
                return Ok(IdempotencyState::Mismatch);
            }
            let status: Option<i64> = row.try_get("status").map_err(internal)?;
            Ok(match status {
                None => IdempotencyState::InProgress,
                Some(status) => IdempotencyState::Completed {
                    status: u16::try_from(status).map_err(internal)?,
                    body: row.try_get::<Option<Vec<u8>>, _>("body").map_err(internal)?.unwrap_or_default(),
                    content_type: row
                        .try_get::<Option<String>, _>("content_type")
                        .map_err(internal)?
                        .unwrap_or_default(),
                },
            })
        }
        .await;
        w.finish(result).await
    }

    async fn complete_request(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
        content_type: &str,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = async {
            let done = sqlx::query(
                "UPDATE idempotency_keys SET status = ?, body = ?, content_type = ? WHERE scope = ? AND key = ?",
            )
            .bind(i64::from(status))
            .bind(body)
            .bind(content_type)
            .bind(scope)
            .bind(key)
            .execute(&mut *w.tx)
            .await
            .map_err(db)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }
        .await;
        w.finish(result).await
    }

    async fn abort_request(&self, scope: &str, key: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        // Releasing a key that is already gone (expired, or aborted twice) is fine: the goal is that it is free.
        let result = sqlx::query("DELETE FROM idempotency_keys WHERE scope = ? AND key = ?")
            .bind(scope)
            .bind(key)
            .execute(&mut *w.tx)
            .await
            .map(|_| ())
            .map_err(db);
        w.finish(result).await
    }
}

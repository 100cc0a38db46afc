//! Trust on PostgreSQL: API keys by the hash of their secret, the append-only audit trail, and hold ownership
//! ([`app::trust_store::TrustStore`]).

use app::store::{HoldId, StoreResult};
use app::trust_store::{
    ApiKeyRecord, AuditFilter, AuditRecord, NewApiKey, NewAuditEntry, NewWebSession, Role, TrustStore, WebSessionRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

use crate::codec::{db, db_error, from_micros, internal, micros};
use crate::{finish, PgStore};

const KEY_COLUMNS: &str = "id, name, role, channel, prefix, created_by, created_at, expires_at, revoked_at";

fn key(row: &PgRow) -> StoreResult<ApiKeyRecord> {
    let role: String = row.try_get("role").map_err(internal)?;
    let opt = |c: &str| -> StoreResult<Option<DateTime<Utc>>> {
        row.try_get::<Option<i64>, _>(c).map_err(internal)?.map(from_micros).transpose()
    };
    Ok(ApiKeyRecord {
        id: row.try_get("id").map_err(internal)?,
        name: row.try_get("name").map_err(internal)?,
        role: Role::parse(&role).ok_or_else(|| internal(format!("unknown role {role}")))?,
        channel: row.try_get("channel").map_err(internal)?,
        prefix: row.try_get("prefix").map_err(internal)?,
        created_by: row.try_get("created_by").map_err(internal)?,
        created_at: from_micros(row.try_get("created_at").map_err(internal)?)?,
        expires_at: opt("expires_at")?,
        revoked_at: opt("revoked_at")?,
    })
}

fn audit(row: &PgRow) -> StoreResult<AuditRecord> {
    let status: i32 = row.try_get("status").map_err(internal)?;
    Ok(AuditRecord {
        id: row.try_get("id").map_err(internal)?,
        entry: NewAuditEntry {
            at: from_micros(row.try_get("at").map_err(internal)?)?,
            actor_key_id: row.try_get("actor_key_id").map_err(internal)?,
            actor_name: row.try_get("actor_name").map_err(internal)?,
            request_id: row.try_get("request_id").map_err(internal)?,
            entity: row.try_get("entity").map_err(internal)?,
            entity_id: row.try_get("entity_id").map_err(internal)?,
            action: row.try_get("action").map_err(internal)?,
            status: u16::try_from(status).map_err(internal)?,
            summary: row.try_get("summary").map_err(internal)?,
        },
    })
}

#[async_trait]
impl TrustStore for PgStore {
    async fn create_api_key(&self, k: &NewApiKey, now: DateTime<Utc>) -> StoreResult<ApiKeyRecord> {
        let sql = format!(
            "INSERT INTO api_keys (name, role, channel, secret_hash, prefix, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {KEY_COLUMNS}"
        );
        {
            let row = sqlx::query(&sql)
                .bind(&k.name)
                .bind(k.role.as_str())
                .bind(&k.channel)
                .bind(&k.secret_hash)
                .bind(&k.prefix)
                .bind(&k.created_by)
                .bind(micros(now))
                .bind(k.expires_at.map(micros))
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
            key(&row)
        }
    }

    async fn api_key_by_hash(&self, secret_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1");
        let row = sqlx::query(&sql).bind(secret_hash).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(key).transpose()
    }

    async fn get_api_key(&self, id: i64) -> StoreResult<Option<ApiKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(key).transpose()
    }

    async fn list_api_keys(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<ApiKeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(key).collect()
    }

    async fn revoke_api_key(&self, id: i64, now: DateTime<Utc>) -> StoreResult<Option<ApiKeyRecord>> {
        sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.get_api_key(id).await
    }

    async fn count_api_keys(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT count(*) FROM api_keys").fetch_one(&self.pool).await.map_err(db)
    }

    async fn append_audit(&self, entries: &[NewAuditEntry]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(internal)?;
        let result = async {
            // 9 parameters a row: 300 rows stay far below PostgreSQL's limit of 65535.
            for chunk in entries.chunks(300) {
                let mut qb = QueryBuilder::<Postgres>::new(
                    "INSERT INTO audit_log (at, actor_key_id, actor_name, request_id, entity, entity_id, action, \
                     status, summary) ",
                );
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(micros(e.at))
                        .push_bind(e.actor_key_id)
                        .push_bind(&e.actor_name)
                        .push_bind(&e.request_id)
                        .push_bind(&e.entity)
                        .push_bind(&e.entity_id)
                        .push_bind(&e.action)
                        .push_bind(i32::from(e.status))
                        .push_bind(&e.summary);
                });
                qb.build().execute(&mut *tx).await.map_err(db)?;
            }
            Ok(())
        }
        .await;
        finish(tx, result).await
    }

    async fn list_audit(&self, filter: &AuditFilter, after: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let mut qb = QueryBuilder::<Postgres>::new(
            "SELECT id, at, actor_key_id, actor_name, request_id, entity, entity_id, action, status, summary \
             FROM audit_log WHERE id > ",
        );
        qb.push_bind(after.unwrap_or(0));
        if let Some(e) = &filter.entity {
            qb.push(" AND entity = ").push_bind(e);
        }
        if let Some(e) = &filter.entity_id {
            qb.push(" AND entity_id = ").push_bind(e);
        }
        if let Some(a) = &filter.actor {
            match a.parse::<i64>() {
                Ok(id) => qb.push(" AND actor_key_id = ").push_bind(id),
                Err(_) => qb.push(" AND actor_name = ").push_bind(a),
            };
        }
        if let Some(t) = filter.since {
            qb.push(" AND at >= ").push_bind(micros(t));
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(audit).collect()
    }

    async fn set_hold_channel(&self, hold: HoldId, channel: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO hold_channels (hold_id, channel) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(hold)
            .bind(channel)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| db_error(e, "hold_channels.hold_id"))
    }

    async fn hold_channel(&self, hold: HoldId) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT channel FROM hold_channels WHERE hold_id = $1")
            .bind(hold)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn webhook_backlog(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    async fn create_web_session(&self, s: &NewWebSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO web_sessions (token_hash, key_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.token_hash)
        .bind(s.key_id)
        .bind(&s.csrf)
        .bind(micros(s.created_at))
        .bind(micros(s.expires_at))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|e| db_error(e, "web_sessions.key_id"))
    }

    async fn web_session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<WebSessionRecord>> {
        let sql = format!(
            "SELECT {}, s.csrf, s.expires_at AS session_expires_at FROM web_sessions s \
             JOIN api_keys k ON k.id = s.key_id WHERE s.token_hash = $1 AND s.expires_at > $2",
            KEY_COLUMNS.split(", ").map(|c| format!("k.{c}")).collect::<Vec<_>>().join(", ")
        );
        let row = sqlx::query(&sql).bind(token_hash).bind(micros(now)).fetch_optional(&self.pool).await.map_err(db)?;
        row.map(|row| {
            Ok(WebSessionRecord {
                key: key(&row)?,
                csrf: row.try_get("csrf").map_err(internal)?,
                expires_at: from_micros(row.try_get("session_expires_at").map_err(internal)?)?,
            })
        })
        .transpose()
    }

    async fn delete_web_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db)
    }

    async fn purge_web_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(micros(now))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(db)
    }
}

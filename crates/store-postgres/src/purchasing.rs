//! Purchasing documents: versioned JSONB aggregates, written with their outbox events, and locked, read and
//! written by the ledger's batch when a step moves stock.

use std::collections::BTreeMap;

use app::store::{DocKind, DocumentFilter, DocumentId, DocumentRecord, OutboxEvent, PurchasingStore, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::stock::{ItemId, LocationId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::codec::{db, from_micros, get, internal, micros};
use crate::ledger::BatchError;
use crate::PgStore;

const COLUMNS: &str = "id, kind, status, open, body::text AS body, version, created_at, updated_at";

fn record(row: &PgRow) -> StoreResult<DocumentRecord> {
    let kind: String = get(row, "kind")?;
    let body: String = get(row, "body")?;
    Ok(DocumentRecord {
        id: get(row, "id")?,
        kind: DocKind::parse(&kind).ok_or_else(|| internal(format!("unknown document kind '{kind}'")))?,
        status: get(row, "status")?,
        open: get(row, "open")?,
        body: serde_json::from_str(&body).map_err(internal)?,
        version: get(row, "version")?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

/// Locks and loads the documents of a batch, in id order.
pub(crate) async fn lock_documents(
    conn: &mut PgConnection,
    ids: &[DocumentId],
) -> Result<BTreeMap<DocumentId, DocumentRecord>, BatchError> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE");
    for row in sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await.map_err(BatchError::db)? {
        let rec = record(&row)?;
        out.insert(rec.id, rec);
    }
    Ok(out)
}

/// Writes one document if it is still at the version read, bumping it.
async fn write(conn: &mut PgConnection, doc: &DocumentRecord) -> Result<(), BatchError> {
    let done = sqlx::query(
        "UPDATE documents SET status = $1, open = $2, body = $3::jsonb, version = version + 1, updated_at = $4 \
          WHERE id = $5 AND version = $6",
    )
    .bind(&doc.status)
    .bind(doc.open)
    .bind(doc.body.to_string())
    .bind(micros(doc.updated_at))
    .bind(doc.id)
    .bind(doc.version)
    .execute(&mut *conn)
    .await
    .map_err(BatchError::db)?;
    if done.rows_affected() == 0 {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM documents WHERE id = $1")
            .bind(doc.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(BatchError::db)?;
        return Err(BatchError::Store(match exists {
            Some(_) => StoreError::Conflict { constraint: "documents.version".into() },
            None => StoreError::NotFound,
        }));
    }
    Ok(())
}

/// Writes the batch's documents that `decide` changed.
pub(crate) async fn write_changed(
    conn: &mut PgConnection,
    before: &BTreeMap<DocumentId, DocumentRecord>,
    after: &BTreeMap<DocumentId, DocumentRecord>,
) -> Result<(), BatchError> {
    for (id, doc) in after {
        if before.get(id) != Some(doc) {
            write(conn, doc).await?;
        }
    }
    Ok(())
}

async fn insert_events(
    conn: &mut PgConnection,
    id: DocumentId,
    events: &[OutboxEvent],
    now: DateTime<Utc>,
) -> Result<(), BatchError> {
    for e in events {
        let mut payload = e.payload.clone();
        payload["id"] = serde_json::json!(id);
        sqlx::query("INSERT INTO outbox (topic, payload, created_at) VALUES ($1, $2::jsonb, $3)")
            .bind(&e.topic)
            .bind(payload.to_string())
            .bind(micros(now))
            .execute(&mut *conn)
            .await
            .map_err(BatchError::db)?;
    }
    Ok(())
}

async fn fetch(conn: &mut PgConnection, id: DocumentId) -> StoreResult<Option<DocumentRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM documents WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    row.as_ref().map(record).transpose()
}

#[async_trait]
impl PurchasingStore for PgStore {
    async fn insert_document(&self, doc: &DocumentRecord, events: &[OutboxEvent]) -> StoreResult<DocumentRecord> {
        let mut tx = self.pool.begin().await.map_err(internal)?;
        let result = async {
            let conn = &mut *tx;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO documents (kind, status, open, body, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4::jsonb, 1, $5, $6) RETURNING id",
            )
            .bind(doc.kind.as_str())
            .bind(&doc.status)
            .bind(doc.open)
            .bind(doc.body.to_string())
            .bind(micros(doc.created_at))
            .bind(micros(doc.updated_at))
            .fetch_one(&mut *conn)
            .await
            .map_err(BatchError::db)?;
            insert_events(conn, id, events, doc.updated_at).await?;
            Ok(fetch(conn, id).await?.ok_or(StoreError::NotFound)?)
        }
        .await;
        crate::finish(tx, result.map_err(BatchError::into_store)).await
    }

    async fn update_document(&self, doc: &DocumentRecord, events: &[OutboxEvent]) -> StoreResult<DocumentRecord> {
        let mut tx = self.pool.begin().await.map_err(internal)?;
        let result = async {
            let conn = &mut *tx;
            write(conn, doc).await?;
            insert_events(conn, doc.id, events, doc.updated_at).await?;
            Ok(fetch(conn, doc.id).await?.ok_or(StoreError::NotFound)?)
        }
        .await;
        crate::finish(tx, result.map_err(BatchError::into_store)).await
    }

    async fn get_document(&self, id: DocumentId) -> StoreResult<Option<DocumentRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        fetch(&mut conn, id).await
    }

    async fn list_documents(
        &self,
        kind: DocKind,
        filter: &DocumentFilter,
        after: Option<DocumentId>,
        limit: u32,
    ) -> StoreResult<Vec<DocumentRecord>> {
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM documents WHERE kind = "));
        qb.push_bind(kind.as_str()).push(" AND id > ").push_bind(after.unwrap_or(0));
        if let Some(status) = &filter.status {
            qb.push(" AND status = ").push_bind(status.clone());
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(record).collect()
    }

    async fn open_documents(&self, kinds: &[DocKind]) -> StoreResult<Vec<DocumentRecord>> {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM documents WHERE open AND kind = ANY($1) ORDER BY id"))
            .bind(&kinds)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(record).collect()
    }

    async fn set_default_bin(
        &self,
        item: ItemId,
        warehouse: LocationId,
        bin: LocationId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO default_bins (item_id, warehouse_id, bin_id, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (item_id, warehouse_id) DO UPDATE SET bin_id = excluded.bin_id, updated_at = excluded.updated_at",
        )
        .bind(item)
        .bind(warehouse)
        .bind(bin)
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn clear_default_bin(&self, item: ItemId, warehouse: LocationId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM default_bins WHERE item_id = $1 AND warehouse_id = $2")
            .bind(item)
            .bind(warehouse)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn default_bin(&self, item: ItemId, warehouse: LocationId) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT l.path FROM default_bins d JOIN locations l ON l.id = d.bin_id WHERE d.item_id = $1 AND d.warehouse_id = $2")
            .bind(item)
            .bind(warehouse)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn empty_bin(&self, warehouse: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT l.path FROM locations l \
              WHERE l.kind = 'bin' AND (l.path = $1 OR left(l.path, length($1) + 1) = $1 || '/') \
                AND NOT EXISTS (SELECT 1 FROM stock_levels s WHERE s.location_id = l.id \
                                   AND s.available + s.committed + s.reserved + s.damaged + s.quality_control > 0) \
              ORDER BY EXISTS (SELECT 1 FROM default_bins d WHERE d.bin_id = l.id), l.path LIMIT 1",
        )
        .bind(warehouse)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }
}

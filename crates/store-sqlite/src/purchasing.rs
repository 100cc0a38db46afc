//! Purchasing documents: versioned JSON aggregates, written with their outbox events, and read and written by the
//! ledger's batch when a step moves stock.

use std::collections::BTreeMap;

use app::store::{DocKind, DocumentFilter, DocumentId, DocumentRecord, OutboxEvent, PurchasingStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::stock::{ItemId, LocationId};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::codec::{db, from_micros, internal, micros, to_json_list, Cols};
use crate::{chunks, placeholders, SqliteStore};

const COLUMNS: &str = "id, kind, status, open, body, version, created_at, updated_at";

fn record(row: &impl Cols) -> StoreResult<DocumentRecord> {
    let kind: String = row.col("kind")?;
    Ok(DocumentRecord {
        id: row.col("id")?,
        kind: DocKind::parse(&kind).ok_or_else(|| internal(format!("unknown document kind '{kind}'")))?,
        status: row.col("status")?,
        open: row.col::<i64>("open")? != 0,
        body: serde_json::from_str(&row.col::<String>("body")?).map_err(internal)?,
        version: row.col("version")?,
        created_at: from_micros(row.col("created_at")?)?,
        updated_at: from_micros(row.col("updated_at")?)?,
    })
}

/// Loads the documents of a batch.
pub(crate) async fn load_documents(
    conn: &mut SqliteConnection,
    ids: &[DocumentId],
) -> StoreResult<BTreeMap<DocumentId, DocumentRecord>> {
    let mut out = BTreeMap::new();
    for chunk in chunks(ids, 1) {
        let sql = format!("SELECT {COLUMNS} FROM documents WHERE id IN ({})", placeholders(chunk.len()));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await.map_err(db)? {
            let rec = record(&row)?;
            out.insert(rec.id, rec);
        }
    }
    Ok(out)
}

/// Writes one document if it is still at the version read, bumping it.
async fn write(conn: &mut SqliteConnection, doc: &DocumentRecord) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE documents SET status = ?, open = ?, body = ?, version = version + 1, updated_at = ? \
          WHERE id = ? AND version = ?",
    )
    .bind(&doc.status)
    .bind(i64::from(doc.open))
    .bind(doc.body.to_string())
    .bind(micros(doc.updated_at))
    .bind(doc.id)
    .bind(doc.version)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if done.rows_affected() == 0 {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM documents WHERE id = ?")
            .bind(doc.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        return Err(match exists {
            Some(_) => app::StoreError::Conflict { constraint: "documents.version".into() },
            None => app::StoreError::NotFound,
        });
    }
    Ok(())
}

/// Writes the batch's documents that `decide` changed.
pub(crate) async fn write_changed(
    conn: &mut SqliteConnection,
    before: &BTreeMap<DocumentId, DocumentRecord>,
    after: &BTreeMap<DocumentId, DocumentRecord>,
) -> StoreResult<()> {
    for (id, doc) in after {
        if before.get(id) != Some(doc) {
            write(conn, doc).await?;
        }
    }
    Ok(())
}

async fn insert_events(
    conn: &mut SqliteConnection,
    id: DocumentId,
    events: &[OutboxEvent],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for e in events {
        let mut payload = e.payload.clone();
        payload["id"] = serde_json::json!(id);
        sqlx::query("INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)")
            .bind(&e.topic)
            .bind(payload.to_string())
            .bind(micros(now))
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

async fn get(conn: &mut SqliteConnection, id: DocumentId) -> StoreResult<Option<DocumentRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM documents WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    row.as_ref().map(record).transpose()
}

#[async_trait]
impl PurchasingStore for SqliteStore {
    async fn insert_document(&self, doc: &DocumentRecord, events: &[OutboxEvent]) -> StoreResult<DocumentRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO documents (kind, status, open, body, version, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, 1, ?, ?) RETURNING id",
            )
            .bind(doc.kind.as_str())
            .bind(&doc.status)
            .bind(i64::from(doc.open))
            .bind(doc.body.to_string())
            .bind(micros(doc.created_at))
            .bind(micros(doc.updated_at))
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            insert_events(conn, id, events, doc.updated_at).await?;
            get(conn, id).await?.ok_or(app::StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn update_document(&self, doc: &DocumentRecord, events: &[OutboxEvent]) -> StoreResult<DocumentRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            write(conn, doc).await?;
            insert_events(conn, doc.id, events, doc.updated_at).await?;
            get(conn, doc.id).await?.ok_or(app::StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn get_document(&self, id: DocumentId) -> StoreResult<Option<DocumentRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        get(&mut conn, id).await
    }

    async fn list_documents(
        &self,
        kind: DocKind,
        filter: &DocumentFilter,
        after: Option<DocumentId>,
        limit: u32,
    ) -> StoreResult<Vec<DocumentRecord>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM documents WHERE kind = "));
        qb.push_bind(kind.as_str()).push(" AND id > ").push_bind(after.unwrap_or(0));
        if let Some(status) = &filter.status {
            qb.push(" AND status = ").push_bind(status);
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(record).collect()
    }

    async fn open_documents(&self, kinds: &[DocKind]) -> StoreResult<Vec<DocumentRecord>> {
        // Every level lookup asks for the open purchase orders and transfers (what is incoming). The partial index
        // of open documents keeps it to those, however many closed ones there are.
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_string()).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM documents WHERE open = 1 AND kind IN (SELECT value FROM json_each(?)) ORDER BY id"
        );
        self.read(|c| crate::readers::all(c, &sql, [to_json_list(&kinds)], |r| record(r))).await
    }

    async fn set_default_bin(
        &self,
        item: ItemId,
        warehouse: LocationId,
        bin: LocationId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO default_bins (item_id, warehouse_id, bin_id, updated_at) VALUES (?, ?, ?, ?) \
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
        let done = sqlx::query("DELETE FROM default_bins WHERE item_id = ? AND warehouse_id = ?")
            .bind(item)
            .bind(warehouse)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn default_bin(&self, item: ItemId, warehouse: LocationId) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT l.path FROM default_bins d JOIN locations l ON l.id = d.bin_id WHERE d.item_id = ? AND d.warehouse_id = ?")
            .bind(item)
            .bind(warehouse)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn empty_bin(&self, warehouse: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT l.path FROM locations l \
              WHERE l.kind = 'bin' AND (l.path = ? OR substr(l.path, 1, length(?) + 1) = ? || '/') \
                AND NOT EXISTS (SELECT 1 FROM stock_levels s WHERE s.location_id = l.id \
                                   AND s.available + s.committed + s.reserved + s.damaged + s.quality_control > 0) \
              ORDER BY EXISTS (SELECT 1 FROM default_bins d WHERE d.bin_id = l.id), l.path LIMIT 1",
        )
        .bind(warehouse)
        .bind(warehouse)
        .bind(warehouse)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }
}

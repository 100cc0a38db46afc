//! The location tree: warehouses, zones, shelves and bins, and the built-in virtual locations.

use std::collections::HashMap;

use app::store::{Address, LocationFields, LocationFilter, LocationRecord, LocationStore, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::location::LocationKind;
use domain::stock::{LocationId, VirtualKind};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::codec::{db, db_error, from_micros, internal, micros, parse, parse_virtual_kind};
use crate::{chunks, placeholders, push_within, SqliteStore};

const LOCATION_SELECT: &str = "SELECT id, parent_id, path, code, kind, virtual_kind, name, address, latitude, \
     longitude, pick_sequence, sellable, created_at, updated_at FROM locations";

fn location_record(row: &SqliteRow) -> StoreResult<LocationRecord> {
    let address: Option<String> = row.try_get("address").map_err(internal)?;
    let address = address
        .map(|a| serde_json::from_str::<Address>(&a))
        .transpose()
        .map_err(|e| StoreError::Internal(format!("bad address in the database: {e}")))?;
    let virtual_kind: Option<String> = row.try_get("virtual_kind").map_err(internal)?;
    Ok(LocationRecord {
        id: row.try_get("id").map_err(internal)?,
        parent_id: row.try_get("parent_id").map_err(internal)?,
        path: row.try_get("path").map_err(internal)?,
        code: row.try_get("code").map_err(internal)?,
        kind: parse("location kind", LocationKind::parse(&row.try_get::<String, _>("kind").map_err(internal)?))?,
        virtual_kind: virtual_kind.as_deref().map(parse_virtual_kind).transpose()?,
        fields: LocationFields {
            name: row.try_get("name").map_err(internal)?,
            address,
            latitude: row.try_get("latitude").map_err(internal)?,
            longitude: row.try_get("longitude").map_err(internal)?,
            pick_sequence: row.try_get("pick_sequence").map_err(internal)?,
            sellable: row.try_get("sellable").map_err(internal)?,
        },
        created_at: from_micros(row.try_get("created_at").map_err(internal)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(internal)?)?,
    })
}

async fn location_by_id(conn: &mut SqliteConnection, id: LocationId) -> StoreResult<Option<LocationRecord>> {
    let sql = format!("{LOCATION_SELECT} WHERE id = ?");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(location_record).transpose()
}

fn address_json(a: &Option<Address>) -> StoreResult<Option<String>> {
    a.as_ref().map(serde_json::to_string).transpose().map_err(internal)
}

/// Whether a query finds any row.
async fn exists(conn: &mut SqliteConnection, sql: &str, id: LocationId) -> StoreResult<bool> {
    sqlx::query_scalar::<_, bool>(sql).bind(id).fetch_one(&mut *conn).await.map_err(db)
}

#[async_trait]
impl LocationStore for SqliteStore {
    async fn create_location(
        &self,
        parent_id: Option<LocationId>,
        path: &str,
        kind: LocationKind,
        fields: &LocationFields,
        now: DateTime<Utc>,
    ) -> StoreResult<LocationRecord> {
        let code = path.rsplit('/').next().unwrap_or(path);
        let address = address_json(&fields.address)?;
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let id: LocationId = sqlx::query_scalar(
                "INSERT INTO locations (parent_id, path, code, kind, name, address, latitude, longitude, \
                 pick_sequence, sellable, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 RETURNING id",
            )
            .bind(parent_id)
            .bind(path)
            .bind(code)
            .bind(kind.as_str())
            .bind(&fields.name)
            .bind(&address)
            .bind(fields.latitude)
            .bind(fields.longitude)
            .bind(fields.pick_sequence)
            .bind(fields.sellable)
            .bind(micros(now))
            .bind(micros(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_error(e, "locations.parent_id"))?;
            location_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn update_location(
        &self,
        id: LocationId,
        fields: &LocationFields,
        now: DateTime<Utc>,
    ) -> StoreResult<LocationRecord> {
        let address = address_json(&fields.address)?;
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let done = sqlx::query(
                "UPDATE locations SET name = ?, address = ?, latitude = ?, longitude = ?, pick_sequence = ?, \
                 sellable = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&fields.name)
            .bind(&address)
            .bind(fields.latitude)
            .bind(fields.longitude)
            .bind(fields.pick_sequence)
            .bind(fields.sellable)
            .bind(micros(now))
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            location_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn delete_location(&self, id: LocationId) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            if !exists(conn, "SELECT EXISTS (SELECT 1 FROM locations WHERE id = ?)", id).await? {
                return Err(StoreError::NotFound);
            }
            if exists(conn, "SELECT EXISTS (SELECT 1 FROM locations WHERE parent_id = ?)", id).await? {
                return Err(StoreError::Conflict { constraint: "locations.parent_id".into() });
            }
            // Checked explicitly (rather than left to the foreign keys) so that the caller learns which rule
            // refused: a location that ever held stock keeps explaining the ledger.
            let history = "SELECT EXISTS (SELECT 1 FROM movements WHERE from_location_id = ?1) \
                           OR EXISTS (SELECT 1 FROM movements WHERE to_location_id = ?1) \
                           OR EXISTS (SELECT 1 FROM stock_levels WHERE location_id = ?1)";
            if exists(conn, history, id).await? {
                return Err(StoreError::Conflict { constraint: "movements.location_id".into() });
            }
            sqlx::query("DELETE FROM locations WHERE id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error(e, "movements.location_id"))?;
            Ok(())
        }
        .await;
        w.finish(result).await
    }

    async fn get_location(&self, path: &str) -> StoreResult<Option<LocationRecord>> {
        let sql = format!("{LOCATION_SELECT} WHERE path = ?");
        let row = sqlx::query(&sql).bind(path).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(location_record).transpose()
    }

    async fn list_locations(
        &self,
        filter: &LocationFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<LocationRecord>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("{LOCATION_SELECT} WHERE id > "));
        qb.push_bind(after.unwrap_or(i64::MIN));
        if let Some(kind) = filter.kind {
            qb.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(within) = &filter.within {
            qb.push(" AND ");
            push_within(&mut qb, "path", within);
        }
        if let Some(parent_id) = filter.parent_id {
            qb.push(" AND parent_id = ").push_bind(parent_id);
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(location_record).collect()
    }

    async fn resolve_paths(&self, paths: &[String]) -> StoreResult<HashMap<String, LocationRecord>> {
        let mut out = HashMap::with_capacity(paths.len());
        for chunk in chunks(paths, 1) {
            let sql = format!("{LOCATION_SELECT} WHERE path IN ({})", placeholders(chunk.len()));
            let mut q = sqlx::query(&sql);
            for path in chunk {
                q = q.bind(path);
            }
            for row in q.fetch_all(&self.pool).await.map_err(db)? {
                let rec = location_record(&row)?;
                out.insert(rec.path.clone(), rec);
            }
        }
        Ok(out)
    }

    async fn virtual_locations(&self) -> StoreResult<HashMap<VirtualKind, LocationId>> {
        let rows: Vec<(String, LocationId)> =
            sqlx::query_as("SELECT virtual_kind, id FROM locations WHERE virtual_kind IS NOT NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter().map(|(kind, id)| Ok((parse_virtual_kind(&kind)?, id))).collect()
    }
}

//! The location tree: warehouses, zones, shelves and bins, and the built-in virtual locations.

use std::collections::HashMap;

use app::store::{Address, LocationFields, LocationFilter, LocationRecord, LocationStore, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::location::LocationKind;
use domain::stock::{LocationId, VirtualKind};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::codec::{db, db_error, from_json, from_micros, get, internal, micros, parse, parse_virtual_kind, to_json};
use crate::{finish, push_within, PgStore};

const LOCATION_SELECT: &str = "SELECT id, parent_id, path, code, kind, virtual_kind, name, address::text AS address, \
     latitude, longitude, pick_sequence, sellable, created_at, updated_at FROM locations";

fn location_record(row: &PgRow) -> StoreResult<LocationRecord> {
    let address: Option<String> = get(row, "address")?;
    let virtual_kind: Option<String> = get(row, "virtual_kind")?;
    Ok(LocationRecord {
        id: get(row, "id")?,
        parent_id: get(row, "parent_id")?,
        path: get(row, "path")?,
        code: get(row, "code")?,
        kind: parse("location kind", LocationKind::parse(&get::<String>(row, "kind")?))?,
        virtual_kind: virtual_kind.as_deref().map(parse_virtual_kind).transpose()?,
        fields: LocationFields {
            name: get(row, "name")?,
            address: address.as_deref().map(|a| from_json::<Address>("address", a)).transpose()?,
            latitude: get(row, "latitude")?,
            longitude: get(row, "longitude")?,
            pick_sequence: get(row, "pick_sequence")?,
            sellable: get(row, "sellable")?,
        },
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

async fn location_by_id(conn: &mut PgConnection, id: LocationId) -> StoreResult<Option<LocationRecord>> {
    let sql = format!("{LOCATION_SELECT} WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(location_record).transpose()
}

fn address_json(a: &Option<Address>) -> StoreResult<Option<String>> {
    a.as_ref().map(|a| to_json("address", a)).transpose()
}

/// Whether a query (with the location id as `$1`) finds any row.
async fn exists(conn: &mut PgConnection, sql: &str, id: LocationId) -> StoreResult<bool> {
    sqlx::query_scalar::<_, bool>(sql).bind(id).fetch_one(&mut *conn).await.map_err(db)
}

#[async_trait]
impl LocationStore for PgStore {
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
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let id: LocationId = sqlx::query_scalar(
                "INSERT INTO locations (parent_id, path, code, kind, name, address, latitude, longitude, \
                 pick_sequence, sellable, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $11) RETURNING id",
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
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_error(e, "locations.parent_id"))?;
            location_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        finish(tx, result).await
    }

    async fn update_location(
        &self,
        id: LocationId,
        fields: &LocationFields,
        now: DateTime<Utc>,
    ) -> StoreResult<LocationRecord> {
        let address = address_json(&fields.address)?;
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let done = sqlx::query(
                "UPDATE locations SET name = $1, address = $2::jsonb, latitude = $3, longitude = $4, \
                 pick_sequence = $5, sellable = $6, updated_at = $7 WHERE id = $8",
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
        finish(tx, result).await
    }

    async fn delete_location(&self, id: LocationId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            // Locked first, so that a child created on another node meanwhile waits for this delete (and then fails
            // on its foreign key) instead of slipping in between the check and the delete.
            let found = sqlx::query_scalar::<_, i64>("SELECT id FROM locations WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            if found.is_none() {
                return Err(StoreError::NotFound);
            }
            if exists(conn, "SELECT EXISTS (SELECT 1 FROM locations WHERE parent_id = $1)", id).await? {
                return Err(StoreError::Conflict { constraint: "locations.parent_id".into() });
            }
            // Checked explicitly (rather than left to the foreign keys) so that the caller learns which rule
            // refused: a location that ever held stock keeps explaining the ledger.
            let history = "SELECT EXISTS (SELECT 1 FROM movements WHERE from_location_id = $1) \
                           OR EXISTS (SELECT 1 FROM movements WHERE to_location_id = $1) \
                           OR EXISTS (SELECT 1 FROM stock_levels WHERE location_id = $1)";
            if exists(conn, history, id).await? {
                return Err(StoreError::Conflict { constraint: "movements.location_id".into() });
            }
            sqlx::query("DELETE FROM locations WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error(e, "movements.location_id"))?;
            Ok(())
        }
        .await;
        finish(tx, result).await
    }

    async fn get_location(&self, path: &str) -> StoreResult<Option<LocationRecord>> {
        let sql = format!("{LOCATION_SELECT} WHERE path = $1");
        let row = sqlx::query(&sql).bind(path).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(location_record).transpose()
    }

    async fn list_locations(
        &self,
        filter: &LocationFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<LocationRecord>> {
        let mut qb = QueryBuilder::<Postgres>::new(format!("{LOCATION_SELECT} WHERE id > "));
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
        if paths.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!("{LOCATION_SELECT} WHERE path = ANY($1)");
        let rows = sqlx::query(&sql).bind(paths).fetch_all(&self.pool).await.map_err(db)?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            let rec = location_record(row)?;
            out.insert(rec.path.clone(), rec);
        }
        Ok(out)
    }

    async fn virtual_locations(&self) -> StoreResult<HashMap<VirtualKind, LocationId>> {
        let rows: Vec<(String, LocationId)> =
            sqlx::query_as("SELECT virtual_kind, id FROM locations WHERE virtual_kind IS NOT NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
        rows.into_iter().map(|(kind, id)| Ok((parse_virtual_kind(&kind)?, id))).collect()
    }
}

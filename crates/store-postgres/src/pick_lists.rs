//! Pick lists: the pick-list methods of [`app::store::OrderStore`] (the trait impl in [`crate::orders`] calls these).
//!
//! A pick list is stored as its lines (a JSONB document) with its warehouse and status in columns, and the
//! distinct orders of its lines in `pick_list_orders`, which every write rewrites from the lines in the same
//! transaction. The warehouse's path is never stored here: readers join `locations` for it.

use std::collections::BTreeSet;

use app::store::{OrderId, PickListLine, PickListRecord, PickListStatus, StoreResult};
use app::StoreError;
use domain::stock::LocationId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::codec::{db, db_error, from_json, from_micros, get, internal, micros, parse_enum, to_json};
use crate::{finish, PgStore};

const PICK_LIST_SELECT: &str = "SELECT p.id, p.warehouse_id, w.path AS warehouse, p.status, p.lines::text AS lines, \
     p.created_at, p.updated_at FROM pick_lists p JOIN locations w ON w.id = p.warehouse_id";

fn pick_list_record(row: &PgRow) -> StoreResult<PickListRecord> {
    Ok(PickListRecord {
        id: get(row, "id")?,
        warehouse_id: get(row, "warehouse_id")?,
        warehouse: get(row, "warehouse")?,
        status: parse_enum("pick list status", get(row, "status")?)?,
        lines: from_json::<Vec<PickListLine>>("pick list lines", &get::<String>(row, "lines")?)?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

async fn pick_list_by_id(conn: &mut PgConnection, id: i64) -> StoreResult<Option<PickListRecord>> {
    let sql = format!("{PICK_LIST_SELECT} WHERE p.id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(pick_list_record).transpose()
}

/// Rewrites the order rows of one pick list from its lines: delete, then insert each distinct order once.
async fn write_orders(conn: &mut PgConnection, id: i64, lines: &[PickListLine]) -> StoreResult<()> {
    sqlx::query("DELETE FROM pick_list_orders WHERE pick_list_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let orders: Vec<OrderId> = lines.iter().map(|l| l.order_id).collect::<BTreeSet<_>>().into_iter().collect();
    if orders.is_empty() {
        return Ok(());
    }
    sqlx::query("INSERT INTO pick_list_orders (pick_list_id, order_id) SELECT $1, o FROM UNNEST($2::int8[]) AS u (o)")
        .bind(id)
        .bind(&orders)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error(e, "pick_list_orders.order_id"))?;
    Ok(())
}

/// Inserts a pick list (its id and warehouse path are ignored) with its order rows; returns it as stored.
pub(crate) async fn create(store: &PgStore, list: &PickListRecord) -> StoreResult<PickListRecord> {
    let lines = to_json("pick list lines", &list.lines)?;
    let mut tx = store.begin().await?;
    let result = async {
        let conn = &mut *tx;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pick_lists (warehouse_id, status, lines, created_at, updated_at) \
             VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id",
        )
        .bind(list.warehouse_id)
        .bind(list.status.as_str())
        .bind(&lines)
        .bind(micros(list.created_at))
        .bind(micros(list.updated_at))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error(e, "pick_lists.warehouse_id"))?;
        write_orders(conn, id, &list.lines).await?;
        // Read back rather than echo the input: the warehouse path comes from locations, times at stored precision.
        pick_list_by_id(conn, id).await?.ok_or(StoreError::NotFound)
    }
    .await;
    finish(tx, result).await
}

/// Writes a pick list's status, lines and update time, and rewrites its order rows; `NotFound` for an unknown id.
/// Its warehouse and creation time stay as created.
pub(crate) async fn update(store: &PgStore, list: &PickListRecord) -> StoreResult<PickListRecord> {
    let lines = to_json("pick list lines", &list.lines)?;
    let mut tx = store.begin().await?;
    let result = async {
        let conn = &mut *tx;
        // The UPDATE locks the row, so two nodes rewriting one pick list take turns, each with its order rows.
        let done = sqlx::query("UPDATE pick_lists SET status = $1, lines = $2::jsonb, updated_at = $3 WHERE id = $4")
            .bind(list.status.as_str())
            .bind(&lines)
            .bind(micros(list.updated_at))
            .bind(list.id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        write_orders(conn, list.id, &list.lines).await?;
        pick_list_by_id(conn, list.id).await?.ok_or(StoreError::NotFound)
    }
    .await;
    finish(tx, result).await
}

pub(crate) async fn by_id(store: &PgStore, id: i64) -> StoreResult<Option<PickListRecord>> {
    let mut conn = store.pool.acquire().await.map_err(internal)?;
    pick_list_by_id(&mut conn, id).await
}

pub(crate) async fn list(
    store: &PgStore,
    warehouse_id: Option<LocationId>,
    status: Option<PickListStatus>,
    after: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<PickListRecord>> {
    let mut qb = QueryBuilder::<Postgres>::new(format!("{PICK_LIST_SELECT} WHERE p.id > "));
    qb.push_bind(after.unwrap_or(i64::MIN));
    if let Some(warehouse) = warehouse_id {
        qb.push(" AND p.warehouse_id = ").push_bind(warehouse);
    }
    if let Some(status) = status {
        qb.push(" AND p.status = ").push_bind(status.as_str());
    }
    qb.push(" ORDER BY p.id LIMIT ").push_bind(i64::from(limit));
    let rows = qb.build().fetch_all(&store.pool).await.map_err(db)?;
    rows.iter().map(pick_list_record).collect()
}

/// The distinct orders on the open pick lists of a warehouse, in id order: the (warehouse, status) index finds the
/// lists, the primary key of `pick_list_orders` their orders.
pub(crate) async fn orders_being_picked(store: &PgStore, warehouse_id: LocationId) -> StoreResult<Vec<OrderId>> {
    sqlx::query_scalar(
        "SELECT DISTINCT o.order_id FROM pick_lists p JOIN pick_list_orders o ON o.pick_list_id = p.id \
          WHERE p.warehouse_id = $1 AND p.status = $2 ORDER BY o.order_id",
    )
    .bind(warehouse_id)
    .bind(PickListStatus::Open.as_str())
    .fetch_all(&store.pool)
    .await
    .map_err(db)
}

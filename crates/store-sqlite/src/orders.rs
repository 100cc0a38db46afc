//! Customers, orders and holds: the reads of [`OrderStore`], and the loads and writes of orders and holds that the
//! ledger's one write path ([`crate::ledger`]) does inside its transaction. The trait's pick-list methods are
//! implemented in [`crate::pick_lists`].
//!
//! An order and a hold are stored as JSON documents (their domain aggregates) with a few columns copied out of them
//! for lookups. The document is the truth: every write copies the columns again from it, and the backorder queue
//! (`order_backorders`) is rewritten from [`Order::open_demand_items`] whenever an order is written.

use std::collections::BTreeMap;

use app::store::{
    Address, CustomerFields, CustomerId, CustomerRecord, HoldId, HoldRecord, OrderFilter, OrderId, OrderRecord,
    OrderStore, PickListRecord, PickListStatus, SellableBin, StoreResult,
};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::order::Order;
use domain::orders::{Hold, HoldStatus};
use domain::stock::{ItemId, LocationId};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::codec::{db, db_error, enum_name, from_json, from_micros, internal, micros, parse_enum, to_json, Cols};
use crate::{chunks, pick_lists, placeholders, SqliteStore};

const CUSTOMER_SELECT: &str = "SELECT id, name, email, phone, addresses, created_at, updated_at FROM customers";

const ORDER_SELECT: &str = "SELECT o.id, o.source, o.external_number, o.request_hash, o.customer_id, o.currency, \
     o.payment_terms, o.notes, o.doc, o.placed_at, o.updated_at FROM orders o";

/// The hold columns [`hold_record`] reads, as a literal so that statements can be built from it at compile time.
macro_rules! hold_select {
    () => {
        "SELECT id, doc, skus, quantities, reference, order_id, created_at, updated_at FROM holds"
    };
}

const HOLD_SELECT: &str = hold_select!();

/// The active holds due by the second parameter, soonest first.
const DUE_SELECT: &str = concat!(hold_select!(), " WHERE status = ? AND expires_at <= ? ORDER BY expires_at, id");

/// The name callers match on for a clash of (source, external number). SQLite names both columns of the UNIQUE
/// (`orders.source, orders.external_number`); the number is the part that clashed in any useful sense.
const EXTERNAL_NUMBER: &str = "orders.external_number";

// ---------------------------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------------------------

fn customer_record(row: &SqliteRow) -> StoreResult<CustomerRecord> {
    let addresses: String = row.try_get("addresses").map_err(internal)?;
    Ok(CustomerRecord {
        id: row.try_get("id").map_err(internal)?,
        fields: CustomerFields {
            name: row.try_get("name").map_err(internal)?,
            email: row.try_get("email").map_err(internal)?,
            phone: row.try_get("phone").map_err(internal)?,
            addresses: from_json::<Vec<Address>>("addresses", &addresses)?,
        },
        created_at: from_micros(row.try_get("created_at").map_err(internal)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(internal)?)?,
    })
}

fn order_record(row: &SqliteRow) -> StoreResult<OrderRecord> {
    let doc: String = row.try_get("doc").map_err(internal)?;
    Ok(OrderRecord {
        id: row.try_get("id").map_err(internal)?,
        source: row.try_get("source").map_err(internal)?,
        external_number: row.try_get("external_number").map_err(internal)?,
        request_hash: row.try_get("request_hash").map_err(internal)?,
        customer_id: row.try_get("customer_id").map_err(internal)?,
        currency: row.try_get("currency").map_err(internal)?,
        payment_terms: parse_enum("payment terms", row.try_get("payment_terms").map_err(internal)?)?,
        notes: row.try_get("notes").map_err(internal)?,
        order: from_json::<Order>("order", &doc)?,
        placed_at: from_micros(row.try_get("placed_at").map_err(internal)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(internal)?)?,
    })
}

fn hold_record(row: &impl Cols) -> StoreResult<HoldRecord> {
    Ok(HoldRecord {
        id: row.col("id")?,
        hold: from_json::<Hold>("hold", &row.col::<String>("doc")?)?,
        skus: from_json("hold SKUs", &row.col::<String>("skus")?)?,
        quantities: from_json("hold quantities", &row.col::<String>("quantities")?)?,
        reference: row.col("reference")?,
        order_id: row.col("order_id")?,
        created_at: from_micros(row.col("created_at")?)?,
        updated_at: from_micros(row.col("updated_at")?)?,
    })
}

/// Maps an error of a statement that writes an order. The foreign key an order can miss is its customer's.
fn order_error(e: sqlx::Error) -> StoreError {
    external_number_conflict(db_error(e, "orders.customer_id"))
}

/// Names a clash of (source, external number) as callers match on it.
pub(crate) fn external_number_conflict(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict { constraint } if constraint.contains(EXTERNAL_NUMBER) => {
            StoreError::Conflict { constraint: EXTERNAL_NUMBER.into() }
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Loads inside a batch
// ---------------------------------------------------------------------------------------------------------------

/// The orders with the given ids; unknown ids are simply absent.
pub(crate) async fn load_orders(
    conn: &mut SqliteConnection,
    ids: &[OrderId],
) -> StoreResult<BTreeMap<OrderId, OrderRecord>> {
    let mut out = BTreeMap::new();
    for chunk in chunks(ids, 1) {
        let sql = format!("{ORDER_SELECT} WHERE o.id IN ({})", placeholders(chunk.len()));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await.map_err(db)? {
            let rec = order_record(&row)?;
            out.insert(rec.id, rec);
        }
    }
    Ok(out)
}

/// The holds with the given ids; unknown ids are simply absent. (A batch finds the due ones by
/// [`crate::direct::due_hold_ids`].)
pub(crate) async fn load_holds(
    conn: &mut SqliteConnection,
    ids: &[HoldId],
) -> StoreResult<BTreeMap<HoldId, HoldRecord>> {
    let mut out = BTreeMap::new();
    for chunk in chunks(ids, 1) {
        let sql = format!("{HOLD_SELECT} WHERE id IN ({})", placeholders(chunk.len()));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await.map_err(db)? {
            let rec = hold_record(&row)?;
            out.insert(rec.id, rec);
        }
    }
    Ok(out)
}

/// Rewrites the backorder queue rows of one order from its document: delete, then insert what it owes now.
async fn write_backorders(conn: &mut SqliteConnection, id: OrderId, rec: &OrderRecord) -> StoreResult<()> {
    sqlx::query("DELETE FROM order_backorders WHERE order_id = ?").bind(id).execute(&mut *conn).await.map_err(db)?;
    let rows: Vec<(OrderId, ItemId, i64)> =
        rec.order.open_demand_items().into_iter().map(|item| (id, item, micros(rec.placed_at))).collect();
    insert_backorder_rows(conn, &rows).await
}

/// Inserts (order, item, placed_at) rows of the backorder queue.
async fn insert_backorder_rows(conn: &mut SqliteConnection, rows: &[(OrderId, ItemId, i64)]) -> StoreResult<()> {
    for chunk in chunks(rows, 3) {
        let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO order_backorders (order_id, item_id, placed_at) ");
        qb.push_values(chunk, |mut b, (order, item, placed_at)| {
            b.push_bind(*order).push_bind(*item).push_bind(*placed_at);
        });
        qb.build().execute(&mut *conn).await.map_err(|e| db_error(e, "order_backorders.item_id"))?;
    }
    Ok(())
}

/// The columns copied out of an order's document, in the order of the INSERT and UPDATE below.
struct OrderColumns {
    payment_terms: String,
    status: String,
    doc: String,
}

fn order_columns(rec: &OrderRecord) -> StoreResult<OrderColumns> {
    Ok(OrderColumns {
        payment_terms: enum_name(&rec.payment_terms)?,
        status: enum_name(&rec.order.status)?,
        doc: to_json("order", &rec.order)?,
    })
}

/// Writes the given orders back from the batch's state, every column from the record, and rewrites their
/// backorder rows. An id that is not in the state, or not in the database, is a bug of the caller.
pub(crate) async fn update_orders(
    conn: &mut SqliteConnection,
    orders: &BTreeMap<OrderId, OrderRecord>,
    ids: &[OrderId],
) -> StoreResult<()> {
    for &id in ids {
        let rec = orders.get(&id).ok_or_else(|| {
            StoreError::Internal(format!("order {id} was named as changed but is not in the batch's state"))
        })?;
        let c = order_columns(rec)?;
        let done = sqlx::query(
            "UPDATE orders SET source = ?, external_number = ?, request_hash = ?, customer_id = ?, currency = ?, \
             payment_terms = ?, status = ?, notes = ?, doc = ?, placed_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&rec.source)
        .bind(&rec.external_number)
        .bind(&rec.request_hash)
        .bind(rec.customer_id)
        .bind(&rec.currency)
        .bind(&c.payment_terms)
        .bind(&c.status)
        .bind(&rec.notes)
        .bind(&c.doc)
        .bind(micros(rec.placed_at))
        .bind(micros(rec.updated_at))
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(order_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Internal(format!("changed order {id} does not exist")));
        }
        write_backorders(conn, id, rec).await?;
    }
    Ok(())
}

/// The columns of a hold row besides its id, serialized.
struct HoldColumns {
    status: &'static str,
    doc: String,
    skus: String,
    quantities: String,
}

fn hold_columns(rec: &HoldRecord) -> StoreResult<HoldColumns> {
    Ok(HoldColumns {
        status: rec.hold.status.as_str(),
        doc: to_json("hold", &rec.hold)?,
        skus: to_json("hold SKUs", &rec.skus)?,
        quantities: to_json("hold quantities", &rec.quantities)?,
    })
}

/// Writes the given holds back from the batch's state, every column from the record.
pub(crate) async fn update_holds(
    conn: &mut SqliteConnection,
    holds: &BTreeMap<HoldId, HoldRecord>,
    ids: &[HoldId],
) -> StoreResult<()> {
    for &id in ids {
        let rec = holds.get(&id).ok_or_else(|| {
            StoreError::Internal(format!("hold {id} was named as changed but is not in the batch's state"))
        })?;
        let c = hold_columns(rec)?;
        let done = sqlx::query(
            "UPDATE holds SET status = ?, expires_at = ?, doc = ?, skus = ?, quantities = ?, reference = ?, \
             order_id = ?, created_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(c.status)
        .bind(micros(rec.hold.expires_at))
        .bind(&c.doc)
        .bind(&c.skus)
        .bind(&c.quantities)
        .bind(&rec.reference)
        .bind(rec.order_id)
        .bind(micros(rec.created_at))
        .bind(micros(rec.updated_at))
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error(e, "holds.order_id"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Internal(format!("changed hold {id} does not exist")));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------------------------

async fn customer_by_id(conn: &mut SqliteConnection, id: CustomerId) -> StoreResult<Option<CustomerRecord>> {
    let sql = format!("{CUSTOMER_SELECT} WHERE id = ?");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(customer_record).transpose()
}

#[async_trait]
impl OrderStore for SqliteStore {
    async fn create_customer(&self, fields: &CustomerFields, now: DateTime<Utc>) -> StoreResult<CustomerRecord> {
        let addresses = to_json("addresses", &fields.addresses)?;
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let id: CustomerId = sqlx::query_scalar(
                "INSERT INTO customers (name, email, phone, addresses, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(&fields.name)
            .bind(&fields.email)
            .bind(&fields.phone)
            .bind(&addresses)
            .bind(micros(now))
            .bind(micros(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            // Read back rather than echo the input, so that the record is exactly what a later get returns
            // (times at the stored precision).
            customer_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn update_customer(
        &self,
        id: CustomerId,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> StoreResult<CustomerRecord> {
        let addresses = to_json("addresses", &fields.addresses)?;
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let done = sqlx::query(
                "UPDATE customers SET name = ?, email = ?, phone = ?, addresses = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&fields.name)
            .bind(&fields.email)
            .bind(&fields.phone)
            .bind(&addresses)
            .bind(micros(now))
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            customer_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        w.finish(result).await
    }

    async fn get_customer(&self, id: CustomerId) -> StoreResult<Option<CustomerRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        customer_by_id(&mut conn, id).await
    }

    async fn find_customer(&self, email: Option<&str>, phone: Option<&str>) -> StoreResult<Option<CustomerRecord>> {
        // Email first: it names a person more reliably than a phone number, which households and offices share.
        for (column, value) in [("email", email), ("phone", phone)] {
            let Some(value) = value else { continue };
            let sql = format!("{CUSTOMER_SELECT} WHERE {column} = ?");
            if let Some(row) = sqlx::query(&sql).bind(value).fetch_optional(&self.pool).await.map_err(db)? {
                return customer_record(&row).map(Some);
            }
        }
        Ok(None)
    }

    async fn list_customers(
        &self,
        q: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerRecord>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("{CUSTOMER_SELECT} WHERE id > "));
        qb.push_bind(after.unwrap_or(i64::MIN));
        if let Some(q) = q {
            // instr, not LIKE: `%` and `_` in a search are meant literally. lower() folds ASCII only, but it folds
            // both sides alike, so a search typed in the stored case always matches.
            qb.push(" AND (instr(lower(name), lower(")
                .push_bind(q)
                .push(")) > 0 OR instr(lower(email), lower(")
                .push_bind(q)
                .push(")) > 0 OR substr(phone, 1, length(")
                .push_bind(q)
                .push(")) = ")
                .push_bind(q)
                .push(")");
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(customer_record).collect()
    }

    async fn get_order(&self, id: OrderId) -> StoreResult<Option<OrderRecord>> {
        let sql = format!("{ORDER_SELECT} WHERE o.id = ?");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(order_record).transpose()
    }

    async fn find_order(&self, source: &str, external_number: &str) -> StoreResult<Option<OrderRecord>> {
        let sql = format!("{ORDER_SELECT} WHERE o.source = ? AND o.external_number = ?");
        let row = sqlx::query(&sql).bind(source).bind(external_number).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(order_record).transpose()
    }

    async fn list_orders(&self, filter: &OrderFilter, after: Option<i64>, limit: u32) -> StoreResult<Vec<OrderRecord>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("{ORDER_SELECT} WHERE o.id "));
        if filter.newest_first {
            qb.push("< ").push_bind(after.unwrap_or(i64::MAX));
        } else {
            qb.push("> ").push_bind(after.unwrap_or(i64::MIN));
        }
        if let Some(source) = &filter.source {
            qb.push(" AND o.source = ").push_bind(source);
        }
        if let Some(customer) = filter.customer_id {
            qb.push(" AND o.customer_id = ").push_bind(customer);
        }
        if let Some(status) = filter.status {
            qb.push(" AND o.status = ").push_bind(enum_name(&status)?);
        }
        if filter.backordered {
            // The queue rows exist exactly while the order owes units; no need to open any document.
            qb.push(" AND EXISTS (SELECT 1 FROM order_backorders b WHERE b.order_id = o.id)");
        }
        qb.push(if filter.newest_first { " ORDER BY o.id DESC LIMIT " } else { " ORDER BY o.id LIMIT " });
        qb.push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(order_record).collect()
    }

    async fn get_hold(&self, id: HoldId) -> StoreResult<Option<HoldRecord>> {
        let sql = format!("{HOLD_SELECT} WHERE id = ?");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(hold_record).transpose()
    }

    async fn due_holds(&self, now: DateTime<Utc>) -> StoreResult<Vec<HoldRecord>> {
        // Asked by every level lookup; the index on (status, expires_at) keeps it short.
        let (status, at) = (HoldStatus::Active.as_str(), micros(now));
        self.read(|c| crate::readers::all(c, DUE_SELECT, rusqlite::params![status, at], |r| hold_record(r))).await
    }

    async fn sellable_bins(&self) -> StoreResult<Vec<SellableBin>> {
        // A bin's ancestors are the locations whose path is a proper prefix of its own (up to a `/`); its warehouse
        // is the root of its path. Only unsellable ancestors matter, and the partial index on unsellable paths makes
        // that check read only those few.
        let rows: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT b.id, w.id, b.pick_sequence FROM locations b \
               JOIN locations w ON w.path = substr(b.path, 1, instr(b.path || '/', '/') - 1) \
              WHERE b.kind = 'bin' AND b.sellable = 1 \
                AND NOT EXISTS (SELECT 1 FROM locations a WHERE a.sellable = 0 \
                                   AND substr(b.path, 1, length(a.path) + 1) = a.path || '/') \
              ORDER BY b.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(bin, warehouse, pick_sequence)| SellableBin { bin, warehouse, pick_sequence })
            .collect())
    }

    async fn create_pick_list(&self, list: &PickListRecord) -> StoreResult<PickListRecord> {
        pick_lists::create(self, list).await
    }

    async fn update_pick_list(&self, list: &PickListRecord) -> StoreResult<PickListRecord> {
        pick_lists::update(self, list).await
    }

    async fn get_pick_list(&self, id: i64) -> StoreResult<Option<PickListRecord>> {
        pick_lists::get(self, id).await
    }

    async fn list_pick_lists(
        &self,
        warehouse_id: Option<LocationId>,
        status: Option<PickListStatus>,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<PickListRecord>> {
        pick_lists::list(self, warehouse_id, status, after, limit).await
    }

    async fn orders_being_picked(&self, warehouse_id: LocationId) -> StoreResult<Vec<OrderId>> {
        pick_lists::orders_being_picked(self, warehouse_id).await
    }
}

//! Customers, orders and holds: the reads of [`OrderStore`], and the loads and writes of orders and holds that the
//! ledger's one write path ([`crate::ledger`]) does inside its transaction. The trait's pick-list methods are
//! implemented in [`crate::pick_lists`].
//!
//! An order and a hold are stored as JSONB documents (their domain aggregates) with a few columns copied out of
//! them for lookups. The document is the truth: every write copies the columns again from it, and the backorder
//! queue (`order_backorders`) is rewritten from [`Order::open_demand_items`] whenever an order is written.
//!
//! Inside a batch, orders and holds are read with `FOR NO KEY UPDATE`: the batch will rewrite them whole from what
//! it read, so nobody else may rewrite them until it commits. NO KEY (rather than plain `FOR UPDATE`) because it
//! still lets other transactions take the weak lock that a foreign key check takes, such as a pick list naming the
//! order, which changes nothing the batch reads.

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
use domain::stock::LocationId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::codec::{db, enum_name, from_json, from_micros, get, internal, micros, parse_enum, to_json};
use crate::ledger::BatchError;
use crate::{finish, pick_lists, PgStore};

const CUSTOMER_SELECT: &str =
    "SELECT id, name, email, phone, addresses::text AS addresses, created_at, updated_at FROM customers";

const ORDER_SELECT: &str = "SELECT o.id, o.source, o.external_number, o.request_hash, o.customer_id, o.currency, \
     o.payment_terms, o.notes, o.doc::text AS doc, o.placed_at, o.updated_at FROM orders o";

const HOLD_SELECT: &str = "SELECT id, doc::text AS doc, skus::text AS skus, quantities::text AS quantities, \
     reference, order_id, created_at, updated_at FROM holds";

// ---------------------------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------------------------

fn customer_record(row: &PgRow) -> StoreResult<CustomerRecord> {
    Ok(CustomerRecord {
        id: get(row, "id")?,
        fields: CustomerFields {
            name: get(row, "name")?,
            email: get(row, "email")?,
            phone: get(row, "phone")?,
            addresses: from_json::<Vec<Address>>("addresses", &get::<String>(row, "addresses")?)?,
        },
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

fn order_record(row: &PgRow) -> StoreResult<OrderRecord> {
    Ok(OrderRecord {
        id: get(row, "id")?,
        source: get(row, "source")?,
        external_number: get(row, "external_number")?,
        request_hash: get(row, "request_hash")?,
        customer_id: get(row, "customer_id")?,
        currency: get(row, "currency")?,
        payment_terms: parse_enum("payment terms", get(row, "payment_terms")?)?,
        notes: get(row, "notes")?,
        order: from_json::<Order>("order", &get::<String>(row, "doc")?)?,
        placed_at: from_micros(get(row, "placed_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

fn hold_record(row: &PgRow) -> StoreResult<HoldRecord> {
    Ok(HoldRecord {
        id: get(row, "id")?,
        hold: from_json::<Hold>("hold", &get::<String>(row, "doc")?)?,
        skus: from_json("hold SKUs", &get::<String>(row, "skus")?)?,
        quantities: from_json("hold quantities", &get::<String>(row, "quantities")?)?,
        reference: get(row, "reference")?,
        order_id: get(row, "order_id")?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Loads inside a batch
// ---------------------------------------------------------------------------------------------------------------

/// Locks and reads the orders with the given ids, in id order (the order every batch locks in, so that two batches
/// never wait on each other in a circle); unknown ids are simply absent.
pub(crate) async fn lock_orders(
    conn: &mut PgConnection,
    ids: &[OrderId],
) -> Result<BTreeMap<OrderId, OrderRecord>, BatchError> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!("{ORDER_SELECT} WHERE o.id = ANY($1) ORDER BY o.id FOR NO KEY UPDATE");
    for row in sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await.map_err(BatchError::db)? {
        let rec = order_record(&row)?;
        out.insert(rec.id, rec);
    }
    Ok(out)
}

/// Locks and reads the holds with the given ids, in id order.
pub(crate) async fn lock_holds(
    conn: &mut PgConnection,
    ids: &[HoldId],
) -> Result<BTreeMap<HoldId, HoldRecord>, BatchError> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!("{HOLD_SELECT} WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE");
    for row in sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await.map_err(BatchError::db)? {
        let rec = hold_record(&row)?;
        out.insert(rec.id, rec);
    }
    Ok(out)
}

/// Locks and reads the active holds whose expiry is at or before `at`. `SKIP LOCKED`: a due hold that another
/// batch has locked is being ended or changed by it, and this batch must neither wait for it nor end it a second
/// time; it is left for whichever batch comes next.
pub(crate) async fn lock_due_holds(
    conn: &mut PgConnection,
    at: DateTime<Utc>,
) -> Result<BTreeMap<HoldId, HoldRecord>, BatchError> {
    let sql = format!("{HOLD_SELECT} WHERE status = $1 AND expires_at <= $2 ORDER BY id FOR NO KEY UPDATE SKIP LOCKED");
    let rows = sqlx::query(&sql)
        .bind(HoldStatus::Active.as_str())
        .bind(micros(at))
        .fetch_all(&mut *conn)
        .await
        .map_err(BatchError::db)?;
    let mut out = BTreeMap::new();
    for row in &rows {
        let rec = hold_record(row)?;
        out.insert(rec.id, rec);
    }
    Ok(out)
}

/// Active holds whose expiry is at or before `at`, soonest expiry first.
async fn due(conn: &mut PgConnection, at: DateTime<Utc>) -> StoreResult<Vec<HoldRecord>> {
    let sql = format!("{HOLD_SELECT} WHERE status = $1 AND expires_at <= $2 ORDER BY expires_at, id");
    let rows =
        sqlx::query(&sql).bind(HoldStatus::Active.as_str()).bind(micros(at)).fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(hold_record).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Writes inside a batch
// ---------------------------------------------------------------------------------------------------------------

/// The columns of an order row, serialized, one vector per column, for binding as arrays.
#[derive(Default)]
struct OrderColumns<'a> {
    ids: Vec<OrderId>,
    sources: Vec<&'a str>,
    external_numbers: Vec<Option<&'a str>>,
    request_hashes: Vec<&'a str>,
    customer_ids: Vec<Option<CustomerId>>,
    currencies: Vec<&'a str>,
    payment_terms: Vec<String>,
    statuses: Vec<String>,
    notes: Vec<Option<&'a str>>,
    docs: Vec<String>,
    placed_at: Vec<i64>,
    updated_at: Vec<i64>,
}

/// A query over the columns' arrays.
type ArrayQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

impl<'a> OrderColumns<'a> {
    /// Binds the columns as `$1…$12`, in the order the insert and the update both name them.
    fn bind<'q>(&'q self, q: ArrayQuery<'q>) -> ArrayQuery<'q> {
        q.bind(&self.ids)
            .bind(&self.sources)
            .bind(&self.external_numbers)
            .bind(&self.request_hashes)
            .bind(&self.customer_ids)
            .bind(&self.currencies)
            .bind(&self.payment_terms)
            .bind(&self.statuses)
            .bind(&self.notes)
            .bind(&self.docs)
            .bind(&self.placed_at)
            .bind(&self.updated_at)
    }

    fn push(&mut self, id: OrderId, rec: &'a OrderRecord) -> StoreResult<()> {
        self.ids.push(id);
        self.sources.push(&rec.source);
        self.external_numbers.push(rec.external_number.as_deref());
        self.request_hashes.push(&rec.request_hash);
        self.customer_ids.push(rec.customer_id);
        self.currencies.push(&rec.currency);
        self.payment_terms.push(enum_name(&rec.payment_terms)?);
        self.statuses.push(enum_name(&rec.order.status)?);
        self.notes.push(rec.notes.as_deref());
        self.docs.push(to_json("order", &rec.order)?);
        self.placed_at.push(micros(rec.placed_at));
        self.updated_at.push(micros(rec.updated_at));
        Ok(())
    }
}

/// The rows the orders (with their ids) owe: `(order, item, placed_at)`.
fn backorder_rows<'a>(orders: impl IntoIterator<Item = (OrderId, &'a OrderRecord)>) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let mut rows = (Vec::new(), Vec::new(), Vec::new());
    for (id, rec) in orders {
        for item in rec.order.open_demand_items() {
            rows.0.push(id);
            rows.1.push(item);
            rows.2.push(micros(rec.placed_at));
        }
    }
    rows
}

/// Rewrites the backorder queue rows of the given orders from their documents: delete, then insert what each owes
/// now. `fresh` says the orders were inserted in this transaction and have no rows yet.
async fn write_backorders(
    conn: &mut PgConnection,
    orders: &[(OrderId, &OrderRecord)],
    fresh: bool,
) -> Result<(), BatchError> {
    if orders.is_empty() {
        return Ok(());
    }
    if !fresh {
        let ids: Vec<OrderId> = orders.iter().map(|(id, _)| *id).collect();
        sqlx::query("DELETE FROM order_backorders WHERE order_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *conn)
            .await
            .map_err(BatchError::db)?;
    }
    let (order_ids, item_ids, placed_at) = backorder_rows(orders.iter().copied());
    if order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO order_backorders (order_id, item_id, placed_at) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[])",
    )
    .bind(&order_ids)
    .bind(&item_ids)
    .bind(&placed_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| BatchError::db_fk(e, "order_backorders.item_id"))?;
    Ok(())
}

/// The error of a statement that writes orders. The only foreign key an order can miss is its customer's.
fn order_error(e: sqlx::Error) -> BatchError {
    BatchError::db_fk(e, "orders.customer_id")
}

/// Inserts new orders under the ids drawn for them (their own ids are ignored), with their backorder rows.
///
/// The rows go in ordered by (source, external number), not in the batch's order: two nodes inserting the same
/// numbers then meet on the first shared one instead of each holding one the other waits for. Ids were drawn in
/// the batch's order beforehand, so the order of insertion changes no id.
pub(crate) async fn insert_orders(
    conn: &mut PgConnection,
    ids: &[OrderId],
    orders: &[OrderRecord],
) -> Result<(), BatchError> {
    if orders.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<(OrderId, &OrderRecord)> = ids.iter().copied().zip(orders).collect();
    rows.sort_by(|a, b| (&a.1.source, &a.1.external_number, a.0).cmp(&(&b.1.source, &b.1.external_number, b.0)));
    let mut c = OrderColumns::default();
    for (id, rec) in &rows {
        c.push(*id, rec)?;
    }
    c.bind(sqlx::query(
        "INSERT INTO orders (id, source, external_number, request_hash, customer_id, currency, payment_terms, \
         status, notes, doc, placed_at, updated_at) \
         SELECT u.id, u.source, u.external_number, u.request_hash, u.customer_id, u.currency, u.payment_terms, \
                u.status, u.notes, u.doc::jsonb, u.placed_at, u.updated_at \
           FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], \
                       $8::text[], $9::text[], $10::text[], $11::int8[], $12::int8[]) \
                AS u (id, source, external_number, request_hash, customer_id, currency, payment_terms, status, \
                      notes, doc, placed_at, updated_at)",
    ))
    .execute(&mut *conn)
    .await
    .map_err(order_error)?;
    write_backorders(conn, &rows, true).await
}

/// Writes the given orders back from the batch's state, every column from the record, and rewrites their
/// backorder rows. An id that is not in the state, or not in the database, is a bug of the caller.
pub(crate) async fn update_orders(
    conn: &mut PgConnection,
    orders: &BTreeMap<OrderId, OrderRecord>,
    ids: &[OrderId],
) -> Result<(), BatchError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(ids.len());
    let mut c = OrderColumns::default();
    for &id in ids {
        let rec = orders.get(&id).ok_or_else(|| {
            StoreError::Internal(format!("order {id} was named as changed but is not in the batch's state"))
        })?;
        c.push(id, rec)?;
        rows.push((id, rec));
    }
    let done = c.bind(sqlx::query(
        "UPDATE orders o SET source = u.source, external_number = u.external_number, request_hash = u.request_hash, \
                customer_id = u.customer_id, currency = u.currency, payment_terms = u.payment_terms, \
                status = u.status, notes = u.notes, doc = u.doc::jsonb, placed_at = u.placed_at, \
                updated_at = u.updated_at \
           FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], \
                       $8::text[], $9::text[], $10::text[], $11::int8[], $12::int8[]) \
                AS u (id, source, external_number, request_hash, customer_id, currency, payment_terms, status, \
                      notes, doc, placed_at, updated_at) \
          WHERE o.id = u.id",
    ))
    .execute(&mut *conn)
    .await
    .map_err(order_error)?;
    if done.rows_affected() != ids.len() as u64 {
        return Err(StoreError::Internal(format!("some of the changed orders {ids:?} do not exist")).into());
    }
    write_backorders(conn, &rows, false).await
}

/// The columns of a hold row, serialized, one vector per column.
#[derive(Default)]
struct HoldColumns<'a> {
    ids: Vec<HoldId>,
    statuses: Vec<&'static str>,
    expires_at: Vec<i64>,
    docs: Vec<String>,
    skus: Vec<String>,
    quantities: Vec<String>,
    references: Vec<Option<&'a str>>,
    order_ids: Vec<Option<OrderId>>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
}

impl<'a> HoldColumns<'a> {
    /// Binds the columns as `$1…$10`, in the order the insert and the update both name them.
    fn bind<'q>(&'q self, q: ArrayQuery<'q>) -> ArrayQuery<'q> {
        q.bind(&self.ids)
            .bind(&self.statuses)
            .bind(&self.expires_at)
            .bind(&self.docs)
            .bind(&self.skus)
            .bind(&self.quantities)
            .bind(&self.references)
            .bind(&self.order_ids)
            .bind(&self.created_at)
            .bind(&self.updated_at)
    }

    fn push(&mut self, id: HoldId, rec: &'a HoldRecord) -> StoreResult<()> {
        self.ids.push(id);
        self.statuses.push(rec.hold.status.as_str());
        self.expires_at.push(micros(rec.hold.expires_at));
        self.docs.push(to_json("hold", &rec.hold)?);
        self.skus.push(to_json("hold SKUs", &rec.skus)?);
        self.quantities.push(to_json("hold quantities", &rec.quantities)?);
        self.references.push(rec.reference.as_deref());
        self.order_ids.push(rec.order_id);
        self.created_at.push(micros(rec.created_at));
        self.updated_at.push(micros(rec.updated_at));
        Ok(())
    }
}

/// Inserts new holds under the ids drawn for them (their own ids are ignored).
pub(crate) async fn insert_holds(
    conn: &mut PgConnection,
    ids: &[HoldId],
    holds: &[HoldRecord],
) -> Result<(), BatchError> {
    if holds.is_empty() {
        return Ok(());
    }
    let mut c = HoldColumns::default();
    for (id, rec) in ids.iter().zip(holds) {
        c.push(*id, rec)?;
    }
    c.bind(sqlx::query(
        "INSERT INTO holds (id, status, expires_at, doc, skus, quantities, reference, order_id, created_at, \
         updated_at) \
         SELECT u.id, u.status, u.expires_at, u.doc::jsonb, u.skus::jsonb, u.quantities::jsonb, u.reference, \
                u.order_id, u.created_at, u.updated_at \
           FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[], \
                       $8::int8[], $9::int8[], $10::int8[]) \
                AS u (id, status, expires_at, doc, skus, quantities, reference, order_id, created_at, updated_at)",
    ))
    .execute(&mut *conn)
    .await
    .map_err(|e| BatchError::db_fk(e, "holds.order_id"))?;
    Ok(())
}

/// Writes the given holds back from the batch's state, every column from the record.
pub(crate) async fn update_holds(
    conn: &mut PgConnection,
    holds: &BTreeMap<HoldId, HoldRecord>,
    ids: &[HoldId],
) -> Result<(), BatchError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut c = HoldColumns::default();
    for &id in ids {
        let rec = holds.get(&id).ok_or_else(|| {
            StoreError::Internal(format!("hold {id} was named as changed but is not in the batch's state"))
        })?;
        c.push(id, rec)?;
    }
    let done = c.bind(sqlx::query(
        "UPDATE holds h SET status = u.status, expires_at = u.expires_at, doc = u.doc::jsonb, skus = u.skus::jsonb, \
                quantities = u.quantities::jsonb, reference = u.reference, order_id = u.order_id, \
                created_at = u.created_at, updated_at = u.updated_at \
           FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[], \
                       $8::int8[], $9::int8[], $10::int8[]) \
                AS u (id, status, expires_at, doc, skus, quantities, reference, order_id, created_at, updated_at) \
          WHERE h.id = u.id",
    ))
    .execute(&mut *conn)
    .await
    .map_err(|e| BatchError::db_fk(e, "holds.order_id"))?;
    if done.rows_affected() != ids.len() as u64 {
        return Err(StoreError::Internal(format!("some of the changed holds {ids:?} do not exist")).into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------------------------

async fn customer_by_id(conn: &mut PgConnection, id: CustomerId) -> StoreResult<Option<CustomerRecord>> {
    let sql = format!("{CUSTOMER_SELECT} WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(customer_record).transpose()
}

#[async_trait]
impl OrderStore for PgStore {
    async fn create_customer(&self, fields: &CustomerFields, now: DateTime<Utc>) -> StoreResult<CustomerRecord> {
        let addresses = to_json("addresses", &fields.addresses)?;
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let id: CustomerId = sqlx::query_scalar(
                "INSERT INTO customers (name, email, phone, addresses, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4::jsonb, $5, $5) RETURNING id",
            )
            .bind(&fields.name)
            .bind(&fields.email)
            .bind(&fields.phone)
            .bind(&addresses)
            .bind(micros(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            // Read back rather than echo the input, so that the record is exactly what a later get returns
            // (times at the stored precision).
            customer_by_id(conn, id).await?.ok_or(StoreError::NotFound)
        }
        .await;
        finish(tx, result).await
    }

    async fn update_customer(
        &self,
        id: CustomerId,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> StoreResult<CustomerRecord> {
        let addresses = to_json("addresses", &fields.addresses)?;
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let done = sqlx::query(
                "UPDATE customers SET name = $1, email = $2, phone = $3, addresses = $4::jsonb, updated_at = $5 \
                  WHERE id = $6",
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
        finish(tx, result).await
    }

    async fn get_customer(&self, id: CustomerId) -> StoreResult<Option<CustomerRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        customer_by_id(&mut conn, id).await
    }

    async fn find_customer(&self, email: Option<&str>, phone: Option<&str>) -> StoreResult<Option<CustomerRecord>> {
        // Email first: it names a person more reliably than a phone number, which households and offices share.
        for (column, value) in [("email", email), ("phone", phone)] {
            let Some(value) = value else { continue };
            let sql = format!("{CUSTOMER_SELECT} WHERE {column} = $1");
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
        let mut qb = QueryBuilder::<Postgres>::new(format!("{CUSTOMER_SELECT} WHERE id > "));
        qb.push_bind(after.unwrap_or(i64::MIN));
        if let Some(q) = q {
            // strpos and starts_with, not LIKE: `%` and `_` in a search are meant literally.
            qb.push(" AND (strpos(lower(name), lower(")
                .push_bind(q)
                .push(")) > 0 OR strpos(lower(email), lower(")
                .push_bind(q)
                .push(")) > 0 OR starts_with(phone, ")
                .push_bind(q)
                .push("))");
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(customer_record).collect()
    }

    async fn get_order(&self, id: OrderId) -> StoreResult<Option<OrderRecord>> {
        let sql = format!("{ORDER_SELECT} WHERE o.id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(order_record).transpose()
    }

    async fn find_order(&self, source: &str, external_number: &str) -> StoreResult<Option<OrderRecord>> {
        let sql = format!("{ORDER_SELECT} WHERE o.source = $1 AND o.external_number = $2");
        let row = sqlx::query(&sql).bind(source).bind(external_number).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(order_record).transpose()
    }

    async fn list_orders(&self, filter: &OrderFilter, after: Option<i64>, limit: u32) -> StoreResult<Vec<OrderRecord>> {
        let mut qb = QueryBuilder::<Postgres>::new(format!("{ORDER_SELECT} WHERE o.id "));
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
        let sql = format!("{HOLD_SELECT} WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.as_ref().map(hold_record).transpose()
    }

    async fn due_holds(&self, now: DateTime<Utc>) -> StoreResult<Vec<HoldRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        due(&mut conn, now).await
    }

    async fn sellable_bins(&self) -> StoreResult<Vec<SellableBin>> {
        // A bin's ancestors are the locations whose path is a proper prefix of its own (up to a `/`); its warehouse
        // is the root of its path. Only unsellable ancestors matter, and the partial index on unsellable paths makes
        // that check read only those few.
        let rows: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT b.id, w.id, b.pick_sequence FROM locations b \
               JOIN locations w ON w.path = split_part(b.path, '/', 1) \
              WHERE b.kind = 'bin' AND b.sellable \
                AND NOT EXISTS (SELECT 1 FROM locations a WHERE NOT a.sellable \
                                   AND starts_with(b.path, a.path || '/')) \
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
        pick_lists::by_id(self, id).await
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

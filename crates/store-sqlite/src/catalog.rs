//! Products, variants and their items: the catalog half of the store.

use std::collections::HashMap;

use app::store::{
    CatalogStore, ImportSummary, ProductFilter, ProductRecord, SkuVariant, StoreResult, VariantFilter, VariantRecord,
};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::catalog::{InventoryPolicy, ProductFields, ProductStatus, VariantFields};
use domain::stock::ItemId;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::codec::{
    db, db_error, decimal, from_json_list, from_micros, internal, micros, opt_decimal, parse, to_json_list, Cols,
};
use crate::{chunks, placeholders, SqliteStore};

const PRODUCT_COLUMNS: &str =
    "p.id, p.handle, p.title, p.description, p.vendor, p.category, p.tags, p.images, p.status, p.options, \
     p.created_at, p.updated_at";

/// A variant with its SKU, which lives on its item.
const VARIANT_SELECT: &str = "SELECT v.id, v.product_id, v.item_id, i.sku, v.barcode, v.options, v.price, \
     v.compare_at_price, v.currency, v.cost, v.weight_grams, v.length_mm, v.width_mm, v.height_mm, v.tracked, \
     v.inventory_policy, v.created_at, v.updated_at FROM variants v JOIN items i ON i.id = v.item_id";

/// A product row without its variants.
struct ProductHead {
    id: i64,
    fields: ProductFields,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn product_head(row: &SqliteRow) -> StoreResult<ProductHead> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(internal);
    let get_os = |c: &str| row.try_get::<Option<String>, _>(c).map_err(internal);
    Ok(ProductHead {
        id: row.try_get("id").map_err(internal)?,
        fields: ProductFields {
            handle: get_s("handle")?,
            title: get_s("title")?,
            description: get_s("description")?,
            vendor: get_os("vendor")?,
            category: get_os("category")?,
            tags: from_json_list(&get_s("tags")?)?,
            images: from_json_list(&get_s("images")?)?,
            status: parse("product status", ProductStatus::parse(&get_s("status")?))?,
            options: from_json_list(&get_s("options")?)?,
        },
        created_at: from_micros(row.try_get("created_at").map_err(internal)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(internal)?)?,
    })
}

fn variant_record(row: &SqliteRow) -> StoreResult<VariantRecord> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(internal);
    let get_os = |c: &str| row.try_get::<Option<String>, _>(c).map_err(internal);
    let get_oi = |c: &str| row.try_get::<Option<i64>, _>(c).map_err(internal);
    Ok(VariantRecord {
        id: row.try_get("id").map_err(internal)?,
        product_id: row.try_get("product_id").map_err(internal)?,
        item_id: row.try_get("item_id").map_err(internal)?,
        fields: VariantFields {
            sku: get_s("sku")?,
            barcode: get_os("barcode")?,
            options: from_json_list(&get_s("options")?)?,
            price: decimal(&get_s("price")?)?,
            compare_at_price: opt_decimal(get_os("compare_at_price")?)?,
            currency: get_s("currency")?,
            cost: opt_decimal(get_os("cost")?)?,
            weight_grams: get_oi("weight_grams")?,
            length_mm: get_oi("length_mm")?,
            width_mm: get_oi("width_mm")?,
            height_mm: get_oi("height_mm")?,
            tracked: row.try_get("tracked").map_err(internal)?,
            inventory_policy: parse("inventory policy", InventoryPolicy::parse(&get_s("inventory_policy")?))?,
        },
        created_at: from_micros(row.try_get("created_at").map_err(internal)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(internal)?)?,
    })
}

/// The variants of the given products in position order, in one query per chunk of ids (never one per product).
async fn variants_of(
    conn: &mut SqliteConnection,
    product_ids: &[i64],
) -> StoreResult<HashMap<i64, Vec<VariantRecord>>> {
    let mut out: HashMap<i64, Vec<VariantRecord>> = HashMap::new();
    for chunk in chunks(product_ids, 1) {
        let sql = format!(
            "{VARIANT_SELECT} WHERE v.product_id IN ({}) ORDER BY v.product_id, v.position, v.id",
            placeholders(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await.map_err(db)? {
            let v = variant_record(&row)?;
            out.entry(v.product_id).or_default().push(v);
        }
    }
    Ok(out)
}

/// Turns product rows into records with their variants.
async fn with_variants(conn: &mut SqliteConnection, rows: Vec<SqliteRow>) -> StoreResult<Vec<ProductRecord>> {
    let heads = rows.iter().map(product_head).collect::<StoreResult<Vec<_>>>()?;
    let ids: Vec<i64> = heads.iter().map(|h| h.id).collect();
    let mut variants = variants_of(conn, &ids).await?;
    Ok(heads
        .into_iter()
        .map(|h| ProductRecord {
            id: h.id,
            fields: h.fields,
            variants: variants.remove(&h.id).unwrap_or_default(),
            created_at: h.created_at,
            updated_at: h.updated_at,
        })
        .collect())
}

/// How a single product is looked up.
enum ProductKey<'a> {
    Id(i64),
    Handle(&'a str),
}

async fn find_product(conn: &mut SqliteConnection, key: ProductKey<'_>) -> StoreResult<Option<ProductRecord>> {
    let row = match key {
        ProductKey::Id(id) => {
            let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = ?");
            sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await
        }
        ProductKey::Handle(handle) => {
            let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.handle = ?");
            sqlx::query(&sql).bind(handle).fetch_optional(&mut *conn).await
        }
    }
    .map_err(db)?;
    Ok(with_variants(conn, row.into_iter().collect()).await?.pop())
}

async fn product_by_id(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<ProductRecord>> {
    find_product(conn, ProductKey::Id(id)).await
}

async fn variant_by_id(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<VariantRecord>> {
    let sql = format!("{VARIANT_SELECT} WHERE v.id = ?");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(variant_record).transpose()
}

/// Inserts products in multi-row statements; returns their ids by handle.
async fn insert_products(
    conn: &mut SqliteConnection,
    products: &[&ProductFields],
    now: DateTime<Utc>,
) -> StoreResult<HashMap<String, i64>> {
    let mut ids = HashMap::with_capacity(products.len());
    for chunk in chunks(products, 11) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO products (handle, title, description, vendor, category, tags, images, status, options, \
             created_at, updated_at) ",
        );
        qb.push_values(chunk, |mut b, f| {
            b.push_bind(&f.handle)
                .push_bind(&f.title)
                .push_bind(&f.description)
                .push_bind(&f.vendor)
                .push_bind(&f.category)
                .push_bind(to_json_list(&f.tags))
                .push_bind(to_json_list(&f.images))
                .push_bind(f.status.as_str())
                .push_bind(to_json_list(&f.options))
                .push_bind(micros(now))
                .push_bind(micros(now));
        });
        // RETURNING promises no row order, so each id comes back with the handle it belongs to.
        qb.push(" RETURNING handle, id");
        ids.extend(qb.build_query_as::<(String, i64)>().fetch_all(&mut *conn).await.map_err(db)?);
    }
    Ok(ids)
}

/// A variant to insert: its product, its position there, and its fields.
type NewVariant<'a> = (i64, i64, &'a VariantFields);

/// Creates an item (which owns the SKU) per variant and then the variants, in multi-row statements; returns the
/// variant ids in the order given.
async fn insert_variants(
    conn: &mut SqliteConnection,
    variants: &[NewVariant<'_>],
    now: DateTime<Utc>,
) -> StoreResult<Vec<i64>> {
    let mut items: HashMap<String, i64> = HashMap::with_capacity(variants.len());
    for chunk in chunks(variants, 2) {
        let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO items (sku, created_at) ");
        qb.push_values(chunk, |mut b, (_, _, v)| {
            b.push_bind(&v.sku).push_bind(micros(now));
        });
        qb.push(" RETURNING sku, id");
        items.extend(qb.build_query_as::<(String, i64)>().fetch_all(&mut *conn).await.map_err(db)?);
    }
    let mut by_item: HashMap<i64, i64> = HashMap::with_capacity(variants.len());
    for chunk in chunks(variants, 17) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO variants (product_id, item_id, position, barcode, options, price, compare_at_price, \
             currency, cost, weight_grams, length_mm, width_mm, height_mm, tracked, inventory_policy, created_at, \
             updated_at) ",
        );
        qb.push_values(chunk, |mut b, (product_id, position, v)| {
            b.push_bind(*product_id)
                .push_bind(items.get(&v.sku).copied())
                .push_bind(*position)
                .push_bind(&v.barcode)
                .push_bind(to_json_list(&v.options))
                .push_bind(v.price.to_string())
                .push_bind(v.compare_at_price.map(|d| d.to_string()))
                .push_bind(&v.currency)
                .push_bind(v.cost.map(|d| d.to_string()))
                .push_bind(v.weight_grams)
                .push_bind(v.length_mm)
                .push_bind(v.width_mm)
                .push_bind(v.height_mm)
                .push_bind(v.tracked)
                .push_bind(v.inventory_policy.as_str())
                .push_bind(micros(now))
                .push_bind(micros(now));
        });
        qb.push(" RETURNING item_id, id");
        let rows = qb.build_query_as::<(i64, i64)>().fetch_all(&mut *conn).await;
        by_item.extend(rows.map_err(|e| db_error(e, "variants.product_id"))?);
    }
    variants
        .iter()
        .map(|(_, _, v)| {
            items
                .get(&v.sku)
                .and_then(|item| by_item.get(item))
                .copied()
                .ok_or_else(|| StoreError::Internal(format!("variant '{}' was not written", v.sku)))
        })
        .collect()
}

/// Overwrites the fields of products by id, many per statement (`UPDATE … FROM (VALUES …)`); returns how many
/// rows were updated.
async fn update_products(
    conn: &mut SqliteConnection,
    products: &[(i64, &ProductFields)],
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let mut updated = 0;
    for chunk in chunks(products, 10) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "UPDATE products SET handle = u.column2, title = u.column3, description = u.column4, \
             vendor = u.column5, category = u.column6, tags = u.column7, images = u.column8, status = u.column9, \
             options = u.column10, updated_at = ",
        );
        qb.push_bind(micros(now)).push(" FROM (");
        qb.push_values(chunk, |mut b, (id, f)| {
            b.push_bind(*id)
                .push_bind(&f.handle)
                .push_bind(&f.title)
                .push_bind(&f.description)
                .push_bind(&f.vendor)
                .push_bind(&f.category)
                .push_bind(to_json_list(&f.tags))
                .push_bind(to_json_list(&f.images))
                .push_bind(f.status.as_str())
                .push_bind(to_json_list(&f.options));
        });
        qb.push(") AS u WHERE products.id = u.column1");
        updated += qb.build().execute(&mut *conn).await.map_err(db)?.rows_affected();
    }
    Ok(updated)
}

/// The position after the product's last variant.
async fn next_position(conn: &mut SqliteConnection, product_id: i64) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(position), -1) + 1 FROM variants WHERE product_id = ?")
        .bind(product_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)
}

/// Overwrites the own fields of variants by id (not their SKUs, which are their items'), many per statement;
/// returns how many rows were updated.
async fn update_variants(
    conn: &mut SqliteConnection,
    variants: &[(i64, &VariantFields)],
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    let mut updated = 0;
    for chunk in chunks(variants, 13) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "UPDATE variants SET barcode = u.column2, options = u.column3, price = u.column4, \
             compare_at_price = u.column5, currency = u.column6, cost = u.column7, weight_grams = u.column8, \
             length_mm = u.column9, width_mm = u.column10, height_mm = u.column11, tracked = u.column12, \
             inventory_policy = u.column13, updated_at = ",
        );
        qb.push_bind(micros(now)).push(" FROM (");
        qb.push_values(chunk, |mut b, (id, v)| {
            b.push_bind(*id)
                .push_bind(&v.barcode)
                .push_bind(to_json_list(&v.options))
                .push_bind(v.price.to_string())
                .push_bind(v.compare_at_price.map(|d| d.to_string()))
                .push_bind(&v.currency)
                .push_bind(v.cost.map(|d| d.to_string()))
                .push_bind(v.weight_grams)
                .push_bind(v.length_mm)
                .push_bind(v.width_mm)
                .push_bind(v.height_mm)
                .push_bind(v.tracked)
                .push_bind(v.inventory_policy.as_str());
        });
        qb.push(") AS u WHERE variants.id = u.column1");
        updated += qb.build().execute(&mut *conn).await.map_err(db)?.rows_affected();
    }
    Ok(updated)
}

/// Gives a variant's item a new SKU. Renaming keeps the item id, and with it the ledger history.
async fn rename_item(conn: &mut SqliteConnection, variant_id: i64, sku: &str) -> StoreResult<()> {
    sqlx::query("UPDATE items SET sku = ? WHERE id = (SELECT item_id FROM variants WHERE id = ?) AND sku <> ?")
        .bind(sku)
        .bind(variant_id)
        .bind(sku)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Refuses (with `movements.item_id`) when any of the items has ledger history or a stored balance: deleting
/// them would orphan the ledger, which must stay able to explain every balance it ever had.
async fn guard_items_unused(conn: &mut SqliteConnection, items: &[ItemId]) -> StoreResult<()> {
    for chunk in chunks(items, 2) {
        let list = placeholders(chunk.len());
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM movements WHERE item_id IN ({list})) \
             OR EXISTS (SELECT 1 FROM stock_levels WHERE item_id IN ({list}))"
        );
        let mut q = sqlx::query_scalar::<_, bool>(&sql);
        for _ in 0..2 {
            for id in chunk {
                q = q.bind(id);
            }
        }
        if q.fetch_one(&mut *conn).await.map_err(db)? {
            return Err(StoreError::Conflict { constraint: "movements.item_id".into() });
        }
    }
    Ok(())
}

async fn delete_items(conn: &mut SqliteConnection, items: &[ItemId]) -> StoreResult<()> {
    for chunk in chunks(items, 1) {
        let sql = format!("DELETE FROM items WHERE id IN ({})", placeholders(chunk.len()));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await.map_err(|e| db_error(e, "movements.item_id"))?;
    }
    Ok(())
}

fn not_found<T>(found: Option<T>) -> StoreResult<T> {
    found.ok_or(StoreError::NotFound)
}

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn create_product(
        &self,
        product: &ProductFields,
        variants: &[VariantFields],
        now: DateTime<Utc>,
    ) -> StoreResult<ProductRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let id = insert_products(conn, &[product], now).await?[&product.handle];
            let new: Vec<NewVariant> = variants.iter().enumerate().map(|(i, v)| (id, i as i64, v)).collect();
            insert_variants(conn, &new, now).await?;
            not_found(product_by_id(conn, id).await?)
        }
        .await;
        w.finish(result).await
    }

    async fn update_product(&self, id: i64, product: &ProductFields, now: DateTime<Utc>) -> StoreResult<ProductRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            if update_products(conn, &[(id, product)], now).await? == 0 {
                return Err(StoreError::NotFound);
            }
            not_found(product_by_id(conn, id).await?)
        }
        .await;
        w.finish(result).await
    }

    async fn delete_product(&self, id: i64) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            let items: Vec<ItemId> = sqlx::query_scalar("SELECT item_id FROM variants WHERE product_id = ?")
                .bind(id)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
            guard_items_unused(conn, &items).await?;
            // The variants go with the product (ON DELETE CASCADE); their items are deleted after them, as the
            // variants refer to the items.
            sqlx::query("DELETE FROM products WHERE id = ?").bind(id).execute(&mut *conn).await.map_err(db)?;
            delete_items(conn, &items).await
        }
        .await;
        w.finish(result).await
    }

    async fn get_product(&self, id: i64) -> StoreResult<Option<ProductRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        product_by_id(&mut conn, id).await
    }

    async fn get_product_by_handle(&self, handle: &str) -> StoreResult<Option<ProductRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        find_product(&mut conn, ProductKey::Handle(handle)).await
    }

    async fn list_products(
        &self,
        filter: &ProductFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<ProductRecord>> {
        // Only the filters given become SQL, so that SQLite can use the index each one has (a generic
        // "?n IS NULL OR ..." would force a scan of every product for every page).
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id > "));
        qb.push_bind(after.unwrap_or(i64::MIN));
        if let Some(status) = filter.status {
            qb.push(" AND p.status = ").push_bind(status.as_str());
        }
        if let Some(vendor) = &filter.vendor {
            qb.push(" AND p.vendor = ").push_bind(vendor);
        }
        if let Some(category) = &filter.category {
            // The category itself or one below it: `Apparel` matches `Apparel > Shirts`, not `Apparel Deluxe`.
            qb.push(" AND (p.category = ")
                .push_bind(category)
                .push(" OR substr(p.category, 1, length(")
                .push_bind(category)
                .push(") + 3) = ")
                .push_bind(category)
                .push(" || ' > ')");
        }
        if let Some(tag) = &filter.tag {
            qb.push(" AND EXISTS (SELECT 1 FROM json_each(p.tags) t WHERE t.value = ").push_bind(tag).push(")");
        }
        if let Some(q) = &filter.q {
            // instr() rather than LIKE, so that `%` and `_` in a search mean themselves. SQLite's lower() folds
            // ASCII letters only.
            qb.push(" AND (instr(lower(p.title), lower(")
                .push_bind(q)
                .push(")) > 0 OR instr(lower(p.handle), lower(")
                .push_bind(q)
                .push(")) > 0)");
        }
        if let Some(sku) = &filter.sku {
            qb.push(
                " AND p.id IN (SELECT v.product_id FROM items i JOIN variants v ON v.item_id = i.id WHERE i.sku = ",
            )
            .push_bind(sku)
            .push(")");
        }
        qb.push(" ORDER BY p.id LIMIT ").push_bind(i64::from(limit));
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        let rows = qb.build().fetch_all(&mut *conn).await.map_err(db)?;
        with_variants(&mut conn, rows).await
    }

    async fn create_variant(
        &self,
        product_id: i64,
        v: &VariantFields,
        now: DateTime<Utc>,
    ) -> StoreResult<VariantRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = ?")
                .bind(product_id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            let position = next_position(conn, product_id).await?;
            let id = insert_variants(conn, &[(product_id, position, v)], now).await?[0];
            not_found(variant_by_id(conn, id).await?)
        }
        .await;
        w.finish(result).await
    }

    async fn update_variant(&self, id: i64, v: &VariantFields, now: DateTime<Utc>) -> StoreResult<VariantRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            if update_variants(conn, &[(id, v)], now).await? == 0 {
                return Err(StoreError::NotFound);
            }
            rename_item(conn, id, &v.sku).await?;
            not_found(variant_by_id(conn, id).await?)
        }
        .await;
        w.finish(result).await
    }

    async fn delete_variant(&self, id: i64) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let item: ItemId = not_found(
                sqlx::query_scalar("SELECT item_id FROM variants WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?,
            )?;
            guard_items_unused(conn, &[item]).await?;
            sqlx::query("DELETE FROM variants WHERE id = ?").bind(id).execute(&mut *conn).await.map_err(db)?;
            delete_items(conn, &[item]).await
        }
        .await;
        w.finish(result).await
    }

    async fn get_variant(&self, id: i64) -> StoreResult<Option<VariantRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        variant_by_id(&mut conn, id).await
    }

    async fn list_variants(
        &self,
        filter: &VariantFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<VariantRecord>> {
        // Only the filters given become SQL, so that a lookup by SKU is one index probe (the app resolves
        // variants by SKU once per line of an import).
        let mut qb = QueryBuilder::<Sqlite>::new(format!("{VARIANT_SELECT} WHERE v.id > "));
        qb.push_bind(after.unwrap_or(i64::MIN));
        if let Some(product_id) = filter.product_id {
            qb.push(" AND v.product_id = ").push_bind(product_id);
        }
        if let Some(sku) = &filter.sku {
            qb.push(" AND i.sku = ").push_bind(sku);
        }
        if let Some(barcode) = &filter.barcode {
            qb.push(" AND v.barcode = ").push_bind(barcode);
        }
        match &filter.q {
            Some(q) => {
                // A SKU prefix by LIKE with its wildcards escaped, so that `%` and `_` in a search mean themselves;
                // the title by instr() for the same reason. Exact SKU or barcode first, then prefixes.
                let prefix = format!("{}%", escape_like(q));
                qb.push(" AND (lower(i.sku) LIKE lower(")
                    .push_bind(prefix.clone())
                    .push(") ESCAPE '\\' OR v.barcode = ")
                    .push_bind(q.clone())
                    .push(" OR v.product_id IN (SELECT p.id FROM products p WHERE instr(lower(p.title), lower(")
                    .push_bind(q.clone())
                    .push(")) > 0))");
                qb.push(" ORDER BY CASE WHEN lower(i.sku) = lower(")
                    .push_bind(q.clone())
                    .push(") OR v.barcode = ")
                    .push_bind(q.clone())
                    .push(" THEN 0 WHEN lower(i.sku) LIKE lower(")
                    .push_bind(prefix)
                    .push(") ESCAPE '\\' THEN 1 ELSE 2 END, v.id LIMIT ")
                    .push_bind(i64::from(limit));
            }
            None => {
                qb.push(" ORDER BY v.id LIMIT ").push_bind(i64::from(limit));
            }
        }
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(variant_record).collect()
    }

    async fn import_products(
        &self,
        products: &[(ProductFields, Vec<VariantFields>)],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportSummary> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let mut summary = ImportSummary::default();
            // Which handles exist already: one query per chunk of products rather than one per product.
            let handles: Vec<&str> = products.iter().map(|(f, _)| f.handle.as_str()).collect();
            let mut ids: HashMap<String, i64> = HashMap::with_capacity(products.len());
            for chunk in chunks(&handles, 1) {
                let sql = format!("SELECT handle, id FROM products WHERE handle IN ({})", placeholders(chunk.len()));
                let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
                for handle in chunk {
                    q = q.bind(*handle);
                }
                ids.extend(q.fetch_all(&mut *conn).await.map_err(db)?);
            }

            // Existing products are updated, and their variants read, in chunks; new ones are inserted in chunks.
            let mut existing = Vec::new();
            let mut new_products = Vec::new();
            for (fields, _) in products {
                match ids.get(&fields.handle) {
                    Some(&id) => existing.push((id, fields)),
                    None => new_products.push(fields),
                }
            }
            update_products(conn, &existing, now).await?;
            summary.products_updated = existing.len();
            let existing_ids: Vec<i64> = existing.iter().map(|(id, _)| *id).collect();
            // Per product: its variants by SKU, and the next free position.
            let mut current: HashMap<i64, (HashMap<String, i64>, i64)> = HashMap::new();
            for chunk in chunks(&existing_ids, 1) {
                let sql = format!(
                    "SELECT v.product_id, v.id, i.sku, v.position FROM variants v JOIN items i ON i.id = v.item_id \
                     WHERE v.product_id IN ({})",
                    placeholders(chunk.len())
                );
                let mut q = sqlx::query_as::<_, (i64, i64, String, i64)>(&sql);
                for id in chunk {
                    q = q.bind(id);
                }
                for (product_id, variant_id, sku, position) in q.fetch_all(&mut *conn).await.map_err(db)? {
                    let entry = current.entry(product_id).or_default();
                    entry.0.insert(sku, variant_id);
                    entry.1 = entry.1.max(position + 1);
                }
            }
            summary.products_created = new_products.len();
            ids.extend(insert_products(conn, &new_products, now).await?);

            let mut new_variants: Vec<NewVariant> = Vec::new();
            let mut changed_variants = Vec::new();
            for (fields, variants) in products {
                let product_id = ids[&fields.handle];
                let (by_sku, next) = current.entry(product_id).or_default();
                for v in variants {
                    match by_sku.get(&v.sku) {
                        // Matched by SKU, so the item keeps its name: only the variant's fields change.
                        Some(&id) => changed_variants.push((id, v)),
                        None => {
                            new_variants.push((product_id, *next, v));
                            *next += 1;
                        }
                    }
                }
            }
            update_variants(conn, &changed_variants, now).await?;
            summary.variants_updated = changed_variants.len();
            // A SKU that exists under another product clashes here on items.sku: a SKU never silently moves
            // between products.
            summary.variants_created = new_variants.len();
            insert_variants(conn, &new_variants, now).await?;
            Ok(summary)
        }
        .await;
        w.finish(result).await
    }

    async fn resolve_skus(&self, skus: &[String]) -> StoreResult<HashMap<String, ItemId>> {
        if skus.len() <= crate::POINT_READ_ITEMS {
            let sql = "SELECT sku, id FROM items WHERE sku IN (SELECT value FROM json_each(?))";
            let decode = |r: &rusqlite::Row<'_>| Ok((r.col("sku")?, r.col("id")?));
            let found = self.read(|c| crate::readers::all(c, sql, [to_json_list(skus)], decode)).await?;
            return Ok(found.into_iter().collect());
        }
        let mut out = HashMap::with_capacity(skus.len());
        for chunk in chunks(skus, 1) {
            let sql = format!("SELECT sku, id FROM items WHERE sku IN ({})", placeholders(chunk.len()));
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
            for sku in chunk {
                q = q.bind(sku);
            }
            out.extend(q.fetch_all(&self.pool).await.map_err(db)?);
        }
        Ok(out)
    }

    async fn variants_by_skus(&self, skus: &[String]) -> StoreResult<HashMap<String, SkuVariant>> {
        let mut out = HashMap::with_capacity(skus.len());
        for chunk in chunks(skus, 1) {
            let select = VARIANT_SELECT.replacen(
                " FROM variants v",
                ", EXISTS (SELECT 1 FROM bundle_components bc WHERE bc.bundle_item_id = v.item_id) AS is_bundle \
                 FROM variants v",
                1,
            );
            let sql = format!("{select} WHERE i.sku IN ({})", placeholders(chunk.len()));
            let mut q = sqlx::query(&sql);
            for sku in chunk {
                q = q.bind(sku);
            }
            for row in q.fetch_all(&self.pool).await.map_err(db)? {
                let variant = variant_record(&row)?;
                let is_bundle: bool = row.try_get("is_bundle").map_err(db)?;
                out.insert(variant.fields.sku.clone(), SkuVariant { variant, is_bundle });
            }
        }
        Ok(out)
    }

    async fn sku_owners(&self, skus: &[String]) -> StoreResult<HashMap<String, String>> {
        let mut out = HashMap::with_capacity(skus.len());
        for chunk in chunks(skus, 1) {
            let sql = format!(
                "SELECT i.sku, p.handle FROM items i JOIN variants v ON v.item_id = i.id \
                 JOIN products p ON p.id = v.product_id WHERE i.sku IN ({})",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query_as::<_, (String, String)>(&sql);
            for sku in chunk {
                q = q.bind(sku);
            }
            out.extend(q.fetch_all(&self.pool).await.map_err(db)?);
        }
        Ok(out)
    }
}

/// `text` with LIKE's wildcards and its escape character escaped (by `\`).
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

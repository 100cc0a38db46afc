//! Products, variants and their items: the catalog half of the store.
//!
//! Multi-row writes bind one array per column and expand them with `UNNEST`, so that an import of a hundred
//! thousand products is a handful of statements, each with a fixed text.

use std::collections::HashMap;

use app::store::{
    CatalogStore, ImportSummary, ProductFilter, ProductRecord, SkuVariant, StoreResult, VariantFilter, VariantRecord,
};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::catalog::{InventoryPolicy, ProductFields, ProductStatus, VariantFields};
use domain::stock::ItemId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::codec::{
    db, db_error, decimal, from_json_list, from_micros, get, internal, micros, opt_decimal, parse, to_json_list,
};
use crate::{finish, PgStore};

const PRODUCT_COLUMNS: &str = "p.id, p.handle, p.title, p.description, p.vendor, p.category, p.tags::text AS tags, \
     p.images::text AS images, p.status, p.options::text AS options, p.created_at, p.updated_at";

/// A variant with its SKU, which lives on its item. Decimals and lists come back as text.
const VARIANT_SELECT: &str = "SELECT v.id, v.product_id, v.item_id, i.sku, v.barcode, v.options::text AS options, \
     v.price::text AS price, v.compare_at_price::text AS compare_at_price, v.currency, v.cost::text AS cost, \
     v.weight_grams, v.length_mm, v.width_mm, v.height_mm, v.tracked, v.inventory_policy, v.created_at, \
     v.updated_at FROM variants v JOIN items i ON i.id = v.item_id";

/// A product row without its variants.
struct ProductHead {
    id: i64,
    fields: ProductFields,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn product_head(row: &PgRow) -> StoreResult<ProductHead> {
    Ok(ProductHead {
        id: get(row, "id")?,
        fields: ProductFields {
            handle: get(row, "handle")?,
            title: get(row, "title")?,
            description: get(row, "description")?,
            vendor: get(row, "vendor")?,
            category: get(row, "category")?,
            tags: from_json_list(&get::<String>(row, "tags")?)?,
            images: from_json_list(&get::<String>(row, "images")?)?,
            status: parse("product status", ProductStatus::parse(&get::<String>(row, "status")?))?,
            options: from_json_list(&get::<String>(row, "options")?)?,
        },
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

fn variant_record(row: &PgRow) -> StoreResult<VariantRecord> {
    Ok(VariantRecord {
        id: get(row, "id")?,
        product_id: get(row, "product_id")?,
        item_id: get(row, "item_id")?,
        fields: VariantFields {
            sku: get(row, "sku")?,
            barcode: get(row, "barcode")?,
            options: from_json_list(&get::<String>(row, "options")?)?,
            price: decimal(&get::<String>(row, "price")?)?,
            compare_at_price: opt_decimal(get(row, "compare_at_price")?)?,
            currency: get(row, "currency")?,
            cost: opt_decimal(get(row, "cost")?)?,
            weight_grams: get(row, "weight_grams")?,
            length_mm: get(row, "length_mm")?,
            width_mm: get(row, "width_mm")?,
            height_mm: get(row, "height_mm")?,
            tracked: get(row, "tracked")?,
            inventory_policy: parse(
                "inventory policy",
                InventoryPolicy::parse(&get::<String>(row, "inventory_policy")?),
            )?,
        },
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

/// The variants of the given products in position order, in one query (never one per product).
async fn variants_of(conn: &mut PgConnection, product_ids: &[i64]) -> StoreResult<HashMap<i64, Vec<VariantRecord>>> {
    let mut out: HashMap<i64, Vec<VariantRecord>> = HashMap::new();
    if product_ids.is_empty() {
        return Ok(out);
    }
    let sql = format!("{VARIANT_SELECT} WHERE v.product_id = ANY($1) ORDER BY v.product_id, v.position, v.id");
    for row in sqlx::query(&sql).bind(product_ids).fetch_all(&mut *conn).await.map_err(db)? {
        let v = variant_record(&row)?;
        out.entry(v.product_id).or_default().push(v);
    }
    Ok(out)
}

/// Turns product rows into records with their variants.
async fn with_variants(conn: &mut PgConnection, rows: Vec<PgRow>) -> StoreResult<Vec<ProductRecord>> {
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

async fn find_product(conn: &mut PgConnection, key: ProductKey<'_>) -> StoreResult<Option<ProductRecord>> {
    let row = match key {
        ProductKey::Id(id) => {
            let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1");
            sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await
        }
        ProductKey::Handle(handle) => {
            let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.handle = $1");
            sqlx::query(&sql).bind(handle).fetch_optional(&mut *conn).await
        }
    }
    .map_err(db)?;
    Ok(with_variants(conn, row.into_iter().collect()).await?.pop())
}

async fn product_by_id(conn: &mut PgConnection, id: i64) -> StoreResult<Option<ProductRecord>> {
    find_product(conn, ProductKey::Id(id)).await
}

async fn variant_by_id(conn: &mut PgConnection, id: i64) -> StoreResult<Option<VariantRecord>> {
    let sql = format!("{VARIANT_SELECT} WHERE v.id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await.map_err(db)?;
    row.as_ref().map(variant_record).transpose()
}

/// Locks a product's row for the rest of the transaction and says whether it exists. Taken before its variants
/// change, so that two nodes adding variants to one product at once do not hand out the same position.
async fn lock_product(conn: &mut PgConnection, id: i64) -> StoreResult<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM products WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    Ok(found.is_some())
}

/// Inserts products in one statement; returns their ids by handle.
async fn insert_products(
    conn: &mut PgConnection,
    products: &[&ProductFields],
    now: DateTime<Utc>,
) -> StoreResult<HashMap<String, i64>> {
    if products.is_empty() {
        return Ok(HashMap::new());
    }
    let handles: Vec<&str> = products.iter().map(|f| f.handle.as_str()).collect();
    let titles: Vec<&str> = products.iter().map(|f| f.title.as_str()).collect();
    let descriptions: Vec<&str> = products.iter().map(|f| f.description.as_str()).collect();
    let vendors: Vec<Option<&str>> = products.iter().map(|f| f.vendor.as_deref()).collect();
    let categories: Vec<Option<&str>> = products.iter().map(|f| f.category.as_deref()).collect();
    let tags: Vec<String> = products.iter().map(|f| to_json_list(&f.tags)).collect();
    let images: Vec<String> = products.iter().map(|f| to_json_list(&f.images)).collect();
    let statuses: Vec<&str> = products.iter().map(|f| f.status.as_str()).collect();
    let options: Vec<String> = products.iter().map(|f| to_json_list(&f.options)).collect();
    // RETURNING promises no row order, so each id comes back with the handle it belongs to.
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO products (handle, title, description, vendor, category, tags, images, status, options, \
         created_at, updated_at) \
         SELECT u.handle, u.title, u.description, u.vendor, u.category, u.tags::jsonb, u.images::jsonb, u.status, \
                u.options::jsonb, $10, $10 \
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                       $8::text[], $9::text[]) \
                AS u (handle, title, description, vendor, category, tags, images, status, options) \
         RETURNING handle, id",
    )
    .bind(&handles)
    .bind(&titles)
    .bind(&descriptions)
    .bind(&vendors)
    .bind(&categories)
    .bind(&tags)
    .bind(&images)
    .bind(&statuses)
    .bind(&options)
    .bind(micros(now))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    Ok(rows.into_iter().collect())
}

/// A variant to insert: its product, its position there, and its fields.
type NewVariant<'a> = (i64, i64, &'a VariantFields);

/// Creates an item (which owns the SKU) per variant and then the variants, one statement each; returns the
/// variant ids in the order given.
async fn insert_variants(
    conn: &mut PgConnection,
    variants: &[NewVariant<'_>],
    now: DateTime<Utc>,
) -> StoreResult<Vec<i64>> {
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    let skus: Vec<&str> = variants.iter().map(|(_, _, v)| v.sku.as_str()).collect();
    let items: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "INSERT INTO items (sku, created_at) SELECT u.sku, $2 FROM UNNEST($1::text[]) AS u (sku) RETURNING sku, id",
    )
    .bind(&skus)
    .bind(micros(now))
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?
    .into_iter()
    .collect();

    let mut item_ids = Vec::with_capacity(variants.len());
    for (_, _, v) in variants {
        let id = items.get(&v.sku).copied();
        item_ids.push(id.ok_or_else(|| StoreError::Internal(format!("item '{}' was not written", v.sku)))?);
    }
    let product_ids: Vec<i64> = variants.iter().map(|(p, _, _)| *p).collect();
    let positions: Vec<i64> = variants.iter().map(|(_, pos, _)| *pos).collect();
    let barcodes: Vec<Option<&str>> = variants.iter().map(|(_, _, v)| v.barcode.as_deref()).collect();
    let options: Vec<String> = variants.iter().map(|(_, _, v)| to_json_list(&v.options)).collect();
    let prices: Vec<String> = variants.iter().map(|(_, _, v)| v.price.to_string()).collect();
    let compare: Vec<Option<String>> =
        variants.iter().map(|(_, _, v)| v.compare_at_price.map(|d| d.to_string())).collect();
    let currencies: Vec<&str> = variants.iter().map(|(_, _, v)| v.currency.as_str()).collect();
    let costs: Vec<Option<String>> = variants.iter().map(|(_, _, v)| v.cost.map(|d| d.to_string())).collect();
    let weights: Vec<Option<i64>> = variants.iter().map(|(_, _, v)| v.weight_grams).collect();
    let lengths: Vec<Option<i64>> = variants.iter().map(|(_, _, v)| v.length_mm).collect();
    let widths: Vec<Option<i64>> = variants.iter().map(|(_, _, v)| v.width_mm).collect();
    let heights: Vec<Option<i64>> = variants.iter().map(|(_, _, v)| v.height_mm).collect();
    let tracked: Vec<bool> = variants.iter().map(|(_, _, v)| v.tracked).collect();
    let policies: Vec<&str> = variants.iter().map(|(_, _, v)| v.inventory_policy.as_str()).collect();
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "INSERT INTO variants (product_id, item_id, position, barcode, options, price, compare_at_price, currency, \
         cost, weight_grams, length_mm, width_mm, height_mm, tracked, inventory_policy, created_at, updated_at) \
         SELECT u.product_id, u.item_id, u.position, u.barcode, u.options::jsonb, u.price::numeric, \
                u.compare_at_price::numeric, u.currency, u.cost::numeric, u.weight_grams, u.length_mm, u.width_mm, \
                u.height_mm, u.tracked, u.inventory_policy, $16, $16 \
           FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[], \
                       $8::text[], $9::text[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], $14::bool[], \
                       $15::text[]) \
                AS u (product_id, item_id, position, barcode, options, price, compare_at_price, currency, cost, \
                      weight_grams, length_mm, width_mm, height_mm, tracked, inventory_policy) \
         RETURNING item_id, id",
    )
    .bind(&product_ids)
    .bind(&item_ids)
    .bind(&positions)
    .bind(&barcodes)
    .bind(&options)
    .bind(&prices)
    .bind(&compare)
    .bind(&currencies)
    .bind(&costs)
    .bind(&weights)
    .bind(&lengths)
    .bind(&widths)
    .bind(&heights)
    .bind(&tracked)
    .bind(&policies)
    .bind(micros(now))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error(e, "variants.product_id"))?;
    let by_item: HashMap<i64, i64> = rows.into_iter().collect();
    item_ids
        .iter()
        .zip(variants)
        .map(|(item, (_, _, v))| {
            by_item
                .get(item)
                .copied()
                .ok_or_else(|| StoreError::Internal(format!("variant '{}' was not written", v.sku)))
        })
        .collect()
}

/// Overwrites the fields of products by id, all in one statement; returns how many rows were updated.
async fn update_products(
    conn: &mut PgConnection,
    products: &[(i64, &ProductFields)],
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    if products.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = products.iter().map(|(id, _)| *id).collect();
    let handles: Vec<&str> = products.iter().map(|(_, f)| f.handle.as_str()).collect();
    let titles: Vec<&str> = products.iter().map(|(_, f)| f.title.as_str()).collect();
    let descriptions: Vec<&str> = products.iter().map(|(_, f)| f.description.as_str()).collect();
    let vendors: Vec<Option<&str>> = products.iter().map(|(_, f)| f.vendor.as_deref()).collect();
    let categories: Vec<Option<&str>> = products.iter().map(|(_, f)| f.category.as_deref()).collect();
    let tags: Vec<String> = products.iter().map(|(_, f)| to_json_list(&f.tags)).collect();
    let images: Vec<String> = products.iter().map(|(_, f)| to_json_list(&f.images)).collect();
    let statuses: Vec<&str> = products.iter().map(|(_, f)| f.status.as_str()).collect();
    let options: Vec<String> = products.iter().map(|(_, f)| to_json_list(&f.options)).collect();
    let done = sqlx::query(
        "UPDATE products p SET handle = u.handle, title = u.title, description = u.description, vendor = u.vendor, \
                category = u.category, tags = u.tags::jsonb, images = u.images::jsonb, status = u.status, \
                options = u.options::jsonb, updated_at = $11 \
           FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                       $8::text[], $9::text[], $10::text[]) \
                AS u (id, handle, title, description, vendor, category, tags, images, status, options) \
          WHERE p.id = u.id",
    )
    .bind(&ids)
    .bind(&handles)
    .bind(&titles)
    .bind(&descriptions)
    .bind(&vendors)
    .bind(&categories)
    .bind(&tags)
    .bind(&images)
    .bind(&statuses)
    .bind(&options)
    .bind(micros(now))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

/// The position after the product's last variant.
async fn next_position(conn: &mut PgConnection, product_id: i64) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COALESCE(MAX(position), -1) + 1 FROM variants WHERE product_id = $1")
        .bind(product_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)
}

/// Overwrites the own fields of variants by id (not their SKUs, which are their items'), all in one statement;
/// returns how many rows were updated.
async fn update_variants(
    conn: &mut PgConnection,
    variants: &[(i64, &VariantFields)],
    now: DateTime<Utc>,
) -> StoreResult<u64> {
    if variants.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = variants.iter().map(|(id, _)| *id).collect();
    let barcodes: Vec<Option<&str>> = variants.iter().map(|(_, v)| v.barcode.as_deref()).collect();
    let options: Vec<String> = variants.iter().map(|(_, v)| to_json_list(&v.options)).collect();
    let prices: Vec<String> = variants.iter().map(|(_, v)| v.price.to_string()).collect();
    let compare: Vec<Option<String>> =
        variants.iter().map(|(_, v)| v.compare_at_price.map(|d| d.to_string())).collect();
    let currencies: Vec<&str> = variants.iter().map(|(_, v)| v.currency.as_str()).collect();
    let costs: Vec<Option<String>> = variants.iter().map(|(_, v)| v.cost.map(|d| d.to_string())).collect();
    let weights: Vec<Option<i64>> = variants.iter().map(|(_, v)| v.weight_grams).collect();
    let lengths: Vec<Option<i64>> = variants.iter().map(|(_, v)| v.length_mm).collect();
    let widths: Vec<Option<i64>> = variants.iter().map(|(_, v)| v.width_mm).collect();
    let heights: Vec<Option<i64>> = variants.iter().map(|(_, v)| v.height_mm).collect();
    let tracked: Vec<bool> = variants.iter().map(|(_, v)| v.tracked).collect();
    let policies: Vec<&str> = variants.iter().map(|(_, v)| v.inventory_policy.as_str()).collect();
    let done = sqlx::query(
        "UPDATE variants v SET barcode = u.barcode, options = u.options::jsonb, price = u.price::numeric, \
                compare_at_price = u.compare_at_price::numeric, currency = u.currency, cost = u.cost::numeric, \
                weight_grams = u.weight_grams, length_mm = u.length_mm, width_mm = u.width_mm, \
                height_mm = u.height_mm, tracked = u.tracked, inventory_policy = u.inventory_policy, \
                updated_at = $14 \
           FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                       $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::bool[], $13::text[]) \
                AS u (id, barcode, options, price, compare_at_price, currency, cost, weight_grams, length_mm, \
                      width_mm, height_mm, tracked, inventory_policy) \
          WHERE v.id = u.id",
    )
    .bind(&ids)
    .bind(&barcodes)
    .bind(&options)
    .bind(&prices)
    .bind(&compare)
    .bind(&currencies)
    .bind(&costs)
    .bind(&weights)
    .bind(&lengths)
    .bind(&widths)
    .bind(&heights)
    .bind(&tracked)
    .bind(&policies)
    .bind(micros(now))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(done.rows_affected())
}

/// Gives a variant's item a new SKU. Renaming keeps the item id, and with it the ledger history.
async fn rename_item(conn: &mut PgConnection, variant_id: i64, sku: &str) -> StoreResult<()> {
    sqlx::query("UPDATE items SET sku = $1 WHERE id = (SELECT item_id FROM variants WHERE id = $2) AND sku <> $1")
        .bind(sku)
        .bind(variant_id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Refuses (with `movements.item_id`) when any of the items has ledger history or a stored balance: deleting
/// them would orphan the ledger, which must stay able to explain every balance it ever had. A batch on another
/// node that books the item after this check makes the delete fail on the foreign key instead, named the same.
async fn guard_items_unused(conn: &mut PgConnection, items: &[ItemId]) -> StoreResult<()> {
    if items.is_empty() {
        return Ok(());
    }
    let used: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM movements WHERE item_id = ANY($1)) \
             OR EXISTS (SELECT 1 FROM stock_levels WHERE item_id = ANY($1))",
    )
    .bind(items)
    .fetch_one(&mut *conn)
    .await
    .map_err(db)?;
    if used {
        return Err(StoreError::Conflict { constraint: "movements.item_id".into() });
    }
    Ok(())
}

async fn delete_items(conn: &mut PgConnection, items: &[ItemId]) -> StoreResult<()> {
    sqlx::query("DELETE FROM items WHERE id = ANY($1)")
        .bind(items)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error(e, "movements.item_id"))?;
    Ok(())
}

fn not_found<T>(found: Option<T>) -> StoreResult<T> {
    found.ok_or(StoreError::NotFound)
}

#[async_trait]
impl CatalogStore for PgStore {
    async fn create_product(
        &self,
        product: &ProductFields,
        variants: &[VariantFields],
        now: DateTime<Utc>,
    ) -> StoreResult<ProductRecord> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let ids = insert_products(conn, &[product], now).await?;
            let id = *ids.get(&product.handle).ok_or_else(|| StoreError::Internal("product was not written".into()))?;
            let new: Vec<NewVariant> = variants.iter().enumerate().map(|(i, v)| (id, i as i64, v)).collect();
            insert_variants(conn, &new, now).await?;
            not_found(product_by_id(conn, id).await?)
        }
        .await;
        finish(tx, result).await
    }

    async fn update_product(&self, id: i64, product: &ProductFields, now: DateTime<Utc>) -> StoreResult<ProductRecord> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            if update_products(conn, &[(id, product)], now).await? == 0 {
                return Err(StoreError::NotFound);
            }
            not_found(product_by_id(conn, id).await?)
        }
        .await;
        finish(tx, result).await
    }

    async fn delete_product(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            if !lock_product(conn, id).await? {
                return Err(StoreError::NotFound);
            }
            let items: Vec<ItemId> = sqlx::query_scalar("SELECT item_id FROM variants WHERE product_id = $1")
                .bind(id)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
            guard_items_unused(conn, &items).await?;
            // The variants go with the product (ON DELETE CASCADE); their items are deleted after them, as the
            // variants refer to the items.
            sqlx::query("DELETE FROM products WHERE id = $1").bind(id).execute(&mut *conn).await.map_err(db)?;
            delete_items(conn, &items).await
        }
        .await;
        finish(tx, result).await
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
        // Only the filters given become SQL, so that the planner can use the index each one has (a generic
        // "$n IS NULL OR ..." plan would scan every product for every page).
        let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id > "));
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
                .push(" OR starts_with(p.category, ")
                .push_bind(category)
                .push(" || ' > '))");
        }
        if let Some(tag) = &filter.tag {
            // Containment, which the GIN index on tags answers; an element matches whole, in its exact case.
            qb.push(" AND p.tags @> jsonb_build_array(").push_bind(tag).push("::text)");
        }
        if let Some(q) = &filter.q {
            // strpos() rather than LIKE, so that `%` and `_` in a search mean themselves.
            qb.push(" AND (strpos(lower(p.title), lower(")
                .push_bind(q)
                .push(")) > 0 OR strpos(lower(p.handle), lower(")
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
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            if !lock_product(conn, product_id).await? {
                return Err(StoreError::NotFound);
            }
            let position = next_position(conn, product_id).await?;
            let id = insert_variants(conn, &[(product_id, position, v)], now).await?[0];
            not_found(variant_by_id(conn, id).await?)
        }
        .await;
        finish(tx, result).await
    }

    async fn update_variant(&self, id: i64, v: &VariantFields, now: DateTime<Utc>) -> StoreResult<VariantRecord> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            if update_variants(conn, &[(id, v)], now).await? == 0 {
                return Err(StoreError::NotFound);
            }
            rename_item(conn, id, &v.sku).await?;
            not_found(variant_by_id(conn, id).await?)
        }
        .await;
        finish(tx, result).await
    }

    async fn delete_variant(&self, id: i64) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let item: ItemId = not_found(
                sqlx::query_scalar("SELECT item_id FROM variants WHERE id = $1 FOR UPDATE")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?,
            )?;
            guard_items_unused(conn, &[item]).await?;
            sqlx::query("DELETE FROM variants WHERE id = $1").bind(id).execute(&mut *conn).await.map_err(db)?;
            delete_items(conn, &[item]).await
        }
        .await;
        finish(tx, result).await
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
        let mut qb = QueryBuilder::<Postgres>::new(format!("{VARIANT_SELECT} WHERE v.id > "));
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
                // the title by strpos() for the same reason. Exact SKU or barcode first, then prefixes.
                let prefix = format!("{}%", escape_like(q));
                qb.push(" AND (lower(i.sku) LIKE lower(")
                    .push_bind(prefix.clone())
                    .push(") ESCAPE '\\' OR v.barcode = ")
                    .push_bind(q.clone())
                    .push(" OR v.product_id IN (SELECT p.id FROM products p WHERE strpos(lower(p.title), lower(")
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
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let mut summary = ImportSummary::default();
            // Which handles exist already, locked (in id order, so that two imports never wait on each other in
            // a circle) so that another node's import cannot add variants at the same positions meanwhile.
            let handles: Vec<&str> = products.iter().map(|(f, _)| f.handle.as_str()).collect();
            let mut ids: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
                "SELECT handle, id FROM products WHERE handle = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            )
            .bind(&handles)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?
            .into_iter()
            .collect();

            // Existing products are updated, and their variants read; new ones are inserted.
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
            if !existing_ids.is_empty() {
                let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(
                    "SELECT v.product_id, v.id, i.sku, v.position FROM variants v JOIN items i ON i.id = v.item_id \
                      WHERE v.product_id = ANY($1)",
                )
                .bind(&existing_ids)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                for (product_id, variant_id, sku, position) in rows {
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
                let product_id = *ids
                    .get(&fields.handle)
                    .ok_or_else(|| StoreError::Internal(format!("product '{}' was not written", fields.handle)))?;
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
        finish(tx, result).await
    }

    async fn resolve_skus(&self, skus: &[String]) -> StoreResult<HashMap<String, ItemId>> {
        if skus.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT sku, id FROM items WHERE sku = ANY($1)")
            .bind(skus)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.into_iter().collect())
    }

    async fn variants_by_skus(&self, skus: &[String]) -> StoreResult<HashMap<String, SkuVariant>> {
        if skus.is_empty() {
            return Ok(HashMap::new());
        }
        let select = VARIANT_SELECT.replacen(
            " FROM variants v",
            ", EXISTS (SELECT 1 FROM bundle_components bc WHERE bc.bundle_item_id = v.item_id) AS is_bundle \
             FROM variants v",
            1,
        );
        let rows = sqlx::query(&format!("{select} WHERE i.sku = ANY($1)"))
            .bind(skus)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            let variant = variant_record(row)?;
            let is_bundle: bool = get(row, "is_bundle")?;
            out.insert(variant.fields.sku.clone(), SkuVariant { variant, is_bundle });
        }
        Ok(out)
    }

    async fn sku_owners(&self, skus: &[String]) -> StoreResult<HashMap<String, String>> {
        if skus.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.sku, p.handle FROM items i JOIN variants v ON v.item_id = i.id \
               JOIN products p ON p.id = v.product_id WHERE i.sku = ANY($1)",
        )
        .bind(skus)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().collect())
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

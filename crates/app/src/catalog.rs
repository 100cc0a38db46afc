//! Catalog use cases: products and their variants, created, changed, listed and removed, and bulk import.

use chrono::Utc;
use domain::catalog::{
    normalize_category, validate_product_with_variants, validate_variant, InventoryPolicy, ProductFields,
    ProductStatus, VariantFields,
};
use domain::codes::handle_from_title;
use domain::Problems;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use crate::error::{AppError, AppResult, StoreError};
use crate::page::{Page, PageRequest};
use crate::store::{ImportSummary, ProductFilter, VariantFilter};
use crate::views::{ProductView, VariantView};
use crate::App;

/// Deserializes a field that may be absent (leave as is), `null` (clear) or a value (set).
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Longest text a variant search takes: longer than any SKU, barcode or title worth typing.
const MAX_SEARCH_CHARS: usize = 200;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// Made from the title when absent.
    #[serde(default)]
    pub handle: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub vendor: Option<String>,
    /// A path such as `Apparel > Shirts`.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Image URLs.
    #[serde(default)]
    pub images: Vec<String>,
    /// `draft` when absent.
    #[serde(default)]
    pub status: ProductStatus,
    /// Option names such as `["Color", "Size"]`, at most three.
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub variants: Vec<NewVariant>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewVariant {
    pub sku: String,
    #[serde(default)]
    pub barcode: Option<String>,
    /// One value per product option, in order.
    #[serde(default)]
    pub options: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "19.99"))]
    pub price: Decimal,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub compare_at_price: Option<Decimal>,
    /// ISO 4217 code of price, compare-at price and cost.
    pub currency: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub cost: Option<Decimal>,
    #[serde(default)]
    pub weight_grams: Option<i64>,
    #[serde(default)]
    pub length_mm: Option<i64>,
    #[serde(default)]
    pub width_mm: Option<i64>,
    #[serde(default)]
    pub height_mm: Option<i64>,
    /// Whether stock is counted for this variant; true when absent.
    #[serde(default)]
    pub tracked: Option<bool>,
    /// What happens at zero; `deny` when absent.
    #[serde(default)]
    pub inventory_policy: InventoryPolicy,
}

impl NewVariant {
    pub fn into_fields(self) -> VariantFields {
        VariantFields {
            sku: self.sku.trim().to_string(),
            barcode: self.barcode,
            options: self.options.into_iter().map(|o| o.trim().to_string()).collect(),
            price: self.price,
            compare_at_price: self.compare_at_price,
            currency: self.currency,
            cost: self.cost,
            weight_grams: self.weight_grams,
            length_mm: self.length_mm,
            width_mm: self.width_mm,
            height_mm: self.height_mm,
            tracked: self.tracked.unwrap_or(true),
            inventory_policy: self.inventory_policy,
        }
    }
}

impl NewProduct {
    /// Splits the request into the product's fields and its variants' fields, tidied but not yet validated.
    pub fn into_fields(self) -> (ProductFields, Vec<VariantFields>) {
        let handle = self.handle.unwrap_or_else(|| handle_from_title(&self.title));
        let fields = ProductFields {
            handle,
            title: self.title.trim().to_string(),
            description: self.description,
            vendor: self.vendor,
            category: self.category.map(|c| normalize_category(&c).unwrap_or(c)),
            tags: self.tags.into_iter().map(|t| t.trim().to_string()).collect(),
            images: self.images,
            status: self.status,
            options: self.options.into_iter().map(|o| o.trim().to_string()).collect(),
        };
        (fields, self.variants.into_iter().map(NewVariant::into_fields).collect())
    }
}

/// Changes to a product; absent fields stay as they are, `null` clears an optional field.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub handle: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub vendor: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub category: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub images: Option<Vec<String>>,
    pub status: Option<ProductStatus>,
    /// Option names can be renamed but not added or removed while variants exist.
    pub options: Option<Vec<String>>,
}

/// Changes to a variant; absent fields stay as they are, `null` clears an optional field.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariantPatch {
    pub sku: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub barcode: Option<Option<String>>,
    pub options: Option<Vec<String>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub price: Option<Decimal>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub compare_at_price: Option<Option<Decimal>>,
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub cost: Option<Option<Decimal>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub weight_grams: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub length_mm: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub width_mm: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub height_mm: Option<Option<i64>>,
    pub tracked: Option<bool>,
    pub inventory_policy: Option<InventoryPolicy>,
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// Maps a uniqueness clash from the store to the field it concerns.
fn unique_clash(e: StoreError, field_prefix: &str) -> AppError {
    match e {
        StoreError::Conflict { constraint } if constraint.contains("handle") => AppError::Conflict {
            code: "duplicate_handle",
            detail: "another product has this handle".into(),
            errors: vec![domain::FieldError::new(format!("{field_prefix}handle"), "is taken")],
        },
        StoreError::Conflict { constraint } if constraint.contains("sku") => AppError::Conflict {
            code: "duplicate_sku",
            detail: "a SKU in this request belongs to another variant".into(),
            errors: vec![domain::FieldError::new(format!("{field_prefix}sku"), "is taken")],
        },
        StoreError::Conflict { constraint } if constraint.contains("movements") => AppError::conflict(
            "has_stock_history",
            "stock has been booked for it: archive it instead, so that the ledger keeps its history",
        ),
        other => other.into(),
    }
}

impl App {
    pub async fn create_product(&self, req: NewProduct) -> AppResult<ProductView> {
        let (fields, variants) = req.into_fields();
        let mut p = Problems::default();
        validate_product_with_variants(&fields, &variants, "", &mut p);
        p.into_result().map_err(AppError::Validation)?;
        let rec = self.store.create_product(&fields, &variants, Utc::now()).await;
        self.catalog_changed();
        Ok(rec.map_err(|e| unique_clash(e, ""))?.into())
    }

    /// Finds a product by handle or, when no product has that handle and `key` is a number, by id. The natural
    /// key wins so that a handle such as `2024` always means that product.
    pub async fn product(&self, key: &str) -> AppResult<ProductView> {
        let mut found = self.store.get_product_by_handle(key).await?;
        if found.is_none() {
            if let Ok(id) = key.parse::<i64>() {
                found = self.store.get_product(id).await?;
            }
        }
        found.map(Into::into).ok_or_else(|| AppError::NotFound { entity: "product", key: key.to_string() })
    }

    pub async fn list_products(&self, mut filter: ProductFilter, page: PageRequest) -> AppResult<Page<ProductView>> {
        filter.category = filter.category.map(|c| normalize_category(&c).unwrap_or(c));
        let rows = self.store.list_products(&filter, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    pub async fn update_product(&self, key: &str, patch: ProductPatch) -> AppResult<ProductView> {
        let current = self.product(key).await?;
        let mut f = ProductFields {
            handle: current.handle,
            title: current.title,
            description: current.description,
            vendor: current.vendor,
            category: current.category,
            tags: current.tags,
            images: current.images,
            status: current.status,
            options: current.options.clone(),
        };
        set(&mut f.handle, patch.handle);
        set(&mut f.title, patch.title.map(|t| t.trim().to_string()));
        set(&mut f.description, patch.description);
        set(&mut f.vendor, patch.vendor);
        set(&mut f.category, patch.category.map(|c| c.map(|c| normalize_category(&c).unwrap_or(c))));
        set(&mut f.tags, patch.tags.map(|t| t.into_iter().map(|t| t.trim().to_string()).collect()));
        set(&mut f.images, patch.images);
        set(&mut f.status, patch.status);
        set(&mut f.options, patch.options.map(|o| o.into_iter().map(|o| o.trim().to_string()).collect()));
        let mut p = Problems::default();
        domain::catalog::validate_product(&f, "", &mut p);
        if f.options.len() != current.options.len() && !current.variants.is_empty() {
            p.push("options", "option names can be renamed, not added or removed, while the product has variants");
        }
        p.into_result().map_err(AppError::Validation)?;
        let rec = self.store.update_product(current.id, &f, Utc::now()).await;
        self.catalog_changed();
        Ok(rec.map_err(|e| unique_clash(e, ""))?.into())
    }

    pub async fn delete_product(&self, key: &str) -> AppResult<()> {
        let current = self.product(key).await?;
        let skus: Vec<String> = current.variants.iter().map(|v| v.sku.clone()).collect();
        let items: Vec<_> = self.store.resolve_skus(&skus).await?.into_values().collect();
        self.refuse_deleting_components(&items).await?;
        let done = self.store.delete_product(current.id).await;
        self.catalog_changed();
        done.map_err(|e| unique_clash(e, ""))
    }

    /// Finds a variant by SKU or, when no variant has that SKU and `key` is a number, by id. The SKU wins, so
    /// that numeric SKUs (EAN-like codes) always mean their own variant.
    pub async fn variant(&self, key: &str) -> AppResult<VariantView> {
        let f = VariantFilter { sku: Some(key.to_string()), ..Default::default() };
        let mut found = self.store.list_variants(&f, None, 1).await?.pop();
        if found.is_none() {
            if let Ok(id) = key.parse::<i64>() {
                found = self.store.get_variant(id).await?;
            }
        }
        let found = found.ok_or_else(|| AppError::NotFound { entity: "variant", key: key.to_string() })?;
        let components = self.component_views(found.item_id).await?;
        Ok(VariantView { components, ..found.into() })
    }

    /// Variants by filter, in id order and paged; with `q`, one page of at most `limit` best matches in rank order
    /// and no cursor (ranking is not an order a cursor by id can resume).
    pub async fn list_variants(&self, mut filter: VariantFilter, page: PageRequest) -> AppResult<Page<VariantView>> {
        if let Some(q) = filter.q.take() {
            let q = q.trim();
            if q.is_empty() || q.chars().count() > MAX_SEARCH_CHARS {
                return Err(AppError::field("q", format!("must be 1 to {MAX_SEARCH_CHARS} characters")));
            }
            if page.after.is_some() {
                return Err(AppError::field("after", "a search answers one page of best matches: no cursor"));
            }
            filter.q = Some(q.to_string());
            let rows = self.store.list_variants(&filter, None, page.limit).await?;
            return Ok(Page { items: rows.into_iter().map(Into::into).collect(), next_cursor: None });
        }
        let rows = self.store.list_variants(&filter, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    pub async fn create_variant(&self, product_key: &str, req: NewVariant) -> AppResult<VariantView> {
        let product = self.product(product_key).await?;
        let fields = req.into_fields();
        let mut p = Problems::default();
        validate_variant(&fields, &product.options, "", &mut p);
        if !product.options.is_empty() && product.variants.iter().any(|v| v.options == fields.options) {
            p.push("options", "another variant of this product has the same option values");
        }
        p.into_result().map_err(AppError::Validation)?;
        let rec = self.store.create_variant(product.id, &fields, Utc::now()).await;
        self.catalog_changed();
        Ok(rec.map_err(|e| unique_clash(e, ""))?.into())
    }

    pub async fn update_variant(&self, key: &str, patch: VariantPatch) -> AppResult<VariantView> {
        let v = self.variant(key).await?;
        let product = self.product(&v.product_id.to_string()).await?;
        let mut f = VariantFields {
            sku: v.sku,
            barcode: v.barcode,
            options: v.options,
            price: v.price,
            compare_at_price: v.compare_at_price,
            currency: v.currency,
            cost: v.cost,
            weight_grams: v.weight_grams,
            length_mm: v.length_mm,
            width_mm: v.width_mm,
            height_mm: v.height_mm,
            tracked: v.tracked,
            inventory_policy: v.inventory_policy,
        };
        set(&mut f.sku, patch.sku.map(|s| s.trim().to_string()));
        set(&mut f.barcode, patch.barcode);
        set(&mut f.options, patch.options.map(|o| o.into_iter().map(|o| o.trim().to_string()).collect()));
        set(&mut f.price, patch.price);
        set(&mut f.compare_at_price, patch.compare_at_price);
        set(&mut f.currency, patch.currency);
        set(&mut f.cost, patch.cost);
        set(&mut f.weight_grams, patch.weight_grams);
        set(&mut f.length_mm, patch.length_mm);
        set(&mut f.width_mm, patch.width_mm);
        set(&mut f.height_mm, patch.height_mm);
        set(&mut f.tracked, patch.tracked);
        set(&mut f.inventory_policy, patch.inventory_policy);
        let mut p = Problems::default();
        validate_variant(&f, &product.options, "", &mut p);
        if !product.options.is_empty() && product.variants.iter().any(|o| o.id != v.id && o.options == f.options) {
            p.push("options", "another variant of this product has the same option values");
        }
        p.into_result().map_err(AppError::Validation)?;
        let rec = self.store.update_variant(v.id, &f, Utc::now()).await;
        self.catalog_changed();
        Ok(rec.map_err(|e| unique_clash(e, ""))?.into())
    }

    pub async fn delete_variant(&self, key: &str) -> AppResult<()> {
        let v = self.variant(key).await?;
        let items: Vec<_> = self.store.resolve_skus(std::slice::from_ref(&v.sku)).await?.into_values().collect();
        self.refuse_deleting_components(&items).await?;
        let done = self.store.delete_variant(v.id).await;
        self.catalog_changed();
        done.map_err(|e| unique_clash(e, ""))
    }

    /// Creates or updates many products at once, all or none. Errors name `products[i]` fields, so that the
    /// caller can map them back to file lines.
    pub async fn import_products(
        &self,
        products: Vec<(ProductFields, Vec<VariantFields>)>,
    ) -> AppResult<ImportSummary> {
        let mut p = Problems::default();
        let mut handles = std::collections::HashMap::new();
        let mut skus = std::collections::HashMap::new();
        for (i, (f, variants)) in products.iter().enumerate() {
            let prefix = format!("products[{i}].");
            validate_product_with_variants(f, variants, &prefix, &mut p);
            if let Some(first) = handles.insert(f.handle.clone(), i) {
                p.push(format!("{prefix}handle"), format!("product {first} has the same handle"));
            }
            for (j, v) in variants.iter().enumerate() {
                if let Some((fi, fj)) = skus.insert(v.sku.clone(), (i, j)) {
                    if fi != i {
                        p.push(
                            format!("{prefix}variants[{j}].sku"),
                            format!("duplicate SKU, also in products[{fi}].variants[{fj}]"),
                        );
                    }
                }
            }
        }
        // A SKU may move only within its own product: an existing SKU under another handle is a clash.
        let all_skus: Vec<String> = skus.keys().cloned().collect();
        let owners = self.store.sku_owners(&all_skus).await?;
        for (i, (f, variants)) in products.iter().enumerate() {
            for (j, v) in variants.iter().enumerate() {
                if owners.get(&v.sku).is_some_and(|handle| *handle != f.handle) {
                    p.push(format!("products[{i}].variants[{j}].sku"), "belongs to a variant of another product");
                }
            }
        }
        p.into_result().map_err(AppError::Validation)?;
        let done = self.store.import_products(&products, Utc::now()).await;
        self.catalog_changed();
        done.map_err(|e| unique_clash(e, ""))
    }
}

//! Catalog rules: what makes a product and its variants valid, checked field by field.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::codes::{validate_currency, validate_handle, Sku};
use crate::Problems;

/// Most option dimensions a product may have (color, size, material), as in most shop systems.
pub const MAX_OPTIONS: usize = 3;
pub const MAX_TAGS: usize = 50;
pub const MAX_IMAGES: usize = 50;
pub const MAX_VARIANTS: usize = 250;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    #[default]
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Active => "active",
            ProductStatus::Archived => "archived",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "draft" => Ok(Self::Draft),
            "active" => Ok(Self::Active),
            "archived" => Ok(Self::Archived),
            _ => Err(format!("unknown status '{s}': use draft, active or archived")),
        }
    }
}

/// What happens when an item's available stock reaches zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InventoryPolicy {
    /// Stop selling.
    #[default]
    Deny,
    /// Keep selling; the oversold quantity is recorded.
    Continue,
    /// Take back-orders, filled first-come first-served when stock arrives.
    Backorder,
}

impl InventoryPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            InventoryPolicy::Deny => "deny",
            InventoryPolicy::Continue => "continue",
            InventoryPolicy::Backorder => "backorder",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "deny" => Ok(Self::Deny),
            "continue" => Ok(Self::Continue),
            "backorder" => Ok(Self::Backorder),
            _ => Err(format!("unknown inventory policy '{s}': use deny, continue or backorder")),
        }
    }
}

/// A product's own fields, as stored and as validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductFields {
    pub handle: String,
    pub title: String,
    pub description: String,
    pub vendor: Option<String>,
    /// A category path such as `Apparel > Shirts > T-Shirts`.
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub images: Vec<String>,
    pub status: ProductStatus,
    /// Option names, such as `["Color", "Size"]`; every variant gives one value per name.
    pub options: Vec<String>,
}

/// A variant's own fields. Each variant sells one item, counted by its SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantFields {
    pub sku: String,
    pub barcode: Option<String>,
    pub options: Vec<String>,
    pub price: Decimal,
    pub compare_at_price: Option<Decimal>,
    pub currency: String,
    pub cost: Option<Decimal>,
    pub weight_grams: Option<i64>,
    pub length_mm: Option<i64>,
    pub width_mm: Option<i64>,
    pub height_mm: Option<i64>,
    pub tracked: bool,
    pub inventory_policy: InventoryPolicy,
}

fn text(p: &mut Problems, field: &str, value: &str, min: usize, max: usize) {
    let n = value.chars().count();
    if n < min || n > max {
        p.push(field, format!("must be {min} to {max} characters"));
    }
}

/// Splits and tidies a category path: `"Apparel>Shirts"` and `"Apparel > Shirts"` are the same category.
pub fn normalize_category(raw: &str) -> Result<String, String> {
    let parts: Vec<&str> = raw.split('>').map(str::trim).collect();
    if parts.iter().any(|s| s.is_empty()) {
        return Err("must be a path of non-empty names separated by '>'".into());
    }
    Ok(parts.join(" > "))
}

/// Checks a product's fields; `prefix` is prepended to field names (`""` or `products[3].`).
pub fn validate_product(f: &ProductFields, prefix: &str, p: &mut Problems) {
    if let Err(e) = validate_handle(&f.handle) {
        p.push(format!("{prefix}handle"), e);
    }
    text(p, &format!("{prefix}title"), f.title.trim(), 1, 255);
    text(p, &format!("{prefix}description"), &f.description, 0, 65_535);
    if let Some(v) = &f.vendor {
        text(p, &format!("{prefix}vendor"), v, 1, 255);
    }
    if let Some(c) = &f.category {
        if let Err(e) = normalize_category(c) {
            p.push(format!("{prefix}category"), e);
        }
    }
    if f.tags.len() > MAX_TAGS {
        p.push(format!("{prefix}tags"), format!("at most {MAX_TAGS} tags"));
    }
    for (i, t) in f.tags.iter().enumerate() {
        text(p, &format!("{prefix}tags[{i}]"), t.trim(), 1, 64);
        if t.contains(',') {
            p.push(format!("{prefix}tags[{i}]"), "must not contain ','");
        }
    }
    if f.images.len() > MAX_IMAGES {
        p.push(format!("{prefix}images"), format!("at most {MAX_IMAGES} images"));
    }
    for (i, u) in f.images.iter().enumerate() {
        let ok = (u.starts_with("https://") || u.starts_with("http://"))
            && u.len() <= 2048
            && !u.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            p.push(format!("{prefix}images[{i}]"), "must be an http(s) URL without spaces");
        }
    }
    if f.options.len() > MAX_OPTIONS {
        p.push(format!("{prefix}options"), format!("at most {MAX_OPTIONS} option names"));
    }
    for (i, o) in f.options.iter().enumerate() {
        text(p, &format!("{prefix}options[{i}]"), o.trim(), 1, 64);
        if f.options[..i].iter().any(|x| x.eq_ignore_ascii_case(o)) {
            p.push(format!("{prefix}options[{i}]"), "is given twice");
        }
    }
}

fn money(p: &mut Problems, field: String, v: Decimal) {
    if v.is_sign_negative() {
        p.push(field, "must not be negative");
    } else if v.scale() > 4 || v > Decimal::from(1_000_000_000i64) {
        p.push(field, "must be at most 1000000000 with at most 4 decimals");
    }
}

fn measure(p: &mut Problems, field: String, v: Option<i64>) {
    if let Some(v) = v {
        if !(0..=100_000_000).contains(&v) {
            p.push(field, "must be between 0 and 100000000");
        }
    }
}

/// Checks a variant's fields against its product's option names.
pub fn validate_variant(v: &VariantFields, option_names: &[String], prefix: &str, p: &mut Problems) {
    if let Err(e) = Sku::parse(&v.sku) {
        p.push(format!("{prefix}sku"), e);
    }
    if let Some(b) = &v.barcode {
        let ok = !b.is_empty() && b.len() <= 64 && b.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            p.push(format!("{prefix}barcode"), "must be 1 to 64 printable characters without spaces");
        }
    }
    if v.options.len() != option_names.len() {
        p.push(
            format!("{prefix}options"),
            format!("must give exactly one value per product option ({} expected)", option_names.len()),
        );
    }
    for (i, o) in v.options.iter().enumerate() {
        text(p, &format!("{prefix}options[{i}]"), o.trim(), 1, 255);
    }
    money(p, format!("{prefix}price"), v.price);
    if let Some(c) = v.compare_at_price {
        money(p, format!("{prefix}compare_at_price"), c);
    }
    if let Some(c) = v.cost {
        money(p, format!("{prefix}cost"), c);
    }
    if let Err(e) = validate_currency(&v.currency) {
        p.push(format!("{prefix}currency"), e);
    }
    measure(p, format!("{prefix}weight_grams"), v.weight_grams);
    measure(p, format!("{prefix}length_mm"), v.length_mm);
    measure(p, format!("{prefix}width_mm"), v.width_mm);
    measure(p, format!("{prefix}height_mm"), v.height_mm);
}

/// Checks a whole product with its variants: each on its own, then SKUs and option combinations for uniqueness
/// within the product (uniqueness across the catalog is the store's job).
pub fn validate_product_with_variants(f: &ProductFields, variants: &[VariantFields], prefix: &str, p: &mut Problems) {
    validate_product(f, prefix, p);
    if variants.len() > MAX_VARIANTS {
        p.push(format!("{prefix}variants"), format!("at most {MAX_VARIANTS} variants"));
    }
    for (i, v) in variants.iter().enumerate() {
        let vp = format!("{prefix}variants[{i}].");
        validate_variant(v, &f.options, &vp, p);
        if variants[..i].iter().any(|o| o.sku.trim() == v.sku.trim()) {
            p.push(format!("{vp}sku"), format!("duplicate SKU '{}'", v.sku.trim()));
        }
        if !f.options.is_empty() && variants[..i].iter().any(|o| o.options == v.options) {
            p.push(format!("{vp}options"), "another variant has the same option values");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product() -> ProductFields {
        ProductFields {
            handle: "tee".into(),
            title: "Tee".into(),
            description: String::new(),
            vendor: None,
            category: Some("Apparel>Shirts".into()),
            tags: vec!["summer".into()],
            images: vec!["https://img.example/tee.jpg".into()],
            status: ProductStatus::Active,
            options: vec!["Color".into(), "Size".into()],
        }
    }

    fn variant(sku: &str, color: &str) -> VariantFields {
        VariantFields {
            sku: sku.into(),
            barcode: None,
            options: vec![color.into(), "M".into()],
            price: Decimal::new(1999, 2),
            compare_at_price: None,
            currency: "EUR".into(),
            cost: Some(Decimal::new(700, 2)),
            weight_grams: Some(180),
            length_mm: None,
            width_mm: None,
            height_mm: None,
            tracked: true,
            inventory_policy: InventoryPolicy::Deny,
        }
    }

    #[test]
    fn a_good_product_passes() {
        let mut p = Problems::default();
        validate_product_with_variants(&product(), &[variant("A", "Red"), variant("B", "Blue")], "", &mut p);
        assert!(p.is_empty(), "{:?}", p.0);
        assert_eq!(normalize_category("Apparel>Shirts").unwrap(), "Apparel > Shirts");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut f = product();
        f.handle = "Bad Handle".into();
        f.images = vec!["ftp://x".into()];
        f.options.push("color".into());
        let mut v = variant("A", "Red");
        v.price = Decimal::new(-1, 0);
        v.currency = "eur".into();
        let mut p = Problems::default();
        validate_product_with_variants(&f, &[v, variant("A", "Blue")], "", &mut p);
        let fields: Vec<_> = p.0.iter().map(|e| e.field.as_str()).collect();
        for want in [
            "handle",
            "images[0]",
            "options[2]",
            "variants[0].price",
            "variants[0].currency",
            "variants[0].options",
            "variants[1].sku",
        ] {
            assert!(fields.contains(&want), "{want} missing from {fields:?}");
        }
    }
}

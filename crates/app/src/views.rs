//! What the use cases return: plain, serializable views with natural keys (SKU, location path), shared by the
//! HTTP API and the CLI.

use chrono::{DateTime, Utc};
use domain::catalog::{InventoryPolicy, ProductStatus};
use domain::location::LocationKind;
use domain::stock::{Balance, Reason, StockState};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::store::{Address, LocationRecord, MovementRecord, ProductRecord, VariantRecord};

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProductView {
    pub id: i64,
    pub handle: String,
    pub title: String,
    pub description: String,
    pub vendor: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub images: Vec<String>,
    pub status: ProductStatus,
    pub options: Vec<String>,
    pub variants: Vec<VariantView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariantView {
    pub id: i64,
    pub product_id: i64,
    pub sku: String,
    pub barcode: Option<String>,
    pub options: Vec<String>,
    /// Decimal as a string, in `currency`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "19.99"))]
    pub price: Decimal,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub compare_at_price: Option<Decimal>,
    pub currency: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub cost: Option<Decimal>,
    pub weight_grams: Option<i64>,
    pub length_mm: Option<i64>,
    pub width_mm: Option<i64>,
    pub height_mm: Option<i64>,
    pub tracked: bool,
    pub inventory_policy: InventoryPolicy,
    /// A bundle's components (`PUT /v1/variants/{key}/components`); absent for an ordinary variant. Shown when one
    /// variant is read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<crate::bundles::ComponentView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<VariantRecord> for VariantView {
    fn from(r: VariantRecord) -> Self {
        let f = r.fields;
        VariantView {
            id: r.id,
            product_id: r.product_id,
            sku: f.sku,
            barcode: f.barcode,
            options: f.options,
            price: f.price,
            compare_at_price: f.compare_at_price,
            currency: f.currency,
            cost: f.cost,
            weight_grams: f.weight_grams,
            length_mm: f.length_mm,
            width_mm: f.width_mm,
            height_mm: f.height_mm,
            tracked: f.tracked,
            inventory_policy: f.inventory_policy,
            components: vec![],
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl From<ProductRecord> for ProductView {
    fn from(r: ProductRecord) -> Self {
        let f = r.fields;
        ProductView {
            id: r.id,
            handle: f.handle,
            title: f.title,
            description: f.description,
            vendor: f.vendor,
            category: f.category,
            tags: f.tags,
            images: f.images,
            status: f.status,
            options: f.options,
            variants: r.variants.into_iter().map(Into::into).collect(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LocationView {
    pub id: i64,
    /// The full path, which is the location's natural key (`WH1/HALL-1/SHELF-5/RACK-2`).
    pub path: String,
    pub code: String,
    pub parent: Option<String>,
    pub kind: LocationKind,
    pub virtual_kind: Option<domain::stock::VirtualKind>,
    pub name: String,
    pub address: Option<Address>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub pick_sequence: Option<i64>,
    pub sellable: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<LocationRecord> for LocationView {
    fn from(r: LocationRecord) -> Self {
        let parent = r.path.rsplit_once('/').map(|(p, _)| p.to_string());
        LocationView {
            id: r.id,
            path: r.path,
            code: r.code,
            parent,
            kind: r.kind,
            virtual_kind: r.virtual_kind,
            name: r.fields.name,
            address: r.fields.address,
            latitude: r.fields.latitude,
            longitude: r.fields.longitude,
            pick_sequence: r.fields.pick_sequence,
            sellable: r.fields.sellable,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Every state of a balance, with on_hand and unavailable spelled out.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quantities {
    pub on_hand: i64,
    pub available: i64,
    pub committed: i64,
    pub reserved: i64,
    /// damaged + quality_control + safety_stock.
    pub unavailable: i64,
    pub damaged: i64,
    pub quality_control: i64,
    pub safety_stock: i64,
    /// On open purchase orders or transfers; not part of on_hand.
    pub incoming: i64,
}

impl From<Balance> for Quantities {
    fn from(b: Balance) -> Self {
        Quantities {
            on_hand: b.on_hand(),
            available: b.available,
            committed: b.committed,
            reserved: b.reserved,
            unavailable: b.unavailable(),
            damaged: b.damaged,
            quality_control: b.quality_control,
            safety_stock: b.safety_stock,
            incoming: b.incoming,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BinLevel {
    pub location: String,
    #[serde(flatten)]
    pub quantities: Quantities,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WarehouseLevel {
    pub warehouse: String,
    pub total: Quantities,
    pub bins: Vec<BinLevel>,
}

/// One item's stock: per bin, rolled up per warehouse, and in total.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemLevels {
    pub sku: String,
    pub total: Quantities,
    pub warehouses: Vec<WarehouseLevel>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovementSide {
    pub location: String,
    /// Absent for virtual locations (supplier, customer, adjustment, scrap, transit), which hold no states.
    pub state: Option<StockState>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MovementView {
    pub id: i64,
    pub sku: String,
    pub quantity: i64,
    pub from: MovementSide,
    pub to: MovementSide,
    pub reason: Reason,
    pub reference: Option<String>,
    pub note: Option<String>,
    /// Who made the change.
    pub actor: String,
    pub request_id: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

impl From<MovementRecord> for MovementView {
    fn from(r: MovementRecord) -> Self {
        let m = r.movement;
        MovementView {
            id: r.id,
            sku: r.sku,
            quantity: m.quantity,
            from: MovementSide { location: r.from_path, state: m.from_state },
            to: MovementSide { location: r.to_path, state: m.to_state },
            reason: m.reason,
            reference: m.reference,
            note: m.note,
            actor: m.actor,
            request_id: m.request_id,
            recorded_at: m.recorded_at,
        }
    }
}

/// The levels of one (SKU, bin) after a command.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LevelAfter {
    pub sku: String,
    pub location: String,
    #[serde(flatten)]
    pub quantities: Quantities,
}

/// What an adjustment or move booked: its movements and the levels it left.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerReceipt {
    pub movements: Vec<MovementView>,
    pub levels: Vec<LevelAfter>,
}

/// One difference between a stored balance and the ledger.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Drift {
    pub sku: String,
    pub location: String,
    pub stored: Balance,
    pub ledger: Balance,
}

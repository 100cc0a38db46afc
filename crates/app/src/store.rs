//! The store traits: what the use cases need from a database, spoken in use cases rather than table CRUD.
//!
//! A backend (SQLite, PostgreSQL) implements [`Store`] and passes the testkit's conformance suite. Every method
//! that writes is one transaction; the ledger's [`LedgerStore::apply_batch`] is the only way quantities change.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::catalog::{ProductFields, VariantFields};
use domain::location::LocationKind;
use domain::stock::{Balance, BalanceKey, Balances, ItemId, LocationId, Reason, StockState, VirtualKind};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

pub type StoreResult<T> = Result<T, StoreError>;

/// A product as stored, with its variants in position order.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRecord {
    pub id: i64,
    pub fields: ProductFields,
    pub variants: Vec<VariantRecord>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariantRecord {
    pub id: i64,
    pub product_id: i64,
    pub item_id: ItemId,
    pub fields: VariantFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters for listing products; all given filters must match.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    pub status: Option<domain::catalog::ProductStatus>,
    pub vendor: Option<String>,
    /// Matches the category and every category below it.
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Case-insensitive substring of the title or handle.
    pub q: Option<String>,
    pub sku: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct VariantFilter {
    pub product_id: Option<i64>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
}

/// How a product import went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub products_created: usize,
    pub products_updated: usize,
    pub variants_created: usize,
    pub variants_updated: usize,
}

/// Address of a warehouse.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default)]
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub postal_code: String,
    #[serde(default)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default)]
    pub country: String,
}

/// A location's editable fields.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationFields {
    pub name: String,
    pub address: Option<Address>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub pick_sequence: Option<i64>,
    pub sellable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocationRecord {
    pub id: LocationId,
    pub parent_id: Option<LocationId>,
    pub path: String,
    pub code: String,
    pub kind: LocationKind,
    pub virtual_kind: Option<VirtualKind>,
    pub fields: LocationFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct LocationFilter {
    pub kind: Option<LocationKind>,
    /// The location at this path and everything below it.
    pub within: Option<String>,
    pub parent_id: Option<LocationId>,
}

/// A movement about to be written, with everything but its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMovement {
    pub item_id: ItemId,
    pub quantity: i64,
    pub from_location_id: LocationId,
    pub from_state: Option<StockState>,
    pub to_location_id: LocationId,
    pub to_state: Option<StockState>,
    pub reason: Reason,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub actor: String,
    pub request_id: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// A movement as read back, with the natural keys a reader wants.
#[derive(Debug, Clone, PartialEq)]
pub struct MovementRecord {
    pub id: i64,
    pub sku: String,
    pub from_path: String,
    pub to_path: String,
    pub movement: NewMovement,
}

#[derive(Debug, Clone, Default)]
pub struct MovementFilter {
    pub item_id: Option<ItemId>,
    /// Movements into or out of this location or anything below it.
    pub within: Option<String>,
    pub reason: Option<Reason>,
}

/// One stored balance with the natural keys of its item and location.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelRow {
    pub item_id: ItemId,
    pub sku: String,
    pub location_id: LocationId,
    pub path: String,
    pub balance: Balance,
}

#[derive(Debug, Clone, Default)]
pub struct LevelFilter {
    pub item_id: Option<ItemId>,
    /// Bins at or below this path.
    pub within: Option<String>,
}

/// An event written to the outbox in the same transaction as the change it announces.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub topic: String,
    pub payload: serde_json::Value,
}

/// Decides a batch inside the store's transaction: given the current balances of the batch's keys (absent keys
/// are zero) and the transaction's time, it updates the balances in place and returns the movements (stamped with
/// that time) and events to write. The store may call it again after a retryable conflict, with freshly loaded
/// balances.
///
/// The store picks the time inside the transaction and never earlier than the newest movement, so that the ledger's
/// times never go backwards: an `as_of` read, once answered, keeps its answer.
pub type Decide<'a> = dyn FnMut(&mut Balances, DateTime<Utc>) -> (Vec<NewMovement>, Vec<OutboxEvent>) + Send + 'a;

/// What [`IdempotencyStore::begin_request`] found for a key.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyState {
    /// First use: the caller runs the request and then completes or aborts the key.
    New,
    /// Seen before with the same request: replay this response.
    Completed { status: u16, body: Vec<u8>, content_type: String },
    /// Seen before with a different request body.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Creates a product with its variants (and an item per variant). Duplicate handle or SKU: `Conflict`.
    async fn create_product(
        &self,
        product: &ProductFields,
        variants: &[VariantFields],
        now: DateTime<Utc>,
    ) -> StoreResult<ProductRecord>;
    async fn update_product(&self, id: i64, product: &ProductFields, now: DateTime<Utc>) -> StoreResult<ProductRecord>;
    /// Deletes a product, its variants and their items; `Conflict { constraint: "movements.item_id" }` when any of
    /// its items has ledger history.
    async fn delete_product(&self, id: i64) -> StoreResult<()>;
    async fn get_product(&self, id: i64) -> StoreResult<Option<ProductRecord>>;
    async fn get_product_by_handle(&self, handle: &str) -> StoreResult<Option<ProductRecord>>;
    async fn list_products(
        &self,
        filter: &ProductFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<ProductRecord>>;
    async fn create_variant(
        &self,
        product_id: i64,
        v: &VariantFields,
        now: DateTime<Utc>,
    ) -> StoreResult<VariantRecord>;
    async fn update_variant(&self, id: i64, v: &VariantFields, now: DateTime<Utc>) -> StoreResult<VariantRecord>;
    async fn delete_variant(&self, id: i64) -> StoreResult<()>;
    async fn get_variant(&self, id: i64) -> StoreResult<Option<VariantRecord>>;
    async fn list_variants(
        &self,
        filter: &VariantFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<VariantRecord>>;
    /// Creates or updates (by handle, and by SKU within it) every product of an import, in one transaction.
    async fn import_products(
        &self,
        products: &[(ProductFields, Vec<VariantFields>)],
        now: DateTime<Utc>,
    ) -> StoreResult<ImportSummary>;
    /// Item ids of the given SKUs; unknown SKUs are simply absent from the map.
    async fn resolve_skus(&self, skus: &[String]) -> StoreResult<HashMap<String, ItemId>>;
    /// The handle of the product each given SKU's variant belongs to; unknown SKUs are absent from the map.
    async fn sku_owners(&self, skus: &[String]) -> StoreResult<HashMap<String, String>>;
}

#[async_trait]
pub trait LocationStore: Send + Sync {
    /// Creates a location under `parent_id`; a duplicate path is `Conflict { constraint: "locations.path" }`.
    async fn create_location(
        &self,
        parent_id: Option<LocationId>,
        path: &str,
        kind: LocationKind,
        fields: &LocationFields,
        now: DateTime<Utc>,
    ) -> StoreResult<LocationRecord>;
    async fn update_location(
        &self,
        id: LocationId,
        fields: &LocationFields,
        now: DateTime<Utc>,
    ) -> StoreResult<LocationRecord>;
    /// Deletes a location without children or ledger history; otherwise `Conflict` naming which.
    async fn delete_location(&self, id: LocationId) -> StoreResult<()>;
    async fn get_location(&self, path: &str) -> StoreResult<Option<LocationRecord>>;
    async fn list_locations(
        &self,
        filter: &LocationFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<LocationRecord>>;
    /// The locations at the given paths; unknown paths are absent from the map.
    async fn resolve_paths(&self, paths: &[String]) -> StoreResult<HashMap<String, LocationRecord>>;
    /// The built-in virtual locations.
    async fn virtual_locations(&self) -> StoreResult<HashMap<VirtualKind, LocationId>>;
}

#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// The one write path. In one transaction: load the balances of `keys`, call `decide`, write the returned
    /// movements and events and every balance `decide` changed, commit. Returns the new movement ids in order.
    /// The database re-checks that no state goes negative; a violation fails the whole batch.
    async fn apply_batch(&self, keys: &[BalanceKey], decide: &mut Decide<'_>) -> StoreResult<Vec<i64>>;
    /// Stored balances with any non-zero state, for up to `item_limit` items after `after_item` in item order.
    async fn levels(
        &self,
        filter: &LevelFilter,
        after_item: Option<ItemId>,
        item_limit: u32,
    ) -> StoreResult<Vec<LevelRow>>;
    /// The same, recomputed from the movements recorded at or before `as_of`.
    async fn levels_as_of(
        &self,
        filter: &LevelFilter,
        as_of: DateTime<Utc>,
        after_item: Option<ItemId>,
        item_limit: u32,
    ) -> StoreResult<Vec<LevelRow>>;
    async fn movements(
        &self,
        filter: &MovementFilter,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<MovementRecord>>;
    /// Every stored balance and every balance folded from the whole ledger, read in one consistent snapshot.
    async fn balances_and_ledger(&self) -> StoreResult<(Vec<LevelRow>, Vec<LevelRow>)>;
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` within `scope` for a request whose body hashes to `request_hash`, or reports what it found.
    async fn begin_request(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState>;
    async fn complete_request(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
        content_type: &str,
    ) -> StoreResult<()>;
    /// Releases a claimed key whose request failed in a way worth retrying.
    async fn abort_request(&self, scope: &str, key: &str) -> StoreResult<()>;
}

/// Everything a backend implements.
pub trait Store: CatalogStore + LocationStore + LedgerStore + IdempotencyStore + 'static {}

impl<T: CatalogStore + LocationStore + LedgerStore + IdempotencyStore + 'static> Store for T {}

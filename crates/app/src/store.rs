//! The store traits: what the use cases need from a database, spoken in use cases rather than table CRUD.
//!
//! A backend (SQLite, PostgreSQL) implements [`Store`] and passes the testkit's conformance suite. Every method
//! that writes is one transaction; the ledger's [`LedgerStore::apply_batch`] is the only way quantities change.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::catalog::{ProductFields, VariantFields};
use domain::location::LocationKind;
use domain::order::{Order, OrderStatus, PaymentTerms};
use domain::orders::Hold;
use domain::stock::{Balance, Balances, ItemId, LocationId, Reason, StockState, VirtualKind};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

mod bundles;
pub use bundles::{bundle_graph, BundleEdge, BundleStore};

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

/// A variant found by its SKU, as orders and holds resolve their lines.
#[derive(Debug, Clone, PartialEq)]
pub struct SkuVariant {
    pub variant: VariantRecord,
    /// The variant is made of components: its lines expand into theirs.
    pub is_bundle: bool,
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
    /// One search box: the SKU (exact or prefix, case-insensitive), the barcode (exact) or the product's title
    /// (case-insensitive substring). Ranked: exact SKU or barcode first, then SKU prefixes, then titles; ties by id.
    pub q: Option<String>,
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
    /// Recorded at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Recorded strictly before this instant.
    pub to: Option<DateTime<Utc>>,
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

pub type OrderId = i64;
pub type HoldId = i64;
pub type CustomerId = i64;

/// An order as stored: header columns for lookups, and the domain aggregate (lines, promises, what is owed).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    /// 0 until the store inserts it.
    pub id: OrderId,
    /// Where the order came from: a channel's code, or `phone`, `email`, `staff`.
    pub source: String,
    /// The source's own order number; unique per source, which makes inbound orders idempotent.
    pub external_number: Option<String>,
    /// Fingerprint of the placing request, to tell a retry from a different order under the same number.
    pub request_hash: String,
    pub customer_id: Option<CustomerId>,
    pub currency: String,
    pub payment_terms: PaymentTerms,
    pub notes: Option<String>,
    pub order: Order,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A hold as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRecord {
    /// 0 until the store inserts it.
    pub id: HoldId,
    pub hold: Hold,
    /// The SKU of each line, in line order, for readers.
    pub skus: Vec<String>,
    /// The line quantities asked for, in line order.
    pub quantities: Vec<i64>,
    pub reference: Option<String>,
    /// The order the hold was converted into.
    pub order_id: Option<OrderId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerFields {
    pub name: String,
    /// Lowercased.
    pub email: Option<String>,
    /// Digits and a leading `+` only.
    pub phone: Option<String>,
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRecord {
    pub id: CustomerId,
    pub fields: CustomerFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub source: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub status: Option<OrderStatus>,
    /// Only orders that still owe units (backordered or oversold).
    pub backordered: bool,
    /// Newest first (descending id; the cursor then pages towards older orders) instead of oldest first.
    pub newest_first: bool,
}

/// A sellable bin with the warehouse it belongs to, for allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SellableBin {
    pub bin: LocationId,
    pub warehouse: LocationId,
    pub pick_sequence: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PickListStatus {
    /// Being picked.
    Open,
    /// Everything on it was picked.
    Picked,
    /// Abandoned; its orders may go on another pick list.
    Cancelled,
}

impl PickListStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PickListStatus::Open => "open",
            PickListStatus::Picked => "picked",
            PickListStatus::Cancelled => "cancelled",
        }
    }
}

/// One stop of a pick list: take `quantity` of a SKU from a bin for an order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PickListLine {
    pub order_id: OrderId,
    /// The order line's index.
    pub line: usize,
    pub sku: String,
    pub bin: String,
    pub pick_sequence: Option<i64>,
    pub quantity: i64,
    /// Units the picker confirmed.
    #[serde(default)]
    pub picked: i64,
}

/// A pick list as stored: one warehouse's lines of several orders, in walking order.
#[derive(Debug, Clone, PartialEq)]
pub struct PickListRecord {
    /// 0 until the store inserts it.
    pub id: i64,
    pub warehouse_id: LocationId,
    pub warehouse: String,
    pub status: PickListStatus,
    pub lines: Vec<PickListLine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a batch reads, named before its transaction starts.
#[derive(Debug, Clone, Default)]
pub struct BatchScope {
    /// Items whose balances the batch reads, in every location.
    pub items: Vec<ItemId>,
    pub orders: Vec<OrderId>,
    pub holds: Vec<HoldId>,
    /// Also load the active holds whose expiry has come at the transaction's time, and their items' balances, so
    /// that they are ended before anything else is decided.
    pub due_holds: bool,
    /// (source, external number) of the orders the batch places: the store says which are taken already, so that
    /// a retried order is found inside the batch rather than by a read per request before it.
    pub order_numbers: Vec<(String, String)>,
    /// Purchasing documents (purchase orders, transfers, counts) the batch may change, locked for it.
    pub documents: Vec<DocumentId>,
}

/// What a batch sees inside its transaction.
#[derive(Debug, Clone, Default)]
pub struct BatchState {
    /// The transaction's time: never before the newest movement, so that the ledger's times follow commit order.
    pub now: DateTime<Utc>,
    /// The items whose balances are loaded, sorted: the scope's, and those of the due holds when asked for.
    pub items: Vec<ItemId>,
    /// Every stored balance of those items (absent: zero).
    pub balances: Balances,
    /// The scope's orders, plus every order that owes units (backordered or oversold) of a scope item.
    pub orders: BTreeMap<OrderId, OrderRecord>,
    /// The ids of the orders that owe units of a scope item, oldest placement first: the backorder queue.
    pub backorder_queue: Vec<OrderId>,
    /// The scope's holds, plus the due ones when asked for.
    pub holds: BTreeMap<HoldId, HoldRecord>,
    /// Those of the scope's order numbers that stored orders have already.
    pub taken_numbers: HashSet<(String, String)>,
    /// The scope's documents; one `decide` changes is written back, refused if another writer got there first.
    pub documents: BTreeMap<DocumentId, DocumentRecord>,
}

/// What a batch writes. Changed orders and holds are written from the state, by id.
#[derive(Debug, Clone, Default)]
pub struct BatchWrites {
    pub movements: Vec<NewMovement>,
    pub events: Vec<OutboxEvent>,
    pub new_orders: Vec<OrderRecord>,
    pub changed_orders: Vec<OrderId>,
    pub new_holds: Vec<HoldRecord>,
    pub changed_holds: Vec<HoldId>,
    /// Audit entries of commands that succeeded in the batch, written in its transaction.
    pub audit: Vec<BatchAudit>,
}

/// An audit entry written with the change it records, so that the request waits for one commit, not two.
#[derive(Debug, Clone)]
pub struct BatchAudit {
    pub entry: crate::trust_store::NewAuditEntry,
    /// What the entry's `entity_id` becomes once the batch's inserts have their ids.
    pub subject: AuditSubject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditSubject {
    /// `entity_id` as the entry has it.
    AsGiven,
    /// The id of the batch's `new_orders[i]`.
    NewOrder(usize),
    /// The id of the batch's `new_holds[i]`.
    NewHold(usize),
}

/// The batch's audit entries with the ids of the orders and holds it inserted filled in: for the stores to write
/// after those inserts.
pub fn resolve_batch_audit(
    audit: &[BatchAudit],
    orders: &[OrderId],
    holds: &[HoldId],
) -> Vec<crate::trust_store::NewAuditEntry> {
    audit
        .iter()
        .map(|a| {
            let mut entry = a.entry.clone();
            match a.subject {
                AuditSubject::AsGiven => {}
                AuditSubject::NewOrder(i) => entry.entity_id = orders.get(i).map(|id| id.to_string()),
                AuditSubject::NewHold(i) => entry.entity_id = holds.get(i).map(|id| id.to_string()),
            }
            entry
        })
        .collect()
}

/// The ids a batch's inserts got, in the order of the writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchIds {
    pub movements: Vec<i64>,
    pub orders: Vec<OrderId>,
    pub holds: Vec<HoldId>,
}

/// Decides a batch inside the store's transaction: it may change `state` (balances, orders, holds) and returns what
/// to write. The store writes every balance that changed, the changed orders and holds, and the new rows. The store
/// may call it again after a retryable conflict, with freshly loaded state.
pub type Decide<'a> = dyn FnMut(&mut BatchState) -> BatchWrites + Send + 'a;

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
    /// The variants of the given SKUs, and whether each is a bundle, in one read; unknown SKUs are absent from the
    /// map.
    async fn variants_by_skus(&self, skus: &[String]) -> StoreResult<HashMap<String, SkuVariant>>;
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
    /// The one write path. In one transaction: load the [`BatchState`] of `scope`, call `decide`, write what it
    /// returns and every balance, order and hold it changed, commit. The database re-checks that no state goes
    /// negative and that (source, external number) stays unique; a violation fails the whole batch.
    async fn apply_batch(&self, scope: &BatchScope, decide: &mut Decide<'_>) -> StoreResult<BatchIds>;
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

/// Customers, and the reads of orders and holds (their writes go through [`LedgerStore::apply_batch`]).
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// A duplicate email or phone is `Conflict { constraint: "customers.email" | "customers.phone" }`.
    async fn create_customer(&self, fields: &CustomerFields, now: DateTime<Utc>) -> StoreResult<CustomerRecord>;
    async fn update_customer(
        &self,
        id: CustomerId,
        fields: &CustomerFields,
        now: DateTime<Utc>,
    ) -> StoreResult<CustomerRecord>;
    async fn get_customer(&self, id: CustomerId) -> StoreResult<Option<CustomerRecord>>;
    /// The customer with this (normalized) email, else the one with this phone.
    async fn find_customer(&self, email: Option<&str>, phone: Option<&str>) -> StoreResult<Option<CustomerRecord>>;
    /// `q`: case-insensitive substring of name or email, or a phone prefix.
    async fn list_customers(&self, q: Option<&str>, after: Option<i64>, limit: u32)
        -> StoreResult<Vec<CustomerRecord>>;
    async fn get_order(&self, id: OrderId) -> StoreResult<Option<OrderRecord>>;
    async fn find_order(&self, source: &str, external_number: &str) -> StoreResult<Option<OrderRecord>>;
    async fn list_orders(&self, filter: &OrderFilter, after: Option<i64>, limit: u32) -> StoreResult<Vec<OrderRecord>>;
    async fn get_hold(&self, id: HoldId) -> StoreResult<Option<HoldRecord>>;
    /// Active holds whose expiry is at or before `now`: they no longer count, whatever the stored balances say.
    async fn due_holds(&self, now: DateTime<Utc>) -> StoreResult<Vec<HoldRecord>>;
    /// Every bin that may be sold from (sellable, and no unsellable location above it), with its warehouse.
    async fn sellable_bins(&self) -> StoreResult<Vec<SellableBin>>;
    /// Inserts a pick list (its `id` is ignored) and returns it with its id.
    async fn create_pick_list(&self, list: &PickListRecord) -> StoreResult<PickListRecord>;
    /// Writes a pick list's status and lines; `NotFound` for an unknown id.
    async fn update_pick_list(&self, list: &PickListRecord) -> StoreResult<PickListRecord>;
    async fn get_pick_list(&self, id: i64) -> StoreResult<Option<PickListRecord>>;
    async fn list_pick_lists(
        &self,
        warehouse_id: Option<LocationId>,
        status: Option<PickListStatus>,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<PickListRecord>>;
    /// Orders that have a line on an open pick list of this warehouse: they are being picked already.
    async fn orders_being_picked(&self, warehouse_id: LocationId) -> StoreResult<Vec<OrderId>>;
}

pub use crate::channel_store::ChannelStore;
pub use crate::purchasing_store::{DocKind, DocumentFilter, DocumentId, DocumentRecord, PurchasingStore};
pub use crate::report_store::ReportStore;
pub use crate::valuation_store::ValuationStore;

/// Everything a backend implements.
pub trait Store:
    CatalogStore
    + LocationStore
    + LedgerStore
    + IdempotencyStore
    + OrderStore
    + BundleStore
    + ChannelStore
    + crate::webhook_store::WebhookStore
    + PurchasingStore
    + crate::trust_store::TrustStore
    + ValuationStore
    + ReportStore
    + 'static
{
}

impl<
        T: CatalogStore
            + LocationStore
            + LedgerStore
            + IdempotencyStore
            + OrderStore
            + BundleStore
            + ChannelStore
            + crate::webhook_store::WebhookStore
            + PurchasingStore
            + crate::trust_store::TrustStore
            + ValuationStore
            + ReportStore
            + 'static,
    > Store for T
{
}

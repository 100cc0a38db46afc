//! Purchasing use cases: suppliers, purchase orders and receiving, transfers between warehouses, cycle counts,
//! quality inspections, the shrinkage report, and the incoming quantities and promise dates derived from open
//! documents.
//!
//! Steps that move stock (a receipt, a shipment, an arrival, a count's approval, an inspection) go through the
//! write path; steps that only change a document (create, order, cancel, close, a counted quantity) are one
//! conditional document write with their outbox events.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use domain::location::LocationKind;
use domain::purchasing::{
    abc_classes, count_due, AbcClass, Count, CountLine, CountScope, CountStatus, PoLine, PoStatus, PurchaseOrder,
    PurchasingError, ReceiptLine, ReceiveLine, Transfer, TransferArrival, TransferLine, TransferStatus,
    MAX_DOCUMENT_LINES, MAX_TOLERANCE_PERCENT,
};
use domain::stock::{
    AdjustLine, Change, ItemId, LedgerOp, LocationId, MoveLine, Reason, StockState, VirtualKind, MAX_LINE_QUANTITY,
};
use domain::{FieldError, Problems};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, StoreError};
use crate::ledger::{
    Actor, ArrivalLine, Command, DocAction, DocumentCommand, LedgerCommand, LineMeta, Rejection, SubmitError, Virtuals,
};
use crate::page::{Page, PageRequest};
use crate::store::{
    DocKind, DocumentFilter, DocumentRecord, LevelFilter, LocationRecord, MovementFilter, OutboxEvent, VariantFilter,
};
use crate::App;

/// Longest free text (names, notes, references).
const MAX_TEXT_LEN: usize = 500;

// ---------------------------------------------------------------------------------------------------------------
// Suppliers
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// What a supplier sells us of one SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SupplierItem {
    pub sku: String,
    /// The supplier's own SKU, as it appears on their documents.
    #[serde(default)]
    pub supplier_sku: Option<String>,
    /// In the supplier's currency.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_cost: Decimal,
    /// 1 when absent.
    #[serde(default = "one")]
    pub min_order_quantity: i64,
    /// Ordered quantities must be a multiple of it; 1 when absent.
    #[serde(default = "one")]
    pub pack_size: i64,
    /// Overrides the supplier's default lead time for this SKU.
    #[serde(default)]
    pub lead_time_days: Option<u32>,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSupplier {
    pub name: String,
    #[serde(default)]
    pub contact: Contact,
    /// ISO 4217 code of the supplier's prices.
    pub currency: String,
    #[serde(default)]
    pub lead_time_days: u32,
    #[serde(default)]
    pub items: Vec<SupplierItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SupplierDoc {
    name: String,
    contact: Contact,
    currency: String,
    lead_time_days: u32,
    items: Vec<SupplierItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SupplierView {
    pub id: i64,
    pub name: String,
    pub contact: Contact,
    pub currency: String,
    pub lead_time_days: u32,
    pub items: Vec<SupplierItem>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SupplierItemsRequest {
    pub items: Vec<SupplierItem>,
}

// ---------------------------------------------------------------------------------------------------------------
// Purchase orders
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPurchaseOrder {
    pub supplier_id: i64,
    /// Path of the receiving warehouse.
    pub warehouse: String,
    pub lines: Vec<NewPoLine>,
    /// Over-receipt allowed per line, in percent (0 when absent).
    #[serde(default)]
    pub tolerance_percent: u32,
    #[serde(default)]
    pub notes: Option<String>,
    /// Send it at once (status `ordered`) instead of keeping a draft.
    #[serde(default)]
    pub order: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPoLine {
    pub sku: String,
    pub quantity: i64,
    /// The supplier item's unit cost when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub unit_cost: Option<Decimal>,
    /// Today plus the lead time when absent.
    #[serde(default)]
    pub expected_date: Option<NaiveDate>,
}

/// A purchase order step that changes no stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoStep {
    /// Send a draft to the supplier.
    Order,
    /// Cancel an order nothing was received on.
    Cancel,
    /// Close an order short.
    Close,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoLineView {
    pub line: usize,
    pub sku: String,
    pub quantity: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_cost: Decimal,
    pub expected_date: Option<NaiveDate>,
    pub received: i64,
    /// Given up by closing or cancelling.
    pub closed: i64,
    /// Still expected: shows as incoming while the order is open.
    pub open: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptView {
    pub number: usize,
    pub received_at: DateTime<Utc>,
    pub reference: Option<String>,
    /// The reference on this receipt's movements.
    pub movement_reference: String,
    pub lines: Vec<ReceiptLine>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PurchaseOrderView {
    pub id: i64,
    pub supplier_id: i64,
    pub warehouse: String,
    pub currency: String,
    pub status: PoStatus,
    pub tolerance_percent: u32,
    pub notes: Option<String>,
    pub lines: Vec<PoLineView>,
    pub receipts: Vec<ReceiptView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    pub lines: Vec<ReceiptLineRequest>,
    /// The delivery note number or similar.
    #[serde(default)]
    pub reference: Option<String>,
}

/// Name the order line by `line` (its index) or by `sku`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptLineRequest {
    #[serde(default)]
    pub line: Option<usize>,
    #[serde(default)]
    pub sku: Option<String>,
    pub quantity: i64,
    /// Path of a bin in the order's warehouse; the putaway suggestion when absent.
    #[serde(default)]
    pub location: Option<String>,
    /// `available` (default) or `quality_control`.
    #[serde(default)]
    pub state: Option<StockState>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PutawayView {
    pub sku: String,
    pub warehouse: String,
    /// The suggested bin, or none when the warehouse has no bin.
    pub location: Option<String>,
    /// `default_bin` (the SKU's default bin in the warehouse), `holds_item` (a bin that already holds the SKU) or
    /// `empty_bin` (a bin holding nothing, preferring those that are no SKU's default).
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DefaultBinRequest {
    pub sku: String,
    /// Path of a bin; it becomes the default in the warehouse that contains it.
    pub location: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DefaultBinView {
    pub sku: String,
    pub warehouse: String,
    pub location: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Transfers
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    /// Path of the sending warehouse.
    pub from_warehouse: String,
    /// Path of the receiving warehouse; must differ.
    pub to_warehouse: String,
    #[serde(default)]
    pub expected_date: Option<NaiveDate>,
    pub lines: Vec<NewTransferLine>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTransferLine {
    pub sku: String,
    pub quantity: i64,
    /// Path of the bin in the sending warehouse the units are taken from (available stock).
    pub from_location: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferLineView {
    pub line: usize,
    pub sku: String,
    pub quantity: i64,
    pub from_location: String,
    pub shipped: i64,
    pub received: i64,
    pub damaged: i64,
    pub lost: i64,
    /// Shipped and not yet accounted for: incoming at the destination.
    pub in_transit: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferView {
    pub id: i64,
    pub from_warehouse: String,
    pub to_warehouse: String,
    pub status: TransferStatus,
    pub expected_date: Option<NaiveDate>,
    pub lines: Vec<TransferLineView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransferReceiptRequest {
    pub lines: Vec<TransferReceiptLine>,
}

/// Name the transfer line by `line` or by `sku`; at least one of the quantities must be positive.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TransferReceiptLine {
    #[serde(default)]
    pub line: Option<usize>,
    #[serde(default)]
    pub sku: Option<String>,
    /// Units arrived sound (booked available).
    #[serde(default)]
    pub received: i64,
    /// Units arrived damaged (booked damaged).
    #[serde(default)]
    pub damaged: i64,
    /// Units lost on the way (written off from transit).
    #[serde(default)]
    pub lost: i64,
    /// Path of a bin in the receiving warehouse; the putaway suggestion when absent.
    #[serde(default)]
    pub location: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Counts
// ---------------------------------------------------------------------------------------------------------------

/// What a count covers: a location subtree, a list of SKUs (optionally within `location`), or the SKUs due by
/// ABC class (optionally within `location`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCount {
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub skus: Option<Vec<String>>,
    #[serde(default)]
    pub abc: Option<AbcSettings>,
    /// Hide the expected quantities from readers until approval.
    #[serde(default)]
    pub blind: bool,
}

/// ABC classification and counting frequency for a count of the items due. Every field has a default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AbcSettings {
    /// Sales value is shipments × the order line's unit price over this many days up to now (90).
    #[serde(default = "default_period")]
    pub period_days: u32,
    /// Share of the total value that makes up class A (0.8).
    #[serde(default = "default_a_share")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub a_share: Decimal,
    /// Share up to which items are class B (0.95).
    #[serde(default = "default_b_share")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub b_share: Decimal,
    /// Days between counts per class: A 30, B 90, C 180.
    #[serde(default = "default_frequency")]
    pub frequency_days: BTreeMap<AbcClass, u32>,
}

fn default_period() -> u32 {
    90
}
fn default_a_share() -> Decimal {
    Decimal::new(8, 1)
}
fn default_b_share() -> Decimal {
    Decimal::new(95, 2)
}
fn default_frequency() -> BTreeMap<AbcClass, u32> {
    [(AbcClass::A, 30), (AbcClass::B, 90), (AbcClass::C, 180)].into_iter().collect()
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CountEntriesRequest {
    pub entries: Vec<CountEntry>,
}

/// A counted quantity for one bin, the item named by `sku` or `barcode`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CountEntry {
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub barcode: Option<String>,
    pub location: String,
    pub counted: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountLineView {
    pub line: usize,
    pub sku: String,
    pub location: String,
    /// on_hand at the count's snapshot; hidden while a blind count is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<i64>,
    pub counted: Option<i64>,
    /// counted − expected; hidden while a blind count is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variance: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub variance_value: Option<Decimal>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountView {
    pub id: i64,
    pub status: CountStatus,
    pub blind: bool,
    pub snapshot_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub lines: Vec<CountLineView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The review of a count: every line's variance in units and value, and the totals.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VarianceView {
    pub id: i64,
    pub status: CountStatus,
    pub lines: Vec<CountLineView>,
    /// Sum of the lines' variances (counted lines only); hidden while a blind count is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variance_units: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variance_value: Option<Decimal>,
    /// Lines not counted yet: approving leaves them as they are.
    pub uncounted: usize,
}

// ---------------------------------------------------------------------------------------------------------------
// Quality and reports
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InspectionResult {
    /// To available.
    Pass,
    /// To damaged, in the same bin.
    Damaged,
    /// Out to scrap.
    Scrap,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InspectionRequest {
    pub sku: String,
    /// Path of the bin holding the units in quality_control.
    pub location: String,
    pub quantity: i64,
    pub result: InspectionResult,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InspectionView {
    pub sku: String,
    pub location: String,
    pub quantity: i64,
    pub result: InspectionResult,
    pub quality_control_left: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShrinkageRow {
    pub reason: Reason,
    pub sku: String,
    /// Units lost (positive) or found (negative, from cycle counts).
    pub quantity: i64,
    pub movements: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShrinkageReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub rows: Vec<ShrinkageRow>,
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

fn decode<T: serde::de::DeserializeOwned>(rec: &DocumentRecord) -> AppResult<T> {
    serde_json::from_value(rec.body.clone())
        .map_err(|e| StoreError::Internal(format!("document {} cannot be read: {e}", rec.id)).into())
}

/// The warehouses a document's view names by path: asked of the path cache by id, so that a cold cache (a fresh
/// process) or one older than the warehouse is filled before the view reads it.
fn doc_locations(rec: &DocumentRecord) -> Vec<LocationId> {
    match rec.kind {
        DocKind::PurchaseOrder => decode::<PurchaseOrder>(rec).map(|po| vec![po.warehouse]).unwrap_or_default(),
        DocKind::Transfer => {
            decode::<Transfer>(rec).map(|t| vec![t.from_warehouse, t.to_warehouse]).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

fn encode<T: Serialize>(body: &T) -> AppResult<serde_json::Value> {
    serde_json::to_value(body).map_err(|e| StoreError::Internal(format!("cannot encode a document: {e}")).into())
}

fn check_text(p: &mut Problems, field: &str, v: Option<&str>) {
    if v.is_some_and(|v| v.chars().count() > MAX_TEXT_LEN) {
        p.push(field, format!("must be at most {MAX_TEXT_LEN} characters"));
    }
}

fn check_lines(n: usize) -> AppResult<()> {
    if n == 0 || n > MAX_DOCUMENT_LINES {
        return Err(AppError::field("lines", format!("must have between 1 and {MAX_DOCUMENT_LINES} lines")));
    }
    Ok(())
}

fn done(p: Problems) -> AppResult<()> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(p.0))
    }
}

fn event(topic: &str, payload: serde_json::Value) -> OutboxEvent {
    OutboxEvent { topic: topic.into(), payload }
}

fn version_conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict { constraint } if constraint.contains("documents.version") => {
            AppError::conflict("conflict", "the document changed meanwhile; read it again and retry")
        }
        e => e.into(),
    }
}

/// The API error of a purchasing rule; `field` prefixes line indexes (`lines[2]`).
fn purchasing_error(e: PurchasingError, lines: &str) -> AppError {
    match e {
        PurchasingError::WrongStatus { .. } => AppError::conflict("invalid_status", e.to_string()),
        PurchasingError::NoSuchLine { line } => AppError::field(lines, format!("there is no line {line}")),
        PurchasingError::InvalidQuantity { line, .. } => {
            AppError::field(format!("{lines}[{line}].quantity"), e.to_string())
        }
        PurchasingError::OverReceipt { line, allowed, .. } => AppError::Conflict {
            code: "over_receipt",
            detail: e.to_string(),
            errors: vec![FieldError::new(format!("{lines}[{line}].quantity"), format!("at most {allowed}"))],
        },
        PurchasingError::MoreThanInTransit { line, in_transit, .. } => AppError::Conflict {
            code: "more_than_in_transit",
            detail: e.to_string(),
            errors: vec![FieldError::new(format!("{lines}[{line}]"), format!("at most {in_transit} in total"))],
        },
        PurchasingError::InvalidState { line } => AppError::field(format!("{lines}[{line}].state"), e.to_string()),
        PurchasingError::AlreadyApproved => AppError::conflict("count_closed", e.to_string()),
        PurchasingError::NothingCounted => AppError::conflict("nothing_counted", e.to_string()),
        PurchasingError::OutsideCount { .. } => AppError::field(lines, e.to_string()),
    }
}

/// The API error of a refused document step.
fn step_error(e: SubmitError, lines: &str) -> AppError {
    match e {
        SubmitError::Rejected(Rejection::Purchasing(p)) => purchasing_error(p, lines),
        SubmitError::Rejected(Rejection::UnknownDocument(id)) => {
            AppError::NotFound { entity: "document", key: id.to_string() }
        }
        SubmitError::Rejected(Rejection::Ledger(domain::stock::LedgerError::InsufficientStock {
            line,
            state,
            on_hand_in_state,
            requested,
            ..
        })) => {
            let detail = format!("line {line}: only {on_hand_in_state} {state} in the bin, {requested} needed");
            AppError::InsufficientStock {
                detail: detail.clone(),
                errors: vec![FieldError::new(format!("{lines}[{line}]"), detail)],
            }
        }
        SubmitError::Rejected(other) => AppError::Store(StoreError::Internal(format!("unexpected rejection: {other}"))),
        SubmitError::Store(e) => version_conflict(e),
        SubmitError::Closed => AppError::Unavailable("the write path is shutting down".into()),
    }
}

/// A count whose shortage would take units committed to orders: the refusal names the line, SKU, bin, shortage and
/// what is available, since only the merchant can decide which order goes without (cancel or re-allocate it).
fn shortage_error(count: &Count, e: SubmitError) -> AppError {
    let SubmitError::Rejected(Rejection::Ledger(domain::stock::LedgerError::InsufficientStock {
        item,
        location,
        on_hand_in_state,
        requested,
        ..
    })) = &e
    else {
        return step_error(e, "lines");
    };
    let Some(i) = count.lines.iter().position(|l| l.item == *item && l.bin == *location) else {
        return step_error(e, "lines");
    };
    let l = &count.lines[i];
    let detail = format!(
        "{} in {} is {requested} short, but only {on_hand_in_state} there are available: the others are committed \
         to orders. Cancel or re-allocate those order lines first, then approve again",
        l.sku, l.location
    );
    AppError::Conflict {
        code: "count_shortage_committed",
        detail,
        errors: vec![FieldError::new(
            format!("lines[{i}]"),
            format!("{} in {}: short {requested}, available {on_hand_in_state}", l.sku, l.location),
        )],
    }
}

/// A count refused because another open count already covers one of its (item, bin): approving both would adjust
/// that stock twice. Names the other count so the merchant can finish or cancel it first.
fn overlap_error(other: i64, l: &CountLine) -> AppError {
    AppError::Conflict {
        code: "count_overlaps",
        detail: format!(
            "open count {other} already covers {} in {}: approve or cancel it first, or count another part",
            l.sku, l.location
        ),
        errors: vec![FieldError::new("count", format!("count {other} covers {} in {}", l.sku, l.location))],
    }
}

fn not_found(entity: &'static str, id: i64) -> AppError {
    AppError::NotFound { entity, key: id.to_string() }
}

impl App {
    fn purchasing_virtuals(&self) -> Virtuals {
        Virtuals {
            supplier: self.virtuals[&VirtualKind::Supplier],
            transit: self.virtuals[&VirtualKind::Transit],
            adjustment: self.virtuals[&VirtualKind::Adjustment],
            scrap: self.virtuals[&VirtualKind::Scrap],
        }
    }

    async fn document(&self, kind: DocKind, id: i64, entity: &'static str) -> AppResult<DocumentRecord> {
        match self.store.get_document(id).await? {
            Some(d) if d.kind == kind => Ok(d),
            _ => Err(not_found(entity, id)),
        }
    }

    async fn list_docs<V>(
        &self,
        kind: DocKind,
        status: Option<String>,
        page: PageRequest,
        view: impl Fn(&DocumentRecord, &HashMap<LocationId, String>) -> AppResult<V>,
    ) -> AppResult<Page<V>> {
        let rows = self.store.list_documents(kind, &DocumentFilter { status }, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        let paths = self.paths_snapshot(page.items.iter().flat_map(doc_locations)).await?;
        let items = page.items.iter().map(|r| view(r, &paths)).collect::<AppResult<Vec<_>>>()?;
        Ok(Page { items, next_cursor: page.next_cursor })
    }

    /// A location by path that must be of `kind`; `field` names it in errors.
    async fn location_of(&self, path: &str, kind: LocationKind, field: &str) -> AppResult<LocationRecord> {
        let path = path.trim().trim_matches('/');
        let loc =
            self.store.get_location(path).await?.ok_or_else(|| {
                AppError::UnknownReference(vec![FieldError::new(field, format!("no location '{path}'"))])
            })?;
        if loc.kind != kind {
            return Err(AppError::field(
                field,
                format!("'{path}' is a {}, not a {}", loc.kind.as_str(), kind.as_str()),
            ));
        }
        Ok(loc)
    }

    /// A bin inside `warehouse`.
    async fn bin_in(&self, path: &str, warehouse: &str, field: &str) -> AppResult<LocationRecord> {
        let bin = self.location_of(path, LocationKind::Bin, field).await?;
        if !bin.path.starts_with(&format!("{warehouse}/")) {
            return Err(AppError::field(field, format!("'{}' is not in warehouse {warehouse}", bin.path)));
        }
        Ok(bin)
    }

    async fn sku_items(&self, skus: &[String], field: impl Fn(usize) -> String) -> AppResult<HashMap<String, ItemId>> {
        let found = self.store.resolve_skus(skus).await?;
        let missing: Vec<FieldError> = skus
            .iter()
            .enumerate()
            .filter(|(_, s)| !found.contains_key(*s))
            .map(|(i, s)| FieldError::new(field(i), format!("no SKU '{s}'")))
            .collect();
        if !missing.is_empty() {
            return Err(AppError::UnknownReference(missing));
        }
        Ok(found)
    }

    // --- suppliers -----------------------------------------------------------------------------------------

    async fn check_supplier_items(&self, items: &[SupplierItem], field: &str) -> AppResult<()> {
        let mut p = Problems::default();
        let mut seen = HashSet::new();
        for (i, it) in items.iter().enumerate() {
            let f = |n: &str| format!("{field}[{i}].{n}");
            if it.unit_cost < Decimal::ZERO {
                p.push(f("unit_cost"), "must not be negative");
            }
            if !(1..=MAX_LINE_QUANTITY).contains(&it.min_order_quantity) {
                p.push(f("min_order_quantity"), "must be positive");
            }
            if !(1..=MAX_LINE_QUANTITY).contains(&it.pack_size) {
                p.push(f("pack_size"), "must be positive");
            }
            if !seen.insert(it.sku.clone()) {
                p.push(f("sku"), "is listed twice");
            }
            check_text(&mut p, &f("supplier_sku"), it.supplier_sku.as_deref());
        }
        done(p)?;
        let skus: Vec<String> = items.iter().map(|i| i.sku.clone()).collect();
        self.sku_items(&skus, |i| format!("{field}[{i}].sku")).await?;
        Ok(())
    }

    pub async fn create_supplier(&self, req: NewSupplier) -> AppResult<SupplierView> {
        let mut p = Problems::default();
        if req.name.trim().is_empty() {
            p.push("name", "must not be empty");
        }
        check_text(&mut p, "name", Some(&req.name));
        if domain::codes::validate_currency(&req.currency).is_err() {
            p.push("currency", "must be an ISO 4217 code such as EUR");
        }
        if req.lead_time_days > 3650 {
            p.push("lead_time_days", "must be at most 3650");
        }
        done(p)?;
        self.check_supplier_items(&req.items, "items").await?;
        let body = SupplierDoc {
            name: req.name.trim().to_string(),
            contact: req.contact,
            currency: req.currency,
            lead_time_days: req.lead_time_days,
            items: req.items,
        };
        let now = Utc::now();
        let doc = DocumentRecord {
            id: 0,
            kind: DocKind::Supplier,
            status: "active".into(),
            open: false,
            body: encode(&body)?,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        let rec = self.store.insert_document(&doc, &[]).await?;
        supplier_view(&rec)
    }

    pub async fn supplier(&self, id: i64) -> AppResult<SupplierView> {
        supplier_view(&self.document(DocKind::Supplier, id, "supplier").await?)
    }

    pub async fn list_suppliers(&self, page: PageRequest) -> AppResult<Page<SupplierView>> {
        self.list_docs(DocKind::Supplier, None, page, |r, _| supplier_view(r)).await
    }

    pub async fn set_supplier_items(&self, id: i64, req: SupplierItemsRequest) -> AppResult<SupplierView> {
        let mut rec = self.document(DocKind::Supplier, id, "supplier").await?;
        self.check_supplier_items(&req.items, "items").await?;
        let mut body: SupplierDoc = decode(&rec)?;
        body.items = req.items;
        rec.body = encode(&body)?;
        rec.updated_at = Utc::now();
        let rec = self.store.update_document(&rec, &[]).await.map_err(version_conflict)?;
        supplier_view(&rec)
    }

    // --- purchase orders -----------------------------------------------------------------------------------

    pub async fn create_purchase_order(&self, req: NewPurchaseOrder, actor: Actor) -> AppResult<PurchaseOrderView> {
        check_lines(req.lines.len())?;
        let mut p = Problems::default();
        if req.tolerance_percent > MAX_TOLERANCE_PERCENT {
            p.push("tolerance_percent", format!("must be at most {MAX_TOLERANCE_PERCENT}"));
        }
        check_text(&mut p, "notes", req.notes.as_deref());
        done(p)?;
        let supplier_rec = self.store.get_document(req.supplier_id).await?.filter(|d| d.kind == DocKind::Supplier);
        let Some(supplier_rec) = supplier_rec else {
            return Err(AppError::UnknownReference(vec![FieldError::new(
                "supplier_id",
                format!("no supplier {}", req.supplier_id),
            )]));
        };
        let supplier: SupplierDoc = decode(&supplier_rec)?;
        let warehouse = self.location_of(&req.warehouse, LocationKind::Warehouse, "warehouse").await?;
        let skus: Vec<String> = req.lines.iter().map(|l| l.sku.trim().to_string()).collect();
        let items = self.sku_items(&skus, |i| format!("lines[{i}].sku")).await?;
        let today = Utc::now().date_naive();
        let mut p = Problems::default();
        let mut lines = Vec::with_capacity(req.lines.len());
        for (i, (l, sku)) in req.lines.iter().zip(&skus).enumerate() {
            let f = |n: &str| format!("lines[{i}].{n}");
            let offer = supplier.items.iter().find(|s| &s.sku == sku);
            if !(1..=MAX_LINE_QUANTITY).contains(&l.quantity) {
                p.push(f("quantity"), format!("must be between 1 and {MAX_LINE_QUANTITY}"));
            } else if let Some(o) = offer {
                if l.quantity < o.min_order_quantity {
                    p.push(f("quantity"), format!("the supplier's minimum order quantity is {}", o.min_order_quantity));
                } else if l.quantity % o.pack_size != 0 {
                    p.push(f("quantity"), format!("must be a multiple of the pack size {}", o.pack_size));
                }
            }
            let unit_cost = match (l.unit_cost, offer) {
                (Some(c), _) if c < Decimal::ZERO => {
                    p.push(f("unit_cost"), "must not be negative");
                    Decimal::ZERO
                }
                (Some(c), _) => c,
                (None, Some(o)) => o.unit_cost,
                (None, None) => {
                    p.push(f("unit_cost"), "is required: the supplier has no price for this SKU");
                    Decimal::ZERO
                }
            };
            let lead = offer.and_then(|o| o.lead_time_days).unwrap_or(supplier.lead_time_days);
            lines.push(PoLine {
                sku: sku.clone(),
                item: items[sku],
                quantity: l.quantity,
                unit_cost,
                expected_date: Some(l.expected_date.unwrap_or(today + TimeDelta::days(i64::from(lead)))),
                received: 0,
                closed: 0,
            });
        }
        done(p)?;
        let mut po = PurchaseOrder {
            supplier_id: req.supplier_id,
            warehouse: warehouse.id,
            currency: supplier.currency,
            status: PoStatus::Draft,
            tolerance_percent: req.tolerance_percent,
            lines,
            receipts: vec![],
            notes: req.notes,
        };
        let mut events =
            vec![event("purchase_order.created", serde_json::json!({ "status": "draft", "actor": actor.name }))];
        if req.order {
            po.mark_ordered().map_err(|e| purchasing_error(e, "lines"))?;
            events
                .push(event("purchase_order.ordered", serde_json::json!({ "status": "ordered", "actor": actor.name })));
        }
        let now = Utc::now();
        let doc = DocumentRecord {
            id: 0,
            kind: DocKind::PurchaseOrder,
            status: po.status.as_str().into(),
            open: po.status.is_open(),
            body: encode(&po)?,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        let rec = self.store.insert_document(&doc, &events).await?;
        self.purchase_order_view(&rec).await
    }

    async fn purchase_order_view(&self, rec: &DocumentRecord) -> AppResult<PurchaseOrderView> {
        let paths = self.paths_snapshot(doc_locations(rec)).await?;
        po_view(rec, &paths)
    }

    pub async fn purchase_order(&self, id: i64) -> AppResult<PurchaseOrderView> {
        let rec = self.document(DocKind::PurchaseOrder, id, "purchase order").await?;
        self.purchase_order_view(&rec).await
    }

    pub async fn list_purchase_orders(
        &self,
        status: Option<PoStatus>,
        page: PageRequest,
    ) -> AppResult<Page<PurchaseOrderView>> {
        self.list_docs(DocKind::PurchaseOrder, status.map(|s| s.as_str().to_string()), page, po_view).await
    }

    /// Sends, cancels or closes a purchase order: a document change without movements.
    pub async fn purchase_order_step(&self, id: i64, step: PoStep, actor: Actor) -> AppResult<PurchaseOrderView> {
        let mut rec = self.document(DocKind::PurchaseOrder, id, "purchase order").await?;
        let mut po: PurchaseOrder = decode(&rec)?;
        let (result, topic) = match step {
            PoStep::Order => (po.mark_ordered(), "purchase_order.ordered"),
            PoStep::Cancel => (po.cancel(), "purchase_order.cancelled"),
            PoStep::Close => (po.close(), "purchase_order.closed"),
        };
        result.map_err(|e| purchasing_error(e, "lines"))?;
        rec.status = po.status.as_str().into();
        rec.open = po.status.is_open();
        rec.body = encode(&po)?;
        rec.updated_at = Utc::now();
        let ev = event(topic, serde_json::json!({ "id": id, "status": po.status, "actor": actor.name }));
        let rec = self.store.update_document(&rec, &[ev]).await.map_err(version_conflict)?;
        self.purchase_order_view(&rec).await
    }

    /// Receives goods against a purchase order: the receipt, the order's received quantities and the movements
    /// commit together; arriving available units fill backorders first-come first-served.
    pub async fn receive_purchase_order(
        &self,
        id: i64,
        req: ReceiptRequest,
        actor: Actor,
    ) -> AppResult<PurchaseOrderView> {
        check_lines(req.lines.len())?;
        let mut p = Problems::default();
        check_text(&mut p, "reference", req.reference.as_deref());
        done(p)?;
        let rec = self.document(DocKind::PurchaseOrder, id, "purchase order").await?;
        let po: PurchaseOrder = decode(&rec)?;
        let paths = self.paths_snapshot([po.warehouse]).await?;
        let warehouse = paths.get(&po.warehouse).cloned().unwrap_or_default();
        let mut lines = Vec::with_capacity(req.lines.len());
        for (i, l) in req.lines.iter().enumerate() {
            let f = |n: &str| format!("lines[{i}].{n}");
            let line = match (l.line, l.sku.as_deref()) {
                (Some(n), _) => n,
                (None, Some(sku)) => po
                    .lines
                    .iter()
                    .position(|pl| pl.sku == sku.trim())
                    .ok_or_else(|| AppError::field(f("sku"), format!("the order has no line for '{sku}'")))?,
                (None, None) => return Err(AppError::field(f("line"), "name the line by `line` or `sku`")),
            };
            let Some(pl) = po.lines.get(line) else {
                return Err(AppError::field(f("line"), format!("the order has no line {line}")));
            };
            let state = l.state.unwrap_or(StockState::Available);
            let bin = match &l.location {
                Some(path) => self.bin_in(path, &warehouse, &f("location")).await?,
                None => {
                    self.suggest_bin(pl.item, po.warehouse, &warehouse).await?.map(|(b, _)| b).ok_or_else(|| {
                        AppError::field(f("location"), format!("warehouse {warehouse} has no bin to suggest; name one"))
                    })?
                }
            };
            lines.push(ReceiveLine { line, quantity: l.quantity, bin: bin.id, location: bin.path, state });
        }
        let items: Vec<ItemId> = lines.iter().map(|l| po.lines[l.line].item).collect();
        let cmd = DocumentCommand {
            document: id,
            items,
            action: DocAction::ReceivePurchase { lines, reference: req.reference },
            actor,
            virtuals: self.purchasing_virtuals(),
        };
        self.ledger.submit(Command::Document(Box::new(cmd))).await.map_err(|e| step_error(e, "lines"))?;
        self.purchase_order(id).await
    }

    /// Where to put `item` away in a warehouse: its default bin there, else a bin that already holds it (the
    /// fullest), else an empty bin.
    async fn suggest_bin(
        &self,
        item: ItemId,
        warehouse_id: LocationId,
        warehouse: &str,
    ) -> AppResult<Option<(LocationRecord, &'static str)>> {
        if let Some(path) = self.store.default_bin(item, warehouse_id).await? {
            // A bin moved out of the warehouse since it was made the default is not followed.
            if let Some(bin) = self.store.get_location(&path).await? {
                if bin.kind == LocationKind::Bin && bin.path.starts_with(&format!("{warehouse}/")) {
                    return Ok(Some((bin, "default_bin")));
                }
            }
        }
        let filter = LevelFilter { item_id: Some(item), within: Some(warehouse.to_string()) };
        let rows = self.store.levels(&filter, None, 1).await?;
        if let Some(best) = rows.iter().filter(|r| r.balance.on_hand() > 0).max_by_key(|r| r.balance.on_hand()) {
            if let Some(loc) = self.store.get_location(&best.path).await? {
                return Ok(Some((loc, "holds_item")));
            }
        }
        if let Some(path) = self.store.empty_bin(warehouse).await? {
            if let Some(bin) = self.store.get_location(&path).await? {
                return Ok(Some((bin, "empty_bin")));
            }
        }
        Ok(None)
    }

    /// Makes a bin the default putaway bin of a SKU in the bin's warehouse, replacing an earlier one.
    pub async fn set_default_bin(&self, req: DefaultBinRequest) -> AppResult<DefaultBinView> {
        let sku = req.sku.trim().to_string();
        let items = self.sku_items(std::slice::from_ref(&sku), |_| "sku".into()).await?;
        let bin = self.location_of(&req.location, LocationKind::Bin, "location").await?;
        let top = bin.path.split('/').next().unwrap_or_default().to_string();
        let wh = match self.store.get_location(&top).await? {
            Some(wh) if wh.kind == LocationKind::Warehouse => wh,
            _ => return Err(AppError::field("location", format!("'{}' is not inside a warehouse", bin.path))),
        };
        self.store.set_default_bin(items[&sku], wh.id, bin.id, Utc::now()).await?;
        Ok(DefaultBinView { sku, warehouse: wh.path, location: bin.path })
    }

    /// Removes a SKU's default bin in a warehouse; putaway falls back to the other rules.
    pub async fn clear_default_bin(&self, sku: &str, warehouse: &str) -> AppResult<()> {
        let sku = sku.trim().to_string();
        let items = self.sku_items(std::slice::from_ref(&sku), |_| "sku".into()).await?;
        let wh = self.location_of(warehouse, LocationKind::Warehouse, "warehouse").await?;
        if !self.store.clear_default_bin(items[&sku], wh.id).await? {
            return Err(AppError::NotFound { entity: "default bin", key: format!("{sku} in {}", wh.path) });
        }
        Ok(())
    }

    pub async fn putaway(&self, sku: &str, warehouse: &str) -> AppResult<PutawayView> {
        let items = self.store.resolve_skus(&[sku.to_string()]).await?;
        let item = *items.get(sku).ok_or_else(|| AppError::NotFound { entity: "sku", key: sku.to_string() })?;
        let wh = self.location_of(warehouse, LocationKind::Warehouse, "warehouse").await?;
        let found = self.suggest_bin(item, wh.id, &wh.path).await?;
        Ok(PutawayView {
            sku: sku.to_string(),
            warehouse: wh.path,
            location: found.as_ref().map(|(b, _)| b.path.clone()),
            rule: found.map(|(_, r)| r.to_string()),
        })
    }

    // --- transfers -----------------------------------------------------------------------------------------

    pub async fn create_transfer(&self, req: NewTransfer, actor: Actor) -> AppResult<TransferView> {
        check_lines(req.lines.len())?;
        let from = self.location_of(&req.from_warehouse, LocationKind::Warehouse, "from_warehouse").await?;
        let to = self.location_of(&req.to_warehouse, LocationKind::Warehouse, "to_warehouse").await?;
        if from.id == to.id {
            return Err(AppError::field("to_warehouse", "must differ from from_warehouse"));
        }
        let skus: Vec<String> = req.lines.iter().map(|l| l.sku.trim().to_string()).collect();
        let items = self.sku_items(&skus, |i| format!("lines[{i}].sku")).await?;
        let mut lines = Vec::with_capacity(req.lines.len());
        for (i, (l, sku)) in req.lines.iter().zip(&skus).enumerate() {
            if !(1..=MAX_LINE_QUANTITY).contains(&l.quantity) {
                return Err(AppError::field(format!("lines[{i}].quantity"), "must be a positive number of units"));
            }
            let bin = self.bin_in(&l.from_location, &from.path, &format!("lines[{i}].from_location")).await?;
            lines.push(TransferLine {
                sku: sku.clone(),
                item: items[sku],
                quantity: l.quantity,
                from_bin: bin.id,
                from_location: bin.path,
                shipped: 0,
                received: 0,
                damaged: 0,
                lost: 0,
            });
        }
        let t = Transfer {
            from_warehouse: from.id,
            to_warehouse: to.id,
            status: TransferStatus::Draft,
            expected_date: req.expected_date,
            lines,
        };
        let now = Utc::now();
        let doc = DocumentRecord {
            id: 0,
            kind: DocKind::Transfer,
            status: t.status.as_str().into(),
            open: false,
            body: encode(&t)?,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        let ev = event("transfer.created", serde_json::json!({ "status": "draft", "actor": actor.name }));
        let rec = self.store.insert_document(&doc, &[ev]).await?;
        self.transfer_view(&rec).await
    }

    async fn transfer_view(&self, rec: &DocumentRecord) -> AppResult<TransferView> {
        let paths = self.paths_snapshot(doc_locations(rec)).await?;
        transfer_view(rec, &paths)
    }

    pub async fn transfer(&self, id: i64) -> AppResult<TransferView> {
        let rec = self.document(DocKind::Transfer, id, "transfer").await?;
        self.transfer_view(&rec).await
    }

    pub async fn list_transfers(
        &self,
        status: Option<TransferStatus>,
        page: PageRequest,
    ) -> AppResult<Page<TransferView>> {
        self.list_docs(DocKind::Transfer, status.map(|s| s.as_str().to_string()), page, transfer_view).await
    }

    pub async fn cancel_transfer(&self, id: i64, actor: Actor) -> AppResult<TransferView> {
        let mut rec = self.document(DocKind::Transfer, id, "transfer").await?;
        let mut t: Transfer = decode(&rec)?;
        t.cancel().map_err(|e| purchasing_error(e, "lines"))?;
        rec.status = t.status.as_str().into();
        rec.body = encode(&t)?;
        rec.updated_at = Utc::now();
        let ev = event("transfer.cancelled", serde_json::json!({ "id": id, "actor": actor.name }));
        let rec = self.store.update_document(&rec, &[ev]).await.map_err(version_conflict)?;
        self.transfer_view(&rec).await
    }

    /// Ships every line: the units leave their bins for the transit location and show as incoming at the
    /// destination.
    pub async fn ship_transfer(&self, id: i64, actor: Actor) -> AppResult<TransferView> {
        let rec = self.document(DocKind::Transfer, id, "transfer").await?;
        let t: Transfer = decode(&rec)?;
        let cmd = DocumentCommand {
            document: id,
            items: t.lines.iter().map(|l| l.item).collect(),
            action: DocAction::ShipTransfer,
            actor,
            virtuals: self.purchasing_virtuals(),
        };
        self.ledger.submit(Command::Document(Box::new(cmd))).await.map_err(|e| step_error(e, "lines"))?;
        self.transfer(id).await
    }

    pub async fn receive_transfer(
        &self,
        id: i64,
        req: TransferReceiptRequest,
        actor: Actor,
    ) -> AppResult<TransferView> {
        check_lines(req.lines.len())?;
        let rec = self.document(DocKind::Transfer, id, "transfer").await?;
        let t: Transfer = decode(&rec)?;
        let paths = self.paths_snapshot([t.to_warehouse]).await?;
        let warehouse = paths.get(&t.to_warehouse).cloned().unwrap_or_default();
        let mut lines = Vec::with_capacity(req.lines.len());
        for (i, l) in req.lines.iter().enumerate() {
            let f = |n: &str| format!("lines[{i}].{n}");
            let line = match (l.line, l.sku.as_deref()) {
                (Some(n), _) => n,
                (None, Some(sku)) => t
                    .lines
                    .iter()
                    .position(|tl| tl.sku == sku.trim())
                    .ok_or_else(|| AppError::field(f("sku"), format!("the transfer has no line for '{sku}'")))?,
                (None, None) => return Err(AppError::field(f("line"), "name the line by `line` or `sku`")),
            };
            let Some(tl) = t.lines.get(line) else {
                return Err(AppError::field(f("line"), format!("the transfer has no line {line}")));
            };
            for (name, q) in [("received", l.received), ("damaged", l.damaged), ("lost", l.lost)] {
                if !(0..=MAX_LINE_QUANTITY).contains(&q) {
                    return Err(AppError::field(f(name), "must not be negative"));
                }
            }
            // Only losses: no bin is involved, the units go from transit to scrap.
            let bin = if l.received + l.damaged == 0 {
                t.to_warehouse
            } else {
                match &l.location {
                    Some(path) => self.bin_in(path, &warehouse, &f("location")).await?.id,
                    None => {
                        self.suggest_bin(tl.item, t.to_warehouse, &warehouse).await?.map(|(b, _)| b.id).ok_or_else(
                            || {
                                AppError::field(
                                    f("location"),
                                    format!("warehouse {warehouse} has no bin to suggest; name one"),
                                )
                            },
                        )?
                    }
                }
            };
            lines.push(ArrivalLine {
                arrival: TransferArrival { line, received: l.received, damaged: l.damaged, lost: l.lost },
                bin,
            });
        }
        let cmd = DocumentCommand {
            document: id,
            items: lines.iter().map(|l| t.lines[l.arrival.line].item).collect(),
            action: DocAction::ReceiveTransfer { lines },
            actor,
            virtuals: self.purchasing_virtuals(),
        };
        self.ledger.submit(Command::Document(Box::new(cmd))).await.map_err(|e| step_error(e, "lines"))?;
        self.transfer(id).await
    }

    // --- counts --------------------------------------------------------------------------------------------

    /// Every (item, bin) with stock under `filter`, with its on_hand now: the count's snapshot.
    async fn snapshot(&self, filter: &LevelFilter) -> AppResult<Vec<(ItemId, String, LocationId, String, i64)>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let rows = self.store.levels(filter, after, 200).await?;
            if rows.is_empty() {
                break;
            }
            after = rows.last().map(|r| r.item_id);
            let mut rows = rows;
            self.uncount_expired_holds(&mut rows).await?;
            for r in rows {
                if r.balance.on_hand() > 0 {
                    out.push((r.item_id, r.sku, r.location_id, r.path, r.balance.on_hand()));
                }
            }
            if out.len() > MAX_DOCUMENT_LINES {
                return Err(AppError::field(
                    "location",
                    format!("the count would have more than {MAX_DOCUMENT_LINES} lines; count a smaller part"),
                ));
            }
        }
        Ok(out)
    }

    /// Sales value per item over the last `days`: shipped units × the shipped order line's unit price.
    async fn sales_values(&self, days: u32) -> AppResult<Vec<(ItemId, Decimal)>> {
        let since = Utc::now() - TimeDelta::days(i64::from(days));
        let mut shipped: HashMap<(i64, ItemId), i64> = HashMap::new();
        let mut after = None;
        loop {
            let filter = MovementFilter { reason: Some(Reason::Shipment), from: Some(since), ..Default::default() };
            let rows = self.store.movements(&filter, after, 500).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.id);
            for r in &rows {
                let order =
                    r.movement.reference.as_deref().and_then(|s| s.strip_prefix("order ")).and_then(|s| s.parse().ok());
                *shipped.entry((order.unwrap_or(0), r.movement.item_id)).or_default() += r.movement.quantity;
            }
        }
        let mut values: HashMap<ItemId, Decimal> = HashMap::new();
        let mut orders: HashMap<i64, Option<crate::store::OrderRecord>> = HashMap::new();
        for ((order, item), q) in shipped {
            if let std::collections::hash_map::Entry::Vacant(e) = orders.entry(order) {
                e.insert(self.store.get_order(order).await?);
            }
            let price = orders[&order]
                .as_ref()
                .and_then(|o| o.order.lines.iter().find(|l| l.item == item).map(|l| l.unit_price))
                .unwrap_or_default();
            *values.entry(item).or_default() += price * Decimal::from(q);
        }
        Ok(values.into_iter().collect())
    }

    /// When each item was last in an approved count.
    async fn last_counted(&self) -> AppResult<HashMap<ItemId, DateTime<Utc>>> {
        let mut out: HashMap<ItemId, DateTime<Utc>> = HashMap::new();
        let mut after = None;
        let filter = DocumentFilter { status: Some("approved".into()) };
        loop {
            let docs = self.store.list_documents(DocKind::Count, &filter, after, 200).await?;
            let Some(last) = docs.last() else { break };
            after = Some(last.id);
            for d in &docs {
                let c: Count = decode(d)?;
                let at = c.approved_at.unwrap_or(d.updated_at);
                for l in c.lines.iter().filter(|l| l.counted.is_some()) {
                    let e = out.entry(l.item).or_insert(at);
                    *e = (*e).max(at);
                }
            }
        }
        Ok(out)
    }

    /// The first line of another open count that covers one of `cells` (item, bin), if any, as (count id, line).
    /// `stop` says which overlaps count: a create tie-breaks by id, a found-stock entry yields to anything.
    async fn overlapping_count(
        &self,
        me: i64,
        cells: &HashSet<(ItemId, LocationId)>,
        stop: impl Fn(i64, &CountLine) -> bool,
    ) -> AppResult<Option<(i64, CountLine)>> {
        let filter = DocumentFilter { status: Some(CountStatus::Open.as_str().into()) };
        let mut after = None;
        loop {
            let docs = self.store.list_documents(DocKind::Count, &filter, after, 200).await?;
            let Some(last) = docs.last() else { break };
            after = Some(last.id);
            for d in docs.iter().filter(|d| d.id != me) {
                let c: Count = decode(d)?;
                if c.status != CountStatus::Open {
                    continue;
                }
                if let Some(l) = c.lines.iter().find(|l| cells.contains(&(l.item, l.bin)) && stop(d.id, l)) {
                    return Ok(Some((d.id, l.clone())));
                }
            }
        }
        Ok(None)
    }

    pub async fn create_count(&self, req: NewCount, actor: Actor) -> AppResult<CountView> {
        let within = match &req.location {
            Some(path) => {
                let path = path.trim().trim_matches('/');
                let loc = self.store.get_location(path).await?.ok_or_else(|| {
                    AppError::UnknownReference(vec![FieldError::new("location", format!("no location '{path}'"))])
                })?;
                Some(loc.path)
            }
            None => None,
        };
        let kinds = [req.skus.is_some(), req.abc.is_some()].iter().filter(|b| **b).count();
        if kinds > 1 || (kinds == 0 && within.is_none()) {
            return Err(AppError::field(
                "location",
                "give a location, a list of skus, or abc settings (skus and abc exclude each other)",
            ));
        }
        let mut rows = Vec::new();
        let mut scope = CountScope { within: within.clone(), items: None };
        if let Some(skus) = &req.skus {
            if skus.is_empty() || skus.len() > MAX_DOCUMENT_LINES {
                return Err(AppError::field("skus", format!("must list between 1 and {MAX_DOCUMENT_LINES} SKUs")));
            }
            let items = self.sku_items(skus, |i| format!("skus[{i}]")).await?;
            scope.items = Some(skus.iter().map(|s| items[s]).collect());
            for sku in skus {
                rows.extend(self.snapshot(&LevelFilter { item_id: Some(items[sku]), within: within.clone() }).await?);
            }
        } else if let Some(abc) = &req.abc {
            let mut p = Problems::default();
            if abc.period_days == 0 || abc.period_days > 3650 {
                p.push("abc.period_days", "must be between 1 and 3650");
            }
            if !(Decimal::ZERO < abc.a_share && abc.a_share <= abc.b_share && abc.b_share <= Decimal::ONE) {
                p.push("abc.a_share", "needs 0 < a_share <= b_share <= 1");
            }
            done(p)?;
            let classes = abc_classes(&self.sales_values(abc.period_days).await?, abc.a_share, abc.b_share);
            let last = self.last_counted().await?;
            let now = Utc::now();
            let all = self.snapshot(&LevelFilter { item_id: None, within: within.clone() }).await?;
            let freq = |c: AbcClass| i64::from(abc.frequency_days.get(&c).copied().unwrap_or(default_frequency()[&c]));
            rows = all
                .into_iter()
                .filter(|(item, ..)| {
                    let class = classes.get(item).copied().unwrap_or(AbcClass::C);
                    count_due(last.get(item).copied(), freq(class), now)
                })
                .collect();
            scope.items = Some(rows.iter().map(|r| r.0).collect::<HashSet<_>>().into_iter().collect());
        } else {
            rows = self.snapshot(&LevelFilter { item_id: None, within: within.clone() }).await?;
        }
        if rows.is_empty() {
            return Err(AppError::field("location", "nothing to count: no stock matches"));
        }
        let skus: Vec<String> = rows.iter().map(|r| r.1.clone()).collect::<HashSet<_>>().into_iter().collect();
        let variants = self.store.variants_by_skus(&skus).await?;
        let now = Utc::now();
        let count = Count {
            status: CountStatus::Open,
            blind: req.blind,
            lines: rows
                .into_iter()
                .map(|(item, sku, bin, location, on_hand)| {
                    let unit_value = variants
                        .get(&sku)
                        .map(|v| v.variant.fields.cost.unwrap_or(v.variant.fields.price))
                        .unwrap_or_default();
                    CountLine { sku, item, bin, location, expected: on_hand, counted: None, unit_value }
                })
                .collect(),
            snapshot_at: now,
            approved_at: None,
            scope: Some(scope),
        };
        let doc = DocumentRecord {
            id: 0,
            kind: DocKind::Count,
            status: count.status.as_str().into(),
            open: false,
            body: encode(&count)?,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        // Two open counts of one (item, bin) would each book their difference on the live balance at approval,
        // adjusting the same stock twice. Checked before the insert for a clear refusal, and again after it because
        // two creates can race past the first check: each sees the other's committed insert on the second check
        // (whichever checks last reads after both inserts committed), and a count that finds any overlap on the
        // second check steps back. Ids do not tell who came first (on PostgreSQL a lower id may commit later),
        // so no count may stay because it is older: at worst both racing creates are refused, never both kept.
        let cells: HashSet<(ItemId, LocationId)> = count.lines.iter().map(|l| (l.item, l.bin)).collect();
        if let Some((other, l)) = self.overlapping_count(0, &cells, |_, _| true).await? {
            return Err(overlap_error(other, &l));
        }
        let ev = event("count.created", serde_json::json!({ "lines": count.lines.len(), "actor": actor.name }));
        let rec = self.store.insert_document(&doc, &[ev]).await?;
        let me = rec.id;
        if let Some((other, l)) = self.overlapping_count(me, &cells, |_, _| true).await? {
            let mut count = count;
            count.status = CountStatus::Cancelled;
            let mut rec = rec;
            rec.status = count.status.as_str().into();
            rec.body = encode(&count)?;
            rec.updated_at = Utc::now();
            self.store.update_document(&rec, &[]).await.map_err(version_conflict)?;
            return Err(overlap_error(other, &l));
        }
        count_view(&rec)
    }

    pub async fn count(&self, id: i64) -> AppResult<CountView> {
        count_view(&self.document(DocKind::Count, id, "count").await?)
    }

    pub async fn list_counts(&self, status: Option<CountStatus>, page: PageRequest) -> AppResult<Page<CountView>> {
        self.list_docs(DocKind::Count, status.map(|s| s.as_str().to_string()), page, |r, _| count_view(r)).await
    }

    /// Records counted quantities, the item named by SKU or barcode, all entries or none.
    pub async fn enter_counts(&self, id: i64, req: CountEntriesRequest) -> AppResult<CountView> {
        if req.entries.is_empty() || req.entries.len() > MAX_DOCUMENT_LINES {
            return Err(AppError::field("entries", format!("must have between 1 and {MAX_DOCUMENT_LINES} entries")));
        }
        let mut rec = self.document(DocKind::Count, id, "count").await?;
        let mut count: Count = decode(&rec)?;
        let before_lines = count.lines.len();
        let mut p = Problems::default();
        let mut unknown = Vec::new();
        let mut resolved = Vec::with_capacity(req.entries.len());
        for (i, e) in req.entries.iter().enumerate() {
            let f = |n: &str| format!("entries[{i}].{n}");
            if e.counted < 0 || e.counted > MAX_LINE_QUANTITY {
                p.push(f("counted"), format!("must be between 0 and {MAX_LINE_QUANTITY}"));
                continue;
            }
            let sku = match (&e.sku, &e.barcode) {
                (Some(s), None) => s.trim().to_string(),
                (None, Some(code)) => {
                    let filter = VariantFilter { barcode: Some(code.trim().to_string()), ..Default::default() };
                    match self.store.list_variants(&filter, None, 1).await?.into_iter().next() {
                        Some(v) => v.fields.sku,
                        None => {
                            unknown.push(FieldError::new(f("barcode"), format!("no variant has barcode '{code}'")));
                            continue;
                        }
                    }
                }
                _ => {
                    p.push(f("sku"), "give exactly one of sku and barcode");
                    continue;
                }
            };
            let path = e.location.trim().trim_matches('/');
            if let Some(line) = count.lines.iter().position(|l| l.sku == sku && l.location == path) {
                resolved.push((line, e.counted));
                continue;
            }
            // Stock the snapshot did not list here: a new line from zero, if the count covers this item and bin.
            let Some(item) = self.store.resolve_skus(std::slice::from_ref(&sku)).await?.get(&sku).copied() else {
                unknown.push(FieldError::new(f("sku"), format!("no variant has SKU '{sku}'")));
                continue;
            };
            let Some(bin) = self.store.get_location(path).await? else {
                unknown.push(FieldError::new(f("location"), format!("no location '{path}'")));
                continue;
            };
            if bin.kind != LocationKind::Bin {
                p.push(f("location"), format!("'{path}' is a {}, not a bin", bin.kind.as_str()));
                continue;
            }
            let variants = self.store.variants_by_skus(std::slice::from_ref(&sku)).await?;
            let unit_value =
                variants.get(&sku).map(|v| v.variant.fields.cost.unwrap_or(v.variant.fields.price)).unwrap_or_default();
            let line = CountLine { sku, item, bin: bin.id, location: bin.path, expected: 0, counted: None, unit_value };
            match count.found(line) {
                Ok(line) => resolved.push((line, e.counted)),
                Err(PurchasingError::OutsideCount { sku, location }) => {
                    p.push(f("location"), format!("{sku} in {location} is outside what this count covers"))
                }
                Err(e) => return Err(purchasing_error(e, "entries")),
            }
        }
        if !unknown.is_empty() {
            return Err(AppError::UnknownReference(unknown));
        }
        if count.lines.len() > MAX_DOCUMENT_LINES {
            p.push("entries", format!("the count would have more than {MAX_DOCUMENT_LINES} lines"));
        }
        done(p)?;
        // Stock found off the snapshot must not land in a bin another open count already covers (that one books
        // it too). Checked before the write, and after it against creates and entries racing this one: then this
        // entry yields to any overlap and takes its lines back, so two racers may both be refused, never both kept.
        let before = rec.clone();
        let found: HashSet<(ItemId, LocationId)> = resolved
            .iter()
            .filter(|(line, _)| *line >= before_lines)
            .map(|(line, _)| (count.lines[*line].item, count.lines[*line].bin))
            .collect();
        if !found.is_empty() {
            if let Some((other, l)) = self.overlapping_count(id, &found, |_, _| true).await? {
                return Err(overlap_error(other, &l));
            }
        }
        for (line, counted) in resolved {
            count.record(line, counted).map_err(|e| purchasing_error(e, "entries"))?;
        }
        rec.body = encode(&count)?;
        rec.updated_at = Utc::now();
        let rec = self.store.update_document(&rec, &[]).await.map_err(version_conflict)?;
        if !found.is_empty() {
            if let Some((other, l)) = self.overlapping_count(id, &found, |_, _| true).await? {
                let mut back = before;
                back.version = rec.version;
                back.updated_at = Utc::now();
                self.store.update_document(&back, &[]).await.map_err(version_conflict)?;
                return Err(overlap_error(other, &l));
            }
        }
        count_view(&rec)
    }

    pub async fn count_variance(&self, id: i64) -> AppResult<VarianceView> {
        let rec = self.document(DocKind::Count, id, "count").await?;
        let count: Count = decode(&rec)?;
        // A blind count stays blind until approved: the variance would tell the counter the expected quantity.
        let show = !(count.blind && count.status == CountStatus::Open);
        let lines: Vec<CountLineView> =
            count.lines.iter().enumerate().map(|(i, l)| count_line_view(i, l, show)).collect();
        let counted: Vec<&CountLine> = count.lines.iter().filter(|l| l.counted.is_some()).collect();
        Ok(VarianceView {
            id,
            status: count.status,
            variance_units: show.then(|| counted.iter().map(|l| l.variance()).sum()),
            variance_value: show.then(|| counted.iter().map(|l| l.unit_value * Decimal::from(l.variance())).sum()),
            uncounted: count.lines.len() - counted.len(),
            lines,
        })
    }

    /// Approves a count: each counted line's difference at the snapshot is booked on the live balance (reason
    /// cycle_count), so movements made while the count was open are kept.
    pub async fn approve_count(&self, id: i64, actor: Actor) -> AppResult<CountView> {
        let rec = self.document(DocKind::Count, id, "count").await?;
        let count: Count = decode(&rec)?;
        let cmd = DocumentCommand {
            document: id,
            items: count.lines.iter().map(|l| l.item).collect(),
            action: DocAction::ApproveCount,
            actor,
            virtuals: self.purchasing_virtuals(),
        };
        self.ledger.submit(Command::Document(Box::new(cmd))).await.map_err(|e| shortage_error(&count, e))?;
        self.count(id).await
    }

    // --- quality and reports -------------------------------------------------------------------------------

    /// Passes units in quality_control to available, or fails them to damaged or scrap.
    pub async fn inspect(&self, req: InspectionRequest, actor: Actor) -> AppResult<InspectionView> {
        if !(1..=MAX_LINE_QUANTITY).contains(&req.quantity) {
            return Err(AppError::field("quantity", format!("must be between 1 and {MAX_LINE_QUANTITY}")));
        }
        let mut p = Problems::default();
        check_text(&mut p, "note", req.note.as_deref());
        done(p)?;
        let sku = req.sku.trim().to_string();
        let items = self.sku_items(std::slice::from_ref(&sku), |_| "sku".into()).await?;
        let item = items[&sku];
        let bin = self.location_of(&req.location, LocationKind::Bin, "location").await?;
        let (op, reason) = match req.result {
            InspectionResult::Pass | InspectionResult::Damaged => {
                let (to_state, reason) = if req.result == InspectionResult::Pass {
                    (StockState::Available, Reason::Move)
                } else {
                    (StockState::Damaged, Reason::Damaged)
                };
                let line = MoveLine {
                    item,
                    quantity: req.quantity,
                    from_location: bin.id,
                    from_state: StockState::QualityControl,
                    to_location: bin.id,
                    to_state,
                };
                (LedgerOp::Move(vec![line]), reason)
            }
            InspectionResult::Scrap => {
                let scrap = self.virtuals[&VirtualKind::Scrap];
                let line = AdjustLine {
                    item,
                    location: bin.id,
                    state: StockState::QualityControl,
                    change: Change::Delta(-req.quantity),
                    source: scrap,
                    sink: scrap,
                };
                (LedgerOp::Adjust(vec![line]), Reason::Damaged)
            }
        };
        let note = Some(req.note.clone().unwrap_or_else(|| format!("inspection: {:?}", req.result).to_lowercase()));
        let cmd =
            LedgerCommand { op, lines: vec![LineMeta { reason, note }], reference: Some("inspection".into()), actor };
        let receipt = self.ledger.submit(Command::Stock(cmd)).await.map_err(|e| step_error(e, "lines"))?;
        let left =
            receipt.balances.iter().find(|(k, _)| *k == (item, bin.id)).map(|(_, b)| b.quality_control).unwrap_or(0);
        Ok(InspectionView {
            sku,
            location: bin.path,
            quantity: req.quantity,
            result: req.result,
            quality_control_left: left,
        })
    }

    /// Units lost to damage and shrinkage, and found or lost by cycle counts, per reason and SKU, in `[from, to)`.
    pub async fn shrinkage_report(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> AppResult<ShrinkageReport> {
        if from >= to {
            return Err(AppError::field("from", "must be before to"));
        }
        let mut rows: BTreeMap<(&'static str, String), (Reason, i64, usize)> = BTreeMap::new();
        for reason in [Reason::Damaged, Reason::Shrinkage, Reason::CycleCount] {
            let mut after = None;
            loop {
                let filter =
                    MovementFilter { reason: Some(reason), from: Some(from), to: Some(to), ..Default::default() };
                let page = self.store.movements(&filter, after, 500).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                for m in &page {
                    let mv = &m.movement;
                    // A loss leaves stock (to a virtual location) or turns it damaged; a gain comes from one.
                    let sign = match (mv.from_state, mv.to_state) {
                        (Some(_), None) => 1,
                        (None, Some(StockState::Damaged)) | (Some(_), Some(StockState::Damaged)) => 1,
                        (None, None) => 1,
                        (None, Some(_)) => -1,
                        (Some(_), Some(_)) => 0,
                    };
                    if sign == 0 {
                        continue;
                    }
                    let e = rows.entry((reason.as_str(), m.sku.clone())).or_insert((reason, 0, 0));
                    e.1 += sign * mv.quantity;
                    e.2 += 1;
                }
            }
        }
        Ok(ShrinkageReport {
            from,
            to,
            rows: rows
                .into_iter()
                .map(|((_, sku), (reason, quantity, movements))| ShrinkageRow { reason, sku, quantity, movements })
                .collect(),
        })
    }

    // --- incoming and promise dates ------------------------------------------------------------------------

    /// Open purchase orders and transfers, decoded.
    pub(crate) async fn open_supplies(&self) -> AppResult<(Vec<PurchaseOrder>, Vec<Transfer>)> {
        let docs = self.store.open_documents(&[DocKind::PurchaseOrder, DocKind::Transfer]).await?;
        let mut pos = Vec::new();
        let mut transfers = Vec::new();
        for d in &docs {
            match d.kind {
                DocKind::PurchaseOrder => pos.push(decode::<PurchaseOrder>(d)?),
                DocKind::Transfer => transfers.push(decode::<Transfer>(d)?),
                _ => {}
            }
        }
        Ok((pos, transfers))
    }

    /// Incoming per (item, warehouse), derived from the open documents.
    pub async fn incoming(&self) -> AppResult<HashMap<(ItemId, LocationId), i64>> {
        let (pos, transfers) = self.open_supplies().await?;
        Ok(domain::purchasing::incoming(&pos, &transfers))
    }

    /// Dated supplies per item, over every open document: (expected date, units still to come).
    pub(crate) async fn supplies(&self) -> AppResult<HashMap<ItemId, Vec<(Option<NaiveDate>, i64)>>> {
        let (pos, transfers) = self.open_supplies().await?;
        let mut out: HashMap<ItemId, Vec<(Option<NaiveDate>, i64)>> = HashMap::new();
        for po in &pos {
            for l in po.lines.iter().filter(|l| l.open() > 0) {
                out.entry(l.item).or_default().push((l.expected_date, l.open()));
            }
        }
        for t in &transfers {
            for l in t.lines.iter().filter(|l| l.in_transit() > 0) {
                out.entry(l.item).or_default().push((t.expected_date, l.in_transit()));
            }
        }
        Ok(out)
    }

    /// When one more unit of `item`, ordered now, is expected: after every unit already owed to waiting orders.
    pub(crate) async fn next_promise_date(&self, item: ItemId) -> AppResult<Option<NaiveDate>> {
        let supplies = self.supplies().await?;
        let Some(s) = supplies.get(&item) else { return Ok(None) };
        let owed = self
            .owing_orders()
            .await?
            .iter()
            .flat_map(|o| o.order.lines.iter())
            .filter(|l| l.item == item)
            .map(|l| l.open_demand())
            .sum::<i64>();
        Ok(domain::purchasing::promise_dates(&[owed + 1], s).pop().flatten())
    }

    /// Every order that owes units, oldest placement first.
    async fn owing_orders(&self) -> AppResult<Vec<crate::store::OrderRecord>> {
        let filter = crate::store::OrderFilter { backordered: true, ..Default::default() };
        let mut owing = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.list_orders(&filter, after, 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            owing.extend(page);
        }
        owing.sort_by_key(|o| (o.placed_at, o.id));
        Ok(owing)
    }

    /// Promise dates of the backordered lines of every order owing `item`, oldest order first:
    /// `(order, line) → date`.
    pub(crate) async fn promise_dates_for(&self, items: &[ItemId]) -> AppResult<HashMap<(i64, usize), NaiveDate>> {
        let supplies = self.supplies().await?;
        let mut out = HashMap::new();
        if items.iter().all(|i| !supplies.contains_key(i)) {
            return Ok(out);
        }
        let owing = self.owing_orders().await?;
        for &item in items {
            let Some(s) = supplies.get(&item) else { continue };
            let mut keys = Vec::new();
            let mut needs = Vec::new();
            for o in &owing {
                for (i, l) in o.order.lines.iter().enumerate().filter(|(_, l)| l.item == item && l.open_demand() > 0) {
                    keys.push((o.id, i));
                    needs.push(l.open_demand());
                }
            }
            for (k, d) in keys.into_iter().zip(domain::purchasing::promise_dates(&needs, s)) {
                if let Some(d) = d {
                    out.insert(k, d);
                }
            }
        }
        Ok(out)
    }
}

fn supplier_view(rec: &DocumentRecord) -> AppResult<SupplierView> {
    let s: SupplierDoc = decode(rec)?;
    Ok(SupplierView {
        id: rec.id,
        name: s.name,
        contact: s.contact,
        currency: s.currency,
        lead_time_days: s.lead_time_days,
        items: s.items,
        created_at: rec.created_at,
        updated_at: rec.updated_at,
    })
}

fn po_view(rec: &DocumentRecord, paths: &HashMap<LocationId, String>) -> AppResult<PurchaseOrderView> {
    let po: PurchaseOrder = decode(rec)?;
    Ok(PurchaseOrderView {
        id: rec.id,
        supplier_id: po.supplier_id,
        warehouse: paths.get(&po.warehouse).cloned().unwrap_or_default(),
        currency: po.currency.clone(),
        status: po.status,
        tolerance_percent: po.tolerance_percent,
        notes: po.notes.clone(),
        lines: po
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| PoLineView {
                line: i,
                sku: l.sku.clone(),
                quantity: l.quantity,
                unit_cost: l.unit_cost,
                expected_date: l.expected_date,
                received: l.received,
                closed: l.closed,
                open: if po.status.is_open() { l.open() } else { 0 },
            })
            .collect(),
        receipts: po
            .receipts
            .iter()
            .map(|r| ReceiptView {
                number: r.number,
                received_at: r.received_at,
                reference: r.reference.clone(),
                movement_reference: format!("receipt {}/{}", rec.id, r.number),
                lines: r.lines.clone(),
            })
            .collect(),
        created_at: rec.created_at,
        updated_at: rec.updated_at,
    })
}

fn transfer_view(rec: &DocumentRecord, paths: &HashMap<LocationId, String>) -> AppResult<TransferView> {
    let t: Transfer = decode(rec)?;
    Ok(TransferView {
        id: rec.id,
        from_warehouse: paths.get(&t.from_warehouse).cloned().unwrap_or_default(),
        to_warehouse: paths.get(&t.to_warehouse).cloned().unwrap_or_default(),
        status: t.status,
        expected_date: t.expected_date,
        lines: t
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| TransferLineView {
                line: i,
                sku: l.sku.clone(),
                quantity: l.quantity,
                from_location: l.from_location.clone(),
                shipped: l.shipped,
                received: l.received,
                damaged: l.damaged,
                lost: l.lost,
                in_transit: l.in_transit(),
            })
            .collect(),
        created_at: rec.created_at,
        updated_at: rec.updated_at,
    })
}

fn count_line_view(i: usize, l: &CountLine, show: bool) -> CountLineView {
    CountLineView {
        line: i,
        sku: l.sku.clone(),
        location: l.location.clone(),
        expected: show.then_some(l.expected),
        counted: l.counted,
        variance: (show && l.counted.is_some()).then(|| l.variance()),
        variance_value: (show && l.counted.is_some()).then(|| l.unit_value * Decimal::from(l.variance())),
    }
}

fn count_view(rec: &DocumentRecord) -> AppResult<CountView> {
    let c: Count = decode(rec)?;
    let show = !(c.blind && c.status == CountStatus::Open);
    Ok(CountView {
        id: rec.id,
        status: c.status,
        blind: c.blind,
        snapshot_at: c.snapshot_at,
        approved_at: c.approved_at,
        lines: c.lines.iter().enumerate().map(|(i, l)| count_line_view(i, l, show)).collect(),
        created_at: rec.created_at,
        updated_at: rec.updated_at,
    })
}

//! Order, hold and customer use cases: placing an order (atomically committing stock, or converting a hold),
//! cancelling, reserving stock for a cart with a hold, and finding or creating the customer.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use domain::bundle::BundlePart;
use domain::catalog::InventoryPolicy;
use domain::codes::validate_currency;
use domain::order::{
    Carriage, CreditMemo, Disposition, FulfillmentStatus, LineQuantity, NewLine, Order, OrderError, OrderStatus,
    Package, PaymentTerms, Return, Shipment,
};
use domain::orders::{AllocationError, DemandLine, Hold, HoldError, HoldStatus, LineAllocation, MAX_ORDER_LINES};
use domain::payment::{PaymentEntry, PaymentError, PaymentKind, PaymentStatus, PaymentTotals, MAX_AMOUNT};
use domain::stock::{ItemId, LocationId, MAX_LINE_QUANTITY};
use domain::{FieldError, Problems};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::double_option;
use crate::channels::ChannelSnapshot;
use crate::error::{AppError, AppResult, StoreError};
use crate::ledger::{Actor, Command, HoldChange, OrderStep, PlaceOrder, Receipt, Rejection, SubmitError};
use crate::page::{Page, PageRequest};
use crate::store::{
    Address, CustomerFields, CustomerId, CustomerRecord, HoldId, HoldRecord, OrderFilter, OrderId, OrderRecord,
    SkuVariant,
};
use crate::trust::PendingAudit;
use crate::App;

/// Sources that are not channels.
pub const DIRECT_SOURCES: [&str; 4] = ["phone", "email", "staff", "pos"];

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub addresses: Vec<Address>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub phone: Option<Option<String>>,
    pub addresses: Option<Vec<Address>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerView {
    pub id: CustomerId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub addresses: Vec<Address>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CustomerRecord> for CustomerView {
    fn from(r: CustomerRecord) -> Self {
        CustomerView {
            id: r.id,
            name: r.fields.name,
            email: r.fields.email,
            phone: r.fields.phone,
            addresses: r.fields.addresses,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The customer of an order: an existing one by id, or details to find (by email, then phone) or create.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrderCustomer {
    #[serde(default)]
    pub id: Option<CustomerId>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<Address>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrderLine {
    pub sku: String,
    pub quantity: i64,
    /// The variant's price when absent (its currency must then be the order's).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub unit_price: Option<Decimal>,
    /// Discount on the whole line.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub discount: Option<Decimal>,
    /// Tax on the whole line.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub tax: Option<Decimal>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// A channel's code (`webshop-de`), or `phone`, `email`, `staff`, `pos`.
    pub source: String,
    /// The source's own order number. The same source and number never make two orders: a retry returns the
    /// first order, a different order under the same number is refused.
    #[serde(default)]
    pub external_number: Option<String>,
    #[serde(default)]
    pub customer: Option<OrderCustomer>,
    pub currency: String,
    #[serde(default)]
    pub payment_terms: PaymentTerms,
    #[serde(default)]
    pub notes: Option<String>,
    /// A live hold whose reserved stock this order takes over; the lines must be the hold's lines.
    #[serde(default)]
    pub hold_id: Option<HoldId>,
    pub lines: Vec<NewOrderLine>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// The lines and quantities to cancel; everything still cancellable when absent or empty.
    #[serde(default)]
    pub lines: Vec<CancelLine>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CancelLine {
    /// The line's index in the order (0-based).
    pub line: usize,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllocationView {
    pub warehouse: String,
    pub bin: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderLineView {
    pub line: usize,
    pub sku: String,
    pub quantity: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub unit_price: Decimal,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub discount: Decimal,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub tax: Decimal,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Decimal,
    pub tracked: bool,
    pub inventory_policy: InventoryPolicy,
    /// Units promised from bins.
    pub committed: i64,
    /// Units waiting for stock, filled first-come first-served.
    pub backordered: i64,
    /// Units sold beyond stock on purpose (policy `continue`).
    pub oversold: i64,
    pub cancelled: i64,
    pub shipped: i64,
    pub fulfillment_status: FulfillmentStatus,
    pub allocations: Vec<AllocationView>,
    /// On a component's line: the bundle line it belongs to and its units per bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundlePart>,
    /// On a bundle's line: the lines of its components (the bundle's own line holds no stock).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<usize>,
    /// On a backordered line: when its units are expected, from the earliest open purchase order or transfer that
    /// covers them, first come first served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderView {
    pub id: OrderId,
    pub source: String,
    pub external_number: Option<String>,
    pub customer_id: Option<CustomerId>,
    pub currency: String,
    pub payment_terms: PaymentTerms,
    pub status: OrderStatus,
    pub fulfillment_status: FulfillmentStatus,
    pub payment_status: PaymentStatus,
    pub notes: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Decimal,
    pub paid: PaymentTotals,
    pub lines: Vec<OrderLineView>,
    pub payments: Vec<PaymentEntry>,
    pub shipments: Vec<Shipment>,
    /// Returns, each with its id (`{order}-{n}`) for `/v1/returns/{id}`.
    pub returns: Vec<ReturnView>,
    pub credit_memos: Vec<CreditMemo>,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a cancellation did.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CancellationView {
    pub order: OrderView,
    /// The value of the units this cancellation took off the order: what must be refunded if it was paid.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cancelled_amount: Decimal,
    /// What was paid beyond the order's new total: refund it with a `refund` payment.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub refund_due: Decimal,
}

/// A payment event from the payment provider.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PaymentRequestBody {
    pub kind: PaymentKind,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Decimal,
    pub currency: String,
    /// The provider's transaction id.
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    /// The lines and quantities in this shipment; everything committed when absent.
    #[serde(default)]
    pub lines: Vec<LineQuantity>,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub tracking_url: Option<String>,
    #[serde(default)]
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewReturn {
    pub order_id: OrderId,
    pub lines: Vec<ReturnLineRequest>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReturnLineRequest {
    /// The order line's index.
    pub line: usize,
    pub quantity: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiveReturn {
    pub lines: Vec<ReceiveLine>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiveLine {
    /// The return line's index.
    pub line: usize,
    pub quantity: i64,
    pub disposition: Disposition,
    /// The bin the units go into; required unless they are scrapped.
    #[serde(default)]
    pub bin: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreditMemoRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Decimal,
    #[serde(default)]
    pub lines: Vec<LineQuantity>,
    pub reason: String,
}

/// Changes lines after placement, as one change: new quantities (the units still on the line, cancelled ones not
/// counted; 0 takes every unit off) and new lines.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    #[serde(default)]
    pub lines: Vec<LineQuantity>,
    #[serde(default)]
    pub add: Vec<NewOrderLine>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewHold {
    pub lines: Vec<HoldLineRequest>,
    /// Seconds the hold lives; 900 (15 minutes) when absent, at most the configured maximum.
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
    /// Your cart or checkout id.
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HoldLineRequest {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtendHold {
    /// The hold then lives this many seconds from now (never shorter than it already would).
    pub ttl_seconds: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldLineView {
    pub sku: String,
    pub quantity: i64,
    pub allocations: Vec<AllocationView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HoldView {
    pub id: HoldId,
    /// `expired` as soon as the expiry has passed, even before the cleanup worker has run.
    pub status: HoldStatus,
    pub expires_at: DateTime<Utc>,
    pub reference: Option<String>,
    pub lines: Vec<HoldLineView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Hold settings.
#[derive(Debug, Clone, Copy)]
pub struct HoldConfig {
    pub default_ttl: TimeDelta,
    pub max_ttl: TimeDelta,
}

impl Default for HoldConfig {
    fn default() -> Self {
        Self { default_ttl: domain::orders::DEFAULT_HOLD_TTL, max_ttl: TimeDelta::hours(2) }
    }
}

fn normalize_email(e: &str) -> Option<String> {
    let e = e.trim().to_lowercase();
    (!e.is_empty()).then_some(e)
}

fn normalize_phone(p: &str) -> Option<String> {
    let digits: String = p.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    Some(if p.trim_start().starts_with('+') { format!("+{digits}") } else { digits })
}

fn validate_customer(f: &CustomerFields, prefix: &str, p: &mut Problems) {
    let n = f.name.trim().chars().count();
    if !(1..=255).contains(&n) {
        p.push(format!("{prefix}name"), "must be 1 to 255 characters");
    }
    if let Some(e) = &f.email {
        let ok = e.len() <= 254 && e.split_once('@').is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
        if !ok {
            p.push(format!("{prefix}email"), "is not an email address");
        }
    }
    if let Some(ph) = &f.phone {
        let digits = ph.trim_start_matches('+').len();
        if !(5..=15).contains(&digits) {
            p.push(format!("{prefix}phone"), "must have 5 to 15 digits");
        }
    }
    if f.addresses.len() > 20 {
        p.push(format!("{prefix}addresses"), "at most 20 addresses");
    }
}

fn customer_clash(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict { constraint } if constraint.contains("email") => AppError::Conflict {
            code: "duplicate_customer",
            detail: "another customer has this email".into(),
            errors: vec![FieldError::new("email", "is taken")],
        },
        StoreError::Conflict { constraint } if constraint.contains("phone") => AppError::Conflict {
            code: "duplicate_customer",
            detail: "another customer has this phone number".into(),
            errors: vec![FieldError::new("phone", "is taken")],
        },
        other => other.into(),
    }
}

/// Checks a new line's quantity and money (shared by placing and editing orders). Amounts are bounded so that no
/// sum or product of them can overflow.
fn validate_new_line(l: &NewOrderLine, prefix: &str, p: &mut Problems) {
    if !(1..=MAX_LINE_QUANTITY).contains(&l.quantity) {
        p.push(format!("{prefix}quantity"), "must be a positive number of units");
    }
    for (name, v) in [("unit_price", l.unit_price), ("discount", l.discount), ("tax", l.tax)] {
        if v.is_some_and(|v| v.is_sign_negative() || v > MAX_AMOUNT || v.round_dp(4) != v) {
            p.push(format!("{prefix}{name}"), format!("must be between 0 and {MAX_AMOUNT}, with at most 4 decimals"));
        }
    }
}

/// Checks packages' weights and dimensions.
pub(crate) fn validate_packages(packages: &[Package], p: &mut Problems) {
    if packages.len() > 100 {
        p.push("packages", "at most 100 packages");
    }
    for (i, pk) in packages.iter().enumerate() {
        let dims = [Some(pk.weight_grams), pk.length_mm, pk.width_mm, pk.height_mm];
        if dims.iter().flatten().any(|v| !(0..=100_000_000).contains(v)) {
            p.push(format!("packages[{i}]"), "weights and dimensions must be between 0 and 100000000");
        }
    }
}

/// Names for the ids in orders and holds.
struct Paths(HashMap<LocationId, String>);

/// Every location an order's allocations name.
fn order_locations(r: &OrderRecord) -> Vec<LocationId> {
    r.order.lines.iter().flat_map(|l| l.picks.iter()).flat_map(|p| [p.warehouse, p.bin]).collect()
}

/// Every location a hold's allocations name.
fn hold_locations(r: &HoldRecord) -> Vec<LocationId> {
    r.hold.lines.iter().flat_map(|l| l.picks.iter()).flat_map(|p| [p.warehouse, p.bin]).collect()
}

impl Paths {
    fn get(&self, id: LocationId) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| format!("location {id}"))
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnView {
    pub id: String,
    pub order_id: OrderId,
    #[serde(flatten)]
    pub body: Return,
}

/// A return's id: the order and the return's place in it.
fn return_id(order: OrderId, index: usize) -> String {
    format!("{order}-{}", index + 1)
}

/// Splits a return id into the order and the return's index.
pub fn parse_return_id(id: &str) -> Option<(OrderId, usize)> {
    let (o, n) = id.split_once('-')?;
    let n: usize = n.parse().ok()?;
    Some((o.parse().ok()?, n.checked_sub(1)?))
}

fn order_view(r: OrderRecord, paths: &Paths) -> OrderView {
    let total = r.order.total();
    let paid = r.order.payment_totals();
    OrderView {
        fulfillment_status: r.order.fulfillment(),
        payment_status: paid.status(total),
        paid,
        payments: r.order.payments.clone(),
        shipments: r.order.shipments.clone(),
        returns: r
            .order
            .returns
            .iter()
            .enumerate()
            .map(|(i, body)| ReturnView { id: return_id(r.id, i), order_id: r.id, body: body.clone() })
            .collect(),
        credit_memos: r.order.credit_memos.clone(),
        id: r.id,
        source: r.source,
        external_number: r.external_number,
        customer_id: r.customer_id,
        currency: r.currency,
        payment_terms: r.payment_terms,
        status: r.order.status,
        notes: r.notes,
        total,
        lines: r
            .order
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| OrderLineView {
                line: i,
                sku: l.sku.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
                discount: l.discount,
                tax: l.tax,
                total: l.total(),
                tracked: l.tracked,
                inventory_policy: l.policy,
                committed: l.committed(),
                backordered: l.backordered,
                oversold: l.oversold,
                cancelled: l.cancelled,
                shipped: l.shipped,
                fulfillment_status: l.fulfillment(),
                bundle: l.bundle,
                components: r.order.bundle_parts(i).into_iter().map(|(part, _)| part).collect(),
                expected_date: None,
                allocations: l
                    .picks
                    .iter()
                    .map(|p| AllocationView {
                        warehouse: paths.get(p.warehouse),
                        bin: paths.get(p.bin),
                        quantity: p.quantity,
                    })
                    .collect(),
            })
            .collect(),
        placed_at: r.placed_at,
        updated_at: r.updated_at,
    }
}

fn hold_view(r: HoldRecord, paths: &Paths, now: DateTime<Utc>) -> HoldView {
    let status = match r.hold.status {
        HoldStatus::Active if !r.hold.is_live(now) => HoldStatus::Expired,
        s => s,
    };
    let lines = r
        .skus
        .iter()
        .zip(&r.quantities)
        .enumerate()
        .map(|(i, (sku, q))| HoldLineView {
            sku: sku.clone(),
            quantity: *q,
            allocations: r
                .hold
                .lines
                .iter()
                .filter(|l| l.line == i)
                .flat_map(|l| l.picks.iter())
                .map(|p| AllocationView {
                    warehouse: paths.get(p.warehouse),
                    bin: paths.get(p.bin),
                    quantity: p.quantity,
                })
                .collect(),
        })
        .collect();
    HoldView {
        id: r.id,
        status,
        expires_at: r.hold.expires_at,
        reference: r.reference,
        lines,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// Turns a refusal of the write path into the API's error, for commands that name no SKUs.
pub(crate) fn submit_error(e: SubmitError) -> AppError {
    rejection(e, &HashMap::new())
}

/// Turns a refusal of the write path into the API's error, naming lines by their SKU.
fn rejection(e: SubmitError, skus: &HashMap<ItemId, String>) -> AppError {
    let sku = |item: ItemId| skus.get(&item).cloned().unwrap_or_else(|| format!("item {item}"));
    match e {
        SubmitError::Rejected(Rejection::Allocation(AllocationError::Shortage(s))) => {
            let errors: Vec<FieldError> = s
                .lines
                .iter()
                .map(|l| {
                    FieldError::new(
                        format!("lines[{}]", l.line),
                        format!("{}: {} available, {} requested", sku(l.item), l.available, l.requested),
                    )
                })
                .collect();
            let detail = errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
            AppError::InsufficientStock { detail: format!("not enough stock: {detail}"), errors }
        }
        SubmitError::Rejected(Rejection::Allocation(AllocationError::NoWarehouses)) => {
            AppError::conflict("no_warehouses", "there is no warehouse with sellable bins to allocate from")
        }
        SubmitError::Rejected(Rejection::Allocation(AllocationError::InvalidQuantity { line })) => {
            AppError::field(format!("lines[{line}].quantity"), "must be a positive number of units")
        }
        // Stock the store handed over does not fit allocation's contract: a bug on our side, not the client's.
        SubmitError::Rejected(Rejection::Allocation(e @ AllocationError::InvalidStock { .. })) => {
            AppError::Store(StoreError::Internal(e.to_string()))
        }
        SubmitError::Rejected(Rejection::Allocation(other)) => AppError::field("lines", other.to_string()),
        SubmitError::Rejected(Rejection::Cancel(c)) => {
            use domain::order::CancelError::*;
            match c {
                AlreadyCancelled => AppError::conflict("order_cancelled", "the order is cancelled already"),
                NothingToCancel => {
                    AppError::conflict("nothing_to_cancel", "every unit has shipped or was cancelled already")
                }
                NoSuchLine { line } => AppError::field(format!("lines[{line}].line"), "the order has no such line"),
                TooMany { line, cancellable, requested } => AppError::Conflict {
                    code: "invalid_quantity",
                    detail: format!(
                        "line {line}: only {cancellable} units can still be cancelled, {requested} requested"
                    ),
                    errors: vec![FieldError::new(format!("lines[{line}].quantity"), format!("at most {cancellable}"))],
                },
                InvalidQuantity { line } => AppError::field(format!("lines[{line}].quantity"), "must be positive"),
                PartOfBundle { line, bundle } => part_of_bundle(line, bundle),
            }
        }
        SubmitError::Rejected(Rejection::Hold(h)) => match h {
            HoldError::Expired { .. } | HoldError::NotActive(HoldStatus::Expired) => {
                AppError::conflict("hold_expired", "the hold has expired; its stock is free again")
            }
            HoldError::NotActive(status) => AppError::conflict("hold_not_active", format!("the hold is {status}")),
            HoldError::TtlTooLong { max_ttl } => {
                AppError::field("ttl_seconds", format!("must be at most {} seconds", max_ttl.num_seconds()))
            }
            HoldError::ExpiryNotInFuture => AppError::field("ttl_seconds", "must be positive"),
            HoldError::WouldShorten { expires_at } => {
                AppError::field("ttl_seconds", format!("would end the hold before its current expiry {expires_at}"))
            }
            HoldError::NotDue { .. } => AppError::conflict("hold_not_due", "the hold has not expired"),
        },
        SubmitError::Rejected(Rejection::UnknownOrder(id)) => {
            AppError::NotFound { entity: "order", key: id.to_string() }
        }
        SubmitError::Rejected(Rejection::UnknownHold(id)) => {
            AppError::UnknownReference(vec![FieldError::new("hold_id", format!("hold {id} not found"))])
        }
        SubmitError::Rejected(Rejection::HoldMismatch) => AppError::Conflict {
            code: "hold_mismatch",
            detail: "the order's lines must be the hold's lines: same SKUs and quantities, in the same order".into(),
            errors: vec![FieldError::new("lines", "differ from the hold's lines")],
        },
        SubmitError::Rejected(Rejection::Order(e)) => order_error(e, skus),
        SubmitError::Rejected(Rejection::DuplicateOrderNumber) => {
            AppError::conflict("order_number_conflict", "an order with this source and external number exists")
        }
        SubmitError::Rejected(Rejection::Ledger(e)) => AppError::Store(StoreError::Internal(e.to_string())),
        // Purchasing documents never ride on order commands.
        SubmitError::Rejected(
            e @ (Rejection::Purchasing(_) | Rejection::UnknownDocument(_) | Rejection::CorruptDocument(..)),
        ) => AppError::Store(StoreError::Internal(e.to_string())),
        SubmitError::Store(e) => AppError::Store(e),
        SubmitError::Closed => AppError::Unavailable("the write path is shutting down".into()),
    }
}

fn order_error(e: OrderError, skus: &HashMap<ItemId, String>) -> AppError {
    match e {
        OrderError::Cancelled => AppError::conflict("order_cancelled", "the order is cancelled"),
        OrderError::NoSuchLine { line } => AppError::field("lines", format!("the order has no line {line}")),
        OrderError::InvalidQuantity { line } => {
            AppError::field(format!("lines[{line}].quantity"), "must be a positive number of units")
        }
        OrderError::TooMany { line, what, available, requested } => AppError::Conflict {
            code: "invalid_quantity",
            detail: format!("line {line}: only {available} units can be {what}, {requested} requested"),
            errors: vec![FieldError::new(format!("lines[{line}].quantity"), format!("at most {available}"))],
        },
        OrderError::BelowShipped { line, quantity, shipped } => AppError::Conflict {
            code: "invalid_quantity",
            detail: format!("line {line}: {quantity} is below the {shipped} units already shipped or cancelled"),
            errors: vec![FieldError::new(format!("lines[{line}].quantity"), format!("at least {shipped}"))],
        },
        OrderError::NothingToShip => AppError::conflict("nothing_to_ship", "no committed units are waiting to ship"),
        OrderError::NotPaid => AppError::conflict(
            "payment_required",
            "capture the payment first: only orders on invoice terms ship before they are paid",
        ),
        OrderError::NoSuchReturn { index } => AppError::NotFound { entity: "return", key: index.to_string() },
        OrderError::BinRequired { line, disposition } => {
            AppError::field(format!("lines[{line}].bin"), format!("is required for {disposition:?}"))
        }
        OrderError::Allocation(a) => rejection(SubmitError::Rejected(Rejection::Allocation(a)), skus),
        OrderError::Payment(PaymentError::InvalidAmount) => {
            AppError::field("amount", "must be positive, with at most 2 decimals")
        }
        OrderError::Payment(PaymentError::CurrencyMismatch { given, order }) => AppError::Conflict {
            code: "currency_mismatch",
            detail: format!("the payment is in {given}, the order in {order}"),
            errors: vec![FieldError::new("currency", format!("must be {order}"))],
        },
        OrderError::Payment(PaymentError::TooMuch { what, available, requested }) => AppError::Conflict {
            code: "amount_too_large",
            detail: format!("only {available} can be {what}, {requested} requested"),
            errors: vec![FieldError::new("amount", format!("at most {available}"))],
        },
        OrderError::InvalidCreditMemo => AppError::field("amount", "must be positive and at most the order's total"),
        OrderError::PartOfBundle { line, bundle } => part_of_bundle(line, bundle),
        OrderError::BundleNotEditable { line } => AppError::Conflict {
            code: "bundle_not_editable",
            detail: "bundle lines are not edited: cancel the bundle's units, or place another order for more".into(),
            errors: vec![FieldError::new("lines", format!("line {line} is or would be part of a bundle"))],
        },
    }
}

/// A request that names a component's line instead of its bundle line.
fn part_of_bundle(line: usize, bundle: usize) -> AppError {
    AppError::Conflict {
        code: "bundle_component_line",
        detail: format!("line {line} is a component of bundle line {bundle}: name the bundle line"),
        errors: vec![FieldError::new("lines", format!("use line {bundle} instead of line {line}"))],
    }
}

/// One resolved line of an order or hold.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedLine {
    item: ItemId,
    sku: String,
    price: Decimal,
    currency: String,
    policy: InventoryPolicy,
    tracked: bool,
    /// Made of components: the line expands into theirs.
    is_bundle: bool,
}

impl App {
    /// Paths of the locations orders and holds name, for naming allocations.
    async fn location_paths(&self, ids: impl IntoIterator<Item = LocationId>) -> AppResult<Paths> {
        Ok(Paths(self.paths_snapshot(ids).await?))
    }

    /// Resolves the SKUs of lines; unknown ones are named by field.
    async fn resolve_order_skus(&self, skus: &[String]) -> AppResult<Vec<ResolvedLine>> {
        let mut found: HashMap<String, ResolvedLine> = HashMap::with_capacity(skus.len());
        let mut wanted: Vec<String> = Vec::new();
        for sku in skus {
            let sku = sku.trim();
            match self.skus.get(sku) {
                Some(line) => {
                    found.insert(sku.to_string(), line);
                }
                None => wanted.push(sku.to_string()),
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        if !wanted.is_empty() {
            // One read for every line not cached: an order's SKUs are resolved in a single statement.
            let generation = self.skus.generation();
            for (sku, SkuVariant { variant: v, is_bundle }) in self.store.variants_by_skus(&wanted).await? {
                let line = ResolvedLine {
                    item: v.item_id,
                    sku: v.fields.sku,
                    price: v.fields.price,
                    currency: v.fields.currency,
                    policy: v.fields.inventory_policy,
                    tracked: v.fields.tracked,
                    is_bundle,
                };
                self.skus.put(generation, sku.clone(), line.clone());
                found.insert(sku, line);
            }
        }
        let mut unknown = Vec::new();
        let mut out = Vec::with_capacity(skus.len());
        for (i, sku) in skus.iter().enumerate() {
            let sku = sku.trim();
            match found.get(sku) {
                Some(line) => out.push(line.clone()),
                None => unknown.push(FieldError::new(format!("lines[{i}].sku"), format!("unknown SKU '{sku}'"))),
            }
        }
        if !unknown.is_empty() {
            return Err(AppError::UnknownReference(unknown));
        }
        Ok(out)
    }

    // ---- customers ---------------------------------------------------------------------------------------------

    pub async fn create_customer(&self, req: NewCustomer) -> AppResult<CustomerView> {
        let fields = CustomerFields {
            name: req.name.trim().to_string(),
            email: req.email.as_deref().and_then(normalize_email),
            phone: req.phone.as_deref().and_then(normalize_phone),
            addresses: req.addresses,
        };
        let mut p = Problems::default();
        validate_customer(&fields, "", &mut p);
        p.into_result().map_err(AppError::Validation)?;
        Ok(self.store.create_customer(&fields, Utc::now()).await.map_err(customer_clash)?.into())
    }

    pub async fn customer(&self, id: CustomerId) -> AppResult<CustomerView> {
        self.store
            .get_customer(id)
            .await?
            .map(Into::into)
            .ok_or_else(|| AppError::NotFound { entity: "customer", key: id.to_string() })
    }

    pub async fn list_customers(&self, q: Option<&str>, page: PageRequest) -> AppResult<Page<CustomerView>> {
        let rows = self.store.list_customers(q, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    pub async fn update_customer(&self, id: CustomerId, patch: CustomerPatch) -> AppResult<CustomerView> {
        let rec = self
            .store
            .get_customer(id)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "customer", key: id.to_string() })?;
        let mut f = rec.fields;
        if let Some(n) = patch.name {
            f.name = n.trim().to_string();
        }
        if let Some(e) = patch.email {
            f.email = e.as_deref().and_then(normalize_email);
        }
        if let Some(ph) = patch.phone {
            f.phone = ph.as_deref().and_then(normalize_phone);
        }
        if let Some(a) = patch.addresses {
            f.addresses = a;
        }
        let mut p = Problems::default();
        validate_customer(&f, "", &mut p);
        p.into_result().map_err(AppError::Validation)?;
        Ok(self.store.update_customer(id, &f, Utc::now()).await.map_err(customer_clash)?.into())
    }

    /// The order's customer: by id, else found by email then phone, else created from the details.
    async fn order_customer(&self, c: &OrderCustomer) -> AppResult<Option<CustomerId>> {
        if let Some(id) = c.id {
            let found = self.store.get_customer(id).await?;
            return match found {
                Some(r) => Ok(Some(r.id)),
                None => Err(AppError::UnknownReference(vec![FieldError::new(
                    "customer.id",
                    format!("customer {id} not found"),
                )])),
            };
        }
        let email = c.email.as_deref().and_then(normalize_email);
        let phone = c.phone.as_deref().and_then(normalize_phone);
        if email.is_none() && phone.is_none() && c.name.is_none() {
            return Ok(None);
        }
        if email.is_some() || phone.is_some() {
            if let Some(found) = self.store.find_customer(email.as_deref(), phone.as_deref()).await? {
                return Ok(Some(found.id));
            }
        }
        let fields = CustomerFields {
            name: c.name.clone().unwrap_or_else(|| email.clone().or(phone.clone()).unwrap_or_default()),
            email,
            phone,
            addresses: c.address.clone().into_iter().collect(),
        };
        let mut p = Problems::default();
        validate_customer(&fields, "customer.", &mut p);
        p.into_result().map_err(AppError::Validation)?;
        match self.store.create_customer(&fields, Utc::now()).await {
            Ok(r) => Ok(Some(r.id)),
            // Created by a concurrent order a moment ago: use that one.
            Err(StoreError::Conflict { .. }) => {
                Ok(self.store.find_customer(fields.email.as_deref(), fields.phone.as_deref()).await?.map(|r| r.id))
            }
            Err(e) => Err(e.into()),
        }
    }

    // ---- orders ------------------------------------------------------------------------------------------------

    /// Places an order, committing its stock atomically (all lines or none), or converting a hold. Returns the
    /// order and whether it was created now (`false`: a retry of an order already placed under the same number).
    pub async fn place_order(&self, req: NewOrder, fingerprint: String, actor: Actor) -> AppResult<(OrderView, bool)> {
        self.place_order_audited(req, fingerprint, actor, None).await
    }

    /// [`App::place_order`], writing `audit` in the order's own transaction when the order is placed now.
    pub async fn place_order_audited(
        &self,
        req: NewOrder,
        fingerprint: String,
        actor: Actor,
        audit: Option<Arc<PendingAudit>>,
    ) -> AppResult<(OrderView, bool)> {
        let mut p = Problems::default();
        let source = req.source.trim().to_string();
        let is_code = !source.is_empty()
            && source.len() <= 64
            && source.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !is_code {
            p.push("source", "must be a channel code or one of phone, email, staff, pos");
        }
        if let Some(n) = &req.external_number {
            if n.trim().is_empty() || n.len() > 128 {
                p.push("external_number", "must be 1 to 128 characters");
            }
        }
        if let Err(e) = validate_currency(&req.currency) {
            p.push("currency", e);
        }
        if req.lines.is_empty() || req.lines.len() > MAX_ORDER_LINES {
            p.push("lines", format!("must have between 1 and {MAX_ORDER_LINES} lines"));
        }
        if req.notes.as_ref().is_some_and(|n| n.chars().count() > 5000) {
            p.push("notes", "must be at most 5000 characters");
        }
        for (i, l) in req.lines.iter().enumerate() {
            validate_new_line(l, &format!("lines[{i}]."), &mut p);
        }
        p.into_result().map_err(AppError::Validation)?;

        // A retry (the same source and number) gets the first order: a catalog changed since cannot refuse it, and
        // no customer is created again. The batch tells a retry apart by itself, so the stored order is looked up
        // here only before creating a customer, or when something is about to refuse the order.
        let number = req.external_number.as_deref().map(str::trim);
        if req.customer.is_some() {
            if let Some(first) = self.retried_order(&source, number, &fingerprint).await? {
                return Ok((first, false));
            }
        }
        let (lines, channel) = match self.order_lines(&req, &source).await {
            Ok(prepared) => prepared,
            Err(refusal) => match self.retried_order(&source, number, &fingerprint).await? {
                Some(first) => return Ok((first, false)),
                None => return Err(refusal),
            },
        };
        let customer_id = match &req.customer {
            Some(c) => self.order_customer(c).await?,
            None => None,
        };
        let now = Utc::now();
        let record = OrderRecord {
            id: 0,
            source: source.clone(),
            external_number: req.external_number.as_ref().map(|n| n.trim().to_string()),
            request_hash: fingerprint.clone(),
            customer_id,
            currency: req.currency.clone(),
            payment_terms: req.payment_terms,
            notes: req.notes.clone(),
            order: Order::empty(),
            placed_at: now,
            updated_at: now,
        };
        let names: HashMap<ItemId, String> = lines.iter().map(|l| (l.item, l.sku.clone())).collect();
        let placed = lines.clone();
        // An order from a channel allocates from the channel's warehouses, in the channel's order.
        let warehouses = self.channel_allocation(channel.as_deref());
        let cmd = Command::PlaceOrder(Box::new(PlaceOrder { record, lines, hold: req.hold_id, actor, warehouses }));
        match self.ledger.submit_audited(cmd, audit).await {
            Ok(receipt) => Ok((self.order_from_receipt(receipt).await?, true)),
            // The same source and number was placed before (the batch found it stored, or earlier in the same
            // batch): a retry gets the first order, a different order under that number is refused.
            Err(SubmitError::Rejected(Rejection::DuplicateOrderNumber)) => {
                match self.retried_order(&source, number, &fingerprint).await? {
                    Some(first) => Ok((first, false)),
                    None => Err(rejection(SubmitError::Rejected(Rejection::DuplicateOrderNumber), &names)),
                }
            }
            Err(SubmitError::Store(StoreError::Conflict { constraint })) if constraint.contains("external_number") => {
                match self.retried_order(&source, number, &fingerprint).await? {
                    Some(first) => Ok((first, false)),
                    None => Err(StoreError::Conflict { constraint }.into()),
                }
            }
            Err(e) => Err(crate::bundles::at_bundle_lines(rejection(e, &names), &placed)),
        }
    }

    /// The order stored under `source` and `number` (a retry's first attempt), replayed for `fingerprint`.
    async fn retried_order(
        &self,
        source: &str,
        number: Option<&str>,
        fingerprint: &str,
    ) -> AppResult<Option<OrderView>> {
        let Some(number) = number else { return Ok(None) };
        match self.store.find_order(source, number).await? {
            Some(existing) => self.replay(existing, fingerprint).await.map(Some),
            None => Ok(None),
        }
    }

    /// An order's lines with their items, prices and policies (bundles expanded), and the channel it comes from.
    async fn order_lines(
        &self,
        req: &NewOrder,
        source: &str,
    ) -> AppResult<(Vec<NewLine>, Option<Arc<ChannelSnapshot>>)> {
        let skus: Vec<String> = req.lines.iter().map(|l| l.sku.clone()).collect();
        let resolved = self.resolve_order_skus(&skus).await?;
        let mut p = Problems::default();
        let mut lines = Vec::with_capacity(req.lines.len());
        let channel = self.channel_of(source).await?;
        for (i, (l, r)) in req.lines.iter().zip(&resolved).enumerate() {
            let unit_price = match l.unit_price {
                Some(p) => p,
                // A channel's own price for the SKU, in the channel's currency, overrides the catalog's.
                None if channel.as_ref().is_some_and(|c| c.record.fields.prices.contains_key(&r.sku)) => {
                    let c = &channel.as_ref().expect("checked above").record.fields;
                    if c.currency != req.currency {
                        p.push(
                            format!("lines[{i}].unit_price"),
                            format!(
                                "the channel price is in {}, the order in {}: give the price",
                                c.currency, req.currency
                            ),
                        );
                    }
                    c.prices[&r.sku]
                }
                None => {
                    if r.currency != req.currency {
                        p.push(
                            format!("lines[{i}].unit_price"),
                            format!(
                                "the catalog price is in {}, the order in {}: give the price",
                                r.currency, req.currency
                            ),
                        );
                    }
                    r.price
                }
            };
            let discount = l.discount.unwrap_or_default();
            if discount > unit_price * Decimal::from(l.quantity) {
                p.push(format!("lines[{i}].discount"), "must not exceed the line's amount");
            }
            lines.push(NewLine {
                sku: r.sku.clone(),
                item: r.item,
                quantity: l.quantity,
                unit_price,
                discount,
                tax: l.tax.unwrap_or_default(),
                policy: r.policy,
                tracked: r.tracked,
                bundle: None,
            });
        }
        if p.0.iter().any(|e| e.message.contains("catalog price is in") || e.message.contains("channel price is in")) {
            let errors = p.0;
            return Err(AppError::Conflict {
                code: "currency_mismatch",
                detail: "a line's catalog price is in another currency than the order".into(),
                errors,
            });
        }
        p.into_result().map_err(AppError::Validation)?;
        // Most orders hold no bundle: only those pay for reading bundle definitions.
        let lines = if resolved.iter().any(|r| r.is_bundle) { self.expand_bundle_lines(lines).await? } else { lines };
        Ok((lines, channel))
    }

    async fn replay(&self, existing: OrderRecord, fingerprint: &str) -> AppResult<OrderView> {
        if existing.request_hash != fingerprint {
            return Err(AppError::Conflict {
                code: "order_number_conflict",
                detail: format!(
                    "order {} of {} exists with different contents",
                    existing.external_number.clone().unwrap_or_default(),
                    existing.source
                ),
                errors: vec![FieldError::new("external_number", "is taken by a different order")],
            });
        }
        let paths = self.location_paths(order_locations(&existing)).await?;
        Ok(order_view(existing, &paths))
    }

    async fn order_from_receipt(&self, receipt: Receipt) -> AppResult<OrderView> {
        let rec = receipt.order.ok_or_else(|| StoreError::Internal("the write path returned no order".into()))?;
        let paths = self.location_paths(order_locations(&rec)).await?;
        let owed = rec.order.open_demand_items();
        let mut view = order_view(rec, &paths);
        if !owed.is_empty() {
            let dates = self.promise_dates_for(&owed).await?;
            for l in &mut view.lines {
                l.expected_date = dates.get(&(view.id, l.line)).copied();
            }
        }
        Ok(view)
    }

    pub async fn order(&self, id: OrderId) -> AppResult<OrderView> {
        let rec = self
            .store
            .get_order(id)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "order", key: id.to_string() })?;
        let paths = self.location_paths(order_locations(&rec)).await?;
        let owed = rec.order.open_demand_items();
        let mut view = order_view(rec, &paths);
        if !owed.is_empty() {
            let dates = self.promise_dates_for(&owed).await?;
            for l in &mut view.lines {
                l.expected_date = dates.get(&(view.id, l.line)).copied();
            }
        }
        Ok(view)
    }

    pub async fn list_orders(&self, filter: OrderFilter, page: PageRequest) -> AppResult<Page<OrderView>> {
        let rows = self.store.list_orders(&filter, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        let paths = self.location_paths(page.items.iter().flat_map(order_locations).collect::<Vec<_>>()).await?;
        // One promise-date computation for the whole page, and none when nothing on it is owed.
        let mut owed: Vec<ItemId> = page.items.iter().flat_map(|r| r.order.open_demand_items()).collect();
        owed.sort_unstable();
        owed.dedup();
        let dates = if owed.is_empty() { HashMap::new() } else { self.promise_dates_for(&owed).await? };
        let items = page
            .items
            .into_iter()
            .map(|r| {
                let mut view = order_view(r, &paths);
                for l in &mut view.lines {
                    l.expected_date = dates.get(&(view.id, l.line)).copied();
                }
                view
            })
            .collect();
        Ok(Page { items, next_cursor: page.next_cursor })
    }

    /// Cancels lines (or the whole order): committed stock goes back to available (and to waiting backorders),
    /// backordered units are dropped.
    pub async fn cancel_order(&self, id: OrderId, req: CancelRequest, actor: Actor) -> AppResult<CancellationView> {
        let before = self
            .store
            .get_order(id)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "order", key: id.to_string() })?;
        let mut p = Problems::default();
        for (i, l) in req.lines.iter().enumerate() {
            if l.quantity <= 0 || l.quantity > MAX_LINE_QUANTITY {
                p.push(format!("lines[{i}].quantity"), "must be a positive number of units");
            }
            if l.line >= before.order.lines.len() {
                p.push(format!("lines[{i}].line"), "the order has no such line");
            }
        }
        if req.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
            p.push("reason", "must be at most 500 characters");
        }
        p.into_result().map_err(AppError::Validation)?;
        let names: HashMap<ItemId, String> = before.order.lines.iter().map(|l| (l.item, l.sku.clone())).collect();
        let lines: Vec<(usize, i64)> = req.lines.iter().map(|l| (l.line, l.quantity)).collect();
        let receipt = self
            .ledger
            .submit(Command::CancelOrder { order: id, lines, actor })
            .await
            .map_err(|e| rejection(e, &names))?;
        let after = receipt.order.clone().ok_or_else(|| StoreError::Internal("no order in receipt".into()))?;
        let cancelled_amount = receipt.amount.unwrap_or_default();
        let refund_due = (after.order.payment_totals().net() - after.order.total()).max(Decimal::ZERO);
        Ok(CancellationView { order: self.order_from_receipt(receipt).await?, cancelled_amount, refund_due })
    }

    /// Runs one step of an order's life through the write path.
    pub(crate) async fn run_order_step(&self, id: OrderId, step: OrderStep, actor: Actor) -> AppResult<OrderView> {
        self.order_step(id, step, actor).await
    }

    async fn order_step(&self, id: OrderId, step: OrderStep, actor: Actor) -> AppResult<OrderView> {
        let rec = self
            .store
            .get_order(id)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "order", key: id.to_string() })?;
        let names: HashMap<ItemId, String> = rec.order.lines.iter().map(|l| (l.item, l.sku.clone())).collect();
        let receipt = self
            .ledger
            .submit(Command::OrderStep { order: id, step, actor })
            .await
            .map_err(|e| rejection(e, &names))?;
        self.order_from_receipt(receipt).await
    }

    /// Records a payment event: authorize, capture (in parts too), void, refund.
    pub async fn pay(&self, id: OrderId, req: PaymentRequestBody, actor: Actor) -> AppResult<OrderView> {
        if req.reference.as_ref().is_some_and(|r| r.len() > 255) {
            return Err(AppError::field("reference", "must be at most 255 characters"));
        }
        let step =
            OrderStep::Pay { kind: req.kind, amount: req.amount, currency: req.currency, reference: req.reference };
        self.order_step(id, step, actor).await
    }

    /// Ships committed units: they leave their bins for the customer.
    pub async fn ship(&self, id: OrderId, req: ShipRequest, actor: Actor) -> AppResult<OrderView> {
        let mut p = Problems::default();
        for (name, v) in [
            ("carrier", &req.carrier),
            ("service", &req.service),
            ("tracking_number", &req.tracking_number),
            ("tracking_url", &req.tracking_url),
        ] {
            if v.as_ref().is_some_and(|v| v.is_empty() || v.len() > 500) {
                p.push(name, "must be 1 to 500 characters");
            }
        }
        validate_packages(&req.packages, &mut p);
        p.into_result().map_err(AppError::Validation)?;
        let carriage = Carriage {
            carrier: req.carrier,
            service: req.service,
            tracking_number: req.tracking_number,
            tracking_url: req.tracking_url,
            packages: req.packages,
        };
        let lines = req.lines.iter().map(|l| (l.line, l.quantity)).collect();
        self.order_step(id, OrderStep::Ship { lines, carriage }, actor).await
    }

    /// Opens a return for shipped units.
    pub async fn request_return(&self, req: NewReturn, actor: Actor) -> AppResult<ReturnView> {
        let mut p = Problems::default();
        if req.lines.is_empty() {
            p.push("lines", "must not be empty");
        }
        for (i, l) in req.lines.iter().enumerate() {
            if l.reason.trim().is_empty() || l.reason.len() > 500 {
                p.push(format!("lines[{i}].reason"), "must be 1 to 500 characters");
            }
        }
        p.into_result().map_err(AppError::Validation)?;
        if self.store.get_order(req.order_id).await?.is_none() {
            return Err(AppError::UnknownReference(vec![FieldError::new(
                "order_id",
                format!("order {} not found", req.order_id),
            )]));
        }
        let lines = req.lines.iter().map(|l| (l.line, l.quantity, l.reason.trim().to_string())).collect();
        let order = self.order_step(req.order_id, OrderStep::RequestReturn { lines }, actor).await?;
        order.returns.last().cloned().ok_or_else(|| StoreError::Internal("the return was not recorded".into()).into())
    }

    pub async fn get_return(&self, id: &str) -> AppResult<ReturnView> {
        let not_found = || AppError::NotFound { entity: "return", key: id.to_string() };
        let (order, index) = parse_return_id(id).ok_or_else(not_found)?;
        let order = self.order(order).await.map_err(|_| not_found())?;
        order.returns.get(index).cloned().ok_or_else(not_found)
    }

    /// Receives returned units, each with its disposition.
    pub async fn receive_return(&self, id: &str, req: ReceiveReturn, actor: Actor) -> AppResult<ReturnView> {
        let (order, index) =
            parse_return_id(id).ok_or_else(|| AppError::NotFound { entity: "return", key: id.to_string() })?;
        self.get_return(id).await?;
        let mut p = Problems::default();
        if req.lines.is_empty() {
            p.push("lines", "must not be empty");
        }
        let paths: Vec<(String, String)> = req
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                l.bin.as_ref().map(|b| (format!("lines[{i}].bin"), b.trim().trim_matches('/').to_string()))
            })
            .collect();
        p.into_result().map_err(AppError::Validation)?;
        let found = self.store.resolve_paths(&paths.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>()).await?;
        let mut unknown = Vec::new();
        let mut bad = Problems::default();
        for (field, path) in &paths {
            match found.get(path) {
                None => unknown.push(FieldError::new(field.clone(), format!("unknown location '{path}'"))),
                Some(l) if !l.kind.holds_stock() => bad.push(field.clone(), format!("'{path}' is not a bin")),
                Some(_) => {}
            }
        }
        if !unknown.is_empty() {
            return Err(AppError::UnknownReference(unknown));
        }
        bad.into_result().map_err(AppError::Validation)?;
        let lines = req
            .lines
            .iter()
            .map(|l| {
                let bin = l.bin.as_ref().and_then(|b| found.get(b.trim().trim_matches('/'))).map(|r| r.id);
                (l.line, l.quantity, l.disposition, bin)
            })
            .collect();
        let view = self.order_step(order, OrderStep::ReceiveReturn { index, lines }, actor).await?;
        view.returns.get(index).cloned().ok_or_else(|| AppError::NotFound { entity: "return", key: id.to_string() })
    }

    pub async fn credit_memo(&self, id: OrderId, req: CreditMemoRequest, actor: Actor) -> AppResult<OrderView> {
        if req.reason.trim().is_empty() || req.reason.len() > 500 {
            return Err(AppError::field("reason", "must be 1 to 500 characters"));
        }
        let step =
            OrderStep::CreditMemo { amount: req.amount, lines: req.lines, reason: req.reason.trim().to_string() };
        self.order_step(id, step, actor).await
    }

    /// Edits lines after placement: only the difference is committed or released, all in one change.
    pub async fn edit_order(&self, id: OrderId, req: EditRequest, actor: Actor) -> AppResult<OrderView> {
        let rec = self
            .store
            .get_order(id)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "order", key: id.to_string() })?;
        let mut p = Problems::default();
        if req.lines.is_empty() && req.add.is_empty() {
            p.push("lines", "give lines to change or lines to add");
        }
        for (i, l) in req.lines.iter().enumerate() {
            if !(0..=MAX_LINE_QUANTITY).contains(&l.quantity) {
                p.push(format!("lines[{i}].quantity"), "must be zero or more");
            }
        }
        for (i, l) in req.add.iter().enumerate() {
            validate_new_line(l, &format!("add[{i}]."), &mut p);
        }
        p.into_result().map_err(AppError::Validation)?;
        let skus: Vec<String> = req.add.iter().map(|l| l.sku.clone()).collect();
        let resolved = self.resolve_order_skus(&skus).await.map_err(|e| match e {
            AppError::UnknownReference(errs) => AppError::UnknownReference(
                errs.into_iter().map(|f| FieldError::new(f.field.replacen("lines", "add", 1), f.message)).collect(),
            ),
            other => other,
        })?;
        let mut add = Vec::new();
        for (i, (l, r)) in req.add.iter().zip(&resolved).enumerate() {
            let unit_price = match l.unit_price {
                Some(p) => p,
                None if r.currency == rec.currency => r.price,
                None => {
                    return Err(AppError::Conflict {
                        code: "currency_mismatch",
                        detail: format!("the catalog price is in {}, the order in {}", r.currency, rec.currency),
                        errors: vec![FieldError::new(format!("add[{i}].unit_price"), "give the price")],
                    })
                }
            };
            add.push(NewLine {
                sku: r.sku.clone(),
                item: r.item,
                quantity: l.quantity,
                unit_price,
                discount: l.discount.unwrap_or_default(),
                tax: l.tax.unwrap_or_default(),
                policy: r.policy,
                tracked: r.tracked,
                bundle: None,
            });
        }
        if self.expand_bundle_lines(add.clone()).await?.len() != add.len() {
            return Err(order_error(OrderError::BundleNotEditable { line: rec.order.lines.len() }, &HashMap::new()));
        }
        let quantities = req.lines.iter().map(|l| (l.line, l.quantity)).collect();
        self.order_step(id, OrderStep::Edit { quantities, add }, actor).await
    }

    // ---- holds -------------------------------------------------------------------------------------------------

    pub async fn place_hold(&self, req: NewHold, actor: Actor) -> AppResult<HoldView> {
        self.place_hold_audited(req, actor, None).await
    }

    /// [`App::place_hold`], writing `audit` in the hold's own transaction.
    pub async fn place_hold_audited(
        &self,
        req: NewHold,
        actor: Actor,
        audit: Option<Arc<PendingAudit>>,
    ) -> AppResult<HoldView> {
        let mut p = Problems::default();
        if req.lines.is_empty() || req.lines.len() > MAX_ORDER_LINES {
            p.push("lines", format!("must have between 1 and {MAX_ORDER_LINES} lines"));
        }
        for (i, l) in req.lines.iter().enumerate() {
            if !(1..=MAX_LINE_QUANTITY).contains(&l.quantity) {
                p.push(format!("lines[{i}].quantity"), "must be a positive number of units");
            }
        }
        let ttl = match req.ttl_seconds {
            None => self.holds.default_ttl,
            Some(s) if s <= 0 => {
                p.push("ttl_seconds", "must be positive");
                self.holds.default_ttl
            }
            Some(s) if s > self.holds.max_ttl.num_seconds() => {
                p.push("ttl_seconds", format!("must be at most {} seconds", self.holds.max_ttl.num_seconds()));
                self.holds.default_ttl
            }
            Some(s) => TimeDelta::seconds(s),
        };
        if req.reference.as_ref().is_some_and(|r| r.is_empty() || r.len() > 128) {
            p.push("reference", "must be 1 to 128 characters");
        }
        p.into_result().map_err(AppError::Validation)?;
        let skus: Vec<String> = req.lines.iter().map(|l| l.sku.clone()).collect();
        let resolved = self.resolve_order_skus(&skus).await?;
        // A hold's lines are expanded like an order's, so that an order placed from it has the very same lines.
        let requested: Vec<NewLine> = req
            .lines
            .iter()
            .zip(&resolved)
            .map(|(l, r)| NewLine {
                sku: r.sku.clone(),
                item: r.item,
                quantity: l.quantity,
                unit_price: Decimal::ZERO,
                discount: Decimal::ZERO,
                tax: Decimal::ZERO,
                policy: InventoryPolicy::Deny,
                tracked: r.tracked,
                bundle: None,
            })
            .collect();
        let expanded =
            if resolved.iter().any(|r| r.is_bundle) { self.expand_bundle_lines(requested).await? } else { requested };
        let untracked: Vec<FieldError> = resolved
            .iter()
            .enumerate()
            .filter(|(i, r)| !r.tracked && !expanded.iter().any(|l| l.bundle.is_some_and(|b| b.line == *i)))
            .map(|(i, r)| {
                FieldError::new(format!("lines[{i}].sku"), format!("{} is not tracked: nothing to hold", r.sku))
            })
            .collect();
        if !untracked.is_empty() {
            return Err(AppError::Validation(untracked));
        }
        // Only lines that hold stock reserve any: a bundle's own line and untracked components do not. The template
        // tells the write path which hold line each demand entry belongs to.
        let stocked: Vec<(usize, &NewLine)> = expanded.iter().enumerate().filter(|(_, l)| l.tracked).collect();
        let demand: Vec<DemandLine> = stocked
            .iter()
            .map(|(_, l)| DemandLine { item: l.item, quantity: l.quantity, policy: InventoryPolicy::Deny })
            .collect();
        let template: Vec<LineAllocation> = stocked
            .iter()
            .map(|(i, l)| LineAllocation { line: *i, item: l.item, picks: vec![], backordered: 0, oversold: 0 })
            .collect();
        let now = Utc::now();
        let record = HoldRecord {
            id: 0,
            hold: Hold { expires_at: now + ttl, status: HoldStatus::Active, lines: template },
            skus: expanded.iter().map(|l| l.sku.clone()).collect(),
            quantities: expanded.iter().map(|l| l.quantity).collect(),
            reference: req.reference.clone(),
            order_id: None,
            created_at: now,
            updated_at: now,
        };
        let names: HashMap<ItemId, String> = expanded.iter().map(|l| (l.item, l.sku.clone())).collect();
        let cmd = Command::PlaceHold { record: Box::new(record), demand, ttl, max_ttl: self.holds.max_ttl, actor };
        // Allocation numbers the demand entries; name each short line by the hold line it belongs to.
        let receipt = self.ledger.submit_audited(cmd, audit).await.map_err(|e| {
            let e = match e {
                SubmitError::Rejected(Rejection::Allocation(AllocationError::Shortage(mut s))) => {
                    s.lines.iter_mut().for_each(|l| l.line = stocked.get(l.line).map(|(i, _)| *i).unwrap_or(l.line));
                    SubmitError::Rejected(Rejection::Allocation(AllocationError::Shortage(s)))
                }
                other => other,
            };
            crate::bundles::at_bundle_lines(rejection(e, &names), &expanded)
        })?;
        self.hold_from_receipt(receipt).await
    }

    async fn hold_from_receipt(&self, receipt: Receipt) -> AppResult<HoldView> {
        let rec = receipt.hold.ok_or_else(|| StoreError::Internal("the write path returned no hold".into()))?;
        let paths = self.location_paths(hold_locations(&rec)).await?;
        Ok(hold_view(rec, &paths, Utc::now()))
    }

    pub async fn hold(&self, id: HoldId) -> AppResult<HoldView> {
        let rec =
            self.store.get_hold(id).await?.ok_or_else(|| AppError::NotFound { entity: "hold", key: id.to_string() })?;
        let paths = self.location_paths(hold_locations(&rec)).await?;
        Ok(hold_view(rec, &paths, Utc::now()))
    }

    pub async fn extend_hold(&self, id: HoldId, req: ExtendHold, actor: Actor) -> AppResult<HoldView> {
        if req.ttl_seconds <= 0 || req.ttl_seconds > self.holds.max_ttl.num_seconds() {
            return Err(AppError::field(
                "ttl_seconds",
                format!("must be between 1 and {} seconds", self.holds.max_ttl.num_seconds()),
            ));
        }
        self.change_hold(
            id,
            HoldChange::Extend {
                expires_at: Utc::now() + TimeDelta::seconds(req.ttl_seconds),
                max_ttl: self.holds.max_ttl,
            },
            actor,
        )
        .await
    }

    pub async fn release_hold(&self, id: HoldId, actor: Actor) -> AppResult<HoldView> {
        self.change_hold(id, HoldChange::Release, actor).await
    }

    async fn change_hold(&self, id: HoldId, change: HoldChange, actor: Actor) -> AppResult<HoldView> {
        if self.store.get_hold(id).await?.is_none() {
            return Err(AppError::NotFound { entity: "hold", key: id.to_string() });
        }
        let receipt = self
            .ledger
            .submit(Command::ChangeHold { hold: id, change, actor })
            .await
            .map_err(|e| rejection(e, &HashMap::new()))?;
        self.hold_from_receipt(receipt).await
    }

    /// Ends the holds whose time is up; returns how many. The cleanup worker calls this.
    pub async fn expire_due_holds(&self) -> AppResult<usize> {
        if self.store.due_holds(Utc::now()).await?.is_empty() {
            return Ok(0);
        }
        let receipt = self.ledger.submit(Command::ExpireDueHolds).await.map_err(|e| rejection(e, &HashMap::new()))?;
        Ok(receipt.expired_holds)
    }
}

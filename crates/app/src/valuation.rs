//! Valuation, cost of goods sold and the accounting journal, folded from the ledger.
//!
//! Nothing about cost is stored per movement. Every report folds the movements in id order through the domain's
//! [`CostBook`] (one ledger per item across warehouses), with receipts priced from their purchase order's receipt
//! lines plus the landed costs entered against that receipt. So a report always matches the ledger exactly, and a
//! changed setting (method, landed cost) is reflected everywhere at once. The price is a full ledger read per
//! report; see the note in the issue for when that needs a snapshot.
//!
//! How a movement is costed is decided by its two sides. Stock is anything in a bin, or in transit (it is still
//! ours); the virtual location on the other side says why units came or went:
//!
//! | from → to              | costed as                                                       |
//! |------------------------|-----------------------------------------------------------------|
//! | supplier → stock       | receipt at the receipt line's unit cost + landed costs; without a receipt, an adjustment in |
//! | adjustment/scrap → stock | adjustment in at the current cost                             |
//! | customer → stock       | return restocked at the cost its shipment left at               |
//! | stock → customer       | shipment (COGS)                                                 |
//! | stock → scrap / supplier | scrap (loss)                                                  |
//! | stock → adjustment     | shrinkage (loss)                                                |
//! | stock → stock          | nothing: a move or a state change keeps its value               |

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use domain::costing::{
    allocate_landed_cost, AllocationBasis, CostBook, CostKey, CostMethod, CostMovement, CostMovementKind, CostedKind,
    CostedMovement, OutboundReason, ReceiptLineCost,
};
use domain::journal::{entry_for, AccountMap, JournalEntry, Period, PeriodLocks};
use domain::purchasing::PurchaseOrder;
use domain::stock::{ItemId, LocationId, VirtualKind};
use domain::FieldError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::store::{DocKind, DocumentFilter, LevelFilter, MovementFilter, MovementRecord, OrderId, OrderRecord};
use crate::valuation_store::LandedCostRecord;
use crate::{App, AppError, AppResult, StoreError};

/// Movements read per store call while folding.
const FOLD_PAGE: u32 = 1000;

// ---------------------------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------------------------

/// How items are costed: a catalog default, per-SKU overrides, and the currency the books are kept in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostingSettings {
    #[serde(default = "fifo")]
    pub default_method: CostMethod,
    /// ISO 4217 code of the books; each item's catalog currency when absent.
    #[serde(default)]
    pub currency: Option<String>,
    /// Per-SKU methods that differ from the default.
    #[serde(default)]
    pub items: BTreeMap<String, CostMethod>,
}

fn fifo() -> CostMethod {
    CostMethod::Fifo
}

impl Default for CostingSettings {
    fn default() -> Self {
        Self { default_method: CostMethod::Fifo, currency: None, items: BTreeMap::new() }
    }
}

pub(crate) fn valid_currency(c: &str) -> bool {
    c.len() == 3 && c.chars().all(|c| c.is_ascii_uppercase())
}

// ---------------------------------------------------------------------------------------------------------------
// The fold
// ---------------------------------------------------------------------------------------------------------------

/// One ledger movement with what it cost.
#[derive(Debug, Clone)]
pub(crate) struct CostedRow {
    pub rec: MovementRecord,
    pub costed: CostedMovement,
    /// The order a shipment or return belongs to.
    pub order: Option<OrderId>,
}

/// The whole ledger, costed.
pub(crate) struct Fold {
    pub rows: Vec<CostedRow>,
    pub book: CostBook,
    /// Per item: SKU, method and currency of its cost ledger.
    pub items: HashMap<ItemId, (String, CostMethod, String)>,
    /// Adjustments in that found no cost anywhere (no layer yet, no catalog cost) and were valued at zero.
    pub uncosted: Vec<i64>,
}

impl Fold {
    pub fn key(item: ItemId) -> CostKey {
        CostKey { item, warehouse: None }
    }
}

/// A receipt line still waiting for its movement: SKU, units, unit cost, landed share, currency.
struct PendingReceiptLine {
    sku: String,
    quantity: i64,
    left: i64,
    unit_cost: Decimal,
    landed: Decimal,
    currency: String,
}

fn order_of(reference: Option<&str>) -> Option<OrderId> {
    reference?.strip_prefix("order ")?.parse().ok()
}

fn costing_failed(rec: &MovementRecord, e: impl std::fmt::Display) -> AppError {
    AppError::conflict("costing_failed", format!("movement {} ({}) cannot be costed: {e}", rec.id, rec.sku))
}

impl App {
    pub async fn costing_settings(&self) -> AppResult<CostingSettings> {
        match self.store.get_setting("costing").await? {
            Some(v) => serde_json::from_value(v).map_err(|e| StoreError::Internal(e.to_string()).into()),
            None => Ok(CostingSettings::default()),
        }
    }

    pub async fn set_costing_settings(&self, s: CostingSettings) -> AppResult<CostingSettings> {
        let mut errors = Vec::new();
        if let Some(c) = &s.currency {
            if !valid_currency(c) {
                errors.push(FieldError::new("currency", "must be an ISO 4217 code such as EUR"));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let skus: Vec<String> = s.items.keys().cloned().collect();
        let found = self.store.resolve_skus(&skus).await?;
        let unknown: Vec<FieldError> = skus
            .iter()
            .filter(|k| !found.contains_key(*k))
            .map(|k| FieldError::new(format!("items.{k}"), "no item has this SKU"))
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::UnknownReference(unknown));
        }
        // Costs are folded from history, so a new method or currency re-values the past. Once a period is locked
        // (exported), that would change books already handed over: refuse, unless the change only touches items
        // that have no movements yet.
        if !self.store.locked_periods().await?.is_empty() {
            let current = self.costing_settings().await?;
            let rewrites_all = current.default_method != s.default_method || current.currency != s.currency;
            let mut changed: Vec<&String> = s.items.keys().chain(current.items.keys()).collect();
            changed.sort();
            changed.dedup();
            changed.retain(|k| {
                let method = |set: &CostingSettings| set.items.get(*k).copied().unwrap_or(set.default_method);
                method(&current) != method(&s)
            });
            let mut has_history = rewrites_all;
            for sku in changed {
                if has_history {
                    break;
                }
                if let Some(item) = self.store.resolve_skus(std::slice::from_ref(sku)).await?.get(sku) {
                    let filter = MovementFilter { item_id: Some(*item), ..Default::default() };
                    has_history = !self.store.movements(&filter, None, 1).await?.is_empty();
                }
            }
            if has_history {
                return Err(AppError::conflict(
                    "period_locked",
                    "periods are locked: a new costing method or currency would re-value books already exported",
                ));
            }
        }
        let v = serde_json::to_value(&s).map_err(|e| StoreError::Internal(e.to_string()))?;
        self.store.put_setting("costing", &v, Utc::now()).await?;
        Ok(s)
    }

    /// Every movement in id order.
    pub(crate) async fn all_movements(&self) -> AppResult<Vec<MovementRecord>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.movements(&MovementFilter::default(), after, FOLD_PAGE).await?;
            let n = page.len();
            after = page.last().map(|m| m.id);
            out.extend(page);
            if n < FOLD_PAGE as usize {
                return Ok(out);
            }
        }
    }

    /// Every purchase order, decoded, by id.
    pub(crate) async fn all_purchase_orders(&self) -> AppResult<BTreeMap<i64, PurchaseOrder>> {
        let mut out = BTreeMap::new();
        let mut after = None;
        loop {
            let page =
                self.store.list_documents(DocKind::PurchaseOrder, &DocumentFilter::default(), after, FOLD_PAGE).await?;
            let n = page.len();
            after = page.last().map(|d| d.id);
            for d in page {
                let po: PurchaseOrder =
                    serde_json::from_value(d.body).map_err(|e| StoreError::Internal(e.to_string()))?;
                out.insert(d.id, po);
            }
            if n < FOLD_PAGE as usize {
                return Ok(out);
            }
        }
    }

    /// Receipt lines by movement reference (`receipt {order}/{number}`), with their landed costs allocated.
    async fn receipt_lines(&self) -> AppResult<HashMap<String, Vec<PendingReceiptLine>>> {
        let pos = self.all_purchase_orders().await?;
        let mut landed: HashMap<(i64, i64), Vec<LandedCostRecord>> = HashMap::new();
        for l in self.store.landed_costs().await? {
            landed.entry((l.purchase_order_id, l.receipt_number)).or_default().push(l);
        }
        let mut out = HashMap::new();
        for (id, po) in &pos {
            for r in &po.receipts {
                let mut shares = vec![Decimal::ZERO; r.lines.len()];
                for l in landed.get(&(*id, r.number as i64)).map(Vec::as_slice).unwrap_or(&[]) {
                    let basis = if l.basis == "quantity" { AllocationBasis::Quantity } else { AllocationBasis::Value };
                    let lines: Vec<ReceiptLineCost> = r
                        .lines
                        .iter()
                        .map(|x| ReceiptLineCost { quantity: x.quantity, unit_cost: x.unit_cost })
                        .collect();
                    let split = allocate_landed_cost(&lines, l.amount, basis)
                        .map_err(|e| AppError::conflict("costing_failed", format!("landed cost {}: {e}", l.id)))?;
                    for (s, add) in shares.iter_mut().zip(split) {
                        *s += add;
                    }
                }
                let lines = r
                    .lines
                    .iter()
                    .zip(shares)
                    .map(|(x, landed)| PendingReceiptLine {
                        sku: x.sku.clone(),
                        quantity: x.quantity,
                        left: x.quantity,
                        unit_cost: x.unit_cost,
                        landed,
                        currency: po.currency.clone(),
                    })
                    .collect();
                out.insert(format!("receipt {id}/{}", r.number), lines);
            }
        }
        Ok(out)
    }

    fn virtual_kind(&self, id: LocationId) -> Option<VirtualKind> {
        self.virtuals.iter().find(|(_, v)| **v == id).map(|(k, _)| *k)
    }

    /// Folds the ledger up to `as_of` (everything when `None`) into costs.
    pub(crate) async fn fold_costs(&self, as_of: Option<DateTime<Utc>>) -> AppResult<Fold> {
        let settings = self.costing_settings().await?;
        let movements = self.all_movements().await?;
        let mut receipts = self.receipt_lines().await?;
        let mut skus: Vec<String> = movements.iter().map(|m| m.sku.clone()).collect();
        skus.sort();
        skus.dedup();
        let variants = self.store.variants_by_skus(&skus).await?;
        let transit = self.virtuals.get(&VirtualKind::Transit).copied();
        let mut fold = Fold { rows: Vec::new(), book: CostBook::default(), items: HashMap::new(), uncosted: vec![] };
        let mut last_at: HashMap<ItemId, DateTime<Utc>> = HashMap::new();
        // Shipments that can still be returned, per (order, item): movement id and units left.
        let mut returnable: HashMap<(OrderId, ItemId), Vec<(i64, i64)>> = HashMap::new();
        for rec in movements {
            let m = &rec.movement;
            if as_of.is_some_and(|t| m.recorded_at > t) {
                continue;
            }
            let is_stock =
                |state: &Option<domain::stock::StockState>, loc: LocationId| state.is_some() || Some(loc) == transit;
            let from_stock = is_stock(&m.from_state, m.from_location_id);
            let to_stock = is_stock(&m.to_state, m.to_location_id);
            let order = order_of(m.reference.as_deref());
            let item = m.item_id;
            let variant = variants.get(&rec.sku);
            let (method, currency) = match fold.items.get(&item) {
                Some((_, method, currency)) => (*method, currency.clone()),
                None => {
                    let method = settings.items.get(&rec.sku).copied().unwrap_or(settings.default_method);
                    let currency = settings
                        .currency
                        .clone()
                        .or_else(|| variant.map(|v| v.variant.fields.currency.clone()))
                        .ok_or_else(|| costing_failed(&rec, "no currency; set one in /v1/settings/costing"))?;
                    fold.items.insert(item, (rec.sku.clone(), method, currency.clone()));
                    (method, currency)
                }
            };
            let key = Fold::key(item);
            let kind = match (from_stock, to_stock) {
                (true, true) | (false, false) => continue,
                (false, true) => {
                    let other = self.virtual_kind(m.from_location_id);
                    let from_receipt = match (other, m.reference.as_deref()) {
                        (Some(VirtualKind::Supplier), Some(r)) => receipts.get_mut(r).and_then(|lines| {
                            lines.iter_mut().find(|l| l.sku == rec.sku && l.left >= m.quantity).map(|l| {
                                l.left -= m.quantity;
                                let landed = if m.quantity == l.quantity {
                                    l.landed
                                } else {
                                    domain::costing::round_cost(
                                        l.landed * Decimal::from(m.quantity) / Decimal::from(l.quantity),
                                    )
                                };
                                CostMovementKind::Receipt {
                                    quantity: m.quantity,
                                    unit_cost: l.unit_cost,
                                    landed_cost: landed,
                                    currency: l.currency.clone(),
                                }
                            })
                        }),
                        _ => None,
                    };
                    let from_return = match (other, order) {
                        (Some(VirtualKind::Customer), Some(o)) => returnable.get_mut(&(o, item)).and_then(|ships| {
                            ships.iter_mut().rev().find(|(_, left)| *left >= m.quantity).map(|(id, left)| {
                                *left -= m.quantity;
                                CostMovementKind::ReturnRestocked { quantity: m.quantity, shipment: *id }
                            })
                        }),
                        _ => None,
                    };
                    match from_receipt.or(from_return) {
                        Some(k) => k,
                        None => {
                            let current = fold.book.ledger(key).and_then(|l| l.current_unit_cost());
                            let unit_cost = match current {
                                Some(_) => None,
                                None => match variant.and_then(|v| v.variant.fields.cost) {
                                    Some(c) => Some(c),
                                    None => {
                                        fold.uncosted.push(rec.id);
                                        Some(Decimal::ZERO)
                                    }
                                },
                            };
                            CostMovementKind::AdjustmentIn { quantity: m.quantity, unit_cost, currency: None }
                        }
                    }
                }
                (true, false) => {
                    let reason = match self.virtual_kind(m.to_location_id) {
                        Some(VirtualKind::Customer) => OutboundReason::Shipment,
                        Some(VirtualKind::Adjustment) => OutboundReason::Shrinkage,
                        _ => OutboundReason::Scrap,
                    };
                    CostMovementKind::Outbound { quantity: m.quantity, reason }
                }
            };
            // Movements of one batch share a time and nodes' clocks differ a little: costs follow id order.
            let at = last_at.get(&item).map_or(m.recorded_at, |t| (*t).max(m.recorded_at));
            last_at.insert(item, at);
            let cm = CostMovement { id: rec.id, at, kind };
            let costed = fold.book.apply(key, method, &currency, &cm).map_err(|e| costing_failed(&rec, e))?;
            if costed.kind == CostedKind::Shipment {
                if let Some(o) = order {
                    returnable.entry((o, item)).or_default().push((rec.id, costed.quantity));
                }
            }
            fold.rows.push(CostedRow { rec, costed, order });
        }
        Ok(fold)
    }

    // -----------------------------------------------------------------------------------------------------------
    // Valuation
    // -----------------------------------------------------------------------------------------------------------

    pub async fn valuation_report(
        &self,
        as_of: Option<DateTime<Utc>>,
        warehouse: Option<&str>,
    ) -> AppResult<ValuationReport> {
        let now = Utc::now();
        let as_of = as_of.unwrap_or(now);
        if as_of > now {
            return Err(AppError::field("as_of", "must not be in the future"));
        }
        let fold = self.fold_costs(Some(as_of)).await?;
        // Units per item in the warehouse as of then; value is the item's value pro rata (one cost pool per item).
        let in_warehouse: Option<HashMap<ItemId, i64>> = match warehouse {
            None => None,
            Some(path) => {
                let path = path.trim().trim_matches('/');
                let loc = self.store.get_location(path).await?;
                let Some(loc) = loc.filter(|l| l.kind == domain::location::LocationKind::Warehouse) else {
                    return Err(AppError::NotFound { entity: "warehouse", key: path.to_string() });
                };
                let filter = LevelFilter { item_id: None, within: Some(loc.path.clone()) };
                let mut q: HashMap<ItemId, i64> = HashMap::new();
                let mut after = None;
                loop {
                    let rows = self.store.levels_as_of(&filter, as_of, after, FOLD_PAGE).await?;
                    if rows.is_empty() {
                        break;
                    }
                    after = rows.last().map(|r| r.item_id);
                    for r in rows {
                        *q.entry(r.item_id).or_default() += r.balance.on_hand();
                    }
                }
                Some(q)
            }
        };
        let mut items = Vec::new();
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        let mut rows: Vec<(&String, ItemId, CostMethod)> =
            fold.items.iter().map(|(id, (sku, m, _))| (sku, *id, *m)).collect();
        rows.sort_by_key(|(sku, item, _)| (*sku, *item));
        for (sku, item, method) in rows {
            let Some(ledger) = fold.book.ledger(Fold::key(item)) else { continue };
            let v = ledger.on_hand();
            let (quantity, value) = match &in_warehouse {
                None => (v.quantity, v.value),
                Some(q) => {
                    let here = q.get(&item).copied().unwrap_or(0);
                    let value = if v.quantity > 0 {
                        domain::costing::round_cost(
                            v.value * Decimal::from(here.min(v.quantity)) / Decimal::from(v.quantity),
                        )
                    } else {
                        Decimal::ZERO
                    };
                    (here, value)
                }
            };
            if quantity == 0 && value.is_zero() {
                continue;
            }
            *totals.entry(v.currency.clone()).or_default() += value;
            items.push(ValuationLine {
                sku: sku.clone(),
                method,
                quantity,
                value,
                unit_cost: (quantity > 0).then(|| (value / Decimal::from(quantity)).round_dp(4)),
                currency: v.currency,
            });
        }
        Ok(ValuationReport {
            as_of,
            warehouse: warehouse.map(|w| w.trim().trim_matches('/').to_string()),
            items,
            totals: totals.into_iter().map(|(currency, value)| MoneyTotal { currency, value }).collect(),
            uncosted_movements: fold.uncosted,
        })
    }

    // -----------------------------------------------------------------------------------------------------------
    // Margin
    // -----------------------------------------------------------------------------------------------------------

    pub async fn margin_report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: MarginGroup,
    ) -> AppResult<MarginReport> {
        if to <= from {
            return Err(AppError::field("to", "must be after from"));
        }
        let fold = self.fold_costs(Some(to)).await?;
        let mut orders: HashMap<OrderId, Option<OrderRecord>> = HashMap::new();
        let mut products: HashMap<String, String> = HashMap::new();
        let mut groups: BTreeMap<(String, String), MarginLine> = BTreeMap::new();
        for row in &fold.rows {
            let c = &row.costed;
            let sign = match c.kind {
                CostedKind::Shipment => 1,
                CostedKind::ReturnRestocked => -1,
                _ => continue,
            };
            if c.at < from || c.at >= to {
                continue;
            }
            let Some(order_id) = row.order else { continue };
            if let std::collections::hash_map::Entry::Vacant(e) = orders.entry(order_id) {
                e.insert(self.store.get_order(order_id).await?);
            }
            let Some(order) = orders[&order_id].as_ref() else { continue };
            let Some((line_index, line)) =
                order.order.lines.iter().enumerate().find(|(_, l)| l.item == row.rec.movement.item_id)
            else {
                continue;
            };
            let net_unit = if line.quantity > 0 {
                line.unit_price - line.discount / Decimal::from(line.quantity)
            } else {
                line.unit_price
            };
            let revenue = (net_unit * Decimal::from(c.quantity)).round_dp(4) * Decimal::from(sign);
            let cogs = c.value * Decimal::from(sign);
            let key = match group_by {
                MarginGroup::Order => format!("order {order_id}"),
                MarginGroup::OrderLine => format!("order {order_id} line {line_index}"),
                MarginGroup::Channel => order.source.clone(),
                MarginGroup::Period => Period::of(c.at.date_naive()).to_string(),
                MarginGroup::Product => {
                    if !products.contains_key(&row.rec.sku) {
                        let handle = self.product_handle(&row.rec.sku).await?.unwrap_or_else(|| row.rec.sku.clone());
                        products.insert(row.rec.sku.clone(), handle);
                    }
                    products[&row.rec.sku].clone()
                }
            };
            let g = groups.entry((key.clone(), order.currency.clone())).or_insert_with(|| MarginLine {
                key,
                currency: order.currency.clone(),
                cost_currency: c.currency.clone(),
                units: 0,
                revenue: Decimal::ZERO,
                cogs: Decimal::ZERO,
                gross_margin: None,
                margin_percent: None,
            });
            g.units += c.quantity * sign;
            g.revenue += revenue;
            g.cogs += cogs;
        }
        let lines = groups
            .into_values()
            .map(|mut g| {
                // Revenue and cost in different currencies have no margin: costs are never converted.
                if g.currency == g.cost_currency {
                    let m = g.revenue - g.cogs;
                    g.gross_margin = Some(m);
                    g.margin_percent = (!g.revenue.is_zero()).then(|| (m * Decimal::from(100) / g.revenue).round_dp(2));
                }
                g
            })
            .collect();
        Ok(MarginReport { from, to, group_by, lines })
    }

    async fn product_handle(&self, sku: &str) -> AppResult<Option<String>> {
        let v = self.store.variants_by_skus(&[sku.to_string()]).await?;
        let Some(v) = v.get(sku) else { return Ok(None) };
        Ok(self.store.get_product(v.variant.product_id).await?.map(|p| p.fields.handle))
    }

    // -----------------------------------------------------------------------------------------------------------
    // Journal and periods
    // -----------------------------------------------------------------------------------------------------------

    pub async fn accounting_settings(&self) -> AppResult<Option<AccountMap>> {
        match self.store.get_setting("accounting").await? {
            Some(v) => Ok(Some(serde_json::from_value(v).map_err(|e| StoreError::Internal(e.to_string()))?)),
            None => Ok(None),
        }
    }

    pub async fn set_accounting_settings(&self, accounts: AccountMap) -> AppResult<AccountMap> {
        accounts.validate().map_err(AppError::Validation)?;
        let v = serde_json::to_value(&accounts).map_err(|e| StoreError::Internal(e.to_string()))?;
        self.store.put_setting("accounting", &v, Utc::now()).await?;
        Ok(accounts)
    }

    pub(crate) async fn period_locks(&self) -> AppResult<PeriodLocks> {
        let locked = self.store.locked_periods().await?;
        Ok(PeriodLocks::new(locked.iter().filter_map(|(p, _)| parse_period(p))))
    }

    pub async fn locked_periods(&self) -> AppResult<Vec<PeriodView>> {
        Ok(self
            .store
            .locked_periods()
            .await?
            .into_iter()
            .map(|(period, locked_at)| PeriodView { period, locked_at })
            .collect())
    }

    pub async fn lock_period(&self, period: &str) -> AppResult<PeriodView> {
        let Some(p) = parse_period(period) else {
            return Err(AppError::field("period", "must be a month as YYYY-MM"));
        };
        let text = p.to_string();
        let now = Utc::now();
        match self.store.lock_period(&text, now).await {
            Ok(()) => Ok(PeriodView { period: text, locked_at: now }),
            Err(StoreError::Conflict { .. }) => {
                Err(AppError::conflict("period_locked", format!("period {text} is locked already")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Balanced entries posting between `from` and `to` (inclusive dates).
    pub async fn journal(&self, from: NaiveDate, to: NaiveDate) -> AppResult<Vec<JournalEntryView>> {
        if to < from {
            return Err(AppError::field("to", "must not be before from"));
        }
        let Some(accounts) = self.accounting_settings().await? else {
            return Err(AppError::conflict(
                "accounts_not_mapped",
                "map the account codes first: PUT /v1/settings/accounting",
            ));
        };
        let locks = self.period_locks().await?;
        let fold = self.fold_costs(None).await?;
        let mut out = Vec::new();
        for row in &fold.rows {
            let Some(e) = entry_for(row.rec.movement.item_id, &row.costed, &accounts, &locks) else { continue };
            if e.posting_date < from || e.posting_date > to {
                continue;
            }
            out.push(JournalEntryView::new(&row.rec, e));
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------------------------
    // Landed costs
    // -----------------------------------------------------------------------------------------------------------

    /// The landed costs entered against a purchase order's receipts, oldest first.
    pub async fn landed_costs_of(&self, purchase_order_id: i64) -> AppResult<Vec<LandedCostView>> {
        let doc = self.store.get_document(purchase_order_id).await?.filter(|d| d.kind == DocKind::PurchaseOrder);
        if doc.is_none() {
            return Err(AppError::NotFound { entity: "purchase order", key: purchase_order_id.to_string() });
        }
        // Landed costs are few (one per freight or duty invoice) and the store keeps them in one list, which the
        // cost fold reads whole anyway.
        let all = self.store.landed_costs().await?;
        Ok(all
            .into_iter()
            .filter(|r| r.purchase_order_id == purchase_order_id)
            .map(|r| LandedCostView {
                id: r.id,
                purchase_order_id: r.purchase_order_id,
                receipt_number: r.receipt_number,
                amount: r.amount,
                currency: r.currency,
                basis: if r.basis == "quantity" { AllocationBasis::Quantity } else { AllocationBasis::Value },
                description: r.description,
                created_at: r.created_at,
            })
            .collect())
    }

    pub async fn add_landed_cost(
        &self,
        purchase_order_id: i64,
        receipt_number: i64,
        req: NewLandedCost,
    ) -> AppResult<LandedCostView> {
        let mut errors = Vec::new();
        if req.amount.is_sign_negative() && !req.amount.is_zero() {
            errors.push(FieldError::new("amount", "must not be negative"));
        }
        if !valid_currency(&req.currency) {
            errors.push(FieldError::new("currency", "must be an ISO 4217 code such as EUR"));
        }
        if req.description.as_ref().is_some_and(|d| d.len() > 500) {
            errors.push(FieldError::new("description", "must be at most 500 characters"));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let doc = self.store.get_document(purchase_order_id).await?.filter(|d| d.kind == DocKind::PurchaseOrder);
        let Some(doc) = doc else {
            return Err(AppError::NotFound { entity: "purchase order", key: purchase_order_id.to_string() });
        };
        let po: PurchaseOrder = serde_json::from_value(doc.body).map_err(|e| StoreError::Internal(e.to_string()))?;
        let Some(receipt) = po.receipts.iter().find(|r| r.number as i64 == receipt_number) else {
            return Err(AppError::NotFound { entity: "receipt", key: format!("{purchase_order_id}/{receipt_number}") });
        };
        if req.currency != po.currency {
            return Err(AppError::field("currency", format!("must be the purchase order's currency {}", po.currency)));
        }
        // A locked period has been exported: changing what its receipt cost would change the books behind it.
        let locks = self.period_locks().await?;
        let period = Period::of(receipt.received_at.date_naive());
        if locks.is_locked(period) {
            return Err(AppError::conflict(
                "period_locked",
                format!("the receipt was booked in {period}, which is locked; enter the cost in the accounting system"),
            ));
        }
        let rec = LandedCostRecord {
            id: 0,
            purchase_order_id,
            receipt_number,
            amount: req.amount,
            currency: req.currency,
            basis: match req.basis {
                AllocationBasis::Value => "value".into(),
                AllocationBasis::Quantity => "quantity".into(),
            },
            description: req.description,
            created_at: Utc::now(),
        };
        let rec = self.store.add_landed_cost(&rec).await.map_err(|e| match e {
            StoreError::Conflict { constraint } => AppError::field("amount", format!("refused by {constraint}")),
            e => e.into(),
        })?;
        Ok(LandedCostView {
            id: rec.id,
            purchase_order_id,
            receipt_number,
            amount: rec.amount,
            currency: rec.currency,
            basis: req.basis,
            description: rec.description,
            created_at: rec.created_at,
        })
    }
}

/// `YYYY-MM` as a period.
pub fn parse_period(s: &str) -> Option<Period> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    Period::new(y.parse().ok()?, m.parse().ok()?)
}

// ---------------------------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct ValuationLine {
    pub sku: String,
    pub method: CostMethod,
    pub quantity: i64,
    pub value: Decimal,
    /// Value per unit, `null` for no units.
    pub unit_cost: Option<Decimal>,
    pub currency: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MoneyTotal {
    pub currency: String,
    pub value: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValuationReport {
    pub as_of: DateTime<Utc>,
    pub warehouse: Option<String>,
    pub items: Vec<ValuationLine>,
    pub totals: Vec<MoneyTotal>,
    /// Adjustments in that had no cost to take (no layer, no catalog cost) and were valued at zero.
    pub uncosted_movements: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginGroup {
    Order,
    OrderLine,
    Product,
    Channel,
    Period,
}

#[derive(Debug, Clone, Serialize)]
pub struct MarginLine {
    /// The order (`order 12`), order line, product handle, channel (order source) or period (`YYYY-MM`).
    pub key: String,
    /// Of revenue.
    pub currency: String,
    /// Of COGS.
    pub cost_currency: String,
    /// Units shipped less units returned to stock.
    pub units: i64,
    /// Net of line discounts, before tax.
    pub revenue: Decimal,
    pub cogs: Decimal,
    /// `null` when revenue and cost are in different currencies.
    pub gross_margin: Option<Decimal>,
    pub margin_percent: Option<Decimal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MarginReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: MarginGroup,
    pub lines: Vec<MarginLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JournalLineView {
    pub account: String,
    pub debit: Decimal,
    pub credit: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct JournalEntryView {
    /// The movement the entry books; entries are one per costed movement.
    pub id: String,
    pub posting_date: NaiveDate,
    /// When the movement happened; differs from `posting_date` when its period was locked.
    pub dated: NaiveDate,
    pub period: String,
    pub kind: CostedKind,
    pub sku: String,
    pub quantity: i64,
    pub currency: String,
    pub movement_ids: Vec<i64>,
    pub reference: Option<String>,
    pub lines: Vec<JournalLineView>,
}

impl JournalEntryView {
    fn new(rec: &MovementRecord, e: JournalEntry) -> Self {
        Self {
            id: format!("mv-{}", rec.id),
            posting_date: e.posting_date,
            dated: e.dated,
            period: e.period.to_string(),
            kind: e.kind,
            sku: rec.sku.clone(),
            quantity: rec.movement.quantity,
            currency: e.currency,
            movement_ids: e.movement_ids,
            reference: rec.movement.reference.clone(),
            lines: e
                .lines
                .into_iter()
                .map(|l| JournalLineView { account: l.account, debit: l.debit, credit: l.credit })
                .collect(),
        }
    }
}

/// The journal as CSV: one row per entry line.
pub fn journal_csv(entries: &[JournalEntryView]) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = String::from(
        "entry,posting_date,dated,period,kind,sku,quantity,account,debit,credit,currency,movement_ids,reference\n",
    );
    for e in entries {
        let kind = serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let ids = e.movement_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(" ");
        for l in &e.lines {
            out.push_str(
                &[
                    field(&e.id),
                    e.posting_date.to_string(),
                    e.dated.to_string(),
                    e.period.clone(),
                    kind.clone(),
                    field(&e.sku),
                    e.quantity.to_string(),
                    field(&l.account),
                    l.debit.to_string(),
                    l.credit.to_string(),
                    e.currency.clone(),
                    ids.clone(),
                    field(e.reference.as_deref().unwrap_or("")),
                ]
                .join(","),
            );
            out.push('\n');
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodView {
    pub period: String,
    pub locked_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLandedCost {
    pub amount: Decimal,
    pub currency: String,
    /// `value` (default): in proportion to each line's goods value; `quantity`: per unit.
    #[serde(default = "by_value")]
    pub basis: AllocationBasis,
    #[serde(default)]
    pub description: Option<String>,
}

fn by_value() -> AllocationBasis {
    AllocationBasis::Value
}

#[derive(Debug, Clone, Serialize)]
pub struct LandedCostView {
    pub id: i64,
    pub purchase_order_id: i64,
    pub receipt_number: i64,
    pub amount: Decimal,
    pub currency: String,
    pub basis: AllocationBasis,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

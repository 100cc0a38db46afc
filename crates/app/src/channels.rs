//! Channel use cases: channels and their prices, availability rules, live availability with its explanation, the
//! worker that materializes availability per (channel, item) for the pull feed, and the feed itself.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::availability::{
    evaluate, velocity_days, AvailabilityStatus, Evaluation, Input, RuleSet, RuleSource, RuleStack, Step, Stock,
};
use domain::catalog::normalize_category;
use domain::codes::validate_currency;
use domain::location::LocationKind;
use domain::stock::{ItemId, LocationId};
use domain::Problems;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::channel_store::{
    ChannelFields, ChannelId, ChannelRecord, ComputedAvailability, FeedRow, ItemFacts, LookupInputs,
};
use crate::error::{AppError, AppResult, StoreError};
use crate::page::{Page, PageRequest};
use crate::store::OutboxEvent;
use crate::App;

/// Topic of the event every channel or rule change writes; the availability worker recomputes on it.
pub const CHANNEL_CHANGED: &str = "channel.changed";
pub const AVAILABILITY_UPDATED: &str = "availability.updated";
pub const STOCK_LOW: &str = "stock.low";

/// How long a node trusts its cached channels and rules, and its map of sellable bins. Changes made through this
/// node drop the cache at once; this bounds how stale another node's change can look here.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// Items recomputed per transaction.
const RECOMPUTE_CHUNK: u32 = 1000;
/// Outbox events read at a time: this bounds the memory the worker holds (an `inventory.changed` event lists up
/// to 100 balances). A round reads up to [`ROUND_PAGES`] pages, one after the other, so a busy shop's feed keeps
/// up (the page is not a limit on events per round).
const OUTBOX_PAGE: u32 = 1000;
/// Pages of the outbox one round reads at most.
const ROUND_PAGES: usize = 10;
/// A round starts no further page once it has worked this long. The lease is renewed only between rounds, and a
/// round starts with at least two thirds of it left; a round that outlived it would have its watermark refused
/// (another node may have taken the lease over) and its work done again.
const ROUND_BUDGET: Duration = Duration::from_secs(2);
/// How long an outbox id may stay missing before the worker takes it for a rolled-back insert and moves on. Ids
/// are taken before commit, so a slow transaction can commit a lower id after a higher one; ledger transactions
/// are short (the PostgreSQL store ends any idle one after 60 s), so a gap older than this is a rollback.
const GAP_GRACE: Duration = Duration::from_secs(10);
/// The feed lease lasts this long; a round renews it once a third of it has passed.
const LEASE: Duration = Duration::from_secs(10);
const MAX_CODE_LEN: usize = 64;

/// Settings of the availability worker.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Changes within this window are coalesced into one recomputation (and one event per changed pair).
    pub window: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        let ms = std::env::var("STOCKROOM_FEED_WINDOW_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(250);
        Self { window: Duration::from_millis(ms) }
    }
}

/// A channel with its rules, as cached.
#[derive(Debug)]
pub struct ChannelSnapshot {
    pub record: ChannelRecord,
    pub rules: Vec<(RuleSource, RuleSet)>,
}

/// A cached channel, or the knowledge that there is none.
type CachedChannel = Option<Arc<ChannelSnapshot>>;

/// The warehouse of each sellable bin.
type BinWarehouses = Arc<HashMap<LocationId, LocationId>>;

/// What the channel use cases keep in the process.
#[derive(Default)]
pub struct ChannelState {
    /// By code; `None` remembers that no channel has the code (orders from `phone` ask on every order).
    cache: RwLock<HashMap<String, (Instant, CachedChannel)>>,
    bins: RwLock<Option<(Instant, BinWarehouses)>>,
    /// Wakes the worker early (a change made on this node).
    wake: tokio::sync::Notify,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// The channel's code; orders name it as their `source`.
    pub code: String,
    pub name: String,
    /// ISO 3166-1 alpha-2 code of its market.
    pub market_country: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Warehouse codes it sells from, in priority order.
    #[serde(default)]
    pub warehouses: Vec<String>,
    /// SKU → price, overriding the catalog price.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub prices: BTreeMap<String, Decimal>,
    /// Customer group → (SKU → price).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, BTreeMap<String, String>>))]
    pub price_lists: BTreeMap<String, BTreeMap<String, Decimal>>,
    /// Tax class → rate in percent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub tax_rates: BTreeMap<String, Decimal>,
}

/// Absent fields stay as they are; given ones replace the whole field.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub market_country: Option<String>,
    pub currency: Option<String>,
    pub warehouses: Option<Vec<String>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub prices: Option<BTreeMap<String, Decimal>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, BTreeMap<String, String>>>))]
    pub price_lists: Option<BTreeMap<String, BTreeMap<String, Decimal>>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub tax_rates: Option<BTreeMap<String, Decimal>>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelView {
    pub code: String,
    pub name: String,
    pub market_country: String,
    pub currency: String,
    pub warehouses: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub prices: BTreeMap<String, Decimal>,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, BTreeMap<String, String>>))]
    pub price_lists: BTreeMap<String, BTreeMap<String, Decimal>>,
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub tax_rates: BTreeMap<String, Decimal>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&ChannelRecord> for ChannelView {
    fn from(r: &ChannelRecord) -> Self {
        ChannelView {
            code: r.fields.code.clone(),
            name: r.fields.name.clone(),
            market_country: r.fields.market_country.clone(),
            currency: r.fields.currency.clone(),
            warehouses: r.warehouses.iter().map(|(_, c)| c.clone()).collect(),
            prices: r.fields.prices.clone(),
            price_lists: r.fields.price_lists.clone(),
            tax_rates: r.fields.tax_rates.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The scope a rule set applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuleScope {
    Channel,
    Category,
    Tag,
    Item,
}

/// Sets the rule set of one scope (replacing what was there).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RulesRequest {
    pub scope: RuleScope,
    /// The category path, tag or SKU; absent for the channel scope.
    #[serde(default)]
    pub key: Option<String>,
    pub rules: RuleSet,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RulesView {
    pub scope: RuleScope,
    pub key: Option<String>,
    pub rules: RuleSet,
}

fn rules_view(source: &RuleSource, rules: &RuleSet) -> RulesView {
    let (scope, key) = match source {
        RuleSource::Channel | RuleSource::Catalog => (RuleScope::Channel, None),
        RuleSource::Category(k) => (RuleScope::Category, Some(k.clone())),
        RuleSource::Tag(k) => (RuleScope::Tag, Some(k.clone())),
        RuleSource::Item(k) => (RuleScope::Item, Some(k.clone())),
    };
    RulesView { scope, key, rules: rules.clone() }
}

/// What a channel shows for an item right now.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Named apart from the pooled `AvailabilityView` of bundles and inventory: two schemas of one name in the OpenAPI
// document overwrite each other, and clients would validate one answer against the other's shape.
#[cfg_attr(feature = "openapi", schema(as = ChannelAvailabilityView))]
pub struct AvailabilityView {
    pub channel: String,
    pub sku: String,
    pub quantity: i64,
    pub status: AvailabilityStatus,
    pub listed: bool,
    /// For a backordered item: when a unit ordered now is expected, from the earliest open purchase order or
    /// transfer that covers it after the orders already waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_date: Option<chrono::NaiveDate>,
    /// Every step, in order, when asked for with `explain=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<Step>>,
}

/// One row of the feed or the snapshot. Never on-hand: only what the channel may sell.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedItem {
    pub sku: String,
    pub quantity: i64,
    pub status: AvailabilityStatus,
    pub listed: bool,
    pub updated_at: DateTime<Utc>,
}

impl From<&FeedRow> for FeedItem {
    fn from(r: &FeedRow) -> Self {
        FeedItem {
            sku: r.sku.clone(),
            quantity: r.quantity,
            status: r.status,
            listed: r.listed,
            updated_at: r.updated_at,
        }
    }
}

/// A page of the feed: the changes after the given cursor, and the cursor to pass next time (always present:
/// with no changes it is the same position again).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    pub next_cursor: String,
    /// More changes are waiting beyond this page.
    pub has_more: bool,
}

/// The most SKUs a rules preview evaluates.
pub const PREVIEW_LIMIT: usize = 200;

/// What a channel shows for one item under one set of rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewAvailability {
    pub quantity: i64,
    pub status: AvailabilityStatus,
    pub listed: bool,
    /// What a shopper can see and buy: the quantity when listed, else 0.
    pub shown: i64,
}

impl From<&Evaluation> for PreviewAvailability {
    fn from(e: &Evaluation) -> Self {
        PreviewAvailability {
            quantity: e.quantity,
            status: e.status,
            listed: e.listed,
            shown: if e.listed { e.quantity } else { 0 },
        }
    }
}

/// One SKU of a rules preview: its availability under the current rules and under the proposed ones.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewItem {
    pub sku: String,
    pub before: PreviewAvailability,
    pub after: PreviewAvailability,
}

/// The effect a rule change would have, computed without saving it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RulesPreview {
    /// The SKUs in the rule's scope, in catalog order.
    pub items: Vec<PreviewItem>,
    /// How many of them would change.
    pub changed: usize,
    /// More SKUs are in the scope than were evaluated.
    pub truncated: bool,
}

/// A channel's price for a SKU, and where it came from.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceView {
    pub channel: String,
    pub sku: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub price: Decimal,
    pub currency: String,
    /// `price_list:GROUP`, `channel` or `catalog`.
    pub source: String,
}

// Feed cursors name their channel, so that a cursor of one channel is refused by another's feed.
fn encode_feed_cursor(channel: ChannelId, seq: i64) -> String {
    format!("f{channel:x}-{seq:x}")
}

fn decode_feed_cursor(c: &str) -> Option<(ChannelId, i64)> {
    let (ch, seq) = c.strip_prefix('f')?.split_once('-')?;
    let ch = i64::from_str_radix(ch, 16).ok().filter(|v| *v > 0)?;
    let seq = i64::from_str_radix(seq, 16).ok().filter(|v| *v >= 0)?;
    Some((ch, seq))
}

fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn channel_event(channel: &str, scope: Option<(&str, &str)>) -> OutboxEvent {
    let payload = match scope {
        Some((scope, key)) => serde_json::json!({ "channel": channel, "scope": scope, "key": key }),
        None => serde_json::json!({ "channel": channel }),
    };
    OutboxEvent { topic: CHANNEL_CHANGED.into(), payload }
}

/// Builds the outbox events of a changed availability row.
pub fn availability_events(code: &str, old: Option<&FeedRow>, new: &FeedRow) -> Vec<OutboxEvent> {
    let state = |topic: &str| OutboxEvent {
        topic: topic.into(),
        payload: serde_json::json!({
            "channel": code, "sku": new.sku, "quantity": new.quantity, "status": new.status,
            "listed": new.listed, "seq": new.seq, "updated_at": new.updated_at,
        }),
    };
    let mut events = vec![state(AVAILABILITY_UPDATED)];
    if new.status == AvailabilityStatus::LowStock && old.map(|o| o.status) != Some(AvailabilityStatus::LowStock) {
        events.push(state(STOCK_LOW));
    }
    events
}

/// The evaluation of one item on one channel, from the rules and the stock per bin. Pure apart from its inputs.
/// `stock` holds the available units per bin of the item, or, for a bundle (`components` given), of its
/// components.
pub fn evaluate_item(
    channel: &ChannelSnapshot,
    facts: &ItemFacts,
    bin_warehouse: &HashMap<LocationId, LocationId>,
    stock: &HashMap<ItemId, Vec<(LocationId, i64)>>,
    components: Option<&[domain::bundle::Component]>,
    recent_sales: i64,
) -> Evaluation {
    let stack = rule_stack(channel, facts);
    let in_warehouse = |item: ItemId, warehouse: LocationId| -> i64 {
        stock
            .get(&item)
            .map(|bins| {
                bins.iter().filter(|(bin, _)| bin_warehouse.get(bin) == Some(&warehouse)).map(|(_, q)| *q).sum()
            })
            .unwrap_or(0)
    };
    let stock = match components {
        // A bundle holds no stock: it pools as many bundles as its scarcest component allows in the channel's
        // warehouses, and the channel's rules then apply to that count.
        Some(components) => {
            let parts: Vec<(i64, i64)> = components
                .iter()
                .map(|c| {
                    let available = channel.record.warehouses.iter().map(|(w, _)| in_warehouse(c.item, *w)).sum();
                    (c.quantity, available)
                })
                .collect();
            let available = domain::bundle::available(&parts).unwrap_or(0);
            let listing = components
                .iter()
                .zip(&parts)
                .map(|(c, (per, available))| format!("item {}: {available} available, {per} per bundle", c.item))
                .collect::<Vec<_>>()
                .join("; ");
            Stock::Pooled {
                available,
                note: format!(
                    "a bundle: as many as its scarcest component allows in the channel's warehouses ({listing})"
                ),
            }
        }
        None => Stock::Warehouses(
            channel
                .record
                .warehouses
                .iter()
                .map(|(id, code)| (code.clone(), in_warehouse(facts.item_id, *id)))
                .collect(),
        ),
    };
    evaluate(&Input { stock, catalog_policy: facts.policy, recent_sales, rules: stack })
}

fn rule_stack<'a>(channel: &'a ChannelSnapshot, facts: &ItemFacts) -> RuleStack<'a> {
    let mut tags = facts.tags.clone();
    tags.sort();
    RuleStack::for_item(channel.rules.iter().map(|(s, r)| (s, r)), &facts.sku, facts.category.as_deref(), &tags)
}

impl App {
    pub(crate) fn channel_state(&self) -> &ChannelState {
        &self.channels
    }

    fn forget_channel(&self, code: &str) {
        self.channel_state().cache.write().unwrap_or_else(|e| e.into_inner()).remove(code);
        self.channel_state().wake.notify_one();
    }

    /// The channel with its rules, from the cache when fresh.
    pub async fn channel_snapshot(&self, code: &str) -> AppResult<Arc<ChannelSnapshot>> {
        let not_found = || AppError::NotFound { entity: "channel", key: code.to_string() };
        if let Some((at, snap)) = self.channel_state().cache.read().unwrap_or_else(|e| e.into_inner()).get(code) {
            if at.elapsed() < CACHE_TTL {
                return snap.clone().ok_or_else(not_found);
            }
        }
        let snap = match self.store.get_channel(code).await? {
            Some(record) => {
                let rules = self.store.channel_rules(record.id).await?;
                Some(Arc::new(ChannelSnapshot { record, rules }))
            }
            None => None,
        };
        self.channel_state()
            .cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(code.to_string(), (Instant::now(), snap.clone()));
        snap.ok_or_else(not_found)
    }

    /// Which warehouse each sellable bin belongs to, cached briefly.
    async fn bin_warehouses(&self) -> AppResult<BinWarehouses> {
        if let Some((at, map)) = &*self.channel_state().bins.read().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < CACHE_TTL {
                return Ok(map.clone());
            }
        }
        let map: BinWarehouses =
            Arc::new(self.store.sellable_bins().await?.into_iter().map(|b| (b.bin, b.warehouse)).collect());
        *self.channel_state().bins.write().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), map.clone()));
        Ok(map)
    }

    /// Checks a channel's fields and resolves its warehouse codes; every bad field is named.
    async fn channel_fields(&self, f: &ChannelFields, warehouses: &[String]) -> AppResult<Vec<LocationId>> {
        let mut p = Problems::default();
        if !valid_code(&f.code) {
            p.push("code", format!("must be 1 to {MAX_CODE_LEN} letters, digits, '-', '_' or '.'"));
        }
        if f.name.trim().is_empty() || f.name.chars().count() > 255 {
            p.push("name", "must be 1 to 255 characters");
        }
        if f.market_country.len() != 2 || !f.market_country.chars().all(|c| c.is_ascii_uppercase()) {
            p.push("market_country", "must be an ISO 3166-1 alpha-2 code such as DE");
        }
        if let Err(e) = validate_currency(&f.currency) {
            p.push("currency", e);
        }
        for (sku, price) in &f.prices {
            if price.is_sign_negative() {
                p.push(format!("prices.{sku}"), "must not be negative");
            }
        }
        for (group, list) in &f.price_lists {
            if group.trim().is_empty() {
                p.push("price_lists", "group names must not be empty");
            }
            for (sku, price) in list {
                if price.is_sign_negative() {
                    p.push(format!("price_lists.{group}.{sku}"), "must not be negative");
                }
            }
        }
        for (class, rate) in &f.tax_rates {
            if rate.is_sign_negative() || *rate > Decimal::from(100) {
                p.push(format!("tax_rates.{class}"), "must be between 0 and 100");
            }
        }
        if warehouses.is_empty() {
            p.push("warehouses", "must name at least one warehouse");
        }
        let mut seen = HashSet::new();
        for (i, w) in warehouses.iter().enumerate() {
            if !seen.insert(w) {
                p.push(format!("warehouses[{i}]"), "is listed twice");
            }
        }
        p.into_result().map_err(AppError::Validation)?;
        let ids = self.resolve_warehouses(warehouses, "warehouses").await?;
        let skus: Vec<String> = f.prices.keys().chain(f.price_lists.values().flat_map(|l| l.keys())).cloned().collect();
        let known = self.store.resolve_skus(&skus).await?;
        let unknown: Vec<domain::FieldError> = skus
            .iter()
            .filter(|s| !known.contains_key(*s))
            .map(|s| domain::FieldError::new(format!("prices.{s}"), "no variant has this SKU"))
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::UnknownReference(unknown));
        }
        Ok(ids)
    }

    /// The ids of warehouse codes; an unknown code or a location that is not a warehouse is named.
    async fn resolve_warehouses(&self, codes: &[String], field: &str) -> AppResult<Vec<LocationId>> {
        let found = self.store.resolve_paths(codes).await?;
        let mut bad = vec![];
        let mut ids = vec![];
        for (i, c) in codes.iter().enumerate() {
            match found.get(c) {
                Some(l) if l.kind == LocationKind::Warehouse => ids.push(l.id),
                Some(_) => bad.push(domain::FieldError::new(format!("{field}[{i}]"), "is not a warehouse")),
                None => bad.push(domain::FieldError::new(format!("{field}[{i}]"), "no warehouse has this code")),
            }
        }
        if bad.is_empty() {
            Ok(ids)
        } else {
            Err(AppError::UnknownReference(bad))
        }
    }

    pub async fn create_channel(&self, req: NewChannel) -> AppResult<ChannelView> {
        let fields = ChannelFields {
            code: req.code.trim().to_string(),
            name: req.name.trim().to_string(),
            market_country: req.market_country,
            currency: req.currency,
            prices: req.prices,
            price_lists: req.price_lists,
            tax_rates: req.tax_rates,
        };
        let ids = self.channel_fields(&fields, &req.warehouses).await?;
        let event = channel_event(&fields.code, None);
        let rec = self.store.create_channel(&fields, &ids, &event, Utc::now()).await.map_err(|e| match e {
            StoreError::Conflict { constraint } if constraint.contains("channels.code") => {
                AppError::conflict("duplicate_channel", format!("a channel with code '{}' exists", fields.code))
            }
            e => e.into(),
        })?;
        self.forget_channel(&fields.code);
        Ok(ChannelView::from(&rec))
    }

    pub async fn channel(&self, code: &str) -> AppResult<ChannelView> {
        let rec = self
            .store
            .get_channel(code)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "channel", key: code.to_string() })?;
        Ok(ChannelView::from(&rec))
    }

    pub async fn list_channels(&self, page: PageRequest) -> AppResult<Page<ChannelView>> {
        let rows = self.store.list_channels(page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.iter().map(ChannelView::from).collect(), next_cursor: page.next_cursor })
    }

    pub async fn update_channel(&self, code: &str, patch: ChannelPatch) -> AppResult<ChannelView> {
        let rec = self
            .store
            .get_channel(code)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "channel", key: code.to_string() })?;
        let mut f = rec.fields.clone();
        if let Some(v) = patch.name {
            f.name = v.trim().to_string();
        }
        if let Some(v) = patch.market_country {
            f.market_country = v;
        }
        if let Some(v) = patch.currency {
            f.currency = v;
        }
        if let Some(v) = patch.prices {
            f.prices = v;
        }
        if let Some(v) = patch.price_lists {
            f.price_lists = v;
        }
        if let Some(v) = patch.tax_rates {
            f.tax_rates = v;
        }
        let codes = patch.warehouses.unwrap_or_else(|| rec.warehouses.iter().map(|(_, c)| c.clone()).collect());
        let ids = self.channel_fields(&f, &codes).await?;
        let event = channel_event(code, None);
        let rec = self.store.update_channel(rec.id, &f, &ids, &event, Utc::now()).await?;
        self.forget_channel(code);
        Ok(ChannelView::from(&rec))
    }

    pub async fn delete_channel(&self, code: &str) -> AppResult<()> {
        let rec = self
            .store
            .get_channel(code)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "channel", key: code.to_string() })?;
        self.store.delete_channel(rec.id, &channel_event(code, None)).await?;
        self.forget_channel(code);
        Ok(())
    }

    pub async fn channel_rules(&self, code: &str) -> AppResult<Vec<RulesView>> {
        let snap = self.channel_snapshot(code).await?;
        let rules = self.store.channel_rules(snap.record.id).await?;
        Ok(rules.iter().map(|(s, r)| rules_view(s, r)).collect())
    }

    fn rule_source(scope: RuleScope, key: Option<&str>) -> AppResult<RuleSource> {
        let key = key.map(str::trim).filter(|k| !k.is_empty());
        Ok(match (scope, key) {
            (RuleScope::Channel, None) => RuleSource::Channel,
            (RuleScope::Channel, Some(_)) => return Err(AppError::field("key", "the channel scope takes no key")),
            (_, None) => return Err(AppError::field("key", "is required for this scope")),
            (RuleScope::Category, Some(k)) => {
                RuleSource::Category(normalize_category(k).map_err(|e| AppError::field("key", e))?)
            }
            (RuleScope::Tag, Some(k)) => RuleSource::Tag(k.to_string()),
            (RuleScope::Item, Some(k)) => RuleSource::Item(k.to_string()),
        })
    }

    /// Checks a rule set for its scope, as saving it would: the scope's key, each field, the warehouses it names
    /// and the SKU of an item scope.
    async fn checked_rules(&self, req: &RulesRequest) -> AppResult<RuleSource> {
        let source = Self::rule_source(req.scope, req.key.as_deref())?;
        let mut p = Problems::default();
        req.rules.validate("rules.", &mut p);
        p.into_result().map_err(AppError::Validation)?;
        let codes: Vec<String> = req.rules.warehouse_codes().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        self.resolve_warehouses(&codes, "rules.warehouses").await?;
        if let RuleSource::Item(sku) = &source {
            if self.store.resolve_skus(std::slice::from_ref(sku)).await?.is_empty() {
                return Err(AppError::UnknownReference(vec![domain::FieldError::new(
                    "key",
                    "no variant has this SKU",
                )]));
            }
        }
        Ok(source)
    }

    pub async fn put_channel_rules(&self, code: &str, req: RulesRequest) -> AppResult<RulesView> {
        let snap = self.channel_snapshot(code).await?;
        let source = self.checked_rules(&req).await?;
        let (scope, key) = crate::channel_store::scope_key(&source);
        let event = channel_event(code, Some((scope, key)));
        self.store.put_rules(snap.record.id, &source, &req.rules, &event, Utc::now()).await?;
        self.forget_channel(code);
        Ok(rules_view(&source, &req.rules))
    }

    /// What saving `req` would change, without saving it: the availability of the SKUs in the rule's scope under
    /// the channel's current rules and under the proposed ones, at most [`PREVIEW_LIMIT`] of them. Invalid rules
    /// are refused as saving them would be.
    pub async fn preview_channel_rules(&self, code: &str, req: RulesRequest) -> AppResult<RulesPreview> {
        let current = self.channel_snapshot(code).await?;
        let source = self.checked_rules(&req).await?;
        let mut rules: Vec<(RuleSource, RuleSet)> =
            current.rules.iter().filter(|(s, _)| *s != source).cloned().collect();
        rules.push((source.clone(), req.rules.clone()));
        let proposed = ChannelSnapshot { record: current.record.clone(), rules };
        let (facts, truncated) = self.facts_in_scope(&source, &req.rules).await?;
        let bins = self.bin_warehouses().await?;
        let mut evaluations = self.evaluate_items(&[&current, &proposed], &facts, &bins).await?;
        // Channel-major: the current rules' evaluations of every item, then the proposed ones'.
        let after = evaluations.split_off(facts.len());
        let items: Vec<PreviewItem> = facts
            .iter()
            .zip(evaluations.iter().zip(&after))
            .map(|(f, ((_, _, b), (_, _, a)))| PreviewItem {
                sku: f.sku.clone(),
                before: PreviewAvailability::from(b),
                after: PreviewAvailability::from(a),
            })
            .collect();
        let changed = items.iter().filter(|i| i.before != i.after).count();
        Ok(RulesPreview { items, changed, truncated })
    }

    /// The items a rule of `source` applies to, in item order, at most [`PREVIEW_LIMIT`]; true when there are more.
    /// Whether a rule applies is the domain's own test ([`RuleStack::for_item`]), not a second copy of it.
    async fn facts_in_scope(&self, source: &RuleSource, rules: &RuleSet) -> AppResult<(Vec<ItemFacts>, bool)> {
        if let RuleSource::Item(sku) = source {
            return Ok((self.store.item_facts_by_sku(sku).await?.into_iter().collect(), false));
        }
        let mut found = vec![];
        let mut after = None;
        loop {
            let page = self.store.item_facts(None, after, RECOMPUTE_CHUNK).await?;
            let full = page.len() == RECOMPUTE_CHUNK as usize;
            after = page.last().map(|f| f.item_id);
            for f in page {
                let applies =
                    !RuleStack::for_item([(source, rules)], &f.sku, f.category.as_deref(), &f.tags).0.is_empty();
                if applies {
                    if found.len() == PREVIEW_LIMIT {
                        return Ok((found, true));
                    }
                    found.push(f);
                }
            }
            if !full {
                return Ok((found, false));
            }
        }
    }

    pub async fn delete_channel_rules(&self, code: &str, scope: RuleScope, key: Option<&str>) -> AppResult<()> {
        let snap = self.channel_snapshot(code).await?;
        let source = Self::rule_source(scope, key)?;
        let (s, k) = crate::channel_store::scope_key(&source);
        let event = channel_event(code, Some((s, k)));
        if !self.store.delete_rules(snap.record.id, &source, &event).await? {
            return Err(AppError::NotFound { entity: "rules", key: format!("{s}:{k}") });
        }
        self.forget_channel(code);
        Ok(())
    }

    /// What the channel shows for the SKU right now, computed live: the cached channel and rules, then one read
    /// of the item's facts, bundle rows and stock together, and one of its sales only when a velocity rule applies.
    pub async fn channel_availability(&self, code: &str, sku: &str, explain: bool) -> AppResult<AvailabilityView> {
        let snap = self.channel_snapshot(code).await?;
        let LookupInputs { facts, edges, bins: available } = self
            .store
            .lookup_inputs(sku)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "variant", key: sku.to_string() })?;
        let bins = self.bin_warehouses().await?;
        let parts = crate::bundles::bundle_parts_of(&[facts.item_id], edges)?.parts;
        let components = parts.get(&facts.item_id).map(Vec::as_slice);
        let stocked: HashSet<ItemId> = match components {
            Some(c) => c.iter().map(|c| c.item).collect(),
            None => HashSet::from([facts.item_id]),
        };
        let mut stock: HashMap<ItemId, Vec<(LocationId, i64)>> = HashMap::new();
        for (item, bin, q) in available.into_iter().filter(|(item, _, _)| stocked.contains(item)) {
            stock.entry(item).or_default().push((bin, q));
        }
        let sales = match velocity_days(&rule_stack(&snap, &facts)) {
            Some(days) => {
                let since = Utc::now() - chrono::TimeDelta::days(days);
                self.store.units_ordered_since(&[facts.item_id], since).await?.get(&facts.item_id).copied().unwrap_or(0)
            }
            None => 0,
        };
        let e = evaluate_item(&snap, &facts, &bins, &stock, components, sales);
        let expected_date = match e.status {
            AvailabilityStatus::Backorder => self.next_promise_date(facts.item_id).await?,
            _ => None,
        };
        Ok(AvailabilityView {
            channel: code.to_string(),
            sku: facts.sku,
            quantity: e.quantity,
            status: e.status,
            listed: e.listed,
            expected_date,
            explanation: explain.then_some(e.steps),
        })
    }

    /// The channel's price for a SKU: the customer group's price list, else the channel's price, else the
    /// catalog's.
    pub async fn channel_price(&self, code: &str, sku: &str, group: Option<&str>) -> AppResult<PriceView> {
        let snap = self.channel_snapshot(code).await?;
        let f = &snap.record.fields;
        let view = |price: Decimal, currency: String, source: String| PriceView {
            channel: code.to_string(),
            sku: sku.to_string(),
            price,
            currency,
            source,
        };
        if let Some(g) = group {
            if !f.price_lists.contains_key(g) {
                return Err(AppError::field("customer_group", "the channel has no price list for this group"));
            }
            if let Some(p) = f.price_lists.get(g).and_then(|l| l.get(sku)) {
                return Ok(view(*p, f.currency.clone(), format!("price_list:{g}")));
            }
        }
        if let Some(p) = f.prices.get(sku) {
            return Ok(view(*p, f.currency.clone(), "channel".into()));
        }
        let v = self
            .store
            .list_variants(&crate::store::VariantFilter { sku: Some(sku.to_string()), ..Default::default() }, None, 1)
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound { entity: "variant", key: sku.to_string() })?;
        Ok(view(v.fields.price, v.fields.currency, "catalog".into()))
    }

    /// The channel whose code is `source`, if any.
    pub(crate) async fn channel_of(&self, source: &str) -> AppResult<Option<Arc<ChannelSnapshot>>> {
        match self.channel_snapshot(source).await {
            Ok(s) => Ok(Some(s)),
            Err(AppError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The warehouses an order from a channel allocates from: the channel's, in its order.
    /// The write path finds their bins in its own list of sellable bins.
    pub(crate) fn channel_allocation(&self, channel: Option<&ChannelSnapshot>) -> Option<Vec<LocationId>> {
        channel.map(|snap| snap.record.warehouses.iter().map(|(w, _)| *w).collect())
    }

    /// Changes of the channel's availability after `cursor` (from the start when absent).
    pub async fn availability_feed(&self, code: &str, cursor: Option<&str>, limit: Option<u32>) -> AppResult<FeedPage> {
        let snap = self.channel_snapshot(code).await?;
        let id = snap.record.id;
        let limit = limit.unwrap_or(crate::page::DEFAULT_LIMIT);
        if limit == 0 || limit > crate::page::MAX_LIMIT {
            return Err(AppError::field("limit", format!("must be between 1 and {}", crate::page::MAX_LIMIT)));
        }
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => match decode_feed_cursor(c) {
                Some((ch, seq)) if ch == id => seq,
                Some(_) => return Err(AppError::field("updated_since", "is a cursor of another channel")),
                None => return Err(AppError::field("updated_since", "is not a cursor of this feed")),
            },
        };
        let mut rows = self.store.availability_changes(id, after, limit + 1).await?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let last = rows.last().map(|r| r.seq).unwrap_or(after);
        Ok(FeedPage {
            items: rows.iter().map(FeedItem::from).collect(),
            next_cursor: encode_feed_cursor(id, last),
            has_more,
        })
    }

    /// One page of the channel's full snapshot, in item order, for streaming exports.
    pub async fn availability_snapshot_page(
        &self,
        code: &str,
        after: Option<ItemId>,
        limit: u32,
    ) -> AppResult<(Vec<FeedItem>, Option<ItemId>)> {
        let snap = self.channel_snapshot(code).await?;
        let rows = self.store.availability_rows(snap.record.id, after, limit).await?;
        let next = if rows.len() == limit as usize { rows.last().map(|r| r.item_id) } else { None };
        Ok((rows.iter().map(FeedItem::from).collect(), next))
    }

    /// Recomputes the availability of `items` (every item when `None`) on `channels` (every channel when
    /// `None`) and writes what changed, as the lease holder `node`. The watermark is stored with the last write.
    pub async fn recompute_availability(
        &self,
        node: &str,
        channels: Option<&HashSet<ChannelId>>,
        items: Option<&[ItemId]>,
        watermark: Option<i64>,
    ) -> AppResult<usize> {
        let mut snaps = vec![];
        let mut after = None;
        loop {
            let page = self.store.list_channels(after, crate::page::MAX_LIMIT).await?;
            let full = page.len() == crate::page::MAX_LIMIT as usize;
            after = page.last().map(|r| r.id);
            for record in page {
                if channels.is_none_or(|c| c.contains(&record.id)) {
                    let rules = self.store.channel_rules(record.id).await?;
                    snaps.push(ChannelSnapshot { record, rules });
                }
            }
            if !full {
                break;
            }
        }
        let codes: HashMap<ChannelId, String> =
            snaps.iter().map(|s| (s.record.id, s.record.fields.code.clone())).collect();
        let events = move |old: Option<&FeedRow>, new: &FeedRow| {
            availability_events(codes.get(&new.channel_id).map(String::as_str).unwrap_or(""), old, new)
        };
        let bins: HashMap<LocationId, LocationId> =
            self.store.sellable_bins().await?.into_iter().map(|b| (b.bin, b.warehouse)).collect();
        let mut written = 0;
        let mut after_item = None;
        let mut explicit = items.map(|i| i.chunks(RECOMPUTE_CHUNK as usize));
        // With no channel there is nothing to compute: the items' facts are not read at all.
        while !snaps.is_empty() {
            let facts = match &mut explicit {
                Some(chunks) => match chunks.next() {
                    Some(chunk) => self.store.item_facts(Some(chunk), None, RECOMPUTE_CHUNK).await?,
                    None => break,
                },
                None => {
                    let f = self.store.item_facts(None, after_item, RECOMPUTE_CHUNK).await?;
                    if f.is_empty() {
                        break;
                    }
                    after_item = f.last().map(|f| f.item_id);
                    f
                }
            };
            if facts.is_empty() {
                continue;
            }
            let refs: Vec<&ChannelSnapshot> = snaps.iter().collect();
            let evaluations = self.evaluate_items(&refs, &facts, &bins).await?;
            let rows: Vec<ComputedAvailability> = evaluations
                .into_iter()
                .map(|(s, f, e)| ComputedAvailability {
                    channel_id: refs[s].record.id,
                    item_id: facts[f].item_id,
                    quantity: e.quantity,
                    status: e.status,
                    listed: e.listed,
                })
                .collect();
            written += self.store.write_availability(node, &rows, None, &events, Utc::now()).await?.len();
        }
        if watermark.is_some() {
            self.store.write_availability(node, &[], watermark, &events, Utc::now()).await?;
        }
        Ok(written)
    }

    /// Evaluates every item on every channel given: (channel index, item index, evaluation), channel by channel.
    /// Reads the stock of the items (and of the components of bundles among them) once, and their sales once per
    /// distinct velocity window the rules ask for. The feed's worker and the rules preview both evaluate here.
    async fn evaluate_items(
        &self,
        snaps: &[&ChannelSnapshot],
        facts: &[ItemFacts],
        bins: &HashMap<LocationId, LocationId>,
    ) -> AppResult<Vec<(usize, usize, Evaluation)>> {
        if facts.is_empty() || snaps.is_empty() {
            return Ok(vec![]);
        }
        let mut ids: Vec<ItemId> = facts.iter().map(|f| f.item_id).collect();
        let parts = self.bundle_parts_or_none(&ids).await?;
        ids.extend(parts.values().flatten().map(|c| c.item));
        ids.sort_unstable();
        ids.dedup();
        let mut stock: HashMap<ItemId, Vec<(LocationId, i64)>> = HashMap::new();
        for (item, bin, q) in self.store.bin_available(&ids).await? {
            stock.entry(item).or_default().push((bin, q));
        }
        // Sales are read once per distinct velocity window among the rules that apply.
        let mut windows: BTreeMap<i64, Vec<ItemId>> = BTreeMap::new();
        for s in snaps {
            for f in facts {
                if let Some(d) = velocity_days(&rule_stack(s, f)) {
                    windows.entry(d).or_default().push(f.item_id);
                }
            }
        }
        let mut sales: HashMap<(i64, ItemId), i64> = HashMap::new();
        for (days, mut items) in windows {
            items.sort_unstable();
            items.dedup();
            let since = Utc::now() - chrono::TimeDelta::days(days);
            for (item, n) in self.store.units_ordered_since(&items, since).await? {
                sales.insert((days, item), n);
            }
        }
        let mut out = Vec::with_capacity(facts.len() * snaps.len());
        for (si, s) in snaps.iter().enumerate() {
            for (fi, f) in facts.iter().enumerate() {
                let recent = velocity_days(&rule_stack(s, f))
                    .map(|d| sales.get(&(d, f.item_id)).copied().unwrap_or(0))
                    .unwrap_or(0);
                let components = parts.get(&f.item_id).map(Vec::as_slice);
                out.push((si, fi, evaluate_item(s, f, bins, &stock, components, recent)));
            }
        }
        Ok(out)
    }

    /// The components of those items that are bundles. A bundle whose definition can no longer be flattened (a
    /// nested definition made it too deep or too large) is left out, so it shows as holding no stock, rather than
    /// failing the whole recomputation and so stopping the feed of every item.
    async fn bundle_parts_or_none(
        &self,
        items: &[ItemId],
    ) -> AppResult<HashMap<ItemId, Vec<domain::bundle::Component>>> {
        match self.bundle_parts(items).await {
            Ok(p) => Ok(p.parts),
            Err(AppError::Store(e)) => Err(AppError::Store(e)),
            Err(e) => {
                tracing::warn!(error = %e, "a bundle definition cannot be flattened; its bundles show no stock");
                let mut parts = HashMap::new();
                for item in items {
                    if let Ok(p) = self.bundle_parts(&[*item]).await {
                        parts.extend(p.parts);
                    }
                }
                Ok(parts)
            }
        }
    }

    /// Runs the availability worker until the process ends: while this node holds the feed lease, it tails the
    /// outbox, coalesces what arrived within `window`, and recomputes the affected (channel, item) pairs.
    /// Started by servers only (`stockroom serve`, the test server): a command-line tool taking the lease would keep
    /// a server started right after it from writing the feed for a while.
    pub fn start_availability_worker(&self, config: FeedConfig) {
        let app = self.clone();
        tokio::spawn(async move {
            let node = node_id();
            let mut tail: Option<Tail> = None;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(config.window) => {}
                    _ = app.channel_state().wake.notified() => {
                        // A change on this node: still wait out the window, so that a burst is one recomputation.
                        tokio::time::sleep(config.window).await;
                    }
                }
                if let Err(e) = app.availability_round(&node, &mut tail).await {
                    tracing::warn!(error = %e, "availability worker round failed");
                    // Start again from the stored watermark: recomputing is idempotent.
                    tail = None;
                }
            }
        });
    }

    /// One round: renews the lease when due, then reads the outbox page by page (at most [`ROUND_PAGES`]) and
    /// recomputes what each page touched, and stores the watermark once at the end.
    async fn availability_round(&self, node: &str, tail: &mut Option<Tail>) -> AppResult<()> {
        let now = Utc::now();
        let lease = chrono::TimeDelta::from_std(LEASE).unwrap_or_default();
        // The lease is renewed once a third of it has passed, not every round: each renewal is a write.
        let renew = tail.as_ref().is_none_or(|t| now >= t.lease_until - lease * 2 / 3);
        if renew {
            if !self.store.acquire_feed_lease(node, now + lease, now).await? {
                *tail = None;
                return Ok(());
            }
            if tail.is_none() {
                *tail = Some(Tail::new(self.store.feed_watermark().await?));
            }
            if let Some(t) = tail.as_mut() {
                t.lease_until = now + lease;
            }
        }
        let t = tail.as_mut().expect("set when the lease was taken");
        let started = Instant::now();
        for _ in 0..ROUND_PAGES {
            if !self.availability_page(node, t).await? || started.elapsed() >= ROUND_BUDGET {
                break;
            }
        }
        if t.watermark > t.stored {
            self.store.write_availability(node, &[], Some(t.watermark), &|_, _| vec![], Utc::now()).await?;
            t.stored = t.watermark;
        }
        Ok(())
    }

    /// Reads one page of the outbox past the watermark and recomputes what it touched. True when the page was
    /// full and moved the watermark: more may be waiting. (A full page behind a gap that is still awaited moves
    /// nothing; reading it again at once would only spin until the gap closes.)
    async fn availability_page(&self, node: &str, t: &mut Tail) -> AppResult<bool> {
        let events = self.store.outbox_after(t.watermark, OUTBOX_PAGE).await?;
        let mut items: BTreeSet<ItemId> = BTreeSet::new();
        let mut whole: HashSet<String> = HashSet::new();
        let mut some: HashMap<String, Vec<String>> = HashMap::new();
        for e in &events {
            if !t.seen.insert(e.id) {
                continue;
            }
            match e.topic.as_str() {
                "inventory.changed" => {
                    for b in e.payload["balances"].as_array().into_iter().flatten() {
                        if let Some(i) = b["item_id"].as_i64() {
                            items.insert(i);
                        }
                    }
                }
                CHANNEL_CHANGED => {
                    let channel = e.payload["channel"].as_str().unwrap_or_default().to_string();
                    match (e.payload["scope"].as_str(), e.payload["key"].as_str()) {
                        (Some("item"), Some(sku)) => some.entry(channel).or_default().push(sku.to_string()),
                        _ => {
                            whole.insert(channel);
                        }
                    }
                }
                _ => {}
            }
        }
        let before = t.watermark;
        let watermark = t.advance(Instant::now());
        if !items.is_empty() {
            // A component's change changes what its bundles (and the bundles above them) can sell.
            let mut items: Vec<ItemId> = items.into_iter().collect();
            let mut frontier = items.clone();
            while !frontier.is_empty() {
                let above: Vec<ItemId> =
                    self.store.bundles_using(&frontier).await?.into_iter().map(|e| e.bundle).collect();
                frontier = above.into_iter().filter(|b| !items.contains(b)).collect();
                frontier.sort_unstable();
                frontier.dedup();
                items.extend(&frontier);
            }
            self.recompute_availability(node, None, Some(&items), None).await?;
        }
        for (code, skus) in some {
            if whole.contains(&code) {
                continue;
            }
            if let Some(rec) = self.store.get_channel(&code).await? {
                let ids: Vec<ItemId> = self.store.resolve_skus(&skus).await?.into_values().collect();
                self.recompute_availability(node, Some(&HashSet::from([rec.id])), Some(&ids), None).await?;
            }
        }
        for code in whole {
            if let Some(rec) = self.store.get_channel(&code).await? {
                self.recompute_availability(node, Some(&HashSet::from([rec.id])), None, None).await?;
            }
        }
        Ok(events.len() == OUTBOX_PAGE as usize && watermark > before)
    }
}

/// A name for this process as the feed lease holder: unique enough across nodes and restarts.
fn node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    format!("node-{}-{:016x}", std::process::id(), h.finish())
}

/// The worker's position in the outbox: everything up to `watermark` is processed; `seen` holds processed ids
/// above it (ids can commit out of order, leaving a gap that fills in later).
struct Tail {
    /// Until when this node holds the feed lease, as it last renewed it.
    lease_until: DateTime<Utc>,
    watermark: i64,
    stored: i64,
    seen: BTreeSet<i64>,
    /// The missing ids `start..end` (end: the first id seen above them) and when they were first missed. They are
    /// waited for, and then skipped, together: a rolled-back batch leaves a whole run of missing ids, and waiting
    /// for each in turn would stall the feed for minutes.
    gap_since: Option<(i64, i64, Instant)>,
}

impl Tail {
    fn new(watermark: i64) -> Tail {
        Tail {
            lease_until: DateTime::<Utc>::MIN_UTC,
            watermark,
            stored: watermark,
            seen: BTreeSet::new(),
            gap_since: None,
        }
    }

    /// Moves the watermark over every processed id, and over a gap that stayed open longer than [`GAP_GRACE`].
    fn advance(&mut self, now: Instant) -> i64 {
        loop {
            if self.seen.remove(&(self.watermark + 1)) {
                self.watermark += 1;
                continue;
            }
            if self.seen.is_empty() {
                self.gap_since = None;
                break;
            }
            let gap = self.watermark + 1;
            match self.gap_since {
                // Skip every id of the run that is still missing once the run has waited long enough.
                Some((start, end, since)) if start <= gap && gap < end && now.duration_since(since) >= GAP_GRACE => {
                    self.watermark = end - 1;
                    self.gap_since = None;
                }
                Some((start, end, _)) if start <= gap && gap < end => break,
                _ => {
                    let end = self.seen.first().copied().unwrap_or(gap + 1);
                    self.gap_since = Some((gap, end, now));
                    break;
                }
            }
        }
        self.watermark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_cursors_round_trip_and_name_their_channel() {
        assert_eq!(decode_feed_cursor(&encode_feed_cursor(7, 300)), Some((7, 300)));
        assert_eq!(decode_feed_cursor("c12"), None);
        assert_eq!(decode_feed_cursor("f7-zz"), None);
        assert_eq!(decode_feed_cursor("f0-1"), None);
    }

    #[test]
    fn the_tail_waits_for_gaps_then_skips_them() {
        let t0 = Instant::now();
        let mut t = Tail::new(10);
        t.seen.extend([11, 12, 14]);
        assert_eq!(t.advance(t0), 12);
        // 13 is missing: wait for it...
        assert_eq!(t.advance(t0 + Duration::from_secs(1)), 12);
        // ...it commits late and is seen: the watermark moves over it.
        t.seen.insert(13);
        assert_eq!(t.advance(t0 + Duration::from_secs(2)), 14);
        // A gap that never fills (a rolled-back insert) is skipped after the grace period.
        t.seen.insert(16);
        assert_eq!(t.advance(t0 + Duration::from_secs(3)), 14);
        assert_eq!(t.advance(t0 + Duration::from_secs(3) + GAP_GRACE), 16);
        // A rolled-back batch leaves a run of missing ids: they are skipped together, after one grace period.
        t.seen.extend([100, 101]);
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(t.advance(t1), 16);
        assert_eq!(t.advance(t1 + GAP_GRACE), 101, "17..=99 skipped at once");
        // A run noticed later stays on its own clock: a late id inside it still moves the watermark at once.
        t.seen.extend([104]);
        assert_eq!(t.advance(t1 + GAP_GRACE * 2), 101);
        t.seen.extend([102, 103]);
        assert_eq!(t.advance(t1 + GAP_GRACE * 2), 104);
    }

    #[test]
    fn stock_low_is_sent_when_a_row_turns_low() {
        let row = |status| FeedRow {
            seq: 1,
            channel_id: 1,
            item_id: 1,
            sku: "A".into(),
            quantity: 2,
            status,
            listed: true,
            updated_at: Utc::now(),
        };
        let topics = |old: Option<&FeedRow>, new: &FeedRow| {
            availability_events("web", old, new).into_iter().map(|e| e.topic).collect::<Vec<_>>()
        };
        let low = row(AvailabilityStatus::LowStock);
        let inn = row(AvailabilityStatus::InStock);
        assert_eq!(topics(Some(&inn), &low), [AVAILABILITY_UPDATED, STOCK_LOW]);
        assert_eq!(topics(Some(&low), &low), [AVAILABILITY_UPDATED]);
        assert_eq!(topics(None, &inn), [AVAILABILITY_UPDATED]);
    }
}

//! The store trait of channels: the channels themselves, their availability rules, the facts about items the
//! rules need, and the materialized availability with its feed sequence.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::availability::{AvailabilityStatus, RuleSet, RuleSource};
use domain::catalog::InventoryPolicy;
use domain::stock::{ItemId, LocationId};
use rust_decimal::Decimal;

use crate::store::{OutboxEvent, StoreResult};

pub type ChannelId = i64;

/// A channel's own fields; the warehouses are passed beside them as location ids in priority order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChannelFields {
    pub code: String,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub market_country: String,
    /// ISO 4217.
    pub currency: String,
    /// Price per SKU, overriding the catalog price.
    pub prices: BTreeMap<String, Decimal>,
    /// Customer group → price per SKU.
    pub price_lists: BTreeMap<String, BTreeMap<String, Decimal>>,
    /// Tax class → rate in percent.
    pub tax_rates: BTreeMap<String, Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRecord {
    pub id: ChannelId,
    pub fields: ChannelFields,
    /// (warehouse id, warehouse code) in priority order.
    pub warehouses: Vec<(LocationId, String)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the rules need to know about an item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFacts {
    pub item_id: ItemId,
    pub sku: String,
    pub policy: InventoryPolicy,
    pub category: Option<String>,
    pub tags: Vec<String>,
}

/// What a live availability lookup reads of one SKU ([`ChannelStore::lookup_inputs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LookupInputs {
    pub facts: ItemFacts,
    /// Every bundle row reachable from the item through its components (none for an ordinary variant).
    pub edges: Vec<crate::store::BundleEdge>,
    /// Available units per bin, where positive, of the item and of every component those rows reach.
    pub bins: Vec<(ItemId, LocationId, i64)>,
}

/// A freshly computed availability of one item on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputedAvailability {
    pub channel_id: ChannelId,
    pub item_id: ItemId,
    pub quantity: i64,
    pub status: AvailabilityStatus,
    pub listed: bool,
}

/// A stored availability row, with its place in the channel's feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRow {
    /// Grows with every written row, in commit order, across all channels.
    pub seq: i64,
    pub channel_id: ChannelId,
    pub item_id: ItemId,
    pub sku: String,
    pub quantity: i64,
    pub status: AvailabilityStatus,
    pub listed: bool,
    pub updated_at: DateTime<Utc>,
}

/// An outbox event as read back by a tailing worker.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    pub id: i64,
    pub topic: String,
    pub payload: serde_json::Value,
}

/// Builds the events of one changed row: the row as it was (absent: never computed) and as it is now.
pub type AvailabilityEvents<'a> = dyn Fn(Option<&FeedRow>, &FeedRow) -> Vec<OutboxEvent> + Send + Sync + 'a;

/// Every method that changes a channel or its rules also writes `event` to the outbox in the same transaction:
/// the availability worker (on whichever node holds the feed lease) reads it and recomputes what it affects.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// A duplicate code is `Conflict { constraint: "channels.code" }`.
    async fn create_channel(
        &self,
        fields: &ChannelFields,
        warehouses: &[LocationId],
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<ChannelRecord>;
    /// Replaces a channel's fields and warehouse list; `NotFound` for an unknown id.
    async fn update_channel(
        &self,
        id: ChannelId,
        fields: &ChannelFields,
        warehouses: &[LocationId],
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<ChannelRecord>;
    /// Deletes a channel with its rules and materialized availability; `NotFound` for an unknown id.
    async fn delete_channel(&self, id: ChannelId, event: &OutboxEvent) -> StoreResult<()>;
    async fn get_channel(&self, code: &str) -> StoreResult<Option<ChannelRecord>>;
    async fn list_channels(&self, after: Option<ChannelId>, limit: u32) -> StoreResult<Vec<ChannelRecord>>;
    /// Sets (replaces) the rule set of one scope of a channel.
    async fn put_rules(
        &self,
        channel: ChannelId,
        source: &RuleSource,
        rules: &RuleSet,
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes one scope's rule set; false when there was none.
    async fn delete_rules(&self, channel: ChannelId, source: &RuleSource, event: &OutboxEvent) -> StoreResult<bool>;
    /// Every rule set of a channel, in (scope, key) order.
    async fn channel_rules(&self, channel: ChannelId) -> StoreResult<Vec<(RuleSource, RuleSet)>>;
    /// The facts of the item with this SKU.
    async fn item_facts_by_sku(&self, sku: &str) -> StoreResult<Option<ItemFacts>>;
    /// The facts of these items (unknown ids are absent), or of the next `limit` items after `after` when
    /// `items` is `None`, in item order.
    async fn item_facts(
        &self,
        items: Option<&[ItemId]>,
        after: Option<ItemId>,
        limit: u32,
    ) -> StoreResult<Vec<ItemFacts>>;
    /// A SKU's facts, the bundle rows reachable from it and the available units per bin of it and its
    /// components, read together (one snapshot, and on PostgreSQL one round trip): what a shop's live availability
    /// lookup needs. `None` when no variant has the SKU.
    async fn lookup_inputs(&self, sku: &str) -> StoreResult<Option<LookupInputs>>;
    /// Available units of these items per bin, where positive.
    async fn bin_available(&self, items: &[ItemId]) -> StoreResult<Vec<(ItemId, LocationId, i64)>>;
    /// Units committed to orders (reason `order`, into `committed`) per item since `since`.
    async fn units_ordered_since(&self, items: &[ItemId], since: DateTime<Utc>) -> StoreResult<HashMap<ItemId, i64>>;
    /// Up to `limit` outbox events after id `after`, in id order.
    async fn outbox_after(&self, after: i64, limit: u32) -> StoreResult<Vec<OutboxRecord>>;
    /// The outbox position the availability worker has fully processed.
    async fn feed_watermark(&self) -> StoreResult<i64>;
    /// Takes or renews the lease of the availability writer for `node` until `until`: true when `node` holds it
    /// (it held it already, or the previous holder's lease ran out before `now`).
    async fn acquire_feed_lease(&self, node: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<bool>;
    /// As `node`, the lease holder (else `Conflict { constraint: "feed_state.leader" }` and nothing is written),
    /// in one transaction that excludes every other writer of availability (on any node): compares each row
    /// with the stored one, writes those whose quantity, status or listed changed with the next feed sequence,
    /// writes the events `events` builds for each, and moves the watermark forward to `watermark` if given.
    /// Returns the written rows.
    async fn write_availability(
        &self,
        node: &str,
        rows: &[ComputedAvailability],
        watermark: Option<i64>,
        events: &AvailabilityEvents<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<FeedRow>>;
    /// A channel's rows with a sequence above `after_seq`, in sequence order.
    async fn availability_changes(&self, channel: ChannelId, after_seq: i64, limit: u32) -> StoreResult<Vec<FeedRow>>;
    /// A channel's rows after item `after_item`, in item order (the snapshot export).
    async fn availability_rows(
        &self,
        channel: ChannelId,
        after_item: Option<ItemId>,
        limit: u32,
    ) -> StoreResult<Vec<FeedRow>>;
}

/// The (scope, key) columns a rule set is stored under.
pub fn scope_key(source: &RuleSource) -> (&'static str, &str) {
    match source {
        RuleSource::Channel | RuleSource::Catalog => ("channel", ""),
        RuleSource::Category(k) => ("category", k),
        RuleSource::Tag(k) => ("tag", k),
        RuleSource::Item(k) => ("item", k),
    }
}

/// The rule source stored under (scope, key).
pub fn source_of(scope: &str, key: String) -> Result<RuleSource, crate::StoreError> {
    Ok(match scope {
        "channel" => RuleSource::Channel,
        "category" => RuleSource::Category(key),
        "tag" => RuleSource::Tag(key),
        "item" => RuleSource::Item(key),
        other => return Err(crate::StoreError::Internal(format!("bad rule scope '{other}' in the database"))),
    })
}

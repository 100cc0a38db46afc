//! The store trait of purchasing: suppliers, purchase orders, transfers and counts kept as versioned documents.
//!
//! A document is a domain aggregate stored as JSON with a few header columns for lookups (kind, status, whether
//! it is open). Every write is conditional on the version the writer read, so two writers never overwrite each
//! other: the loser gets `Conflict { constraint: "documents.version" }`. Changes that move stock go through the
//! ledger's batch ([`crate::store::BatchScope::documents`]); the others (create, order, cancel, close) through
//! [`PurchasingStore::insert_document`] and [`PurchasingStore::update_document`], each with its outbox events in
//! the same transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use domain::stock::{ItemId, LocationId};

use crate::store::{OutboxEvent, StoreResult};

pub type DocumentId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    Supplier,
    PurchaseOrder,
    Transfer,
    Count,
}

impl DocKind {
    pub const ALL: [DocKind; 4] = [DocKind::Supplier, DocKind::PurchaseOrder, DocKind::Transfer, DocKind::Count];

    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Supplier => "supplier",
            DocKind::PurchaseOrder => "purchase_order",
            DocKind::Transfer => "transfer",
            DocKind::Count => "count",
        }
    }

    pub fn parse(s: &str) -> Option<DocKind> {
        DocKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRecord {
    /// 0 until the store inserts it.
    pub id: DocumentId,
    pub kind: DocKind,
    /// Copied from the body, for filters.
    pub status: String,
    /// Whether the document still expects stock (open purchase orders, transfers in transit): the incoming
    /// derivation reads only these.
    pub open: bool,
    pub body: serde_json::Value,
    /// Bumped by the store on every write; a write names the version it read.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    pub status: Option<String>,
}

#[async_trait]
pub trait PurchasingStore: Send + Sync {
    /// Inserts a document (its `id` and `version` are ignored) with its events; each event's payload gets the new
    /// document's `id`.
    async fn insert_document(&self, doc: &DocumentRecord, events: &[OutboxEvent]) -> StoreResult<DocumentRecord>;
    /// Writes a document if it is still at `doc.version`, with its events; `Conflict { constraint:
    /// "documents.version" }` when another write came first, `NotFound` for an unknown id.
    async fn update_document(&self, doc: &DocumentRecord, events: &[OutboxEvent]) -> StoreResult<DocumentRecord>;
    async fn get_document(&self, id: DocumentId) -> StoreResult<Option<DocumentRecord>>;
    async fn list_documents(
        &self,
        kind: DocKind,
        filter: &DocumentFilter,
        after: Option<DocumentId>,
        limit: u32,
    ) -> StoreResult<Vec<DocumentRecord>>;
    /// Every open document of these kinds.
    async fn open_documents(&self, kinds: &[DocKind]) -> StoreResult<Vec<DocumentRecord>>;
    /// Sets (or replaces) `item`'s default bin in `warehouse`; the caller has checked that `bin` is a bin inside it.
    async fn set_default_bin(
        &self,
        item: ItemId,
        warehouse: LocationId,
        bin: LocationId,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes `item`'s default bin in `warehouse`; false when it had none.
    async fn clear_default_bin(&self, item: ItemId, warehouse: LocationId) -> StoreResult<bool>;
    /// The path of `item`'s default bin in `warehouse`, if one is set.
    async fn default_bin(&self, item: ItemId, warehouse: LocationId) -> StoreResult<Option<String>>;
    /// A bin under the warehouse path `warehouse` that holds no units in any state: first those that are nobody's
    /// default bin, then by path. One query, however many bins the warehouse has.
    async fn empty_bin(&self, warehouse: &str) -> StoreResult<Option<String>>;
}

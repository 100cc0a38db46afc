//! Stockroom's use cases: they read through the store traits, ask the domain, and write through the one write
//! path (the [`ledger`]), so that every backend and every front end (HTTP, CLI) shares one behaviour.

pub mod bundles;
pub(crate) mod cache;
pub mod catalog;
pub mod channel_store;
pub mod channels;
pub mod error;
pub mod idempotency;
pub mod inventory;
pub mod ledger;
pub mod locations;
pub mod metrics;
pub mod orders;
pub mod page;
pub mod picking;
pub mod purchasing;
pub mod purchasing_store;
pub mod replenishment;
pub mod report_store;
pub mod reports;
pub mod store;
pub mod store_codec;
pub mod trust;
pub mod trust_store;
pub mod valuation;
pub mod valuation_store;
pub mod views;
pub mod webhook_store;
pub mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::stock::{LocationId, VirtualKind};

pub use error::{AppError, AppResult, StoreError};
pub use ledger::{Actor, Ledger, LedgerConfig, WarehousePriority};
pub use orders::HoldConfig;
pub use store::Store;

/// The application: a store and the write path in front of it. Cheap to clone: one shared [`AppParts`], because
/// the HTTP layers clone it for every request, and a clone of each part would count a dozen references up and down.
#[derive(Clone)]
pub struct App(Arc<AppParts>);

impl std::ops::Deref for App {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What an [`App`] holds.
pub struct AppParts {
    pub store: Arc<dyn Store>,
    ledger: Ledger,
    virtuals: HashMap<VirtualKind, LocationId>,
    holds: HoldConfig,
    paths: RwLock<HashMap<LocationId, String>>,
    channels: channels::ChannelState,
    audit: trust::AuditWriter,
    /// API keys by secret hash, so that a request does not wait on the database to be let in.
    keys: cache::TtlCache<trust_store::ApiKeyRecord>,
    /// What an order line needs of its SKU (item, price, policy), by SKU.
    skus: cache::TtlCache<orders::ResolvedLine>,
}

/// How often the cleanup worker ends expired holds. Reads never count an expired hold anyway; the worker only
/// gives the stock back in the ledger.
const HOLD_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl App {
    /// Starts the write path over `store`, with default hold settings. Must be called within a tokio runtime.
    pub async fn start(store: Arc<dyn Store>, config: LedgerConfig) -> AppResult<App> {
        Self::start_with(store, config, HoldConfig::default()).await
    }

    /// Starts the write path and the hold cleanup worker.
    pub async fn start_with(store: Arc<dyn Store>, config: LedgerConfig, holds: HoldConfig) -> AppResult<App> {
        let virtuals = store.virtual_locations().await?;
        for kind in VirtualKind::ALL {
            if !virtuals.contains_key(&kind) {
                return Err(StoreError::Internal(format!("virtual location {} is missing", kind.code())).into());
            }
        }
        let (ledger, _worker) = Ledger::start(store.clone(), config);
        let audit = trust::AuditWriter::start(store.clone());
        let app = App(Arc::new(AppParts {
            store,
            ledger,
            virtuals,
            holds,
            paths: RwLock::default(),
            channels: Default::default(),
            audit,
            keys: Default::default(),
            skus: Default::default(),
        }));
        let sweeper = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOLD_SWEEP_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match sweeper.expire_due_holds().await {
                    Ok(0) => {}
                    Ok(n) => {
                        metrics::METRICS.holds_expired.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        tracing::info!(expired = n, "ended expired holds")
                    }
                    Err(e) => tracing::warn!(error = %e, "could not end expired holds"),
                }
            }
        });
        Ok(app)
    }

    /// Drops what this node cached of the catalog: called after every catalog change made through it.
    pub(crate) fn catalog_changed(&self) {
        self.skus.clear();
    }

    /// Paths of locations by id, from a cache that is reloaded whole only when one of `ids` is missing from it
    /// (paths never change once a location exists).
    pub(crate) async fn paths_snapshot(
        &self,
        ids: impl IntoIterator<Item = LocationId>,
    ) -> AppResult<HashMap<LocationId, String>> {
        let ids: Vec<LocationId> = ids.into_iter().collect();
        let complete = {
            let cache = self.paths.read().unwrap_or_else(|e| e.into_inner());
            ids.iter().all(|id| cache.contains_key(id))
        };
        if !complete {
            let mut all = HashMap::new();
            let mut after = None;
            loop {
                let rows = self.store.list_locations(&Default::default(), after, page::MAX_LIMIT).await?;
                let last = rows.last().map(|r| r.id);
                let full = rows.len() == page::MAX_LIMIT as usize;
                all.extend(rows.into_iter().map(|r| (r.id, r.path)));
                match (full, last) {
                    (true, Some(id)) => after = Some(id),
                    _ => break,
                }
            }
            *self.paths.write().unwrap_or_else(|e| e.into_inner()) = all;
        }
        // Only the paths asked for: a whole copy of a large location tree per order would cost more than the order.
        let cache = self.paths.read().unwrap_or_else(|e| e.into_inner());
        Ok(ids.into_iter().filter_map(|id| cache.get(&id).map(|p| (id, p.clone()))).collect())
    }
}

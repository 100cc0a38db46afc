//! Stockroom's use cases: they read through the store traits, ask the domain, and write through the one write
//! path (the [`ledger`]), so that every backend and every front end (HTTP, CLI) shares one behaviour.

pub mod catalog;
pub mod error;
pub mod idempotency;
pub mod inventory;
pub mod ledger;
pub mod locations;
pub mod page;
pub mod store;
pub mod views;

use std::collections::HashMap;
use std::sync::Arc;

use domain::stock::{LocationId, VirtualKind};

pub use error::{AppError, AppResult, StoreError};
pub use ledger::{Actor, Ledger, LedgerConfig};
pub use store::Store;

/// The application: a store and the write path in front of it. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    ledger: Ledger,
    virtuals: Arc<HashMap<VirtualKind, LocationId>>,
}

impl App {
    /// Starts the write path over `store`. Must be called within a tokio runtime.
    pub async fn start(store: Arc<dyn Store>, config: LedgerConfig) -> AppResult<App> {
        let virtuals = store.virtual_locations().await?;
        for kind in VirtualKind::ALL {
            if !virtuals.contains_key(&kind) {
                return Err(StoreError::Internal(format!("virtual location {} is missing", kind.code())).into());
            }
        }
        let (ledger, _worker) = Ledger::start(store.clone(), config);
        Ok(App { store, ledger, virtuals: Arc::new(virtuals) })
    }
}

//! The one write path: every change to quantities, orders and holds is a [`Command`] submitted here.
//!
//! Commands queue on a channel; a single worker per process takes whatever is queued (up to `max_batch`, never
//! waiting when the queue is empty) and applies it as one batch in one store transaction. Each command keeps its
//! own result: the domain refuses a command without touching the others, and if the store fails a whole batch the
//! commands are retried one by one so that one bad command cannot sink its neighbours.
//!
//! After every command that may have freed or brought stock, the backorder queue of the items it touched is
//! filled first-come first-served, in the same transaction, so that arriving stock goes to waiting orders before
//! anyone else can take it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use domain::order::{CancelError, Carriage, Disposition, LineQuantity, NewLine, Order, OrderError, Package, Posting};
use domain::orders::{AllocationError, BinStock, DemandLine, Hold, HoldError, WarehouseStock};
use domain::payment::PaymentKind;
use domain::stock::{self, Balance, BalanceKey, Balances, ItemId, LedgerError, LedgerOp, LocationId, Reason};
use rust_decimal::Decimal;
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::store::{
    AuditSubject, BatchAudit, BatchScope, BatchState, BatchWrites, HoldId, HoldRecord, NewMovement, OrderId,
    OrderRecord, OutboxEvent, Store,
};
use crate::trust::PendingAudit;

/// Tunables of the write path.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Most commands applied in one transaction.
    pub max_batch: usize,
    /// Most commands waiting; beyond it submitters wait (backpressure) rather than pile up memory.
    pub queue_capacity: usize,
    /// The warehouses orders and holds are allocated from.
    pub warehouses: WarehousePriority,
    /// Longest a batch waits for more commands once it has more than one (busy node); zero never waits. An idle
    /// node, with one command queued, never waits.
    pub max_wait: std::time::Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            queue_capacity: 8192,
            warehouses: WarehousePriority::All,
            max_wait: std::time::Duration::ZERO,
        }
    }
}

/// Which warehouses orders and holds are allocated from, in priority order (until channels bring their own lists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WarehousePriority {
    /// Every warehouse, oldest first.
    #[default]
    All,
    /// These warehouse codes, in this order; others are not sold from.
    Codes(Vec<String>),
}

/// Who asked for a change, recorded on every movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), request_id: None }
    }
}

/// Why and how each line of a stock command was booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMeta {
    pub reason: Reason,
    pub note: Option<String>,
}

/// An adjustment or a move: the domain operation plus what the ledger records about it.
#[derive(Debug, Clone)]
pub struct LedgerCommand {
    pub op: LedgerOp,
    /// One entry per line of `op`.
    pub lines: Vec<LineMeta>,
    pub reference: Option<String>,
    pub actor: Actor,
}

/// A sellable bin and its place in the pickers' walk.
pub type BinSlot = (LocationId, Option<i64>);

/// The sellable bins of each warehouse, warehouses in the priority order allocation follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Warehouses(pub Vec<(LocationId, Vec<BinSlot>)>);

impl Warehouses {
    /// What each warehouse's bins hold of `item` right now.
    fn stock(&self, item: ItemId, balances: &Balances) -> Vec<WarehouseStock> {
        self.0
            .iter()
            .map(|(warehouse, bins)| WarehouseStock {
                warehouse: *warehouse,
                bins: bins
                    .iter()
                    .map(|(bin, pick_sequence)| BinStock {
                        bin: *bin,
                        pick_sequence: *pick_sequence,
                        available: balances.get(&(item, *bin)).map(|b| b.available).unwrap_or(0).max(0),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// A new order, its lines resolved; the record's `order` is filled in by the write path.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub record: OrderRecord,
    pub lines: Vec<NewLine>,
    /// A hold to convert instead of allocating: its reserved stock becomes the order's commitment.
    pub hold: Option<HoldId>,
    pub actor: Actor,
    /// The warehouses to allocate from, in priority order, instead of the node's (an order from a channel: the
    /// channel's list).
    pub warehouses: Option<Vec<LocationId>>,
}

/// A change to a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldChange {
    Extend { expires_at: DateTime<Utc>, max_ttl: TimeDelta },
    Release,
}

/// Every kind of command the write path applies.
#[derive(Debug, Clone)]
pub enum Command {
    Stock(LedgerCommand),
    PlaceOrder(Box<PlaceOrder>),
    /// Cancel units of lines (`(line, quantity)`), or everything still cancellable when empty.
    CancelOrder {
        order: OrderId,
        lines: Vec<(usize, i64)>,
        actor: Actor,
    },
    /// Reserve stock for `ttl`; `record` carries the SKUs, quantities and reference. Demand entry k is hold line k,
    /// unless `record.hold.lines` is given: then its k-th entry's `line` names the hold line of demand entry k (a
    /// bundle's own line has no demand of its own; its components' lines do).
    PlaceHold {
        record: Box<HoldRecord>,
        demand: Vec<DemandLine>,
        ttl: TimeDelta,
        max_ttl: TimeDelta,
        actor: Actor,
    },
    ChangeHold {
        hold: HoldId,
        change: HoldChange,
        actor: Actor,
    },
    /// End every hold whose time is up; the cleanup worker's command.
    ExpireDueHolds,
    /// A step in an order's life after placement.
    OrderStep {
        order: OrderId,
        step: OrderStep,
        actor: Actor,
    },
    /// Re-choose the bins of these orders' commitments in one warehouse, as a pick list is made.
    PlanPicks {
        warehouse: LocationId,
        orders: Vec<OrderId>,
        actor: Actor,
    },
    /// A purchasing document's step that moves stock (a receipt, a transfer's shipment or arrival, a count's
    /// approval), written together with the document.
    Document(Box<documents::DocumentCommand>),
}

/// A change to a placed order. Each is all-or-nothing.
#[derive(Debug, Clone)]
pub enum OrderStep {
    Pay {
        kind: PaymentKind,
        amount: Decimal,
        currency: String,
        reference: Option<String>,
    },
    Ship {
        lines: Vec<(usize, i64)>,
        carriage: Carriage,
    },
    RequestReturn {
        lines: Vec<(usize, i64, String)>,
    },
    /// `(return line, quantity, disposition, bin)` of return `index`.
    ReceiveReturn {
        index: usize,
        lines: Vec<(usize, i64, Disposition, Option<LocationId>)>,
    },
    CreditMemo {
        amount: Decimal,
        lines: Vec<LineQuantity>,
        reason: String,
    },
    /// New quantities for lines (0 removes a line's units) and new lines, re-allocated as one change.
    Edit {
        quantities: Vec<(usize, i64)>,
        add: Vec<NewLine>,
    },
    /// Packages packed for the next shipment.
    Pack {
        packages: Vec<Package>,
    },
}

impl Command {
    fn items(&self) -> Vec<ItemId> {
        match self {
            Command::Stock(c) => c.op.keys().into_iter().map(|(item, _)| item).collect(),
            Command::PlaceOrder(p) => p.lines.iter().filter(|l| l.tracked).map(|l| l.item).collect(),
            Command::PlaceHold { demand, .. } => demand.iter().map(|d| d.item).collect(),
            // Their items are only known from the stored record; the store loads the record and the first pass
            // learns the items, see `run_batch`.
            Command::OrderStep { step: OrderStep::Edit { add, .. }, .. } => add.iter().map(|l| l.item).collect(),
            Command::Document(d) => d.items.clone(),
            Command::CancelOrder { .. }
            | Command::ChangeHold { .. }
            | Command::ExpireDueHolds
            | Command::OrderStep { .. }
            | Command::PlanPicks { .. } => vec![],
        }
    }
}

/// What a committed command did.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// The written movements with their ids, in order.
    pub movements: Vec<(i64, NewMovement)>,
    /// The balances the command touched, as it left them.
    pub balances: Vec<(BalanceKey, Balance)>,
    /// The order the command placed or changed.
    pub order: Option<OrderRecord>,
    /// The hold the command placed or changed.
    pub hold: Option<HoldRecord>,
    /// Holds ended by expiry.
    pub expired_holds: usize,
    /// Money a cancellation took off the order's total.
    pub amount: Option<Decimal>,
}

/// Why the write path refused a command; nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Allocation(#[from] AllocationError),
    #[error(transparent)]
    Cancel(#[from] CancelError),
    #[error(transparent)]
    Hold(#[from] HoldError),
    #[error("order {0} not found")]
    UnknownOrder(OrderId),
    #[error("hold {0} not found")]
    UnknownHold(HoldId),
    #[error("the order's lines must be the hold's lines: same SKUs and quantities, in the same order")]
    HoldMismatch,
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error("an order with this source and external number was placed a moment ago")]
    DuplicateOrderNumber,
    #[error(transparent)]
    Purchasing(#[from] domain::purchasing::PurchasingError),
    #[error("document {0} not found")]
    UnknownDocument(i64),
    #[error("document {0} cannot be read: {1}")]
    CorruptDocument(i64, String),
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the write path is not running")]
    Closed,
}

impl From<LedgerError> for SubmitError {
    fn from(e: LedgerError) -> Self {
        SubmitError::Rejected(Rejection::Ledger(e))
    }
}

struct Job {
    cmd: Command,
    /// Written in the batch's transaction if the command succeeds.
    audit: Option<Arc<PendingAudit>>,
    reply: oneshot::Sender<Result<Receipt, SubmitError>>,
}

/// Handle to the write path. Cheap to clone; the worker stops when every handle is gone and the queue is empty.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Job>,
    /// Bumped when locations change, so that the worker re-reads the sellable bins before its next batch.
    locations_generation: Arc<AtomicU64>,
    /// Counts committed batches, so that outbox readers (webhooks, feeds) wake when there is news instead of
    /// polling often.
    commits: tokio::sync::watch::Receiver<u64>,
}

impl Ledger {
    /// Starts the worker on the current tokio runtime.
    pub fn start(store: Arc<dyn Store>, config: LedgerConfig) -> (Ledger, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let locations_generation = Arc::new(AtomicU64::new(0));
        let (committed, commits) = tokio::sync::watch::channel(0);
        let ctx = Arc::new(WorkerContext {
            priority: config.warehouses,
            customer: tokio::sync::OnceCell::new(),
            warehouses: tokio::sync::Mutex::new(None),
            locations_generation: locations_generation.clone(),
            committed,
        });
        let handle = tokio::spawn(worker(store, rx, config.max_batch.max(1), config.max_wait, ctx));
        (Ledger { tx, locations_generation, commits }, handle)
    }

    /// A receiver that sees a change whenever a batch has committed (with its outbox events).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.clone()
    }

    /// Tells the worker that locations were created, changed or deleted: its cached sellable bins are stale.
    pub fn locations_changed(&self) {
        self.locations_generation.fetch_add(1, AtomicOrdering::Relaxed);
    }

    /// Submits a command and waits until it is committed (durable) or refused.
    pub async fn submit(&self, cmd: Command) -> Result<Receipt, SubmitError> {
        self.submit_audited(cmd, None).await
    }

    /// [`Ledger::submit`], writing `audit` in the same transaction if the command succeeds.
    pub async fn submit_audited(&self, cmd: Command, audit: Option<Arc<PendingAudit>>) -> Result<Receipt, SubmitError> {
        if let Command::Stock(c) = &cmd {
            if c.lines.len() != op_len(&c.op) {
                // A caller bug, caught here so that it can never take the worker down.
                return Err(SubmitError::Store(StoreError::Internal(format!(
                    "ledger command has {} line records for {} lines",
                    c.lines.len(),
                    op_len(&c.op)
                ))));
            }
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { cmd, audit, reply }).await.map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }
}

fn op_len(op: &LedgerOp) -> usize {
    match op {
        LedgerOp::Adjust(l) => l.len(),
        LedgerOp::Move(l) => l.len(),
    }
}

/// What the worker knows beyond the store: the warehouse priority, the customer location once read, and the
/// sellable bins per warehouse, cached.
struct WorkerContext {
    priority: WarehousePriority,
    customer: tokio::sync::OnceCell<LocationId>,
    /// The sellable bins, with the generation and time they were read at.
    warehouses: tokio::sync::Mutex<Option<CachedWarehouses>>,
    locations_generation: Arc<AtomicU64>,
    committed: tokio::sync::watch::Sender<u64>,
}

struct CachedWarehouses {
    generation: u64,
    read_at: std::time::Instant,
    warehouses: Arc<SellableBins>,
}

/// The sellable bins: per warehouse, and in the node's default priority order.
struct SellableBins {
    by_priority: Warehouses,
    by_warehouse: HashMap<LocationId, Vec<BinSlot>>,
}

/// The most balances one `inventory.changed` event lists; a change that touches more (an import of a whole
/// catalog's stock) is told in several events. One event per change could grow to hundreds of megabytes: too big
/// for any webhook receiver, and every worker reading the outbox would have to hold it whole.
pub const EVENT_BALANCES: usize = 100;

/// How long the cached sellable bins are trusted. This node's own location changes invalidate the cache at once;
/// another node's (on a shared PostgreSQL) are seen within this time. Allocation only ever picks bins whose
/// balances the batch loads in its transaction, so a stale list can refuse a sale for this long but never
/// oversell.
const WAREHOUSES_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl WorkerContext {
    async fn warehouses(&self, store: &dyn Store) -> Result<Arc<SellableBins>, StoreError> {
        let generation = self.locations_generation.load(AtomicOrdering::Relaxed);
        let mut cached = self.warehouses.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.generation == generation && c.read_at.elapsed() < WAREHOUSES_TTL {
                return Ok(c.warehouses.clone());
            }
        }
        let read_at = std::time::Instant::now();
        let warehouses = Arc::new(load_warehouses(store, &self.priority).await?);
        *cached = Some(CachedWarehouses { generation, read_at, warehouses: warehouses.clone() });
        Ok(warehouses)
    }
}

async fn worker(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    max_wait: std::time::Duration,
    ctx: Arc<WorkerContext>,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        // Take what is already queued, but never wait for more: an idle node commits a lone command at once.
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Under load (more than one command already here), a short wait lets the batch fill and saves commits;
        // a lone command on an idle node goes at once.
        if jobs.len() > 1 && jobs.len() < max_batch && !max_wait.is_zero() {
            let deadline = tokio::time::Instant::now() + max_wait;
            while jobs.len() < max_batch {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => jobs.push(job),
                    _ => break,
                }
            }
        }
        let batch: Vec<Job> = std::mem::take(&mut jobs);
        crate::metrics::METRICS.record_batch(batch.len());
        tracing::debug!(commands = batch.len(), "applying ledger batch");
        // Each batch runs as its own task: should it panic, its submitters hear `Closed` (503) and the worker
        // lives on to serve the next batch.
        let (store, ctx) = (store.clone(), ctx.clone());
        if let Err(e) = tokio::spawn(async move { apply_and_reply(store.as_ref(), &ctx, batch).await }).await {
            tracing::error!(error = %e, "a ledger batch panicked; its commands were not applied");
        }
    }
}

async fn apply_and_reply(store: &dyn Store, ctx: &WorkerContext, batch: Vec<Job>) {
    match run_batch(store, ctx, &batch).await {
        Ok(results) => {
            ctx.committed.send_modify(|n| *n = n.wrapping_add(1));
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(e) if batch.len() > 1 => {
            tracing::warn!(error = %e, commands = batch.len(), "ledger batch failed; retrying its commands one by one");
            for job in batch {
                let result = match run_batch(store, ctx, std::slice::from_ref(&job)).await {
                    Ok(mut r) => r.pop().unwrap_or(Err(SubmitError::Closed)),
                    Err(e) => Err(SubmitError::Store(e)),
                };
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(SubmitError::Store(e)));
            }
        }
    }
}

/// A reference to an order in a batch: stored, or placed earlier in the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderRef {
    Stored(OrderId),
    New(usize),
}

/// The sellable bins per warehouse, and in priority order, as the store has them now.
async fn load_warehouses(store: &dyn Store, priority: &WarehousePriority) -> Result<SellableBins, StoreError> {
    let bins = store.sellable_bins().await?;
    let mut by_warehouse: HashMap<LocationId, Vec<BinSlot>> = HashMap::new();
    for b in &bins {
        by_warehouse.entry(b.warehouse).or_default().push((b.bin, b.pick_sequence));
    }
    let order: Vec<LocationId> = match priority {
        WarehousePriority::All => {
            let mut ids: Vec<LocationId> = by_warehouse.keys().copied().collect();
            ids.sort_unstable();
            ids
        }
        WarehousePriority::Codes(codes) => {
            let found = store.resolve_paths(codes).await?;
            codes.iter().filter_map(|c| found.get(c)).map(|l| l.id).collect()
        }
    };
    let by_priority =
        Warehouses(order.into_iter().map(|w| (w, by_warehouse.get(&w).cloned().unwrap_or_default())).collect());
    Ok(SellableBins { by_priority, by_warehouse })
}

/// Everything a batch decides, kept apart from the store's state until a command succeeds.
struct Batch<'a> {
    state: &'a mut BatchState,
    writes: BatchWrites,
    /// The backorder queue, oldest first, including orders placed in this batch.
    queue: Vec<OrderRef>,
    changed_orders: BTreeSet<OrderId>,
    changed_holds: BTreeSet<HoldId>,
    warehouses: &'a Warehouses,
    /// Every warehouse's sellable bins, for orders that bring their own warehouse list.
    bins: &'a HashMap<LocationId, Vec<BinSlot>>,
    /// The virtual customer location: where shipped units go and returned units come from.
    customer: LocationId,
    /// (source, external number) of the orders placed in this batch: a second one is a retry, not a new order.
    numbers: HashSet<(String, String)>,
    /// Items whose balances this batch loaded; a hold over other items is left for a later batch.
    items: HashSet<ItemId>,
    /// The balances the batch's commands moved, in the order first moved: told once, as the batch leaves them
    /// ([`Batch::tell_changes`]).
    moved: Vec<BalanceKey>,
    moved_set: HashSet<BalanceKey>,
}

#[derive(Debug, Clone, Copy)]
enum HoldRef {
    Stored(HoldId),
    New(usize),
}

/// One command's effects.
#[derive(Default)]
struct Effects {
    movements: Vec<NewMovement>,
    balances: Vec<(BalanceKey, Balance)>,
    order: Option<OrderRef>,
    hold: Option<HoldRef>,
    /// The order and hold as the command left them (a new one still without its id).
    order_after: Option<OrderRecord>,
    hold_after: Option<HoldRecord>,
    /// Money the command took off the order's total (a cancellation).
    amount: Option<Decimal>,
    expired: usize,
}

/// What a command may change in the batch, kept so that a failing command can be undone.
struct Snapshot {
    balances: Balances,
    orders: BTreeMap<OrderId, OrderRecord>,
    holds: BTreeMap<HoldId, HoldRecord>,
    documents: BTreeMap<i64, crate::store::DocumentRecord>,
    queue: Vec<OrderRef>,
    changed_orders: BTreeSet<OrderId>,
    changed_holds: BTreeSet<HoldId>,
    new_orders: usize,
    new_holds: usize,
    events: usize,
    numbers: HashSet<(String, String)>,
    moved: usize,
}

impl Effects {
    fn extend(&mut self, movements: Vec<NewMovement>) {
        self.movements.extend(movements);
    }
}

/// How one posting is recorded in the ledger.
struct Meta<'a> {
    reason: Reason,
    reference: String,
    note: &'a str,
    actor: &'a Actor,
}

impl Batch<'_> {
    /// Applies one operation to the balances, all or nothing, and turns it into movements.
    fn post(&mut self, op: &LedgerOp, meta: &Meta<'_>) -> Result<Vec<NewMovement>, LedgerError> {
        let moved = stock::apply(op, &mut self.state.balances)?;
        Ok(moved
            .iter()
            .map(|m| NewMovement {
                item_id: m.item,
                quantity: m.quantity,
                from_location_id: m.from.location(),
                from_state: m.from.state(),
                to_location_id: m.to.location(),
                to_state: m.to.state(),
                reason: meta.reason,
                reference: Some(meta.reference.clone()),
                note: Some(meta.note.to_string()),
                actor: meta.actor.name.clone(),
                request_id: meta.actor.request_id.clone(),
                recorded_at: self.state.now,
            })
            .collect())
    }

    fn event(&mut self, topic: &str, payload: serde_json::Value) {
        self.writes.events.push(OutboxEvent { topic: topic.into(), payload });
    }

    /// `inventory.changed` for the balances a change left, in events of at most [`EVENT_BALANCES`] balances each
    /// (none when it left none).
    fn changed_events(&mut self, touched: &[(BalanceKey, Balance)]) {
        for chunk in touched.chunks(EVENT_BALANCES) {
            let balances: Vec<serde_json::Value> = chunk
                .iter()
                .map(|((item, location), b)| {
                    serde_json::json!({ "item_id": item, "location_id": location, "available": b.available, "on_hand": b.on_hand() })
                })
                .collect();
            self.event("inventory.changed", serde_json::json!({ "balances": balances }));
        }
    }

    /// `inventory.changed` for every balance the batch's commands moved, as the batch leaves it: after its
    /// commands, once. A batch of orders for one SKU tells its balance once, not once per order; a receiver
    /// only ever wants the newest balance, and each event is a row to write and a message to deliver.
    fn tell_changes(&mut self) {
        let moved = std::mem::take(&mut self.moved);
        self.moved_set.clear();
        let touched: Vec<(BalanceKey, Balance)> =
            moved.into_iter().map(|k| (k, self.state.balances.get(&k).copied().unwrap_or_default())).collect();
        self.changed_events(&touched);
    }

    /// An order event, carrying the order's id and `source` (a receiver filters by channel on it). An order placed
    /// in this batch has no id yet: the store puts it in when it inserts the order.
    fn order_event(&mut self, topic: &str, order: OrderRef, mut payload: serde_json::Value) {
        let (id, source) = match order {
            OrderRef::Stored(id) => (serde_json::json!(id), self.state.orders.get(&id).map(|r| r.source.clone())),
            OrderRef::New(i) => (
                crate::webhook_store::new_order_placeholder(i),
                self.writes.new_orders.get(i).map(|r| r.source.clone()),
            ),
        };
        payload["order_id"] = id;
        payload["source"] = serde_json::json!(source);
        self.event(topic, payload);
    }

    /// Applies one command, all or nothing: should it fail halfway, everything it changed in the batch is undone.
    fn apply(&mut self, cmd: &Command) -> Result<Effects, Rejection> {
        let snapshot = Snapshot {
            balances: self.state.balances.clone(),
            orders: self.state.orders.clone(),
            holds: self.state.holds.clone(),
            documents: self.state.documents.clone(),
            queue: self.queue.clone(),
            changed_orders: self.changed_orders.clone(),
            changed_holds: self.changed_holds.clone(),
            new_orders: self.writes.new_orders.len(),
            new_holds: self.writes.new_holds.len(),
            events: self.writes.events.len(),
            moved: self.moved.len(),
            numbers: self.numbers.clone(),
        };
        let result = self.apply_inner(cmd);
        if result.is_err() {
            self.state.balances = snapshot.balances;
            self.state.orders = snapshot.orders;
            self.state.holds = snapshot.holds;
            self.state.documents = snapshot.documents;
            self.queue = snapshot.queue;
            self.changed_orders = snapshot.changed_orders;
            self.changed_holds = snapshot.changed_holds;
            self.writes.new_orders.truncate(snapshot.new_orders);
            self.writes.new_holds.truncate(snapshot.new_holds);
            self.writes.events.truncate(snapshot.events);
            for key in self.moved.drain(snapshot.moved..) {
                self.moved_set.remove(&key);
            }
            self.numbers = snapshot.numbers;
        }
        result
    }

    fn apply_inner(&mut self, cmd: &Command) -> Result<Effects, Rejection> {
        let mut fx = match cmd {
            Command::Stock(c) => self.stock(c)?,
            Command::PlaceOrder(p) => self.place_order(p)?,
            Command::CancelOrder { order, lines, actor } => self.cancel_order(*order, lines, actor)?,
            Command::PlaceHold { record, demand, ttl, max_ttl, actor } => {
                self.place_hold(record, demand, *ttl, *max_ttl, actor)?
            }
            Command::ChangeHold { hold, change, actor } => self.change_hold(*hold, *change, actor)?,
            Command::ExpireDueHolds => self.expire_due(&Actor::new("system:holds")),
            Command::OrderStep { order, step, actor } => self.order_step(*order, step, actor)?,
            Command::PlanPicks { warehouse, orders, actor } => self.plan_picks(*warehouse, orders, actor)?,
            Command::Document(d) => self.document(d)?,
        };
        self.fill_backorders(&mut fx);
        let mut keys: Vec<BalanceKey> = fx
            .movements
            .iter()
            .flat_map(|m| {
                [
                    m.from_state.map(|_| (m.item_id, m.from_location_id)),
                    m.to_state.map(|_| (m.item_id, m.to_location_id)),
                ]
            })
            .flatten()
            .collect();
        if let Command::Stock(c) = cmd {
            // An adjustment that changed nothing still reports the levels it was about.
            keys.extend(c.op.keys());
        }
        let mut seen = HashSet::new();
        keys.retain(|k| seen.insert(*k));
        fx.balances = keys.into_iter().map(|k| (k, self.state.balances.get(&k).copied().unwrap_or_default())).collect();
        if !fx.movements.is_empty() {
            for (key, _) in &fx.balances {
                if self.moved_set.insert(*key) {
                    self.moved.push(*key);
                }
            }
        }
        self.writes.movements.extend(fx.movements.iter().cloned());
        // The reply shows the order and hold as this command left them, not as later commands of the batch will.
        fx.order_after = fx.order.and_then(|r| match r {
            OrderRef::Stored(id) => self.state.orders.get(&id).cloned(),
            OrderRef::New(i) => self.writes.new_orders.get(i).cloned(),
        });
        fx.hold_after = fx.hold.and_then(|r| match r {
            HoldRef::Stored(id) => self.state.holds.get(&id).cloned(),
            HoldRef::New(i) => self.writes.new_holds.get(i).cloned(),
        });
        Ok(fx)
    }

    fn stock(&mut self, c: &LedgerCommand) -> Result<Effects, Rejection> {
        let moved = stock::apply(&c.op, &mut self.state.balances)?;
        let now = self.state.now;
        let movements = moved
            .iter()
            .map(|m| {
                let meta = &c.lines[m.line];
                NewMovement {
                    item_id: m.item,
                    quantity: m.quantity,
                    from_location_id: m.from.location(),
                    from_state: m.from.state(),
                    to_location_id: m.to.location(),
                    to_state: m.to.state(),
                    reason: meta.reason,
                    reference: c.reference.clone(),
                    note: meta.note.clone(),
                    actor: c.actor.name.clone(),
                    request_id: c.actor.request_id.clone(),
                    recorded_at: now,
                }
            })
            .collect();
        Ok(Effects { movements, ..Default::default() })
    }

    fn place_order(&mut self, p: &PlaceOrder) -> Result<Effects, Rejection> {
        if let Some(n) = &p.record.external_number {
            let key = (p.record.source.clone(), n.clone());
            if self.state.taken_numbers.contains(&key) || !self.numbers.insert(key) {
                return Err(Rejection::DuplicateOrderNumber);
            }
        }
        let mut fx = Effects::default();
        let reference = match &p.record.external_number {
            Some(n) => format!("order {}:{n}", p.record.source),
            None => format!("order {}", p.record.source),
        };
        let order = match p.hold {
            Some(hold_id) => {
                let rec = self.state.holds.get(&hold_id).ok_or(Rejection::UnknownHold(hold_id))?;
                let same = rec.skus.len() == p.lines.len()
                    && rec.skus.iter().zip(&p.lines).all(|(s, l)| *s == l.sku)
                    && rec.quantities.iter().zip(&p.lines).all(|(q, l)| *q == l.quantity);
                if !same {
                    return Err(Rejection::HoldMismatch);
                }
                let mut hold = rec.hold.clone();
                hold.convert(self.state.now)?;
                if let Some(op) = hold.convert_op() {
                    let meta = Meta { reason: Reason::Order, reference, note: "placed from hold", actor: &p.actor };
                    fx.extend(self.post(&op, &meta)?);
                }
                let order = Order::from_hold(p.lines.clone(), &hold.lines);
                let rec = self.state.holds.get_mut(&hold_id).expect("looked up above");
                rec.hold = hold;
                rec.updated_at = self.state.now;
                self.changed_holds.insert(hold_id);
                order
            }
            None => {
                let own;
                let warehouses = match &p.warehouses {
                    Some(ids) => {
                        own = Warehouses(
                            ids.iter().map(|w| (*w, self.bins.get(w).cloned().unwrap_or_default())).collect(),
                        );
                        &own
                    }
                    None => self.warehouses,
                };
                let stock: HashMap<ItemId, Vec<WarehouseStock>> = p
                    .lines
                    .iter()
                    .filter(|l| l.tracked)
                    .map(|l| (l.item, warehouses.stock(l.item, &self.state.balances)))
                    .collect();
                let (order, op) = Order::place(p.lines.clone(), &stock)?;
                if let Some(op) = op {
                    let meta = Meta { reason: Reason::Order, reference, note: "placed", actor: &p.actor };
                    fx.extend(self.post(&op, &meta)?);
                }
                order
            }
        };
        let mut record = p.record.clone();
        record.order = order;
        record.placed_at = self.state.now;
        record.updated_at = self.state.now;
        let owes = !record.order.open_demand_items().is_empty();
        let external_number = serde_json::json!({ "external_number": record.external_number });
        self.writes.new_orders.push(record);
        let index = self.writes.new_orders.len() - 1;
        self.order_event("order.created", OrderRef::New(index), external_number);
        if owes {
            self.queue.push(OrderRef::New(index));
        }
        fx.order = Some(OrderRef::New(index));
        Ok(fx)
    }

    fn cancel_order(&mut self, id: OrderId, lines: &[(usize, i64)], actor: &Actor) -> Result<Effects, Rejection> {
        let rec = self.state.orders.get(&id).ok_or(Rejection::UnknownOrder(id))?;
        let mut order = rec.order.clone();
        let total_before = order.total();
        let op = if lines.is_empty() { order.cancel_all()? } else { order.cancel(lines)? };
        let mut fx = Effects {
            order: Some(OrderRef::Stored(id)),
            amount: Some(total_before - order.total()),
            ..Default::default()
        };
        if let Some(op) = op {
            let meta = Meta { reason: Reason::Order, reference: format!("order {id}"), note: "cancelled", actor };
            fx.extend(self.post(&op, &meta)?);
        }
        let now = self.state.now;
        let rec = self.state.orders.get_mut(&id).expect("looked up above");
        let topic =
            if order.status == domain::order::OrderStatus::Cancelled { "order.cancelled" } else { "order.updated" };
        rec.order = order;
        rec.updated_at = now;
        self.changed_orders.insert(id);
        self.order_event(topic, OrderRef::Stored(id), serde_json::json!({}));
        Ok(fx)
    }

    fn place_hold(
        &mut self,
        record: &HoldRecord,
        demand: &[DemandLine],
        ttl: TimeDelta,
        max_ttl: TimeDelta,
        actor: &Actor,
    ) -> Result<Effects, Rejection> {
        let stock: HashMap<ItemId, Vec<WarehouseStock>> =
            demand.iter().map(|d| (d.item, self.warehouses.stock(d.item, &self.state.balances))).collect();
        // A hold never promises what is not there, whatever the item's policy at zero.
        let deny: Vec<DemandLine> =
            demand.iter().map(|d| DemandLine { policy: domain::catalog::InventoryPolicy::Deny, ..*d }).collect();
        let mut allocation = domain::orders::allocate(&deny, &stock)?;
        for (line, named) in allocation.lines.iter_mut().zip(&record.hold.lines) {
            line.line = named.line;
        }
        let now = self.state.now;
        let hold = Hold::new(allocation.lines, now, now + ttl, max_ttl)?;
        let mut fx = Effects::default();
        if let Some(op) = hold.place_op() {
            let reference = record.reference.clone().map(|r| format!("hold {r}")).unwrap_or_else(|| "hold".into());
            let meta = Meta { reason: Reason::Hold, reference, note: "reserved", actor };
            fx.extend(self.post(&op, &meta)?);
        }
        let mut record = record.clone();
        record.hold = hold;
        record.created_at = now;
        record.updated_at = now;
        self.writes.new_holds.push(record);
        fx.hold = Some(HoldRef::New(self.writes.new_holds.len() - 1));
        Ok(fx)
    }

    fn change_hold(&mut self, id: HoldId, change: HoldChange, actor: &Actor) -> Result<Effects, Rejection> {
        let rec = self.state.holds.get(&id).ok_or(Rejection::UnknownHold(id))?;
        let mut hold = rec.hold.clone();
        let now = self.state.now;
        let mut fx = Effects { hold: Some(HoldRef::Stored(id)), ..Default::default() };
        match change {
            HoldChange::Extend { expires_at, max_ttl } => hold.extend(now, expires_at, max_ttl)?,
            HoldChange::Release => {
                hold.release(now)?;
                if let Some(op) = hold.release_op() {
                    let meta = Meta { reason: Reason::Hold, reference: format!("hold {id}"), note: "released", actor };
                    fx.extend(self.post(&op, &meta)?);
                }
            }
        }
        let rec = self.state.holds.get_mut(&id).expect("looked up above");
        rec.hold = hold;
        rec.updated_at = now;
        self.changed_holds.insert(id);
        Ok(fx)
    }

    /// Turns an order step's postings into ledger operations and applies them, all or nothing.
    fn post_all(&mut self, postings: &[Posting], meta: &Meta<'_>) -> Result<Vec<NewMovement>, LedgerError> {
        let mut moves = Vec::new();
        let mut adjusts = Vec::new();
        for p in postings {
            match *p {
                Posting::Move(m) => moves.push(m),
                Posting::ToCustomer { item, bin, quantity } => adjusts.push(stock::AdjustLine {
                    item,
                    location: bin,
                    state: domain::stock::StockState::Committed,
                    change: stock::Change::Delta(-quantity),
                    source: self.customer,
                    sink: self.customer,
                }),
                Posting::FromCustomer { item, bin, state, quantity } => adjusts.push(stock::AdjustLine {
                    item,
                    location: bin,
                    state,
                    change: stock::Change::Delta(quantity),
                    source: self.customer,
                    sink: self.customer,
                }),
            }
        }
        // Both operations are checked on a copy first, so that the second failing leaves the first unapplied.
        let mut scratch = self.state.balances.clone();
        for op in [
            (!moves.is_empty()).then(|| LedgerOp::Move(moves.clone())),
            (!adjusts.is_empty()).then(|| LedgerOp::Adjust(adjusts.clone())),
        ]
        .into_iter()
        .flatten()
        {
            stock::apply(&op, &mut scratch)?;
        }
        let mut out = Vec::new();
        if !moves.is_empty() {
            out.extend(self.post(&LedgerOp::Move(moves), meta)?);
        }
        if !adjusts.is_empty() {
            out.extend(self.post(&LedgerOp::Adjust(adjusts), meta)?);
        }
        Ok(out)
    }

    fn order_step(&mut self, id: OrderId, step: &OrderStep, actor: &Actor) -> Result<Effects, Rejection> {
        let rec = self.state.orders.get(&id).ok_or(Rejection::UnknownOrder(id))?;
        let now = self.state.now;
        let mut order = rec.order.clone();
        let (currency, terms) = (rec.currency.clone(), rec.payment_terms);
        let (postings, reason, note, topic, detail) = match step {
            OrderStep::Pay { kind, amount, currency: given, reference } => {
                order.pay(given, &currency, *kind, *amount, reference.clone(), now)?;
                (
                    vec![],
                    Reason::Order,
                    "payment",
                    "order.updated",
                    serde_json::json!({ "payment": kind, "amount": amount }),
                )
            }
            OrderStep::Ship { lines, carriage } => {
                let postings = order.ship(lines, carriage.clone(), terms, now)?;
                let detail = serde_json::json!({
                    "shipment": order.shipments.len() - 1,
                    "carrier": carriage.carrier, "service": carriage.service,
                    "tracking_number": carriage.tracking_number, "tracking_url": carriage.tracking_url,
                });
                (postings, Reason::Shipment, "shipped", "fulfillment.shipped", detail)
            }
            OrderStep::RequestReturn { lines } => {
                let index = order.request_return(lines, now)?;
                (vec![], Reason::Return, "return requested", "return.requested", serde_json::json!({ "return": index }))
            }
            OrderStep::ReceiveReturn { index, lines } => {
                let postings = order.receive_return(*index, lines, now)?;
                (postings, Reason::Return, "returned", "return.received", serde_json::json!({ "return": index }))
            }
            OrderStep::Pack { packages } => {
                order.pack(packages.clone())?;
                (vec![], Reason::Order, "packed", "order.updated", serde_json::json!({ "packages": packages.len() }))
            }
            OrderStep::CreditMemo { amount, lines, reason } => {
                order.credit_memo(*amount, lines.clone(), reason.clone(), now)?;
                (vec![], Reason::Order, "credit memo", "order.updated", serde_json::json!({ "credit_memo": amount }))
            }
            OrderStep::Edit { quantities, add } => {
                let mut items: Vec<ItemId> = quantities
                    .iter()
                    .filter_map(|(l, _)| order.lines.get(*l).map(|l| l.item))
                    .chain(add.iter().map(|l| l.item))
                    .collect();
                items.sort_unstable();
                items.dedup();
                // Every line of the edit allocates from what the earlier ones left.
                let mut balances = self.state.balances.clone();
                let mut postings = Vec::new();
                for &(line, quantity) in quantities {
                    let stock: HashMap<ItemId, Vec<WarehouseStock>> =
                        items.iter().map(|i| (*i, self.warehouses.stock(*i, &balances))).collect();
                    let p = order.change_quantity(line, quantity, &stock)?;
                    apply_postings_to(&mut balances, &p);
                    postings.extend(p);
                }
                for new in add {
                    let stock: HashMap<ItemId, Vec<WarehouseStock>> =
                        items.iter().map(|i| (*i, self.warehouses.stock(*i, &balances))).collect();
                    let (_, p) = order.add_line(new.clone(), &stock)?;
                    apply_postings_to(&mut balances, &p);
                    postings.extend(p);
                }
                (postings, Reason::Order, "edited", "order.updated", serde_json::json!({ "edited": true }))
            }
        };
        let meta = Meta { reason, reference: format!("order {id}"), note, actor };
        let movements = self.post_all(&postings, &meta)?;
        let rec = self.state.orders.get_mut(&id).expect("looked up above");
        rec.order = order;
        rec.updated_at = now;
        self.changed_orders.insert(id);
        self.order_event(topic, OrderRef::Stored(id), detail);
        // An edit may leave the order owing units: it joins the queue at its placement time.
        if rec_owes(self.state.orders.get(&id)) && !self.queue.contains(&OrderRef::Stored(id)) {
            let key = (self.state.orders[&id].placed_at, id);
            let orders = &self.state.orders;
            let pos = self
                .queue
                .iter()
                .position(|r| match r {
                    OrderRef::Stored(other) => orders.get(other).is_some_and(|o| (o.placed_at, o.id) > key),
                    OrderRef::New(_) => true,
                })
                .unwrap_or(self.queue.len());
            self.queue.insert(pos, OrderRef::Stored(id));
        }
        let mut fx = Effects { order: Some(OrderRef::Stored(id)), ..Default::default() };
        fx.extend(movements);
        Ok(fx)
    }

    fn plan_picks(&mut self, warehouse: LocationId, orders: &[OrderId], actor: &Actor) -> Result<Effects, Rejection> {
        let bins: Vec<BinSlot> =
            self.warehouses.0.iter().find(|(w, _)| *w == warehouse).map(|(_, b)| b.clone()).unwrap_or_default();
        let mut fx = Effects::default();
        for &id in orders {
            let Some(rec) = self.state.orders.get(&id) else { return Err(Rejection::UnknownOrder(id)) };
            let mut order = rec.order.clone();
            let mut moved = false;
            for line in 0..order.lines.len() {
                let item = order.lines[line].item;
                let stock: Vec<BinStock> = bins
                    .iter()
                    .map(|(bin, pick_sequence)| BinStock {
                        bin: *bin,
                        pick_sequence: *pick_sequence,
                        available: self.state.balances.get(&(item, *bin)).map(|b| b.available).unwrap_or(0).max(0),
                    })
                    .collect();
                let moves = order.replan(line, warehouse, &stock);
                if moves.is_empty() {
                    continue;
                }
                let meta = Meta {
                    reason: Reason::Order,
                    reference: format!("order {id}"),
                    note: "bins chosen for picking",
                    actor,
                };
                fx.extend(self.post(&LedgerOp::Move(moves), &meta)?);
                moved = true;
            }
            if moved {
                let now = self.state.now;
                let rec = self.state.orders.get_mut(&id).expect("looked up above");
                rec.order = order;
                rec.updated_at = now;
                self.changed_orders.insert(id);
            }
        }
        Ok(fx)
    }

    /// Ends every loaded hold whose time is up: its stock goes back to available.
    fn expire_due(&mut self, actor: &Actor) -> Effects {
        let now = self.state.now;
        let due: Vec<HoldId> = self
            .state
            .holds
            .iter()
            .filter(|(_, h)| h.hold.status == domain::orders::HoldStatus::Active && now >= h.hold.expires_at)
            // A hold that fell due after the batch chose its items has no balances here: the next batch ends it.
            .filter(|(_, h)| h.hold.lines.iter().all(|l| self.items.contains(&l.item)))
            .map(|(id, _)| *id)
            .collect();
        let mut fx = Effects::default();
        for id in due {
            let mut hold = self.state.holds[&id].hold.clone();
            if hold.expire(now).is_err() {
                continue;
            }
            if let Some(op) = hold.release_op() {
                let meta = Meta { reason: Reason::Hold, reference: format!("hold {id}"), note: "expired", actor };
                match self.post(&op, &meta) {
                    Ok(ms) => fx.extend(ms),
                    Err(e) => {
                        // The reserved units are gone (a bug elsewhere): keep the hold, say so, and go on.
                        tracing::error!(hold = id, error = %e, "cannot release an expired hold");
                        continue;
                    }
                }
            }
            let rec = self.state.holds.get_mut(&id).expect("listed above");
            rec.hold = hold;
            rec.updated_at = now;
            self.changed_holds.insert(id);
            fx.expired += 1;
        }
        fx
    }

    /// Gives stock that became available to the orders waiting for it, oldest first.
    fn fill_backorders(&mut self, fx: &mut Effects) {
        let mut items: Vec<ItemId> = fx
            .movements
            .iter()
            .filter(|m| m.to_state == Some(domain::stock::StockState::Available))
            .map(|m| m.item_id)
            .collect();
        items.sort_unstable();
        items.dedup();
        if items.is_empty() || self.queue.is_empty() {
            return;
        }
        let queue = self.queue.clone();
        for item in items {
            let mut stock = self.warehouses.stock(item, &self.state.balances);
            for r in &queue {
                if stock.iter().all(|w| w.bins.iter().all(|b| b.available == 0)) {
                    break;
                }
                let (mut order, id) = match *r {
                    OrderRef::Stored(id) => match self.state.orders.get(&id) {
                        Some(rec) => (rec.order.clone(), Some(id)),
                        None => continue,
                    },
                    OrderRef::New(i) => (self.writes.new_orders[i].order.clone(), None),
                };
                let before = stock.clone();
                let moves = order.fill(item, &mut stock);
                if moves.is_empty() {
                    continue;
                }
                let reference = match id {
                    Some(id) => format!("order {id}"),
                    None => "order placed in this batch".to_string(),
                };
                let system = Actor::new("system:backorders");
                let meta = Meta { reason: Reason::Order, reference, note: "backorder filled", actor: &system };
                match self.post(&LedgerOp::Move(moves), &meta) {
                    Ok(ms) => fx.extend(ms),
                    Err(e) => {
                        // Cannot happen: the moves were computed from these very balances. Keep the order as it was.
                        tracing::error!(error = %e, "backorder fill refused");
                        stock = before;
                        continue;
                    }
                }
                match *r {
                    OrderRef::Stored(id) => {
                        if let Some(rec) = self.state.orders.get_mut(&id) {
                            rec.order = order;
                            rec.updated_at = self.state.now;
                        }
                        self.changed_orders.insert(id);
                    }
                    OrderRef::New(i) => self.writes.new_orders[i].order = order,
                }
                self.order_event("order.updated", *r, serde_json::json!({ "backorder_filled_item": item }));
            }
        }
    }
}

fn rec_owes(rec: Option<&OrderRecord>) -> bool {
    rec.is_some_and(|r| !r.order.open_demand_items().is_empty())
}

/// Mirrors postings on a scratch copy of balances, so that the next line of an edit sees what is left.
fn apply_postings_to(balances: &mut Balances, postings: &[Posting]) {
    for p in postings {
        if let Posting::Move(m) = p {
            balances.entry((m.item, m.from_location)).or_default().add(m.from_state, -m.quantity);
            balances.entry((m.item, m.to_location)).or_default().add(m.to_state, m.quantity);
        }
    }
}

/// Applies a batch in one store transaction; `Err` only when the store failed the whole batch.
async fn run_batch(
    store: &dyn Store,
    ctx: &WorkerContext,
    jobs: &[Job],
) -> Result<Vec<Result<Receipt, SubmitError>>, StoreError> {
    // Orders and holds named by id are loaded by the store; their items are read from the stored records first
    // (they never change after placement), so that their balances are in the batch too.
    let mut scope = BatchScope::default();
    for job in jobs {
        scope.items.extend(job.cmd.items());
        match &job.cmd {
            Command::CancelOrder { order, .. } => {
                scope.orders.push(*order);
                if let Some(rec) = store.get_order(*order).await? {
                    scope.items.extend(rec.order.lines.iter().map(|l| l.item));
                }
            }
            Command::ChangeHold { hold, .. } => {
                scope.holds.push(*hold);
                if let Some(rec) = store.get_hold(*hold).await? {
                    scope.items.extend(rec.hold.lines.iter().map(|l| l.item));
                }
            }
            Command::PlaceOrder(p) => {
                scope.holds.extend(p.hold);
                if let Some(n) = &p.record.external_number {
                    scope.order_numbers.push((p.record.source.clone(), n.clone()));
                }
            }
            Command::OrderStep { order, .. } => {
                scope.orders.push(*order);
                if let Some(rec) = store.get_order(*order).await? {
                    scope.items.extend(rec.order.lines.iter().map(|l| l.item));
                }
            }
            Command::PlanPicks { orders, .. } => {
                for order in orders {
                    scope.orders.push(*order);
                    if let Some(rec) = store.get_order(*order).await? {
                        scope.items.extend(rec.order.lines.iter().map(|l| l.item));
                    }
                }
            }
            Command::Document(d) => scope.documents.push(d.document),
            Command::Stock(_) | Command::PlaceHold { .. } | Command::ExpireDueHolds => {}
        }
    }
    // Every batch first ends the holds that are due, so that no command is refused because of a hold that no
    // longer counts. The store finds them in its transaction and loads their items' balances too.
    scope.due_holds = true;
    scope.items.sort_unstable();
    scope.items.dedup();
    let warehouses = ctx.warehouses(store).await?;
    // Virtual locations are made by the first migration and never change: the worker reads them once.
    let customer = *ctx
        .customer
        .get_or_try_init(|| async {
            store
                .virtual_locations()
                .await?
                .get(&domain::stock::VirtualKind::Customer)
                .copied()
                .ok_or_else(|| StoreError::Internal("the customer location is missing".into()))
        })
        .await?;

    let mut outcomes: Vec<Result<Effects, Rejection>> = Vec::with_capacity(jobs.len());
    let mut prelude = Effects::default();
    let ids = {
        let mut decide = |state: &mut BatchState| {
            outcomes.clear();
            let queue = state.backorder_queue.iter().map(|id| OrderRef::Stored(*id)).collect();
            let items = state.items.iter().copied().collect();
            let mut batch = Batch {
                state,
                writes: BatchWrites::default(),
                queue,
                changed_orders: BTreeSet::new(),
                changed_holds: BTreeSet::new(),
                warehouses: &warehouses.by_priority,
                bins: &warehouses.by_warehouse,
                customer,
                numbers: HashSet::new(),
                items,
                moved: Vec::new(),
                moved_set: HashSet::new(),
            };
            // Due holds end before any command is decided; their movements come first in the batch.
            prelude = batch.expire_due(&Actor::new("system:holds"));
            batch.fill_backorders(&mut prelude);
            if !prelude.movements.is_empty() {
                let mut keys: Vec<BalanceKey> = prelude
                    .movements
                    .iter()
                    .flat_map(|m| [(m.item_id, m.from_location_id), (m.item_id, m.to_location_id)])
                    .filter(|(_, l)| *l != customer)
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                let touched: Vec<(BalanceKey, Balance)> =
                    keys.into_iter().filter_map(|k| batch.state.balances.get(&k).map(|b| (k, *b))).collect();
                batch.changed_events(&touched);
                batch.event("hold.expired", serde_json::json!({ "holds": prelude.expired }));
            }
            batch.writes.movements.extend(prelude.movements.iter().cloned());
            for job in jobs {
                let outcome = batch.apply(&job.cmd);
                if let (Ok(fx), Some(audit)) = (&outcome, &job.audit) {
                    let subject = match (fx.order, fx.hold) {
                        (Some(OrderRef::New(i)), _) => AuditSubject::NewOrder(i),
                        (_, Some(HoldRef::New(i))) => AuditSubject::NewHold(i),
                        _ => AuditSubject::AsGiven,
                    };
                    let mut entry = audit.entry().clone();
                    entry.at = batch.state.now;
                    batch.writes.audit.push(BatchAudit { entry, subject });
                }
                outcomes.push(outcome);
            }
            batch.tell_changes();
            batch.writes.changed_orders = batch.changed_orders.iter().copied().collect();
            batch.writes.changed_holds = batch.changed_holds.iter().copied().collect();
            batch.writes
        };
        store.apply_batch(&scope, &mut decide).await?
    };
    if prelude.expired > 0 {
        tracing::info!(expired = prelude.expired, "ended due holds");
    }
    for (job, outcome) in jobs.iter().zip(&outcomes) {
        if let (Some(audit), Ok(_)) = (&job.audit, outcome) {
            audit.mark_written();
        }
    }
    let mut movement_ids = ids.movements.into_iter().skip(prelude.movements.len());
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            let fx = outcome.map_err(SubmitError::Rejected)?;
            let movements = fx.movements.into_iter().map(|m| (movement_ids.next().unwrap_or_default(), m)).collect();
            let order = fx.order_after.map(|mut rec| {
                if let Some(OrderRef::New(i)) = fx.order {
                    rec.id = ids.orders.get(i).copied().unwrap_or_default();
                }
                rec
            });
            let hold = fx.hold_after.map(|mut rec| {
                if let Some(HoldRef::New(i)) = fx.hold {
                    rec.id = ids.holds.get(i).copied().unwrap_or_default();
                }
                rec
            });
            Ok(Receipt { movements, balances: fx.balances, order, hold, expired_holds: fx.expired, amount: fx.amount })
        })
        .collect())
}

mod documents;
pub use documents::{ArrivalLine, DocAction, DocumentCommand, Virtuals};

#[cfg(test)]
mod tests;

//! The one write path: every change to quantities is a [`LedgerCommand`] submitted here.
//!
//! Commands queue on a channel; a single worker per process takes whatever is queued (up to `max_batch`, never
//! waiting when the queue is empty) and applies it as one batch in one store transaction. Each command keeps its
//! own result: the domain refuses a command without touching the others, and if the store fails a whole batch the
//! commands are retried one by one so that one bad command cannot sink its neighbours.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::stock::{self, Balance, BalanceKey, Balances, LedgerError, LedgerOp, Reason};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::store::{NewMovement, OutboxEvent, Store};

/// Tunables of the write path.
#[derive(Debug, Clone, Copy)]
pub struct LedgerConfig {
    /// Most commands applied in one transaction.
    pub max_batch: usize,
    /// Most commands waiting; beyond it submitters wait (backpressure) rather than pile up memory.
    pub queue_capacity: usize,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { max_batch: 256, queue_capacity: 8192 }
    }
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

/// Why and how each line of a command was booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMeta {
    pub reason: Reason,
    pub note: Option<String>,
}

/// A command for the write path: the domain operation plus what the ledger records about it.
#[derive(Debug, Clone)]
pub struct LedgerCommand {
    pub op: LedgerOp,
    /// One entry per line of `op`.
    pub lines: Vec<LineMeta>,
    pub reference: Option<String>,
    pub actor: Actor,
}

/// What a committed command did.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// The written movements with their ids, in line order.
    pub movements: Vec<(i64, NewMovement)>,
    /// The balances the command touched, as it left them.
    pub balances: Vec<(BalanceKey, Balance)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the write path is not running")]
    Closed,
}

struct Job {
    cmd: LedgerCommand,
    reply: oneshot::Sender<Result<Receipt, SubmitError>>,
}

/// Handle to the write path. Cheap to clone; the worker stops when every handle is gone and the queue is empty.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Job>,
}

impl Ledger {
    /// Starts the worker on the current tokio runtime.
    pub fn start(store: Arc<dyn Store>, config: LedgerConfig) -> (Ledger, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let handle = tokio::spawn(worker(store, rx, config.max_batch.max(1)));
        (Ledger { tx }, handle)
    }

    /// Submits a command and waits until it is committed (durable) or refused.
    pub async fn submit(&self, cmd: LedgerCommand) -> Result<Receipt, SubmitError> {
        if cmd.lines.len() != op_len(&cmd.op) {
            // A caller bug, caught here so that it can never take the worker down.
            return Err(SubmitError::Store(StoreError::Internal(format!(
                "ledger command has {} line records for {} lines",
                cmd.lines.len(),
                op_len(&cmd.op)
            ))));
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { cmd, reply }).await.map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }
}

fn op_len(op: &LedgerOp) -> usize {
    match op {
        LedgerOp::Adjust(l) => l.len(),
        LedgerOp::Move(l) => l.len(),
    }
}

async fn worker(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
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
        let batch: Vec<Job> = std::mem::take(&mut jobs);
        tracing::debug!(commands = batch.len(), "applying ledger batch");
        // Each batch runs as its own task: should it panic, its submitters hear `Closed` (503) and the worker
        // lives on to serve the next batch.
        let store = store.clone();
        if let Err(e) = tokio::spawn(async move { apply_and_reply(store.as_ref(), batch).await }).await {
            tracing::error!(error = %e, "a ledger batch panicked; its commands were not applied");
        }
    }
}

async fn apply_and_reply(store: &dyn Store, batch: Vec<Job>) {
    match run_batch(store, &batch).await {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(e) if batch.len() > 1 => {
            tracing::warn!(error = %e, commands = batch.len(), "ledger batch failed; retrying its commands one by one");
            for job in batch {
                let result = match run_batch(store, std::slice::from_ref(&job)).await {
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

type Outcome = Result<(Vec<NewMovement>, Vec<(BalanceKey, Balance)>), LedgerError>;

/// Applies a batch in one store transaction; `Err` only when the store failed the whole batch.
async fn run_batch(store: &dyn Store, jobs: &[Job]) -> Result<Vec<Result<Receipt, SubmitError>>, StoreError> {
    let mut seen = HashSet::new();
    let keys: Vec<BalanceKey> = jobs.iter().flat_map(|j| j.cmd.op.keys()).filter(|k| seen.insert(*k)).collect();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(jobs.len());
    let ids = {
        let mut decide = |balances: &mut Balances, now: DateTime<Utc>| {
            outcomes.clear();
            let mut written = Vec::new();
            let mut events = Vec::new();
            for job in jobs {
                let outcome = stock::apply(&job.cmd.op, balances).map(|movements| {
                    let new: Vec<NewMovement> = movements.iter().map(|m| to_new(m, &job.cmd, now)).collect();
                    let mut touched_seen = HashSet::new();
                    let touched: Vec<(BalanceKey, Balance)> = job
                        .cmd
                        .op
                        .keys()
                        .into_iter()
                        .filter(|k| touched_seen.insert(*k))
                        .map(|k| (k, balances.get(&k).copied().unwrap_or_default()))
                        .collect();
                    if !new.is_empty() {
                        events.push(changed_event(&touched));
                    }
                    written.extend(new.iter().cloned());
                    (new, touched)
                });
                outcomes.push(outcome);
            }
            (written, events)
        };
        store.apply_batch(&keys, &mut decide).await?
    };
    let mut ids = ids.into_iter();
    Ok(outcomes
        .into_iter()
        .map(|o| match o {
            Ok((movements, balances)) => {
                let movements = movements.into_iter().map(|m| (ids.next().unwrap_or_default(), m)).collect();
                Ok(Receipt { movements, balances })
            }
            Err(e) => Err(SubmitError::Rejected(e)),
        })
        .collect())
}

fn to_new(m: &stock::Movement, cmd: &LedgerCommand, now: DateTime<Utc>) -> NewMovement {
    let meta = &cmd.lines[m.line];
    NewMovement {
        item_id: m.item,
        quantity: m.quantity,
        from_location_id: m.from.location(),
        from_state: m.from.state(),
        to_location_id: m.to.location(),
        to_state: m.to.state(),
        reason: meta.reason,
        reference: cmd.reference.clone(),
        note: meta.note.clone(),
        actor: cmd.actor.name.clone(),
        request_id: cmd.actor.request_id.clone(),
        recorded_at: now,
    }
}

/// Announces which balances changed, for the sync workers of later issues (webhooks, feeds).
fn changed_event(touched: &[(BalanceKey, Balance)]) -> OutboxEvent {
    let balances: Vec<serde_json::Value> = touched
        .iter()
        .map(|((item, location), b)| {
            serde_json::json!({ "item_id": item, "location_id": location, "available": b.available, "on_hand": b.on_hand() })
        })
        .collect();
    OutboxEvent { topic: "inventory.changed".into(), payload: serde_json::json!({ "balances": balances }) }
}

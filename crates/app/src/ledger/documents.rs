//! The write path's purchasing steps: a receipt, a transfer's shipment and arrival, a count's approval. Each one
//! changes its document and books its movements in the same batch transaction, so a retry or a crash can never
//! receive twice: the document's new state and the movements commit together or not at all, and the store writes
//! the document only if nobody changed it since the batch read it.

use domain::purchasing::{Count, PurchaseOrder, ReceiveLine, Transfer, TransferArrival};
use domain::stock::{AdjustLine, Change, StockState};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::*;
use crate::store::{DocKind, DocumentRecord};

/// The virtual locations purchasing books against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Virtuals {
    pub supplier: LocationId,
    pub transit: LocationId,
    pub adjustment: LocationId,
    pub scrap: LocationId,
}

/// A document step; `items` are every item the step may touch (their balances and backorders are loaded).
#[derive(Debug, Clone)]
pub struct DocumentCommand {
    pub document: i64,
    pub items: Vec<ItemId>,
    pub action: DocAction,
    pub actor: Actor,
    pub virtuals: Virtuals,
}

/// What arrived of a transfer line, and the destination bin it went into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrivalLine {
    pub arrival: TransferArrival,
    pub bin: LocationId,
}

#[derive(Debug, Clone)]
pub enum DocAction {
    ReceivePurchase { lines: Vec<ReceiveLine>, reference: Option<String> },
    ShipTransfer,
    ReceiveTransfer { lines: Vec<ArrivalLine> },
    ApproveCount,
}

fn decode<T: DeserializeOwned>(rec: &DocumentRecord, kind: DocKind) -> Result<T, Rejection> {
    if rec.kind != kind {
        return Err(Rejection::UnknownDocument(rec.id));
    }
    serde_json::from_value(rec.body.clone()).map_err(|e| Rejection::CorruptDocument(rec.id, e.to_string()))
}

fn encode<T: Serialize>(id: i64, body: &T) -> Result<serde_json::Value, Rejection> {
    serde_json::to_value(body).map_err(|e| Rejection::CorruptDocument(id, e.to_string()))
}

impl Batch<'_> {
    pub(super) fn document(&mut self, cmd: &DocumentCommand) -> Result<Effects, Rejection> {
        let id = cmd.document;
        let rec = self.state.documents.get(&id).cloned().ok_or(Rejection::UnknownDocument(id))?;
        let now = self.state.now;
        let v = cmd.virtuals;
        let actor = &cmd.actor;
        let mut fx = Effects::default();
        let (body, status, open) = match &cmd.action {
            DocAction::ReceivePurchase { lines, reference } => {
                let mut po: PurchaseOrder = decode(&rec, DocKind::PurchaseOrder)?;
                let index = po.receive(lines, now, reference.clone())?;
                let receipt = po.receipts[index].clone();
                let adjust: Vec<AdjustLine> = receipt
                    .lines
                    .iter()
                    .map(|l| AdjustLine {
                        item: l.item,
                        location: l.bin,
                        state: l.state,
                        change: Change::Delta(l.quantity),
                        source: v.supplier,
                        sink: v.supplier,
                    })
                    .collect();
                let meta = Meta {
                    reason: Reason::Received,
                    reference: format!("receipt {id}/{}", receipt.number),
                    note: "received",
                    actor,
                };
                fx.extend(self.post(&LedgerOp::Adjust(adjust), &meta)?);
                self.event(
                    "receipt.created",
                    serde_json::json!({ "purchase_order_id": id, "receipt": receipt.number, "lines": receipt.lines, "actor": actor.name }),
                );
                self.event(
                    "purchase_order.received",
                    serde_json::json!({ "id": id, "status": po.status, "receipt": receipt.number, "actor": actor.name }),
                );
                (encode(id, &po)?, po.status.as_str(), po.status.is_open())
            }
            DocAction::ShipTransfer => {
                let mut t: Transfer = decode(&rec, DocKind::Transfer)?;
                t.ship()?;
                let adjust: Vec<AdjustLine> = t
                    .lines
                    .iter()
                    .map(|l| AdjustLine {
                        item: l.item,
                        location: l.from_bin,
                        state: StockState::Available,
                        change: Change::Delta(-l.shipped),
                        source: v.transit,
                        sink: v.transit,
                    })
                    .collect();
                let meta = Meta { reason: Reason::Move, reference: format!("transfer {id}"), note: "shipped", actor };
                fx.extend(self.post(&LedgerOp::Adjust(adjust), &meta)?);
                self.event(
                    "transfer.shipped",
                    serde_json::json!({ "id": id, "status": t.status, "actor": actor.name }),
                );
                (encode(id, &t)?, t.status.as_str(), true)
            }
            DocAction::ReceiveTransfer { lines } => {
                let mut t: Transfer = decode(&rec, DocKind::Transfer)?;
                let arrivals: Vec<TransferArrival> = lines.iter().map(|l| l.arrival).collect();
                t.receive(&arrivals)?;
                let reference = format!("transfer {id}");
                let mut good = Vec::new();
                let mut damaged = Vec::new();
                for l in lines {
                    let item = t.lines[l.arrival.line].item;
                    let line = |state, q| AdjustLine {
                        item,
                        location: l.bin,
                        state,
                        change: Change::Delta(q),
                        source: v.transit,
                        sink: v.transit,
                    };
                    if l.arrival.received > 0 {
                        good.push(line(StockState::Available, l.arrival.received));
                    }
                    if l.arrival.damaged > 0 {
                        damaged.push(line(StockState::Damaged, l.arrival.damaged));
                    }
                }
                if !good.is_empty() {
                    let meta = Meta { reason: Reason::Move, reference: reference.clone(), note: "arrived", actor };
                    fx.extend(self.post(&LedgerOp::Adjust(good), &meta)?);
                }
                if !damaged.is_empty() {
                    let meta =
                        Meta { reason: Reason::Damaged, reference: reference.clone(), note: "arrived damaged", actor };
                    fx.extend(self.post(&LedgerOp::Adjust(damaged), &meta)?);
                }
                // Lost units never reach a bin: they are written off from transit to scrap, so that the ledger
                // still says where every shipped unit ended.
                for l in lines.iter().filter(|l| l.arrival.lost > 0) {
                    fx.movements.push(NewMovement {
                        item_id: t.lines[l.arrival.line].item,
                        quantity: l.arrival.lost,
                        from_location_id: v.transit,
                        from_state: None,
                        to_location_id: v.scrap,
                        to_state: None,
                        reason: Reason::Shrinkage,
                        reference: Some(reference.clone()),
                        note: Some("lost in transit".into()),
                        actor: actor.name.clone(),
                        request_id: actor.request_id.clone(),
                        recorded_at: now,
                    });
                }
                self.event(
                    "transfer.received",
                    serde_json::json!({ "id": id, "status": t.status, "actor": actor.name }),
                );
                (encode(id, &t)?, t.status.as_str(), t.status.is_open())
            }
            DocAction::ApproveCount => {
                let mut count: Count = decode(&rec, DocKind::Count)?;
                let deltas = count.approve(now)?;
                if !deltas.is_empty() {
                    let adjust: Vec<AdjustLine> = deltas
                        .iter()
                        .map(|(item, bin, d)| AdjustLine {
                            item: *item,
                            location: *bin,
                            state: StockState::Available,
                            change: Change::Delta(*d),
                            source: v.adjustment,
                            sink: v.adjustment,
                        })
                        .collect();
                    let meta = Meta {
                        reason: Reason::CycleCount,
                        reference: format!("count {id}"),
                        note: "count approved",
                        actor,
                    };
                    fx.extend(self.post(&LedgerOp::Adjust(adjust), &meta)?);
                }
                let adjustments: Vec<serde_json::Value> = count
                    .lines
                    .iter()
                    .filter(|l| l.variance() != 0)
                    .map(|l| serde_json::json!({ "sku": l.sku, "location": l.location, "delta": l.variance() }))
                    .collect();
                self.event(
                    "count.approved",
                    serde_json::json!({ "id": id, "adjustments": adjustments, "actor": actor.name }),
                );
                (encode(id, &count)?, count.status.as_str(), false)
            }
        };
        let rec = self.state.documents.get_mut(&id).expect("looked up above");
        rec.body = body;
        rec.status = status.to_string();
        rec.open = open;
        rec.updated_at = now;
        Ok(fx)
    }
}

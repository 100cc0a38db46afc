//! Pick lists and packing: the warehouse's side of fulfilment. A pick list gathers the committed lines of several
//! orders in one warehouse, re-chooses their bins (the fewest bins, then the pickers' walking order) and sorts the
//! stops by pick sequence, so that a picker walks the warehouse once.

use chrono::{DateTime, Utc};
use domain::location::LocationKind;
use domain::order::{OrderStatus, Package};
use domain::FieldError;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::ledger::{Actor, Command, OrderStep};
use crate::orders::OrderView;
use crate::page::{Page, PageRequest};
use crate::store::{OrderFilter, OrderId, PickListLine, PickListRecord, PickListStatus};
use crate::App;

/// Most orders one pick list gathers.
pub const MAX_ORDERS_PER_PICK_LIST: usize = 200;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPickList {
    /// The warehouse's code (path).
    pub warehouse: String,
    /// The orders to pick; when absent, the oldest open orders with committed units there that are not on another
    /// open pick list.
    #[serde(default)]
    pub order_ids: Option<Vec<OrderId>>,
    /// Most orders to gather when `order_ids` is absent (default 20).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompletePickList {
    /// Units picked per stop (by index); every stop picked in full when absent.
    #[serde(default)]
    pub picked: Option<Vec<i64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PackRequest {
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PickListView {
    pub id: i64,
    pub warehouse: String,
    pub status: PickListStatus,
    /// The stops, in walking order.
    pub lines: Vec<PickListLine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PickListRecord> for PickListView {
    fn from(r: PickListRecord) -> Self {
        PickListView {
            id: r.id,
            warehouse: r.warehouse,
            status: r.status,
            lines: r.lines,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl App {
    pub async fn create_pick_list(&self, req: NewPickList, actor: Actor) -> AppResult<PickListView> {
        let code = req.warehouse.trim().trim_matches('/');
        let warehouse = match self.store.get_location(code).await? {
            Some(l) if l.kind == LocationKind::Warehouse => l,
            Some(_) => return Err(AppError::field("warehouse", format!("'{code}' is not a warehouse"))),
            None => {
                return Err(AppError::UnknownReference(vec![FieldError::new(
                    "warehouse",
                    format!("unknown warehouse '{code}'"),
                )]))
            }
        };
        let limit = req.limit.unwrap_or(20);
        if limit == 0 || limit > MAX_ORDERS_PER_PICK_LIST {
            return Err(AppError::field("limit", format!("must be between 1 and {MAX_ORDERS_PER_PICK_LIST}")));
        }
        let busy = self.store.orders_being_picked(warehouse.id).await?;
        let holds_stock_here = |o: &crate::store::OrderRecord| {
            o.order.lines.iter().any(|l| l.picks.iter().any(|p| p.warehouse == warehouse.id))
        };
        let orders: Vec<OrderId> = match req.order_ids {
            Some(mut ids) => {
                // The same order named twice would have its stops listed twice, and be picked twice.
                let mut seen = std::collections::HashSet::new();
                ids.retain(|id| seen.insert(*id));
                if ids.is_empty() || ids.len() > MAX_ORDERS_PER_PICK_LIST {
                    return Err(AppError::field(
                        "order_ids",
                        format!("must name 1 to {MAX_ORDERS_PER_PICK_LIST} orders"),
                    ));
                }
                for (i, id) in ids.iter().enumerate() {
                    let Some(o) = self.store.get_order(*id).await? else {
                        return Err(AppError::UnknownReference(vec![FieldError::new(
                            format!("order_ids[{i}]"),
                            format!("order {id} not found"),
                        )]));
                    };
                    if busy.contains(id) {
                        return Err(AppError::Conflict {
                            code: "already_picking",
                            detail: format!("order {id} is on another open pick list of this warehouse"),
                            errors: vec![FieldError::new(format!("order_ids[{i}]"), "is being picked already")],
                        });
                    }
                    if !holds_stock_here(&o) {
                        return Err(AppError::Conflict {
                            code: "nothing_to_pick",
                            detail: format!("order {id} has no committed units in this warehouse"),
                            errors: vec![FieldError::new(format!("order_ids[{i}]"), "nothing to pick here")],
                        });
                    }
                }
                ids
            }
            None => {
                let mut found = Vec::new();
                let mut after = None;
                let filter = OrderFilter { status: Some(OrderStatus::Open), ..Default::default() };
                'pages: loop {
                    let rows = self.store.list_orders(&filter, after, crate::page::MAX_LIMIT).await?;
                    let full = rows.len() == crate::page::MAX_LIMIT as usize;
                    after = rows.last().map(|r| r.id);
                    for o in rows {
                        if !busy.contains(&o.id) && holds_stock_here(&o) {
                            found.push(o.id);
                            if found.len() == limit {
                                break 'pages;
                            }
                        }
                    }
                    if !full {
                        break;
                    }
                }
                found
            }
        };
        if orders.is_empty() {
            return Err(AppError::conflict("nothing_to_pick", "no open order has committed units waiting here"));
        }
        self.ledger
            .submit(Command::PlanPicks { warehouse: warehouse.id, orders: orders.clone(), actor })
            .await
            .map_err(crate::orders::submit_error)?;

        let bins = self.store.sellable_bins().await?;
        let sequence = |bin: i64| bins.iter().find(|b| b.bin == bin).and_then(|b| b.pick_sequence);
        let mut planned = Vec::with_capacity(orders.len());
        for id in &orders {
            if let Some(o) = self.store.get_order(*id).await? {
                planned.push(o);
            }
        }
        // The bins the picks name, sellable or not: a pick kept from before a bin was marked unsellable still
        // names it, and the picker must still find it.
        let picked_bins = planned.iter().flat_map(|o| o.order.lines.iter().flat_map(|l| l.picks.iter().map(|p| p.bin)));
        let paths = self.paths_snapshot(picked_bins.collect::<Vec<_>>()).await?;
        let mut lines = Vec::new();
        for o in &planned {
            let id = &o.id;
            for (i, l) in o.order.lines.iter().enumerate() {
                for p in l.picks.iter().filter(|p| p.warehouse == warehouse.id) {
                    lines.push(PickListLine {
                        order_id: *id,
                        line: i,
                        sku: l.sku.clone(),
                        bin: paths.get(&p.bin).cloned().unwrap_or_default(),
                        pick_sequence: sequence(p.bin),
                        quantity: p.quantity,
                        picked: 0,
                    });
                }
            }
        }
        // Walking order: bins by pick sequence (bins without one last), then by path; orders oldest first.
        lines.sort_by(|a, b| {
            (a.pick_sequence.is_none(), a.pick_sequence, &a.bin, a.order_id, a.line).cmp(&(
                b.pick_sequence.is_none(),
                b.pick_sequence,
                &b.bin,
                b.order_id,
                b.line,
            ))
        });
        let now = Utc::now();
        let record = PickListRecord {
            id: 0,
            warehouse_id: warehouse.id,
            warehouse: warehouse.path,
            status: PickListStatus::Open,
            lines,
            created_at: now,
            updated_at: now,
        };
        Ok(self.store.create_pick_list(&record).await?.into())
    }

    pub async fn pick_list(&self, id: i64) -> AppResult<PickListView> {
        self.store
            .get_pick_list(id)
            .await?
            .map(Into::into)
            .ok_or_else(|| AppError::NotFound { entity: "pick list", key: id.to_string() })
    }

    pub async fn list_pick_lists(
        &self,
        warehouse: Option<&str>,
        status: Option<PickListStatus>,
        page: PageRequest,
    ) -> AppResult<Page<PickListView>> {
        let warehouse_id = match warehouse {
            None => None,
            Some(code) => Some(
                self.store
                    .get_location(code.trim().trim_matches('/'))
                    .await?
                    .ok_or_else(|| AppError::NotFound { entity: "warehouse", key: code.to_string() })?
                    .id,
            ),
        };
        let rows = self.store.list_pick_lists(warehouse_id, status, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    /// Closes an open pick list as picked, recording what was picked at each stop.
    pub async fn complete_pick_list(&self, id: i64, req: CompletePickList) -> AppResult<PickListView> {
        let mut rec = self
            .store
            .get_pick_list(id)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "pick list", key: id.to_string() })?;
        if rec.status != PickListStatus::Open {
            return Err(AppError::conflict("pick_list_closed", format!("the pick list is {}", rec.status.as_str())));
        }
        match req.picked {
            None => rec.lines.iter_mut().for_each(|l| l.picked = l.quantity),
            Some(picked) => {
                if picked.len() != rec.lines.len() {
                    return Err(AppError::field(
                        "picked",
                        format!("must give {} quantities, one per stop", rec.lines.len()),
                    ));
                }
                for (i, (l, q)) in rec.lines.iter_mut().zip(picked).enumerate() {
                    if !(0..=l.quantity).contains(&q) {
                        return Err(AppError::field(
                            format!("picked[{i}]"),
                            format!("must be between 0 and {}", l.quantity),
                        ));
                    }
                    l.picked = q;
                }
            }
        }
        rec.status = PickListStatus::Picked;
        rec.updated_at = Utc::now();
        Ok(self.store.update_pick_list(&rec).await?.into())
    }

    pub async fn cancel_pick_list(&self, id: i64) -> AppResult<PickListView> {
        let mut rec = self
            .store
            .get_pick_list(id)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "pick list", key: id.to_string() })?;
        if rec.status != PickListStatus::Open {
            return Err(AppError::conflict("pick_list_closed", format!("the pick list is {}", rec.status.as_str())));
        }
        rec.status = PickListStatus::Cancelled;
        rec.updated_at = Utc::now();
        Ok(self.store.update_pick_list(&rec).await?.into())
    }

    /// Records the packages packed for an order's next shipment.
    pub async fn pack(&self, id: OrderId, req: PackRequest, actor: Actor) -> AppResult<OrderView> {
        let mut p = domain::Problems::default();
        if req.packages.is_empty() {
            p.push("packages", "must not be empty");
        }
        crate::orders::validate_packages(&req.packages, &mut p);
        p.into_result().map_err(AppError::Validation)?;
        self.run_order_step(id, OrderStep::Pack { packages: req.packages }, actor).await
    }
}

//! Inventory use cases: adjustments, moves, levels (now and as of a past time), the movement history, the
//! verification of balances against the ledger, and bulk stock import and export.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::stock::{
    AdjustLine, Balance, BalanceKey, Change, ItemId, LedgerError, LedgerOp, LocationId, MoveLine, Reason, StockState,
    MAX_LINES_PER_COMMAND,
};
use domain::{FieldError, Problems};
use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::ledger::{Actor, Command, LedgerCommand, LineMeta, Receipt, Rejection, SubmitError};
use crate::page::{Page, PageRequest};
use crate::store::{HoldRecord, LevelFilter, LevelRow, LocationRecord, MovementFilter};
use crate::views::{BinLevel, Drift, ItemLevels, LedgerReceipt, LevelAfter, MovementView, Quantities, WarehouseLevel};
use crate::App;

/// Longest free text on a movement (note, reference).
const MAX_NOTE_LEN: usize = 500;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    pub lines: Vec<AdjustmentLine>,
    /// Your own reference, such as a delivery note number; recorded on every movement.
    #[serde(default)]
    pub reference: Option<String>,
}

/// Either `delta` (add or remove units) or `set` with `expected_on_hand` (compare-and-set).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdjustmentLine {
    pub sku: String,
    /// Path of a bin.
    pub location: String,
    /// The state to change; `available` when absent. Committed and reserved belong to orders and holds.
    #[serde(default)]
    pub state: Option<StockState>,
    #[serde(default)]
    pub delta: Option<i64>,
    #[serde(default)]
    pub set: Option<i64>,
    /// Required with `set`: the on_hand you saw; the line fails with `stale_expected_on_hand` if it changed.
    #[serde(default)]
    pub expected_on_hand: Option<i64>,
    pub reason: Reason,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    pub lines: Vec<MoveLineRequest>,
    #[serde(default)]
    pub reference: Option<String>,
}

/// Moves stock between bins, between states, or both.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MoveLineRequest {
    pub sku: String,
    pub quantity: i64,
    /// Path of the source bin.
    pub from_location: String,
    /// Path of the destination bin; the source bin when absent (a change of state only).
    #[serde(default)]
    pub to_location: Option<String>,
    /// `available` when absent.
    #[serde(default)]
    pub from_state: Option<StockState>,
    /// The source state when absent (a move between bins only).
    #[serde(default)]
    pub to_state: Option<StockState>,
    /// `move` when absent.
    #[serde(default)]
    pub reason: Option<Reason>,
    #[serde(default)]
    pub note: Option<String>,
}

/// One line of a stock import: the absolute quantities of one SKU in one bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockImportLine {
    pub sku: String,
    pub location: String,
    pub available: i64,
    pub damaged: i64,
    pub quality_control: i64,
    pub safety_stock: i64,
    pub incoming: i64,
}

/// What a stock import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StockImportSummary {
    pub lines: usize,
    pub movements: usize,
    pub locations_created: usize,
}

/// The states an import sets absolutely.
const IMPORT_STATES: [StockState; 5] = [
    StockState::Available,
    StockState::Damaged,
    StockState::QualityControl,
    StockState::SafetyStock,
    StockState::Incoming,
];

fn check_text(p: &mut Problems, field: String, v: &Option<String>) {
    if let Some(v) = v {
        if v.chars().count() > MAX_NOTE_LEN {
            p.push(field, format!("must be at most {MAX_NOTE_LEN} characters"));
        }
    }
}

fn check_line_count(n: usize) -> AppResult<()> {
    if n == 0 || n > MAX_LINES_PER_COMMAND {
        return Err(AppError::field("lines", format!("must have between 1 and {MAX_LINES_PER_COMMAND} lines")));
    }
    Ok(())
}

/// `(field, item, SKU)` of each line, for the check that no line books a bundle's own SKU.
fn bundle_check(skus: &[(String, String)], items: &HashMap<String, ItemId>) -> Vec<(String, ItemId, String)> {
    skus.iter()
        .filter_map(|(field, sku)| items.get(sku.trim()).map(|i| (field.clone(), *i, sku.trim().to_string())))
        .collect()
}

/// Names a location for humans, by path.
struct Names {
    skus: HashMap<ItemId, String>,
    paths: HashMap<LocationId, String>,
}

impl Names {
    fn sku(&self, id: ItemId) -> String {
        self.skus.get(&id).cloned().unwrap_or_else(|| format!("item {id}"))
    }
    fn path(&self, id: LocationId) -> String {
        self.paths.get(&id).cloned().unwrap_or_else(|| format!("location {id}"))
    }
}

impl App {
    /// Resolves SKUs and bin paths named by lines; every unknown one and every non-bin is reported by field.
    async fn resolve_lines(
        &self,
        skus: &[(String, String)],
        bins: &[(String, String)],
    ) -> AppResult<(HashMap<String, ItemId>, HashMap<String, LocationRecord>)> {
        let sku_list: Vec<String> = skus.iter().map(|(_, s)| s.trim().to_string()).collect();
        let path_list: Vec<String> = bins.iter().map(|(_, p)| p.trim().trim_matches('/').to_string()).collect();
        let items = self.store.resolve_skus(&sku_list).await?;
        let locations = self.store.resolve_paths(&path_list).await?;
        let mut unknown = Vec::new();
        let mut bad = Problems::default();
        for ((field, _), sku) in skus.iter().zip(&sku_list) {
            if !items.contains_key(sku) {
                unknown.push(FieldError::new(field.clone(), format!("unknown SKU '{sku}'")));
            }
        }
        for ((field, _), path) in bins.iter().zip(&path_list) {
            match locations.get(path) {
                None => unknown.push(FieldError::new(field.clone(), format!("unknown location '{path}'"))),
                Some(l) if !l.kind.holds_stock() => bad.push(
                    field.clone(),
                    format!("'{path}' is a {}, not a bin: stock is kept in bins", l.kind.as_str()),
                ),
                Some(_) => {}
            }
        }
        if !unknown.is_empty() {
            return Err(AppError::UnknownReference(unknown));
        }
        bad.into_result().map_err(AppError::Validation)?;
        Ok((items, locations))
    }

    /// The item a `sku=` filter names; an unknown SKU is a 404, not an empty list, so that typos show.
    async fn item_filter(&self, sku: Option<&str>) -> AppResult<Option<ItemId>> {
        let Some(sku) = sku.map(str::trim) else { return Ok(None) };
        let found = self.store.resolve_skus(&[sku.to_string()]).await?;
        found.get(sku).copied().map(Some).ok_or_else(|| AppError::NotFound { entity: "sku", key: sku.to_string() })
    }

    /// The path a `location=` filter names, checked to exist.
    async fn within_filter(&self, path: Option<&str>) -> AppResult<Option<String>> {
        let Some(path) = path.map(|p| p.trim().trim_matches('/')) else { return Ok(None) };
        match self.store.get_location(path).await? {
            Some(l) => Ok(Some(l.path)),
            None => Err(AppError::NotFound { entity: "location", key: path.to_string() }),
        }
    }

    /// Books stock in or out of bins, all lines or none.
    pub async fn adjust(&self, req: AdjustmentRequest, actor: Actor) -> AppResult<LedgerReceipt> {
        check_line_count(req.lines.len())?;
        let mut p = Problems::default();
        check_text(&mut p, "reference".into(), &req.reference);
        for (i, l) in req.lines.iter().enumerate() {
            let f = |name: &str| format!("lines[{i}].{name}");
            let state = l.state.unwrap_or(StockState::Available);
            if !state.is_manually_adjustable() {
                p.push(f("state"), format!("{state} is changed by orders and holds, not by adjustments"));
            }
            if matches!(
                l.reason,
                Reason::Move | Reason::Import | Reason::Order | Reason::Hold | Reason::Shipment | Reason::Return
            ) {
                p.push(f("reason"), format!("'{}' is not an adjustment reason", l.reason));
            }
            match (l.delta, l.set) {
                (Some(_), Some(_)) => p.push(f("set"), "give either delta or set, not both"),
                (None, None) => p.push(f("delta"), "give either delta or set"),
                (Some(0), None) => p.push(f("delta"), "must not be zero"),
                (Some(d), None) if d.unsigned_abs() > domain::stock::MAX_LINE_QUANTITY as u64 => {
                    p.push(f("delta"), format!("must be at most {} units either way", domain::stock::MAX_LINE_QUANTITY))
                }
                (Some(_), None) if l.expected_on_hand.is_some() => p.push(f("expected_on_hand"), "applies only to set"),
                (None, Some(s)) => {
                    if !(0..=domain::stock::MAX_LINE_QUANTITY).contains(&s) {
                        p.push(f("set"), format!("must be between 0 and {}", domain::stock::MAX_LINE_QUANTITY));
                    }
                    match l.expected_on_hand {
                        None => p.push(f("expected_on_hand"), "is required with set (compare-and-set)"),
                        Some(e) if e < 0 => p.push(f("expected_on_hand"), "must be zero or more"),
                        Some(_) => {}
                    }
                }
                _ => {}
            }
            check_text(&mut p, f("note"), &l.note);
        }
        p.into_result().map_err(AppError::Validation)?;

        let skus: Vec<_> =
            req.lines.iter().enumerate().map(|(i, l)| (format!("lines[{i}].sku"), l.sku.clone())).collect();
        let bins: Vec<_> =
            req.lines.iter().enumerate().map(|(i, l)| (format!("lines[{i}].location"), l.location.clone())).collect();
        let (items, locations) = self.resolve_lines(&skus, &bins).await?;
        self.refuse_bundle_items(&bundle_check(&skus, &items)).await?;
        let mut lines = Vec::with_capacity(req.lines.len());
        let mut meta = Vec::with_capacity(req.lines.len());
        for l in &req.lines {
            let change = match (l.delta, l.set) {
                (Some(d), _) => Change::Delta(d),
                (None, Some(s)) => Change::Set { quantity: s, expected_on_hand: l.expected_on_hand },
                (None, None) => unreachable!("validated above"),
            };
            lines.push(AdjustLine {
                item: items[l.sku.trim()],
                location: locations[l.location.trim().trim_matches('/')].id,
                state: l.state.unwrap_or(StockState::Available),
                change,
                source: self.virtuals[&l.reason.counterpart(true)],
                sink: self.virtuals[&l.reason.counterpart(false)],
            });
            meta.push(LineMeta { reason: l.reason, note: l.note.clone() });
        }
        let cmd = LedgerCommand { op: LedgerOp::Adjust(lines), lines: meta, reference: req.reference, actor };
        self.submit(cmd, &items, &locations).await
    }

    /// Moves stock between bins or states, all lines or none.
    pub async fn move_stock(&self, req: MoveRequest, actor: Actor) -> AppResult<LedgerReceipt> {
        check_line_count(req.lines.len())?;
        let mut p = Problems::default();
        check_text(&mut p, "reference".into(), &req.reference);
        for (i, l) in req.lines.iter().enumerate() {
            let f = |name: &str| format!("lines[{i}].{name}");
            if !(1..=domain::stock::MAX_LINE_QUANTITY).contains(&l.quantity) {
                p.push(f("quantity"), "must be a positive number of units");
            }
            for (name, st) in [("from_state", l.from_state), ("to_state", l.to_state)] {
                if let Some(st) = st.filter(|s| !s.is_manually_adjustable()) {
                    p.push(f(name), format!("{st} is changed by orders and holds, not by moves"));
                }
            }
            if let Some(r @ (Reason::Import | Reason::Order | Reason::Hold | Reason::Shipment | Reason::Return)) =
                l.reason
            {
                p.push(f("reason"), format!("'{r}' is booked by imports, orders and holds themselves"));
            }
            check_text(&mut p, f("note"), &l.note);
        }
        p.into_result().map_err(AppError::Validation)?;

        let skus: Vec<_> =
            req.lines.iter().enumerate().map(|(i, l)| (format!("lines[{i}].sku"), l.sku.clone())).collect();
        let mut bins = Vec::new();
        for (i, l) in req.lines.iter().enumerate() {
            bins.push((format!("lines[{i}].from_location"), l.from_location.clone()));
            if let Some(to) = &l.to_location {
                bins.push((format!("lines[{i}].to_location"), to.clone()));
            }
        }
        let (items, locations) = self.resolve_lines(&skus, &bins).await?;
        self.refuse_bundle_items(&bundle_check(&skus, &items)).await?;
        let loc = |p: &str| locations[p.trim().trim_matches('/')].id;
        let mut lines = Vec::with_capacity(req.lines.len());
        let mut meta = Vec::with_capacity(req.lines.len());
        for l in &req.lines {
            let from_state = l.from_state.unwrap_or(StockState::Available);
            lines.push(MoveLine {
                item: items[l.sku.trim()],
                quantity: l.quantity,
                from_location: loc(&l.from_location),
                from_state,
                to_location: l.to_location.as_deref().map(loc).unwrap_or_else(|| loc(&l.from_location)),
                to_state: l.to_state.unwrap_or(from_state),
            });
            meta.push(LineMeta { reason: l.reason.unwrap_or(Reason::Move), note: l.note.clone() });
        }
        let cmd = LedgerCommand { op: LedgerOp::Move(lines), lines: meta, reference: req.reference, actor };
        self.submit(cmd, &items, &locations).await
    }

    async fn submit(
        &self,
        cmd: LedgerCommand,
        items: &HashMap<String, ItemId>,
        locations: &HashMap<String, LocationRecord>,
    ) -> AppResult<LedgerReceipt> {
        let mut names = Names {
            skus: items.iter().map(|(s, id)| (*id, s.clone())).collect(),
            paths: locations.values().map(|l| (l.id, l.path.clone())).collect(),
        };
        for (kind, id) in self.virtuals.iter() {
            names.paths.insert(*id, kind.code().to_string());
        }
        let receipt = self.ledger.submit(Command::Stock(cmd)).await.map_err(|e| submit_error(e, &names))?;
        Ok(receipt_view(receipt, &names))
    }

    /// Stock per bin, rolled up per warehouse and in total; paginated by item.
    pub async fn levels(
        &self,
        sku: Option<&str>,
        within: Option<&str>,
        as_of: Option<DateTime<Utc>>,
        page: PageRequest,
    ) -> AppResult<Page<ItemLevels>> {
        let filter = LevelFilter { item_id: self.item_filter(sku).await?, within: self.within_filter(within).await? };
        if let Some(t) = as_of {
            if t > Utc::now() {
                return Err(AppError::field("as_of", "must not be in the future"));
            }
        }
        let (rows, incoming) = match as_of {
            None => {
                // Three reads that need nothing of each other: on PostgreSQL each is a round trip, so they go out
                // together and the lookup waits for the slowest rather than for all three in turn.
                let (mut rows, due, incoming) = tokio::try_join!(
                    async { self.store.levels(&filter, page.after, page.fetch_limit()).await.map_err(AppError::from) },
                    async { self.store.due_holds(Utc::now()).await.map_err(AppError::from) },
                    self.incoming(),
                )?;
                uncount_holds(&mut rows, &due);
                (rows, Some(incoming))
            }
            Some(t) => (self.store.levels_as_of(&filter, t, page.after, page.fetch_limit()).await?, None),
        };
        let mut page = page.finish(group_levels(rows), |(id, _)| *id);
        if let Some(incoming) = incoming {
            // An item asked for by SKU that has nothing on hand yet may still be on its way.
            let placeholder = match (filter.item_id, sku) {
                (Some(item), Some(sku)) if page.items.is_empty() && page.next_cursor.is_none() => {
                    let empty =
                        ItemLevels { sku: sku.trim().to_string(), total: Quantities::default(), warehouses: vec![] };
                    page.items.push((item, empty));
                    true
                }
                _ => false,
            };
            self.add_incoming(&mut page.items, &incoming, filter.within.as_deref()).await?;
            if placeholder {
                page.items.retain(|(_, l)| !l.warehouses.is_empty());
            }
        }
        Ok(Page { items: page.items.into_iter().map(|(_, l)| l).collect(), next_cursor: page.next_cursor })
    }

    /// Adds what open purchase orders and transfers bring to each warehouse (derived, never booked) to the
    /// warehouse totals and the item total.
    /// Under a `within` filter only the warehouse it names gets its incoming: incoming belongs to no bin.
    async fn add_incoming(
        &self,
        items: &mut [(ItemId, ItemLevels)],
        incoming: &HashMap<(ItemId, LocationId), i64>,
        within: Option<&str>,
    ) -> AppResult<()> {
        if incoming.is_empty() {
            return Ok(());
        }
        let paths = self.paths_snapshot(incoming.keys().map(|(_, w)| *w)).await?;
        for (item, levels) in items.iter_mut() {
            let mut mine: Vec<(String, i64)> = incoming
                .iter()
                .filter(|((i, _), _)| i == item)
                .filter_map(|((_, w), q)| paths.get(w).map(|p| (p.clone(), *q)))
                .filter(|(p, _)| within.is_none_or(|w| w == p))
                .collect();
            mine.sort();
            for (warehouse, q) in mine {
                match levels.warehouses.iter_mut().find(|w| w.warehouse == warehouse) {
                    Some(w) => w.total.incoming += q,
                    None => levels.warehouses.push(WarehouseLevel {
                        warehouse,
                        total: Quantities { incoming: q, ..Default::default() },
                        bins: vec![],
                    }),
                }
                levels.total.incoming += q;
            }
        }
        Ok(())
    }

    /// A hold stops counting the instant it expires, before the cleanup worker gives its stock back in the ledger:
    /// what it still reserves in the stored balances is shown as available.
    pub(crate) async fn uncount_expired_holds(&self, rows: &mut [LevelRow]) -> AppResult<()> {
        let due = self.store.due_holds(Utc::now()).await?;
        uncount_holds(rows, &due);
        Ok(())
    }

    /// The ledger, newest last, filtered and paginated.
    pub async fn movements(
        &self,
        sku: Option<&str>,
        within: Option<&str>,
        reason: Option<Reason>,
        page: PageRequest,
    ) -> AppResult<Page<MovementView>> {
        let filter = MovementFilter {
            item_id: self.item_filter(sku).await?,
            within: self.within_filter(within).await?,
            reason,
            ..Default::default()
        };
        let rows = self.store.movements(&filter, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    /// Recomputes every balance from the ledger and lists each one that differs from the stored balance.
    pub async fn verify(&self) -> AppResult<Vec<Drift>> {
        verify_store(self.store.as_ref()).await
    }

    /// Sets the stock of every (SKU, bin) in the file absolutely, as one command: all lines or none. With
    /// `create_locations`, bins (and the warehouses and shelves above them) that do not exist yet are created
    /// first; otherwise an unknown location is an error. Errors name the line index (0-based) in `lines[i]`.
    pub async fn import_stock(
        &self,
        rows: &[StockImportLine],
        create_locations: bool,
        actor: Actor,
    ) -> AppResult<StockImportSummary> {
        if rows.is_empty() {
            return Ok(StockImportSummary::default());
        }
        let mut p = Problems::default();
        let mut seen = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            if let Err(e) = domain::codes::Sku::parse(&r.sku) {
                p.push(format!("lines[{i}].sku"), e);
            }
            if let Err(e) = domain::codes::LocationPath::parse(&r.location) {
                p.push(format!("lines[{i}].location"), e);
            }
            for (name, q) in [
                ("available", r.available),
                ("damaged", r.damaged),
                ("quality_control", r.quality_control),
                ("safety_stock", r.safety_stock),
                ("incoming", r.incoming),
            ] {
                if !(0..=domain::stock::MAX_LINE_QUANTITY).contains(&q) {
                    p.push(format!("lines[{i}].{name}"), "must be zero or more");
                }
            }
            if let Some(first) = seen.insert((r.sku.trim(), r.location.trim().trim_matches('/')), i) {
                p.push(format!("lines[{i}].location"), format!("the same SKU and bin are on line index {first} too"));
            }
        }
        p.into_result().map_err(AppError::Validation)?;

        // Everything that can be checked is checked before the first location is created, so that a bad file
        // leaves no trace.
        let sku_list: Vec<String> = rows.iter().map(|r| r.sku.trim().to_string()).collect();
        let known = self.store.resolve_skus(&sku_list).await?;
        let unknown: Vec<FieldError> = sku_list
            .iter()
            .enumerate()
            .filter(|(_, s)| !known.contains_key(*s))
            .map(|(i, s)| FieldError::new(format!("lines[{i}].sku"), format!("unknown SKU '{s}'")))
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::UnknownReference(unknown));
        }
        let named: Vec<(String, ItemId, String)> =
            sku_list.iter().enumerate().map(|(i, s)| (format!("lines[{i}].sku"), known[s], s.clone())).collect();
        self.refuse_bundle_items(&named).await?;
        let mut created = 0;
        if create_locations {
            let paths: Vec<(String, String)> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("lines[{i}].location"), r.location.trim().trim_matches('/').to_string()))
                .collect();
            let plan = self.plan_bins(&paths).await?;
            created = self.create_planned(plan).await?;
        }
        let skus: Vec<_> = rows.iter().enumerate().map(|(i, r)| (format!("lines[{i}].sku"), r.sku.clone())).collect();
        let bins: Vec<_> =
            rows.iter().enumerate().map(|(i, r)| (format!("lines[{i}].location"), r.location.clone())).collect();
        let (items, locations) = self.resolve_lines(&skus, &bins).await?;
        let mut lines = Vec::new();
        let mut meta = Vec::new();
        for r in rows {
            let item = items[r.sku.trim()];
            let location = locations[r.location.trim().trim_matches('/')].id;
            let wanted = [r.available, r.damaged, r.quality_control, r.safety_stock, r.incoming];
            for (state, quantity) in IMPORT_STATES.into_iter().zip(wanted) {
                lines.push(AdjustLine {
                    item,
                    location,
                    state,
                    change: Change::Set { quantity, expected_on_hand: None },
                    source: self.virtuals[&Reason::Import.counterpart(true)],
                    sink: self.virtuals[&Reason::Import.counterpart(false)],
                });
                meta.push(LineMeta { reason: Reason::Import, note: None });
            }
        }
        let cmd = LedgerCommand { op: LedgerOp::Adjust(lines), lines: meta, reference: None, actor };
        let receipt = self.submit(cmd, &items, &locations).await?;
        Ok(StockImportSummary { lines: rows.len(), movements: receipt.movements.len(), locations_created: created })
    }

    /// Every non-zero stored balance, for export, in SKU and path order.
    pub async fn export_stock(&self) -> AppResult<Vec<LevelRow>> {
        let (mut stored, _) = self.store.balances_and_ledger().await?;
        stored.retain(|r| !r.balance.is_zero());
        stored.sort_by(|a, b| (&a.sku, &a.path).cmp(&(&b.sku, &b.path)));
        Ok(stored)
    }
}

/// Groups level rows by item (in item order), then warehouse, then bin.
/// Shows what the due holds still reserve in `rows` as available again (see
/// [`App::uncount_expired_holds`]).
fn uncount_holds(rows: &mut [LevelRow], due: &[HoldRecord]) {
    if due.is_empty() {
        return;
    }
    let mut expired: HashMap<(ItemId, LocationId), i64> = HashMap::new();
    for h in due {
        for l in &h.hold.lines {
            for p in &l.picks {
                *expired.entry((l.item, p.bin)).or_default() += p.quantity;
            }
        }
    }
    for row in rows.iter_mut() {
        if let Some(q) = expired.get(&(row.item_id, row.location_id)) {
            let q = (*q).min(row.balance.reserved);
            row.balance.reserved -= q;
            row.balance.available += q;
        }
    }
}

fn group_levels(rows: Vec<LevelRow>) -> Vec<(ItemId, ItemLevels)> {
    let mut out: Vec<(ItemId, ItemLevels)> = Vec::new();
    for r in rows {
        if out.last().map(|(id, _)| *id) != Some(r.item_id) {
            out.push((r.item_id, ItemLevels { sku: r.sku.clone(), total: Quantities::default(), warehouses: vec![] }));
        }
        let (_, item) = out.last_mut().expect("pushed above");
        let warehouse = r.path.split('/').next().unwrap_or(&r.path).to_string();
        if item.warehouses.last().map(|w| &w.warehouse) != Some(&warehouse) {
            item.warehouses.push(WarehouseLevel { warehouse, total: Quantities::default(), bins: vec![] });
        }
        item.warehouses
            .last_mut()
            .expect("pushed above")
            .bins
            .push(BinLevel { location: r.path, quantities: r.balance.into() });
    }
    for (_, item) in &mut out {
        let mut total = Balance::default();
        for w in &mut item.warehouses {
            let mut wt = Balance::default();
            for b in &w.bins {
                wt = wt.plus(&to_balance(&b.quantities));
            }
            w.total = wt.into();
            total = total.plus(&wt);
        }
        item.total = total.into();
    }
    out
}

fn to_balance(q: &Quantities) -> Balance {
    Balance {
        available: q.available,
        committed: q.committed,
        reserved: q.reserved,
        damaged: q.damaged,
        quality_control: q.quality_control,
        safety_stock: q.safety_stock,
        incoming: q.incoming,
    }
}

fn receipt_view(r: Receipt, names: &Names) -> LedgerReceipt {
    let movements = r
        .movements
        .into_iter()
        .map(|(id, m)| {
            MovementView::from(crate::store::MovementRecord {
                id,
                sku: names.sku(m.item_id),
                from_path: names.path(m.from_location_id),
                to_path: names.path(m.to_location_id),
                movement: m,
            })
        })
        .collect();
    let levels = r
        .balances
        .into_iter()
        .map(|((item, location), b): (BalanceKey, Balance)| LevelAfter {
            sku: names.sku(item),
            location: names.path(location),
            quantities: b.into(),
        })
        .collect();
    LedgerReceipt { movements, levels }
}

fn submit_error(e: SubmitError, names: &Names) -> AppError {
    match e {
        SubmitError::Rejected(Rejection::Ledger(LedgerError::InsufficientStock {
            line,
            item,
            location,
            state,
            on_hand_in_state,
            requested,
        })) => {
            let detail = format!(
                "line {line}: {} has {on_hand_in_state} {state} in {}, {requested} needed",
                names.sku(item),
                names.path(location)
            );
            AppError::InsufficientStock {
                detail: detail.clone(),
                errors: vec![FieldError::new(format!("lines[{line}]"), detail)],
            }
        }
        SubmitError::Rejected(Rejection::Ledger(LedgerError::StaleExpectedOnHand {
            line,
            item,
            location,
            expected,
            actual,
        })) => AppError::Conflict {
            code: "stale_expected_on_hand",
            detail: format!(
                "line {line}: on_hand of {} in {} is {actual}, not the expected {expected}",
                names.sku(item),
                names.path(location)
            ),
            errors: vec![FieldError::new(
                format!("lines[{line}].expected_on_hand"),
                format!("on_hand is now {actual}"),
            )],
        },
        SubmitError::Rejected(Rejection::Ledger(LedgerError::InvalidLine { line, field, message })) => {
            AppError::field(format!("lines[{line}].{field}"), message)
        }
        SubmitError::Rejected(Rejection::Ledger(LedgerError::LineCount)) => {
            AppError::field("lines", "must not be empty")
        }
        SubmitError::Rejected(other) => {
            AppError::Store(crate::StoreError::Internal(format!("unexpected rejection: {other}")))
        }
        SubmitError::Store(e) => AppError::Store(e),
        SubmitError::Closed => AppError::Unavailable("the write path is shutting down".into()),
    }
}

/// [`App::verify`] on a bare store: reads only (one consistent snapshot), so it runs beside live servers without
/// starting a write path of its own.
pub async fn verify_store(store: &dyn crate::Store) -> AppResult<Vec<Drift>> {
    let (stored, folded) = store.balances_and_ledger().await?;
    let mut map: BTreeMap<(String, String), (Balance, Balance)> = BTreeMap::new();
    for r in stored {
        map.entry((r.sku, r.path)).or_default().0 = r.balance;
    }
    for r in folded {
        map.entry((r.sku, r.path)).or_default().1 = r.balance;
    }
    Ok(map
        .into_iter()
        .filter(|(_, (s, l))| s != l)
        .map(|((sku, location), (stored, ledger))| Drift { sku, location, stored, ledger })
        .collect())
}

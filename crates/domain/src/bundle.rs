//! Bundles (kits): a variant that sells a set of component items with quantities instead of an item of its own.
//!
//! The rules here only decide: whether a definition is acceptable (bounded, no bundle inside itself, directly or
//! through nested bundles), how nested bundles flatten into the items that really hold stock, how many bundles the
//! components' stock allows, and how an order's bundle line turns into the lines of its components.
//!
//! A bundle's own item never holds stock. Selling one commits its components; its availability is derived from
//! theirs, so a bundle and a component sold side by side draw on one pool and are never counted twice.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::order::Order;
use crate::stock::{ItemId, MAX_LINE_QUANTITY};
use crate::FieldError;

/// Most components one bundle may list: far above any real kit, and it bounds the work of expanding an order.
pub const MAX_COMPONENTS: usize = 50;

/// Most levels of bundles inside bundles. Deeper nesting is a modelling mistake, and the bound keeps flattening
/// cheap even for a graph the database was handed by a buggy writer.
pub const MAX_DEPTH: usize = 5;

/// Units of one item in one bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Component {
    pub item: ItemId,
    /// Units of `item` per bundle; at least 1.
    pub quantity: i64,
}

/// Every bundle's direct components, as loaded from the store. An item that is absent is not a bundle.
pub type BundleGraph = HashMap<ItemId, Vec<Component>>;

/// Why a bundle's definition or its expansion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle would contain itself; `path` runs from the bundle through nested bundles back to it.
    #[error("the bundle would contain itself: {path:?}")]
    Cycle { path: Vec<ItemId> },
    /// Bundles are nested deeper than [`MAX_DEPTH`].
    #[error("bundles are nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// Units per bundle, multiplied through nested bundles, exceed [`MAX_LINE_QUANTITY`].
    #[error("a component's units per bundle exceed {MAX_LINE_QUANTITY}")]
    QuantityTooLarge,
}

/// Checks a definition on its own (the graph is checked by [`find_cycle`]): at most [`MAX_COMPONENTS`], each
/// quantity in `1..=MAX_LINE_QUANTITY`, no item twice, and not the bundle itself. Every bad entry is named by field
/// (`components[i].quantity`, `components[i].sku`).
pub fn check_definition(bundle: ItemId, components: &[Component]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if components.len() > MAX_COMPONENTS {
        errors.push(FieldError::new("components", format!("at most {MAX_COMPONENTS} components")));
    }
    let mut seen = HashSet::new();
    for (i, c) in components.iter().enumerate() {
        if !(1..=MAX_LINE_QUANTITY).contains(&c.quantity) {
            errors.push(FieldError::new(
                format!("components[{i}].quantity"),
                format!("must be between 1 and {MAX_LINE_QUANTITY}"),
            ));
        }
        if c.item == bundle {
            errors.push(FieldError::new(format!("components[{i}].sku"), "a bundle cannot contain itself"));
        } else if !seen.insert(c.item) {
            errors.push(FieldError::new(format!("components[{i}].sku"), "is listed twice; give one quantity"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether giving `bundle` these `components` would close a loop, given every other bundle's definition in `graph`
/// (the bundle's own current entry is ignored). Returns the loop as a path `bundle → … → bundle`.
pub fn find_cycle(bundle: ItemId, components: &[Component], graph: &BundleGraph) -> Option<Vec<ItemId>> {
    // Depth-first from each component, remembering the path; the graph is small (a bundle and what it reaches).
    fn walk(
        at: ItemId,
        target: ItemId,
        graph: &BundleGraph,
        path: &mut Vec<ItemId>,
        done: &mut HashSet<ItemId>,
    ) -> bool {
        path.push(at);
        if at == target {
            return true;
        }
        if done.insert(at) {
            for c in graph.get(&at).into_iter().flatten() {
                if walk(c.item, target, graph, path, done) {
                    return true;
                }
            }
        }
        path.pop();
        false
    }
    let mut others = graph.clone();
    others.remove(&bundle);
    let mut done = HashSet::new();
    for c in components {
        let mut path = vec![bundle];
        if walk(c.item, bundle, &others, &mut path, &mut done) {
            return Some(path);
        }
    }
    None
}

/// The items that hold stock for one `bundle`, with units per bundle: nested bundles are replaced by their own
/// components (quantities multiplied), and an item reached twice is merged into one entry, so that a caller checks
/// one pool per item. In the order the definition lists them, depth first. A non-bundle is its own single part.
pub fn flatten(bundle: ItemId, graph: &BundleGraph) -> Result<Vec<Component>, BundleError> {
    fn walk(
        item: ItemId,
        per: i64,
        depth: usize,
        graph: &BundleGraph,
        path: &mut Vec<ItemId>,
        out: &mut Vec<Component>,
    ) -> Result<(), BundleError> {
        if path.contains(&item) {
            let mut cycle = path.clone();
            cycle.push(item);
            return Err(BundleError::Cycle { path: cycle });
        }
        match graph.get(&item).filter(|c| !c.is_empty()) {
            None => {
                match out.iter_mut().find(|c| c.item == item) {
                    Some(c) => c.quantity = c.quantity.checked_add(per).ok_or(BundleError::QuantityTooLarge)?,
                    None => out.push(Component { item, quantity: per }),
                }
                if out.iter().any(|c| c.quantity > MAX_LINE_QUANTITY) {
                    return Err(BundleError::QuantityTooLarge);
                }
                Ok(())
            }
            Some(components) => {
                if depth > MAX_DEPTH {
                    return Err(BundleError::TooDeep);
                }
                path.push(item);
                for c in components {
                    let per = per.checked_mul(c.quantity).filter(|q| *q <= MAX_LINE_QUANTITY);
                    walk(c.item, per.ok_or(BundleError::QuantityTooLarge)?, depth + 1, graph, path, out)?;
                }
                path.pop();
                Ok(())
            }
        }
    }
    let mut out = Vec::new();
    walk(bundle, 1, 0, graph, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// How many whole bundles the components' stock allows: the minimum over components of
/// `floor(available / units per bundle)`, never negative. `parts` are `(units per bundle, available)`, one entry per
/// stock-holding item (see [`flatten`]); `None` when no part limits the bundle (every component is untracked).
pub fn available(parts: &[(i64, i64)]) -> Option<i64> {
    parts.iter().filter(|(per, _)| *per > 0).map(|(per, available)| available.max(&0) / per).min()
}

/// Where an order line stands in a bundle: it carries `per_bundle` units of its item for each unit of the bundle
/// line `line`. The bundle line itself holds no stock; its components' lines do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundlePart {
    /// The index of the bundle's own line in the order.
    pub line: usize,
    /// Units of this line's item per unit of the bundle.
    pub per_bundle: i64,
}

/// How an order treats its bundle lines. A bundle line is untracked and holds no stock; its components' lines
/// (each with [`BundlePart`]) hold the picks. Every change the client asks for names the bundle line, and is applied
/// to the bundle line and to each component line times its units per bundle, so that for every component line
/// `quantity`, `cancelled` and `shipped` stay `per_bundle` times the bundle line's.
impl Order {
    /// The component lines of bundle line `line`, with units per bundle; empty when `line` is not a bundle line.
    pub fn bundle_parts(&self, line: usize) -> Vec<(usize, i64)> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.bundle.filter(|b| b.line == line).map(|b| (i, b.per_bundle)))
            .collect()
    }

    pub fn is_bundle_line(&self, line: usize) -> bool {
        self.lines.iter().any(|l| l.bundle.is_some_and(|b| b.line == line))
    }

    /// Whole bundles of line `line` whose every tracked component is committed, so that they can ship now.
    pub fn complete_bundles(&self, line: usize) -> i64 {
        let Some(l) = self.lines.get(line) else { return 0 };
        let due = l.quantity - l.cancelled - l.shipped;
        self.bundle_parts(line)
            .into_iter()
            .filter(|(i, _)| self.lines[*i].tracked)
            .map(|(i, per)| self.lines[i].committed() / per)
            .min()
            .unwrap_or(due)
            .min(due)
    }

    /// The items that hold a line's units with units per line unit: a bundle line's tracked components, or the
    /// line's own item.
    pub fn stock_items(&self, line: usize) -> Vec<(ItemId, i64)> {
        if self.is_bundle_line(line) {
            self.bundle_parts(line)
                .into_iter()
                .filter(|(i, _)| self.lines[*i].tracked)
                .map(|(i, per)| (self.lines[i].item, per))
                .collect()
        } else {
            self.lines.get(line).map(|l| vec![(l.item, 1)]).unwrap_or_default()
        }
    }

    /// Adds, after each request for a bundle line, the requests for its component lines (units times units per
    /// bundle). A request naming a component line alone is refused as `Err((line, bundle line))`: a kit is sold,
    /// cancelled, shipped and returned whole.
    pub(crate) fn expand_bundle_requests(
        &self,
        requests: &[(usize, i64)],
    ) -> Result<Vec<(usize, i64)>, (usize, usize)> {
        let mut out = Vec::with_capacity(requests.len());
        for &(line, quantity) in requests {
            if let Some(part) = self.lines.get(line).and_then(|l| l.bundle) {
                return Err((line, part.line));
            }
            out.push((line, quantity));
            for (part, per) in self.bundle_parts(line) {
                out.push((part, quantity.saturating_mul(per)));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(item: ItemId, quantity: i64) -> Component {
        Component { item, quantity }
    }

    #[test]
    fn a_definition_names_every_bad_component() {
        let errors = check_definition(1, &[c(1, 1), c(2, 0), c(3, 1), c(3, 2)]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["components[0].sku", "components[1].quantity", "components[3].sku"]);
        let many: Vec<Component> = (10..10 + MAX_COMPONENTS as i64 + 1).map(|i| c(i, 1)).collect();
        assert_eq!(check_definition(1, &many).unwrap_err()[0].field, "components");
        assert!(check_definition(1, &[c(2, 3), c(3, 1)]).is_ok());
    }

    #[test]
    fn a_cycle_through_nested_bundles_is_found_with_its_path() {
        // 2 contains 3, 3 contains 4; giving 4 the component 2 closes 4 → 2 → 3 → 4.
        let graph = BundleGraph::from([(2, vec![c(3, 1)]), (3, vec![c(4, 2)])]);
        assert_eq!(find_cycle(4, &[c(2, 1)], &graph), Some(vec![4, 2, 3, 4]));
        assert_eq!(find_cycle(4, &[c(5, 1)], &graph), None);
        // The bundle's own old definition does not count: redefining 2 without 3 is fine.
        assert_eq!(find_cycle(2, &[c(5, 1)], &graph), None);
        assert_eq!(find_cycle(3, &[c(3, 1)], &graph), Some(vec![3, 3]));
    }

    #[test]
    fn nested_bundles_flatten_into_stock_items_with_multiplied_and_merged_quantities() {
        // Kit 1 = 2 × item 10 + 3 × kit 2; kit 2 = 1 × item 10 + 4 × item 11.
        let graph = BundleGraph::from([(1, vec![c(10, 2), c(2, 3)]), (2, vec![c(10, 1), c(11, 4)])]);
        assert_eq!(flatten(1, &graph).unwrap(), vec![c(10, 5), c(11, 12)]);
        assert_eq!(flatten(10, &graph).unwrap(), vec![c(10, 1)], "a plain item is its own part");
        let looped = BundleGraph::from([(1, vec![c(2, 1)]), (2, vec![c(1, 1)])]);
        assert!(matches!(flatten(1, &looped), Err(BundleError::Cycle { .. })));
        let huge = BundleGraph::from([(1, vec![c(2, MAX_LINE_QUANTITY)]), (2, vec![c(3, 2)])]);
        assert_eq!(flatten(1, &huge), Err(BundleError::QuantityTooLarge));
        let deep: BundleGraph = (1..=MAX_DEPTH as i64 + 2).map(|i| (i, vec![c(i + 1, 1)])).collect();
        assert_eq!(flatten(1, &deep), Err(BundleError::TooDeep));
    }

    #[test]
    fn availability_is_the_scarcest_component() {
        assert_eq!(available(&[(2, 9), (1, 7)]), Some(4));
        assert_eq!(available(&[(3, 2)]), Some(0));
        assert_eq!(available(&[(1, -5), (1, 9)]), Some(0), "an oversold component allows nothing");
        assert_eq!(available(&[]), None);
    }

    mod orders {
        use super::super::*;
        use crate::catalog::InventoryPolicy;
        use crate::order::CancelError;
        use crate::order::{Carriage, Disposition, NewLine, OrderError, PaymentTerms, Posting};
        use crate::orders::{BinStock, WarehouseStock};
        use chrono::Utc;
        use proptest::prelude::*;
        use rust_decimal::Decimal;

        fn new_line(sku: &str, item: ItemId, quantity: i64, bundle: Option<BundlePart>) -> NewLine {
            NewLine {
                sku: sku.into(),
                item,
                quantity,
                unit_price: if bundle.is_some() { Decimal::ZERO } else { Decimal::new(3000, 2) },
                discount: Decimal::ZERO,
                tax: Decimal::ZERO,
                policy: InventoryPolicy::Backorder,
                tracked: item != 1,
                bundle,
            }
        }

        /// Two kits (item 1) of 1 × A (item 10) and 3 × B (item 11); A has 5 in bin 100, B has 4 in bin 101.
        fn kit_order() -> Order {
            let lines = vec![
                new_line("KIT", 1, 2, None),
                new_line("A", 10, 2, Some(BundlePart { line: 0, per_bundle: 1 })),
                new_line("B", 11, 6, Some(BundlePart { line: 0, per_bundle: 3 })),
            ];
            let wh = |bin, available| {
                vec![WarehouseStock { warehouse: 1, bins: vec![BinStock { bin, pick_sequence: None, available }] }]
            };
            let stock = HashMap::from([(10, wh(100, 5)), (11, wh(101, 4))]);
            Order::place(lines, &stock).unwrap().0
        }

        #[test]
        fn a_bundle_line_commits_its_components_and_ships_whole_kits() {
            let mut order = kit_order();
            assert_eq!((order.lines[1].committed(), order.lines[2].committed(), order.lines[2].backordered), (2, 4, 2));
            assert_eq!(order.total(), Decimal::new(6000, 2), "the bundle line carries the price");
            assert_eq!(order.complete_bundles(0), 1, "B has units for one kit only");
            let postings = order.ship(&[], Carriage::default(), PaymentTerms::Invoice, Utc::now()).unwrap();
            let shipped: Vec<(ItemId, i64)> = postings
                .iter()
                .map(|p| match p {
                    Posting::ToCustomer { item, quantity, .. } => (*item, *quantity),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(shipped, vec![(10, 1), (11, 3)]);
            assert_eq!((order.lines[0].shipped, order.lines[1].shipped, order.lines[2].shipped), (1, 1, 3));
            let err = order.ship(&[(2, 1)], Carriage::default(), PaymentTerms::Invoice, Utc::now()).unwrap_err();
            assert_eq!(err, OrderError::PartOfBundle { line: 2, bundle: 0 });
        }

        #[test]
        fn cancelling_and_returning_a_bundle_act_on_its_components() {
            let mut order = kit_order();
            assert_eq!(order.cancel(&[(1, 1)]), Err(CancelError::PartOfBundle { line: 1, bundle: 0 }));
            let Some(crate::stock::LedgerOp::Move(moves)) = order.cancel(&[(0, 1)]).unwrap() else {
                panic!("a release")
            };
            // B's 3 units: the 2 backordered go first, then 1 committed is released; A releases 1.
            let released: Vec<(ItemId, i64)> = moves.iter().map(|m| (m.item, m.quantity)).collect();
            assert_eq!(released, vec![(10, 1), (11, 1)]);
            assert_eq!((order.lines[0].cancelled, order.lines[1].cancelled, order.lines[2].cancelled), (1, 1, 3));
            assert_eq!(order.lines[2].backordered, 0);
            order.ship(&[(0, 1)], Carriage::default(), PaymentTerms::Invoice, Utc::now()).unwrap();
            assert_eq!(order.fulfillment(), crate::order::FulfillmentStatus::Fulfilled);
            assert_eq!(
                order.request_return(&[(2, 1, "no".into())], Utc::now()),
                Err(OrderError::PartOfBundle { line: 2, bundle: 0 })
            );
            let index = order.request_return(&[(0, 1, "too big".into())], Utc::now()).unwrap();
            let back = order.receive_return(index, &[(0, 1, Disposition::Restock, Some(100))], Utc::now()).unwrap();
            let items: Vec<(ItemId, i64)> = back
                .iter()
                .map(|p| match p {
                    Posting::FromCustomer { item, quantity, .. } => (*item, *quantity),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            assert_eq!(items, vec![(10, 1), (11, 3)]);
            assert!(order.cancel_all().is_err(), "nothing is left to cancel");
        }

        #[derive(Debug, Clone)]
        enum Step {
            Cancel(i64),
            Ship(i64),
            ShipAll,
            CancelPart(usize),
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (1i64..4).prop_map(Step::Cancel),
                (1i64..4).prop_map(Step::Ship),
                Just(Step::ShipAll),
                (1usize..3).prop_map(Step::CancelPart),
            ]
        }

        proptest! {
            /// Whatever is cancelled or shipped, each component line stays `per_bundle` times its bundle line, every
            /// component unit is accounted for, and a component line is never changed alone.
            #[test]
            fn component_lines_move_in_step_with_their_bundle_line(
                a_stock in 0i64..8, b_stock in 0i64..20, kits in 1i64..5, steps in prop::collection::vec(step(), 0..8),
            ) {
                let lines = vec![
                    new_line("KIT", 1, kits, None),
                    new_line("A", 10, kits, Some(BundlePart { line: 0, per_bundle: 1 })),
                    new_line("B", 11, 3 * kits, Some(BundlePart { line: 0, per_bundle: 3 })),
                ];
                let wh = |bin, available| vec![WarehouseStock { warehouse: 1, bins: vec![BinStock { bin, pick_sequence: None, available }] }];
                let stock = HashMap::from([(10, wh(100, a_stock)), (11, wh(101, b_stock))]);
                let mut order = Order::place(lines, &stock).unwrap().0;
                for s in steps {
                    let before = order.clone();
                    let ok = match s {
                        Step::Cancel(n) => order.cancel(&[(0, n)]).is_ok(),
                        Step::Ship(n) => order.ship(&[(0, n)], Carriage::default(), PaymentTerms::Invoice, Utc::now()).is_ok(),
                        Step::ShipAll => order.ship(&[], Carriage::default(), PaymentTerms::Invoice, Utc::now()).is_ok(),
                        Step::CancelPart(line) => {
                            prop_assert!(order.cancel(&[(line, 1)]).is_err());
                            false
                        }
                    };
                    if !ok {
                        prop_assert_eq!(&order, &before, "a refused step changes nothing");
                    }
                    let kit = &order.lines[0];
                    for (i, per) in order.bundle_parts(0) {
                        let l = &order.lines[i];
                        prop_assert_eq!((l.quantity, l.cancelled, l.shipped), (per * kit.quantity, per * kit.cancelled, per * kit.shipped));
                        prop_assert_eq!(l.committed() + l.open_demand() + l.cancelled + l.shipped, l.quantity);
                    }
                }
            }
        }

        #[test]
        fn bundle_lines_are_not_edited() {
            let mut order = kit_order();
            let stock = HashMap::new();
            assert_eq!(order.change_quantity(0, 3, &stock), Err(OrderError::BundleNotEditable { line: 0 }));
            assert_eq!(order.change_quantity(2, 3, &stock), Err(OrderError::BundleNotEditable { line: 2 }));
            assert!(order.cancel_all().unwrap().is_some());
            assert_eq!(order.status, crate::order::OrderStatus::Cancelled);
        }
    }

    proptest! {
        /// Never more than any component allows, and selling that many bundles leaves every component at or above
        /// zero; one more bundle would drive some component negative.
        #[test]
        fn availability_never_oversells_a_component(parts in prop::collection::vec((1i64..20, -5i64..500), 1..8)) {
            let n = available(&parts).unwrap();
            prop_assert!(n >= 0);
            for (per, avail) in &parts {
                prop_assert!(n * per <= (*avail).max(0), "{n} bundles need {} of {avail}", n * per);
                prop_assert!(avail - n * per >= 0 || *avail < 0);
            }
            prop_assert!(parts.iter().any(|(per, avail)| (n + 1) * per > *avail));
        }

        /// A shared component sold as part of a bundle and on its own is one pool: flattening a bundle that reaches
        /// the same item twice asks for the sum, so availability counts it once.
        #[test]
        fn flattening_merges_shared_items(a in 1i64..10, b in 1i64..10, inner in 1i64..10, stock in 0i64..1000) {
            let graph = BundleGraph::from([(1, vec![c(10, a), c(2, b)]), (2, vec![c(10, inner)])]);
            let parts = flatten(1, &graph).unwrap();
            prop_assert_eq!(parts.clone(), vec![c(10, a + b * inner)]);
            let n = available(&[(parts[0].quantity, stock)]).unwrap();
            prop_assert!(n * (a + b * inner) <= stock);
            prop_assert!((n + 1) * (a + b * inner) > stock);
        }
    }
}

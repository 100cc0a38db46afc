//! Bundle use cases: defining a variant's components, reading them and the bundle's availability, expanding order
//! and hold lines of a bundle into the lines of its components, and refusing stock bookings of a bundle's own SKU.

use std::collections::{HashMap, HashSet};

use domain::bundle::{self, BundleError, BundleGraph, BundlePart, Component};
use domain::order::NewLine;
use domain::stock::{ItemId, LocationId, MAX_LINE_QUANTITY};
use domain::FieldError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult, StoreError};
use crate::store::{bundle_graph, BundleEdge, LevelFilter};
use crate::App;

/// A bundle's definition: its components with units per bundle. An empty list makes the variant an ordinary one.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ComponentsRequest {
    pub components: Vec<ComponentRequest>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ComponentRequest {
    pub sku: String,
    /// Units of the component in each bundle, at least 1.
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentView {
    pub sku: String,
    pub quantity: i64,
}

/// A variant's components as defined (nested bundles as themselves, not flattened).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundleView {
    pub sku: String,
    /// Whether the variant is a bundle (has components).
    pub bundle: bool,
    pub components: Vec<ComponentView>,
}

/// One stock-holding item of a bundle, nested bundles flattened.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentAvailability {
    pub sku: String,
    /// Units per bundle, multiplied through nested bundles and summed where an item is reached twice.
    pub quantity: i64,
    pub tracked: bool,
    /// Available in sellable bins; `null` for an untracked item.
    pub available: Option<i64>,
    /// Whole bundles this component alone allows; `null` when it does not limit.
    pub bundles: Option<i64>,
}

/// What a SKU can sell now, pooled over every sellable bin. For a bundle: the minimum over its components of
/// `floor(available / units per bundle)`; for an ordinary tracked item: its own available.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AvailabilityView {
    pub sku: String,
    pub bundle: bool,
    /// `null` when nothing limits it (an untracked item, or a bundle of untracked items only).
    pub available: Option<i64>,
    /// The stock-holding items behind the number; empty for an ordinary item.
    pub components: Vec<ComponentAvailability>,
}

/// Bundles flattened into the items that hold their stock.
#[derive(Debug, Clone, Default)]
pub struct BundleParts {
    /// Per bundle item: the stock-holding items with units per bundle.
    pub parts: HashMap<ItemId, Vec<Component>>,
    /// The SKU of every component item.
    pub skus: HashMap<ItemId, String>,
}

/// A resolved variant as an order line needs it.
struct Part {
    sku: String,
    policy: domain::catalog::InventoryPolicy,
    tracked: bool,
}

fn bundle_error(e: BundleError) -> AppError {
    match e {
        BundleError::Cycle { .. } => AppError::Conflict {
            code: "bundle_cycle",
            detail: "the bundle would contain itself through nested bundles".into(),
            errors: vec![FieldError::new("components", "closes a loop of bundles")],
        },
        BundleError::TooDeep => {
            AppError::field("components", format!("bundles may be nested at most {} deep", bundle::MAX_DEPTH))
        }
        BundleError::QuantityTooLarge => AppError::field(
            "components",
            format!("units per bundle, multiplied through nested bundles, must stay at most {MAX_LINE_QUANTITY}"),
        ),
    }
}

/// [`App::bundle_parts`] of `items`, from the bundle rows reachable from them.
pub(crate) fn bundle_parts_of(items: &[ItemId], edges: Vec<BundleEdge>) -> AppResult<BundleParts> {
    let graph = bundle_graph(&edges);
    let mut parts = HashMap::new();
    for item in items {
        if graph.contains_key(item) && !parts.contains_key(item) {
            parts.insert(*item, bundle::flatten(*item, &graph).map_err(bundle_error)?);
        }
    }
    let skus = edges.into_iter().map(|e| (e.component, e.component_sku)).collect();
    Ok(BundleParts { parts, skus })
}

impl App {
    /// The flattened stock-holding parts of every bundle among `items` (items that are not bundles are absent),
    /// and the SKUs of every component met on the way. The channels' availability rules pool a bundle's stock with
    /// this and [`domain::bundle::available`].
    pub async fn bundle_parts(&self, items: &[ItemId]) -> AppResult<BundleParts> {
        bundle_parts_of(items, self.store.bundle_edges(items).await?)
    }

    /// Replaces a variant's components (an empty list: it is an ordinary variant again). Refused, with nothing
    /// changed: unknown SKUs, a quantity below 1, a component twice, too many, the bundle itself or a loop through
    /// nested bundles, and a variant whose SKU holds stock.
    pub async fn set_components(&self, key: &str, req: ComponentsRequest) -> AppResult<BundleView> {
        let variant = self.variant(key).await?;
        let bundle_item = self.item_of(&variant.sku).await?;
        let skus: Vec<String> = req.components.iter().map(|c| c.sku.trim().to_string()).collect();
        let found = self.store.resolve_skus(&skus).await?;
        let unknown: Vec<FieldError> = skus
            .iter()
            .enumerate()
            .filter(|(_, s)| !found.contains_key(*s))
            .map(|(i, s)| FieldError::new(format!("components[{i}].sku"), format!("unknown SKU '{s}'")))
            .collect();
        if !unknown.is_empty() {
            return Err(AppError::UnknownReference(unknown));
        }
        let components: Vec<Component> =
            req.components.iter().zip(&skus).map(|(c, s)| Component { item: found[s], quantity: c.quantity }).collect();
        bundle::check_definition(bundle_item, &components).map_err(AppError::Validation)?;
        let items: Vec<ItemId> = components.iter().map(|c| c.item).collect();
        let mut graph: BundleGraph = bundle_graph(&self.store.bundle_edges(&items).await?);
        if let Some(path) = bundle::find_cycle(bundle_item, &components, &graph) {
            let mut names: HashMap<ItemId, String> = found.iter().map(|(s, i)| (*i, s.clone())).collect();
            names.insert(bundle_item, variant.sku.clone());
            for e in self.store.bundle_edges(&items).await? {
                names.insert(e.component, e.component_sku);
            }
            let route: Vec<String> =
                path.iter().map(|i| names.get(i).cloned().unwrap_or_else(|| format!("item {i}"))).collect();
            return Err(AppError::Conflict {
                code: "bundle_cycle",
                detail: format!("the bundle would contain itself: {}", route.join(" > ")),
                errors: vec![FieldError::new("components", "closes a loop of bundles")],
            });
        }
        graph.insert(bundle_item, components.clone());
        bundle::flatten(bundle_item, &graph).map_err(bundle_error)?;
        let done = self.store.set_bundle_components(bundle_item, &components).await;
        self.catalog_changed();
        done.map_err(|e| match e {
            StoreError::Conflict { constraint } if constraint.contains("cycle") => {
                bundle_error(BundleError::Cycle { path: vec![] })
            }
            StoreError::Conflict { constraint } if constraint.contains("bundle_has_stock") => AppError::Conflict {
                code: "bundle_has_stock",
                detail: format!("{} holds stock: book it out before it becomes a bundle", variant.sku),
                errors: vec![FieldError::new("components", "the variant's own SKU holds stock")],
            },
            StoreError::Conflict { constraint } if constraint.contains("component_item_id") => {
                AppError::UnknownReference(vec![FieldError::new("components", "a component was deleted meanwhile")])
            }
            other => other.into(),
        })?;
        self.components(key).await
    }

    /// A variant's components as defined.
    pub async fn components(&self, key: &str) -> AppResult<BundleView> {
        let variant = self.variant(key).await?;
        Ok(BundleView { sku: variant.sku, bundle: !variant.components.is_empty(), components: variant.components })
    }

    /// The direct components of an item, in definition order; empty for an ordinary item.
    pub(crate) async fn component_views(&self, item: ItemId) -> AppResult<Vec<ComponentView>> {
        Ok(self
            .store
            .bundle_edges(&[item])
            .await?
            .into_iter()
            .filter(|e| e.bundle == item)
            .map(|e| ComponentView { sku: e.component_sku, quantity: e.quantity })
            .collect())
    }

    /// What a SKU can sell now over every sellable bin; for a bundle, what its components allow together. Holds
    /// that have expired stop counting at once, as in the levels.
    pub async fn availability(&self, sku: &str) -> AppResult<AvailabilityView> {
        let sku = sku.trim();
        let item = self.item_of(sku).await?;
        let BundleParts { mut parts, skus: mut names } = self.bundle_parts(&[item]).await?;
        let parts = parts.remove(&item);
        let is_bundle = parts.is_some();
        let parts = parts.unwrap_or_else(|| vec![Component { item, quantity: 1 }]);
        names.insert(item, sku.to_string());
        let available = self.sellable_available(&parts.iter().map(|p| p.item).collect::<Vec<_>>()).await?;
        let mut components = Vec::with_capacity(parts.len());
        let mut limits = Vec::new();
        for p in &parts {
            let part_sku = names.get(&p.item).cloned().unwrap_or_default();
            let tracked = self.variant(&part_sku).await.map(|v| v.tracked).unwrap_or(true);
            let avail = tracked.then(|| available.get(&p.item).copied().unwrap_or(0));
            if let Some(a) = avail {
                limits.push((p.quantity, a));
            }
            components.push(ComponentAvailability {
                sku: part_sku,
                quantity: p.quantity,
                tracked,
                available: avail,
                bundles: avail.map(|a| a.max(0) / p.quantity),
            });
        }
        Ok(AvailabilityView {
            sku: sku.to_string(),
            bundle: is_bundle,
            available: bundle::available(&limits),
            components: if is_bundle { components } else { vec![] },
        })
    }

    /// Available units per item over the sellable bins, expired holds not counted.
    async fn sellable_available(&self, items: &[ItemId]) -> AppResult<HashMap<ItemId, i64>> {
        let sellable: HashSet<LocationId> = self.store.sellable_bins().await?.into_iter().map(|b| b.bin).collect();
        let mut out = HashMap::new();
        for item in items {
            // Levels are paged by item: one item's page holds all its bins.
            let filter = LevelFilter { item_id: Some(*item), within: None };
            let mut rows = self.store.levels(&filter, None, 1).await?;
            self.uncount_expired_holds(&mut rows).await?;
            let total = rows.iter().filter(|r| sellable.contains(&r.location_id)).map(|r| r.balance.available).sum();
            out.insert(*item, total);
        }
        Ok(out)
    }

    async fn item_of(&self, sku: &str) -> AppResult<ItemId> {
        self.store
            .resolve_skus(&[sku.to_string()])
            .await?
            .get(sku)
            .copied()
            .ok_or_else(|| AppError::NotFound { entity: "sku", key: sku.to_string() })
    }

    /// Refuses to delete items that a bundle outside `items` is made of: the bundle would silently lose a part.
    pub(crate) async fn refuse_deleting_components(&self, items: &[ItemId]) -> AppResult<()> {
        let mut using: Vec<(ItemId, String)> = self
            .store
            .bundles_using(items)
            .await?
            .into_iter()
            .filter(|e| items.contains(&e.component) && !items.contains(&e.bundle))
            .map(|e| (e.bundle, e.component_sku))
            .collect();
        if using.is_empty() {
            return Ok(());
        }
        using.sort();
        using.dedup();
        let errors = using
            .iter()
            .map(|(bundle, sku)| FieldError::new("sku", format!("{sku} is a component of bundle item {bundle}")))
            .collect();
        Err(AppError::Conflict {
            code: "component_of_bundle",
            detail: "a bundle is made of it: take it out of the bundle's components first".into(),
            errors,
        })
    }

    /// Refuses stock bookings of a bundle's own SKU: `named` is `(field, item)` per line.
    pub(crate) async fn refuse_bundle_items(&self, named: &[(String, ItemId, String)]) -> AppResult<()> {
        let items: Vec<ItemId> = named.iter().map(|(_, i, _)| *i).collect();
        let graph = bundle_graph(&self.store.bundle_edges(&items).await?);
        let errors: Vec<FieldError> = named
            .iter()
            .filter(|(_, i, _)| graph.contains_key(i))
            .map(|(f, _, sku)| FieldError::new(f.clone(), format!("{sku} is a bundle: book its components instead")))
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        Err(AppError::Conflict {
            code: "bundle_holds_no_stock",
            detail: "a bundle's own SKU never holds stock; its components do".into(),
            errors,
        })
    }

    /// Expands the bundle lines among `lines`: each stays where it is, untracked and carrying the price, and the
    /// lines of its components (units per bundle times the line's quantity, no price of their own) are appended
    /// after every requested line, so that the requested lines keep their numbers. Errors name `lines[i]`.
    pub(crate) async fn expand_bundle_lines(&self, lines: Vec<NewLine>) -> AppResult<Vec<NewLine>> {
        let items: Vec<ItemId> = lines.iter().map(|l| l.item).collect();
        let BundleParts { parts, skus: names } = self.bundle_parts(&items).await?;
        if parts.is_empty() {
            return Ok(lines);
        }
        // The components' own policies, in one read.
        let mut part_items: Vec<ItemId> = parts.values().flatten().map(|c| c.item).collect();
        part_items.sort_unstable();
        part_items.dedup();
        let mut skus = Vec::with_capacity(part_items.len());
        for item in &part_items {
            skus.push(
                names.get(item).cloned().ok_or_else(|| StoreError::Internal(format!("no variant for item {item}")))?,
            );
        }
        let variants = self.store.variants_by_skus(&skus).await?;
        let mut resolved: HashMap<ItemId, Part> = HashMap::new();
        for (item, sku) in part_items.into_iter().zip(skus) {
            let v =
                &variants.get(&sku).ok_or_else(|| StoreError::Internal(format!("no variant for SKU {sku}")))?.variant;
            resolved.insert(item, Part { sku, policy: v.fields.inventory_policy, tracked: v.fields.tracked });
        }
        let mut out = lines.clone();
        let mut problems = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            let Some(components) = parts.get(&line.item) else { continue };
            out[index].tracked = false;
            for c in components {
                let quantity = line.quantity.checked_mul(c.quantity).filter(|q| *q <= MAX_LINE_QUANTITY);
                let Some(quantity) = quantity else {
                    problems.push(FieldError::new(
                        format!("lines[{index}].quantity"),
                        format!("{} bundles need more than {MAX_LINE_QUANTITY} units of a component", line.quantity),
                    ));
                    continue;
                };
                let part = &resolved[&c.item];
                out.push(NewLine {
                    sku: part.sku.clone(),
                    item: c.item,
                    quantity,
                    unit_price: Decimal::ZERO,
                    discount: Decimal::ZERO,
                    tax: Decimal::ZERO,
                    policy: part.policy,
                    tracked: part.tracked,
                    bundle: Some(BundlePart { line: index, per_bundle: c.quantity }),
                });
            }
        }
        if !problems.is_empty() {
            return Err(AppError::Validation(problems));
        }
        Ok(out)
    }
}

/// Names a component line's problem by its bundle line, so that an error points at a line the client sent.
pub(crate) fn at_bundle_lines(e: AppError, lines: &[NewLine]) -> AppError {
    let rename = |f: FieldError| -> FieldError {
        let index = f.field.strip_prefix("lines[").and_then(|r| r.split(']').next()).and_then(|i| i.parse().ok());
        match index.and_then(|i: usize| lines.get(i)).and_then(|l| l.bundle.map(|b| (l, b))) {
            Some((l, b)) => {
                let rest = f.field.split_once(']').map(|(_, r)| r).unwrap_or("");
                FieldError::new(
                    format!("lines[{}]{rest}", b.line),
                    format!("component {} ({} per bundle): {}", l.sku, b.per_bundle, f.message),
                )
            }
            None => f,
        }
    };
    match e {
        AppError::InsufficientStock { detail, errors } => {
            AppError::InsufficientStock { detail, errors: errors.into_iter().map(rename).collect() }
        }
        AppError::Validation(errors) => AppError::Validation(errors.into_iter().map(rename).collect()),
        AppError::Conflict { code, detail, errors } => {
            AppError::Conflict { code, detail, errors: errors.into_iter().map(rename).collect() }
        }
        other => other,
    }
}

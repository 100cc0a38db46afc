//! The store trait for bundle definitions: which items a bundle is made of, written as one checked replacement and
//! read as the part of the bundle graph that some items reach.

use async_trait::async_trait;
use domain::bundle::{BundleGraph, Component};
use domain::stock::ItemId;

use super::StoreResult;

/// One edge of the bundle graph: each unit of `bundle` is made of `quantity` units of `component`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleEdge {
    pub bundle: ItemId,
    pub component: ItemId,
    pub component_sku: String,
    pub quantity: i64,
}

/// The graph the domain rules take, from edges as read.
pub fn bundle_graph(edges: &[BundleEdge]) -> BundleGraph {
    let mut graph = BundleGraph::new();
    for e in edges {
        graph.entry(e.bundle).or_default().push(Component { item: e.component, quantity: e.quantity });
    }
    graph
}

#[async_trait]
pub trait BundleStore: Send + Sync {
    /// Replaces the components of `bundle`, in the given order; an empty list makes it an ordinary item again. One
    /// transaction, serialized with every other definition, that refuses with `Conflict { constraint }`:
    /// `bundle_components.cycle` when the bundle would reach itself through nested bundles,
    /// `bundle_components.bundle_has_stock` when the bundle's own item holds any stock,
    /// `bundle_components.component_item_id` for an unknown component item (and the CHECKs named in the migration).
    async fn set_bundle_components(&self, bundle: ItemId, components: &[Component]) -> StoreResult<()>;
    /// Every edge reachable from `roots`: their components, the components of those that are bundles, and so on.
    /// Per bundle in definition order. Items that are not bundles contribute nothing.
    async fn bundle_edges(&self, roots: &[ItemId]) -> StoreResult<Vec<BundleEdge>>;
    /// Every edge above `items`: the bundles made of them, the bundles made of those, and so on; each edge's
    /// `bundle` is one whose availability depends on the items' stock. Per bundle in definition order.
    async fn bundles_using(&self, items: &[ItemId]) -> StoreResult<Vec<BundleEdge>>;
}

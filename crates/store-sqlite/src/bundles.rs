//! Bundle definitions: [`app::store::BundleStore`] on SQLite. A definition is replaced whole in one write
//! transaction that also checks, against the rows as they now stand, that the bundle holds no stock and reaches no
//! loop; SQLite's single writer means no other definition can interleave.

use app::store::{BundleEdge, BundleStore, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use domain::bundle::Component;
use domain::stock::ItemId;

use crate::codec::{db, db_error, internal, Cols, STATE_COLUMNS};
use crate::SqliteStore;

/// Every item reachable from the items of the JSON array bound first, through bundle rows. `UNION` (not `UNION ALL`)
/// drops items already reached, so the recursion ends even on a graph that loops.
const REACH: &str = "WITH RECURSIVE reach(item) AS ( \
        SELECT value FROM json_each(?) \
        UNION \
        SELECT b.component_item_id FROM bundle_components b JOIN reach r ON b.bundle_item_id = r.item)";

/// Every bundle above the items of the JSON array bound first: the bundles made of them, and so on upwards.
const REACH_UP: &str = "WITH RECURSIVE reach(item) AS ( \
        SELECT value FROM json_each(?) \
        UNION \
        SELECT b.bundle_item_id FROM bundle_components b JOIN reach r ON b.component_item_id = r.item)";

#[async_trait]
impl BundleStore for SqliteStore {
    async fn set_bundle_components(&self, bundle: ItemId, components: &[Component]) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            if !components.is_empty() {
                let nonzero = STATE_COLUMNS.split(", ").map(|c| format!("{c} <> 0")).collect::<Vec<_>>().join(" OR ");
                let stocked: bool = sqlx::query_scalar(&format!(
                    "SELECT EXISTS (SELECT 1 FROM stock_levels WHERE item_id = ? AND ({nonzero}))"
                ))
                .bind(bundle)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
                if stocked {
                    return Err(StoreError::Conflict { constraint: "bundle_components.bundle_has_stock".into() });
                }
            }
            sqlx::query("DELETE FROM bundle_components WHERE bundle_item_id = ?")
                .bind(bundle)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            for (position, c) in components.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO bundle_components (bundle_item_id, component_item_id, position, quantity) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(bundle)
                .bind(c.item)
                .bind(position as i64)
                .bind(c.quantity)
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error(e, "bundle_components.component_item_id"))?;
            }
            let components_json =
                serde_json::to_string(&components.iter().map(|c| c.item).collect::<Vec<_>>()).map_err(internal)?;
            let looped: bool =
                sqlx::query_scalar(&format!("{REACH} SELECT EXISTS (SELECT 1 FROM reach WHERE item = ?)"))
                    .bind(components_json)
                    .bind(bundle)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db)?;
            if looped {
                return Err(StoreError::Conflict { constraint: "bundle_components.cycle".into() });
            }
            Ok(())
        }
        .await;
        w.finish(result).await
    }

    async fn bundle_edges(&self, roots: &[ItemId]) -> StoreResult<Vec<BundleEdge>> {
        self.edges(REACH, "b.bundle_item_id", roots).await
    }

    async fn bundles_using(&self, items: &[ItemId]) -> StoreResult<Vec<BundleEdge>> {
        self.edges(REACH_UP, "b.component_item_id", items).await
    }
}

impl SqliteStore {
    /// The edges whose `side` column is an item `reach` (bound to `items`) arrives at. A few items' edges (what a
    /// lookup or an order asks) are read on the caller's thread ([`crate::readers`]).
    async fn edges(&self, reach: &str, side: &str, items: &[ItemId]) -> StoreResult<Vec<BundleEdge>> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        if items.len() <= crate::POINT_READ_ITEMS {
            return self.read(|c| edges_on(c, reach, side, items)).await;
        }
        let items = serde_json::to_string(items).map_err(internal)?;
        let rows = sqlx::query(&edges_sql(reach, side)).bind(items).fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(edge).collect()
    }
}

/// The bundle rows a lookup of `item` needs: every row reachable from it through its components.
pub(crate) fn component_edges_on(c: &rusqlite::Connection, item: ItemId) -> StoreResult<Vec<BundleEdge>> {
    edges_on(c, REACH, "b.bundle_item_id", &[item])
}

fn edges_on(c: &rusqlite::Connection, reach: &str, side: &str, items: &[ItemId]) -> StoreResult<Vec<BundleEdge>> {
    crate::readers::all(c, &edges_sql(reach, side), [serde_json::to_string(items).map_err(internal)?], |r| edge(r))
}

fn edges_sql(reach: &str, side: &str) -> String {
    format!(
        "{reach} SELECT b.bundle_item_id, b.component_item_id, i.sku, b.quantity \
           FROM bundle_components b JOIN items i ON i.id = b.component_item_id \
          WHERE {side} IN (SELECT item FROM reach) \
          ORDER BY b.bundle_item_id, b.position"
    )
}

fn edge(row: &impl Cols) -> StoreResult<BundleEdge> {
    Ok(BundleEdge {
        bundle: row.col("bundle_item_id")?,
        component: row.col("component_item_id")?,
        component_sku: row.col("sku")?,
        quantity: row.col("quantity")?,
    })
}

//! Bundle definitions: [`app::store::BundleStore`] on PostgreSQL. A definition is replaced whole in one transaction
//! that first takes the table's SHARE ROW EXCLUSIVE lock (one definer at a time, on every node, so that two
//! definitions can never close a loop together) and the bundle item's advisory lock (the write path's lock, so that
//! no batch books stock for it while the store checks that it holds none).

use app::store::{BundleEdge, BundleStore, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use domain::bundle::Component;
use domain::stock::ItemId;

use crate::codec::{db, db_error, get, internal, STATE_COLUMNS};
use crate::{finish, PgStore};

/// Every item reachable from the items of the array bound as `$1`, through bundle rows. `UNION` (not `UNION ALL`)
/// drops items already reached, so the recursion ends even on a graph that loops.
const REACH: &str = "WITH RECURSIVE reach(item) AS ( \
        SELECT u.id FROM UNNEST($1::int8[]) AS u (id) \
        UNION \
        SELECT b.component_item_id FROM bundle_components b JOIN reach r ON b.bundle_item_id = r.item)";

/// Every bundle above the items of the array bound as `$1`: the bundles made of them, and so on upwards.
const REACH_UP: &str = "WITH RECURSIVE reach(item) AS ( \
        SELECT u.id FROM UNNEST($1::int8[]) AS u (id) \
        UNION \
        SELECT b.bundle_item_id FROM bundle_components b JOIN reach r ON b.component_item_id = r.item)";

#[async_trait]
impl BundleStore for PgStore {
    async fn set_bundle_components(&self, bundle: ItemId, components: &[Component]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            sqlx::query("LOCK TABLE bundle_components IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            // The write path's locks, in its order: all items shared (a batch too big for item locks holds it
            // exclusively), then the item.
            sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                .bind(crate::ledger::ALL_ITEMS_KEY)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(bundle).execute(&mut *conn).await.map_err(db)?;
            if !components.is_empty() {
                let nonzero = STATE_COLUMNS.split(", ").map(|c| format!("{c} <> 0")).collect::<Vec<_>>().join(" OR ");
                let stocked: bool = sqlx::query_scalar(&format!(
                    "SELECT EXISTS (SELECT 1 FROM stock_levels WHERE item_id = $1 AND ({nonzero}))"
                ))
                .bind(bundle)
                .fetch_one(&mut *conn)
                .await
                .map_err(db)?;
                if stocked {
                    return Err(StoreError::Conflict { constraint: "bundle_components.bundle_has_stock".into() });
                }
            }
            sqlx::query("DELETE FROM bundle_components WHERE bundle_item_id = $1")
                .bind(bundle)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
            let items: Vec<ItemId> = components.iter().map(|c| c.item).collect();
            let quantities: Vec<i64> = components.iter().map(|c| c.quantity).collect();
            sqlx::query(
                "INSERT INTO bundle_components (bundle_item_id, component_item_id, position, quantity) \
                 SELECT $1, u.item, (u.ord - 1)::int4, u.quantity \
                   FROM UNNEST($2::int8[], $3::int8[]) WITH ORDINALITY AS u (item, quantity, ord)",
            )
            .bind(bundle)
            .bind(&items)
            .bind(&quantities)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error(e, "bundle_components.component_item_id"))?;
            let looped: bool =
                sqlx::query_scalar(&format!("{REACH} SELECT EXISTS (SELECT 1 FROM reach WHERE item = $2)"))
                    .bind(&items)
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
        finish(tx, result).await
    }

    async fn bundle_edges(&self, roots: &[ItemId]) -> StoreResult<Vec<BundleEdge>> {
        self.edges(REACH, "b.bundle_item_id", roots).await
    }

    async fn bundles_using(&self, items: &[ItemId]) -> StoreResult<Vec<BundleEdge>> {
        self.edges(REACH_UP, "b.component_item_id", items).await
    }
}

impl PgStore {
    /// The edges whose `side` column is an item `reach` (bound to `items`) arrives at.
    async fn edges(&self, reach: &str, side: &str, items: &[ItemId]) -> StoreResult<Vec<BundleEdge>> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let rows = sqlx::query(&format!(
            "{reach} SELECT b.bundle_item_id, b.component_item_id, i.sku, b.quantity \
               FROM bundle_components b JOIN items i ON i.id = b.component_item_id \
              WHERE {side} IN (SELECT item FROM reach) \
              ORDER BY b.bundle_item_id, b.position"
        ))
        .bind(items)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        rows.iter()
            .map(|r| {
                Ok(BundleEdge {
                    bundle: get(r, "bundle_item_id")?,
                    component: get(r, "component_item_id")?,
                    component_sku: get(r, "sku")?,
                    quantity: get(r, "quantity")?,
                })
            })
            .collect()
    }
}

//! Channels, their availability rules, and the materialized availability with its feed sequence.
//!
//! Availability writers lock the one `feed_state` row (`SELECT … FOR UPDATE`) first, on every node, so that they
//! run one at a time and hand out feed sequences in commit order; the lease columns of that row fence a node that
//! lost its lease.

use std::collections::HashMap;

use app::channel_store::{
    scope_key, source_of, AvailabilityEvents, ChannelFields, ChannelId, ChannelRecord, ChannelStore,
    ComputedAvailability, FeedRow, ItemFacts, LookupInputs, OutboxRecord,
};
use app::store::{BundleEdge, OutboxEvent, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::availability::{AvailabilityStatus, RuleSet, RuleSource};
use domain::stock::{ItemId, LocationId};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;

use crate::codec::{db, db_error, from_json, from_json_list, from_micros, get, internal, micros, parse_enum, to_json};
use crate::{finish, PgStore};

const CHANNEL_SELECT: &str = "SELECT id, code, name, market_country, currency, prices::text AS prices, \
     price_lists::text AS price_lists, tax_rates::text AS tax_rates, created_at, updated_at FROM channels";

async fn channel_record(conn: &mut PgConnection, row: &PgRow) -> StoreResult<ChannelRecord> {
    let id: ChannelId = get(row, "id")?;
    let warehouses: Vec<(LocationId, String)> = sqlx::query_as(
        "SELECT l.id, l.path FROM channel_warehouses w JOIN locations l ON l.id = w.location_id \
         WHERE w.channel_id = $1 ORDER BY w.position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    Ok(ChannelRecord {
        id,
        fields: ChannelFields {
            code: get(row, "code")?,
            name: get(row, "name")?,
            market_country: get(row, "market_country")?,
            currency: get(row, "currency")?,
            prices: from_json("prices", &get::<String>(row, "prices")?)?,
            price_lists: from_json("price lists", &get::<String>(row, "price_lists")?)?,
            tax_rates: from_json("tax rates", &get::<String>(row, "tax_rates")?)?,
        },
        warehouses,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

async fn channel_by_id(conn: &mut PgConnection, id: ChannelId) -> StoreResult<ChannelRecord> {
    let row = sqlx::query(&format!("{CHANNEL_SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
    channel_record(conn, &row).await
}

async fn write_warehouses(conn: &mut PgConnection, id: ChannelId, warehouses: &[LocationId]) -> StoreResult<()> {
    sqlx::query("DELETE FROM channel_warehouses WHERE channel_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    sqlx::query(
        "INSERT INTO channel_warehouses (channel_id, position, location_id) \
         SELECT $1, u.ord - 1, u.location FROM UNNEST($2::bigint[]) WITH ORDINALITY AS u (location, ord)",
    )
    .bind(id)
    .bind(warehouses)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error(e, "channel_warehouses.location_id"))?;
    Ok(())
}

async fn insert_events(conn: &mut PgConnection, events: &[OutboxEvent], now: DateTime<Utc>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    let payloads: Vec<String> = events.iter().map(|e| e.payload.to_string()).collect();
    sqlx::query(
        "INSERT INTO outbox (topic, payload, created_at) \
         SELECT u.topic, u.payload::jsonb, $3 FROM UNNEST($1::text[], $2::text[]) AS u (topic, payload)",
    )
    .bind(&topics)
    .bind(&payloads)
    .bind(micros(now))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

fn feed_row(row: &PgRow) -> StoreResult<FeedRow> {
    Ok(FeedRow {
        seq: get(row, "seq")?,
        channel_id: get(row, "channel_id")?,
        item_id: get(row, "item_id")?,
        sku: get(row, "sku")?,
        quantity: get(row, "quantity")?,
        status: status(get(row, "status")?)?,
        listed: get(row, "listed")?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

fn status(s: String) -> StoreResult<AvailabilityStatus> {
    AvailabilityStatus::parse(&s).ok_or_else(|| StoreError::Internal(format!("bad availability status '{s}'")))
}

const FACTS_SELECT: &str = "SELECT i.id, i.sku, v.inventory_policy, p.category, p.tags::text AS tags FROM items i \
     JOIN variants v ON v.item_id = i.id JOIN products p ON p.id = v.product_id";

fn facts(row: &PgRow) -> StoreResult<ItemFacts> {
    Ok(ItemFacts {
        item_id: get(row, "id")?,
        sku: get(row, "sku")?,
        policy: parse_enum("inventory policy", get(row, "inventory_policy")?)?,
        category: get(row, "category")?,
        tags: from_json_list(&get::<String>(row, "tags")?)?,
    })
}

const FEED_SELECT: &str =
    "SELECT ca.channel_id, ca.item_id, ca.quantity, ca.status, ca.listed, ca.seq, ca.updated_at, \
     i.sku FROM channel_availability ca JOIN items i ON i.id = ca.item_id";

#[async_trait]
impl ChannelStore for PgStore {
    async fn create_channel(
        &self,
        fields: &ChannelFields,
        warehouses: &[LocationId],
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<ChannelRecord> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let id: ChannelId = sqlx::query_scalar(
                "INSERT INTO channels (code, name, market_country, currency, prices, price_lists, tax_rates, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $8) RETURNING id",
            )
            .bind(&fields.code)
            .bind(&fields.name)
            .bind(&fields.market_country)
            .bind(&fields.currency)
            .bind(to_json("prices", &fields.prices)?)
            .bind(to_json("price lists", &fields.price_lists)?)
            .bind(to_json("tax rates", &fields.tax_rates)?)
            .bind(micros(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            write_warehouses(conn, id, warehouses).await?;
            insert_events(conn, std::slice::from_ref(event), now).await?;
            channel_by_id(conn, id).await
        }
        .await;
        finish(tx, result).await
    }

    async fn update_channel(
        &self,
        id: ChannelId,
        fields: &ChannelFields,
        warehouses: &[LocationId],
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<ChannelRecord> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            let n = sqlx::query(
                "UPDATE channels SET code = $1, name = $2, market_country = $3, currency = $4, prices = $5::jsonb, \
                 price_lists = $6::jsonb, tax_rates = $7::jsonb, updated_at = $8 WHERE id = $9",
            )
            .bind(&fields.code)
            .bind(&fields.name)
            .bind(&fields.market_country)
            .bind(&fields.currency)
            .bind(to_json("prices", &fields.prices)?)
            .bind(to_json("price lists", &fields.price_lists)?)
            .bind(to_json("tax rates", &fields.tax_rates)?)
            .bind(micros(now))
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            write_warehouses(conn, id, warehouses).await?;
            insert_events(conn, std::slice::from_ref(event), now).await?;
            channel_by_id(conn, id).await
        }
        .await;
        finish(tx, result).await
    }

    async fn delete_channel(&self, id: ChannelId, event: &OutboxEvent) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let result = async {
            let n = sqlx::query("DELETE FROM channels WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_events(&mut tx, std::slice::from_ref(event), Utc::now()).await
        }
        .await;
        finish(tx, result).await
    }

    async fn get_channel(&self, code: &str) -> StoreResult<Option<ChannelRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        let row = sqlx::query(&format!("{CHANNEL_SELECT} WHERE code = $1"))
            .bind(code)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
        match row {
            Some(row) => Ok(Some(channel_record(&mut conn, &row).await?)),
            None => Ok(None),
        }
    }

    async fn list_channels(&self, after: Option<ChannelId>, limit: u32) -> StoreResult<Vec<ChannelRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        let rows = sqlx::query(&format!("{CHANNEL_SELECT} WHERE id > $1 ORDER BY id LIMIT $2"))
            .bind(after.unwrap_or(0))
            .bind(limit as i64)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(channel_record(&mut conn, row).await?);
        }
        Ok(out)
    }

    async fn put_rules(
        &self,
        channel: ChannelId,
        source: &RuleSource,
        rules: &RuleSet,
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (scope, key) = scope_key(source);
        let mut tx = self.begin().await?;
        let result = async {
            sqlx::query(
                "INSERT INTO availability_rules (channel_id, scope, key, rules, updated_at) \
                 VALUES ($1, $2, $3, $4::jsonb, $5) \
                 ON CONFLICT (channel_id, scope, key) DO UPDATE SET rules = excluded.rules, \
                 updated_at = excluded.updated_at",
            )
            .bind(channel)
            .bind(scope)
            .bind(key)
            .bind(to_json("rules", rules)?)
            .bind(micros(now))
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(e, "availability_rules.channel_id"))?;
            insert_events(&mut tx, std::slice::from_ref(event), now).await
        }
        .await;
        finish(tx, result).await
    }

    async fn delete_rules(&self, channel: ChannelId, source: &RuleSource, event: &OutboxEvent) -> StoreResult<bool> {
        let (scope, key) = scope_key(source);
        let mut tx = self.begin().await?;
        let result = async {
            let found = sqlx::query("DELETE FROM availability_rules WHERE channel_id = $1 AND scope = $2 AND key = $3")
                .bind(channel)
                .bind(scope)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected()
                > 0;
            if found {
                insert_events(&mut tx, std::slice::from_ref(event), Utc::now()).await?;
            }
            Ok(found)
        }
        .await;
        finish(tx, result).await
    }

    async fn channel_rules(&self, channel: ChannelId) -> StoreResult<Vec<(RuleSource, RuleSet)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT scope, key, rules::text FROM availability_rules WHERE channel_id = $1 ORDER BY scope, key",
        )
        .bind(channel)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.into_iter().map(|(scope, key, rules)| Ok((source_of(&scope, key)?, from_json("rules", &rules)?))).collect()
    }

    async fn item_facts_by_sku(&self, sku: &str) -> StoreResult<Option<ItemFacts>> {
        let row = sqlx::query(&format!("{FACTS_SELECT} WHERE i.sku = $1"))
            .bind(sku)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(facts).transpose()
    }

    async fn item_facts(
        &self,
        items: Option<&[ItemId]>,
        after: Option<ItemId>,
        limit: u32,
    ) -> StoreResult<Vec<ItemFacts>> {
        let rows = match items {
            Some(items) => sqlx::query(&format!("{FACTS_SELECT} WHERE i.id = ANY($1) ORDER BY i.id"))
                .bind(items)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
            None => sqlx::query(&format!("{FACTS_SELECT} WHERE i.id > $1 ORDER BY i.id LIMIT $2"))
                .bind(after.unwrap_or(0))
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        };
        rows.iter().map(facts).collect()
    }

    async fn lookup_inputs(&self, sku: &str) -> StoreResult<Option<LookupInputs>> {
        // One statement, so one round trip and one snapshot: the facts row, with the reachable bundle rows and
        // the positive bins of every item reached as arrays beside it (each array in one fixed order, so that the
        // arrays of one kind line up).
        let row = sqlx::query(&format!(
            "WITH RECURSIVE f AS ({FACTS_SELECT} WHERE i.sku = $1), \
               reach(item) AS (SELECT id FROM f \
                               UNION SELECT b.component_item_id FROM bundle_components b JOIN reach r \
                                                                     ON b.bundle_item_id = r.item), \
               e AS (SELECT b.bundle_item_id, b.component_item_id, i.sku, b.quantity, b.position \
                       FROM bundle_components b JOIN items i ON i.id = b.component_item_id \
                      WHERE b.bundle_item_id IN (SELECT item FROM reach)), \
               s AS (SELECT item_id, location_id, available FROM stock_levels \
                      WHERE available > 0 AND item_id IN (SELECT item FROM reach)) \
             SELECT f.*, \
                    ARRAY(SELECT bundle_item_id FROM e ORDER BY bundle_item_id, position) AS edge_bundles, \
                    ARRAY(SELECT component_item_id FROM e ORDER BY bundle_item_id, position) AS edge_components, \
                    ARRAY(SELECT sku FROM e ORDER BY bundle_item_id, position) AS edge_skus, \
                    ARRAY(SELECT quantity FROM e ORDER BY bundle_item_id, position) AS edge_quantities, \
                    ARRAY(SELECT item_id FROM s ORDER BY item_id, location_id) AS bin_items, \
                    ARRAY(SELECT location_id FROM s ORDER BY item_id, location_id) AS bin_locations, \
                    ARRAY(SELECT available FROM s ORDER BY item_id, location_id) AS bin_available \
               FROM f"
        ))
        .bind(sku)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let (bundles, components): (Vec<ItemId>, Vec<ItemId>) =
            (get(&row, "edge_bundles")?, get(&row, "edge_components")?);
        let (skus, quantities): (Vec<String>, Vec<i64>) = (get(&row, "edge_skus")?, get(&row, "edge_quantities")?);
        let (items, locations): (Vec<ItemId>, Vec<LocationId>) = (get(&row, "bin_items")?, get(&row, "bin_locations")?);
        let available: Vec<i64> = get(&row, "bin_available")?;
        if [components.len(), skus.len(), quantities.len()].iter().any(|n| *n != bundles.len())
            || [locations.len(), available.len()].iter().any(|n| *n != items.len())
        {
            return Err(StoreError::Internal("the lookup's arrays differ in length".into()));
        }
        let edges = bundles
            .into_iter()
            .zip(components)
            .zip(skus.into_iter().zip(quantities))
            .map(|((bundle, component), (component_sku, quantity))| BundleEdge {
                bundle,
                component,
                component_sku,
                quantity,
            })
            .collect();
        let bins = items.into_iter().zip(locations).zip(available).map(|((i, l), q)| (i, l, q)).collect();
        Ok(Some(LookupInputs { facts: facts(&row)?, edges, bins }))
    }

    async fn bin_available(&self, items: &[ItemId]) -> StoreResult<Vec<(ItemId, LocationId, i64)>> {
        sqlx::query_as(
            "SELECT item_id, location_id, available FROM stock_levels WHERE available > 0 AND item_id = ANY($1)",
        )
        .bind(items)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn units_ordered_since(&self, items: &[ItemId], since: DateTime<Utc>) -> StoreResult<HashMap<ItemId, i64>> {
        let rows: Vec<(ItemId, i64)> = sqlx::query_as(
            "SELECT item_id, SUM(quantity)::bigint FROM movements WHERE reason = 'order' AND to_state = 'committed' \
             AND recorded_at >= $1 AND item_id = ANY($2) GROUP BY item_id",
        )
        .bind(micros(since))
        .bind(items)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().collect())
    }

    async fn outbox_after(&self, after: i64, limit: u32) -> StoreResult<Vec<OutboxRecord>> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, topic, payload::text FROM outbox WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter()
            .map(|(id, topic, payload)| Ok(OutboxRecord { id, topic, payload: from_json("outbox payload", &payload)? }))
            .collect()
    }

    async fn feed_watermark(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT watermark FROM feed_state WHERE id = 1").fetch_one(&self.pool).await.map_err(db)
    }

    async fn acquire_feed_lease(&self, node: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<bool> {
        sqlx::query(
            "UPDATE feed_state SET leader = $1, lease_until = $2 WHERE id = 1 AND (leader = $1 OR lease_until < $3)",
        )
        .bind(node)
        .bind(micros(until))
        .bind(micros(now))
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(db)
    }

    async fn write_availability(
        &self,
        node: &str,
        rows: &[ComputedAvailability],
        watermark: Option<i64>,
        events: &AvailabilityEvents<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<FeedRow>> {
        let mut tx = self.begin().await?;
        let result = async {
            let conn = &mut *tx;
            // The row lock serializes every availability writer on every node until this transaction ends, and
            // fences a node whose lease was taken over.
            let mut seq: i64 =
                sqlx::query_scalar("SELECT last_seq FROM feed_state WHERE id = 1 AND leader = $1 FOR UPDATE")
                    .bind(node)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?
                    .ok_or_else(|| StoreError::Conflict { constraint: "feed_state.leader".into() })?;
            let ids: Vec<ItemId> = rows.iter().map(|r| r.item_id).collect();
            let mut skus: HashMap<ItemId, String> = HashMap::new();
            let mut stored: HashMap<(ChannelId, ItemId), FeedRow> = HashMap::new();
            if !ids.is_empty() {
                let found = sqlx::query(
                    "SELECT i.id AS item_id, i.sku, ca.channel_id, ca.quantity, ca.status, ca.listed, ca.seq, \
                     ca.updated_at FROM items i LEFT JOIN channel_availability ca ON ca.item_id = i.id \
                     WHERE i.id = ANY($1)",
                )
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await
                .map_err(db)?;
                for row in &found {
                    let item: ItemId = get(row, "item_id")?;
                    skus.insert(item, get(row, "sku")?);
                    if get::<Option<i64>>(row, "channel_id")?.is_some() {
                        let f = feed_row(row)?;
                        stored.insert((f.channel_id, f.item_id), f);
                    }
                }
            }
            let mut changed = vec![];
            let mut outbox = vec![];
            for r in rows {
                let Some(sku) = skus.get(&r.item_id) else { continue };
                let old = stored.get(&(r.channel_id, r.item_id));
                if old.is_some_and(|o| o.quantity == r.quantity && o.status == r.status && o.listed == r.listed) {
                    continue;
                }
                seq += 1;
                let new = FeedRow {
                    seq,
                    channel_id: r.channel_id,
                    item_id: r.item_id,
                    sku: sku.clone(),
                    quantity: r.quantity,
                    status: r.status,
                    listed: r.listed,
                    updated_at: now,
                };
                outbox.extend(events(old, &new));
                changed.push(new);
            }
            if !changed.is_empty() {
                let channels: Vec<i64> = changed.iter().map(|r| r.channel_id).collect();
                let items: Vec<i64> = changed.iter().map(|r| r.item_id).collect();
                let quantities: Vec<i64> = changed.iter().map(|r| r.quantity).collect();
                let statuses: Vec<&str> = changed.iter().map(|r| r.status.as_str()).collect();
                let listed: Vec<bool> = changed.iter().map(|r| r.listed).collect();
                let seqs: Vec<i64> = changed.iter().map(|r| r.seq).collect();
                sqlx::query(
                    "INSERT INTO channel_availability (channel_id, item_id, quantity, status, listed, seq, updated_at) \
                     SELECT u.c, u.i, u.q, u.s, u.l, u.n, $7 \
                       FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bool[], $6::bigint[]) \
                            AS u (c, i, q, s, l, n) \
                     ON CONFLICT (channel_id, item_id) DO UPDATE SET quantity = excluded.quantity, \
                       status = excluded.status, listed = excluded.listed, seq = excluded.seq, \
                       updated_at = excluded.updated_at",
                )
                .bind(&channels)
                .bind(&items)
                .bind(&quantities)
                .bind(&statuses)
                .bind(&listed)
                .bind(&seqs)
                .bind(micros(now))
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error(e, "channel_availability.channel_id"))?;
            }
            insert_events(conn, &outbox, now).await?;
            sqlx::query(
                "UPDATE feed_state SET last_seq = $1, watermark = GREATEST(watermark, COALESCE($2, watermark)) \
                 WHERE id = 1",
            )
            .bind(seq)
            .bind(watermark)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(changed)
        }
        .await;
        finish(tx, result).await
    }

    async fn availability_changes(&self, channel: ChannelId, after_seq: i64, limit: u32) -> StoreResult<Vec<FeedRow>> {
        let rows =
            sqlx::query(&format!("{FEED_SELECT} WHERE ca.channel_id = $1 AND ca.seq > $2 ORDER BY ca.seq LIMIT $3"))
                .bind(channel)
                .bind(after_seq)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.iter().map(feed_row).collect()
    }

    async fn availability_rows(
        &self,
        channel: ChannelId,
        after_item: Option<ItemId>,
        limit: u32,
    ) -> StoreResult<Vec<FeedRow>> {
        let rows = sqlx::query(&format!(
            "{FEED_SELECT} WHERE ca.channel_id = $1 AND ca.item_id > $2 ORDER BY ca.item_id LIMIT $3"
        ))
        .bind(channel)
        .bind(after_item.unwrap_or(0))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(feed_row).collect()
    }
}

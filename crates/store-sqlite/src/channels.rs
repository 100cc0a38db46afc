//! Channels, their availability rules, and the materialized availability with its feed sequence.

use std::collections::HashMap;

use app::channel_store::{
    scope_key, source_of, AvailabilityEvents, ChannelFields, ChannelId, ChannelRecord, ChannelStore,
    ComputedAvailability, FeedRow, ItemFacts, LookupInputs, OutboxRecord,
};
use app::store::{OutboxEvent, StoreResult};
use app::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::availability::{AvailabilityStatus, RuleSet, RuleSource};
use domain::stock::{ItemId, LocationId};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::codec::{db, db_error, from_json, from_json_list, from_micros, internal, micros, parse_enum, to_json, Cols};
use crate::{chunks, placeholders, SqliteStore};

const CHANNEL_SELECT: &str = "SELECT id, code, name, market_country, currency, prices, price_lists, tax_rates, \
     created_at, updated_at FROM channels";

async fn channel_record(conn: &mut SqliteConnection, row: &SqliteRow) -> StoreResult<ChannelRecord> {
    let id: ChannelId = row.try_get("id").map_err(internal)?;
    let warehouses: Vec<(LocationId, String)> = sqlx::query_as(
        "SELECT l.id, l.path FROM channel_warehouses w JOIN locations l ON l.id = w.location_id \
         WHERE w.channel_id = ? ORDER BY w.position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    Ok(ChannelRecord {
        id,
        fields: ChannelFields {
            code: row.try_get("code").map_err(internal)?,
            name: row.try_get("name").map_err(internal)?,
            market_country: row.try_get("market_country").map_err(internal)?,
            currency: row.try_get("currency").map_err(internal)?,
            prices: from_json("prices", &row.try_get::<String, _>("prices").map_err(internal)?)?,
            price_lists: from_json("price lists", &row.try_get::<String, _>("price_lists").map_err(internal)?)?,
            tax_rates: from_json("tax rates", &row.try_get::<String, _>("tax_rates").map_err(internal)?)?,
        },
        warehouses,
        created_at: from_micros(row.try_get("created_at").map_err(internal)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(internal)?)?,
    })
}

async fn channel_by_id(conn: &mut SqliteConnection, id: ChannelId) -> StoreResult<ChannelRecord> {
    let row = sqlx::query(&format!("{CHANNEL_SELECT} WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
    channel_record(conn, &row).await
}

async fn write_warehouses(conn: &mut SqliteConnection, id: ChannelId, warehouses: &[LocationId]) -> StoreResult<()> {
    sqlx::query("DELETE FROM channel_warehouses WHERE channel_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    for (position, location) in warehouses.iter().enumerate() {
        sqlx::query("INSERT INTO channel_warehouses (channel_id, position, location_id) VALUES (?, ?, ?)")
            .bind(id)
            .bind(position as i64)
            .bind(location)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error(e, "channel_warehouses.location_id"))?;
    }
    Ok(())
}

fn feed_row(row: &SqliteRow) -> StoreResult<FeedRow> {
    Ok(FeedRow {
        seq: row.try_get("seq").map_err(internal)?,
        channel_id: row.try_get("channel_id").map_err(internal)?,
        item_id: row.try_get("item_id").map_err(internal)?,
        sku: row.try_get("sku").map_err(internal)?,
        quantity: row.try_get("quantity").map_err(internal)?,
        status: status(row.try_get("status").map_err(internal)?)?,
        listed: row.try_get("listed").map_err(internal)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(internal)?)?,
    })
}

fn status(s: String) -> StoreResult<AvailabilityStatus> {
    AvailabilityStatus::parse(&s).ok_or_else(|| StoreError::Internal(format!("bad availability status '{s}'")))
}

const FACTS_SELECT: &str = "SELECT i.id, i.sku, v.inventory_policy, p.category, p.tags FROM items i \
     JOIN variants v ON v.item_id = i.id JOIN products p ON p.id = v.product_id";

fn facts(row: &impl Cols) -> StoreResult<ItemFacts> {
    Ok(ItemFacts {
        item_id: row.col("id")?,
        sku: row.col("sku")?,
        policy: parse_enum("inventory policy", row.col("inventory_policy")?)?,
        category: row.col("category")?,
        tags: from_json_list(&row.col::<String>("tags")?)?,
    })
}

/// The facts of the item with this SKU, read on the caller's thread ([`crate::readers`]).
fn facts_by_sku_on(c: &rusqlite::Connection, sku: &str) -> StoreResult<Option<ItemFacts>> {
    crate::readers::first(c, &format!("{FACTS_SELECT} WHERE i.sku = ?"), [sku], |r| facts(r))
}

/// Available units per bin of a few items, read on the caller's thread ([`crate::readers`]).
fn bin_available_on(c: &rusqlite::Connection, items: &[ItemId]) -> StoreResult<Vec<(ItemId, LocationId, i64)>> {
    let sql = "SELECT item_id, location_id, available FROM stock_levels \
                WHERE available > 0 AND item_id IN (SELECT value FROM json_each(?))";
    crate::readers::all(c, sql, [to_json("items", &items)?], |r| {
        Ok((r.col("item_id")?, r.col("location_id")?, r.col("available")?))
    })
}

async fn insert_events(conn: &mut SqliteConnection, events: &[OutboxEvent], now: DateTime<Utc>) -> StoreResult<()> {
    for part in chunks(events, 3) {
        let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO outbox (topic, payload, created_at) ");
        qb.push_values(part, |mut b, e| {
            b.push_bind(&e.topic).push_bind(e.payload.to_string()).push_bind(micros(now));
        });
        qb.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn create_channel(
        &self,
        fields: &ChannelFields,
        warehouses: &[LocationId],
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<ChannelRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let id: ChannelId = sqlx::query_scalar(
                "INSERT INTO channels (code, name, market_country, currency, prices, price_lists, tax_rates, \
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(&fields.code)
            .bind(&fields.name)
            .bind(&fields.market_country)
            .bind(&fields.currency)
            .bind(to_json("prices", &fields.prices)?)
            .bind(to_json("price lists", &fields.price_lists)?)
            .bind(to_json("tax rates", &fields.tax_rates)?)
            .bind(micros(now))
            .bind(micros(now))
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
            write_warehouses(conn, id, warehouses).await?;
            insert_events(conn, std::slice::from_ref(event), now).await?;
            channel_by_id(conn, id).await
        }
        .await;
        w.finish(result).await
    }

    async fn update_channel(
        &self,
        id: ChannelId,
        fields: &ChannelFields,
        warehouses: &[LocationId],
        event: &OutboxEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<ChannelRecord> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            let n = sqlx::query(
                "UPDATE channels SET code = ?, name = ?, market_country = ?, currency = ?, prices = ?, \
                 price_lists = ?, tax_rates = ?, updated_at = ? WHERE id = ?",
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
        w.finish(result).await
    }

    async fn delete_channel(&self, id: ChannelId, event: &OutboxEvent) -> StoreResult<()> {
        let mut w = self.write().await?;
        let result = async {
            let n = sqlx::query("DELETE FROM channels WHERE id = ?")
                .bind(id)
                .execute(&mut *w.tx)
                .await
                .map_err(db)?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_events(&mut w.tx, std::slice::from_ref(event), Utc::now()).await
        }
        .await;
        w.finish(result).await
    }

    async fn get_channel(&self, code: &str) -> StoreResult<Option<ChannelRecord>> {
        let mut conn = self.pool.acquire().await.map_err(internal)?;
        let row = sqlx::query(&format!("{CHANNEL_SELECT} WHERE code = ?"))
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
        let rows = sqlx::query(&format!("{CHANNEL_SELECT} WHERE id > ? ORDER BY id LIMIT ?"))
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
        let mut w = self.write().await?;
        let result = async {
            sqlx::query(
            "INSERT INTO availability_rules (channel_id, scope, key, rules, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (channel_id, scope, key) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at",
        )
        .bind(channel)
        .bind(scope)
        .bind(key)
        .bind(to_json("rules", rules)?)
        .bind(micros(now))
        .execute(&mut *w.tx)
        .await
        .map_err(|e| db_error(e, "availability_rules.channel_id"))?;
            insert_events(&mut w.tx, std::slice::from_ref(event), now).await
        }
        .await;
        w.finish(result).await
    }

    async fn delete_rules(&self, channel: ChannelId, source: &RuleSource, event: &OutboxEvent) -> StoreResult<bool> {
        let (scope, key) = scope_key(source);
        let mut w = self.write().await?;
        let result = async {
            let found = sqlx::query("DELETE FROM availability_rules WHERE channel_id = ? AND scope = ? AND key = ?")
                .bind(channel)
                .bind(scope)
                .bind(key)
                .execute(&mut *w.tx)
                .await
                .map_err(db)?
                .rows_affected()
                > 0;
            if found {
                insert_events(&mut w.tx, std::slice::from_ref(event), Utc::now()).await?;
            }
            Ok(found)
        }
        .await;
        w.finish(result).await
    }

    async fn channel_rules(&self, channel: ChannelId) -> StoreResult<Vec<(RuleSource, RuleSet)>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT scope, key, rules FROM availability_rules WHERE channel_id = ? ORDER BY scope, key")
                .bind(channel)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.into_iter().map(|(scope, key, rules)| Ok((source_of(&scope, key)?, from_json("rules", &rules)?))).collect()
    }

    async fn item_facts_by_sku(&self, sku: &str) -> StoreResult<Option<ItemFacts>> {
        self.read(|c| facts_by_sku_on(c, sku)).await
    }

    async fn item_facts(
        &self,
        items: Option<&[ItemId]>,
        after: Option<ItemId>,
        limit: u32,
    ) -> StoreResult<Vec<ItemFacts>> {
        let mut out = vec![];
        match items {
            Some(items) => {
                for chunk in chunks(items, 1) {
                    let sql = format!("{FACTS_SELECT} WHERE i.id IN ({}) ORDER BY i.id", placeholders(chunk.len()));
                    let mut q = sqlx::query(&sql);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for row in q.fetch_all(&self.pool).await.map_err(db)? {
                        out.push(facts(&row)?);
                    }
                }
            }
            None => {
                let sql = format!("{FACTS_SELECT} WHERE i.id > ? ORDER BY i.id LIMIT ?");
                for row in sqlx::query(&sql)
                    .bind(after.unwrap_or(0))
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?
                {
                    out.push(facts(&row)?);
                }
            }
        }
        Ok(out)
    }

    async fn lookup_inputs(&self, sku: &str) -> StoreResult<Option<LookupInputs>> {
        self.read(|c| {
            // One read transaction, so that the three statements see one snapshot.
            let tx = c.unchecked_transaction().map_err(internal)?;
            let Some(facts) = facts_by_sku_on(c, sku)? else { return Ok(None) };
            let edges = crate::bundles::component_edges_on(c, facts.item_id)?;
            let mut items: Vec<ItemId> = edges.iter().map(|e| e.component).collect();
            items.push(facts.item_id);
            items.sort_unstable();
            items.dedup();
            let bins = bin_available_on(c, &items)?;
            tx.commit().map_err(internal)?;
            Ok(Some(LookupInputs { facts, edges, bins }))
        })
        .await
    }

    async fn bin_available(&self, items: &[ItemId]) -> StoreResult<Vec<(ItemId, LocationId, i64)>> {
        if items.len() <= crate::POINT_READ_ITEMS {
            return self.read(|c| bin_available_on(c, items)).await;
        }
        let mut out = vec![];
        for chunk in chunks(items, 1) {
            let sql = format!(
                "SELECT item_id, location_id, available FROM stock_levels WHERE available > 0 AND item_id IN ({})",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query_as::<_, (ItemId, LocationId, i64)>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            out.extend(q.fetch_all(&self.pool).await.map_err(db)?);
        }
        Ok(out)
    }

    async fn units_ordered_since(&self, items: &[ItemId], since: DateTime<Utc>) -> StoreResult<HashMap<ItemId, i64>> {
        let mut out = HashMap::new();
        for chunk in chunks(items, 1) {
            let sql = format!(
                "SELECT item_id, SUM(quantity) FROM movements WHERE reason = 'order' AND to_state = 'committed' \
                 AND recorded_at >= ? AND item_id IN ({}) GROUP BY item_id",
                placeholders(chunk.len())
            );
            let mut q = sqlx::query_as::<_, (ItemId, i64)>(&sql).bind(micros(since));
            for id in chunk {
                q = q.bind(id);
            }
            out.extend(q.fetch_all(&self.pool).await.map_err(db)?);
        }
        Ok(out)
    }

    async fn outbox_after(&self, after: i64, limit: u32) -> StoreResult<Vec<OutboxRecord>> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?")
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
        let mut w = self.write().await?;
        let result = sqlx::query(
            "UPDATE feed_state SET leader = ?, lease_until = ? WHERE id = 1 AND (leader = ? OR lease_until < ?)",
        )
        .bind(node)
        .bind(micros(until))
        .bind(node)
        .bind(micros(now))
        .execute(&mut *w.tx)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(db);
        w.finish(result).await
    }

    async fn write_availability(
        &self,
        node: &str,
        rows: &[ComputedAvailability],
        watermark: Option<i64>,
        events: &AvailabilityEvents<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<FeedRow>> {
        let mut w = self.write().await?;
        let result = async {
            let conn = &mut *w.tx;
            // Fencing: a node whose lease ran out (and was taken over) must not write what it computed before.
            let mut seq: i64 = sqlx::query_scalar("SELECT last_seq FROM feed_state WHERE id = 1 AND leader = ?")
                .bind(node)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db)?
                .ok_or_else(|| StoreError::Conflict { constraint: "feed_state.leader".into() })?;
            let mut written = vec![];
            let mut outbox = vec![];
            for chunk in chunks(rows, 2) {
                // The stored rows of the chunk's pairs, and the SKUs of its items.
                let mut qb = QueryBuilder::<Sqlite>::new(
                    "SELECT i.id AS item_id, i.sku, ca.channel_id, ca.quantity, ca.status, ca.listed, ca.seq, \
                     ca.updated_at FROM items i LEFT JOIN channel_availability ca ON ca.item_id = i.id WHERE i.id IN (",
                );
                let mut sep = qb.separated(", ");
                for r in chunk {
                    sep.push_bind(r.item_id);
                }
                qb.push(")");
                let mut skus: HashMap<ItemId, String> = HashMap::new();
                let mut stored: HashMap<(ChannelId, ItemId), FeedRow> = HashMap::new();
                for row in qb.build().fetch_all(&mut *conn).await.map_err(db)? {
                    let item: ItemId = row.try_get("item_id").map_err(internal)?;
                    skus.insert(item, row.try_get("sku").map_err(internal)?);
                    if row.try_get::<Option<i64>, _>("channel_id").map_err(internal)?.is_some() {
                        let f = feed_row(&row)?;
                        stored.insert((f.channel_id, f.item_id), f);
                    }
                }
                let mut changed = vec![];
                for r in chunk {
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
                for part in chunks(&changed, 7) {
                    let mut qb = QueryBuilder::<Sqlite>::new(
                        "INSERT INTO channel_availability (channel_id, item_id, quantity, status, listed, seq, \
                         updated_at) ",
                    );
                    qb.push_values(part, |mut b, r| {
                        b.push_bind(r.channel_id)
                            .push_bind(r.item_id)
                            .push_bind(r.quantity)
                            .push_bind(r.status.as_str())
                            .push_bind(r.listed)
                            .push_bind(r.seq)
                            .push_bind(micros(now));
                    });
                    qb.push(
                        " ON CONFLICT (channel_id, item_id) DO UPDATE SET quantity = excluded.quantity, \
                         status = excluded.status, listed = excluded.listed, seq = excluded.seq, \
                         updated_at = excluded.updated_at",
                    );
                    qb.build().execute(&mut *conn).await.map_err(|e| db_error(e, "channel_availability.channel_id"))?;
                }
                written.extend(changed);
            }
            insert_events(conn, &outbox, now).await?;
            sqlx::query(
                "UPDATE feed_state SET last_seq = ?, watermark = MAX(watermark, COALESCE(?, watermark)) WHERE id = 1",
            )
            .bind(seq)
            .bind(watermark)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(written)
        }
        .await;
        w.finish(result).await
    }

    async fn availability_changes(&self, channel: ChannelId, after_seq: i64, limit: u32) -> StoreResult<Vec<FeedRow>> {
        let rows = sqlx::query(
            "SELECT ca.*, i.sku FROM channel_availability ca JOIN items i ON i.id = ca.item_id \
             WHERE ca.channel_id = ? AND ca.seq > ? ORDER BY ca.seq LIMIT ?",
        )
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
        let rows = sqlx::query(
            "SELECT ca.*, i.sku FROM channel_availability ca JOIN items i ON i.id = ca.item_id \
             WHERE ca.channel_id = ? AND ca.item_id > ? ORDER BY ca.item_id LIMIT ?",
        )
        .bind(channel)
        .bind(after_item.unwrap_or(0))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(feed_row).collect()
    }
}

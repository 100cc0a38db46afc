//! Ledger history in the past, for tests of what reads history (velocity, forecasts, replenishment): the write
//! path stamps every movement with the present, so a test that needs months of daily demand writes them straight
//! into its own database, on either backend, together with the balances they imply.
//!
//! Call it before the write path has booked anything for the same items, so that ids still follow time as they
//! would have in production. Balances are updated by exactly the net of the rows written, so `verify` stays clean.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, SqliteConnection};

/// One side of a past movement: a bin path with its state, or a built-in virtual location by kind
/// (`supplier`, `customer`, `adjustment`, `scrap`).
#[derive(Debug, Clone)]
pub enum Side {
    Bin(String, &'static str),
    Virtual(&'static str),
}

#[derive(Debug, Clone)]
pub struct PastMovement {
    pub sku: String,
    pub quantity: i64,
    pub from: Side,
    pub to: Side,
    /// As the ledger spells it: `received`, `shipment`, `shrinkage`, ...
    pub reason: &'static str,
    pub at: DateTime<Utc>,
}

enum Conn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

impl Conn {
    async fn exec(&mut self, sql: &str) {
        let r = match self {
            Conn::Sqlite(c) => sqlx::query(sql).execute(c).await.map(|_| ()),
            Conn::Pg(c) => sqlx::query(sql).execute(c).await.map(|_| ()),
        };
        r.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn id(&mut self, sql: &str) -> i64 {
        let r: Result<i64, _> = match self {
            Conn::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await,
            Conn::Pg(c) => sqlx::query_scalar(sql).fetch_one(c).await,
        };
        r.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Test input only, written into SQL as literals: refuse anything that would need quoting.
fn lit(s: &str) -> String {
    assert!(s.chars().all(|c| c.is_ascii_alphanumeric() || "-_/. ".contains(c)), "unsafe literal {s:?}");
    format!("'{s}'")
}

/// Writes `movements` (in time order) and the balances they change into the database at `url` (`sqlite://...` or
/// `postgres://...`), all in one transaction.
pub async fn write_past_movements(url: &str, movements: &[PastMovement]) {
    let mut conn = if url.starts_with("sqlite:") {
        Conn::Sqlite(SqliteConnection::connect(url).await.expect("sqlite opens"))
    } else {
        Conn::Pg(PgConnection::connect(url).await.expect("postgres connects"))
    };
    let mut sorted: Vec<&PastMovement> = movements.iter().collect();
    sorted.sort_by_key(|m| m.at);
    conn.exec("BEGIN").await;
    let mut items = BTreeMap::new();
    let mut locations = BTreeMap::new();
    let mut net: BTreeMap<(i64, i64, &'static str), i64> = BTreeMap::new();
    let mut values = Vec::new();
    for m in sorted {
        assert!(m.at < Utc::now(), "history lies in the past");
        if !items.contains_key(&m.sku) {
            let id = conn.id(&format!("SELECT id FROM items WHERE sku = {}", lit(&m.sku))).await;
            items.insert(m.sku.clone(), id);
        }
        let item = items[&m.sku];
        let mut side = async |s: &Side| -> (i64, Option<&'static str>) {
            let (key, sql, state) = match s {
                Side::Bin(path, state) => {
                    (path.clone(), format!("SELECT id FROM locations WHERE path = {}", lit(path)), Some(*state))
                }
                Side::Virtual(kind) => (
                    format!("virtual:{kind}"),
                    format!("SELECT id FROM locations WHERE virtual_kind = {}", lit(kind)),
                    None,
                ),
            };
            if !locations.contains_key(&key) {
                let id = conn.id(&sql).await;
                locations.insert(key.clone(), id);
            }
            (locations[&key], state)
        };
        let (from, from_state) = side(&m.from).await;
        let (to, to_state) = side(&m.to).await;
        if let Some(s) = from_state {
            *net.entry((item, from, s)).or_default() -= m.quantity;
        }
        if let Some(s) = to_state {
            *net.entry((item, to, s)).or_default() += m.quantity;
        }
        let state = |s: Option<&str>| s.map_or("NULL".to_string(), lit);
        values.push(format!(
            "({item}, {}, {from}, {}, {to}, {}, {}, 'test-history', {})",
            m.quantity,
            state(from_state),
            state(to_state),
            lit(m.reason),
            m.at.timestamp_micros()
        ));
    }
    for chunk in values.chunks(200) {
        conn.exec(&format!(
            "INSERT INTO movements (item_id, quantity, from_location_id, from_state, to_location_id, to_state, \
             reason, actor, recorded_at) VALUES {}",
            chunk.join(", ")
        ))
        .await;
    }
    for ((item, location, state), delta) in net {
        // The state names are the balance columns; CHECK constraints refuse a history that goes negative in total.
        let column = lit(state).trim_matches('\'').to_string();
        conn.exec(&format!(
            "INSERT INTO stock_levels (item_id, location_id, {column}) VALUES ({item}, {location}, {delta}) \
             ON CONFLICT (item_id, location_id) DO UPDATE SET {column} = stock_levels.{column} + {delta}"
        ))
        .await;
    }
    conn.exec("COMMIT").await;
}

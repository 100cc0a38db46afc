//! Real server processes: two nodes on one PostgreSQL sell exactly the stock, and a node killed with SIGKILL in
//! the middle of a burst loses no acknowledged order and leaves `verify` clean.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::common::*;

/// The admin key the nodes are started with (`STOCKROOM_ADMIN_KEY`).
const ADMIN_KEY: &str = "sr_nodes_test_admin_key_0123456789";

fn client() -> reqwest::Client {
    testkit::server::client_with(Some(ADMIN_KEY))
}

/// A `stockroom serve` process on an ephemeral port; killed when dropped.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn start(database: &str) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stockroom"))
            .args(["serve", "--database", database, "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("STOCKROOM_ADMIN_KEY", ADMIN_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("the server says where it listens").expect("readable log");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().expect("an address").to_string();
            }
        };
        // Keep draining the log so that the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Node { child, base }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no shutdown, no flush.
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    match client.post(format!("{base}{path}")).json(&body).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

async fn setup(client: &reqwest::Client, base: &str, stock: i64) {
    for (path, body) in [
        ("/v1/locations", json!({"code": "WH1", "kind": "warehouse"})),
        ("/v1/locations", json!({"code": "BIN-1", "parent": "WH1", "kind": "bin"})),
        ("/v1/products", tee("hot", &["HOT"])),
        (
            "/v1/inventory/adjustments",
            json!({"lines": [{"sku": "HOT", "location": "WH1/BIN-1", "delta": stock, "reason": "received"}]}),
        ),
    ] {
        let (status, reply) = post(client, base, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {reply}");
    }
}

fn verify(database: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_stockroom")).args(["--database", database, "verify"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "verify found drift: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_sell_exactly_the_stock() {
    if !on_postgres() {
        return; // Two nodes need a database both can reach: PostgreSQL.
    }
    let (guard, url, _store) = fresh_store().await;
    if !url.starts_with("postgres") {
        return; // No PostgreSQL configured (the notice was printed once).
    }
    let (a, b) = (Node::start(&url), Node::start(&url));
    let client = client();
    setup(&client, &a.base, 50).await;
    let bases = Arc::new([a.base.clone(), b.base.clone()]);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (client, bases) = (client.clone(), bases.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"source": "web", "external_number": format!("n{i}"), "currency": "EUR", "lines": [{"sku": "HOT", "quantity": 1}]});
            post(&client, &bases[i % 2], "/v1/orders", body).await.0
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 50, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 150, "{statuses:?}");
    verify(&url);
    drop((a, b));
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_no_acknowledged_order() {
    if on_postgres() {
        return; // Run once, on SQLite: the file must survive a SIGKILL with every acknowledged commit in it.
    }
    let (guard, url, store) = fresh_store().await;
    drop(store);
    let mut node = Node::start(&url);
    let client = client();
    setup(&client, &node.base, 100_000).await;
    let base = Arc::new(node.base.clone());
    let mut tasks = Vec::new();
    for c in 0..16 {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..1_000 {
                let number = format!("c{c}-{i}");
                let body = json!({"source": "web", "external_number": number, "currency": "EUR", "lines": [{"sku": "HOT", "quantity": 1}]});
                match post(&client, &base, "/v1/orders", body).await.0 {
                    201 => acknowledged.push(number),
                    0 => break, // The node is gone.
                    other => panic!("unexpected status {other}"),
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    node.kill();
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    assert!(!acknowledged.is_empty(), "the burst was under way when the node died");

    // Restarted on the same file, every acknowledged order is there and the ledger agrees with the balances.
    verify(&url);
    let node = Node::start(&url);
    let mut stored = std::collections::HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            None => format!("{}/v1/orders?source=web&limit=500", node.base),
            Some(c) => format!("{}/v1/orders?source=web&limit=500&after={c}", node.base),
        };
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        for o in page["items"].as_array().unwrap() {
            stored.insert(o["external_number"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    let lost: Vec<&String> = acknowledged.iter().filter(|n| !stored.contains(*n)).collect();
    assert!(lost.is_empty(), "{} acknowledged orders were lost: {:?}", lost.len(), &lost[..lost.len().min(5)]);
    drop(node);
    drop(guard);
}

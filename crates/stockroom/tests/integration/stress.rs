//! A concurrent stress of random adjustments and moves over HTTP, after which every balance must still equal the
//! ledger folded from scratch, and no state may be negative.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::common::*;

const TARGET_MOVEMENTS: usize = 10_000;
const CLIENTS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_no_drift_after_ten_thousand_concurrent_movements() {
    let skus: Vec<String> = (0..12).map(|i| format!("S-{i}")).collect();
    let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    let (s, db) = stocked_server_at(&refs).await;
    let s = Arc::new(s);
    let bins = ["WH1/HALL-1/SHELF-1/BIN-1", "WH1/HALL-1/SHELF-1/BIN-2", "WH2/BIN-1"];
    let states = ["available", "damaged", "quality_control", "safety_stock"];
    let booked = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (s, booked, refused, skus) = (s.clone(), booked.clone(), refused.clone(), skus.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(client as u64);
            // Bounded: each client stops once the target is reached, or after a hard cap of requests.
            for _ in 0..5_000 {
                if booked.load(Ordering::Relaxed) >= TARGET_MOVEMENTS {
                    break;
                }
                let sku = &skus[rng.gen_range(0..skus.len())];
                let bin = bins[rng.gen_range(0..bins.len())];
                let state = states[rng.gen_range(0..states.len())];
                let (path, body) = match rng.gen_range(0..10) {
                    0..=3 => (
                        "/v1/inventory/adjustments",
                        json!({"lines": [{"sku": sku, "location": bin, "state": state, "delta": rng.gen_range(1..20), "reason": "received"}]}),
                    ),
                    4..=5 => (
                        "/v1/inventory/adjustments",
                        json!({"lines": [{"sku": sku, "location": bin, "state": state, "delta": -rng.gen_range(1..10), "reason": "shrinkage"}]}),
                    ),
                    _ => (
                        "/v1/inventory/moves",
                        json!({"lines": [
                            {"sku": sku, "quantity": rng.gen_range(1..8), "from_location": bin, "from_state": state,
                             "to_location": bins[rng.gen_range(0..bins.len())], "to_state": states[rng.gen_range(0..states.len())]},
                            {"sku": skus[rng.gen_range(0..skus.len())], "quantity": 1, "from_location": bins[rng.gen_range(0..bins.len())],
                             "to_location": bins[rng.gen_range(0..bins.len())], "to_state": "damaged"}
                        ]}),
                    ),
                };
                let r = s.post(path, &body).await;
                match r.status {
                    201 => {
                        booked.fetch_add(r.body["movements"].as_array().unwrap().len(), Ordering::Relaxed);
                    }
                    409 if r.code() == "insufficient_stock" => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    // A move whose source and destination coincide is refused as invalid; anything else is a bug.
                    422 if r.text.contains("must differ") => {}
                    _ => panic!("unexpected reply {}: {}", r.status, r.text),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let booked = booked.load(Ordering::Relaxed);
    assert!(booked >= TARGET_MOVEMENTS, "only {booked} movements were booked");
    assert!(refused.load(Ordering::Relaxed) > 0, "the stress should also hit empty bins");

    // The command a merchant runs, on the live database.
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_stockroom"))
        .args(["--database", &db, "verify"])
        .output()
        .expect("stockroom verify runs");
    assert!(verify.status.success(), "verify found drift: {}", String::from_utf8_lossy(&verify.stdout));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("every balance matches the ledger"));
    let mut after = None;
    loop {
        let url = match &after {
            None => "/v1/inventory/levels?limit=500".to_string(),
            Some(c) => format!("/v1/inventory/levels?limit=500&after={c}"),
        };
        let r = s.get(&url).await;
        for item in r.body["items"].as_array().unwrap() {
            for w in item["warehouses"].as_array().unwrap() {
                for b in w["bins"].as_array().unwrap() {
                    for st in ["available", "damaged", "quality_control", "safety_stock", "on_hand"] {
                        assert!(b[st].as_i64().unwrap() >= 0, "negative {st}: {b}");
                    }
                }
            }
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => break,
        }
    }
    let movements =
        s.app.movements(None, None, None, app::page::PageRequest::parse(None, Some(1)).unwrap()).await.unwrap();
    assert!(!movements.items.is_empty());
}

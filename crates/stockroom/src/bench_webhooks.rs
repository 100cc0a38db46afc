//! `stockroom bench webhook-latency`: how long a committed stock change takes to reach a webhook receiver, under a
//! steady order load against a running server.
//!
//! The bench runs its own receiver on loopback and registers it for `order.created` of one source (channel
//! filter). Load clients place orders from another source as fast as the server takes them; meanwhile probes
//! place one order each from the probe source, one after another, and time from sending the order to receiving
//! its webhook: the commit, the response, the fan-out and the delivery, everything a shop would wait for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::bench::BenchArgs;
use crate::error::{fail, CliError, CliResult};

/// A probe that has not arrived after this long counts as lost and fails the run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> CliResult<(u16, Value)> {
    let resp = http.post(url).json(body).send().await.map_err(|e| CliError(format!("POST {url}: {e}")))?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

async fn setup(http: &reqwest::Client, url: &str, body: Value) -> CliResult<Value> {
    let (status, reply) = post(http, url, &body).await?;
    if !(200..300).contains(&status) {
        return fail(format!("setup {url} failed with {status}: {reply}"));
    }
    Ok(reply)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

pub async fn run(args: &BenchArgs) -> CliResult<()> {
    let base = args.url.trim_end_matches('/').to_string();
    let probes = args.requests.min(10_000);
    let http = reqwest::Client::builder()
        .default_headers(crate::bench::key_headers(args.key.as_deref())?)
        .pool_max_idle_per_host(args.clients + 1)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CliError(e.to_string()))?;
    let run = format!("HOOKS{}", std::process::id());
    let probe_source = format!("{}-probe", run.to_lowercase());

    // Stock: load SKUs and one probe SKU, plenty of each.
    let skus = args.skus.clamp(1, 200);
    let stock = args.stock.max((args.requests as i64) * 10);
    setup(&http, &format!("{base}/v1/locations"), json!({"code": run, "kind": "warehouse"})).await?;
    setup(&http, &format!("{base}/v1/locations"), json!({"code": "BIN", "parent": run, "kind": "bin"})).await?;
    let names: Vec<String> = (0..=skus).map(|i| format!("{run}-{i}")).collect();
    let variants: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, sku)| json!({"sku": sku, "options": [format!("v{i}")], "price": "1.00", "currency": "EUR"}))
        .collect();
    let handle = run.to_lowercase();
    setup(
        &http,
        &format!("{base}/v1/products"),
        json!({"handle": handle, "title": handle, "options": ["Variant"], "variants": variants}),
    )
    .await?;
    let lines: Vec<Value> = names
        .iter()
        .map(|sku| json!({"sku": sku, "location": format!("{run}/BIN"), "delta": stock, "reason": "received"}))
        .collect();
    setup(&http, &format!("{base}/v1/inventory/adjustments"), json!({"lines": lines})).await?;

    // The receiver: every message's external number and the moment it arrived.
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| CliError(format!("receiver: {e}")))?;
    let addr = listener.local_addr()?;
    let router = axum::Router::new().fallback(axum::routing::post(move |body: axum::body::Bytes| {
        let tx = tx.clone();
        async move {
            let at = Instant::now();
            let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if let Some(n) = msg["data"]["external_number"].as_str() {
                let _ = tx.send((n.to_string(), at));
            }
            axum::http::StatusCode::NO_CONTENT
        }
    }));
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let endpoint = setup(
        &http,
        &format!("{base}/v1/webhook-endpoints"),
        json!({"url": format!("http://{addr}/hook"), "event_types": ["order.created"], "channel": probe_source}),
    )
    .await?;
    let endpoint_id = endpoint["id"].as_i64().unwrap_or_default();
    eprintln!(
        "bench webhook-latency: {probes} probes under a load of {} clients placing orders over {skus} SKUs, against {base}",
        args.clients
    );

    // The steady load, until the probes are done.
    let stop = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for c in 0..args.clients {
        let (http, base, stop, placed, run) = (http.clone(), base.clone(), stop.clone(), placed.clone(), run.clone());
        let sku = names[1 + c % skus].clone();
        load.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"source": "bench-load", "external_number": format!("{run}-{c}-{i}"), "currency": "EUR",
                                  "lines": [{"sku": sku, "quantity": 1}]});
                if let Ok((201, _)) = post(&http, &format!("{base}/v1/orders"), &body).await {
                    placed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    // Let the load reach its steady state first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let load_started = (Instant::now(), placed.load(Ordering::Relaxed));

    let mut latencies = Vec::with_capacity(probes);
    let mut lost = 0;
    for p in 0..probes {
        let number = format!("{run}-probe-{p}");
        let body = json!({"source": probe_source, "external_number": number, "currency": "EUR",
                          "lines": [{"sku": names[0], "quantity": 1}]});
        let sent = Instant::now();
        let (status, reply) = post(&http, &format!("{base}/v1/orders"), &body).await?;
        if status != 201 {
            stop.store(true, Ordering::Relaxed);
            return fail(format!("probe order refused with {status}: {reply}"));
        }
        let deadline = sent + PROBE_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some((n, at))) if n == number => {
                    latencies.push(at - sent);
                    break;
                }
                Ok(Some(_)) => continue, // a retry of an earlier probe
                Ok(None) | Err(_) => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    let load_rate = (placed.load(Ordering::Relaxed) - load_started.1) as f64 / load_started.0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = t.await;
    }
    let _ = http.delete(format!("{base}/v1/webhook-endpoints/{endpoint_id}")).send().await;
    receiver.abort();

    latencies.sort_unstable();
    println!("load       {load_rate:.0} orders per second beside the probes ({} clients)", args.clients);
    println!(
        "webhook    {} probes: order sent → webhook received p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        latencies.len(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0)),
    );
    if lost > 0 {
        return fail(format!("{lost} probe webhook(s) did not arrive within {} s", PROBE_TIMEOUT.as_secs()));
    }
    Ok(())
}

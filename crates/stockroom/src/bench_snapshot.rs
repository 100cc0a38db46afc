//! `stockroom bench snapshot`: fills a running server with many SKUs and channels, waits until the availability
//! worker has materialized every (channel, SKU) row, then times each channel's full snapshot export (JSON lines
//! and CSV) while sampling the server's resident memory, so that an export that builds its answer in memory
//! instead of streaming it shows up as a peak.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::bench::BenchArgs;
use crate::error::{fail, CliError, CliResult};

/// Channels the scenario creates.
const CHANNELS: usize = 5;
/// SKUs per product (and per setup request).
const PER_PRODUCT: usize = 250;

/// The resident set of a process now and at its peak, in KiB, from `/proc` (Linux only).
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn post(http: &reqwest::Client, base: &str, path: &str, body: serde_json::Value) -> CliResult<()> {
    let resp = http
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| CliError(format!("POST {path}: {e}")))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return fail(format!("setup {path} failed with {status}: {text}"));
    }
    Ok(())
}

/// Streams one export and counts its lines and bytes without keeping them.
async fn export(http: &reqwest::Client, url: &str) -> CliResult<(usize, usize, Duration)> {
    let started = Instant::now();
    let mut resp = http.get(url).send().await.map_err(|e| CliError(format!("GET {url}: {e}")))?;
    if !resp.status().is_success() {
        return fail(format!("GET {url}: {}", resp.status()));
    }
    let (mut lines, mut bytes) = (0, 0);
    while let Some(chunk) = resp.chunk().await.map_err(|e| CliError(format!("GET {url}: {e}")))? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    Ok((lines, bytes, started.elapsed()))
}

pub async fn run(args: &BenchArgs) -> CliResult<()> {
    let http = reqwest::Client::builder()
        .default_headers(crate::bench::key_headers(args.key.as_deref())?)
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| CliError(e.to_string()))?;
    let base = args.url.trim_end_matches('/').to_string();
    let run = format!("SNAP{}", std::process::id());
    let skus = args.skus.max(1);
    let setup = Instant::now();
    post(&http, &base, "/v1/locations", json!({"code": run, "kind": "warehouse"})).await?;
    post(&http, &base, "/v1/locations", json!({"code": "BIN", "parent": run, "kind": "bin"})).await?;
    let bin = format!("{run}/BIN");
    let codes: Vec<String> = (0..CHANNELS).map(|c| format!("{}-{c}", run.to_lowercase())).collect();
    for code in &codes {
        let body = json!({"code": code, "name": code, "market_country": "DE", "currency": "EUR", "warehouses": [run]});
        post(&http, &base, "/v1/channels", body).await?;
    }
    let names: Vec<String> = (0..skus).map(|i| format!("{run}-{i}")).collect();
    for (p, chunk) in names.chunks(PER_PRODUCT).enumerate() {
        let variants: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, sku)| json!({"sku": sku, "options": [format!("v{i}")], "price": "1.00", "currency": "EUR"}))
            .collect();
        let handle = format!("{}-{p}", run.to_lowercase());
        let product = json!({"handle": handle, "title": handle, "options": ["Variant"], "variants": variants});
        post(&http, &base, "/v1/products", product).await?;
        let lines: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, sku)| json!({"sku": sku, "location": bin, "delta": 1 + (i % 50), "reason": "received"}))
            .collect();
        post(&http, &base, "/v1/inventory/adjustments", json!({"lines": lines})).await?;
    }
    eprintln!("snapshot: {skus} SKUs × {CHANNELS} channels set up in {:.1} s", setup.elapsed().as_secs_f64());

    // Wait until every channel's feed holds a row per SKU (the worker materializes them in the background).
    let materialize = Instant::now();
    for code in &codes {
        loop {
            let (lines, _, _) = export(&http, &format!("{base}/v1/channels/{code}/snapshot")).await?;
            if lines >= skus {
                break;
            }
            if materialize.elapsed() > Duration::from_secs(1800) {
                return fail(format!("channel {code} has {lines} of {skus} rows after 30 minutes"));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    println!("materialized {} rows in {:.1} s", skus * CHANNELS, materialize.elapsed().as_secs_f64());

    let before = args.server_pid.and_then(rss_kib);
    for format in ["jsonl", "csv"] {
        let mut total = Duration::ZERO;
        let mut peak_rss = 0;
        for code in &codes {
            let url = format!("{base}/v1/channels/{code}/snapshot?format={format}");
            // Sampled every few milliseconds while the export streams: the peak of the export itself.
            let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let sampler = args.server_pid.map(|pid| {
                let peak = peak.clone();
                tokio::spawn(async move {
                    loop {
                        if let Some((rss, _)) = rss_kib(pid) {
                            peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            });
            let (lines, bytes, took) = export(&http, &url).await?;
            if let Some(s) = sampler {
                s.abort();
            }
            peak_rss = peak_rss.max(peak.load(std::sync::atomic::Ordering::Relaxed));
            total += took;
            println!(
                "export     {code} {format}: {lines} lines, {:.1} MB in {:.2} s",
                bytes as f64 / 1e6,
                took.as_secs_f64()
            );
        }
        println!("export     {format}: {CHANNELS} channels in {:.2} s", total.as_secs_f64());
        if peak_rss > 0 {
            println!("rss        peak while streaming the {format} exports: {:.1} MB", peak_rss as f64 / 1024.0);
        }
    }
    if let (Some((rss_before, _)), Some((rss_after, hwm))) = (before, args.server_pid.and_then(rss_kib)) {
        println!(
            "rss        server before the exports {:.1} MB, after {:.1} MB, peak over its life {:.1} MB",
            rss_before as f64 / 1024.0,
            rss_after as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
    Ok(())
}

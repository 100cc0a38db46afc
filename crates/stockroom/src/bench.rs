//! `stockroom bench`: a load generator that drives a running server over HTTP with many concurrent clients, prints
//! throughput and latency percentiles, and checks afterwards that nothing was oversold (and, given the database,
//! that `verify` is clean).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{fail, CliError, CliResult};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Scenario {
    /// Every client reserves 1 unit of one SKU, by placing orders.
    FlashSale,
    /// The same with holds.
    FlashSaleHolds,
    /// Orders of 1 to 5 lines over many SKUs, popular ones far more often (Zipf-like).
    Catalog,
    /// Level and channel availability lookups of popular SKUs by `--readers` of the clients (half by default)
    /// while the others run `catalog`.
    Reads,
    /// Time from a committed order to its webhook at a local receiver, under order load (`--requests` probes).
    WebhookLatency,
    /// `--skus` SKUs (100,000 for the reference run) × 5 channels: full snapshot export time and the server's
    /// peak memory (give `--server-pid`).
    Snapshot,
    /// The web admin's pages, found by following links from the dashboard, each loaded `--requests` times one at
    /// a time (signs in with `--key`; run it against `serve --demo`).
    Pages,
}

pub struct BenchArgs {
    pub url: String,
    pub scenario: Scenario,
    pub clients: usize,
    pub requests: usize,
    pub stock: i64,
    pub skus: usize,
    /// A PostgreSQL URL to run the row-lock baseline (pgbench) against, with the same client count.
    pub baseline: Option<String>,
    /// The server's process id, to sample its memory (the snapshot scenario).
    pub server_pid: Option<u32>,
    /// The API key sent on every request.
    pub key: Option<String>,
    /// Where to log each order sent and each acknowledged (the crash test reads it).
    pub acked_file: Option<std::path::PathBuf>,
    /// How many clients read in the reads scenario; half of them when `None`.
    pub readers: Option<usize>,
}

/// The headers every bench request carries: the API key.
pub fn key_headers(key: Option<&str>) -> CliResult<reqwest::header::HeaderMap> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(k) = key {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {k}"))
            .map_err(|_| CliError("--key is not a valid header value".into()))?;
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    Ok(headers)
}

/// The orders log of the crash test: `sent<TAB>number<TAB>sku:qty,…` before a request, `ack<TAB>number<TAB>id`
/// after a 2xx. Each line is one write to a file opened for appending, so a line is whole or absent.
struct AckLog(std::sync::Mutex<std::fs::File>);

impl AckLog {
    fn line(&self, text: String) {
        use std::io::Write;
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let _ = f.write_all(format!("{text}\n").as_bytes());
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post(&self, path: &str, body: &Value) -> CliResult<(u16, Value)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| CliError(format!("POST {path}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn get(&self, path: &str) -> CliResult<Value> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| CliError(format!("GET {path}: {e}")))?;
        resp.json().await.map_err(|e| CliError(format!("GET {path}: {e}")))
    }

    async fn setup(&self, path: &str, body: Value) -> CliResult<Value> {
        let (status, reply) = self.post(path, &body).await?;
        if !(200..300).contains(&status) {
            return fail(format!("setup {path} failed with {status}: {reply}"));
        }
        Ok(reply)
    }
}

/// A small deterministic generator, so that runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Zipf-like: rank r is picked with weight about 1/r.
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        (((n as f64 + 1.0).powf(u) - 1.0) as usize).min(n - 1)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn run(args: BenchArgs) -> CliResult<()> {
    if args.clients == 0 || args.requests == 0 {
        return fail("--clients and --requests must be positive");
    }
    let readers = match (args.scenario, args.readers) {
        (Scenario::Reads, readers) => readers.unwrap_or(args.clients / 2),
        (_, None) => 0,
        (_, Some(_)) => return fail("--readers belongs to the reads scenario"),
    };
    if readers >= args.clients {
        return fail("--readers must leave at least one client placing orders");
    }
    if let Scenario::WebhookLatency = args.scenario {
        return crate::bench_webhooks::run(&args).await;
    }
    if let Scenario::Snapshot = args.scenario {
        return crate::bench_snapshot::run(&args).await;
    }
    if let Scenario::Pages = args.scenario {
        return crate::bench_pages::run(&args).await;
    }
    let acks = match &args.acked_file {
        Some(path) => Some(Arc::new(AckLog(std::sync::Mutex::new(
            std::fs::OpenOptions::new().create(true).append(true).open(path)?,
        )))),
        None => None,
    };
    let http = reqwest::Client::builder()
        .default_headers(key_headers(args.key.as_deref())?)
        .pool_max_idle_per_host(args.clients)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CliError(e.to_string()))?;
    let client = Arc::new(Client { http, base: args.url.trim_end_matches('/').to_string() });
    // Everything the bench creates is named after the run, so that runs never meet.
    let run = format!("BENCH{}", std::process::id());
    let skus = match args.scenario {
        Scenario::Catalog | Scenario::Reads => args.skus.max(1),
        _ => 1,
    };
    client.setup("/v1/locations", json!({"code": run, "kind": "warehouse"})).await?;
    client.setup("/v1/locations", json!({"code": "BIN", "parent": run, "kind": "bin", "pick_sequence": 1})).await?;
    let bin = format!("{run}/BIN");
    let names: Vec<String> = (0..skus).map(|i| format!("{run}-{i}")).collect();
    for chunk in names.chunks(200) {
        let variants: Vec<Value> =
            chunk.iter().map(|sku| json!({"sku": sku, "price": "1.00", "currency": "EUR"})).collect();
        let handle = format!("{}-{}", run.to_lowercase(), chunk[0].rsplit('-').next().unwrap_or("0"));
        // One option per variant keeps 200 variants of one product apart.
        let variants: Vec<Value> = variants
            .into_iter()
            .enumerate()
            .map(|(i, mut v)| {
                v["options"] = json!([format!("v{i}")]);
                v
            })
            .collect();
        client
            .setup(
                "/v1/products",
                json!({"handle": handle, "title": handle, "options": ["Variant"], "variants": variants}),
            )
            .await?;
        let lines: Vec<Value> = chunk
            .iter()
            .map(|sku| json!({"sku": sku, "location": bin, "delta": args.stock, "reason": "received"}))
            .collect();
        client.setup("/v1/inventory/adjustments", json!({"lines": lines})).await?;
    }
    if let Scenario::Reads = args.scenario {
        let channel = json!({"code": run, "name": run, "market_country": "DE", "currency": "EUR", "warehouses": [run]});
        client.setup("/v1/channels", channel).await?;
    }
    eprintln!(
        "bench {:?}: {} clients ({readers} of them reading), {} requests, {} SKU(s) with {} units each, against {}",
        args.scenario, args.clients, args.requests, skus, args.stock, client.base
    );

    let next = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(names);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, next, names, acks) = (client.clone(), next.clone(), names.clone(), acks.clone());
        let (scenario, total, run) = (args.scenario, args.requests, run.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
            let mut latencies = Vec::new();
            let mut reads = Vec::new();
            let mut channel_reads = Vec::new();
            let (mut ok, mut refused, mut failed) = (0usize, 0usize, 0usize);
            let reader = c < readers;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                if reader {
                    let sku = &names[rng.zipf(names.len())];
                    // Every other read is what a shop asks: the channel's live availability of the SKU.
                    let channel = i % 2 == 0;
                    let path = if channel {
                        format!("/v1/channels/{run}/availability/{sku}")
                    } else {
                        format!("/v1/inventory/levels?sku={sku}")
                    };
                    let t = Instant::now();
                    match client.get(&path).await {
                        Ok(_) => ok += 1,
                        Err(_) => failed += 1,
                    }
                    if channel {
                        channel_reads.push(t.elapsed());
                    } else {
                        reads.push(t.elapsed());
                    }
                    continue;
                }
                let (path, body) = match scenario {
                    Scenario::FlashSale => (
                        "/v1/orders",
                        json!({"source": "bench", "external_number": format!("{run}-{i}"), "currency": "EUR",
                               "lines": [{"sku": names[0], "quantity": 1}]}),
                    ),
                    Scenario::FlashSaleHolds => ("/v1/holds", json!({"lines": [{"sku": names[0], "quantity": 1}]})),
                    // Handled by `bench_webhooks` before the clients start.
                    Scenario::WebhookLatency => break,
                    Scenario::Catalog | Scenario::Reads | Scenario::Snapshot | Scenario::Pages => {
                        let n = 1 + (rng.next() % 5) as usize;
                        let mut picked: Vec<usize> = (0..n).map(|_| rng.zipf(names.len())).collect();
                        picked.sort_unstable();
                        picked.dedup();
                        let lines: Vec<Value> =
                            picked.iter().map(|k| json!({"sku": names[*k], "quantity": 1})).collect();
                        (
                            "/v1/orders",
                            json!({"source": "bench", "external_number": format!("{run}-{i}"), "currency": "EUR", "lines": lines}),
                        )
                    }
                };
                let number = body["external_number"].as_str().map(str::to_string);
                if let (Some(log), Some(n)) = (&acks, &number) {
                    let lines: Vec<String> = body["lines"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| format!("{}:{}", l["sku"].as_str().unwrap_or(""), l["quantity"]))
                        .collect();
                    log.line(format!("sent\t{n}\t{}", lines.join(",")));
                }
                let t = Instant::now();
                match client.post(path, &body).await {
                    Ok((200..=299, reply)) => {
                        ok += 1;
                        if let (Some(log), Some(n)) = (&acks, &number) {
                            log.line(format!("ack\t{n}\t{}", reply["id"]));
                        }
                    }
                    Ok((409, b)) if b["code"] == "insufficient_stock" => refused += 1,
                    Ok(_) => failed += 1,
                    Err(_) => {
                        // The server is away (restarting, in the crash test): do not burn the run's requests.
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                latencies.push(t.elapsed());
            }
            (latencies, reads, channel_reads, ok, refused, failed)
        }));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    let mut reads = Vec::new();
    let mut channel_reads = Vec::new();
    let (mut ok, mut refused, mut failed) = (0, 0, 0);
    for t in tasks {
        let (l, r, cr, o, x, f) = t.await.map_err(|e| CliError(e.to_string()))?;
        latencies.extend(l);
        reads.extend(r);
        channel_reads.extend(cr);
        ok += o;
        refused += x;
        failed += f;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "writes     {} in {:.2} s: {:.0} per second",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "accepted   {ok} ({:.0} per second)   refused for stock {refused}   failed {failed}",
        ok as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency    p50 {:.2} ms   p99 {:.2} ms   p99.9 {:.2} ms   max {:.2} ms",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 0.999)),
        ms(percentile(&latencies, 1.0))
    );
    if !reads.is_empty() {
        reads.sort_unstable();
        println!(
            "reads      {} level lookups beside the writes: p50 {:.2} ms   p99 {:.2} ms   p99.9 {:.2} ms",
            reads.len(),
            ms(percentile(&reads, 0.50)),
            ms(percentile(&reads, 0.99)),
            ms(percentile(&reads, 0.999))
        );
    }
    if !channel_reads.is_empty() {
        channel_reads.sort_unstable();
        println!(
            "channel    {} availability lookups beside the writes: p50 {:.2} ms   p99 {:.2} ms   p99.9 {:.2} ms",
            channel_reads.len(),
            ms(percentile(&channel_reads, 0.50)),
            ms(percentile(&channel_reads, 0.99)),
            ms(percentile(&channel_reads, 0.999))
        );
    }
    let writes_per_second = latencies.len() as f64 / elapsed.as_secs_f64();

    // Nothing oversold: per SKU, what was promised never exceeds what was received, and no state went negative.
    let mut promised_total = 0;
    for sku in names.iter() {
        let levels = client.get(&format!("/v1/inventory/levels?sku={sku}")).await?;
        let total = &levels["items"][0]["total"];
        let (available, committed, reserved) = (
            total["available"].as_i64().unwrap_or(0),
            total["committed"].as_i64().unwrap_or(0),
            total["reserved"].as_i64().unwrap_or(0),
        );
        if available < 0 || committed + reserved > args.stock || available + committed + reserved != args.stock {
            return fail(format!("OVERSOLD {sku}: available {available}, committed {committed}, reserved {reserved}"));
        }
        promised_total += committed + reserved;
    }
    println!("oversell   none: {promised_total} units promised out of {} received", args.stock * names.len() as i64);
    if let Some(url) = &args.baseline {
        let seconds = elapsed.as_secs().clamp(5, 60);
        let tps = baseline(url, args.clients, seconds)?;
        println!(
            "baseline   row-lock reservations (SELECT … FOR UPDATE, one transaction each), {} clients: {tps:.0} per second",
            args.clients
        );
        println!("ratio      {:.1}× the baseline", writes_per_second / tps);
    }
    if failed > 0 {
        return fail(format!("{failed} requests failed"));
    }
    Ok(())
}

/// Runs the usual row-lock reservation (one transaction per reservation, the stock row locked with
/// `SELECT … FOR UPDATE`) with pgbench against `url`, and returns its transactions per second.
fn baseline(url: &str, clients: usize, seconds: u64) -> CliResult<f64> {
    let psql = |sql: &str| {
        std::process::Command::new("psql")
            .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(|e| CliError(format!("psql: {e} (install PostgreSQL's client tools)")))
    };
    let setup = "DROP TABLE IF EXISTS bench_reservations, bench_stock; \
                 CREATE TABLE bench_stock (sku text PRIMARY KEY, available int NOT NULL CHECK (available >= 0)); \
                 CREATE TABLE bench_reservations (id bigserial PRIMARY KEY, sku text NOT NULL, quantity int NOT NULL); \
                 INSERT INTO bench_stock VALUES ('HOT', 2000000000);";
    let out = psql(setup)?;
    if !out.status.success() {
        return fail(format!("baseline setup failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let script = std::env::temp_dir().join(format!("stockroom-baseline-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "BEGIN;\nSELECT available FROM bench_stock WHERE sku = 'HOT' FOR UPDATE;\n\
         INSERT INTO bench_reservations (sku, quantity) VALUES ('HOT', 1);\n\
         UPDATE bench_stock SET available = available - 1 WHERE sku = 'HOT' AND available >= 1;\nCOMMIT;\n",
    )?;
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .map_err(|e| CliError(format!("pgbench: {e} (install PostgreSQL's client tools)")))?;
    let _ = std::fs::remove_file(&script);
    let _ = psql("DROP TABLE IF EXISTS bench_reservations, bench_stock;");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("tps = ").and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()))
        .ok_or_else(|| CliError(format!("pgbench gave no tps: {text}{}", String::from_utf8_lossy(&out.stderr))))
}

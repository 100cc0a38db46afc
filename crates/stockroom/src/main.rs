//! The `stockroom` binary: the command line (serve, verify, import, export) and the server's main.

mod bench;
mod bench_snapshot;
mod bench_webhooks;
mod csvio;
mod demo;
mod error;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use error::{fail, CliError, CliResult};

use app::{Actor, App, HoldConfig, LedgerConfig, Store, WarehousePriority};

#[derive(Parser)]
#[command(name = "stockroom", version, about = "Inventory and order management for e-commerce merchants")]
struct Cli {
    /// Database URL: a SQLite file (`./stockroom.db`, `sqlite://path.db`) or PostgreSQL (`postgres://user@host/db`).
    #[arg(long, global = true, env = "STOCKROOM_DATABASE", default_value = "sqlite://stockroom.db")]
    database: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (migrations run at start).
    Serve(ServeArgs),
    /// Recompute every balance from the ledger and compare; exits non-zero on any drift.
    Verify,
    /// Import a CSV file, all lines or none.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export CSV to standard output or a file.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Drive a running server with concurrent clients; print throughput, latency percentiles and an oversell check.
    Bench(BenchCli),
}

#[derive(Args)]
struct BenchCli {
    #[arg(value_enum)]
    scenario: bench::Scenario,
    /// The server to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Units received per SKU before the run.
    #[arg(long, default_value_t = 5_000)]
    stock: i64,
    /// SKUs in the catalog scenario.
    #[arg(long, default_value_t = 1_000)]
    skus: usize,
    /// Also run `verify` on this database afterwards.
    #[arg(long)]
    verify_database: Option<String>,
    /// Also run the row-lock baseline (pgbench) against this PostgreSQL database and print the ratio.
    #[arg(long)]
    baseline_postgres: Option<String>,
    /// The server's process id: the snapshot scenario samples its resident memory.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "STOCKROOM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Load a sample catalog, two warehouses and stock into an empty database.
    #[arg(long, env = "STOCKROOM_DEMO")]
    demo: bool,
    /// Most ledger commands applied in one transaction (group commit).
    #[arg(long, env = "STOCKROOM_MAX_BATCH", default_value_t = 256)]
    max_batch: usize,
    /// Longest a busy batch waits for more commands, in microseconds (0: never; an idle node never waits).
    #[arg(long, env = "STOCKROOM_MAX_BATCH_WAIT_US", default_value_t = 0)]
    max_batch_wait_us: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "STOCKROOM_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Warehouse codes orders and holds are allocated from, in priority order (comma-separated); all warehouses,
    /// oldest first, when absent.
    #[arg(long, env = "STOCKROOM_WAREHOUSES", value_delimiter = ',')]
    warehouses: Vec<String>,
    /// Longest time a hold may live, in seconds (holds default to 15 minutes).
    #[arg(long, env = "STOCKROOM_MAX_HOLD_SECONDS", default_value_t = 7200)]
    max_hold_seconds: i64,
    /// Log format: text or json.
    #[arg(long, env = "STOCKROOM_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    /// SQLite only: `full` syncs every commit to disk before acknowledging it (survives power loss); `normal`
    /// (WAL) survives a crash of the process but may lose the last commits on power loss, for much faster commits.
    #[arg(long, env = "STOCKROOM_SQLITE_SYNC", default_value = "full")]
    sqlite_sync: SqliteSync,
    /// A webhook endpoint failing without one success for this many hours is disabled.
    #[arg(long, env = "STOCKROOM_WEBHOOK_DISABLE_AFTER_HOURS", default_value_t = 120)]
    webhook_disable_after_hours: u64,
    /// How often the webhook worker looks for new events when idle, in milliseconds.
    #[arg(long, env = "STOCKROOM_WEBHOOK_POLL_MS", default_value_t = 100)]
    webhook_poll_ms: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SqliteSync {
    Full,
    Normal,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Products and variants (one row per variant), created or updated by handle and SKU.
    Products { file: PathBuf },
    /// Stock per SKU and bin in Shopify's inventory export layout plus a Bin column; sets the levels absolutely.
    Stock {
        file: PathBuf,
        /// Create warehouses, shelves and bins named in the file that do not exist yet.
        #[arg(long)]
        create_locations: bool,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    Products {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    Stock {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.0);
            ExitCode::FAILURE
        }
    }
}

/// Opens the store the database URL names.
async fn open_store(url: &str) -> CliResult<Arc<dyn Store>> {
    open_store_with(url, store_sqlite::Durability::Full).await
}

/// [`open_store`] with the durability a SQLite database should use.
async fn open_store_with(url: &str, durability: store_sqlite::Durability) -> CliResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = store_postgres::PgStore::connect(url)
            .await
            .map_err(|e| CliError(format!("cannot open database {}: {e}", redact(url))))?;
        return Ok(Arc::new(store));
    }
    let store = store_sqlite::SqliteStore::connect_with(url, durability)
        .await
        .map_err(|e| CliError(format!("cannot open database {url}: {e}")))?;
    Ok(Arc::new(store))
}

/// A database URL fit for logs: without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

async fn start_app(url: &str, ledger: LedgerConfig) -> CliResult<App> {
    let store = open_store(url).await?;
    Ok(App::start(store, ledger).await?)
}

async fn run(cli: Cli) -> CliResult<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&cli.database, args).await,
        Command::Verify => {
            let app = start_app(&cli.database, LedgerConfig::default()).await?;
            let drifts = app.verify().await?;
            if drifts.is_empty() {
                println!("ok: every balance matches the ledger");
                return Ok(ExitCode::SUCCESS);
            }
            for d in &drifts {
                println!("drift: {} in {}: stored {:?}, ledger {:?}", d.sku, d.location, d.stored, d.ledger);
            }
            println!("{} balance(s) differ from the ledger", drifts.len());
            Ok(ExitCode::FAILURE)
        }
        Command::Import(ImportCommand::Products { file }) => {
            let app = start_app(&cli.database, LedgerConfig::default()).await?;
            let summary = csvio::import_products(&app, &file).await?;
            println!(
                "imported {}: {} products created, {} updated; {} variants created, {} updated",
                file.display(),
                summary.products_created,
                summary.products_updated,
                summary.variants_created,
                summary.variants_updated
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(ImportCommand::Stock { file, create_locations }) => {
            let app = start_app(&cli.database, LedgerConfig::default()).await?;
            let summary = csvio::import_stock(&app, &file, create_locations, Actor::new("cli:import")).await?;
            println!(
                "imported {}: {} lines, {} movements booked, {} locations created",
                file.display(),
                summary.lines,
                summary.movements,
                summary.locations_created
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(b) => {
            bench::run(bench::BenchArgs {
                url: b.url,
                scenario: b.scenario,
                clients: b.clients,
                requests: b.requests,
                stock: b.stock,
                skus: b.skus,
                baseline: b.baseline_postgres,
                server_pid: b.server_pid,
            })
            .await?;
            if let Some(db) = b.verify_database {
                let app = start_app(&db, LedgerConfig::default()).await?;
                let drifts = app.verify().await?;
                if !drifts.is_empty() {
                    return fail(format!("verify found {} drift(s) after the run", drifts.len()));
                }
                println!("verify     clean");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(what) => {
            let app = start_app(&cli.database, LedgerConfig::default()).await?;
            let (output, bytes) = match what {
                ExportCommand::Products { output } => (output, csvio::export_products(&app).await?),
                ExportCommand::Stock { output } => (output, csvio::export_stock(&app).await?),
            };
            match output {
                Some(path) => std::fs::write(path, bytes)?,
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(database: &str, args: ServeArgs) -> CliResult<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
    }
    if args.max_hold_seconds < 60 {
        return fail("--max-hold-seconds must be at least 60");
    }
    let warehouses = if args.warehouses.is_empty() {
        WarehousePriority::All
    } else {
        WarehousePriority::Codes(args.warehouses.iter().map(|w| w.trim().to_string()).collect())
    };
    if args.max_batch == 0 || args.max_batch > 100_000 || args.max_batch_wait_us > 1_000_000 {
        return fail("--max-batch must be 1 to 100000, --max-batch-wait-us at most 1000000");
    }
    let ledger = LedgerConfig {
        max_batch: args.max_batch,
        warehouses,
        max_wait: std::time::Duration::from_micros(args.max_batch_wait_us),
        ..Default::default()
    };
    let holds = HoldConfig {
        max_ttl: chrono::TimeDelta::seconds(args.max_hold_seconds),
        default_ttl: domain::orders::DEFAULT_HOLD_TTL.min(chrono::TimeDelta::seconds(args.max_hold_seconds)),
    };
    let durability = match args.sqlite_sync {
        SqliteSync::Full => store_sqlite::Durability::Full,
        SqliteSync::Normal => store_sqlite::Durability::Normal,
    };
    let store = open_store_with(database, durability).await?;
    if let WarehousePriority::Codes(codes) = &ledger.warehouses {
        // A typo here would silently stop sales from a warehouse: refuse to start instead.
        let found = store.resolve_paths(codes).await.map_err(|e| CliError(e.to_string()))?;
        for code in codes {
            match found.get(code) {
                Some(l) if l.kind == domain::location::LocationKind::Warehouse => {}
                Some(_) => return fail(format!("--warehouses: '{code}' is not a warehouse")),
                None => return fail(format!("--warehouses: no warehouse '{code}'")),
            }
        }
    }
    if args.webhook_disable_after_hours == 0 || !(10..=60_000).contains(&args.webhook_poll_ms) {
        return fail("--webhook-disable-after-hours must be at least 1, --webhook-poll-ms 10 to 60000");
    }
    let webhooks = app::webhooks::WebhookConfig {
        disable_after: std::time::Duration::from_secs(args.webhook_disable_after_hours.saturating_mul(3600)),
        poll_interval: std::time::Duration::from_millis(args.webhook_poll_ms),
        ..Default::default()
    };
    let app = App::start_with(store, ledger, holds).await?;
    // Runs until the process ends; deliveries in flight then are sent again by the next start (or another node).
    let _webhooks = app.start_webhooks(webhooks);
    app.start_availability_worker(app::channels::FeedConfig::default());
    app.start_replenishment_worker(app::replenishment::EVALUATION_INTERVAL);
    if args.demo {
        match demo::load(&app).await? {
            Some(report) => tracing::info!("demo data loaded: {report}"),
            None => tracing::info!("demo data skipped: the database already has products"),
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    let database = redact(database);
    tracing::info!(database, "Stockroom listening on http://{addr} (API reference at http://{addr}/docs)");
    let router = api::router(app, api::ApiConfig { max_body_bytes: args.max_body_bytes });
    api::serve(listener, router, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

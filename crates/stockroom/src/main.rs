//! The `stockroom` binary: the command line (serve, verify, import, export, keys, backup) and the server's main.

mod bench;
mod bench_pages;
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
    /// API keys: make one (its secret is printed once), list them, revoke one.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write an online, consistent copy of a SQLite database to FILE (PostgreSQL: use pg_dump).
    Backup { file: PathBuf },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key and print its secret, once.
    Create {
        /// Who or what uses the key (shown on every change it makes).
        #[arg(long)]
        name: String,
        /// admin, staff, warehouse or channel.
        #[arg(long)]
        role: String,
        /// The channel's code, for a channel key.
        #[arg(long)]
        channel: Option<String>,
        /// When the key stops working (RFC 3339).
        #[arg(long)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// List every key (never a secret).
    List,
    /// Revoke a key by id: it stops working at once.
    Revoke { id: i64 },
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
    /// The API key to send (an admin key: the bench sets up locations and products).
    #[arg(long, env = "STOCKROOM_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Append each order the server acknowledged, and each order sent, to this file (`ack`/`sent`, the order
    /// number and its lines), for the crash test.
    #[arg(long)]
    acked_file: Option<PathBuf>,
    /// In the reads scenario, how many of the clients look up levels and availability (the others place
    /// `catalog` orders); half of them when not given.
    #[arg(long)]
    readers: Option<usize>,
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
    /// Requests per second one API key may make on average (0: no limit); beyond it, 429 with Retry-After.
    #[arg(long, env = "STOCKROOM_RATE_LIMIT_PER_SECOND", default_value_t = 5_000)]
    rate_limit_per_second: u32,
    /// Requests one API key may make at once after being idle.
    #[arg(long, env = "STOCKROOM_RATE_LIMIT_BURST", default_value_t = 10_000)]
    rate_limit_burst: u32,
    /// The admin key's secret, made on start if no key has it (for scripted setups); otherwise the first start on
    /// an empty database makes one and prints it once.
    #[arg(long, env = "STOCKROOM_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
    /// Longest wait at shutdown for requests in flight (and their batches) to finish, in seconds.
    #[arg(long, env = "STOCKROOM_SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 30)]
    shutdown_timeout_seconds: u64,
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

/// mimalloc instead of the system allocator: under load every request allocates and frees on both runtime threads
/// and the ledger's, and glibc's malloc spent about a seventh of the server's time on that (locks, consolidation).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
            // Reads one snapshot and writes nothing: safe beside running servers.
            let store = open_store(&cli.database).await?;
            let drifts = app::inventory::verify_store(store.as_ref()).await?;
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
            let what = format!("{} products created, {} updated", summary.products_created, summary.products_updated);
            audit_import(&app, "products", "import products", what).await;
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
            let what = format!("{} lines, {} movements", summary.lines, summary.movements);
            audit_import(&app, "inventory", "import stock", what).await;
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
                key: b.key,
                acked_file: b.acked_file,
                readers: b.readers,
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
        Command::Keys(cmd) => keys(&cli.database, cmd).await,
        Command::Backup { file } => {
            if cli.database.starts_with("postgres://") || cli.database.starts_with("postgresql://") {
                return fail(
                    "backup copies SQLite databases; for PostgreSQL use pg_dump (see the README's Operations section)",
                );
            }
            let store = store_sqlite::SqliteStore::connect(&cli.database)
                .await
                .map_err(|e| CliError(format!("cannot open database {}: {e}", cli.database)))?;
            store.backup_to(&file).await.map_err(|e| CliError(format!("backup failed: {e}")))?;
            println!("backed up {} to {}", cli.database, file.display());
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
    first_key(&app, args.admin_key.as_deref(), args.demo).await?;
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
    tracing::info!(
        database,
        "Stockroom listening on http://{addr} (web admin at http://{addr}/admin, API reference at http://{addr}/docs)"
    );
    let config = api::ApiConfig {
        max_body_bytes: args.max_body_bytes,
        rate_limit: api::auth::RateLimit { per_second: args.rate_limit_per_second, burst: args.rate_limit_burst },
    };
    let router = web::with_admin(app.clone(), api::router(app.clone(), config));
    // On SIGTERM or Ctrl-C the listener closes (no new requests) and the requests in flight finish, each with the
    // ledger batch it waits for; a request that is still running after the timeout is cut off (its batch either
    // committed or did not; a retry with the same Idempotency-Key or order number tells).
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing the requests in flight");
        let _ = stopping_tx.send(true);
    };
    let timeout = std::time::Duration::from_secs(args.shutdown_timeout_seconds);
    let served = api::serve(listener, router, signal);
    tokio::pin!(served);
    let mut stopping = stopping;
    tokio::select! {
        r = &mut served => r?,
        _ = async { let _ = stopping.wait_for(|s| *s).await; tokio::time::sleep(timeout).await } => {
            tracing::warn!(timeout_seconds = args.shutdown_timeout_seconds, "requests still running at the shutdown timeout");
        }
    }
    app.flush_audit().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The fixed key of `serve --demo`: printed on purpose, for demos on a laptop only.
const DEMO_KEY: &str = "sr_demo_key_do_not_use_in_production";

/// Makes sure an admin can get in: `STOCKROOM_ADMIN_KEY` is made an admin key if no key has that secret; on a
/// database without keys, the demo key or a fresh random one is made and printed once. Printed to standard error
/// directly, never through the log, which may be shipped elsewhere.
async fn first_key(app: &App, given: Option<&str>, demo: bool) -> CliResult<()> {
    let admin = |name: &str| app::trust::NewKeyRequest {
        name: name.into(),
        role: app::trust::Role::Admin,
        channel: None,
        expires_at: None,
    };
    if let Some(secret) = given {
        match app.authenticate(secret).await? {
            Ok(_) => return Ok(()),
            // Taking a revoked key back in silently would undo the revocation.
            Err(app::trust::Rejection::Revoked | app::trust::Rejection::Expired) => {
                return fail("STOCKROOM_ADMIN_KEY names a revoked or expired key; make a new one")
            }
            Err(app::trust::Rejection::Unknown) => {}
        }
        match app.create_api_key_with_secret(admin("admin (STOCKROOM_ADMIN_KEY)"), "serve", secret.to_string()).await {
            Ok(k) => {
                audit_first_key(app, k.key.id).await;
                tracing::info!(key_id = k.key.id, "made the admin key given in STOCKROOM_ADMIN_KEY");
            }
            // Another node starting beside this one made it first.
            Err(_) if matches!(app.authenticate(secret).await, Ok(Ok(_))) => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(());
    }
    if app.store.count_api_keys().await.map_err(app::AppError::from)? > 0 {
        return Ok(());
    }
    if demo {
        let k = app.create_api_key_with_secret(admin("demo admin"), "serve --demo", DEMO_KEY.to_string()).await?;
        audit_first_key(app, k.key.id).await;
        eprintln!("DEMO admin key (fixed, for demos only; never use --demo with real data): {DEMO_KEY}");
        return Ok(());
    }
    let key = app.create_api_key(admin("first admin"), "serve").await?;
    audit_first_key(app, key.key.id).await;
    eprintln!(
        "No API key existed, so an admin key was made. Its secret is shown this once; keep it safe:\n\n    {}\n\n\
         Send it as `Authorization: Bearer <secret>`; make more keys with POST /v1/api-keys or `stockroom keys create`.",
        key.secret
    );
    Ok(())
}

/// Records a CLI import in the audit trail (actor `cli`), like a change made through the API.
async fn audit_import(app: &App, entity: &str, action: &str, summary: String) {
    app.audit(app::trust::NewAuditEntry {
        at: chrono::Utc::now(),
        actor_key_id: None,
        actor_name: "cli".into(),
        request_id: None,
        entity: entity.into(),
        entity_id: None,
        action: action.into(),
        status: 0,
        summary,
    })
    .await;
}

/// Records the admin key a start made, like any other change.
async fn audit_first_key(app: &App, id: i64) {
    app.audit(app::trust::NewAuditEntry {
        at: chrono::Utc::now(),
        actor_key_id: None,
        actor_name: "serve".into(),
        request_id: None,
        entity: "api-keys".into(),
        entity_id: Some(id.to_string()),
        action: "serve: first admin key".into(),
        status: 0,
        summary: "admin key".into(),
    })
    .await;
}

async fn keys(database: &str, cmd: KeysCommand) -> CliResult<ExitCode> {
    let app = start_app(database, LedgerConfig::default()).await?;
    let audit = |action: &str, id: i64, summary: String| app::trust::NewAuditEntry {
        at: chrono::Utc::now(),
        actor_key_id: None,
        actor_name: "cli".into(),
        request_id: None,
        entity: "api-keys".into(),
        entity_id: Some(id.to_string()),
        action: action.into(),
        status: 0,
        summary,
    };
    match cmd {
        KeysCommand::Create { name, role, channel, expires_at } => {
            let Some(role) = app::trust::Role::parse(&role) else {
                return fail("--role must be admin, staff, warehouse or channel");
            };
            let created =
                app.create_api_key(app::trust::NewKeyRequest { name, role, channel, expires_at }, "cli").await?;
            app.audit(audit("keys create", created.key.id, format!("{} key", role.as_str()))).await;
            app.flush_audit().await;
            eprintln!("key {} ({}) made; its secret is shown this once:", created.key.id, role.as_str());
            println!("{}", created.secret);
        }
        KeysCommand::List => {
            let mut after = None;
            println!("{:>6}  {:<9}  {:<16}  {:<12}  {:<25}  name", "id", "role", "channel", "prefix", "state");
            loop {
                let page = app.list_api_keys(app::page::PageRequest { after, limit: app::page::MAX_LIMIT }).await?;
                for k in &page.items {
                    let state = match (k.revoked_at, k.expires_at) {
                        (Some(t), _) => format!("revoked {}", t.format("%Y-%m-%d %H:%M")),
                        (None, Some(t)) if t <= chrono::Utc::now() => format!("expired {}", t.format("%Y-%m-%d %H:%M")),
                        (None, Some(t)) => format!("until {}", t.format("%Y-%m-%d %H:%M")),
                        (None, None) => "active".into(),
                    };
                    println!(
                        "{:>6}  {:<9}  {:<16}  {:<12}  {:<25}  {}",
                        k.id,
                        k.role.as_str(),
                        k.channel.as_deref().unwrap_or("-"),
                        k.prefix,
                        state,
                        k.name
                    );
                }
                match page.items.last() {
                    Some(last) if page.next_cursor.is_some() => after = Some(last.id),
                    _ => break,
                }
            }
        }
        KeysCommand::Revoke { id } => {
            let k = app.revoke_api_key(id).await?;
            app.audit(audit("keys revoke", id, "revoked".into())).await;
            app.flush_audit().await;
            println!("key {} ({}) revoked", k.id, k.name);
        }
    }
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

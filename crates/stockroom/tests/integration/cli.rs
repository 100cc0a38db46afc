//! The `stockroom` binary: CSV import and export (round trip, bad lines), and `verify`.

use std::path::Path;
use std::process::{Command, Output};

fn stockroom(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stockroom"))
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const PRODUCTS: &str = "\
Handle,Title,Description,Vendor,Category,Tags,Images,Status,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,SKU,Barcode,Price,Compare At Price,Currency,Cost,Weight Grams,Length mm,Width mm,Height mm,Tracked,Inventory Policy
classic-tee,Classic Tee,\"Soft, heavy cotton\",Northwind,Apparel > Shirts,\"summer, cotton\",https://img.test/a.jpg https://img.test/b.jpg,active,Color,Black,Size,M,,,TEE-BLK-M,4001,19.99,24.99,EUR,7.10,180,300,200,20,true,deny
classic-tee,,,,,,,,,Black,,L,,,TEE-BLK-L,,19.99,,EUR,,,,,,true,backorder
classic-tee,,,,,,,,,White,,M,,,TEE-WHT-M,,21.00,,EUR,,,,,,false,continue
tote,Canvas Tote,,,Accessories > Bags,,,draft,,,,,,,TOTE-1,,12.5,,EUR,,,,,,true,deny
";

const STOCK: &str = "\
Handle,Title,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Option3 Name,Option3 Value,SKU,Location,Bin,Incoming,Unavailable,Committed,Available,On hand
classic-tee,Classic Tee,Color,Black,Size,M,,,TEE-BLK-M,WH1,HALL-1/SHELF-5/RACK-2,4,2,0,10,12
classic-tee,Classic Tee,Color,Black,Size,M,,,TEE-BLK-M,WH2,WH2/BIN-1,0,0,0,3,3
classic-tee,Classic Tee,Color,White,Size,M,,,TEE-WHT-M,WH1,HALL-1/SHELF-5/RACK-3,0,0,1,5,6
tote,Canvas Tote,,,,,,,TOTE-1,WH1,HALL-1/SHELF-5/RACK-2,0,0,0,7,7
";

#[test]
fn csv_round_trip_through_an_empty_database() {
    if crate::common::on_postgres() {
        return; // CSV import and export are tested on SQLite files.
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    std::fs::write(dir.path().join("products.csv"), PRODUCTS).unwrap();
    std::fs::write(dir.path().join("stock.csv"), STOCK).unwrap();

    let o = stockroom(&a, &["import", "products", dir.path().join("products.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 products created"), "{}", text(&o));
    let no_bins = stockroom(&a, &["import", "stock", dir.path().join("stock.csv").to_str().unwrap()]);
    assert!(!no_bins.status.success(), "unknown bins are refused without --create-locations");
    assert!(text(&no_bins).contains("unknown location"), "{}", text(&no_bins));
    let o = stockroom(&a, &["import", "stock", "--create-locations", dir.path().join("stock.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("committed unit(s) were booked as available"), "{}", text(&o));
    // Both imports are in the audit trail as `cli`.
    let url = format!("sqlite://{}", a.display());
    let actions: Vec<String> = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = store_sqlite::SqliteStore::connect(&url).await.unwrap();
        let filter = app::trust::AuditFilter { actor: Some("cli".into()), ..Default::default() };
        let rows = app::trust::TrustStore::list_audit(&store, &filter, None, 100).await.unwrap();
        rows.into_iter().map(|r| r.entry.action).collect()
    });
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(actions.iter().any(|a| a == "import products") && actions.iter().any(|a| a == "import stock"));

    let pa = stockroom(&a, &["export", "products"]);
    let sa = stockroom(&a, &["export", "stock"]);
    assert!(pa.status.success() && sa.status.success());
    let stock_a = String::from_utf8(sa.stdout.clone()).unwrap();
    assert!(stock_a.contains("TEE-BLK-M,WH1,WH1/HALL-1/SHELF-5/RACK-2,4,2,0,10,12,0,2,0"), "{stock_a}");
    assert!(stock_a.contains("TEE-WHT-M,WH1,WH1/HALL-1/SHELF-5/RACK-3,0,0,0,6,6"), "{stock_a}");

    std::fs::write(dir.path().join("pa.csv"), &pa.stdout).unwrap();
    std::fs::write(dir.path().join("sa.csv"), &sa.stdout).unwrap();
    let o = stockroom(&b, &["import", "products", dir.path().join("pa.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = stockroom(&b, &["import", "stock", "--create-locations", dir.path().join("sa.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.path().join("pb.csv");
    let o = stockroom(&b, &["export", "products", "--output", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&out).unwrap(), pa.stdout, "products: export → import → export is the same file");
    let sb = stockroom(&b, &["export", "stock"]);
    assert_eq!(String::from_utf8(sb.stdout).unwrap(), stock_a, "stock: export → import → export is the same file");

    // Importing the same stock again changes nothing: the levels are absolute.
    let o = stockroom(&b, &["import", "stock", dir.path().join("sa.csv").to_str().unwrap()]);
    assert!(text(&o).contains("0 movements booked"), "{}", text(&o));
    let v = stockroom(&b, &["verify"]);
    assert!(v.status.success(), "{}", text(&v));
}

#[test]
fn bad_lines_are_all_reported_and_nothing_is_imported() {
    if crate::common::on_postgres() {
        return; // CSV import and export are tested on SQLite files.
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let bad_products = PRODUCTS
        .replace("TEE-BLK-L,,19.99", "TEE-BLK-M,,19.99")
        .replace("12.5,,EUR", "twelve,,EUR")
        .replace(",draft,", ",gone,");
    std::fs::write(dir.path().join("bad.csv"), bad_products).unwrap();
    let o = stockroom(&db, &["import", "products", dir.path().join("bad.csv").to_str().unwrap()]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("line 5: Status"), "{t}");
    assert!(t.contains("line 5: Price"), "{t}");
    assert!(t.contains("nothing was imported"), "{t}");
    // Once the parse errors are fixed, the duplicate SKU is still caught, with its line.
    let dup = PRODUCTS.replace("TEE-BLK-L,,19.99", "TEE-BLK-M,,19.99");
    std::fs::write(dir.path().join("dup.csv"), dup).unwrap();
    let o = stockroom(&db, &["import", "products", dir.path().join("dup.csv").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("line 3: products[0].variants[1].sku: duplicate SKU"), "{}", text(&o));
    let e = stockroom(&db, &["export", "products"]);
    assert_eq!(String::from_utf8(e.stdout).unwrap().lines().count(), 1, "only the header: nothing was imported");

    std::fs::write(dir.path().join("p.csv"), PRODUCTS).unwrap();
    assert!(stockroom(&db, &["import", "products", dir.path().join("p.csv").to_str().unwrap()]).status.success());
    let bad_stock = STOCK
        .replace(",0,10,12", ",0,10,13")
        .replace("TOTE-1,WH1,HALL-1/SHELF-5/RACK-2,0,0,0,7,7", "TOTE-1,WH1,,0,0,0,-7,-7");
    std::fs::write(dir.path().join("s.csv"), bad_stock).unwrap();
    let o = stockroom(&db, &["import", "stock", "--create-locations", dir.path().join("s.csv").to_str().unwrap()]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("line 2: On hand"), "{t}");
    assert!(t.contains("line 5: Bin"), "{t}");
    assert!(t.contains("line 5: Available: must not be negative"), "{t}");
    let broken = format!("{STOCK}\"unterminated,quote\n");
    std::fs::write(dir.path().join("broken.csv"), broken).unwrap();
    let o = stockroom(&db, &["import", "stock", "--create-locations", dir.path().join("broken.csv").to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    let e = stockroom(&db, &["export", "stock"]);
    assert_eq!(String::from_utf8(e.stdout).unwrap().lines().count(), 1, "no stock was booked");
}

#[tokio::test]
async fn verify_reports_drift_and_exits_non_zero() {
    if crate::common::on_postgres() {
        return; // CSV import and export are tested on SQLite files.
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    std::fs::write(dir.path().join("p.csv"), PRODUCTS).unwrap();
    std::fs::write(dir.path().join("s.csv"), STOCK).unwrap();
    assert!(stockroom(&db, &["import", "products", dir.path().join("p.csv").to_str().unwrap()]).status.success());
    assert!(stockroom(&db, &["import", "stock", "--create-locations", dir.path().join("s.csv").to_str().unwrap()])
        .status
        .success());
    let v = stockroom(&db, &["verify"]);
    assert!(v.status.success(), "{}", text(&v));

    // Corrupt one cached balance behind the ledger's back.
    let store = store_sqlite::SqliteStore::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::query("UPDATE stock_levels SET available = available + 1 WHERE available = 7")
        .execute(store.pool())
        .await
        .expect("the tampering statement runs");
    drop(store);
    let v = stockroom(&db, &["verify"]);
    assert!(!v.status.success());
    let t = text(&v);
    assert!(t.contains("drift: TOTE-1 in WH1/HALL-1/SHELF-5/RACK-2"), "{t}");
    assert!(t.contains("1 balance(s) differ"), "{t}");
}

#[tokio::test]
async fn a_refused_stock_import_creates_no_locations() {
    if crate::common::on_postgres() {
        return; // CSV import and export are tested on SQLite files.
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    std::fs::write(dir.path().join("p.csv"), PRODUCTS).unwrap();
    assert!(stockroom(&db, &["import", "products", dir.path().join("p.csv").to_str().unwrap()]).status.success());
    let unknown_sku = STOCK.replace("TOTE-1,WH1", "TOTE-9,WH1");
    std::fs::write(dir.path().join("s.csv"), unknown_sku).unwrap();
    let o = stockroom(&db, &["import", "stock", "--create-locations", dir.path().join("s.csv").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("line 5: lines[3].sku: unknown SKU 'TOTE-9'"), "{}", text(&o));

    // A bin below a bin, and stock in a virtual location, are refused before anything is created.
    std::fs::write(dir.path().join("ok.csv"), STOCK).unwrap();
    assert!(stockroom(&db, &["import", "stock", "--create-locations", dir.path().join("ok.csv").to_str().unwrap()])
        .status
        .success());
    let nested = STOCK
        .replace("WH2,WH2/BIN-1", "WH2,WH2/NEW-ZONE/BIN-9")
        .replace("TOTE-1,WH1,HALL-1/SHELF-5/RACK-2,", "TOTE-1,WH1,HALL-1/SHELF-5/RACK-2/INSIDE,")
        .replace("TEE-WHT-M,WH1,HALL-1/SHELF-5/RACK-3", "TEE-WHT-M,SCRAP,SCRAP/BIN");
    std::fs::write(dir.path().join("n.csv"), nested).unwrap();
    let o = stockroom(&db, &["import", "stock", "--create-locations", dir.path().join("n.csv").to_str().unwrap()]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("line 5: lines[3].location: cannot create 'WH1/HALL-1/SHELF-5/RACK-2/INSIDE'"), "{t}");
    assert!(t.contains("line 4: lines[2].location: cannot create 'SCRAP/BIN'"), "{t}");

    let store = store_sqlite::SqliteStore::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let zones: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM locations WHERE path LIKE 'WH2/NEW-ZONE%'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(zones, 0, "the refused import created no location");
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM locations").fetch_one(store.pool()).await.unwrap();
    assert_eq!(before, 5 + 7, "five virtual locations, and WH1, HALL-1, SHELF-5, RACK-2, RACK-3, WH2, WH2/BIN-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_drives_a_server_and_checks_for_oversell() {
    if crate::common::on_postgres() {
        return; // The load generator talks HTTP; one backend is enough to test it.
    }
    let s = crate::common::server().await;
    let (url, key) = (s.base.clone(), s.admin_key.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_stockroom"))
            .env("STOCKROOM_API_KEY", key)
            .args(["bench", "flash-sale", "--url", &url, "--clients", "8", "--requests", "200", "--stock", "50"])
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("accepted   50 "), "exactly the stock is sold: {t}");
    assert!(t.contains("refused for stock 150"), "{t}");
    assert!(t.contains("oversell   none: 50 units promised out of 50 received"), "{t}");
    assert!(t.contains("p99.9"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_reads_times_lookups_by_the_readers_asked_for() {
    if crate::common::on_postgres() {
        return; // The load generator talks HTTP; one backend is enough to test it.
    }
    let s = crate::common::server().await;
    let bench = |args: &'static [&'static str]| {
        let (url, key) = (s.base.clone(), s.admin_key.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_stockroom"))
                .env("STOCKROOM_API_KEY", key)
                .args(["bench", "--url", &url, "--clients", "4", "--requests", "120", "--skus", "20"])
                .args(args)
                .output()
                .expect("the binary runs")
        })
    };
    let out = bench(&["reads", "--readers", "1"]).await.unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("4 clients (1 of them reading)"), "{t}");
    assert!(t.contains("level lookups beside the writes") && t.contains("availability lookups beside the writes"));
    assert!(t.contains("oversell   none"), "{t}");

    let refused: [(&'static [&'static str], &str); 2] = [
        (&["reads", "--readers", "4"], "--readers must leave at least one client placing orders"),
        (&["flash-sale", "--readers", "1"], "--readers belongs to the reads scenario"),
    ];
    for (args, refusal) in refused {
        let out = bench(args).await.unwrap();
        assert!(!out.status.success() && text(&out).contains(refusal), "{args:?}: {}", text(&out));
    }
}

/// `serve --demo`, the README's first command, on a fresh database: the demo's trading day is there and
/// consistent, and `bench pages` signs in to the web admin and loads every kind of page it links to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_trades_and_every_admin_page_answers() {
    use std::io::{BufRead, BufReader};
    if crate::common::on_postgres() {
        return; // The demo is for the embedded database; the pages read through the same API on both.
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let url = format!("sqlite://{}", db.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_stockroom"))
        .args(["serve", "--demo", "--database", &url, "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("the server says where it listens").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
            break format!("http://{addr}");
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let key = "sr_demo_key_do_not_use_in_production";
    let c = testkit::server::client_with(Some(key));
    let get = |path: &str| {
        let req = c.get(format!("{base}{path}"));
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let orders = get("/v1/orders?limit=100").await;
    let orders = orders["items"].as_array().unwrap();
    assert!(orders.len() >= 20, "{} demo orders", orders.len());
    let count = |f: &dyn Fn(&serde_json::Value) -> bool| orders.iter().filter(|o| f(o)).count();
    assert!(count(&|o| o["fulfillment_status"] == "fulfilled") >= 3, "some shipped");
    assert!(count(&|o| o["payment_status"] == "paid" && o["fulfillment_status"] == "unfulfilled") >= 3, "some to pick");
    assert!(count(&|o| o["payment_status"] == "unpaid") >= 3, "some unpaid");
    let backordered = get("/v1/orders?backordered=true").await;
    let waiting = backordered["items"].as_array().unwrap();
    assert!(
        waiting.iter().any(|o| o["external_number"] == "DEMO-2001"),
        "the big order waits for stock: {backordered}"
    );
    assert_eq!(get("/v1/channels").await["items"].as_array().unwrap().len(), 2);
    let pos = get("/v1/purchase-orders").await;
    assert_eq!(pos["items"][0]["status"], "ordered", "{pos}");

    let (bench_base, bench_key) = (base.clone(), key.to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_stockroom"))
            .args(["bench", "pages", "--url", &bench_base, "--key", &bench_key, "--requests", "1"])
            .output()
            .expect("the binary runs")
    })
    .await
    .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("all pages"), "{t}");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let verify = stockroom(&db, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

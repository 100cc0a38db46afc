//! A real server, a headless Chromium driven over WebDriver (chromedriver), and the steps the tests share.
//!
//! Each test starts its own server (a fresh SQLite database on port 0), its own chromedriver on a free port and
//! its own browser, and saves a screenshot of what it checked to `target/screenshots/` (or
//! `$STOCKROOM_SCREENSHOTS`). Without chromedriver on the machine the tests say they skipped, unless
//! `STOCKROOM_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs Debian's chromium and chromium-driver), so
//! that CI can never pass by skipping them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use testkit::server::{Reply, TestServer};

/// One test's browser and server.
pub struct Browser {
    pub client: Client,
    pub server: TestServer,
    driver: Child,
    name: String,
}

fn chromedriver() -> Option<PathBuf> {
    let candidates = [std::env::var("CHROMEDRIVER").ok(), Some("/usr/bin/chromedriver".into())];
    candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.exists())
}

fn chromium() -> Option<PathBuf> {
    let candidates =
        [std::env::var("CHROMIUM").ok(), Some("/usr/bin/chromium".into()), Some("/usr/bin/chromium-browser".into())];
    candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("local addr").port()
}

/// Where screenshots go: `$STOCKROOM_SCREENSHOTS`, else `target/screenshots` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    match std::env::var("STOCKROOM_SCREENSHOTS") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
    }
}

impl Browser {
    /// A fresh server and browser for test `name`; `None` when the machine has no browser and none is required.
    pub async fn start(name: &str) -> Option<Browser> {
        let required = std::env::var("STOCKROOM_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        let (Some(driver_bin), Some(chrome)) = (chromedriver(), chromium()) else {
            assert!(
                !required,
                "STOCKROOM_REQUIRE_BROWSER=1 but chromedriver or chromium is missing: \
                 apt-get install --no-install-recommends chromium chromium-driver"
            );
            eprintln!("skipped {name}: no chromium/chromedriver (apt-get install chromium chromium-driver)");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("stockroom.db").display());
        let store = store_sqlite::SqliteStore::connect(&url).await.expect("store opens");
        let server = TestServer::start(Arc::new(store), dir).await;

        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chrome,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--lang=en-US"]
            }
        });
        let caps = caps.as_object().expect("an object").clone();
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&webdriver).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("could not start a browser session through chromedriver: {e}"),
            }
        };
        Some(Browser { client, server, driver, name: name.to_string() })
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub async fn goto(&self, path: &str) {
        self.client.goto(&self.url(path)).await.unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// Signs in through the form with `key` and waits for the dashboard.
    pub async fn sign_in(&self, key: &str) {
        self.goto("/admin/login").await;
        self.fill("input[name=key]", key).await;
        self.click("form[action='/admin/login'] button[type=submit]").await;
        self.wait_for("header.top").await;
    }

    /// Signs in with the test server's admin key.
    pub async fn sign_in_as_admin(&self) {
        let key = self.server.admin_key.clone();
        self.sign_in(&key).await;
    }

    /// The first element matching `css`, waiting up to 10 s for it to appear.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} within 10 s: {e}"))
    }

    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(css).await
    }

    /// Types `text` into the field (clearing it first), as a person or a scanner would.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        el.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Types `text` and presses Enter, like a barcode scanner.
    pub async fn scan(&self, css: &str, text: &str) {
        self.fill(css, &format!("{text}\u{E007}")).await;
    }

    pub async fn click(&self, css: &str) {
        let el = self.wait_for(css).await;
        el.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Chooses the option with this value in a select.
    pub async fn select(&self, css: &str, value: &str) {
        let el = self.wait_for(css).await;
        el.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// The whole page's visible text.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// The visible text of the first element matching `css`, or `None` while the page is being replaced (a form's
    /// redirect can swap the document between finding the element and reading it: a stale element).
    async fn try_text(&self, css: &str) -> Option<String> {
        let el = self.client.find(Locator::Css(css)).await.ok()?;
        el.text().await.ok()
    }

    /// The visible text of the first element matching `css`, tried again while the element is being replaced (a
    /// redirect, or a live update of the page) rather than failing on a stale element.
    pub async fn text_of(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(text) = self.try_text(css).await {
                return text;
            }
            assert!(Instant::now() < deadline, "no text of {css} within 10 s on {}", self.path().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's text contains `needle` (pages redirect after forms), then returns the text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        self.wait_for_text_in("body", needle).await
    }

    /// Waits until the first element matching `css` contains `needle`, then returns its text.
    pub async fn wait_for_text_in(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.try_text(css).await.unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
            if Instant::now() > deadline {
                let path = self.path().await;
                panic!("{css} on {path} never showed {needle:?}; it shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The path (and query) of the page the browser is on.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Saves a PNG of the window as `<test name>-<step>.png` and returns its path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot taken");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{}-{step}.png", self.name));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    /// Ends the browser session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    // API shortcuts for setting the scene (with the admin key).

    pub async fn api_post(&self, path: &str, body: &Value) -> Reply {
        let r = self.server.post(path, body).await;
        assert!(r.status < 300, "POST {path}: {} {}", r.status, r.text);
        r
    }

    pub async fn api_get(&self, path: &str) -> Value {
        let r = self.server.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.body
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test panics before `close`: never leave chromedriver (and its browser) running.
        let _ = self.driver.kill();
    }
}

/// The scene most tests start from: warehouse WH1 with HALL-1/SHELF-1/BIN-1..3 and WH2 with BIN-1; product
/// `tee` with SKUs TEE-BLK-S (barcode 4006381333931), TEE-BLK-M (4006381333948) and TEE-WHT-S (4006381333955);
/// 20 of TEE-BLK-S in WH1/HALL-1/SHELF-1/BIN-1, 10 of TEE-BLK-M in BIN-2.
pub async fn seed(b: &Browser) {
    for body in [
        json!({"code": "WH1", "kind": "warehouse", "name": "Berlin"}),
        json!({"code": "HALL-1", "parent": "WH1", "kind": "zone"}),
        json!({"code": "SHELF-1", "parent": "WH1/HALL-1", "kind": "shelf"}),
        json!({"code": "BIN-1", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin", "pick_sequence": 1}),
        json!({"code": "BIN-2", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin", "pick_sequence": 2}),
        json!({"code": "BIN-3", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin", "pick_sequence": 3}),
        json!({"code": "WH2", "kind": "warehouse", "name": "Hamburg"}),
        json!({"code": "BIN-1", "parent": "WH2", "kind": "bin"}),
    ] {
        b.api_post("/v1/locations", &body).await;
    }
    b.api_post(
        "/v1/products",
        &json!({"handle": "tee", "title": "Organic Tee", "status": "active", "options": ["Color", "Size"],
            "variants": [
                {"sku": "TEE-BLK-S", "barcode": "4006381333931", "options": ["Black", "S"], "price": "19.99", "currency": "EUR"},
                {"sku": "TEE-BLK-M", "barcode": "4006381333948", "options": ["Black", "M"], "price": "19.99", "currency": "EUR"},
                {"sku": "TEE-WHT-S", "barcode": "4006381333955", "options": ["White", "S"], "price": "19.99", "currency": "EUR"}
            ]}),
    )
    .await;
    for (sku, bin, qty) in
        [("TEE-BLK-S", "WH1/HALL-1/SHELF-1/BIN-1", 20), ("TEE-BLK-M", "WH1/HALL-1/SHELF-1/BIN-2", 10)]
    {
        b.api_post(
            "/v1/inventory/adjustments",
            &json!({"lines": [{"sku": sku, "location": bin, "delta": qty, "reason": "received"}]}),
        )
        .await;
    }
}

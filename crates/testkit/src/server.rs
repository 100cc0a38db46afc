//! A real Stockroom HTTP server on port 0 over a given store, and a small JSON client for tests.

use std::any::Any;
use std::sync::Arc;

use app::{App, LedgerConfig, Store};
use serde_json::Value;

/// A server running in the test's runtime; stops when dropped.
pub struct TestServer {
    pub base: String,
    /// Sends the admin key on every request, so that tests not about keys need not think of them.
    pub client: reqwest::Client,
    /// The secret of the admin key made at start.
    pub admin_key: String,
    pub app: App,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    // The webhook delivery worker; stops with the server, like a process that ends.
    _webhooks: app::webhooks::WebhookWorker,
    // Keeps the store's files (a temporary directory) alive as long as the server.
    _guard: Box<dyn Any + Send + Sync>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The problem+json `code`, for error replies.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestServer {
    pub async fn start(store: Arc<dyn Store>, guard: impl Any + Send + Sync) -> TestServer {
        Self::start_with(store, guard, api::ApiConfig::default()).await
    }

    pub async fn start_with(
        store: Arc<dyn Store>,
        guard: impl Any + Send + Sync,
        config: api::ApiConfig,
    ) -> TestServer {
        Self::start_configured(store, guard, config, app::webhooks::WebhookConfig::default()).await
    }

    /// A server whose webhook worker runs with `webhooks` (tests shorten its backoff and lease).
    pub async fn start_configured(
        store: Arc<dyn Store>,
        guard: impl Any + Send + Sync,
        config: api::ApiConfig,
        webhooks: app::webhooks::WebhookConfig,
    ) -> TestServer {
        let app = App::start(store, LedgerConfig::default()).await.expect("app starts");
        let admin = app
            .create_api_key(
                app::trust::NewKeyRequest {
                    name: "test admin".into(),
                    role: app::trust::Role::Admin,
                    channel: None,
                    expires_at: None,
                },
                "testkit",
            )
            .await
            .expect("admin key made");
        let worker = app.start_webhooks(webhooks);
        app.start_availability_worker(app::channels::FeedConfig::default());
        app.start_replenishment_worker(app::replenishment::EVALUATION_INTERVAL);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = web::with_admin(app.clone(), api::router(app.clone(), config));
        tokio::spawn(async move {
            let _ = api::serve(listener, router, async {
                let _ = rx.await;
            })
            .await;
        });
        TestServer {
            base: format!("http://{addr}"),
            client: client_with(Some(&admin.secret)),
            admin_key: admin.secret,
            app,
            shutdown: Some(tx),
            _webhooks: worker,
            _guard: Box::new(guard),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Makes a key of `role` (for `channel`, for a channel key) and returns its secret.
    pub async fn key(&self, name: &str, role: app::trust::Role, channel: Option<&str>) -> String {
        let req = app::trust::NewKeyRequest {
            name: name.into(),
            role,
            channel: channel.map(str::to_string),
            expires_at: None,
        };
        self.app.create_api_key(req, "testkit").await.expect("key made").secret
    }

    /// A request with `key` as its API key, or none.
    pub async fn call(&self, method: reqwest::Method, path: &str, key: Option<&str>, body: Option<&Value>) -> Reply {
        let mut req = reqwest::Client::new().request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn post_with_key(&self, path: &str, key: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)).header("Idempotency-Key", key).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.patch(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path))).await
    }
}

/// A client that sends `key` as `Authorization: Bearer` on every request.
pub fn client_with(key: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(k) = key {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {k}")).expect("a key is a header value");
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    reqwest::Client::builder().default_headers(headers).build().expect("client builds")
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

//! Fuzzing by property test (cargo-fuzz needs a nightly compiler): arbitrary bodies and query strings sent through
//! the real router, key checks and extractors included, to the endpoints that parse outside input. Whatever comes
//! in, the answer is never a 5xx, and every error is problem+json with a stable code.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Request};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Harness {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    key: String,
}

/// One server for every case: a fresh one per case would spend the budget on migrations.
fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (router, key) = rt.block_on(async {
            let store = store_sqlite::SqliteStore::connect("sqlite::memory:").await.unwrap();
            let app = app::App::start(Arc::new(store), app::LedgerConfig::default()).await.unwrap();
            let key = app
                .create_api_key(
                    app::trust::NewKeyRequest {
                        name: "fuzz".into(),
                        role: app::trust::Role::Admin,
                        channel: None,
                        expires_at: None,
                    },
                    "test",
                )
                .await
                .unwrap()
                .secret;
            (stockroom_api::router(app, stockroom_api::ApiConfig::default()), key)
        });
        let h = Harness { rt, router, key };
        // Something to address: a channel, a product, a location, a bin with stock.
        for (path, body) in [
            ("/v1/locations", json!({"code": "WH1", "kind": "warehouse"})),
            ("/v1/locations", json!({"code": "BIN", "parent": "WH1", "kind": "bin"})),
            ("/v1/products", json!({"handle": "tee", "title": "Tee", "variants": [{"sku": "A", "price": "1.00", "currency": "EUR"}]})),
            ("/v1/channels", json!({"code": "web", "name": "Web", "market_country": "DE", "currency": "EUR", "warehouses": ["WH1"]})),
        ] {
            let (status, _) = h.send("POST", path, "application/json", serde_json::to_vec(&body).unwrap());
            assert!(status < 300, "setup {path}: {status}");
        }
        h
    })
}

impl Harness {
    fn send(&self, method: &str, uri: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        self.rt.block_on(async {
            let resp = self.router.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status >= 400 {
                assert_eq!(ct, "application/problem+json", "{method} {uri} -> {status}");
                assert!(body["code"].is_string(), "{method} {uri} -> {status}: no code");
            }
            (status, body)
        })
    }
}

/// Every endpoint that parses a JSON body from outside.
const BODY_ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/orders"),
    ("POST", "/v1/holds"),
    ("POST", "/v1/products"),
    ("PATCH", "/v1/products/tee"),
    ("POST", "/v1/products/tee/variants"),
    ("PUT", "/v1/variants/A/components"),
    ("POST", "/v1/inventory/adjustments"),
    ("POST", "/v1/inventory/moves"),
    ("POST", "/v1/locations"),
    ("PATCH", "/v1/locations/WH1/BIN"),
    ("POST", "/v1/channels"),
    ("PATCH", "/v1/channels/web"),
    ("PUT", "/v1/channels/web/rules"),
    ("POST", "/v1/channels/web/rules/preview"),
    ("POST", "/v1/customers"),
    ("POST", "/v1/returns"),
    ("POST", "/v1/pick-lists"),
    ("POST", "/v1/webhook-endpoints"),
    ("POST", "/v1/api-keys"),
    ("PATCH", "/v1/webhook-endpoints/1"),
    ("POST", "/v1/suppliers"),
    ("PUT", "/v1/suppliers/1/items"),
    ("POST", "/v1/purchase-orders"),
    ("POST", "/v1/purchase-orders/1/receipts"),
    ("POST", "/v1/purchase-orders/1/receipts/1/landed-costs"),
    ("POST", "/v1/transfers"),
    ("POST", "/v1/transfers/1/receipts"),
    ("POST", "/v1/counts"),
    ("POST", "/v1/counts/1/entries"),
    ("POST", "/v1/inspections"),
    ("POST", "/v1/default-bins"),
    ("PUT", "/v1/settings/costing"),
    ("PUT", "/v1/settings/accounting"),
    ("PUT", "/v1/settings/replenishment"),
    ("POST", "/v1/replenishment/purchase-orders"),
];

/// Query strings of the lists and the feed: cursors, limits, filters.
const QUERY_ENDPOINTS: &[&str] = &[
    "/v1/products",
    "/v1/orders",
    "/v1/inventory/levels",
    "/v1/inventory/movements",
    "/v1/channels/web/availability",
    "/v1/audit",
    "/v1/api-keys",
    "/v1/webhook-endpoints",
    "/v1/suppliers",
    "/v1/purchase-orders",
    "/v1/transfers",
    "/v1/counts",
    "/v1/putaway",
    "/v1/reports/shrinkage",
    "/v1/reports/valuation",
    "/v1/reports/margin",
    "/v1/reports/stock-health",
    "/v1/reports/sales-per-day",
    "/v1/reports/dashboard",
    "/v1/variants",
    "/v1/accounting/journal",
    "/v1/replenishment/suggestions",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("A"),
            Just("WH1/BIN"),
            Just("web"),
            Just("EUR"),
            Just("2030-01-01T00:00:00Z"),
            Just("http://127.0.0.1:9/x")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            "[a-z_]{1,10}",
            prop_oneof![
                Just("lines"),
                Just("sku"),
                Just("quantity"),
                Just("location"),
                Just("delta"),
                Just("reason"),
                Just("source"),
                Just("currency"),
                Just("url"),
                Just("event_types"),
                Just("role"),
                Just("name"),
                Just("channel"),
                Just("code"),
                Just("kind"),
                Just("parent"),
                Just("variants"),
                Just("price"),
            ]
            .prop_map(str::to_string),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn json_bodies_never_cause_a_server_error(which in 0..BODY_ENDPOINTS.len(), body in json_value()) {
        let (method, path) = BODY_ENDPOINTS[which];
        let (status, reply) = harness().send(method, path, "application/json", serde_json::to_vec(&body).unwrap());
        prop_assert!(status < 500, "{method} {path} {body} -> {status} {reply}");
    }

    #[test]
    fn raw_bytes_never_cause_a_server_error(which in 0..BODY_ENDPOINTS.len(), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let (method, path) = BODY_ENDPOINTS[which];
        let (status, reply) = harness().send(method, path, "application/json", bytes);
        prop_assert!(status < 500, "{method} {path} -> {status} {reply}");
        prop_assert!(status != 200 && status != 201 || reply.is_object());
    }

    #[test]
    fn query_strings_never_cause_a_server_error(
        which in 0..QUERY_ENDPOINTS.len(),
        pairs in prop::collection::vec((
            prop_oneof![
                prop::sample::select(vec!["after", "limit", "updated_since", "sku", "status", "since", "entity",
                    "actor", "location"]).prop_map(str::to_string),
                "[a-z]{1,6}",
            ],
            "[ -~]{0,16}",
        ), 0..4),
    ) {
        let path = QUERY_ENDPOINTS[which];
        let q: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let (status, reply) = harness().send("GET", &format!("{path}?{q}"), "application/json", vec![]);
        prop_assert!(status < 500, "GET {path}?{q} -> {status} {reply}");
    }
}

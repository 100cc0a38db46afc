//! Signing in and out, roles, and forms without the session's CSRF token.

use crate::harness::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_key_and_out_again() {
    let Some(b) = Browser::start("signin").await else { return };
    // Any page asks for a key first and returns there afterwards.
    b.goto("/admin?notice=Welcome+back").await;
    assert!(b.path().await.starts_with("/admin/login"), "{}", b.path().await);
    b.fill("input[name=key]", "sr_not_a_key_at_all_0000000000").await;
    b.click("form[action='/admin/login'] button[type=submit]").await;
    b.wait_for_text("That key is not valid.").await;
    b.screenshot("refused").await;

    let key = b.server.admin_key.clone();
    b.fill("input[name=key]", &key).await;
    b.click("form[action='/admin/login'] button[type=submit]").await;
    b.wait_for("header.top").await;
    assert_eq!(b.path().await, "/admin?notice=Welcome+back");
    assert_eq!(b.text(".flash.notice").await, "Welcome back");
    assert!(b.text("header.top .who").await.contains("test admin"));
    // The cookie holds a session token, never the key, and scripts cannot read it.
    let cookies = b.client.get_all_cookies().await.expect("cookies");
    let session = cookies.iter().find(|c| c.name() == "sr_session").expect("session cookie");
    assert_ne!(session.value(), key);
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    b.goto("/admin").await;
    b.screenshot("dashboard").await;

    b.click("form[action='/admin/logout'] button").await;
    b.wait_for("input[name=key]").await;
    b.goto("/admin").await;
    assert!(b.path().await.starts_with("/admin/login"));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_key_ends_its_sessions() {
    let Some(b) = Browser::start("signin-revoked").await else { return };
    let key = b.server.key("floor tablet", app::trust::Role::Warehouse, None).await;
    b.sign_in(&key).await;
    assert!(b.text("header.top .who").await.contains("warehouse"));
    let keys = b.api_get("/v1/api-keys").await;
    let id = keys["items"].as_array().unwrap().iter().find(|k| k["name"] == "floor tablet").unwrap()["id"].clone();
    b.api_post(&format!("/v1/api-keys/{id}/revoke"), &serde_json::json!({})).await;
    b.goto("/admin").await;
    assert!(b.path().await.starts_with("/admin/login"), "{}", b.path().await);
    b.close().await;
}

#[tokio::test]
async fn a_form_without_the_csrf_token_changes_nothing() {
    // No browser needed: a cross-site form post carries the cookie (were it not SameSite) but not the token.
    let s = plain_server().await;
    let client = reqwest_like_client();
    let token = sign_in_raw(&client, &s).await;
    let resp = client
        .post(s.url("/admin/logout"))
        .header("cookie", format!("sr_session={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("_csrf=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    // Still signed in: the forged sign-out did nothing.
    let resp = client.get(s.url("/admin")).header("cookie", format!("sr_session={token}")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

fn reqwest_like_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Signs in over plain HTTP and returns the session token from the cookie.
async fn sign_in_raw(client: &reqwest::Client, s: &testkit::server::TestServer) -> String {
    let page = client.get(s.url("/admin/login")).send().await.unwrap();
    let login = set_cookie(page.headers(), "sr_login").expect("login cookie");
    let body =
        serde_urlencoded::to_string([("key", s.admin_key.as_str()), ("_login", &login), ("next", "/admin")]).unwrap();
    let resp = client
        .post(s.url("/admin/login"))
        .header("cookie", format!("sr_login={login}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    set_cookie(resp.headers(), "sr_session").expect("session cookie")
}

#[tokio::test]
async fn an_unknown_admin_address_is_a_page_and_the_api_still_answers_json() {
    let s = plain_server().await;
    let client = reqwest_like_client();
    let page = client.get(s.url("/admin/no/such/page")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 404);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let api = client.get(s.url("/v1/no-such-endpoint")).send().await.unwrap();
    assert_eq!(api.status().as_u16(), 404);
    assert_eq!(api.headers()["content-type"], "application/problem+json");
    // The root leads to the admin.
    let root = client.get(s.url("/")).send().await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/admin");
}

#[tokio::test]
async fn a_sign_in_form_from_another_site_opens_no_session() {
    // Another site can post a key to the sign-in form (login CSRF: the victim would work in the attacker's
    // session), but it cannot set or read the form's own cookie, so the tokens do not match.
    let s = plain_server().await;
    let client = reqwest_like_client();
    for cookie in [None, Some("sr_login=another-token-of-some-length")] {
        let body =
            serde_urlencoded::to_string([("key", s.admin_key.as_str()), ("_login", "forged"), ("next", "/admin")])
                .unwrap();
        let mut req =
            client.post(s.url("/admin/login")).header("content-type", "application/x-www-form-urlencoded").body(body);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        assert!(resp.headers()["location"].to_str().unwrap().starts_with("/admin/login?error="));
        let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
        assert!(cookies.iter().all(|c| !c.to_str().unwrap().starts_with("sr_session=")), "{cookies:?}");
    }
}

#[tokio::test]
async fn malformed_addresses_and_forms_answer_a_page_and_change_nothing() {
    let s = plain_server().await;
    let client = reqwest_like_client();
    let token = sign_in_raw(&client, &s).await;
    let page =
        client.get(s.url("/admin/orders/abc")).header("cookie", format!("sr_session={token}")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 400);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("Nothing was changed"));
    // A sign-in whose return address cannot be a header still signs in, and returns to the dashboard.
    let login_page = client.get(s.url("/admin/login")).send().await.unwrap();
    let login = set_cookie(login_page.headers(), "sr_login").unwrap();
    let body =
        serde_urlencoded::to_string([("key", s.admin_key.as_str()), ("_login", &login), ("next", "/admin\nX: y")])
            .unwrap();
    let resp = client
        .post(s.url("/admin/login"))
        .header("cookie", format!("sr_login={login}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/admin");
}

/// A server on a fresh database, for the tests that need no browser.
async fn plain_server() -> testkit::server::TestServer {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = store_sqlite::SqliteStore::connect(&url).await.unwrap();
    testkit::server::TestServer::start(std::sync::Arc::new(store), dir).await
}

/// The value a response sets for cookie `name`.
fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(prefix.as_str()).map(|v| v.split(';').next().unwrap_or("").to_string()))
}

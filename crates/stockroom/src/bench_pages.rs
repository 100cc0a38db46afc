//! `stockroom bench pages`: how fast the web admin's pages load. Signs in with `--key`, finds the pages by
//! following the links from the dashboard (as a person clicking around would: every kind of page, a few of each),
//! then loads each page `--requests` times, one at a time, and prints the median, p99 and slowest load per page.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::bench::BenchArgs;
use crate::error::{fail, CliError, CliResult};

/// Pages timed at most; the crawl stops there.
const MAX_PAGES: usize = 80;
/// Pages of one kind (the same route with another id) timed at most.
const PER_KIND: usize = 3;
/// The issue's budget for a page load on the demo data.
const BUDGET: Duration = Duration::from_millis(200);

/// The links to other admin pages in a page: `href="/admin…"`, without sign-out, assets and downloads.
pub fn admin_links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .filter(|href| href.starts_with("/admin"))
        .filter(|href| !href.starts_with("/admin/static") && !href.starts_with("/admin/logout"))
        .filter(|href| !href.contains(".csv") && !href.contains("download"))
        .map(|href| href.split('#').next().unwrap_or("").to_string())
        .collect()
}

/// The kind of a page: its path with the segment after the area (`/admin/items/{}`: an id, a handle) and every
/// segment that holds a digit or a capital (ids, SKUs, location codes) generalized, and its query's keys, so
/// that one item page stands for all of them.
pub fn kind(path: &str) -> String {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segments: Vec<&str> = path
        .split('/')
        .enumerate()
        .map(|(i, s)| if i == 3 || s.chars().any(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) { "{}" } else { s })
        .collect();
    let mut keys: Vec<&str> = query.split('&').filter_map(|p| p.split('=').next()).filter(|k| !k.is_empty()).collect();
    keys.sort_unstable();
    format!("{}?{}", segments.join("/"), keys.join("&"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

async fn sign_in(http: &reqwest::Client, base: &str, key: &str) -> CliResult<String> {
    let page =
        http.get(format!("{base}/admin/login")).send().await.map_err(|e| CliError(format!("sign-in page: {e}")))?;
    let cookie_value =
        |resp: &reqwest::Response, name: &str| {
            resp.headers().get_all(reqwest::header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
                c.strip_prefix(&format!("{name}=")).map(|v| v.split(';').next().unwrap_or("").to_string())
            })
        };
    let Some(login) = cookie_value(&page, "sr_login") else {
        return fail("the server has no web admin sign-in page (is it a Stockroom with the web admin?)");
    };
    let form = [("key", key), ("_login", login.as_str()), ("next", "/admin")];
    let resp = http
        .post(format!("{base}/admin/login"))
        .header(reqwest::header::COOKIE, format!("sr_login={login}"))
        .form(&form)
        .send()
        .await
        .map_err(|e| CliError(format!("sign in: {e}")))?;
    match cookie_value(&resp, "sr_session") {
        Some(token) if !token.is_empty() => Ok(token),
        _ => fail("signing in to the web admin failed: check --key (a staff, warehouse or admin key)"),
    }
}

pub async fn run(args: &BenchArgs) -> CliResult<()> {
    let Some(key) = args.key.as_deref() else {
        return fail("bench pages signs in to the web admin: give --key");
    };
    let base = args.url.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CliError(e.to_string()))?;
    let token = sign_in(&http, &base, key).await?;
    let cookie = format!("sr_session={token}");
    let get = |path: String| {
        let req = http.get(format!("{base}{path}")).header(reqwest::header::COOKIE, cookie.clone());
        async move {
            let started = Instant::now();
            let resp = req.send().await.map_err(|e| CliError(format!("GET {path}: {e}")))?;
            let status = resp.status().as_u16();
            let body = resp.text().await.map_err(|e| CliError(format!("GET {path}: {e}")))?;
            Ok::<_, CliError>((status, body, started.elapsed()))
        }
    };

    // Crawl breadth-first from the dashboard.
    let mut pages: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut queue: VecDeque<String> = VecDeque::from(["/admin".to_string()]);
    seen.insert("/admin".to_string());
    while let Some(path) = queue.pop_front() {
        if pages.len() >= MAX_PAGES {
            break;
        }
        let (status, body, _) = get(path.clone()).await?;
        if status != 200 {
            eprintln!("skipped {path}: {status}");
            continue;
        }
        pages.push(path);
        for link in admin_links(&body) {
            let k = kind(&link);
            if seen.contains(&link) || per_kind.get(&k).copied().unwrap_or(0) >= PER_KIND {
                continue;
            }
            *per_kind.entry(k).or_default() += 1;
            seen.insert(link.clone());
            queue.push_back(link);
        }
    }
    if pages.is_empty() {
        return fail("no admin page answered 200");
    }
    let loads = args.requests.max(1);
    println!("pages      {} found by following links from /admin; {loads} loads each, one at a time", pages.len());
    println!("{:<56} {:>9} {:>9} {:>9} {:>8}", "page", "p50 ms", "p99 ms", "max ms", "KiB");
    let mut all = Vec::new();
    let mut over = 0;
    for path in &pages {
        let mut times = Vec::with_capacity(loads);
        let mut size = 0;
        for _ in 0..loads {
            let (status, body, took) = get(path.clone()).await?;
            if status != 200 {
                return fail(format!("GET {path} answered {status} during the run"));
            }
            size = body.len();
            times.push(took);
        }
        times.sort_unstable();
        let (p50, p99, max) = (percentile(&times, 0.5), percentile(&times, 0.99), times[times.len() - 1]);
        if p99 > BUDGET {
            over += 1;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let shown: String = if path.len() > 56 { format!("{}…", &path[..55]) } else { path.clone() };
        println!("{shown:<56} {:>9.1} {:>9.1} {:>9.1} {:>8.1}", ms(p50), ms(p99), ms(max), size as f64 / 1024.0);
        all.extend(times);
    }
    all.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "all pages  p50 {:.1} ms, p99 {:.1} ms, slowest {:.1} ms; {over} of {} pages over {} ms at p99",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(all[all.len() - 1]),
        pages.len(),
        BUDGET.as_millis()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_admin_pages_only() {
        let html = r#"<a href="/admin/items/TEE-1?tab=a&amp;b=2">x</a><a href="https://example.com">y</a>
            <link href="/admin/static/app.css"><a href="/admin/reports/valuation.csv?x=1">csv</a><a href="/admin/orders#top">o</a>"#;
        assert_eq!(admin_links(html), vec!["/admin/items/TEE-1?tab=a&b=2".to_string(), "/admin/orders".to_string()]);
    }

    #[test]
    fn pages_of_one_route_are_one_kind() {
        assert_eq!(kind("/admin/items/TEE-BLK-S"), kind("/admin/items/HOOD-NVY-M"));
        assert_eq!(kind("/admin/orders/7/pack"), "/admin/orders/{}/pack?");
        assert_eq!(
            kind("/admin/catalog/classic-tee/variants/TEE-BLK-XS"),
            kind("/admin/catalog/slim-chino/variants/CHINO-NVY-M")
        );
        assert_eq!(kind("/admin/orders/12"), "/admin/orders/{}?");
        assert_eq!(kind("/admin/orders?status=shipped&after=5"), "/admin/orders?after&status");
        assert_ne!(kind("/admin/orders"), kind("/admin/orders?status=shipped"));
    }
}

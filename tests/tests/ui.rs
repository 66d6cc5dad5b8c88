//! The report page (`/ui`, issue 21.1) in a real browser: headless Debian
//! Chromium driven by playwright-core (tests/ui/check.cjs) against a node with
//! tokens holding generated data. The page asks for a token and keeps it in
//! sessionStorage only; every view's numbers equal the `/v1` answers for the
//! same query (asked here independently); changing a control re-queries; a
//! range without data shows words and no chart; a tenant token of another
//! tenant shows the 403 in words. Screenshots and the time each view took to
//! show its data are written to `$CARGO_TARGET_DIR/tmp/ui-report-page/`.
//! playwright-core is installed by `.ci/run` into `$TOUCHLINE_UI_TEST`
//! (default `$HOME/.cache/touchline-ui-test`), Chromium by apt.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;
use touchline_node::client::request_with;
use touchline_node::gen::{generate, offsets_after, produce, DatasetSpec};
use touchline_tests::fixtures::{create_topics, playwright_dir, CHROMIUM};
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

const ADMIN: &str = "ui-admin-token";

async fn api(node: &Node, path: &str) -> Value {
    let auth = format!("Bearer {ADMIN}");
    let r = request_with(&node.http, "GET", path, &[("authorization", &auth)], Duration::from_secs(30)).await.expect("HTTP reply");
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json().expect("JSON body")
}

/// A table the page showed: its header cells and rows of cell texts.
fn table(view: &Value, id: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let t = &view["tables"][id];
    assert!(t.is_object(), "view has no table {id}: {view}");
    let strings = |v: &Value| -> Vec<String> { v.as_array().unwrap().iter().map(|c| c.as_str().unwrap_or("").to_string()).collect() };
    (strings(&t["headers"]), t["rows"].as_array().unwrap().iter().map(strings).collect())
}

/// A number as the page shows it (`1,234.57`, `12.50 %`); `None` for `—`.
fn shown(text: &str) -> Option<f64> {
    let t = text.replace(',', "").replace('%', "");
    let t = t.trim();
    (t != "—").then(|| t.parse().unwrap_or_else(|_| panic!("not a number: {text:?}")))
}

/// The page rounds to two decimals.
fn assert_shows(text: &str, want: f64, what: &str) {
    let got = shown(text).unwrap_or_else(|| panic!("{what}: shows {text:?}, the API says {want}"));
    assert!((got - want).abs() <= 0.0051, "{what}: the page shows {text}, the API says {want}");
}

fn assert_ready(view: &Value, name: &str) {
    assert_eq!(view["state"], "ready", "{name}: {view}");
    assert!(view["canvases"].as_u64().unwrap_or(0) >= 1, "{name} drew no chart: {view}");
}

fn requested(view: &Value, needle: &[&str]) -> bool {
    view["requests"].as_array().unwrap().iter().filter_map(Value::as_str).any(|u| needle.iter().all(|n| u.contains(n)))
}

fn credit_of(rows: &Value, key: &str, field: &str) -> f64 {
    rows.as_array().unwrap().iter().find(|r| r["key"] == key).map_or(0.0, |r| r[field].as_f64().unwrap())
}

/// Model comparison: every model column and key row equals attribution/compare.
fn check_compare(view: &Value, want: &Value, name: &str) {
    assert_ready(view, name);
    let (headers, rows) = table(view, "table-compare");
    let models: BTreeSet<&str> = want["models"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(headers[1..].iter().map(String::as_str).collect::<BTreeSet<_>>(), models, "{name}: model columns");
    let keys: BTreeSet<&str> = want["models"].as_object().unwrap().values().flat_map(|r| r.as_array().unwrap().iter().map(|x| x["key"].as_str().unwrap())).collect();
    assert_eq!(rows.iter().map(|r| r[0].as_str()).collect::<BTreeSet<_>>(), keys, "{name}: key rows");
    for r in &rows {
        for (m, cell) in headers[1..].iter().zip(&r[1..]) {
            assert_shows(cell, credit_of(&want["models"][m], &r[0], "credit"), &format!("{name} {m} {}", r[0]));
        }
    }
    assert_eq!(shown(view["total_conversions"].as_str().unwrap()), want["conversions"].as_f64(), "{name}: conversions");
    assert_shows(view["total_value"].as_str().unwrap(), want["conversion_value"].as_f64().unwrap(), &format!("{name}: value"));
}

/// One model over time: asked as one series; each bucket row equals the attribution of that bucket.
async fn check_trend(node: &Node, tenant: &str, view: &Value, from: &str, to: &str, name: &str) {
    assert_ready(view, name);
    let (headers, rows) = table(view, "table-trend");
    assert!(rows.len() >= 2, "{name}: {rows:?}");
    let asked: Vec<&str> = view["requests"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(asked.iter().filter(|u| u.contains("/attribution/series?")).count(), 1, "{name}: one series query: {asked:?}");
    assert!(!asked.iter().any(|u| u.contains("/attribution?")), "{name}: no query per bucket: {asked:?}");
    // The buckets tile the range.
    assert_eq!((rows[0][0].as_str(), rows[rows.len() - 1][1].as_str()), (from, to), "{name}");
    assert!(rows.windows(2).all(|w| w[0][1] == w[1][0]), "{name}: {rows:?}");
    for r in &rows {
        let want = api(node, &format!("/v1/tenants/{tenant}/attribution?model=linear&group_by=channel&from={}&to={}", r[0], r[1])).await;
        for x in want["rows"].as_array().unwrap() {
            assert!(headers.contains(&x["key"].as_str().unwrap().to_string()), "{name}: key {} of bucket {} missing", x["key"], r[0]);
        }
        for (k, cell) in headers[2..].iter().zip(&r[2..]) {
            assert_shows(cell, credit_of(&want["rows"], k, "credit"), &format!("{name} {} {k}", r[0]));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_page_shows_the_api_answers_in_chromium() {
    let pw = playwright_dir();
    let broker = Broker::start().await;
    let (topic, partitions) = ("ev-ui", 2);
    // TOUCHLINE_UI_PERSONS: a bigger dataset for timing the views (issue 21.4); 300 by default.
    let persons = std::env::var("TOUCHLINE_UI_PERSONS").ok().map_or(300, |v| v.parse().expect("TOUCHLINE_UI_PERSONS: a number of persons"));
    let spec = DatasetSpec { seed: 21, tenants: 2, persons, partitions, span_days: 28, ..DatasetSpec::default() };
    let records = generate(&spec);
    create_topics(&broker.addr, topic, partitions).await;
    assert_eq!(produce(&broker.addr, topic, &records, 0, &[]).await.expect("produce"), records.len());
    let names: BTreeSet<String> = records.iter().filter(|r| r.valid).map(|r| r.key.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut ns = NodeSpec::new("ui", &broker.addr, topic, &dir.path().join("n"));
    ns.extra = vec!["--partitions".into(), partitions.to_string(), "--admin-token".into(), ADMIN.into()];
    for t in &names {
        ns.extra.extend(["--tenant-token".to_string(), format!("{t}=tok-{t}")]);
    }
    let node = Node::start(ns).await;
    let total = offsets_after(&records, partitions);
    let consumed = wait_for(Duration::from_secs(180 + persons as u64 / 100), || async {
        let c = api(&node, "/v1/cluster").await;
        let parts = c["partitions"].as_array().cloned().unwrap_or_default();
        let sum: i64 = parts.iter().map(|p| p["consumed_offset"].as_i64().unwrap_or(0)).sum();
        !parts.is_empty() && sum >= total && parts.iter().all(|p| p["state"] == "active" && p["lag"] == 0)
    })
    .await;
    assert!(consumed, "the node did not consume the {total} records");

    // The tenant with the most persons, its event range, another tenant, a person who converted.
    let tenants = api(&node, "/v1/tenants").await["tenants"].as_array().unwrap().clone();
    let t = tenants.iter().max_by_key(|t| t["persons"].as_u64()).unwrap();
    let tenant = t["tenant"].as_str().unwrap().to_string();
    let other = tenants.iter().map(|t| t["tenant"].as_str().unwrap()).find(|n| *n != tenant).expect("two tenants").to_string();
    let from = t["first_event"].as_str().unwrap()[..10].to_string();
    let last = touchline_actors::domain::timestamp::parse_rfc3339(t["last_event"].as_str().unwrap()).expect("RFC 3339 last_event");
    let to = last.plus_secs(86_400).to_string()[..10].to_string();
    let person = find_converted(&node, &tenant).await;

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-report-page");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let cfg = json!({
        "base": format!("http://{}", node.http), "out": out, "chromium": CHROMIUM,
        "admin_token": ADMIN, "wrong_token": format!("tok-{other}"), "tenant": tenant,
        "from": from, "to": to, "person": person, "empty_from": "2020-01-01", "empty_to": "2020-01-08",
        "weights": "0.5,0.1,0.4", "half_life_hours": "24", "lookback_days": "14", "other_tenant": other,
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui/check.cjs");
    let run = tokio::process::Command::new("node").arg(script).arg(&pw).arg(cfg.to_string()).output().await.expect("run node (Node.js)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "check.cjs failed: {stdout}{stderr}");
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("check.cjs printed no result ({e}): {stdout}{stderr}"));
    std::fs::write(out.join("result.json"), serde_json::to_string_pretty(&result).unwrap()).unwrap();
    assert!(result["failure"].is_null(), "the browser run failed (screenshots in {}): {}", out.display(), result["failure"].as_str().unwrap_or(""));
    let views = &result["views"];

    // Timings first, so they are on record even when a comparison fails.
    let timings: BTreeMap<&str, Value> = views.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), json!({"shown_ms": v["shown_ms"], "load_ms": v["load_ms"]}))).collect();
    std::fs::write(out.join("timings.json"), serde_json::to_string_pretty(&timings).unwrap()).unwrap();
    println!("view timings (ms from click/change to data shown; load_ms = the page's own query+draw time): {}", serde_json::to_string(&timings).unwrap());
    println!("screenshots: {}", out.display());
    assert_eq!(result["console_errors"], json!([]), "the page logged errors");

    // Auth: asked for a token, kept it in this tab's sessionStorage only.
    assert_eq!(result["asked_for_token"], true);
    assert_eq!(result["storage"], json!({"session": ADMIN, "local": 0}));

    let q = format!("from={from}&to={to}");
    let base = format!("/v1/tenants/{tenant}");
    check_compare(&views["compare"], &api(&node, &format!("{base}/attribution/compare?group_by=channel&{q}")).await, "compare");
    // Switching group_by re-queries and shows the other grouping.
    assert!(requested(&views["compare_campaign"], &["attribution/compare", "group_by=campaign"]), "{}", views["compare_campaign"]);
    check_compare(&views["compare_campaign"], &api(&node, &format!("{base}/attribution/compare?group_by=campaign&{q}")).await, "compare_campaign");
    assert_ne!(table(&views["compare_campaign"], "table-compare").1, table(&views["compare"], "table-compare").1);

    // Custom weights, half-life and lookback from the page-wide bar: the custom model joins the comparison.
    let params = &views["compare_params"];
    assert!(requested(params, &["attribution/compare", "weights=0.5%2C0.1%2C0.4", "half_life_hours=24", "lookback_days=14"]), "{params}");
    assert!(table(params, "table-compare").0.contains(&"custom".to_string()), "{params}");
    check_compare(params, &api(&node, &format!("{base}/attribution/compare?group_by=campaign&weights=0.5%2C0.1%2C0.4&half_life_hours=24&lookback_days=14&{q}")).await, "compare_params");

    check_trend(&node, &tenant, &views["trend"], &from, &to, "trend").await;
    check_trend(&node, &tenant, &views["trend_week"], &from, &to, "trend_week").await;

    check_journeys(&node, &base, &views["journeys"], &q).await;
    // Another granularity re-asks the performance (not the journey list) and shows the same totals per key.
    let week = &views["journeys_week"];
    assert_eq!(week["controls"]["granularity"], "week", "{week}");
    assert!(requested(week, &["/performance", "granularity=week"]) && !requested(week, &["group_by=journey"]), "{week}");
    check_journeys(&node, &base, week, &q).await;
    check_campaigns(&views["campaigns"], &api(&node, &format!("{base}/campaigns?model=linear&{q}")).await, "campaigns");
    assert!(requested(&views["campaigns_first_touch"], &["campaigns", "model=first_touch"]), "{}", views["campaigns_first_touch"]);
    check_campaigns(&views["campaigns_first_touch"], &api(&node, &format!("{base}/campaigns?model=first_touch&{q}")).await, "campaigns_first_touch");
    check_cohorts(&views["cohorts"], &api(&node, &format!("{base}/cohorts?cohort=week&by=channel&{q}")).await);
    assert_eq!(views["person_list"]["state"], "ready", "{}", views["person_list"]);
    check_person(&views["person"], &api(&node, &format!("{base}/customers/{person}?group_by=channel")).await);
    check_cluster(&views["cluster"], &api(&node, "/v1/cluster").await);

    let empty = &views["compare_empty"];
    assert_eq!(empty["state"], "empty", "{empty}");
    assert!(empty["status"].as_str().unwrap().contains("No conversions"), "{empty}");
    assert_eq!(empty["canvases"], 0, "an empty range draws no chart: {empty}");
    for v in ["trend_empty", "journeys_empty", "cohorts_empty"] {
        let e = &views[v];
        assert_eq!((e["state"].as_str(), e["canvases"].as_u64()), (Some("empty"), Some(0)), "{v}: words, no chart: {e}");
        assert!(e["status"].as_str().unwrap().starts_with("No "), "{v}: {e}");
    }

    let forbidden = &views["forbidden"];
    assert_eq!(forbidden["state"], "error", "{forbidden}");
    let words = forbidden["status"].as_str().unwrap();
    assert!(words.contains("Forbidden") && words.contains("does not grant tenant"), "{forbidden}");
    assert_eq!(forbidden["canvases"], 0, "{forbidden}");
    // A tenant token on its own tenant: the page's query (its range from the tenant's watermark) answered as /v1 does.
    let own = &views["own_tenant"];
    let asked = own["requests"].as_array().unwrap().iter().filter_map(Value::as_str).rfind(|u| u.contains("/attribution/compare")).unwrap_or_else(|| panic!("{own}"));
    assert!(asked.starts_with(&format!("/v1/tenants/{other}/")), "{asked}");
    check_compare(own, &api(&node, asked).await, "own_tenant");
}

/// The first person of `tenant` (in listing order) with a conversion.
async fn find_converted(node: &Node, tenant: &str) -> String {
    let mut cursor = String::new();
    loop {
        let page = api(node, &format!("/v1/tenants/{tenant}/customers?limit=50{cursor}")).await;
        for c in page["customers"].as_array().unwrap() {
            let id = c["identifiers"][0]["id"].as_str().unwrap();
            let p = api(node, &format!("/v1/tenants/{tenant}/customers/{id}")).await;
            if p["conversions"].as_array().is_some_and(|c| !c.is_empty()) {
                return id.to_string();
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => panic!("no person of {tenant} converted"),
        }
    }
}

async fn check_journeys(node: &Node, base: &str, view: &Value, q: &str) {
    assert_ready(view, "journeys");
    let (journey, g) = (view["controls"]["journey"].as_str().unwrap(), view["controls"]["granularity"].as_str().unwrap());
    assert!(!journey.is_empty(), "{view}");
    let want = api(node, &format!("{base}/journeys/{journey}/performance?granularity={g}&{q}")).await;
    let (headers, rows) = table(view, "table-journeys");
    let mut sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for b in want["buckets"].as_array().unwrap() {
        let s = sums.entry(b["key"].as_str().unwrap().to_string()).or_insert_with(|| vec![0.0; headers.len() - 1]);
        for (i, h) in headers[1..].iter().enumerate() {
            s[i] += b[h.as_str()].as_f64().unwrap();
        }
    }
    assert_eq!(rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), sums.keys().cloned().collect::<Vec<_>>(), "journeys: keys");
    for r in &rows {
        for (i, cell) in r[1..].iter().enumerate() {
            assert_shows(cell, sums[&r[0]][i], &format!("journeys {} {}", r[0], headers[i + 1]));
        }
    }
}

fn check_campaigns(view: &Value, want: &Value, name: &str) {
    assert_ready(view, name);
    let (_, rows) = table(view, "table-campaigns");
    let want = want["campaigns"].as_array().unwrap();
    assert_eq!(rows.len(), want.len(), "{name}: one row per campaign");
    for r in &rows {
        let c = want.iter().find(|c| c["campaign_id"] == r[0].as_str()).unwrap_or_else(|| panic!("{name}: unknown campaign {}", r[0]));
        for (cell, field) in r[4..].iter().zip(["spend", "attributed_conversions", "attributed_revenue", "roas"]) {
            match c[field].as_f64() {
                Some(v) => assert_shows(cell, v, &format!("{name} {} {field}", r[0])),
                None => assert_eq!(cell, "—", "{name} {} {field}", r[0]),
            }
        }
    }
}

fn check_cohorts(view: &Value, want: &Value) {
    assert_ready(view, "cohorts");
    let (_, rows) = table(view, "table-cohorts");
    let want = want["rows"].as_array().unwrap();
    assert_eq!(rows.len(), want.len(), "cohorts: one row per cohort and key");
    for (r, w) in rows.iter().zip(want) {
        assert_eq!((r[0].as_str(), r[1].as_str()), (&w["cohort_start"].as_str().unwrap()[..10], w["key"].as_str().unwrap()));
        let persons = w["persons"].as_f64().unwrap();
        let converted = w["converted_persons"].as_f64().unwrap();
        let rate = if persons > 0.0 { 100.0 * converted / persons } else { 0.0 };
        for (cell, v) in r[2..].iter().zip([persons, converted, rate, w["conversions"].as_f64().unwrap(), w["revenue"].as_f64().unwrap()]) {
            assert_shows(cell, v, &format!("cohorts {} {}", r[0], r[1]));
        }
    }
}

fn check_person(view: &Value, want: &Value) {
    assert_ready(view, "person");
    let (_, ids) = table(view, "table-identifiers");
    let want_ids: Vec<Vec<String>> = want["identifiers"].as_array().unwrap().iter().map(|i| vec![i["id"].as_str().unwrap().into(), i["kind"].as_str().unwrap().into(), i["method"].as_str().unwrap().into()]).collect();
    assert_eq!(ids.iter().map(|r| r[..3].to_vec()).collect::<Vec<_>>(), want_ids, "person: identifiers");
    for (r, w) in ids.iter().zip(want["identifiers"].as_array().unwrap()) {
        assert_shows(&r[3], w["confidence"].as_f64().unwrap(), "person: confidence");
    }
    let (_, timeline) = table(view, "table-timeline");
    assert_eq!(timeline.len(), want["touchpoints"].as_array().unwrap().len() + want["conversions"].as_array().unwrap().len(), "person: timeline");
    for c in want["conversions"].as_array().unwrap() {
        let (headers, rows) = table(view, &format!("table-credit-{}", c["event_id"].as_str().unwrap()));
        let credit = c["credit"].as_object().unwrap();
        assert_eq!(rows.iter().map(|r| r[0].as_str()).collect::<BTreeSet<_>>(), credit.keys().map(String::as_str).collect(), "person: models");
        for r in &rows {
            for (k, cell) in headers[1..].iter().zip(&r[1..]) {
                let w: f64 = credit[&r[0]].as_array().unwrap().iter().filter(|x| x["key"] == k.as_str()).map(|x| x["weight"].as_f64().unwrap()).sum();
                assert_shows(cell, w, &format!("person: {} {k}", r[0]));
            }
        }
    }
}

fn check_cluster(view: &Value, want: &Value) {
    assert_ready(view, "cluster");
    let (_, members) = table(view, "table-members");
    assert_eq!(members.iter().map(|m| m[0].as_str()).collect::<Vec<_>>(), want["members"].as_array().unwrap().iter().map(|m| m["node_id"].as_str().unwrap()).collect::<Vec<_>>());
    let (_, parts) = table(view, "table-partitions");
    let want = want["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), want.len(), "cluster: one row per partition");
    for (r, w) in parts.iter().zip(want) {
        assert_eq!(r[..3].to_vec(), vec![w["partition"].to_string(), w["owner"].as_str().unwrap().to_string(), w["state"].as_str().unwrap().to_string()], "cluster");
        assert_eq!(r[3], w["consumed_offset"].to_string(), "cluster: consumed offset at rest");
        assert_eq!(r[5], w["lag"].to_string(), "cluster: lag");
    }
}

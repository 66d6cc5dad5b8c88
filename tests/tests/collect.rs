//! The Segment-compatible collector (`/v1/collect/*`, issue 17.2) against a
//! real node on Tansu: track/identify/page and a batch, sent with a write key
//! (HTTP Basic and `writeKey`, one of them gzip), land as the mapped events.md
//! events; the attribution report and `customers/{id}` equal the values worked
//! out by hand below; re-sending the same messageIds changes nothing; 401, 400
//! and 413 answers, and nothing of a rejected request is produced.

use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use touchline_node::client::request_with;
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

const ADMIN: &str = "Bearer adm";
/// `base64("wk-acme:")`: the write key as the Basic user, empty password.
const BASIC: &str = "Basic d2stYWNtZTo=";

/// One POST with `body` (JSON), extra headers; `(status, body)`.
async fn post(node: &Node, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    touchline_tests::fixtures::post(node, path, &all, body).await
}

async fn collect(node: &Node, call: &str, body: &Value) -> (u16, String) {
    post(node, &format!("/v1/collect/{call}"), &[("Authorization", BASIC)], &serde_json::to_vec(body).unwrap()).await
}

async fn get(node: &Node, path: &str) -> Value {
    let r = request_with(&node.http, "GET", path, &[("Authorization", ADMIN)], Duration::from_secs(30)).await.unwrap();
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json().unwrap()
}

/// Records consumed over every partition, once all are consumed to their end.
async fn consumed(node: &Node) -> Option<i64> {
    let v = get(node, "/v1/cluster").await;
    let parts = v["partitions"].as_array().cloned().unwrap_or_default();
    let done = !parts.is_empty() && parts.iter().all(|p| p["state"] == "active" && p["end_offset"].as_i64().is_some() && p["end_offset"] == p["consumed_offset"]);
    done.then(|| parts.iter().map(|p| p["consumed_offset"].as_i64().unwrap_or(0)).sum())
}

async fn wait_total(node: &Node, n: i64) {
    assert!(wait_for(Duration::from_secs(120), || async { consumed(node).await == Some(n) }).await, "never consumed exactly {n}: {:?}", consumed(node).await);
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// a1: a paid-search page view, an email track and a login as u1; u1 buys for
/// 100 (batch). a2: a social page view (the batch's shared campaign) and buys
/// for 40 (`value`, no currency: USD). Linear: search 50, email 50, social 40.
fn page() -> Value {
    json!({"messageId": "p-1", "anonymousId": "a1", "timestamp": "2026-12-01T10:00:00Z",
           "context": {"page": {"url": "https://shop.example/landing?utm_source=google&utm_medium=cpc", "referrer": "https://www.google.com/"},
                       "campaign": {"name": "winter"}, "ip": "10.1.2.3", "userAgent": "UA-1"}})
}

fn track() -> Value {
    json!({"writeKey": "wk-acme", "messageId": "t-1", "anonymousId": "a1", "event": "Newsletter Opened", "timestamp": "2026-12-01T11:00:00Z",
           "context": {"campaign": {"name": "winter", "source": "newsletter", "medium": "email"}}})
}

fn identify() -> Value {
    json!({"messageId": "i-1", "anonymousId": "a1", "userId": "u1", "timestamp": "2026-12-01T11:30:00Z", "traits": {"email": "x@example.com"}})
}

fn batch() -> Value {
    json!({"context": {"campaign": {"name": "spring", "source": "facebook", "medium": "social"}},
           "batch": [
               {"type": "page", "messageId": "b-1", "anonymousId": "a2", "timestamp": "2026-12-02T09:00:00Z"},
               {"type": "track", "messageId": "b-2", "userId": "u1", "event": "Order Completed", "timestamp": "2026-12-01T12:00:00Z", "properties": {"revenue": 100, "currency": "USD"}},
               {"type": "track", "messageId": "b-3", "anonymousId": "a2", "event": "Order Completed", "timestamp": "2026-12-02T10:00:00Z", "properties": {"value": 40}}
           ]})
}

async fn send_all(node: &Node) {
    assert_eq!(collect(node, "page", &page()).await, (200, r#"{"success":true}"#.to_string()));
    // writeKey in the body, no header.
    let (s, b) = post(node, "/v1/collect/track", &[], &serde_json::to_vec(&track()).unwrap()).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(node, "/v1/collect/identify", &[("Authorization", BASIC), ("Content-Encoding", "gzip")], &gzip(&serde_json::to_vec(&identify()).unwrap())).await;
    assert_eq!(s, 200, "gzip: {b}");
    let (s, b) = collect(node, "batch", &batch()).await;
    assert_eq!(s, 200, "{b}");
}

const REPORT: &str = "/v1/tenants/acme/attribution?model=linear&group_by=channel&from=2026-11-30T00:00:00Z&to=2026-12-05T00:00:00Z";

fn rows(v: &Value) -> Vec<(String, f64)> {
    let mut r: Vec<(String, f64)> = v["rows"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["value"].as_f64().unwrap())).collect();
    r.sort_by(|a, b| a.0.cmp(&b.0));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_calls_land_as_mapped_events() {
    let broker = Broker::start().await;
    let topic = "ev-collect";
    create_topics(&broker.addr, topic, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = NodeSpec::new("collect-1", &broker.addr, topic, &dir.path().join("n"));
    spec.extra.extend(["--write-key", "acme=wk-acme", "--admin-token", "adm", "--tenant-token", "acme=tok-acme"].map(String::from));
    let node = Node::start(spec).await;
    assert!(wait_for(Duration::from_secs(60), || async { consumed(&node).await.is_some() }).await, "node not ready");

    // Rejections first: none of them may produce anything.
    let body = serde_json::to_vec(&page()).unwrap();
    for auth in [None, Some("Bearer tok-acme"), Some(ADMIN), Some("Basic d3Jvbmc6")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let (s, b) = post(&node, "/v1/collect/page", &headers, &body).await;
        assert_eq!(s, 401, "{auth:?}: {b}");
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["error"]["code"], "unauthorized");
    }
    let (s, b) = collect(&node, "track", &json!({"anonymousId": "a9", "event": "x"})).await;
    assert!(s == 400 && b.contains("messageId"), "{s} {b}");
    let mut bad = batch();
    bad["batch"][2]["event"] = Value::Null;
    let (s, b) = collect(&node, "batch", &bad).await;
    assert!(s == 400 && b.contains("batch[2].event"), "{s} {b}");
    let big = json!({"messageId": "big", "anonymousId": "a9", "event": "x", "properties": {"blob": "x".repeat(40_000)}});
    assert_eq!(collect(&node, "track", &big).await.0, 413);
    let items: Vec<Value> = (0..30).map(|i| json!({"type": "track", "messageId": format!("m{i}"), "anonymousId": "a9", "event": "x", "properties": {"blob": "x".repeat(20_000)}})).collect();
    assert_eq!(collect(&node, "batch", &json!({"batch": items})).await.0, 413, "600 KB batch");
    let items: Vec<Value> = vec![json!({"type": "track", "messageId": "m", "anonymousId": "a9", "event": "x", "properties": {"blob": "x".repeat(40_000)}})];
    let (s, b) = collect(&node, "batch", &json!({"batch": items})).await;
    assert!(s == 413 && b.contains("batch[0]"), "{s} {b}");

    send_all(&node).await;
    wait_total(&node, 6).await;

    let report = get(&node, REPORT).await;
    assert_eq!((report["conversions"].as_u64(), report["conversion_value"].as_f64()), (Some(2), Some(140.0)), "{report}");
    let want = vec![("email".to_string(), 50.0), ("search".to_string(), 50.0), ("social".to_string(), 40.0)];
    assert_eq!(rows(&report), want, "{report}");
    let by_campaign = get(&node, &REPORT.replace("group_by=channel", "group_by=campaign")).await;
    assert_eq!(rows(&by_campaign), vec![("spring".to_string(), 40.0), ("winter".to_string(), 100.0)], "{by_campaign}");

    let a1 = get(&node, "/v1/tenants/acme/customers/a1").await;
    let tps: Vec<(String, String)> = a1["touchpoints"].as_array().unwrap().iter().map(|t| (t["channel"].as_str().unwrap_or("").to_string(), t["timestamp"].as_str().unwrap_or("").to_string())).collect();
    assert_eq!(tps, vec![("search".into(), "2026-12-01T10:00:00Z".into()), ("email".into(), "2026-12-01T11:00:00Z".into())], "{a1}");
    let convs = a1["conversions"].as_array().unwrap();
    assert_eq!(convs.len(), 1, "{a1}");
    assert_eq!(get(&node, "/v1/tenants/acme/customers/u1").await["touchpoints"], a1["touchpoints"], "u1 is a1 (identify)");

    // Re-sending the same messageIds changes nothing.
    send_all(&node).await;
    wait_total(&node, 12).await;
    assert_eq!(get(&node, REPORT).await, report);
    assert_eq!(get(&node, "/v1/tenants/acme/customers/a1").await, a1);

    let m = request_with(&node.http, "GET", "/metrics", &[], Duration::from_secs(10)).await.unwrap().body;
    // The 600 KB batch is refused by the listener's body limit before the collector counts it.
    for needle in ["touchline_collect_requests_total{route=\"batch\"} 4", "touchline_collect_rejected_total{reason=\"too_large\"} 2", "touchline_collect_rejected_total{reason=\"invalid\"} 2", "touchline_collect_events_total{type=\"conversion_event\"} 4", "touchline_collect_rejected_total{reason=\"unauthorized\"} 4", "touchline_collect_produce_duration_seconds"] {
        assert!(m.contains(needle), "{needle} missing:\n{}", m.lines().filter(|l| l.contains("collect")).collect::<Vec<_>>().join("\n"));
    }
}

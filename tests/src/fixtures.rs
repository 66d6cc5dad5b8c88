//! Shared fixture steps: topics, producing a dataset, reading a topic back,
//! and comparing a node's reports with the batch reference.

use crate::reference::{RefQuery, Reference};
use crate::sandbox::{json_close, Node};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use serde_json::Value;
use touchline_actors::domain::routing::partition_for;
use touchline_actors::domain::Ts;
use touchline_node::client::HttpReply;
use touchline_node::gen::GenRecord;

pub async fn create_topics(brokers: &str, topic: &str, partitions: i32) {
    touchline_cluster::admin::ensure_topic(brokers, &[], topic, partitions).await.expect("events topic");
    touchline_cluster::admin::ensure_topic(brokers, &[], &format!("{topic}.dlq"), partitions).await.expect("dlq topic");
}

/// `(partition, value)` in production order, for the reference.
pub fn as_partitioned(records: &[GenRecord], partitions: i32) -> Vec<(i32, Vec<u8>)> {
    records.iter().map(|r| (r.partition.unwrap_or_else(|| partition_for(&r.key, partitions)), r.value.clone())).collect()
}

pub use touchline_node::gen::offsets_after;

pub fn enc(ts: Ts) -> String {
    ts.to_string().replace(':', "%3A").replace('+', "%2B")
}

/// The queries every equivalence test runs: rule models × groupings × lookbacks.
pub fn standard_queries(tenants: &[String], from: Ts, to: Ts) -> Vec<RefQuery> {
    let mut out = Vec::new();
    for t in tenants {
        for model in ["first_touch", "last_touch", "linear", "time_decay", "position_based", "j_curve", "inverse_j", "last_non_direct", "participation", "custom"] {
            for group_by in ["channel", "campaign", "source_medium"] {
                let mut q = RefQuery::new(t, model, from, to);
                q.group_by = group_by.into();
                if model == "custom" {
                    q.weights = Some([30.0, 40.0, 30.0]);
                }
                out.push(q);
            }
        }
        let mut q = RefQuery::new(t, "linear", from, to);
        q.lookback_days = 3;
        out.push(q);
        let mut q = RefQuery::new(t, "time_decay", from, to);
        q.half_life_hours = 12.0;
        q.group_by = "journey".into();
        out.push(q);
    }
    out
}

pub fn query_path(q: &RefQuery) -> String {
    let mut p = format!(
        "/v1/tenants/{}/attribution?model={}&from={}&to={}&group_by={}&lookback_days={}&half_life_hours={}",
        q.tenant,
        q.model,
        enc(q.from),
        enc(q.to),
        q.group_by,
        q.lookback_days,
        q.half_life_hours
    );
    if let Some([f, m, l]) = q.weights {
        p.push_str(&format!("&weights={f},{m},{l}"));
    }
    if let Some(c) = &q.currency {
        p.push_str(&format!("&currency={c}"));
    }
    p
}

/// The fields of a report that must equal the reference; rows keyed by `key`
/// (their order is checked apart, by [`assert_row_order`], because float noise
/// may reorder exact ties).
pub fn comparable(v: &Value) -> Value {
    let rows: serde_json::Map<String, Value> = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["key"].as_str().unwrap_or_default().to_string(), serde_json::json!({"credit": r["credit"], "value": r["value"]})))
        .collect();
    serde_json::json!({
        "conversions": v["conversions"], "conversion_value": v["conversion_value"],
        "currency": v["currency"], "rows": rows,
    })
}

/// Rows sorted by credit descending (ties within 1e-9 relative), then key.
pub fn assert_row_order(v: &Value, what: &str) {
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    for w in rows.windows(2) {
        let (a, b) = (w[0]["credit"].as_f64().unwrap(), w[1]["credit"].as_f64().unwrap());
        let tie = (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
        assert!(a > b || tie, "{what}: rows not by credit: {a} before {b}");
        if tie {
            assert!(w[0]["key"].as_str() < w[1]["key"].as_str(), "{what}: tie not by key: {w:?}");
        }
    }
}

/// Asserts every query answers like the reference; returns how many rows compared.
pub async fn assert_matches_reference(node: &Node, reference: &Reference, queries: &[RefQuery]) -> usize {
    assert_matches_reference_with(node, reference, queries, |_, _| {}).await
}

/// [`assert_matches_reference`], also handing every reply to `check` (headers, …).
pub async fn assert_matches_reference_with(node: &Node, reference: &Reference, queries: &[RefQuery], mut check: impl FnMut(&RefQuery, &HttpReply)) -> usize {
    let mut rows = 0;
    for q in queries {
        let r = node.get(&query_path(q)).await;
        check(q, &r);
        assert_eq!(r.status, 200, "{} -> {}", query_path(q), r.body);
        let body = r.json().expect("json");
        assert_row_order(&body, &query_path(q));
        let got = comparable(&body);
        let want = comparable(&reference.attribution(q));
        assert!(json_close(&got, &want, 1e-9), "{}\n node: {got}\n  ref: {want}", query_path(q));
        rows += got["rows"].as_object().map_or(0, serde_json::Map::len);
    }
    rows
}

/// A path segment with everything but unreserved characters percent-encoded.
fn enc_segment(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Asserts every journey's hour/day/week performance of every tenant equals the
/// reference (revenue to 1e-9 relative); returns how many buckets compared.
pub async fn assert_journeys_match_reference(node: &Node, reference: &Reference, tenants: &[String], from: Ts, to: Ts) -> usize {
    let mut buckets = 0;
    for t in tenants {
        for j in reference.journeys(t) {
            for g in ["hour", "day", "week"] {
                let path = format!("/v1/tenants/{t}/journeys/{}/performance?granularity={g}&from={}&to={}", enc_segment(&j), enc(from), enc(to));
                let r = node.get(&path).await;
                assert_eq!(r.status, 200, "{path} -> {}", r.body);
                let body = r.json().expect("json");
                let got = serde_json::json!({"journey": body["journey"], "granularity": body["granularity"], "buckets": body["buckets"]});
                let want = reference.journey_performance(t, &j, g, from, to);
                assert!(json_close(&got, &want, 1e-9), "{path}\n node: {got}\n  ref: {want}");
                buckets += want["buckets"].as_array().map_or(0, Vec::len);
            }
        }
    }
    buckets
}

/// One record read back: partition, offset, key, bytes, headers.
pub type Read = (i32, i64, String, Vec<u8>, BTreeMap<String, String>);

/// Every record of `topic`'s `partitions` up to `ends` (per-partition end offsets).
pub fn read_topic(brokers: &str, topic: &str, ends: &BTreeMap<i32, i64>) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", "fixture-reader").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in ends.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let want: i64 = ends.values().sum();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (out.len() as i64) < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            if m.offset() >= ends[&m.partition()] {
                continue;
            }
            let mut h = BTreeMap::new();
            for x in m.headers().iter().flat_map(|hs| hs.iter()) {
                h.insert(x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned());
            }
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            out.push((m.partition(), m.offset(), key, m.payload().unwrap_or_default().to_vec(), h));
        }
    }
    assert_eq!(out.len() as i64, want, "read back the topic");
    out
}

/// Per-partition end offsets as the node reports them once it consumed
/// everything (Tansu answers ListOffsets wrongly, so not from the broker).
pub async fn end_offsets(node: &Node) -> BTreeMap<i32, i64> {
    let v = node.get("/v1/cluster").await.json().expect("cluster view");
    v["partitions"].as_array().into_iter().flatten().map(|p| (p["partition"].as_i64().unwrap() as i32, p["end_offset"].as_i64().unwrap())).collect()
}

/// One raw HTTP/1.1 POST of `body` with `headers`; `(status, body)`. The body
/// is written even if the node answers first (a rejected oversized body).
pub async fn post(node: &Node, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    request(node, "POST", path, headers, body).await
}

/// One raw HTTP/1.1 request of any method (see [`post`]); `(status, body)`.
pub async fn request(node: &Node, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&node.http).await.expect("connect");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n", node.http, body.len());
    s.write_all(head.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// Every record (key, value; `None` = tombstone) of one partition of `topic`,
/// from the beginning to its high watermark, read with a group-less consumer
/// (blocking: call it on the blocking pool).
pub fn read_partition(brokers: &str, topic: &str, partition: i32) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use std::time::{Duration, Instant};
    let c: BaseConsumer = touchline_cluster::client_config(brokers, &[]).set("group.id", "touchline-tests-reader").create().expect("reader");
    let (_, high) = c.fetch_watermarks(topic, partition, Duration::from_secs(10)).expect("watermarks");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Beginning).expect("offset");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let until = Instant::now() + Duration::from_secs(30);
    // The end is the consume position, not the last record's offset: a
    // transactional topic ends with control records, which are never delivered.
    let at_end = |c: &BaseConsumer| {
        c.position().ok().and_then(|tpl| tpl.find_partition(topic, partition).and_then(|e| e.offset().to_raw())).is_some_and(|o| o >= high)
    };
    while high > 0 && Instant::now() < until {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((m.key().unwrap_or_default().to_vec(), m.payload().map(<[u8]>::to_vec))),
            Some(Err(e)) => panic!("read {topic}/{partition}: {e}"),
            None => {}
        }
        if at_end(&c) {
            return out;
        }
    }
    assert!(high == 0, "read {topic}/{partition}: high watermark {high} not reached in 30 s ({} records read)", out.len());
    out
}

/// Every node in `nodes` answers the standard queries over the whole range of
/// the generated dataset `ds` (its span plus a month) exactly like the batch
/// reference of `records`, with more than 50 rows compared on each.
pub async fn assert_nodes_match_dataset(nodes: &[&Node], records: &[GenRecord], ds: &touchline_node::gen::DatasetSpec) {
    let reference = crate::reference::build(&as_partitioned(records, ds.partitions), ds.partitions);
    let from = Ts::from_millis(ds.start_ms);
    let to = from.plus_secs((ds.span_days + 31) * 86_400);
    let queries = standard_queries(&reference.tenants(), from, to);
    for n in nodes {
        let rows = assert_matches_reference(n, &reference, &queries).await;
        assert!(rows > 50, "{}: too few rows compared ({rows})", n.spec.node_id);
    }
}

/// Debian's Chromium, which the browser tests drive.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The directory holding playwright-core (`$TOUCHLINE_UI_TEST`, default
/// `~/.cache/touchline-ui-test`, where `.ci/run` installs `tests/ui/package.json`);
/// a missing playwright-core or Chromium fails the test, never skips it.
pub fn playwright_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    let dir = std::env::var_os("TOUCHLINE_UI_TEST").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/touchline-ui-test"));
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run .ci/run, or `mkdir -p {0} && cp tests/ui/package.json {0} && npm install --prefix {0}`",
        dir.display()
    );
    assert!(PathBuf::from(CHROMIUM).exists(), "{CHROMIUM} is missing: `apt-get install chromium` (.ci/run installs it)");
    dir
}

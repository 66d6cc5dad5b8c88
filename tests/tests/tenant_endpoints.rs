//! Campaigns (status, spend, attributed revenue, ROAS), cohorts, segments,
//! variants, consent withdrawal and erasure (`DELETE customers/{id}` through
//! Kafka) on a small hand-made case whose answers are worked out below; after
//! erasure no byte of the person's identifiers is left in RocksDB.

use serde_json::{json, Value};
use std::time::Duration;
use touchline_node::client::request;
use touchline_node::gen::GenRecord;
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

const T: &str = "acme";
/// Monday 2026-11-02 10:00 UTC (ISO week start 2026-11-02).
const T0: i64 = 1_793_613_600_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Wednesday 2026-11-11 10:00 UTC, after every other event of the dataset.
const T9: i64 = T0 + 9 * DAY;

fn ev(id: &str, ty: &str, ts: i64, extra: Value) -> GenRecord {
    let mut m = json!({"event_id": id, "tenant_id": T, "event_type": ty, "timestamp": ts});
    m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    GenRecord { key: T.into(), value: serde_json::to_vec(&m).unwrap(), partition: None, valid: true }
}

fn touch(id: &str, ts: i64, cid: &str, channel: &str, campaign: &str) -> GenRecord {
    let url = format!("https://example.com/landing?utm_campaign={campaign}");
    ev(id, "touchpoint_interaction", ts, json!({"customer_id": cid, "touchpoints": {"channel": channel, "interaction_type": "click", "metadata": {"url": url}}}))
}

fn conversion(id: &str, ts: i64, cid: &str, user: Option<&str>, value: f64) -> GenRecord {
    let mut extra = json!({"customer_id": cid, "conversion_data": {"value": value, "currency": "USD"}});
    if let Some(u) = user {
        extra["user_id"] = json!(u);
    }
    ev(id, "conversion_event", ts, extra)
}

fn dataset() -> Vec<GenRecord> {
    vec![
        ev("k1", "campaign_launch", T0 - DAY, json!({"campaign_id": "spring", "campaign_name": "Spring", "performance_metrics": {"cost": 100.0, "impressions": 1000}})),
        ev("k2", "campaign_optimization", T0, json!({"campaign_id": "spring", "performance_metrics": {"cost": 50.0, "impressions": 500}})),
        ev("k3", "campaign_launch", T0 - DAY, json!({"campaign_id": "autumn", "performance_metrics": {"cost": 20.0}})),
        // A: email(spring) then search(autumn), converts 100: linear ½ / ½.
        touch("a1", T0, "c-a1", "email", "spring"),
        touch("a2", T0 + HOUR, "c-a1", "search", "autumn"),
        conversion("a3", T0 + 2 * HOUR, "c-a1", None, 100.0),
        ev("a4", "segment_update", T0, json!({"customer_id": "c-a1", "segments": ["vip"]})),
        // B: display(spring) on one device, converts 200 on another, linked by a login.
        touch("b1", T0 + DAY, "c-b1", "display", "spring"),
        ev("b2", "identify", T0 + DAY, json!({"customer_id": "c-b1", "user_id": "u-b"})),
        conversion("b3", T0 + DAY + HOUR, "c-b2", Some("u-b"), 200.0),
        // C: next week, never converts.
        touch("c1", T0 + 8 * DAY, "c-c1", "social", "autumn"),
        // D: withdraws consent before converting: the conversion is out.
        touch("d1", T0, "c-d1", "email", "spring"),
        ev("d2", "consent_update", T0 + HOUR / 2, json!({"customer_id": "c-d1", "consent": {"analytics": false}})),
        conversion("d3", T0 + HOUR, "c-d1", None, 50.0),
        // E: erased later through the HTTP API.
        touch("e1", T0, "c-e1", "video", "spring"),
        ev("e2", "identify", T0, json!({"customer_id": "c-e1", "user_id": "u-e", "context": {"ip_address": "10.9.9.9", "user_agent": "UA-E"}})),
        conversion("e3", T0 + HOUR, "c-e1", None, 70.0),
        ev("p1", "content_optimization", T0, json!({"content_variations": [{"variant_id": "v1", "performance_metrics": {"impressions": 100, "clicks": 5}}]})),
        // L: journey JL in order, past every event above; l3 arrives 2 h behind
        // the watermark l2 set (allowed lateness 1 h): late, so out of the
        // 5-second windows and in the roll-ups, like a late touch.
        ev("l1", "touchpoint_interaction", T9, json!({"customer_id": "c-l1", "journey_id": "JL", "touchpoints": {"channel": "email", "interaction_type": "click"}})),
        ev("l2", "touchpoint_interaction", T9 + 2 * HOUR, json!({"customer_id": "c-l2", "journey_id": "JL", "touchpoints": {"channel": "email", "interaction_type": "impression"}})),
        conversion("l3", T9 + 2_000, "c-l1", None, 7.0),
        conversion("l4", T9 + 2 * HOUR + 1_000, "c-l2", None, 5.0),
    ]
}

async fn get(node: &Node, path: &str) -> Value {
    let r = node.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json().unwrap()
}

fn campaign<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["campaigns"].as_array().unwrap().iter().find(|c| c["campaign_id"] == id).unwrap_or_else(|| panic!("campaign {id} missing: {v}"))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_cohorts_consent_and_erasure() {
    let broker = Broker::start().await;
    let topic = "ev-tenant";
    create_topics(&broker.addr, topic, 2).await;
    let data = dataset();
    touchline_node::gen::produce(&broker.addr, topic, &data, 0, &[]).await.expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(NodeSpec::new("tenant-1", &broker.addr, topic, &dir.path().join("n"))).await;
    assert!(node.wait_consumed(data.len() as i64, Duration::from_secs(120)).await, "not consumed");

    // Campaigns: spring = A ½ (50) + B 1 (200) + E 1 (70); spend 150.
    let v = get(&node, &format!("/v1/tenants/{T}/campaigns")).await;
    assert_eq!(v["to"], "9999-12-31T23:59:59.999999999Z", "all time ends in year 9999 (RFC 3339)");
    let spring = campaign(&v, "spring");
    assert_eq!(spring["status"], "optimized", "{spring}");
    assert!(close(&spring["spend"], 150.0) && close(&spring["reported"]["impressions"], 1500.0), "{spring}");
    assert!(close(&spring["attributed_conversions"], 2.5) && close(&spring["attributed_revenue"], 320.0), "{spring}");
    assert!(close(&spring["roas"], 320.0 / 150.0), "{spring}");
    let autumn = campaign(&v, "autumn");
    assert_eq!(autumn["status"], "launched");
    assert!(close(&autumn["attributed_revenue"], 50.0) && close(&autumn["roas"], 2.5), "{autumn}");
    let v = get(&node, &format!("/v1/tenants/{T}/campaigns?model=first_touch")).await;
    assert!(close(&campaign(&v, "spring")["attributed_conversions"], 3.0), "{v}");

    // Consent: D's conversion is out; its earlier touchpoint stays.
    let d = get(&node, &format!("/v1/tenants/{T}/customers/c-d1")).await;
    assert_eq!((d["touchpoints"].as_array().unwrap().len(), d["conversions"].as_array().unwrap().len()), (1, 0), "{d}");
    let a = get(&node, &format!("/v1/tenants/{T}/customers/c-a1")).await;
    assert_eq!(a["segments"], json!(["vip"]));
    let vars = get(&node, &format!("/v1/tenants/{T}/variants")).await;
    assert!(close(&vars["variants"][0]["impressions"], 100.0) && close(&vars["variants"][0]["ctr"], 0.05), "{vars}");

    // Journey windows: the late conversion l3 is out of the 5-second window
    // and in the hour roll-up; the on-time l4 is in both.
    let perf = |g: &str| format!("/v1/tenants/{T}/journeys/JL/performance?granularity={g}&from=2026-11-11T00:00:00Z&to=2026-11-12T00:00:00Z");
    let counts = |v: &Value| -> Vec<(String, u64, u64, f64)> {
        v["buckets"].as_array().unwrap().iter().map(|b| (b["start"].as_str().unwrap().to_string(), b["touches"].as_u64().unwrap(), b["conversions"].as_u64().unwrap(), b["revenue"].as_f64().unwrap())).collect()
    };
    let five = get(&node, &perf("5s")).await;
    let want = vec![("2026-11-11T10:00:00Z".to_string(), 1, 0, 0.0), ("2026-11-11T12:00:00Z".to_string(), 1, 1, 5.0)];
    assert_eq!(counts(&five), want, "{five}");
    let hour = get(&node, &perf("hour")).await;
    let want = vec![("2026-11-11T10:00:00Z".to_string(), 1, 1, 7.0), ("2026-11-11T12:00:00Z".to_string(), 1, 1, 5.0)];
    assert_eq!(counts(&hour), want, "{hour}");
    // 5-second buckets are kept 48 h (engine.window_5s_retention_hours) behind
    // the tenant's newest event time: an event three days later takes these
    // out of 5s answers, swept or not; the hour roll-up stays.
    let later = ev("z1", "consent_update", T9 + 3 * DAY, json!({"customer_id": "c-nobody", "consent": {"analytics": true}}));
    touchline_node::gen::produce(&broker.addr, topic, &[later], 0, &[]).await.expect("produce");
    let gone = wait_for(Duration::from_secs(60), || async { get(&node, &perf("5s")).await["buckets"].as_array().is_some_and(|b| b.is_empty()) }).await;
    assert!(gone, "5-second buckets behind the 5-second horizon still answer: {}", get(&node, &perf("5s")).await);
    assert_eq!(counts(&get(&node, &perf("hour")).await), want, "the roll-ups stay");

    // Erasure through the API, by the person's user_id-linked customer id.
    let r = request(&node.http, "DELETE", &format!("/v1/tenants/{T}/customers/c-e1"), Duration::from_secs(30)).await.unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json().unwrap()["status"], "accepted");
    let gone = wait_for(Duration::from_secs(60), || async { node.get(&format!("/v1/tenants/{T}/customers/u-e")).await.status == 404 }).await;
    assert!(gone, "erased person still answers");
    assert_eq!(node.get(&format!("/v1/tenants/{T}/customers/c-e1")).await.status, 404);
    let v = get(&node, &format!("/v1/tenants/{T}/campaigns")).await;
    assert!(close(&campaign(&v, "spring")["attributed_revenue"], 250.0), "{v}");
    let att = get(&node, &format!("/v1/tenants/{T}/attribution?from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z")).await;
    assert_eq!(att["conversions"], 4, "A, B and L's two remain: {att}");

    // Cohorts by ISO week of the first touchpoint × its channel.
    let v = get(&node, &format!("/v1/tenants/{T}/cohorts")).await;
    let rows: Vec<(String, String, u64, u64, u64, f64)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            let n = |k: &str| r[k].as_u64().unwrap();
            (s("cohort_start"), s("key"), n("persons"), n("converted_persons"), n("conversions"), r["revenue"].as_f64().unwrap())
        })
        .collect();
    let want = vec![
        ("2026-11-02T00:00:00Z".to_string(), "display".to_string(), 1, 1, 1, 200.0),
        ("2026-11-02T00:00:00Z".to_string(), "email".to_string(), 2, 1, 1, 100.0),
        ("2026-11-09T00:00:00Z".to_string(), "email".to_string(), 2, 2, 2, 12.0),
        ("2026-11-09T00:00:00Z".to_string(), "social".to_string(), 1, 0, 0, 0.0),
    ];
    assert_eq!(rows, want);
    let v = get(&node, &format!("/v1/tenants/{T}/cohorts?cohort=day&from=2026-11-03T00:00:00Z")).await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 3, "B's Tuesday, C's day and L's: {v}");
    let bad = node.get(&format!("/v1/tenants/{T}/cohorts?cohort=month")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("cohort"), "{}", bad.body);

    // No byte of the erased identifiers is left in any key or value.
    assert!(node.terminate(Duration::from_secs(30)).await, "node did not stop");
    assert_erased(&dir.path().join("n"));

    // A node that restores the partitions from the changelog alone (the
    // owner is gone: no snapshot) holds none of them either (issue 15, 4).
    // (A group of its own: Tansu does not let a static member's successor in.)
    let mut spec = NodeSpec::new("tenant-2", &broker.addr, topic, &dir.path().join("r"));
    spec.group = "g-ev-tenant-restored".into();
    let mut restored = Node::start(spec).await;
    assert!(restored.wait_consumed(data.len() as i64, Duration::from_secs(120)).await, "the restored node did not catch up");
    assert_eq!(restored.get(&format!("/v1/tenants/{T}/customers/u-e")).await.status, 404, "the erased person came back");
    let m = restored.get("/metrics").await.body;
    assert!(touchline_tests::cluster::metric(&m, "touchline_restore_records_total", "") > 0.0, "restored from the changelog:\n{m}");
    assert!(restored.terminate(Duration::from_secs(30)).await, "restored node did not stop");
    assert_erased(&dir.path().join("r"));
}

/// No key or value of the store at `path` holds an erased identifier, while
/// other persons' identifiers are there (the scan sees data).
fn assert_erased(path: &std::path::Path) {
    let store = touchline_storage::Store::open(path, &Default::default()).expect("reopen store");
    let mut leaks = Vec::new();
    store
        .scan(&[], &[0xff; 4], |k, v| {
            for needle in [&b"c-e1"[..], b"u-e"] {
                if k.windows(needle.len()).any(|w| w == needle) || v.windows(needle.len()).any(|w| w == needle) {
                    leaks.push(String::from_utf8_lossy(k).into_owned());
                }
            }
            true
        })
        .unwrap();
    assert!(leaks.is_empty(), "erased identifiers remain under keys {leaks:?}");
    // ...while the other persons' identifiers are still there (the scan sees data).
    let mut seen = 0;
    store.scan(&[], &[0xff; 4], |k, _| {
        seen += k.windows(4).any(|w| w == b"c-a1") as usize;
        true
    })
    .unwrap();
    assert!(seen > 0, "the scan found no identifier at all");
}

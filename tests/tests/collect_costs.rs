//! Cost import (`POST /v1/collect/costs`, issue 17.3) against a real node on
//! Tansu: journeys sent through the collector, a campaign event with a cost
//! delta, then three imports (CSV, JSON, CSV) that re-import days with other
//! numbers. The campaigns report's spend and ROAS equal the batch reference
//! built from the topic's records, and the hand-computed values; the same
//! records shuffled (re-keyed to a second tenant) give the same answer; a bad
//! file, a missing key or too many rows are refused and produce nothing.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::time::Duration;
use touchline_actors::domain::Ts;
use touchline_node::gen::{produce, GenRecord};
use touchline_tests::fixtures::{create_topics, end_offsets, enc, post, read_topic};
use touchline_tests::reference::{self, RefCampaign, RefQuery};
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

/// `base64("wk-acme:")`.
const BASIC: &str = "Basic d2stYWNtZTo=";
const FROM: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z
const TO: i64 = FROM + 5 * 86_400;

async fn get(node: &Node, path: &str) -> Value {
    let r = node.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json().unwrap()
}

async fn total(node: &Node) -> i64 {
    end_offsets(node).await.values().sum()
}

async fn import_csv(node: &Node, csv: &str) -> (u16, String) {
    post(node, "/v1/collect/costs", &[("Authorization", BASIC), ("Content-Type", "text/csv")], csv.as_bytes()).await
}

/// a1: paid search (spring) then buys for 300; a2: email (fall) then social
/// (spring), buys for 100. Linear: spring 300 + 50, fall 50.
fn journeys() -> Value {
    let page = |id: &str, who: &str, at: &str, q: &str| json!({"type": "page", "messageId": id, "anonymousId": who, "timestamp": at, "context": {"page": {"url": format!("https://shop.example/?{q}")}}});
    let buy = |id: &str, who: &str, at: &str, v: f64| json!({"type": "track", "messageId": id, "anonymousId": who, "event": "Order Completed", "timestamp": at, "properties": {"revenue": v, "currency": "USD"}});
    json!({"batch": [
        page("p1", "a1", "2026-12-01T10:00:00Z", "utm_source=google&utm_medium=cpc&utm_campaign=spring"),
        buy("o1", "a1", "2026-12-01T12:00:00Z", 300.0),
        page("p2", "a2", "2026-12-02T10:00:00Z", "utm_source=newsletter&utm_medium=email&utm_campaign=fall"),
        page("p3", "a2", "2026-12-02T11:00:00Z", "utm_source=facebook&utm_medium=social&utm_campaign=spring"),
        buy("o2", "a2", "2026-12-02T12:00:00Z", 100.0),
    ]})
}

fn campaign_event(tenant: &str) -> GenRecord {
    let v = json!({"event_id": "cmp-1", "tenant_id": tenant, "event_type": "campaign_launch", "timestamp": "2026-12-01T00:00:00Z",
                   "campaign_id": "spring", "performance_metrics": {"cost": 25, "impressions": 1000}});
    GenRecord { key: tenant.into(), value: serde_json::to_vec(&v).unwrap(), partition: None, valid: true }
}

/// The node's campaigns as the reference's rows.
fn node_rows(v: &Value) -> std::collections::BTreeMap<String, RefCampaign> {
    v["campaigns"].as_array().unwrap().iter().map(|c| {
        let row = RefCampaign {
            spend: c["spend"].as_f64().unwrap(),
            imported_days: c["imported"]["days"].as_u64().unwrap(),
            attributed_conversions: c["attributed_conversions"].as_f64().unwrap(),
            attributed_revenue: c["attributed_revenue"].as_f64().unwrap(),
            roas: c["roas"].as_f64(),
        };
        (c["campaign_id"].as_str().unwrap().to_string(), row)
    }).collect()
}

/// The node's `--retention-days 3`.
fn retention() -> reference::Retention {
    reference::Retention { default_days: 3, per_tenant: Default::default() }
}

fn path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/campaigns?model=linear&from={}&to={}&lookback_days=30", enc(Ts::new(FROM, 0)), enc(Ts::new(TO, 0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_supersede_by_import_time_in_any_order() {
    let broker = Broker::start().await;
    let (topic, partitions) = ("ev-costs", 2);
    create_topics(&broker.addr, topic, partitions).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[limits]\ncost_import_max_rows = 4\n").unwrap();
    let mut spec = NodeSpec::new("costs-1", &broker.addr, topic, &dir.path().join("n"));
    let flags = ["--config", config.to_str().unwrap(), "--write-key", "acme=wk-acme", "--write-key", "mirror=wk-mirror", "--retention-days", "3"];
    spec.extra.extend(flags.map(String::from));
    let node = Node::start(spec).await;
    assert!(wait_for(Duration::from_secs(60), || async { node.wait_consumed(0, Duration::from_secs(1)).await }).await, "node not ready");

    // Refused imports produce nothing.
    let header = "date,campaign_id,source,medium,cost,currency,impressions,clicks\n";
    let (s, b) = import_csv(&node, &format!("{header}2026-12-01,spring,google,cpc,100,USD,,\n2026-12-02,spring,google,cpc,x,USD,,\n")).await;
    assert_eq!((s, b.as_str()), (400, r#"{"error":{"code":"bad_request","message":"line 3, column 5 (`cost`): \"x\" is not a number"}}"#));
    let (s, _) = post(&node, "/v1/collect/costs", &[("Content-Type", "text/csv")], format!("{header}2026-12-01,spring,,,1,USD,,\n").as_bytes()).await;
    assert_eq!(s, 401);
    let (s, _) = post(&node, "/v1/collect/costs", &[("Authorization", "Basic d3JvbmM6"), ("Content-Type", "text/csv")], format!("{header}2026-12-01,spring,,,1,USD,,\n").as_bytes()).await;
    assert_eq!(s, 401, "an unknown key");
    let five: String = (1..=5).map(|d| format!("2026-12-0{d},spring,,,1,USD,,\n")).collect();
    let (s, b) = import_csv(&node, &format!("{header}{five}")).await;
    assert!(s == 413 && b.contains("cost_import_max_rows"), "{s} {b}");

    // Journeys and a campaign event (cost delta 25).
    let (s, b) = post(&node, "/v1/collect/batch", &[("Authorization", BASIC), ("Content-Type", "application/json")], &serde_json::to_vec(&journeys()).unwrap()).await;
    assert_eq!(s, 200, "{b}");
    produce(&broker.addr, topic, &[campaign_event("acme")], 0, &[]).await.expect("produce");
    // Import 1 (CSV), 2 (JSON: a day re-imported, a new day), 3 (CSV: another day re-imported).
    let (s, b) = import_csv(&node, &format!("{header}2026-12-01,spring,google,cpc,100,USD,5000,120\n2026-12-02,spring,google,cpc,50,USD,,\n2026-12-01,fall,newsletter,email,30,usd,,\n2026-12-02,fall,,,20,EUR,,\n")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["rows"], 4);
    let rows = json!({"writeKey": "wk-acme", "rows": [{"date": "2026-12-01", "campaign_id": "spring", "cost": 80, "currency": "USD"},
                                                      {"date": "2026-12-03", "campaign_id": "fall", "cost": 10.5, "currency": "USD", "clicks": 9}]});
    let (s, b) = post(&node, "/v1/collect/costs", &[("Content-Type", "application/json")], &serde_json::to_vec(&rows).unwrap()).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = import_csv(&node, &format!("{header}2026-12-02,spring,google,cpc,60,USD,,\n")).await;
    assert_eq!(s, 200, "{b}");
    let produced = 5 + 1 + 4 + 2 + 1;
    assert!(node.wait_consumed(produced, Duration::from_secs(120)).await, "never consumed {produced}");

    // The node equals the reference over the topic's records, and the hand values.
    let records: Vec<(i32, Vec<u8>)> = read_topic(&broker.addr, topic, &end_offsets(&node).await).into_iter().map(|r| (r.0, r.3)).collect();
    assert_eq!(records.len() as i64, produced);
    let q = RefQuery::new("acme", "linear", Ts::new(FROM, 0), Ts::new(TO, 0));
    let want = reference::build_with_retention(&records, partitions, &retention()).campaigns(&q);
    let got = get(&node, &path("acme")).await;
    assert_eq!(node_rows(&got), want, "{got}");
    let spring = &want["spring"];
    assert_eq!((spring.spend, spring.imported_days, spring.attributed_revenue, spring.roas), (25.0 + 80.0 + 60.0, 2, 350.0, Some(350.0 / 165.0)));
    let fall = &want["fall"];
    assert_eq!((fall.spend, fall.imported_days, fall.attributed_revenue), (30.0 + 10.5, 2, 50.0), "the EUR day is not USD spend");
    let fall_json = got["campaigns"].as_array().unwrap().iter().find(|c| c["campaign_id"] == "fall").unwrap();
    assert_eq!((fall_json["imported"]["other_currency_days"].as_u64(), fall_json["imported"]["clicks"].as_f64()), (Some(1), Some(9.0)));

    // The same records shuffled, as another tenant: the same answer.
    let mut mirror: Vec<GenRecord> = records
        .iter()
        .map(|(_, v)| {
            let mut e: Value = serde_json::from_slice(v).unwrap();
            e["tenant_id"] = json!("mirror");
            GenRecord { key: "mirror".into(), value: serde_json::to_vec(&e).unwrap(), partition: None, valid: true }
        })
        .collect();
    mirror.shuffle(&mut rand::rngs::StdRng::seed_from_u64(17));
    // Make sure the newest import of spring's 2026-12-01 comes before the oldest.
    let pos = |m: &[GenRecord], cost: &str| m.iter().position(|r| String::from_utf8_lossy(&r.value).contains(&format!("\"cost\":{cost},"))).unwrap();
    let (newer, older) = (pos(&mirror, "80.0"), pos(&mirror, "100.0"));
    if newer > older {
        mirror.swap(newer, older);
    }
    produce(&broker.addr, topic, &mirror, 0, &[]).await.expect("produce");
    assert!(node.wait_consumed(2 * produced, Duration::from_secs(120)).await, "never consumed the mirror");
    let mirror_records: Vec<(i32, Vec<u8>)> = mirror.iter().map(|r| (0, r.value.clone())).collect();
    let want_mirror = reference::build_with_retention(&mirror_records, partitions, &retention()).campaigns(&RefQuery { tenant: "mirror".into(), ..q.clone() });
    assert_eq!(want_mirror, want, "the reference is order-independent");
    assert_eq!(node_rows(&get(&node, &path("mirror")).await), want, "the node is order-independent");
    assert_eq!(total(&node).await, 2 * produced);

    // Re-importing a day changes spend again (the latest import wins), and no
    // import moved the retention horizon: with 3 days of retention, an import
    // time (today) as the newest event time would have expired a1's touchpoint
    // of December 1st.
    let (s, b) = import_csv(&node, &format!("{header}2026-12-01,spring,google,cpc,1,USD,,\n")).await;
    assert_eq!(s, 200, "{b}");
    assert!(node.wait_consumed(2 * produced + 1, Duration::from_secs(120)).await);
    let after = node_rows(&get(&node, &path("acme")).await);
    assert_eq!(after["spring"].spend, 25.0 + 1.0 + 60.0);
    let customer = get(&node, "/v1/tenants/acme/customers/a1").await;
    assert_eq!(customer["touchpoints"].as_array().map(Vec::len), Some(1), "{customer}");
}

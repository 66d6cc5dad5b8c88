//! The official Segment Node SDK (`@segment/analytics-node`, tests/sdk/) pointed
//! at a node (`host` = the node, `path` = `/v1/collect/batch`) sends page,
//! track, identify and screen calls; the attribution report and the customer
//! equal the values worked out by hand in tests/sdk/send.cjs, and re-sending
//! the same messageIds changes nothing. The SDK is installed by `.ci/run` into
//! `$TOUCHLINE_SEGMENT_SDK` (default `$HOME/.cache/touchline-segment-sdk`).

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{Broker, Node, NodeSpec};

fn sdk_dir() -> PathBuf {
    let dir = std::env::var_os("TOUCHLINE_SEGMENT_SDK").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/touchline-segment-sdk"));
    assert!(
        dir.join("node_modules/@segment/analytics-node").is_dir(),
        "the Segment Node SDK is not installed in {}: run .ci/run, or `npm install --prefix {0} $(pwd)/tests/sdk` … see .ci/run",
        dir.display()
    );
    dir
}

/// Runs tests/sdk/send.cjs against the node; panics with its output on failure.
async fn send_with_sdk(node: &Node) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sdk/send.cjs");
    let host = format!("http://{}", node.http);
    let out = tokio::process::Command::new("node").arg(script).arg(sdk_dir()).arg(host).arg("wk-sdk").output().await.expect("run node (Node.js)");
    assert!(out.status.success(), "SDK run failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

async fn get(node: &Node, path: &str) -> Value {
    let r = node.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json().unwrap()
}

const REPORT: &str = "/v1/tenants/acme/attribution?model=linear&group_by=channel&from=2026-12-01T00:00:00Z&to=2026-12-05T00:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_node_sdk_events_are_attributed() {
    let broker = Broker::start().await;
    let topic = "ev-collect-sdk";
    create_topics(&broker.addr, topic, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = NodeSpec::new("collect-sdk", &broker.addr, topic, &dir.path().join("n"));
    spec.extra.extend(["--write-key", "acme=wk-sdk"].map(String::from));
    let node = Node::start(spec).await;
    assert!(node.wait_consumed(0, Duration::from_secs(60)).await, "node not ready");

    send_with_sdk(&node).await;
    assert!(node.wait_consumed(6, Duration::from_secs(120)).await, "the SDK's 6 events were not consumed");
    // a1 (= u1): search then email, buys 80 → 40 / 40; a2: social, buys 20 (value, USD).
    let report = get(&node, REPORT).await;
    let mut rows: Vec<(String, f64)> = report["rows"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["value"].as_f64().unwrap())).collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rows, vec![("email".to_string(), 40.0), ("search".to_string(), 40.0), ("social".to_string(), 20.0)], "{report}");
    assert_eq!((report["conversions"].as_u64(), report["conversion_value"].as_f64()), (Some(2), Some(100.0)), "{report}");
    let a1 = get(&node, "/v1/tenants/acme/customers/sdk-a1").await;
    let kinds: Vec<&str> = a1["touchpoints"].as_array().unwrap().iter().filter_map(|t| t["interaction_type"].as_str()).collect();
    assert_eq!(kinds, vec!["view", "Newsletter Opened"], "{a1}");
    assert_eq!(a1["conversions"].as_array().map(Vec::len), Some(1), "{a1}");
    assert_eq!(get(&node, "/v1/tenants/acme/customers/sdk-u1").await["touchpoints"], a1["touchpoints"], "the identify linked sdk-u1 to sdk-a1");

    // The same messageIds again: consumed, deduplicated, nothing changes.
    send_with_sdk(&node).await;
    assert!(node.wait_consumed(12, Duration::from_secs(120)).await, "the re-sent events were not consumed");
    assert_eq!(get(&node, REPORT).await, report);
    assert_eq!(get(&node, "/v1/tenants/acme/customers/sdk-a1").await, a1);
}

//! Shared fixture steps: topics, producing a dataset, and comparing a node's
//! reports with the batch reference.

use crate::reference::{RefQuery, Reference};
use crate::sandbox::{json_close, Node};
use serde_json::Value;
use touchline_actors::domain::routing::partition_for;
use touchline_actors::domain::Ts;
use touchline_node::gen::GenRecord;

pub async fn create_topics(brokers: &str, topic: &str, partitions: i32) {
    touchline_cluster::admin::ensure_topic(brokers, &[], topic, partitions).await.expect("events topic");
    touchline_cluster::admin::ensure_topic(brokers, &[], &format!("{topic}.dlq"), partitions).await.expect("dlq topic");
}

/// `(partition, value)` in production order, for the reference.
pub fn as_partitioned(records: &[GenRecord], partitions: i32) -> Vec<(i32, Vec<u8>)> {
    records.iter().map(|r| (r.partition.unwrap_or_else(|| partition_for(&r.key, partitions)), r.value.clone())).collect()
}

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

/// The fields of a report that must equal the reference.
pub fn comparable(v: &Value) -> Value {
    serde_json::json!({
        "conversions": v["conversions"], "conversion_value": v["conversion_value"],
        "currency": v["currency"], "rows": v["rows"],
    })
}

/// Asserts every query answers like the reference; returns how many rows compared.
pub async fn assert_matches_reference(node: &Node, reference: &Reference, queries: &[RefQuery]) -> usize {
    let mut rows = 0;
    for q in queries {
        let r = node.get(&query_path(q)).await;
        assert_eq!(r.status, 200, "{} -> {}", query_path(q), r.body);
        let got = comparable(&r.json().expect("json"));
        let want = comparable(&reference.attribution(q));
        assert!(json_close(&got, &want, 1e-9), "{}\n node: {got}\n  ref: {want}", query_path(q));
        rows += got["rows"].as_array().map_or(0, Vec::len);
    }
    rows
}

//! Reading a cluster from outside, for the multi-node tests: the `/v1/cluster`
//! view, metric sums, "settled" (every member alive, every partition active at
//! its end offset) and the records consumed so far; and the spec of a node that
//! joins such a cluster.

use crate::sandbox::{Broker, BrokerKind, Node, NodeSpec};
use serde_json::Value;

/// Node `id` of a multi-node test, its data under `dir/id`, then `extra` flags.
/// On Apache Kafka the node keeps its default group configuration
/// (cooperative-sticky, static membership with `group.instance.id` = node id).
/// On Tansu — compatibility for a broker whose coordinator breaks cooperative
/// rebalances and static membership (README, Group assignment) — the eager
/// `roundrobin` assignment and no static membership.
pub fn multi_node_spec(broker: &Broker, topic: &str, dir: &std::path::Path, id: &str, extra: &[&str]) -> NodeSpec {
    let mut s = NodeSpec::new(id, &broker.addr, topic, &dir.join(id));
    let tansu: &[&str] = match broker.kind {
        BrokerKind::Kafka => &[],
        BrokerKind::Tansu => &["--kafka-property", "partition.assignment.strategy=roundrobin", "--kafka-property", "group.instance.id="],
    };
    s.extra = tansu.iter().chain(extra).map(|a| a.to_string()).collect();
    s
}

/// A node's `/v1/cluster` view, if it answers.
pub async fn view(node: &Node) -> Option<Value> {
    touchline_node::client::get(&node.http, "/v1/cluster").await.ok().and_then(|r| r.json())
}

/// The sum of a metric's series whose label set contains `label` (all with "").
pub fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every node sees `ids` alive and nothing else, every partition active at its
/// end offset, and `total` records consumed.
pub fn settled(v: &Value, ids: &[&str], partitions: usize, total: i64) -> bool {
    let alive: Vec<&str> = v["members"].as_array().into_iter().flatten().filter(|m| m["alive"] == true).filter_map(|m| m["node_id"].as_str()).collect();
    let mut want: Vec<&str> = ids.to_vec();
    want.sort();
    let mut got = alive.clone();
    got.sort();
    let Some(parts) = v["partitions"].as_array() else { return false };
    let consumed: i64 = parts.iter().filter_map(|p| p["consumed_offset"].as_i64()).sum();
    got == want
        && parts.len() == partitions
        && parts.iter().all(|p| p["state"] == "active" && p["end_offset"].as_i64().is_some() && p["end_offset"] == p["consumed_offset"])
        && consumed >= total
}

pub async fn consumed(nodes: &[&Node]) -> i64 {
    let mut best = 0;
    for n in nodes {
        if let Some(v) = view(n).await {
            let c: i64 = v["partitions"].as_array().into_iter().flatten().filter_map(|p| p["consumed_offset"].as_i64()).sum();
            best = best.max(c);
        }
    }
    best
}


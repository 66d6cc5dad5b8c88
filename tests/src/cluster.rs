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

/// Waits until every node of `nodes` sees the cluster [`settled`]; `false` on deadline.
pub async fn wait_settled(nodes: &[&Node], ids: &[&str], partitions: usize, total: i64, deadline: std::time::Duration) -> bool {
    crate::sandbox::wait_for(deadline, || async {
        let mut all = true;
        for n in nodes {
            all &= view(n).await.is_some_and(|v| settled(&v, ids, partitions, total));
        }
        all
    })
    .await
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


/// Waits until `node` owns an active partition (it joined and restored one); `false` on deadline.
pub async fn wait_owns_active(node: &Node, deadline: std::time::Duration) -> bool {
    let id = node.spec.node_id.as_str();
    crate::sandbox::wait_for(deadline, || async {
        view(node).await.is_some_and(|v| v["partitions"].as_array().is_some_and(|ps| ps.iter().any(|p| p["owner"] == id && p["state"] == "active")))
    })
    .await
}

/// Produces `records` to `topic` at `rate` records/s (0: at once) in a task.
pub fn produce_in_background(addr: &str, topic: &'static str, records: Vec<touchline_node::gen::GenRecord>, rate: u64) -> tokio::task::JoinHandle<Result<usize, touchline_node::gen::GenError>> {
    let addr = addr.to_string();
    tokio::spawn(async move { touchline_node::gen::produce(&addr, topic, &records, rate, &[]).await })
}

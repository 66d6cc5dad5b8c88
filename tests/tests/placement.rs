//! Placement by load (`cluster.placement = "load"`), on a skewed multi-tenant
//! dataset (Zipf-sized tenants): three nodes consume while the dataset is
//! still being produced, a fourth joins and one is stopped with SIGTERM. Once
//! everything is consumed, every surviving node answers every standard report
//! exactly like the batch reference, and the placement spreads the load: the
//! busiest node's share of the records is below a bound derived from the data
//! — halfway between what a balanced placement reaches and what placement by
//! count (round robin, partition p on node p mod n) gives, so placement by
//! count fails it.
//!
//! Apache Kafka by default (`TOUCHLINE_TEST_BROKER`); the consumer joins no
//! group in this mode, so the nodes need no broker-specific group settings.

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use touchline_node::gen::{generate, produce, DatasetSpec};
use touchline_tests::cluster::{produce_in_background, wait_owns_active, consumed, metric, multi_node_spec, view, wait_settled};
use touchline_tests::fixtures::{as_partitioned, assert_matches_reference, create_topics, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

/// `cluster.placement_threshold` of the nodes (the default).
const THRESHOLD: f64 = 1.15;

fn spec(broker: &Broker, topic: &str, dir: &std::path::Path, id: &str) -> NodeSpec {
    let config = dir.join("node.toml");
    let toml = format!("[cluster]\nplacement = \"load\"\nplacement_threshold = {THRESHOLD}\nplacement_persist_ms = 3000\nplacement_max_moves = 2\n");
    std::fs::write(&config, toml).expect("config");
    multi_node_spec(broker, topic, dir, id, &["--snapshot-min-records", "1", "--config", &config.display().to_string()])
}

/// Each partition's share of the records.
fn shares(partitioned: &[(i32, Vec<u8>)], partitions: i32) -> Vec<f64> {
    let mut n = vec![0.0; partitions as usize];
    for (p, _) in partitioned {
        n[*p as usize] += 1.0;
    }
    let total: f64 = n.iter().sum();
    n.into_iter().map(|c| c / total).collect()
}

/// The busiest node's share under `owner` (partition → node).
fn busiest(shares: &[f64], owner: impl Fn(usize) -> String) -> f64 {
    let mut per: BTreeMap<String, f64> = BTreeMap::new();
    for (p, s) in shares.iter().enumerate() {
        *per.entry(owner(p)).or_default() += s;
    }
    per.values().copied().fold(0.0, f64::max)
}

/// The busiest node's share under a greedy balanced placement (heaviest
/// partition first onto the least-loaded node) of `nodes` nodes.
fn balanced(shares: &[f64], nodes: usize) -> f64 {
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|a, b| shares[*b].total_cmp(&shares[*a]));
    let mut load = vec![0.0f64; nodes];
    for p in order {
        let i = (0..nodes).min_by(|a, b| load[*a].total_cmp(&load[*b])).unwrap_or(0);
        load[i] += shares[p];
    }
    load.into_iter().fold(0.0, f64::max)
}

/// Partition → owner in a `/v1/cluster` view (every partition owned).
fn owners(v: &Value) -> Option<BTreeMap<usize, String>> {
    v["partitions"].as_array()?.iter().map(|p| Some((p["partition"].as_u64()? as usize, p["owner"].as_str()?.to_string()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_placement_spreads_skewed_tenants_through_a_join_and_a_leave() {
    let broker = Broker::start_multi_node().await;
    let (partitions, topic) = (12, "ev-placement");
    let spec_ds = DatasetSpec { seed: 53, tenants: 16, persons: 1600, partitions, tenant_skew: 1.0, ..DatasetSpec::default() };
    let records = generate(&spec_ds);
    let partitioned = as_partitioned(&records, partitions);
    let total = touchline_tests::fixtures::offsets_after(&records, partitions);
    let shares = shares(&partitioned, partitions);
    let nodes = 3;
    let by_count = busiest(&shares, |p| (p % nodes).to_string());
    let even = (THRESHOLD / nodes as f64).max(balanced(&shares, nodes));
    let bound = (even + by_count) / 2.0;
    eprintln!("shares {shares:.3?}; busiest node by count {by_count:.3}, balanced {even:.3}, bound {bound:.3}");
    assert!(by_count > even + 0.04, "the dataset is not skewed enough for the test to mean anything: by count {by_count:.3}, balanced {even:.3}");

    create_topics(&broker.addr, topic, partitions).await;
    let dir = tempfile::tempdir().unwrap();
    let third = records.len() / 3;
    let sent = produce(&broker.addr, topic, &records[..third], 0, &[]).await.expect("produce");
    assert_eq!(sent, third);
    let (n1, n2, n3) = tokio::join!(
        Node::start(spec(&broker, topic, dir.path(), "n1")),
        Node::start(spec(&broker, topic, dir.path(), "n2")),
        Node::start(spec(&broker, topic, dir.path(), "n3"))
    );
    let mut n2 = n2;
    let first = wait_for(Duration::from_secs(120), || async { consumed(&[&n1, &n2, &n3]).await >= third as i64 }).await;
    assert!(first, "the first third was not consumed: {:?}", view(&n1).await);

    // During ingest: n4 joins, then n2 is stopped with SIGTERM.
    let producing = produce_in_background(&broker.addr, topic, records[third..].to_vec(), 1500);
    let n4 = Node::start(spec(&broker, topic, dir.path(), "n4")).await;
    let joined = wait_owns_active(&n4, Duration::from_secs(60)).await;
    assert!(joined, "n4 never owned an active partition: {:?}", view(&n4).await);
    assert!(n2.terminate(Duration::from_secs(60)).await, "n2 did not stop on SIGTERM");
    let sent = producing.await.expect("producer task").expect("produce");
    assert_eq!(sent, records.len() - third);

    let survivors = [&n1, &n3, &n4];
    let ids = ["n1", "n3", "n4"];
    let settled = wait_settled(&survivors, &ids, partitions as usize, total, Duration::from_secs(240)).await;
    assert!(settled, "the cluster did not settle with every record consumed: {:#?}", view(&n1).await);

    // The placement spreads the load (moves for balance follow a persistent
    // imbalance) and comes to rest: its epoch stays for 3 persist periods.
    let last = std::sync::Mutex::new((1.0f64, None::<(u64, std::time::Instant)>));
    let (shares_ref, last_ref, n1_ref) = (&shares, &last, &n1);
    let spread = wait_for(Duration::from_secs(150), || async move {
        let Some(v) = view(n1_ref).await else { return false };
        let (Some(o), Some(epoch)) = (owners(&v), v["placement_epoch"].as_u64()) else { return false };
        if o.len() != partitions as usize {
            return false;
        }
        let b = busiest(shares_ref, |p| o[&p].clone());
        let mut l = last_ref.lock().unwrap();
        let since = match l.1 {
            Some((e, at)) if e == epoch => at,
            _ => std::time::Instant::now(),
        };
        *l = (b, Some((epoch, since)));
        b < bound && since.elapsed() >= Duration::from_secs(9)
    })
    .await;
    let (busiest_share, at_rest) = *last.lock().unwrap();
    assert!(spread, "the busiest node carries {busiest_share:.3} of the records (bound {bound:.3}, by count {by_count:.3}; plan {at_rest:?}): {:#?}", view(&n1).await);
    let epoch = at_rest.map(|(e, _)| e);
    eprintln!("at rest: plan epoch {epoch:?}, busiest node {busiest_share:.3} of the records (by count {by_count:.3}, bound {bound:.3})");
    let settled = wait_settled(&survivors, &ids, partitions as usize, total, Duration::from_secs(120)).await;
    assert!(settled, "the cluster did not settle after the load moves: {:#?}", view(&n1).await);

    let reference = reference::build(&partitioned, partitions);
    let from = touchline_actors::domain::Ts::from_millis(spec_ds.start_ms);
    let to = from.plus_secs((spec_ds.span_days + 31) * 86_400);
    let queries = standard_queries(&reference.tenants(), from, to);
    for n in survivors {
        let rows = assert_matches_reference(n, &reference, &queries).await;
        assert!(rows > 50, "{}: too few rows compared ({rows})", n.spec.node_id);
        let m = n.get("/metrics").await.body;
        assert!(metric(&m, "touchline_rebalances_total", "") > 0.0, "{} never followed a plan", n.spec.node_id);
        assert_eq!(view(n).await.and_then(|v| v["placement_epoch"].as_u64()), epoch, "{}: the plan moved while the answers were compared", n.spec.node_id);
    }
}

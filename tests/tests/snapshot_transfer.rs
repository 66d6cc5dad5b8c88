//! Snapshot transfer between real nodes (Apache Kafka by default, node processes): node A
//! consumes the first half of a dataset with no standbys anywhere; node B joins
//! with an empty data directory and takes half of the partitions. B must restore
//! each of them from A's RocksDB snapshot (the state A still holds after handing
//! the partition off), not by reading the changelog; then both consume the
//! second half, and both answer every standard report exactly like the batch
//! reference — a snapshot missing a key, or a checkpoint out of step with its
//! state, would show as a lost or double-counted event there.

use std::time::Duration;
use touchline_node::gen::{generate, produce, DatasetSpec};
use touchline_tests::cluster::{multi_node_spec, metric, settled, view};
use touchline_tests::fixtures::{assert_nodes_match_dataset, create_topics};
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

fn spec(broker: &Broker, topic: &str, dir: &std::path::Path, id: &str) -> NodeSpec {
    multi_node_spec(broker, topic, dir, id, &["--standby-replicas", "0", "--snapshot-min-records", "1"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joining_node_restores_from_a_peer_snapshot_and_stays_exact() {
    let broker = Broker::start_multi_node().await;
    let (partitions, topic) = (4, "ev-snapshot");
    let ds = DatasetSpec { seed: 61, tenants: 10, persons: 900, partitions, ..DatasetSpec::default() };
    let records = generate(&ds);
    let half = records.len() / 2;
    create_topics(&broker.addr, topic, partitions).await;
    let dir = tempfile::tempdir().unwrap();

    let sent = produce(&broker.addr, topic, &records[..half], 0, &[]).await.expect("produce");
    assert_eq!(sent, half);
    let a = Node::start(spec(&broker, topic, dir.path(), "a")).await;
    assert!(a.wait_consumed(half as i64, Duration::from_secs(120)).await, "A did not consume the first half: {:?}", view(&a).await);

    let b = Node::start(spec(&broker, topic, dir.path(), "b")).await;
    let ids = ["a", "b"];
    let both = wait_for(Duration::from_secs(120), || async {
        view(&b).await.is_some_and(|v| settled(&v, &ids, partitions as usize, half as i64) && v["partitions"].as_array().unwrap().iter().any(|p| p["owner"] == "b"))
    })
    .await;
    assert!(both, "A and B did not settle with B owning partitions: {:#?}", view(&b).await);

    let mb = b.get("/metrics").await.body;
    let ma = a.get("/metrics").await.body;
    let owned_by_b = view(&b).await.unwrap()["partitions"].as_array().unwrap().iter().filter(|p| p["owner"] == "b").count() as f64;
    assert_eq!(metric(&mb, "touchline_restores_total", "source=\"snapshot\""), owned_by_b, "every partition B owns came from a snapshot:\n{mb}");
    assert_eq!(metric(&mb, "touchline_restores_total", "source=\"changelog\""), 0.0);
    assert_eq!(metric(&mb, "touchline_restores_total", "source=\"replay\""), 0.0);
    assert_eq!(metric(&mb, "touchline_snapshot_errors_total", ""), 0.0);
    let received = metric(&mb, "touchline_snapshot_bytes_total", "direction=\"received\"");
    assert!(received > 0.0 && metric(&ma, "touchline_snapshot_bytes_total", "direction=\"sent\"") >= received, "A sent what B received:\n{ma}");
    assert_eq!(metric(&mb, "touchline_events_consumed_total", ""), 0.0, "B read events before any new one was produced: a replay");

    let rest = produce(&broker.addr, topic, &records[half..], 0, &[]).await.expect("produce");
    assert_eq!(rest, records.len() - half);
    let total = touchline_tests::fixtures::offsets_after(&records, partitions);
    for n in [&a, &b] {
        let ok = wait_for(Duration::from_secs(120), || async { view(n).await.is_some_and(|v| settled(&v, &ids, partitions as usize, total)) }).await;
        assert!(ok, "{} did not settle on every record: {:#?}", n.spec.node_id, view(n).await);
    }
    assert_nodes_match_dataset(&[&a, &b], &records, &ds).await;
}

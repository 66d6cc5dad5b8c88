//! Kill -9 a node mid-ingest, restart it on the same data directory: once the
//! topic is consumed, every report equals the batch reference — nothing lost,
//! nothing applied twice. And a static member bounced with SIGTERM keeps its
//! partitions. Both on one Apache Kafka broker by default (static membership).

use std::time::Duration;
use touchline_node::gen::{generate, DatasetSpec};
use touchline_tests::fixtures::{as_partitioned, assert_matches_reference, assert_nodes_match_dataset, create_topics, offsets_after, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

async fn consumed(node: &Node) -> i64 {
    match touchline_node::client::get(&node.http, "/v1/cluster").await.ok().and_then(|r| r.json()) {
        Some(v) => v["partitions"].as_array().into_iter().flatten().map(|p| p["consumed_offset"].as_i64().unwrap_or(0)).sum(),
        None => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_mid_ingest_then_restart_equals_reference() {
    let broker = Broker::shared_multi_node().await;
    let partitions = 3;
    let spec = DatasetSpec { seed: 23, tenants: 3, persons: 1500, partitions, ..DatasetSpec::default() };
    let records = generate(&spec);
    let total = records.len() as i64;
    create_topics(&broker.addr, "ev-restart", partitions).await;
    touchline_node::gen::produce(&broker.addr, "ev-restart", &records, 0, &[]).await.expect("produce");

    let dir = tempfile::tempdir().unwrap();
    let spec_node = NodeSpec::new("restart-1", &broker.addr, "ev-restart", &dir.path().join("n"));
    let mut node = Node::start(spec_node.clone()).await;
    let started = wait_for(Duration::from_secs(120), || {
        let n = &node;
        async move { consumed(n).await > total / 10 }
    })
    .await;
    assert!(started, "node made no progress");
    let at_kill = consumed(&node).await;
    node.kill();
    assert!(at_kill < total, "node finished before the kill ({at_kill}/{total}); enlarge the dataset");

    let node = Node::start(spec_node).await;
    assert!(node.wait_consumed(offsets_after(&records, partitions), Duration::from_secs(240)).await, "restarted node did not catch up");
    let reference = reference::build(&as_partitioned(&records, partitions), partitions);
    let from = touchline_actors::domain::Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    let rows = assert_matches_reference(&node, &reference, &standard_queries(&reference.tenants(), from, to)).await;
    assert!(rows > 50);
    // Duplicates were recognised as such, not double counted: applied == accepted unique.
    let metrics = node.get("/metrics").await.body;
    assert!(metrics.contains("touchline_events_applied_total"), "metrics exported");
    // Partition state skips RocksDB's WAL (storage.replicated_wal = false): the
    // kill lost the unflushed memtables (this dataset never fills one), and the
    // restarted node read that state back from the changelog (restore or
    // standby tail) — at least one changelog record per event applied before
    // the kill — instead of replaying events or trusting stale state. (A
    // partition that had committed nothing yet is replayed, which is right.)
    let reread = touchline_tests::cluster::metric(&metrics, "touchline_restore_records_total", "");
    assert!(reread >= at_kill as f64, "only {reread} changelog records re-read after a kill at {at_kill} events:\n{metrics}");
}

/// Partitions `node_id` owns in a `/v1/cluster` view.
fn owned_by(v: &serde_json::Value, node_id: &str) -> Vec<i64> {
    v["partitions"].as_array().into_iter().flatten().filter(|p| p["owner"] == node_id).filter_map(|p| p["partition"].as_i64()).collect()
}

/// A static member (`group.instance.id` = node id, the default) stopped with
/// SIGTERM and started again within the session timeout gets its partitions
/// back without a rebalance: the other node never takes them over, and the
/// restarted node finds its flushed local state current — no snapshot, no
/// changelog record read. On Apache Kafka whatever `TOUCHLINE_TEST_BROKER`
/// says: Tansu's coordinator does not keep a static member's assignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_member_restarted_within_the_session_timeout_keeps_its_partitions() {
    use touchline_tests::cluster::{metric, settled, view};
    let broker = Broker::shared_kafka().await;
    let (partitions, topic) = (4, "ev-bounce");
    let ds = DatasetSpec { seed: 71, tenants: 8, persons: 400, partitions, ..DatasetSpec::default() };
    let records = generate(&ds);
    let half = records.len() / 2;
    create_topics(&broker.addr, topic, partitions).await;
    touchline_node::gen::produce(&broker.addr, topic, &records[..half], 0, &[]).await.expect("produce");
    let dir = tempfile::tempdir().unwrap();
    // No standbys: a standby tails its peer's changelog, which would count as
    // changelog records read here.
    let spec = |id: &str| NodeSpec { extra: vec!["--standby-replicas".into(), "0".into()], ..NodeSpec::new(id, &broker.addr, topic, &dir.path().join(id)) };
    let (a, b) = tokio::join!(Node::start(spec("a")), Node::start(spec("b")));
    let mut b = b;
    let ids = ["a", "b"];
    let first = offsets_after(&records[..half], partitions);
    let ok = wait_for(Duration::from_secs(120), || async {
        view(&a).await.is_some_and(|v| settled(&v, &ids, partitions as usize, first) && !owned_by(&v, "a").is_empty() && !owned_by(&v, "b").is_empty())
    })
    .await;
    assert!(ok, "a and b did not settle: {:#?}", view(&a).await);
    let b_owned = owned_by(&view(&a).await.unwrap(), "b");
    let a_rebalances = metric(&a.get("/metrics").await.body, "touchline_rebalances_total", "");

    // The bounce: SIGTERM, then the same node id and data directory at once
    // (well within the 6 s session timeout).
    assert!(b.terminate(Duration::from_secs(30)).await, "b did not stop on SIGTERM");
    let b = Node::start(b.spec.clone()).await;
    touchline_node::gen::produce(&broker.addr, topic, &records[half..], 0, &[]).await.expect("produce");
    let total = offsets_after(&records, partitions);
    for n in [&a, &b] {
        let ok = wait_for(Duration::from_secs(120), || async { view(n).await.is_some_and(|v| settled(&v, &ids, partitions as usize, total)) }).await;
        assert!(ok, "{} did not settle on every record: {:#?}", n.spec.node_id, view(n).await);
    }
    assert_eq!(owned_by(&view(&b).await.unwrap(), "b"), b_owned, "b got other partitions back");
    let (ma, mb) = (a.get("/metrics").await.body, b.get("/metrics").await.body);
    assert_eq!(metric(&ma, "touchline_rebalances_total", ""), a_rebalances, "a saw a rebalance while b bounced:\n{ma}");
    assert_eq!(metric(&mb, "touchline_restores_total", "source=\"local\""), b_owned.len() as f64, "b restored from local state:\n{mb}");
    assert_eq!(metric(&mb, "touchline_restore_records_total", ""), 0.0, "b read changelog records:\n{mb}");
    assert_eq!(metric(&mb, "touchline_snapshot_bytes_total", "direction=\"received\""), 0.0, "b fetched a snapshot:\n{mb}");

    assert_nodes_match_dataset(&[&a, &b], &records, &ds).await;
}

/// A replacement started with the same node id (static member
/// `group.instance.id`) while the old process is frozen (SIGSTOP) takes its
/// partitions over; the broker fences the old member. Once thawed (SIGCONT),
/// the old process steps down — it exits instead of living on as a zombie
/// that serves stale answers and claims partitions in its heartbeats — and
/// the replacement answers exactly like the batch reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fenced_static_member_steps_down() {
    let broker = Broker::shared_kafka().await;
    let (partitions, topic) = (3, "ev-fenced");
    let ds = DatasetSpec { seed: 83, tenants: 4, persons: 300, partitions, ..DatasetSpec::default() };
    let records = generate(&ds);
    let half = records.len() / 2;
    create_topics(&broker.addr, topic, partitions).await;
    touchline_node::gen::produce(&broker.addr, topic, &records[..half], 0, &[]).await.expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let old_spec = NodeSpec::new("same", &broker.addr, topic, &dir.path().join("old"));
    let mut old = Node::start(old_spec.clone()).await;
    assert!(old.wait_consumed(offsets_after(&records[..half], partitions), Duration::from_secs(120)).await, "the old process did not consume the first half");

    let signal = |sig: &str, pid: u32| assert!(std::process::Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success(), "kill {sig}");
    signal("-STOP", old.pid());
    let new = Node::start(NodeSpec { data_dir: dir.path().join("new"), ..old_spec }).await;
    touchline_node::gen::produce(&broker.addr, topic, &records[half..], 0, &[]).await.expect("produce");
    let total = offsets_after(&records, partitions);
    assert!(new.wait_consumed(total, Duration::from_secs(120)).await, "the replacement did not take over and consume everything");

    signal("-CONT", old.pid());
    let exited = wait_for(Duration::from_secs(60), || {
        let exited = old.try_exit().is_some();
        async move { exited }
    })
    .await;
    assert!(exited, "the fenced old process still runs 60 s after SIGCONT");

    assert_nodes_match_dataset(&[&new], &records, &ds).await;
}

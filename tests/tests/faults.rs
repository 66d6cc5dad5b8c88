//! Faults against real processes: the node's disk fills up (its data dir on a
//! tiny tmpfs) and later grows again; the Kafka broker is killed and restarted
//! mid-ingest. In both cases nothing is lost, nothing is poisoned, and once
//! everything is consumed every report equals the batch reference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use touchline_node::gen::{generate, DatasetSpec, GenRecord};
use touchline_tests::fixtures::{as_partitioned, offsets_after, assert_matches_reference, create_topics, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(path).output().expect("run mount");
        assert!(
            out.status.success(),
            "this test needs root (CAP_SYS_ADMIN) to mount a tmpfs as the node's full disk: mount -t tmpfs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(path.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).output().expect("run mount");
        assert!(out.status.success(), "remount tmpfs: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Part {
    consumed: i64,
    end: Option<i64>,
    storage_error: Option<String>,
}

/// Every partition's progress and storage error from the node's `/v1/cluster`.
async fn partitions(node: &Node) -> BTreeMap<i64, Part> {
    let v = node.get("/v1/cluster").await.json().expect("cluster json");
    v["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let part = Part {
                consumed: p["consumed_offset"].as_i64().unwrap_or(-1),
                end: p["end_offset"].as_i64(),
                storage_error: p["storage_error"].as_str().map(str::to_string),
            };
            (p["partition"].as_i64().unwrap(), part)
        })
        .collect()
}

fn offsets(m: &BTreeMap<i64, Part>) -> Vec<(i64, i64)> {
    m.iter().map(|(p, x)| (*p, x.consumed)).collect()
}

/// The value of an unlabelled (or exactly labelled) series in `/metrics`.
async fn metric(node: &Node, series: &str) -> f64 {
    let body = node.get("/metrics").await.body;
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

const POISON: &str = "touchline_events_rejected_total{reason=\"poison\"}";

/// Compares every standard report of `node` with the batch reference of `records`.
async fn assert_reports_equal_reference(node: &Node, records: &[GenRecord], spec: &DatasetSpec) {
    let reference = reference::build(&as_partitioned(records, spec.partitions), spec.partitions);
    let tenants = reference.tenants();
    let from = touchline_actors::domain::Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    let rows = assert_matches_reference(node, &reference, &standard_queries(&tenants, from, to)).await;
    assert!(rows > 50, "too few rows compared: {rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_stalls_without_poison_or_progress_and_recovers_when_space_returns() {
    let broker = Broker::start().await;
    let topic = "ev-full";
    let spec = DatasetSpec { seed: 23, tenants: 2, persons: 2500, partitions: 2, ..DatasetSpec::default() };
    let records = generate(&spec);
    create_topics(&broker.addr, topic, spec.partitions).await;
    let sent = touchline_node::gen::produce(&broker.addr, topic, &records, 0, &[]).await.expect("produce");
    assert_eq!(sent, records.len());

    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("disk"), "3m");
    let node = Node::start(NodeSpec::new("full-1", &broker.addr, topic, &disk.0.join("db"))).await;

    // The stall signal: every partition that still has records to apply reports a storage error.
    let stalled = wait_for(Duration::from_secs(120), || async {
        let ps = partitions(&node).await;
        !ps.is_empty() && ps.values().all(|x| x.storage_error.is_some() || x.end == Some(x.consumed))
    })
    .await;
    let ps = partitions(&node).await;
    assert!(stalled, "no partition reported a storage error on the full disk: {ps:?}");
    let errors = metric(&node, "touchline_storage_errors_total").await;
    assert!(errors >= 1.0, "storage error counter: {errors}");
    let ready = node.get("/health/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("storage"), "{}", ready.body);

    // It keeps retrying (the counter grows) while no offset moves.
    let retried = wait_for(Duration::from_secs(60), || async { metric(&node, "touchline_storage_errors_total").await >= errors + 3.0 }).await;
    assert!(retried, "no retries while stalled");
    let still = partitions(&node).await;
    assert_eq!(offsets(&ps), offsets(&still), "an offset moved while the disk was full");
    assert!(still.values().any(|x| x.storage_error.is_some() && x.end.is_none_or(|e| e > x.consumed)), "the disk never filled: {still:?}");
    assert_eq!(metric(&node, POISON).await, 0.0, "a storage failure poisoned records");

    // Space returns (RocksDB's recovery wants a write buffer's worth free): the node catches up by itself.
    disk.resize("256m");
    assert!(node.wait_consumed(offsets_after(&records, spec.partitions), Duration::from_secs(180)).await, "did not catch up: {:?}", partitions(&node).await);
    assert!(partitions(&node).await.values().all(|x| x.storage_error.is_none()), "storage error still reported after recovery");
    assert_eq!(node.get("/health/ready").await.status, 200);
    assert_eq!(metric(&node, POISON).await, 0.0, "a storage failure poisoned records");
    assert_reports_equal_reference(&node, &records, &spec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restart_mid_ingest_loses_and_doubles_nothing() {
    let mut broker = Broker::start_persistent().await;
    let topic = "ev-restart";
    let spec = DatasetSpec { seed: 31, tenants: 2, persons: 300, partitions: 2, ..DatasetSpec::default() };
    let records = generate(&spec);
    let (first, second) = records.split_at(records.len() / 2);
    create_topics(&broker.addr, topic, spec.partitions).await;
    assert_eq!(touchline_node::gen::produce(&broker.addr, topic, first, 0, &[]).await.expect("produce"), first.len());

    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeSpec::new("restart-1", &broker.addr, topic, dir.path())).await;
    let consuming = wait_for(Duration::from_secs(120), || async { metric(&node, "touchline_events_consumed_total").await > 0.0 }).await;
    assert!(consuming, "the node consumed nothing before the restart");

    broker.restart().await;
    // The node reconnects by itself; the rest arrives through the restarted broker.
    assert_eq!(touchline_node::gen::produce(&broker.addr, topic, second, 0, &[]).await.expect("produce after restart"), second.len());
    assert!(node.wait_consumed(offsets_after(&records, spec.partitions), Duration::from_secs(180)).await, "did not consume everything: {:?}", partitions(&node).await);
    let total: i64 = partitions(&node).await.values().map(|x| x.consumed).sum();
    assert_eq!(total, offsets_after(&records, spec.partitions), "consumed offsets");
    // Every record applied exactly once: none lost, none consumed twice.
    assert_eq!(metric(&node, "touchline_events_consumed_total").await, offsets_after(&records, spec.partitions) as f64);
    assert_eq!(metric(&node, POISON).await, 0.0);
    assert_reports_equal_reference(&node, &records, &spec).await;
}

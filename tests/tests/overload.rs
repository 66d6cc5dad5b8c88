//! Overload: the node's capacity is measured from a burst in the same run, then
//! a producer runs at twice that rate for `TOUCHLINE_OVERLOAD_SECS` (default 20)
//! while the node's RSS and reported lag are sampled. The lag must grow and be
//! reported, the RSS peak stay under a fixed budget, and once the producer stops
//! the node must catch up with every report equal to the batch reference. The
//! node runs under a CPU quota ([`NODE_CORES`]) so that on a 2-core machine the
//! producer and the broker can run at twice its rate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use touchline_node::gen::{generate, produce, DatasetSpec, GenRecord};
use touchline_tests::fixtures::{as_partitioned, offsets_after, assert_matches_reference, create_topics, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{wait_for, Broker, CpuLimit, Node, NodeSpec};

const PARTITIONS: i32 = 4;
/// The node's CPU quota, in cores.
const NODE_CORES: f64 = 0.4;
const MIB: u64 = 1 << 20;

/// RSS budget of the node: RocksDB's block cache and memtables (64 + 64 MiB,
/// one shared cache), librdkafka's prefetch (16 MiB per partition), the intake's
/// buffers (4 batches of 1000 records per partition, < 2 MiB each), and 256 MiB
/// for the actors' bounded caches, allocator slack, code and runtime.
const RSS_BUDGET: u64 = (64 + 64) * MIB + PARTITIONS as u64 * (16 + 2) * MIB + 256 * MIB;

/// One slice of the dataset: distinct seeds give distinct event ids and persons.
fn chunk(i: u64) -> Vec<GenRecord> {
    generate(&DatasetSpec { seed: 1000 + i, tenants: 3, persons: 4000, partitions: PARTITIONS, ..DatasetSpec::default() })
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(field)?.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

/// Records consumed and lag summed over the node's partitions, from `/v1/cluster`.
async fn progress(node: &Node) -> (i64, i64) {
    let v = node.get("/v1/cluster").await.json().unwrap_or_default();
    let parts = v["partitions"].as_array().cloned().unwrap_or_default();
    (parts.iter().map(|p| p["consumed_offset"].as_i64().unwrap_or(0)).sum(), parts.iter().map(|p| p["lag"].as_i64().unwrap_or(0)).sum())
}

/// The lag exported in a `/metrics` body, summed over partitions.
fn metric_lag(body: &str) -> f64 {
    body.lines().filter(|l| l.starts_with("touchline_partition_lag{")).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twice_the_capacity_grows_lag_with_bounded_memory_and_the_node_catches_up() {
    let secs: u64 = std::env::var("TOUCHLINE_OVERLOAD_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let broker = Broker::start().await;
    let topic = "ev-overload";
    create_topics(&broker.addr, topic, PARTITIONS).await;

    // Capacity: a burst produced up front, timed between 10 % and 90 % consumed.
    let mut produced: Vec<GenRecord> = chunk(0);
    produced.extend(chunk(1));
    let burst = offsets_after(&produced, PARTITIONS);
    assert_eq!(produce(&broker.addr, topic, &produced, 0, &[]).await.expect("produce burst"), produced.len());
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeSpec::new("overload-1", &broker.addr, topic, dir.path())).await;
    // The node gets a fixed share of a core, so that the producer and the
    // broker can outrun it twice over on a 2-core machine.
    let quota = CpuLimit::new(node.pid(), NODE_CORES);
    let t10 = std::sync::Mutex::new(None);
    let measured = wait_for(Duration::from_secs(180), || async {
        let (consumed, _) = progress(&node).await;
        let mut first = t10.lock().unwrap();
        if consumed >= burst / 10 && first.is_none() {
            *first = Some((Instant::now(), consumed));
        }
        consumed >= burst * 9 / 10
    })
    .await;
    assert!(measured, "the burst was not consumed");
    let (t0, c0) = t10.into_inner().unwrap().expect("10 % seen");
    let (c1, _) = progress(&node).await;
    let capacity = (c1 - c0) as f64 / t0.elapsed().as_secs_f64();
    assert!(node.wait_consumed(burst, Duration::from_secs(120)).await, "the burst was not consumed");
    let rate = (2.0 * capacity) as u64;
    eprintln!("overload: measured capacity {capacity:.0} rec/s; producing at {rate} rec/s for {secs} s");

    // The overload: `rate × secs` records generated up front, produced at `rate`.
    let t_gen = Instant::now();
    let wanted = (rate * secs) as usize;
    let mut overload = Vec::with_capacity(wanted);
    let mut i = 2;
    while overload.len() < wanted {
        overload.extend(chunk(i));
        i += 1;
    }
    overload.truncate(wanted);
    eprintln!("overload: generated {wanted} records in {:.1} s", t_gen.elapsed().as_secs_f64());
    let running = Arc::new(AtomicBool::new(true));
    let pid = node.pid();
    let sampler = {
        let (http, running) = (node.http.clone(), running.clone());
        tokio::spawn(async move {
            let (mut max_lag, mut max_metric_lag, mut max_rss) = (0i64, 0f64, 0u64);
            while running.load(Ordering::Relaxed) {
                if let Ok(r) = touchline_node::client::get(&http, "/v1/cluster").await {
                    let parts = r.json().and_then(|v| v["partitions"].as_array().cloned()).unwrap_or_default();
                    max_lag = max_lag.max(parts.iter().map(|p| p["lag"].as_i64().unwrap_or(0)).sum());
                }
                if let Ok(r) = touchline_node::client::get(&http, "/metrics").await {
                    max_metric_lag = max_metric_lag.max(metric_lag(&r.body));
                }
                max_rss = max_rss.max(proc_status_kib(pid, "VmRSS:"));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            (max_lag, max_metric_lag, max_rss)
        })
    };
    let started = Instant::now();
    assert_eq!(produce(&broker.addr, topic, &overload, rate, &[]).await.expect("produce"), overload.len());
    let elapsed = started.elapsed().as_secs_f64();
    produced.extend(overload);
    let overload_n = produced.len() as i64 - burst;
    let achieved = overload_n as f64 / elapsed;
    let (_, lag_at_stop) = progress(&node).await;
    running.store(false, Ordering::Relaxed);
    let (max_lag, max_metric_lag, max_rss_kib) = sampler.await.unwrap();
    let caught_up_from = Instant::now();
    assert!(node.wait_consumed(offsets_after(&produced, PARTITIONS), Duration::from_secs(600)).await, "the node did not catch up: {:?}", progress(&node).await);
    let catch_up = caught_up_from.elapsed().as_secs_f64();
    let hwm_kib = proc_status_kib(pid, "VmHWM:");
    // Queries need not run on the quota.
    drop(quota);
    eprintln!(
        "overload: produced {overload_n} records in {elapsed:.1} s ({achieved:.0} rec/s = {:.2}× capacity); max lag {max_lag} (metrics {max_metric_lag}), lag at stop {lag_at_stop}; \
         caught up in {catch_up:.1} s; RSS max sampled {} MiB, peak (VmHWM) {} MiB, budget {} MiB",
        achieved / capacity,
        max_rss_kib / 1024,
        hwm_kib / 1024,
        RSS_BUDGET / MIB
    );
    assert!(achieved >= 1.8 * capacity, "the producer reached only {achieved:.0} rec/s against a capacity of {capacity:.0} rec/s");
    // Production outran consumption for the whole run: a sizeable lag built up and was reported.
    let expected_lag = ((achieved - capacity).max(0.0) * elapsed) as i64;
    assert!(max_lag >= expected_lag / 4 && max_lag > 1000, "max reported lag {max_lag}, expected about {expected_lag}");
    assert!(max_metric_lag >= (expected_lag / 4) as f64, "touchline_partition_lag peaked at {max_metric_lag}");
    assert!(hwm_kib * 1024 <= RSS_BUDGET, "RSS peak {} MiB over the budget of {} MiB", hwm_kib / 1024, RSS_BUDGET / MIB);
    assert_eq!(metric_lag(&node.get("/metrics").await.body), 0.0, "lag after catching up");

    let t_ref = Instant::now();
    let reference = reference::build(&as_partitioned(&produced, PARTITIONS), PARTITIONS);
    eprintln!("overload: reference of {} records built in {:.1} s", produced.len(), t_ref.elapsed().as_secs_f64());
    let tenants = reference.tenants();
    let spec = DatasetSpec::default();
    let from = touchline_actors::domain::Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    // Every model, by channel (each query scans half a million events: the other groupings are covered elsewhere).
    let queries: Vec<_> = standard_queries(&tenants, from, to).into_iter().filter(|q| q.group_by == "channel").collect();
    let rows = assert_matches_reference(&node, &reference, &queries).await;
    assert!(rows > 100, "too few rows compared: {rows}");
    eprintln!("overload: {rows} rows equal the reference ({:.1} s with the reference)", t_ref.elapsed().as_secs_f64());
}

//! `touchline bench-rebalance`: rebalance settle time and restore rate.
//!
//! 1. A generated dataset is produced and one node (A) consumes all of it,
//!    writing the changelog as it commits.
//! 2. A second node (B) with an empty data directory and no standbys joins.
//!    Settle time = from B's start until both nodes own partitions and every
//!    partition is active (B's share restored from the changelog, A's resumed
//!    from local state) — process start and group join included.
//! 3. Restore rate from B's metrics: changelog records and bytes applied, and
//!    the events those restored partitions cover (their checkpoints), over the
//!    settle time (a lower bound: it includes the join) and over the summed
//!    per-partition restore time.

use crate::bench::{committed, rss_kib};
use crate::client;
use crate::gen::{self, DatasetSpec};
use clap::Args;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct RebalanceBenchArgs {
    /// Kafka-protocol broker (e.g. Tansu on 127.0.0.1:9092).
    #[arg(long)]
    pub brokers: String,
    #[arg(long, default_value_t = 20_000)]
    pub persons: usize,
    #[arg(long, default_value_t = 20)]
    pub tenants: usize,
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
}

struct NodeProc {
    child: Child,
    addr: String,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn start(topic: &str, brokers: &str, id: &str, dir: &std::path::Path) -> Result<NodeProc, String> {
    let addr = client::free_local_addr().map_err(|e| e.to_string())?.to_string();
    let child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["node", "--node-id", id, "--brokers", brokers, "--topic", topic, "--dlq-topic", &format!("{topic}.dlq")])
        .args(["--group", &format!("{topic}-g"), "--http", &addr, "--session-timeout-ms", "6000", "--standby-replicas", "0"])
        .args(["--changelog-topic", &format!("{topic}.changelog"), "--members-topic", &format!("{topic}.members")])
        // Eager assignment, no static membership: what Tansu completes reliably (README, Cluster).
        .args(["--kafka-property", "partition.assignment.strategy=roundrobin", "--kafka-property", "group.instance.id="])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(NodeProc { child, addr })
}

/// Sum of a Prometheus metric's samples (all label sets).
fn metric(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' '])).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Partitions (owner, state, consumed) as node `addr` sees the cluster.
async fn partitions(addr: &str) -> Vec<(String, String, i64)> {
    let Ok(Some(v)) = client::get(addr, "/v1/cluster").await.map(|r| r.json()) else { return Vec::new() };
    v["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["owner"].as_str().unwrap_or("").to_string(), p["state"].as_str().unwrap_or("").to_string(), p["consumed_offset"].as_i64().unwrap_or(0)))
        .collect()
}

pub async fn run(args: RebalanceBenchArgs) -> Result<(), String> {
    let topic = format!("bench-rb-{}", std::process::id());
    touchline_cluster::admin::ensure_topic(&args.brokers, &[], &topic, args.partitions).await.map_err(|e| e.to_string())?;
    touchline_cluster::admin::ensure_topic(&args.brokers, &[], &format!("{topic}.dlq"), args.partitions).await.map_err(|e| e.to_string())?;
    let spec = DatasetSpec { seed: 5, tenants: args.tenants, persons: args.persons, partitions: args.partitions, ..DatasetSpec::default() };
    let records = gen::generate(&spec);
    let sent = gen::produce(&args.brokers, &topic, &records, 0, &[]).await.map_err(|e| e.to_string())? as i64;
    println!("bench-rebalance: produced {sent} records ({} persons, {} tenants) to {topic}", args.persons, args.tenants);
    let tmp = tempdir()?;

    // 1. Node A consumes everything (and writes the changelog).
    let t = Instant::now();
    let a = start(&topic, &args.brokers, "rb-a", &tmp.join("a"))?;
    let until = Instant::now() + Duration::from_secs(3600);
    loop {
        let c = committed(&a.addr).await;
        if c.len() == args.partitions as usize && c.values().sum::<i64>() >= sent {
            break;
        }
        if Instant::now() > until {
            return Err("node A did not consume the topic within an hour".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ma = client::get(&a.addr, "/metrics").await.map_err(|e| e.to_string())?.body;
    println!(
        "bench-rebalance: node A applied {sent} records in {:.1} s; changelog records written {:.0}; RSS {:.0} MiB",
        t.elapsed().as_secs_f64(),
        metric(&ma, "touchline_changelog_records_total"),
        rss_kib(a.child.id()).0 as f64 / 1024.0
    );

    // 2. Node B joins: settle time.
    let joined = Instant::now();
    let b = start(&topic, &args.brokers, "rb-b", &tmp.join("b"))?;
    let until = Instant::now() + Duration::from_secs(1800);
    let settled = loop {
        let ps = partitions(&b.addr).await;
        let owners: std::collections::BTreeSet<&str> = ps.iter().map(|p| p.0.as_str()).collect();
        if ps.len() == args.partitions as usize && ps.iter().all(|p| p.1 == "active") && owners.contains("rb-a") && owners.contains("rb-b") {
            break joined.elapsed();
        }
        if Instant::now() > until {
            return Err("the cluster did not settle within 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mb = client::get(&b.addr, "/metrics").await.map_err(|e| e.to_string())?.body;
    let (recs, bytes) = (metric(&mb, "touchline_restore_records_total"), metric(&mb, "touchline_restore_bytes_total"));
    let busy = metric(&mb, "touchline_restore_duration_seconds_sum");
    let events: i64 = partitions(&b.addr).await.iter().filter(|p| p.0 == "rb-b").map(|p| p.2).sum();
    let s = settled.as_secs_f64();
    println!("bench-rebalance: SETTLE node join -> all {} partitions active: {s:.2} s", args.partitions);
    println!("bench-rebalance: node B restored {recs:.0} changelog records ({:.1} MB) covering {events} events", bytes / 1e6);
    println!(
        "bench-rebalance: RESTORE over the settle time: {:.0} events/s, {:.0} records/s, {:.2} MB/s; over summed restore time ({busy:.2} s): {:.0} events/s, {:.2} MB/s",
        events as f64 / s,
        recs / s,
        bytes / 1e6 / s,
        events as f64 / busy.max(1e-9),
        bytes / 1e6 / busy.max(1e-9)
    );
    drop(b);
    drop(a);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf, String> {
    let d = std::env::temp_dir().join(format!("touchline-bench-rb-{}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

//! `touchline bench-rebalance`: rebalance settle time and restore rate.
//!
//! 1. A generated dataset is produced and one node (A) consumes all of it,
//!    writing the changelog as it commits.
//! 2. A second node (B) with an empty data directory, no standbys and snapshot
//!    transfer off joins. Settle time = from B's start until both nodes own
//!    partitions and every partition is active (B's share restored from the
//!    changelog, A's resumed from local state) — process start and group join
//!    included. B then stops (SIGTERM) and A takes everything back.
//! 3. A third node (C), empty too, joins with snapshot transfer on: its share
//!    arrives as A's RocksDB snapshots (SST files) plus the changelog after them.
//! 4. For both joins: the restore rate from the joiner's metrics — changelog
//!    records and snapshot bytes received, and the events the restored
//!    partitions cover (their checkpoints) — over the settle time (a lower
//!    bound: it includes the join) and over the summed per-partition restore
//!    time; and the ratio of the two settle times.
//! 5. Failover: a node D with warm standbys joins; once it tails A's partitions
//!    with no lag, A is killed (SIGKILL); settle = kill → D owns all, active.

use crate::bench::{committed, rss_kib};
use crate::client;
use crate::gen::{self, DatasetSpec};
use clap::Args;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct RebalanceBenchArgs {
    #[command(flatten)]
    pub data: crate::bench::DatasetArgs,
    /// Touchpoints per person at most (lighter persons let a million fit the
    /// broker's memory; default: the generator's 2..=8).
    #[arg(long)]
    pub max_touches: Option<usize>,
    /// Devices per person at most (default: the generator's 1..=3).
    #[arg(long)]
    pub max_devices: Option<usize>,
    /// Keep each node's stdout and stderr here as `<node id>.out.log` / `<node id>.err.log` (default: discarded).
    #[arg(long)]
    pub log_dir: Option<std::path::PathBuf>,
    /// Run the nodes with the eager `roundrobin` assignment and no static
    /// membership: compatibility for brokers like Tansu, whose coordinator
    /// breaks cooperative rebalances and static membership (README, Group
    /// assignment). Off: the node's defaults (cooperative-sticky, static
    /// membership), as on Apache Kafka.
    #[arg(long)]
    pub tansu_compat: bool,
}

/// `--tansu-compat`: what Tansu's coordinator completes reliably.
pub(crate) const TANSU_COMPAT: [&str; 4] = ["--kafka-property", "partition.assignment.strategy=roundrobin", "--kafka-property", "group.instance.id="];

pub(crate) struct NodeProc {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn start(args: &RebalanceBenchArgs, topic: &str, id: &str, dir: &std::path::Path, snapshots: bool, standbys: u32) -> Result<NodeProc, String> {
    let brokers = args.data.brokers.as_str();
    let addr = client::free_local_addr().map_err(|e| e.to_string())?.to_string();
    let mut cmd = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    cmd.args(["node", "--node-id", id, "--brokers", brokers, "--topic", topic, "--dlq-topic", &format!("{topic}.dlq")])
        .args(["--group", &format!("{topic}-g"), "--http", &addr, "--session-timeout-ms", "6000", "--standby-replicas", &standbys.to_string()])
        .args(["--changelog-topic", &format!("{topic}.changelog"), "--members-topic", &format!("{topic}.members")])
        .args(["--snapshot-transfer", if snapshots { "true" } else { "false" }])
        // Compatibility for brokers like Tansu: eager assignment, no static membership.
        .args(if args.tansu_compat { &TANSU_COMPAT[..] } else { &[] });
    launch(cmd, args.log_dir.as_deref(), id, dir, addr)
}

/// Spawns `cmd` (a `touchline node` with its flags, listening on `addr`) on
/// `data_dir`, with its stdout and stderr in `log_dir` as `<id>.out.log` /
/// `<id>.err.log` (default: discarded).
pub(crate) fn launch(mut cmd: Command, log_dir: Option<&std::path::Path>, id: &str, data_dir: &std::path::Path, addr: String) -> Result<NodeProc, String> {
    let log = |what: &str| match log_dir {
        Some(d) => std::fs::File::create(d.join(format!("{id}.{what}.log"))).map(Stdio::from).unwrap_or_else(|_| Stdio::null()),
        None => Stdio::null(),
    };
    let child = cmd.arg("--data-dir").arg(data_dir).stdout(log("out")).stderr(log("err")).spawn().map_err(|e| e.to_string())?;
    Ok(NodeProc { child, addr })
}

/// Sum of a Prometheus metric's samples (all label sets).
fn metric(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' '])).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Partitions (owner, state, consumed) as node `addr` sees the cluster.
pub(crate) async fn partitions(addr: &str) -> Vec<(String, String, i64)> {
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
    touchline_cluster::admin::ensure_topic(&args.data.brokers, &[], &topic, args.data.partitions).await.map_err(|e| e.to_string())?;
    touchline_cluster::admin::ensure_topic(&args.data.brokers, &[], &format!("{topic}.dlq"), args.data.partitions).await.map_err(|e| e.to_string())?;
    let mut spec = DatasetSpec { seed: 5, tenants: args.data.tenants, persons: args.data.persons, partitions: args.data.partitions, tenant_skew: args.data.tenant_skew, ..DatasetSpec::default() };
    if let Some(n) = args.max_touches {
        spec.touches_per_person = (spec.touches_per_person.0.min(n.max(1)), n.max(1));
    }
    if let Some(n) = args.max_devices {
        spec.devices_per_person = (1, n.max(1));
    }
    let records = gen::generate(&spec);
    let sent = gen::produce(&args.data.brokers, &topic, &records, 0, &[]).await.map_err(|e| e.to_string())? as i64;
    drop(records); // a million persons' records: gigabytes the nodes need more
    println!("bench-rebalance: produced {sent} records ({} persons, {} tenants) to {topic}", args.data.persons, args.data.tenants);
    let tmp = tempdir()?;

    // 1. Node A consumes everything (and writes the changelog).
    let t = Instant::now();
    let a = start(&args, &topic, "rb-a", &tmp.join("a"), true, 0)?;
    wait_until(Duration::from_secs(3600), Duration::from_millis(200), "node A did not consume the topic", || async {
        let c = committed(&a.addr).await;
        c.len() == args.data.partitions as usize && c.values().sum::<i64>() >= sent
    })
    .await?;
    let ma = client::get(&a.addr, "/metrics").await.map_err(|e| e.to_string())?.body;
    println!(
        "bench-rebalance: node A applied {sent} records in {:.1} s; changelog records written {:.0}; RSS {:.0} MiB",
        t.elapsed().as_secs_f64(),
        metric(&ma, "touchline_changelog_records_total"),
        rss_kib(a.child.id()).0 as f64 / 1024.0
    );

    // 2. B joins, changelog only; it leaves again; 3. C joins with snapshots.
    let by_changelog = join(&args, &a.addr, &topic, &tmp, "rb-b", false, sent).await?;
    let by_snapshot = join(&args, &a.addr, &topic, &tmp, "rb-c", true, sent).await?;
    println!("bench-rebalance: SETTLE RATIO snapshot / changelog-only: {:.3}", by_snapshot / by_changelog);
    // 4. D joins as A's warm standby; A is killed.
    let r = failover(&args, a, &topic, &tmp).await;
    let _ = std::fs::remove_dir_all(&tmp);
    r
}

/// Partitions `id` is a standby for, as `addr` sees the member table.
async fn standby_of(addr: &str, id: &str) -> Vec<i64> {
    let Ok(Some(v)) = client::get(addr, "/v1/cluster").await.map(|r| r.json()) else { return Vec::new() };
    let me = v["members"].as_array().into_iter().flatten().find(|m| m["node_id"] == id);
    me.and_then(|m| m["standby"].as_array()).into_iter().flatten().filter_map(|p| p.as_i64()).collect()
}

/// Failover to a warm standby: D (standbys on) joins, and once it tails every
/// partition A owns with no lag, A is killed with SIGKILL. Settle = from the
/// kill until D owns every partition, active — the broker's session timeout
/// (6 s here) included, since only it tells the group that A is gone.
async fn failover(args: &RebalanceBenchArgs, mut a: NodeProc, topic: &str, tmp: &std::path::Path) -> Result<(), String> {
    let d = start(args, topic, "rb-d", &tmp.join("rb-d"), true, 1)?;
    wait_until(Duration::from_secs(1800), Duration::from_millis(200), "D did not become A's warm standby", || async {
        let ps = partitions(&d.addr).await;
        let of_a: Vec<i64> = (0..args.data.partitions as i64).filter(|p| ps.get(*p as usize).is_some_and(|x| x.0 == "rb-a")).collect();
        let warm = standby_of(&d.addr, "rb-d").await;
        let m = client::get(&d.addr, "/metrics").await.map(|r| r.body).unwrap_or_default();
        ps.len() == args.data.partitions as usize
            && ps.iter().all(|p| p.1 == "active")
            && ps.iter().any(|p| p.0 == "rb-d")
            && !of_a.is_empty()
            && of_a.iter().all(|p| warm.contains(p))
            && metric(&m, "touchline_standby_lag_records") == 0.0
    })
    .await?;
    let killed = Instant::now();
    let _ = a.child.kill();
    let _ = a.child.wait();
    wait_until(Duration::from_secs(600), Duration::from_millis(50), "D did not take every partition over after the kill", || all_active_on(&d.addr, args.data.partitions, "rb-d")).await?;
    let settled = killed.elapsed().as_secs_f64();
    let m = client::get(&d.addr, "/metrics").await.map_err(|e| e.to_string())?.body;
    println!(
        "bench-rebalance: [warm standby] FAILOVER kill -9 of A -> all {} partitions active on D: {settled:.2} s (session timeout 6 s included); D's restores: local {:.0}, snapshot {:.0}, changelog {:.0}",
        args.data.partitions,
        metric(&m, "touchline_restores_total{source=\"local\"}"),
        metric(&m, "touchline_restores_total{source=\"snapshot\"}"),
        metric(&m, "touchline_restores_total{source=\"changelog\"}")
    );
    drop(d);
    Ok(())
}

/// Node `id` joins node A (empty data directory); returns its settle time in
/// seconds, after printing it and the restore rates. The node then leaves
/// (SIGTERM) and A owns every partition again.
async fn join(args: &RebalanceBenchArgs, a_addr: &str, topic: &str, tmp: &std::path::Path, id: &str, snapshots: bool, sent: i64) -> Result<f64, String> {
    let how = if snapshots { "snapshot transfer" } else { "changelog only" };
    let joined = Instant::now();
    let b = start(args, topic, id, &tmp.join(id), snapshots, 0)?;
    wait_until(Duration::from_secs(1800), Duration::from_millis(50), &format!("the cluster did not settle after {id} joined"), || async {
        let ps = partitions(&b.addr).await;
        let owners: std::collections::BTreeSet<&str> = ps.iter().map(|p| p.0.as_str()).collect();
        ps.len() == args.data.partitions as usize && ps.iter().all(|p| p.1 == "active") && owners.contains("rb-a") && owners.contains(id)
    })
    .await?;
    let settled = joined.elapsed();
    let mb = client::get(&b.addr, "/metrics").await.map_err(|e| e.to_string())?.body;
    let (recs, bytes) = (metric(&mb, "touchline_restore_records_total"), metric(&mb, "touchline_restore_bytes_total"));
    let snap = metric(&mb, "touchline_snapshot_bytes_total{direction=\"received\"}");
    let busy = metric(&mb, "touchline_restore_duration_seconds_sum");
    let events: i64 = partitions(&b.addr).await.iter().filter(|p| p.0 == id).map(|p| p.2).sum();
    let s = settled.as_secs_f64();
    let moved = (bytes + snap) / 1e6;
    println!("bench-rebalance: [{how}] SETTLE node join -> all {} partitions active: {s:.2} s", args.data.partitions);
    println!("bench-rebalance: [{how}] {id} restored {events} events of {sent}: {recs:.0} changelog records ({:.1} MB) + {:.1} MB of snapshots", bytes / 1e6, snap / 1e6);
    println!(
        "bench-rebalance: [{how}] RESTORE over the settle time: {:.0} events/s, {:.2} MB/s; over summed restore time ({busy:.2} s): {:.0} events/s, {:.2} MB/s",
        events as f64 / s,
        moved / s,
        events as f64 / busy.max(1e-9),
        moved / busy.max(1e-9)
    );
    // The joiner leaves; wait until A owns every partition again.
    drop(b);
    wait_until(Duration::from_secs(600), Duration::from_millis(100), &format!("A did not take every partition back after {id} left"), || all_active_on(a_addr, args.data.partitions, "rb-a")).await?;
    Ok(s)
}

/// Polls `done` every `every` until it holds; after `within`, `Err(what)`.
pub(crate) async fn wait_until<F, Fut>(within: Duration, every: Duration, what: &str, mut done: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + within;
    while !done().await {
        if Instant::now() > until {
            return Err(format!("{what} within {} s", within.as_secs()));
        }
        tokio::time::sleep(every).await;
    }
    Ok(())
}

/// Every one of the `n` partitions is owned by `owner` and active, as `addr` sees it.
async fn all_active_on(addr: &str, n: i32, owner: &str) -> bool {
    let ps = partitions(addr).await;
    ps.len() == n as usize && ps.iter().all(|p| p.0 == owner && p.1 == "active")
}

fn tempdir() -> Result<std::path::PathBuf, String> {
    let d = std::env::temp_dir().join(format!("touchline-bench-rb-{}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

//! `touchline bench-scale`: scale-out, measured with every node under the same
//! CPU quota (`crate::cpu_quota`, one cgroup per node) on a skewed
//! multi-tenant dataset (`--tenant-skew`).
//!
//! For each cluster size N in `--nodes` (e.g. `1,3`): a fresh events topic,
//! N nodes started (each in its own cgroup) and settled (every partition
//! owned and active), with `--warmup-persons` a warm-up dataset applied and
//! the placement left to come to rest, then the dataset is produced and the cluster's apply
//! rate is measured from its first commit until every record is durably
//! applied (the sum of the owners' committed offsets reaches the topic's end).
//! Printed: each partition's share of the records, each node's share and CPU
//! time, the apply rate per N and its ratio to N = the first size's.

use crate::bench::{produce_streamed, DatasetArgs};
use crate::bench_rebalance::{launch, partitions, wait_until, NodeProc, TANSU_COMPAT};
use crate::client;
use crate::cpu_quota::{process_cpu_secs, CpuQuota};
use crate::gen::DatasetSpec;
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct ScaleBenchArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Cluster sizes to measure, in order (the first is the baseline).
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    pub nodes: Vec<usize>,
    /// CPU cores each node may use (a cgroup CFS quota, e.g. 0.35); none: unlimited.
    #[arg(long)]
    pub cpu_quota: Option<f64>,
    /// Root of the cgroup file system.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    pub cgroup_root: std::path::PathBuf,
    /// Warm standbys per partition of the nodes.
    #[arg(long, default_value_t = 1)]
    pub standby_replicas: u32,
    /// Persons generated and produced at a time.
    #[arg(long, default_value_t = 20_000)]
    pub chunk_persons: usize,
    /// Keep each node's stdout and stderr here as `<node id>.out.log` / `.err.log`.
    #[arg(long)]
    pub log_dir: Option<std::path::PathBuf>,
    /// Eager `roundrobin` assignment without static membership (compatibility
    /// for brokers like Tansu; README, Group assignment).
    #[arg(long)]
    pub tansu_compat: bool,
    /// Persons of a warm-up dataset (another seed, the same tenants) produced
    /// and applied before the measured one, so that a placement by load has
    /// measured and settled the load first (0: none).
    #[arg(long, default_value_t = 0)]
    pub warmup_persons: usize,
    /// After the warm-up: how long the placement must stay unchanged
    /// (`placement_epoch` of `/v1/cluster`) before the measured dataset is produced.
    #[arg(long, default_value_t = 15)]
    pub rest_secs: u64,
    /// Extra flag passed to every node (repeatable), e.g. `--node-arg=--config=placement.toml`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
}

/// One node of a measured cluster, with its cgroup (dropped after the node).
struct ScaleNode {
    id: String,
    node: NodeProc,
    _quota: Option<CpuQuota>,
}

fn start(args: &ScaleBenchArgs, topic: &str, id: &str, dir: &std::path::Path) -> Result<ScaleNode, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let quota = match args.cpu_quota {
        Some(c) => Some(CpuQuota::create(&args.cgroup_root, &format!("touchline-bench-{}-{id}", std::process::id()), c)?),
        None => None,
    };
    let mut cmd = match &quota {
        Some(q) => q.command(&exe),
        None => std::process::Command::new(&exe),
    };
    let addr = client::free_local_addr().map_err(|e| e.to_string())?.to_string();
    cmd.args(["node", "--node-id", id, "--brokers", &args.data.brokers, "--topic", topic, "--dlq-topic", &format!("{topic}.dlq")])
        .args(["--group", &format!("{topic}-g"), "--http", &addr, "--session-timeout-ms", "6000", "--standby-replicas", &args.standby_replicas.to_string()])
        .args(["--changelog-topic", &format!("{topic}.changelog"), "--members-topic", &format!("{topic}.members"), "--results-topic", &format!("{topic}.attributions")])
        .args(if args.tansu_compat { &TANSU_COMPAT[..] } else { &[] })
        .args(&args.node_args);
    let node = launch(cmd, args.log_dir.as_deref(), id, dir, addr)?;
    Ok(ScaleNode { id: id.to_string(), node, _quota: quota })
}

/// Records per partition of `topic` (its high watermarks).
fn partition_records(brokers: &str, topic: &str, n: i32) -> Result<Vec<i64>, String> {
    let c: BaseConsumer = crate::bench::gen_client(brokers).set("group.id", "touchline-bench-scale").create().map_err(|e| e.to_string())?;
    (0..n).map(|p| c.fetch_watermarks(topic, p, Duration::from_secs(10)).map(|(lo, hi)| hi - lo).map_err(|e| e.to_string())).collect()
}

/// Committed offsets of the partitions each node owns, from each node's own
/// live view: node id → partition → offset.
async fn owned_offsets(nodes: &[ScaleNode]) -> BTreeMap<String, BTreeMap<i32, i64>> {
    let mut out = BTreeMap::new();
    for n in nodes {
        let mine = partitions(&n.node.addr).await.into_iter().enumerate().filter(|(_, p)| p.0 == n.id).map(|(i, p)| (i as i32, p.2)).collect();
        out.insert(n.id.clone(), mine);
    }
    out
}

/// Records the owners have applied (committed), summed.
async fn applied(nodes: &[ScaleNode]) -> i64 {
    owned_offsets(nodes).await.values().flat_map(|m| m.values()).sum()
}

/// Produces the warm-up dataset, waits until it is applied and the placement
/// has not changed for `--rest-secs`; returns its record count.
async fn warm_up(args: &ScaleBenchArgs, topic: &str, nodes: &[ScaleNode], spec: DatasetSpec) -> Result<i64, String> {
    let started = Instant::now();
    let total = produce_streamed(&args.data.brokers, topic, spec, args.chunk_persons, &[]).await?.records() as i64;
    wait_until(Duration::from_secs(1800), Duration::from_millis(200), "the warm-up was not applied", || async { applied(nodes).await >= total }).await?;
    let rest = Duration::from_secs(args.rest_secs);
    let last: std::sync::Mutex<Option<(Option<u64>, Instant)>> = std::sync::Mutex::new(None);
    let last_ref = &last;
    wait_until(Duration::from_secs(600), Duration::from_millis(500), "the placement did not come to rest", || async move {
        let v = client::get(&nodes[0].node.addr, "/v1/cluster").await.ok().and_then(|r| r.json());
        let epoch = v.as_ref().and_then(|v| v["placement_epoch"].as_u64());
        let mut l = last_ref.lock().unwrap_or_else(|e| e.into_inner());
        let since = match *l {
            Some((e, at)) if e == epoch => at,
            _ => Instant::now(),
        };
        *l = Some((epoch, since));
        since.elapsed() >= rest
    })
    .await?;
    let last = *last.lock().unwrap_or_else(|e| e.into_inner());
    println!("bench-scale: warm-up of {total} records applied, placement at rest (epoch {:?}) after {:.1} s", last.and_then(|l| l.0), started.elapsed().as_secs_f64());
    Ok(total)
}

/// Measures one cluster of `size` nodes; its apply rate, records/s.
async fn measure(args: &ScaleBenchArgs, base: &str, size: usize, tmp: &std::path::Path) -> Result<f64, String> {
    let topic = format!("{base}-n{size}");
    let brokers = args.data.brokers.as_str();
    let parts = args.data.partitions;
    touchline_cluster::admin::ensure_topic(brokers, &[], &topic, parts).await.map_err(|e| e.to_string())?;
    touchline_cluster::admin::ensure_topic(brokers, &[], &format!("{topic}.dlq"), parts).await.map_err(|e| e.to_string())?;
    let mut nodes = Vec::new();
    for i in 0..size {
        let id = format!("scale-{size}-{i}");
        nodes.push(start(args, &topic, &id, &tmp.join(&id))?);
    }
    let settle = Instant::now();
    wait_until(Duration::from_secs(300), Duration::from_millis(200), &format!("the {size}-node cluster did not settle"), || async {
        let ps = partitions(&nodes[0].node.addr).await;
        let owners: std::collections::BTreeSet<&str> = ps.iter().map(|p| p.0.as_str()).collect();
        ps.len() == parts as usize && ps.iter().all(|p| p.1 == "active") && owners.len() == size.min(parts as usize) && !owners.contains("")
    })
    .await?;
    println!("bench-scale: [{size} node(s)] settled in {:.1} s; producing", settle.elapsed().as_secs_f64());
    let spec = DatasetSpec { seed: 5, tenants: args.data.tenants, persons: args.data.persons, partitions: parts, tenant_skew: args.data.tenant_skew, ..DatasetSpec::default() };
    let warm = if args.warmup_persons > 0 { warm_up(args, &topic, &nodes, DatasetSpec { seed: 6, persons: args.warmup_persons, ..spec.clone() }).await? } else { 0 };
    let cpu0: Vec<f64> = nodes.iter().map(|n| process_cpu_secs(n.node.child.id()).unwrap_or(0.0)).collect();
    // Generated first, then produced at the producer's full speed: the
    // producer must not be what the cluster waits for.
    let records = tokio::task::spawn_blocking(move || crate::gen::generate(&spec)).await.map_err(|e| e.to_string())?;
    let produce_started = Instant::now();
    let produced = crate::gen::produce(brokers, &topic, &records, 0, &[]).await.map_err(|e| e.to_string())?;
    println!("bench-scale: [{size} node(s)] produced {produced} records in {:.1} s", produce_started.elapsed().as_secs_f64());
    drop(records);
    let total = warm + produced as i64;
    let mut first: Option<(Instant, i64)> = None;
    let limit = Duration::from_secs(1800.max(total as u64 / 500));
    let until = Instant::now() + limit;
    let (done_at, shares) = loop {
        let offsets = owned_offsets(&nodes).await;
        let done: i64 = offsets.values().flat_map(|m| m.values()).sum();
        if first.is_none() && done > warm {
            if done >= total {
                return Err(format!("the {size}-node cluster applied everything while it was produced: no rate to measure (a larger --persons)"));
            }
            first = Some((Instant::now(), done));
        }
        if done >= total {
            break (Instant::now(), offsets);
        }
        if Instant::now() > until {
            return Err(format!("the {size}-node cluster applied {done} of {total} records within {} s", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (t0, n0) = first.unwrap_or((done_at, 0));
    let secs = done_at.duration_since(t0).as_secs_f64().max(1e-9);
    let rate = (total - n0) as f64 / secs;
    for (i, n) in nodes.iter().enumerate() {
        let applied: i64 = shares.get(&n.id).map_or(0, |m| m.values().sum());
        let cpu = process_cpu_secs(n.node.child.id()).unwrap_or(0.0) - cpu0[i];
        let owned: Vec<i32> = shares.get(&n.id).map(|m| m.keys().copied().collect()).unwrap_or_default();
        let throttled = n._quota.as_ref().and_then(CpuQuota::throttled).map(|(t, p)| format!(", throttled {t} of {p} periods")).unwrap_or_default();
        println!(
            "bench-scale: [{size} node(s)] {}: {:.1} % of the records ({applied}), partitions {owned:?}, CPU {cpu:.1} s ({:.2} cores over the run){throttled}",
            n.id,
            100.0 * applied as f64 / total.max(1) as f64,
            cpu / secs
        );
    }
    println!("bench-scale: [{size} node(s)] APPLY {} records in {secs:.2} s = {rate:.0} rec/s (from the first commit)", total - n0);
    if size == *args.nodes.first().unwrap_or(&1) {
        let per = partition_records(brokers, &topic, parts)?;
        let mut sorted: Vec<(i64, usize)> = per.iter().enumerate().map(|(p, n)| (*n, p)).collect();
        sorted.sort_by(|a, b| b.cmp(a));
        let list: Vec<String> = sorted.iter().map(|(n, p)| format!("p{p} {:.1} %", 100.0 * *n as f64 / total.max(1) as f64)).collect();
        println!("bench-scale: partition shares of the records: {}", list.join(", "));
    }
    drop(nodes);
    Ok(rate)
}

pub async fn run(args: ScaleBenchArgs) -> Result<(), String> {
    if args.nodes.is_empty() || args.nodes.contains(&0) {
        return Err("--nodes must list cluster sizes of at least 1".into());
    }
    if let Some(d) = &args.log_dir {
        std::fs::create_dir_all(d).map_err(|e| format!("--log-dir {}: {e}", d.display()))?;
    }
    let base = format!("bench-scale-{}", std::process::id());
    let tmp = std::env::temp_dir().join(&base);
    println!(
        "bench-scale: {} persons, {} tenants (skew {}), {} partitions, CPU quota per node {}, standby replicas {}",
        args.data.persons,
        args.data.tenants,
        args.data.tenant_skew,
        args.data.partitions,
        args.cpu_quota.map_or("none".to_string(), |c| format!("{c} cores")),
        args.standby_replicas
    );
    let mut rates = Vec::new();
    for &size in &args.nodes {
        let r = measure(&args, &base, size, &tmp).await;
        let _ = std::fs::remove_dir_all(&tmp);
        rates.push((size, r?));
    }
    let (n1, r1) = rates[0];
    for &(n, r) in &rates[1..] {
        let ratio = r / r1.max(1e-9);
        println!("bench-scale: RATIO {n} nodes / {n1} node(s) = {ratio:.2} (efficiency {:.2} of linear)", ratio * n1 as f64 / n as f64);
    }
    Ok(())
}

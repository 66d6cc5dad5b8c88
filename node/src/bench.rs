//! `touchline bench`: the end-to-end benchmark, measured as ratios in one run
//! against one broker (the machine is shared and noisy):
//!
//! 1. raw rate — a bare librdkafka consumer reads the generated topic;
//! 2. apply rate — a `touchline node` process consumes the same topic until every
//!    record is durably applied (committed = queryable); ratio = apply ÷ raw;
//! 3. latency — fresh events produced at a fraction of the measured apply rate;
//!    event → queryable is the time until the node's committed offset passes the
//!    record's offset (polled every 5 ms), reported as p50/p99;
//! 4. memory — the node process's RSS and RocksDB memory (`/metrics`) at
//!    persons milestones while it applies, then its peak and final RSS;
//! 5. with `--probabilistic`, a second node pass with probabilistic links on
//!    for every tenant (`crate::bench_prob`);
//! 6. with `--results-compare`, a second node pass with the results topic off:
//!    the ratio of the apply rates, results on ÷ off.
//!
//! The dataset is generated and produced `--chunk-persons` at a time (each chunk
//! dropped once delivered), so the bench's own memory does not grow with
//! `--persons`; a 1 M-person run holds a few chunks at most.

use crate::bench_floor::{self, Floor};
use crate::client;
use crate::gen::{self, DatasetSpec, GenRecord};
use crate::gen::dataset::Chunks;
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;
use std::collections::HashMap;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The generated dataset and the broker: shared by `bench` and `bench-rebalance`.
#[derive(Args, Debug, Clone)]
pub struct DatasetArgs {
    /// Kafka-protocol broker (e.g. Tansu on 127.0.0.1:9092).
    #[arg(long)]
    pub brokers: String,
    #[arg(long, default_value_t = 20_000)]
    pub persons: usize,
    #[arg(long, default_value_t = 20)]
    pub tenants: usize,
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Tenant size skew (`touchline gen --tenant-skew`): 0.5 mild, 1 Zipf.
    #[arg(long, default_value_t = 0.5)]
    pub tenant_skew: f64,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Latency phase: produce at this fraction of the measured apply rate.
    #[arg(long, default_value_t = 0.5)]
    pub latency_load: f64,
    #[arg(long, default_value_t = 15)]
    pub latency_secs: u64,
    /// Where the node keeps RocksDB (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Persons generated and produced at a time (the bench holds at most a few chunks).
    #[arg(long, default_value_t = 20_000)]
    pub chunk_persons: usize,
    /// librdkafka `compression.type` of the dataset's producer (none, lz4, zstd, ...).
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Persons applied at which to report the node's memory (comma-separated;
    /// default: every quarter of `--persons`).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<usize>,
    /// Append the node's stderr (its log) to this file instead of discarding it.
    #[arg(long)]
    pub node_log: Option<std::path::PathBuf>,
    /// A node config file (TOML) for the measured node; the bench's own flags
    /// (brokers, topics, group, HTTP, data dir) override its keys.
    #[arg(long)]
    pub node_config: Option<std::path::PathBuf>,
    /// Skip the floor phases (`bench_floor`: consume + decode, + RocksDB put,
    /// + changelog produce) that follow the raw read.
    #[arg(long)]
    pub no_floors: bool,
    /// After the apply phase (results topic on, the default), apply the same
    /// topic again with a second node whose results topic is off, and print
    /// the ratio of the two apply rates.
    #[arg(long)]
    pub results_compare: bool,
    /// A second node pass over the same topic with `probabilistic = true`
    /// for every tenant (`bench_prob`): its apply rate against the first
    /// pass's, then the cost of reading a tenant's final persons.
    #[arg(long)]
    pub probabilistic: bool,
}

/// Records produced up to each chunk boundary: `(persons, records)`, ascending.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Produced {
    pub bounds: Vec<(usize, usize)>,
    pub bytes: u64,
}

impl Produced {
    pub fn records(&self) -> usize {
        self.bounds.last().map_or(0, |b| b.1)
    }

    /// Persons whose records are (about) all among the first `records` produced,
    /// interpolated within a chunk.
    pub fn persons_at(&self, records: usize) -> usize {
        let mut prev = (0usize, 0usize);
        for &(p, r) in &self.bounds {
            if records < r {
                let span = (r - prev.1).max(1) as f64;
                return prev.0 + (((records - prev.1) as f64 / span) * (p - prev.0) as f64) as usize;
            }
            prev = (p, r);
        }
        prev.0
    }
}

/// Generates the dataset chunk by chunk on a blocking thread (one chunk ahead)
/// and produces each chunk before the next; nothing is kept but counts.
pub(crate) async fn produce_streamed(brokers: &str, topic: &str, spec: DatasetSpec, chunk_persons: usize, props: &[(String, String)]) -> Result<Produced, String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Vec<GenRecord>)>(1);
    let generator = tokio::task::spawn_blocking(move || {
        let mut chunks = Chunks::new(spec, chunk_persons);
        while let Some(c) = chunks.next() {
            if tx.blocking_send((chunks.persons_done(), c)).is_err() {
                return;
            }
        }
    });
    let mut out = Produced::default();
    while let Some((persons, chunk)) = rx.recv().await {
        let sent = gen::produce(brokers, topic, &chunk, 0, props).await.map_err(|e| e.to_string())?;
        out.bytes += chunk.iter().map(|r| r.value.len() as u64).sum::<u64>();
        out.bounds.push((persons, out.records() + sent));
    }
    generator.await.map_err(|e| e.to_string())?;
    Ok(out)
}

pub(crate) fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| s.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
    (field("VmRSS:"), field("VmHWM:"))
}

/// A consumer (group `group`, no commits) assigned every partition of `topic`
/// from the beginning: the raw read and the floor phases each read the whole topic.
pub(crate) fn read_from_beginning(brokers: &str, group: &str, topic: &str, partitions: i32) -> Result<BaseConsumer, String> {
    let c: BaseConsumer = gen_client(brokers).set("group.id", group).set("enable.auto.commit", "false").create().map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).map_err(|e| e.to_string())?;
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    Ok(c)
}

fn raw_consume(brokers: &str, topic: &str, partitions: i32, expect: usize) -> Result<(usize, u64, Duration), String> {
    let c = read_from_beginning(brokers, "touchline-bench-raw", topic, partitions)?;
    let (mut n, mut bytes) = (0usize, 0u64);
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(600.max(expect as u64 / 5000));
    while n < expect && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            started.get_or_insert_with(Instant::now);
            n += 1;
            bytes += m.payload().map_or(0, |p| p.len() as u64);
        }
    }
    Ok((n, bytes, started.map(|s| s.elapsed()).unwrap_or_default()))
}

pub(crate) fn gen_client(brokers: &str) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

/// Prints the node's RSS and RocksDB memory (its `/metrics` gauges, refreshed
/// every 5 s by the node) at a persons milestone.
async fn report_memory(addr: &str, pid: u32, persons: usize, records: i64) {
    let (rss, hwm) = rss_kib(pid);
    let metrics = client::get(addr, "/metrics").await.map(|r| r.body).unwrap_or_default();
    let rocks: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("touchline_rocksdb_memory_bytes{kind=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(kind, v)| format!("{kind} {:.1}", v.trim().parse::<f64>().unwrap_or(0.0) / 1048576.0))
        .collect();
    let customers = metrics.lines().find_map(|l| l.strip_prefix("touchline_actors_active{kind=\"customer\"} ")).unwrap_or("?").trim().to_string();
    println!(
        "bench: memory at ~{persons} persons ({records} records applied): RSS {:.1} MiB (peak {:.1}); rocksdb MiB: {}; customer actors {customers}",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rocks.join(", ")
    );
}

pub(crate) async fn committed(addr: &str) -> HashMap<i64, i64> {
    let mut m = HashMap::new();
    if let Ok(Some(v)) = client::get(addr, "/v1/cluster").await.map(|r| r.json()) {
        for p in v["partitions"].as_array().into_iter().flatten() {
            m.insert(p["partition"].as_i64().unwrap_or(-1), p["consumed_offset"].as_i64().unwrap_or(0));
        }
    }
    m
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    let topic = format!("bench-{}", std::process::id());
    touchline_cluster::admin::ensure_topic(&args.data.brokers, &[], &topic, args.data.partitions).await.map_err(|e| e.to_string())?;
    touchline_cluster::admin::ensure_topic(&args.data.brokers, &[], &format!("{topic}.dlq"), args.data.partitions).await.map_err(|e| e.to_string())?;
    let spec = DatasetSpec { seed: 5, tenants: args.data.tenants, persons: args.data.persons, partitions: args.data.partitions, tenant_skew: args.data.tenant_skew, ..DatasetSpec::default() };
    let props = vec![("compression.type".to_string(), args.compression.clone())];
    let t_gen = Instant::now();
    let produced = produce_streamed(&args.data.brokers, &topic, spec, args.chunk_persons, &props).await?;
    let sent = produced.records();
    let mean_bytes = produced.bytes as f64 / sent.max(1) as f64;
    println!(
        "bench: produced {sent} records ({} persons, {} tenants, mean {mean_bytes:.0} B, {} chunks, compression {}) to {topic} in {:.1} s",
        args.data.persons,
        args.data.tenants,
        produced.bounds.len(),
        args.compression,
        t_gen.elapsed().as_secs_f64()
    );

    // 1. Raw consume.
    let (b, t, p, n) = (args.data.brokers.clone(), topic.clone(), args.data.partitions, sent);
    // The raw phase allows at least 5 000 rec/s before giving up.
    let (raw_n, raw_bytes, raw_t) = tokio::task::spawn_blocking(move || raw_consume(&b, &t, p, n)).await.map_err(|e| e.to_string())??;
    let raw_rate = raw_n as f64 / raw_t.as_secs_f64().max(1e-9);
    println!("bench: raw librdkafka consume: {raw_n} records in {:.2} s = {raw_rate:.0} rec/s ({:.1} MB/s)", raw_t.as_secs_f64(), raw_bytes as f64 / 1e6 / raw_t.as_secs_f64().max(1e-9));

    // 1b. Floors: the barest pipelines with the node's duties, same topic.
    let tmp = std::env::temp_dir().join(format!("touchline-bench-{}", std::process::id()));
    if !args.no_floors {
        for floor in Floor::ALL {
            let dir = tmp.with_extension(format!("floor-{floor:?}"));
            let (b, t, p) = (args.data.brokers.clone(), topic.clone(), args.data.partitions);
            let d = dir.clone();
            let (n, took) = tokio::task::spawn_blocking(move || bench_floor::run(floor, &b, &t, p, sent, &d)).await.map_err(|e| e.to_string())??;
            let _ = std::fs::remove_dir_all(&dir);
            let rate = n as f64 / took.as_secs_f64().max(1e-9);
            println!("bench: floor {}: {n} records in {:.2} s = {rate:.0} rec/s, ratio to raw {:.3}", floor.name(), took.as_secs_f64(), rate / raw_rate);
        }
    }

    // 2. Node apply.
    let data_dir = args.data_dir.clone().unwrap_or(tmp.clone());
    let mut node = spawn_node(&args, &topic, "", &data_dir, args.node_config.as_deref(), &[])?;
    let pid = node.pid;
    let (addr, apply_rate) = (node.addr.clone(), wait_applied(&args, &mut node, &produced, true).await?);
    println!("bench: RATIO apply/raw = {:.3}", apply_rate / raw_rate);
    let (rss, hwm) = rss_kib(pid);
    println!("bench: node RSS after {} persons: {:.1} MiB (peak {:.1} MiB)", args.data.persons, rss as f64 / 1024.0, hwm.max(node.peak_rss) as f64 / 1024.0);

    // The second passes read the same topic before the latency phase adds to it.
    if args.results_compare {
        // Second: the off run gets the broker's warmed page cache, so the
        // ratio, if anything, overstates what the results topic costs.
        let dir = tmp.with_extension("results-off");
        let mut off = spawn_node(&args, &topic, "-results-off", &dir, args.node_config.as_deref(), &["--results-enabled", "false"])?;
        let off_rate = wait_applied(&args, &mut off, &produced, false).await;
        off.stop();
        let _ = std::fs::remove_dir_all(&dir);
        let off_rate = match off_rate {
            Ok(r) => r,
            Err(e) => {
                node.stop();
                return Err(format!("results-off pass: {e}"));
            }
        };
        println!("bench: node apply without the results topic: {off_rate:.0} rec/s; RATIO apply results on/off = {:.3}", apply_rate / off_rate.max(1e-9));
    }
    if args.probabilistic {
        if let Err(e) = crate::bench_prob::run(&args, &topic, &produced, (apply_rate, node.apply_cpu_us), &tmp).await {
            node.stop();
            return Err(e);
        }
    }

    // 3. Latency at a fraction of the apply rate.
    let rate = (apply_rate * args.latency_load).max(10.0);
    let fresh = gen::generate(&DatasetSpec {
        seed: 99,
        tenants: args.data.tenants,
        persons: ((rate * args.latency_secs as f64) / 8.0) as usize + 10,
        partitions: args.data.partitions,
        duplicate_rate: 0.0,
        invalid_rate: 0.0,
        ..DatasetSpec::default()
    });
    let lat = latency(&args.data.brokers, &topic, &addr, &fresh, rate, Duration::from_secs(args.latency_secs)).await?;
    println!(
        "bench: event -> queryable at {rate:.0} rec/s ({:.0}% of apply rate), {} samples: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.latency_load * 100.0,
        lat.len(),
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    node.stop();
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(())
}

/// A measured `touchline node` process.
pub(crate) struct NodeProc {
    child: std::process::Child,
    pub pid: u32,
    pub addr: String,
    pub peak_rss: u64,
    /// CPU µs per record of its last [`wait_applied`] (from its first commit).
    pub apply_cpu_us: f64,
}

impl NodeProc {
    /// SIGTERM, then waits for the process to exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let _ = self.child.wait();
    }
}

/// Starts a node over `topic` with its own consumer group and changelog
/// and results topics (named with `suffix`), RocksDB in `data_dir`, `config`
/// if any, then `extra` flags.
pub(crate) fn spawn_node(args: &BenchArgs, topic: &str, suffix: &str, data_dir: &std::path::Path, config: Option<&std::path::Path>, extra: &[&str]) -> Result<NodeProc, String> {
    let addr = client::free_local_addr().map_err(|e| e.to_string())?.to_string();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let node_log = match &args.node_log {
        Some(p) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(p).map_err(|e| format!("--node-log {}: {e}", p.display()))?),
        None => Stdio::null(),
    };
    let mut node = Command::new(exe);
    node.arg("node");
    if let Some(c) = config {
        node.arg("--config").arg(c);
    }
    let child = node
        .args(["--node-id", &format!("bench-1{suffix}"), "--brokers", &args.data.brokers, "--topic", topic, "--dlq-topic", &format!("{topic}.dlq")])
        .args(["--group", &format!("{topic}-node{suffix}"), "--http", &addr, "--session-timeout-ms", "6000"])
        .args(["--changelog-topic", &format!("{topic}.changelog{suffix}"), "--results-topic", &format!("{topic}.attributions{suffix}")])
        // The node's producers (changelog, DLQ, results) compress like the dataset's.
        .args(["--kafka-property", &format!("compression.type={}", args.compression)])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(node_log)
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(NodeProc { pid: child.id(), child, addr, peak_rss: 0, apply_cpu_us: 0.0 })
}

/// Waits until `node` has durably applied every produced record; its apply
/// rate from its first commit (printed). `memory`: report the memory
/// milestones on the way.
pub(crate) async fn wait_applied(args: &BenchArgs, node: &mut NodeProc, produced: &Produced, memory: bool) -> Result<f64, String> {
    let (addr, pid) = (node.addr.clone(), node.pid);
    let total_in_topic = produced.records() as i64;
    let mut first: Option<(Instant, i64)> = None;
    let mut cpu0 = 0.0;
    let limit = Duration::from_secs(1800.max(total_in_topic as u64 / 2000));
    let until = Instant::now() + limit;
    let mut milestones = if args.milestones.is_empty() { (1..=4).map(|q| args.data.persons * q / 4).collect() } else { args.milestones.clone() };
    milestones.sort_unstable();
    milestones.retain(|m| memory && *m > 0 && *m <= args.data.persons);
    let mut next_milestone = 0;
    let applied_at = loop {
        if Instant::now() > until {
            let _ = node.child.kill();
            return Err(format!("node did not consume the topic within {} s", limit.as_secs()));
        }
        let c = committed(&addr).await;
        let done: i64 = c.values().sum();
        node.peak_rss = node.peak_rss.max(rss_kib(pid).0);
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done));
            cpu0 = crate::bench_collect::cpu_secs(pid);
        }
        let persons_done = if done >= total_in_topic { args.data.persons } else { produced.persons_at(done.max(0) as usize) };
        while next_milestone < milestones.len() && persons_done >= milestones[next_milestone] {
            report_memory(&addr, pid, milestones[next_milestone], done).await;
            next_milestone += 1;
        }
        if done >= total_in_topic && c.len() == args.data.partitions as usize {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (t0, n0) = first.unwrap_or((applied_at, 0));
    let apply_rate = (total_in_topic - n0) as f64 / applied_at.duration_since(t0).as_secs_f64().max(1e-9);
    node.apply_cpu_us = (crate::bench_collect::cpu_secs(pid) - cpu0) * 1e6 / (total_in_topic - n0).max(1) as f64;
    println!("bench: node apply: {} records in {:.2} s = {apply_rate:.0} rec/s (from its first commit), {:.1} CPU µs/record", total_in_topic - n0, applied_at.duration_since(t0).as_secs_f64(), node.apply_cpu_us);
    Ok(apply_rate)
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// Background load at `rate`/s from `records`, plus one marker touchpoint every
/// 50 ms for `dur`; a marker's latency is from just before its send until the
/// node answers `GET customers/{marker}` with 200 (polled every 2 ms).
async fn latency(brokers: &str, topic: &str, addr: &str, records: &[GenRecord], rate: f64, dur: Duration) -> Result<Vec<f64>, String> {
    let load = {
        let (b, t, recs) = (brokers.to_string(), topic.to_string(), records.to_vec());
        let rate = rate as u64;
        tokio::spawn(async move { gen::produce(&b, &t, &recs, rate, &[]).await })
    };
    let producer: FutureProducer = gen_client(brokers).set("partitioner", "murmur2_random").set("linger.ms", "0").create().map_err(|e| e.to_string())?;
    let tenant = records.first().map(|r| r.key.clone()).unwrap_or_else(|| "acme".into());
    let start = Instant::now();
    let mut probes = Vec::new();
    let mut n = 0u64;
    while start.elapsed() < dur {
        n += 1;
        let id = format!("lat-{}-{n}", std::process::id());
        let ev = serde_json::json!({
            "event_id": id, "tenant_id": tenant, "event_type": "touchpoint_interaction",
            "timestamp": touchline_actors::domain::Ts::now().to_string(), "customer_id": id,
            "touchpoints": {"channel": "email", "interaction_type": "click"}
        });
        let payload = serde_json::to_vec(&ev).map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(tenant.as_str()).payload(payload.as_slice());
        let fut = producer.send_result(rec).map_err(|(e, _)| e.to_string())?;
        let (a, path) = (addr.to_string(), format!("/v1/tenants/{tenant}/customers/{id}"));
        probes.push(tokio::spawn(async move {
            let _ = fut.await;
            let until = t0 + Duration::from_secs(120);
            while Instant::now() < until {
                if client::get(&a, &path).await.map(|r| r.status == 200).unwrap_or(false) {
                    return Some(t0.elapsed().as_secs_f64() * 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            None
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load.abort();
    let mut lat = Vec::new();
    for p in probes {
        if let Ok(Some(ms)) = p.await {
            lat.push(ms);
        }
    }
    lat.sort_by(f64::total_cmp);
    Ok(lat)
}

#[cfg(test)]
mod tests {
    use super::Produced;

    #[test]
    fn persons_at_interpolates_within_chunks() {
        let p = Produced { bounds: vec![(100, 1_000), (200, 3_000), (250, 3_500)], bytes: 0 };
        assert_eq!(p.records(), 3_500);
        assert_eq!(p.persons_at(0), 0);
        assert_eq!(p.persons_at(500), 50);
        assert_eq!(p.persons_at(1_000), 100);
        assert_eq!(p.persons_at(2_000), 150);
        assert_eq!(p.persons_at(3_499), 249);
        assert_eq!(p.persons_at(3_500), 250);
        assert_eq!(p.persons_at(9_999), 250);
        assert_eq!(Produced::default().persons_at(10), 0);
    }
}

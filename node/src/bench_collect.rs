//! `touchline bench-collect`: collector throughput against the node's own
//! Kafka apply rate, as ratios from one run (issue 17.5).
//!
//! 1. A node (A) with a write key per tenant serves the collector; it also
//!    consumes and applies what its collector produces, as a real node does.
//! 2. Load: `--connections` keep-alive HTTP clients post `/v1/collect/batch`
//!    requests of `--batch` Segment messages (pages with UTM URLs, tracks,
//!    conversions, identifies; every messageId new), all built before the
//!    clock starts. Throughput = events acknowledged ÷ wall time from the first
//!    request to the last answer; p50/p99 request latency.
//! 3. Apply: a second node (B, empty data directory, its own group) consumes
//!    the topic the collector wrote, timed from its first commit until every
//!    record is applied (as `touchline bench` measures apply).
//! 4. Ratio = collector events/s ÷ B's apply records/s (target ≥ 2: the
//!    collector is never the bottleneck). Node A applies while it collects,
//!    on the same cores, so the run also reports CPU time (`/proc/<pid>/stat`):
//!    A's from the load's start until it applied everything, less B's for
//!    applying the same records, is the collector's CPU per event; its
//!    inverse against B's apply CPU per record is the ratio the machine's
//!    noise and the sharing of cores do not move.

use crate::bench::committed;
use crate::bench_rebalance::{NodeProc, TANSU_COMPAT};
use crate::client;
use base64::Engine;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct CollectBenchArgs {
    /// Kafka-protocol broker (e.g. Tansu on 127.0.0.1:9092).
    #[arg(long)]
    pub brokers: String,
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    #[arg(long, default_value_t = 20)]
    pub tenants: usize,
    /// Events posted in all.
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Messages per `/v1/collect/batch` request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Concurrent keep-alive HTTP connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Eager `roundrobin` assignment and no static membership for both nodes,
    /// as `bench-rebalance --tansu-compat` (for brokers like Tansu).
    #[arg(long)]
    pub tansu_compat: bool,
}

fn start(brokers: &str, topic: &str, id: &str, dir: &std::path::Path, extra: &[String]) -> Result<NodeProc, String> {
    let addr = client::free_local_addr().map_err(|e| e.to_string())?.to_string();
    let child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["node", "--node-id", id, "--brokers", brokers, "--topic", topic, "--dlq-topic", &format!("{topic}.dlq")])
        .args(["--group", &format!("{topic}-{id}"), "--http", &addr, "--session-timeout-ms", "6000"])
        .args(["--changelog-topic", &format!("{topic}.{id}.changelog"), "--members-topic", &format!("{topic}.{id}.members")])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(NodeProc { child, addr })
}

/// Every partition active and consumed to its end; the records consumed.
async fn consumed_all(addr: &str, partitions: usize) -> Option<i64> {
    let v = client::get(addr, "/v1/cluster").await.ok()?.json()?;
    let parts = v["partitions"].as_array()?;
    let done = parts.len() == partitions && parts.iter().all(|p| p["state"] == "active" && p["end_offset"].as_i64().is_some() && p["end_offset"] == p["consumed_offset"]);
    done.then(|| parts.iter().map(|p| p["consumed_offset"].as_i64().unwrap_or(0)).sum())
}

async fn wait_until<F: std::future::Future<Output = bool>>(limit: Duration, mut f: impl FnMut() -> F) -> Result<(), String> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("not reached within {} s", limit.as_secs()))
}

/// Message `i` of the load: a mix like a web shop's traffic.
/// (Also the input of the collector mapping bench, benches/benches/collect.rs.)
pub fn message(i: usize) -> Value {
    let anon = format!("anon-{}", i / 6);
    let ts = "2026-12-01T10:00:00Z";
    match i % 10 {
        0..=5 => json!({"type": "page", "messageId": format!("m-{i}"), "anonymousId": anon, "timestamp": ts,
                        "context": {"page": {"url": format!("https://shop.example/p/{}?utm_source=google&utm_medium=cpc&utm_campaign=c{}", i % 97, i % 13), "referrer": "https://www.google.com/"},
                                    "ip": "10.0.0.1", "userAgent": "Mozilla/5.0 bench"}}),
        6 | 7 => json!({"type": "track", "messageId": format!("m-{i}"), "anonymousId": anon, "event": "Product Viewed", "timestamp": ts,
                        "properties": {"sku": format!("sku-{}", i % 50)}, "context": {"campaign": {"name": "newsletter", "source": "newsletter", "medium": "email"}}}),
        8 => json!({"type": "identify", "messageId": format!("m-{i}"), "anonymousId": anon, "userId": format!("user-{}", i / 60), "timestamp": ts}),
        _ => json!({"type": "track", "messageId": format!("m-{i}"), "anonymousId": anon, "event": "Order Completed", "timestamp": ts, "properties": {"revenue": (i % 200) as f64 + 0.5, "currency": "USD"}}),
    }
}

/// CPU seconds (user + system) process `pid` used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start at field 3; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(2).filter_map(|x| x.parse().ok()).collect();
    // SAFETY: sysconf only reads a constant.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    f.iter().sum::<u64>() as f64 / tick
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted.get(((sorted.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN)
}

pub async fn run(args: CollectBenchArgs) -> Result<(), String> {
    let topic = format!("bench-collect-{}", std::process::id());
    for t in [topic.clone(), format!("{topic}.dlq")] {
        touchline_cluster::admin::ensure_topic(&args.brokers, &[], &t, args.partitions).await.map_err(|e| e.to_string())?;
    }
    let tmp = std::env::temp_dir().join(format!("touchline-bench-collect-{}", std::process::id()));
    let keys: Vec<String> = (0..args.tenants).map(|t| format!("t{t}=wk-bench-{t}")).collect();
    let compat: Vec<String> = if args.tansu_compat { TANSU_COMPAT.map(String::from).to_vec() } else { Vec::new() };
    let flags: Vec<String> = keys.iter().flat_map(|k| ["--write-key".to_string(), k.clone()]).chain(compat.iter().cloned()).collect();
    let a = start(&args.brokers, &topic, "collect-a", &tmp.join("a"), &flags)?;
    let parts = args.partitions as usize;
    wait_until(Duration::from_secs(60), || async { consumed_all(&a.addr, parts).await.is_some() }).await.map_err(|e| format!("node A not ready: {e}"))?;

    // Every request built before the clock starts; tenant = batch index mod tenants.
    let batches: Vec<(String, Bytes)> = (0..args.events.div_ceil(args.batch))
        .map(|b| {
            let items: Vec<Value> = (b * args.batch..((b + 1) * args.batch).min(args.events)).map(message).collect();
            let key = format!("wk-bench-{}", b % args.tenants);
            let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")));
            (auth, Bytes::from(serde_json::to_vec(&json!({"batch": items})).unwrap_or_default()))
        })
        .collect();
    let bytes: usize = batches.iter().map(|b| b.1.len()).sum();
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let http: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(args.connections).build_http();
    let uri: hyper::Uri = format!("http://{}/v1/collect/batch", a.addr).parse().map_err(|e| format!("{e}"))?;
    let a_pid = a.child.id();
    let a_cpu0 = cpu_secs(a_pid);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections)
        .map(|_| {
            let (batches, next, http, uri) = (batches.clone(), next.clone(), http.clone(), uri.clone());
            tokio::spawn(async move {
                let (mut lat, mut retries) = (Vec::new(), 0u64);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((auth, body)) = batches.get(i) else { return Ok::<_, String>((lat, retries)) };
                    loop {
                        let req = hyper::Request::post(uri.clone())
                            .header(hyper::header::AUTHORIZATION, auth.as_str())
                            .header(hyper::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(body.clone()))
                            .map_err(|e| e.to_string())?;
                        let t0 = Instant::now();
                        let resp = http.request(req).await.map_err(|e| e.to_string())?;
                        let status = resp.status();
                        let text = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                        match status.as_u16() {
                            200 => break,
                            429 | 503 => {
                                retries += 1;
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                            s => return Err(format!("batch {i}: {s} {}", String::from_utf8_lossy(&text))),
                        }
                    }
                }
            })
        })
        .collect();
    let (mut lat, mut retries) = (Vec::new(), 0);
    for w in workers {
        let (l, r) = w.await.map_err(|e| e.to_string())??;
        lat.extend(l);
        retries += r;
    }
    let took = started.elapsed();
    lat.sort_by(f64::total_cmp);
    let collect_rate = args.events as f64 / took.as_secs_f64().max(1e-9);
    println!(
        "bench-collect: collector: {} events in {} requests of {} ({:.1} MB JSON, {} connections) in {:.2} s = {collect_rate:.0} events/s; request latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {retries} retried (429/503)",
        args.events,
        batches.len(),
        args.batch,
        bytes as f64 / 1e6,
        args.connections,
        took.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    let total = args.events as i64;
    let t_load_end = Instant::now();
    wait_until(Duration::from_secs(1800), || async { consumed_all(&a.addr, parts).await.is_some_and(|n| n >= total) }).await.map_err(|e| format!("node A never applied its collector's events: {e}"))?;
    let a_cpu = cpu_secs(a_pid) - a_cpu0;
    println!("bench-collect: node A (collector + apply) applied the last of them {:.2} s after the load ended; A's CPU from the load's start: {a_cpu:.2} s", t_load_end.elapsed().as_secs_f64());
    drop(a);

    // The same records applied by a fresh node: its apply rate.
    let b = start(&args.brokers, &topic, "apply-b", &tmp.join("b"), &compat)?;
    let mut first: Option<(Instant, i64)> = None;
    let mut b_cpu0 = 0.0;
    let until = Instant::now() + Duration::from_secs(1800);
    let done_at = loop {
        if Instant::now() > until {
            return Err("node B did not apply the topic within 1800 s".into());
        }
        let done: i64 = committed(&b.addr).await.values().sum();
        if first.is_none() && done > 0 {
            first = Some((Instant::now(), done));
            b_cpu0 = cpu_secs(b.child.id());
        }
        if done >= total {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (t0, n0) = first.unwrap_or((done_at, 0));
    let apply_rate = (total - n0) as f64 / done_at.duration_since(t0).as_secs_f64().max(1e-9);
    println!("bench-collect: node B apply: {} records in {:.2} s = {apply_rate:.0} rec/s (from its first commit)", total - n0, done_at.duration_since(t0).as_secs_f64());
    let b_cpu = cpu_secs(b.child.id()) - b_cpu0;
    let apply_cpu = b_cpu / (total - n0).max(1) as f64;
    let collect_cpu = (a_cpu / total as f64 - apply_cpu).max(1e-12);
    println!("bench-collect: node B CPU while applying: {b_cpu:.2} s = {:.1} µs/record; collector CPU (A's less B's per record) = {:.1} µs/event", apply_cpu * 1e6, collect_cpu * 1e6);
    println!("bench-collect: RATIO collector/apply = {:.2} wall-clock, {:.2} per CPU second (target >= 2)", collect_rate / apply_rate, apply_cpu / collect_cpu);
    drop(b);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

//! `touchline demo`: an embedded broker, one node, a generated dataset, and a
//! side-by-side table of every attribution model per tenant, then what to try
//! next: a sample customer id, the exact query URLs over the dataset's range, and
//! where to send events of one's own (the embedded broker's address, and the
//! collector write key of the tenant `my-shop`). `--serve` keeps the node (and its
//! HTTP surface) up afterwards.

use crate::client;
use crate::config::{NodeConfig, Secret, TenantSection};
use crate::gen::{self, DatasetSpec};
use crate::run::{self, EmbeddedBroker};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use touchline_actors::domain::models::Model;
use touchline_actors::domain::Ts;

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 300)]
    pub persons: usize,
    #[arg(long, default_value_t = 3)]
    pub tenants: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// HTTP address (default: a free port; with --serve, 127.0.0.1:8080).
    #[arg(long)]
    pub http: Option<std::net::SocketAddr>,
    /// Where the node keeps RocksDB (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the node serving HTTP after the table is printed (Ctrl-C stops).
    #[arg(long)]
    pub serve: bool,
}

/// The tenant that events of one's own go to through the collector, and its write key.
pub const OWN_TENANT: &str = "my-shop";
pub const OWN_WRITE_KEY: &str = "wk-my-shop";

pub async fn run(args: DemoArgs) -> Result<(), String> {
    let broker = EmbeddedBroker::start().map_err(|e| e.to_string())?;
    let brokers = broker.bootstrap_servers();
    println!("touchline demo: embedded broker at {brokers}");
    // A temporary directory, or the given one made fit for a fresh embedded broker.
    let dir = crate::data_dir::for_embedded(args.data_dir.as_deref()).map_err(|e| e.to_string())?;
    let http = match (args.http, args.serve) {
        (Some(a), _) => a,
        (None, true) => "127.0.0.1:8080".parse().map_err(|e| format!("{e}"))?,
        (None, false) => client::free_local_addr().map_err(|e| e.to_string())?,
    };
    // Fail here rather than query whatever else listens there.
    drop(std::net::TcpListener::bind(http).map_err(|e| format!("cannot listen on {http}: {e} (give another address with --http)"))?);
    let mut config = NodeConfig {
        node_id: "demo".into(),
        brokers: Some(brokers.clone()),
        partitions: args.partitions,
        http,
        data_dir: Some(dir.path().to_path_buf()),
        ..NodeConfig::default()
    };
    config.engine.session_timeout_ms = 6000;
    // The first compare of a large dataset builds every model's report cache:
    // more than the default 10 s at 100 000 persons in one tenant.
    config.limits.request_timeout_ms = 120_000;
    let own = TenantSection { write_keys: vec![Secret::new(OWN_WRITE_KEY)], ..TenantSection::default() };
    config.tenants.insert(OWN_TENANT.to_string(), own);
    broker.create_node_topics(&config).map_err(|e| e.to_string())?;

    let spec = DatasetSpec { seed: args.seed, tenants: args.tenants, persons: args.persons, partitions: args.partitions, ..DatasetSpec::default() };
    let records = gen::generate(&spec);
    let (stop_tx, stop_rx) = watch::channel(false);
    let node = tokio::spawn(run::run_with_brokers(config.clone(), brokers.clone(), stop_rx));
    println!("touchline demo: producing {} records ({} persons, {} tenants) as the node consumes them", records.len(), args.persons, args.tenants);
    let addr = http.to_string();
    // The embedded broker keeps at most 100 000 records or 5 MiB per partition
    // and drops the oldest beyond that, consumed or not (librdkafka's mock
    // cluster): the dataset goes in steps the node has consumed before the next.
    let mut sent = 0;
    for step in embedded_steps(&records) {
        sent += gen::produce(&brokers, &config.topic, &records[step.clone()], 0, &[]).await.map_err(|e| e.to_string())?;
        if !client::wait_consumed(&addr, gen::offsets_after(&records[..step.end], spec.partitions), Duration::from_secs(120)).await {
            return Err(format!("the node did not consume records {}..{} within 120 s", step.start, step.end));
        }
    }
    println!("touchline demo: the node consumed all {sent} records");
    let from = Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    let mut tenants: Vec<String> = records.iter().map(|r| r.key.clone()).filter(|t| touchline_actors::domain::decode::valid_tenant(t)).collect();
    tenants.sort();
    tenants.dedup();
    for t in tenants.iter().filter(|t| touchline_actors::domain::decode::valid_tenant(t)) {
        let path = format!("/v1/tenants/{t}/attribution/compare?from={}&to={}", enc(&from.to_string()), enc(&to.to_string()));
        let reply = client::get(&addr, &path).await.map_err(|e| e.to_string())?;
        let Some(v) = reply.json() else { continue };
        if reply.status != 200 {
            println!("{t}: {}", reply.body);
            continue;
        }
        print_table(t, &v);
    }
    if let Ok(m) = client::get(&addr, "/metrics").await {
        let rejected: Vec<String> = m
            .body
            .lines()
            .filter(|l| l.starts_with("touchline_events_rejected_total{") && !l.ends_with(" 0"))
            .map(|l| l.replace("touchline_events_rejected_total", "rejected"))
            .collect();
        println!("dead-lettered: {}", if rejected.is_empty() { "none".to_string() } else { rejected.join(", ") });
    }
    if let Some(t) = tenants.first() {
        print_next_steps(&addr, &brokers, &config.topic, t, from, to, args.serve).await;
    }
    if args.serve {
        println!("touchline demo: serving on http://{addr} (Ctrl-C to stop)");
        println!("touchline demo: report page at http://{addr}/ui");
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop_tx.send(true);
    let _ = node.await;
    drop(broker);
    drop(dir);
    Ok(())
}

/// What to try next, with ids and ranges taken from the node's own answers: a
/// customer with a conversion (found through the customers listing), a journey,
/// and the exact URLs over the dataset's range (whole UTC dates).
async fn print_next_steps(addr: &str, brokers: &str, topic: &str, tenant: &str, from: Ts, to: Ts, serve: bool) {
    let from_date = from.to_string()[..10].to_string();
    // The first midnight at or after `to`.
    let to_date = to.plus_secs(86_399).to_string()[..10].to_string();
    let range = format!("from={from_date}&to={to_date}");
    let customer = sample_customer(addr, tenant).await.unwrap_or_else(|| "<customer_id>".into());
    let journey = first_key(addr, &format!("/v1/tenants/{tenant}/attribution?model=last_touch&group_by=journey&{range}")).await.unwrap_or_else(|| "<journey_id>".into());
    let base = format!("http://{addr}");
    println!();
    if serve {
        println!("Try (the data lies in [{from_date}, {to_date})):");
    } else {
        println!("Run `touchline demo --serve` to keep the node up, then try (the data lies in [{from_date}, {to_date})):");
    }
    let urls = [
        format!("{base}/v1/tenants"),
        format!("{base}/v1/tenants/{tenant}/customers?limit=5"),
        format!("{base}/v1/tenants/{tenant}/attribution?model=linear&{range}"),
        format!("{base}/v1/tenants/{tenant}/attribution?model=markov&group_by=campaign&{range}"),
        format!("{base}/v1/tenants/{tenant}/attribution/compare?{range}"),
        format!("{base}/v1/tenants/{tenant}/customers/{}", enc_segment(&customer)),
        format!("{base}/v1/tenants/{tenant}/journeys/{}/performance?granularity=day&{range}", enc_segment(&journey)),
        format!("{base}/v1/tenants/{tenant}/campaigns?{range}"),
    ];
    for u in urls {
        println!("  curl '{u}'");
    }
    println!("Sample customer of {tenant}: {customer}");
    println!("Send events of your own: Kafka at {brokers}, topic {topic} (key = tenant_id; docs/events.md),");
    println!("  or the collector as tenant {OWN_TENANT}: curl -u {OWN_WRITE_KEY}: {base}/v1/collect/track -H 'Content-Type: application/json' -d '{{...}}' (docs/collector.md)");
}

/// A customer id of `tenant` whose person has a conversion (else any), from the
/// customers listing and the customer endpoint.
async fn sample_customer(addr: &str, tenant: &str) -> Option<String> {
    let page = client::get(addr, &format!("/v1/tenants/{tenant}/customers?limit=50")).await.ok()?.json()?;
    let mut fallback = None;
    for person in page["customers"].as_array()? {
        let ids = person["identifiers"].as_array()?;
        let Some(id) = ids.iter().find(|i| i["kind"] == "customer_id").or(ids.first()).and_then(|i| i["id"].as_str()) else { continue };
        fallback.get_or_insert_with(|| id.to_string());
        let reply = client::get(addr, &format!("/v1/tenants/{tenant}/customers/{}", enc_segment(id))).await.ok()?;
        if reply.json().is_some_and(|c| c["conversions"].as_array().is_some_and(|a| !a.is_empty())) {
            return Some(id.to_string());
        }
    }
    fallback
}

/// The first row's key of an attribution answer, other than `(direct)`/`(none)`.
async fn first_key(addr: &str, path: &str) -> Option<String> {
    let v = client::get(addr, path).await.ok()?.json()?;
    v["rows"].as_array()?.iter().filter_map(|r| r["key"].as_str()).find(|k| !k.starts_with('(')).map(str::to_string)
}

/// Percent-encodes what a path segment cannot hold as is.
fn enc_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

fn print_table(tenant: &str, v: &serde_json::Value) {
    let models: Vec<&str> = Model::ALL.iter().map(|m| m.as_str()).filter(|m| v["models"].get(*m).is_some()).collect();
    let mut table: BTreeMap<String, BTreeMap<&str, f64>> = BTreeMap::new();
    for m in &models {
        for row in v["models"][*m].as_array().into_iter().flatten() {
            let key = row["key"].as_str().unwrap_or("").to_string();
            table.entry(key).or_default().insert(m, row["credit"].as_f64().unwrap_or(0.0));
        }
    }
    println!();
    println!(
        "tenant {tenant}: {} conversions, {} {} (credit per channel, by model)",
        v["conversions"],
        v["conversion_value"].as_f64().map(|x| format!("{x:.2}")).unwrap_or_default(),
        v["currency"].as_str().unwrap_or("-")
    );
    // Columns named as the API names the models (`model=`).
    let width = models.iter().map(|m| m.len()).max().unwrap_or(10) + 2;
    print!("{:<14}", "key");
    for m in &models {
        print!("{m:>width$}");
    }
    println!();
    for (key, cols) in &table {
        print!("{key:<14}");
        for m in &models {
            match cols.get(m) {
                Some(c) => print!("{c:>width$.2}"),
                None => print!("{:>width$}", "-"),
            }
        }
        println!();
    }
}

/// Records the embedded broker may hold unconsumed per step, by count and by
/// payload bytes, well inside its per-partition limits (100 000 records,
/// 5 MiB) even when one partition gets every record of a step.
const STEP_RECORDS: usize = 8_000;
const STEP_BYTES: usize = 2 << 20;

/// Consecutive ranges of `records`, each within [`STEP_RECORDS`] and
/// [`STEP_BYTES`] (a record larger than that alone is a step of its own).
fn embedded_steps(records: &[gen::GenRecord]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        if i > start && (i - start >= STEP_RECORDS || bytes + r.value.len() > STEP_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += r.value.len();
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

#[cfg(test)]
mod step_tests {
    use super::*;

    fn rec(len: usize) -> gen::GenRecord {
        gen::GenRecord { key: "acme".into(), value: vec![b'x'; len], partition: None, valid: true }
    }

    #[test]
    fn steps_cover_every_record_once_within_both_limits() {
        let mut records: Vec<gen::GenRecord> = (0..20_000).map(|i| rec(100 + i % 300)).collect();
        records.insert(5, rec(3 << 20));
        let steps = embedded_steps(&records);
        assert_eq!(steps.first().map(|s| s.start), Some(0));
        assert!(steps.windows(2).all(|w| w[0].end == w[1].start && w[0].start < w[0].end), "contiguous and non-empty: {steps:?}");
        assert_eq!(steps.last().map(|s| s.end), Some(records.len()));
        for s in &steps {
            let bytes: usize = records[s.clone()].iter().map(|r| r.value.len()).sum();
            assert!(s.len() <= STEP_RECORDS && (bytes <= STEP_BYTES || s.len() == 1), "{s:?}: {} records, {bytes} bytes", s.len());
        }
        assert!(embedded_steps(&[]).is_empty());
    }
}


//! `touchline bench --probabilistic` (issue 19 item 6): after the plain pass,
//! a second node applies the same topic with `probabilistic = true` for every
//! tenant (default threshold 0.7 and max 10 persons per address), so the two
//! apply rates come from one run over the same data; then the cost of a
//! probabilistic tenant's queries:
//!
//! - over HTTP: an attribution report under `identity=all` (final persons)
//!   and `identity=deterministic`, per tenant, first call and repeated;
//! - in process, over the second node's RocksDB once it stopped: the final
//!   persons as queries read them now (the stored links,
//!   `state::problinks::stored_links`) against the evaluation they ran
//!   before the links were stored (`query::linking::final_persons`: a scan of
//!   the tenant's signals and the batch rule), checked equal.

use crate::bench::{spawn_node, wait_applied, BenchArgs, Produced};
use crate::client;
use crate::gen::dataset::tenant_id;
use std::path::Path;
use std::time::{Duration, Instant};
use touchline_actors::domain::probabilistic::{Linking, DEFAULT_MAX_IP_PERSONS, DEFAULT_THRESHOLD_POINTS};
use touchline_storage::{Store, StoreOptions};

/// The node config of the probabilistic pass: `--node-config`'s, with every
/// generated tenant turned on.
fn config(args: &BenchArgs) -> Result<String, String> {
    let mut table: toml::Table = match &args.node_config {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("--node-config {}: {e}", p.display()))?.parse().map_err(|e| format!("--node-config {}: {e}", p.display()))?,
        None => toml::Table::new(),
    };
    let tenants = table.entry("tenants").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let tenants = tenants.as_table_mut().ok_or("--node-config: `tenants` is not a table")?;
    for i in 0..args.data.tenants {
        let t = tenants.entry(tenant_id(i)).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t.as_table_mut().ok_or("--node-config: a `tenants.<t>` is not a table")?.insert("probabilistic".into(), toml::Value::Boolean(true));
    }
    Ok(table.to_string())
}

/// Milliseconds of one GET (`None`: not a 200).
async fn timed_get(addr: &str, path: &str) -> Option<f64> {
    let t0 = Instant::now();
    let r = client::get(addr, path).await.ok()?;
    (r.status == 200).then(|| t0.elapsed().as_secs_f64() * 1e3)
}

/// `plain`: the plain pass's apply rate (records/s) and CPU µs per record.
pub(crate) async fn run(args: &BenchArgs, topic: &str, produced: &Produced, plain: (f64, f64), tmp: &Path) -> Result<(), String> {
    let (plain_rate, plain_cpu) = plain;
    let dir = tmp.with_extension("probabilistic");
    let config_path = tmp.with_extension("probabilistic.toml");
    std::fs::write(&config_path, config(args)?).map_err(|e| e.to_string())?;
    let mut node = spawn_node(args, topic, "-probabilistic", &dir, Some(&config_path), &[])?;
    let rate = wait_applied(args, &mut node, produced, false).await?;
    println!("bench: RATIO probabilistic/plain apply = {:.3} ({:+.1} %; target ≥ 0.85)", rate / plain_rate, (rate / plain_rate - 1.0) * 100.0);
    // The passes run one after the other on a shared machine; CPU per record
    // is less moved by what else runs than the wall-clock rate.
    println!("bench: RATIO per CPU, plain/probabilistic CPU per record = {:.3} ({plain_cpu:.1} / {:.1} µs)", plain_cpu / node.apply_cpu_us.max(1e-9), node.apply_cpu_us);

    // Queries over HTTP: the whole generated range, one tenant at a time.
    let range = "from=2026-09-01T00:00:00Z&to=2026-12-01T00:00:00Z";
    for identity in ["all", "deterministic"] {
        let (mut first, mut again, mut n) = (0.0, 0.0, 0);
        for i in 0..args.data.tenants {
            let path = format!("/v1/tenants/{}/attribution?model=linear&{range}&identity={identity}", tenant_id(i));
            if let (Some(a), Some(b)) = (timed_get(&node.addr, &path).await, timed_get(&node.addr, &path).await) {
                (first, again, n) = (first + a, again + b, n + 1);
            }
        }
        let n = f64::from(n.max(1));
        println!("bench: probabilistic tenant attribution identity={identity}: mean first call {:.1} ms, repeated {:.1} ms ({} tenants)", first / n, again / n, args.data.tenants);
    }
    node.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Final persons before (evaluated from the signals) and after (stored).
    let (dir2, partitions) = (dir.clone(), args.data.partitions);
    let (before, after, links, tenants) = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let store = Store::open(&dir2, &StoreOptions::default()).map_err(|e| e.to_string())?;
        let linking = Linking { threshold: DEFAULT_THRESHOLD_POINTS, max_ip_persons: DEFAULT_MAX_IP_PERSONS };
        let (mut before, mut after, mut links, mut tenants) = (Duration::ZERO, Duration::ZERO, 0usize, 0usize);
        for p in 0..partitions as u16 {
            for t in touchline_actors::query::listing::tenants(&store, p).map_err(|e| e.to_string())? {
                let t0 = Instant::now();
                let evaluated = touchline_actors::query::linking::final_persons(&store, p, &t.tenant, linking, None).map_err(|e| e.to_string())?;
                let t1 = Instant::now();
                let stored = touchline_actors::state::problinks::stored_links(&store, p, &t.tenant, linking).map_err(|e| e.to_string())?;
                after += t1.elapsed();
                before += t1 - t0;
                if stored.as_ref() != Some(&evaluated.links) {
                    return Err(format!("partition {p} tenant {}: the stored links differ from the evaluated ones", t.tenant));
                }
                (links, tenants) = (links + evaluated.links.len(), tenants + 1);
            }
        }
        Ok((before, after, links, tenants))
    })
    .await
    .map_err(|e| e.to_string())??;
    println!(
        "bench: final persons of {tenants} probabilistic tenants ({links} links, equal): evaluated from the signals (before) {:.1} ms, stored links read (after) {:.2} ms, RATIO before/after = {:.0}",
        before.as_secs_f64() * 1e3,
        after.as_secs_f64() * 1e3,
        before.as_secs_f64() / after.as_secs_f64().max(1e-9)
    );
    let _ = std::fs::remove_file(&config_path);
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

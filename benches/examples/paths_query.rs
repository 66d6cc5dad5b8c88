//! End-to-end cost of an attribution query (linear, markov, shapley) over a large tenant, read from a
//! real RocksDB: the uncached computation, then with a cold report cache per
//! model: the first full-range build (with the tenant's activity index), a
//! repeat, a new one-week range inside the data, that week slid by one hour
//! (the now-relative default window asked again), a disjoint week, and the full
//! range and the slid week after a batch of changed persons; and the default
//! 30-day window as the prewarm task keeps it, asked 5 s later by a default
//! query, and 10 s later after the changes. Every answer is
//! checked against a fresh uncached computation. Records are written straight
//! through the storage layer with the node's key layout, so the ingest pipeline
//! is not measured here.
//!
//! ```sh
//! cargo run --release -p touchline-benches --example paths_query -- 1000000 1000
//! ```
//! (persons, persons changed before the last two queries, optional cache budget in MiB, default 4096).
//!
//! `PATHS_QUERY_DIR=DIR` keeps the store in `DIR` and reuses it when it already
//! holds the persons; `PATHS_QUERY_FIRST=N` times only the first full-range
//! build, `N` times per model with a fresh cache each (checked once).

use rand::{Rng, SeedableRng};
use std::time::Instant;
use touchline_actors::domain::models::Model;
use touchline_actors::domain::{Channel, ConversionInfo, Dims, GroupBy, TouchInfo, Ts};
use touchline_actors::query::attribution::{conversions_with_paths, rule_report, AttributionQuery, AttributionResult};
use touchline_actors::query::datadriven::data_driven_report;
use touchline_actors::query::paths_cache::PathsCache;
use touchline_actors::state::{key, ConvRec, TenantMeta, TenantState, TouchRec};
use std::sync::{Arc, Mutex};
use touchline_storage::{CommitObserver, Store, StoreOptions};

const P: u16 = 0;
const T: &str = "acme";
const DAY: i64 = 86_400;
const START: i64 = 1_767_225_600; // 2026-01-01

/// Writes one person's timeline: 1–8 touchpoints over 60 days, and a
/// conversion after them for about one person in five.
fn write_person(txn: &mut touchline_storage::Txn, rng: &mut rand::rngs::SmallRng, person: u64, round: u32) -> usize {
    let n = rng.random_range(1..=8);
    let mut ts = START + rng.random_range(0..50 * DAY);
    for i in 0..n {
        ts += rng.random_range(60..3 * DAY);
        let touch = TouchInfo { channel: Channel::ALL[rng.random_range(0..Channel::ALL.len())], interaction_type: "click".into(), dims: Dims::default() };
        let rec = TouchRec { event_id: format!("t{person}-{round}-{i}"), ts: Ts::new(ts, 0), customer_id: format!("c{person}"), touch };
        TenantState::records(txn, P, T).put_touch(person, &rec).unwrap();
    }
    if rng.random_bool(0.2) {
        let conversion = ConversionInfo { value: rng.random_range(10.0..500.0), currency: "USD".into(), conversion_type: None };
        let rec = ConvRec { event_id: format!("c{person}-{round}"), ts: Ts::new(ts + 3600, 0), customer_id: format!("c{person}"), conversion, late: false };
        TenantState::records(txn, P, T).put_conversion(person, &rec).unwrap();
        return n + 1;
    }
    n
}

/// The store's observer, handing commits to the cache of the model being
/// measured (a store takes one observer for its lifetime).
#[derive(Default)]
struct Forward(Mutex<Option<Arc<PathsCache>>>);

impl Forward {
    fn set(&self, cache: Arc<PathsCache>) {
        *self.0.lock().unwrap() = Some(cache);
    }
}

impl CommitObserver for Forward {
    fn committed(&self, keys: &mut dyn Iterator<Item = &[u8]>) {
        if let Some(c) = self.0.lock().unwrap().as_ref() {
            c.committed(keys);
        }
    }
    fn reset(&self, partition: u16) {
        if let Some(c) = self.0.lock().unwrap().as_ref() {
            c.reset(partition);
        }
    }
}

/// Writes `persons` persons' timelines (round 0) and the tenant's meta.
fn write_all(store: &Store, rng: &mut rand::rngs::SmallRng, persons: u64, records: &mut usize) {
    let mut txn = store.txn();
    let mut meta = TenantMeta::default();
    meta.currency_counts.insert("USD".into(), 1);
    txn.put_as(key::tenant_meta(P, T), &meta).unwrap();
    for person in 0..persons {
        *records += write_person(&mut txn, rng, person, 0);
        if person % 10_000 == 9_999 {
            txn.commit(None).unwrap();
            txn = store.txn();
        }
    }
    txn.commit(None).unwrap();
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn main() {
    // RUST_LOG=touchline_actors::query::paths_cache=debug shows each build's phases.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let mut args = std::env::args().skip(1);
    let persons: u64 = args.next().map(|a| a.parse().expect("persons")).unwrap_or(100_000);
    let changed: u64 = args.next().map(|a| a.parse().expect("changed persons")).unwrap_or(1000);
    let kept = std::env::var_os("PATHS_QUERY_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let path = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let marker = path.join(format!("paths_query-{persons}"));
    let reuse = kept.is_some() && marker.exists();
    let store = Store::open(&path, &StoreOptions::default()).unwrap();
    let budget: usize = args.next().map(|a| a.parse::<usize>().expect("budget MiB") << 20).unwrap_or(4 << 30);
    let forward = Arc::new(Forward::default());
    store.set_observer(forward.clone());
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);

    let t = Instant::now();
    let mut records = 0usize;
    if reuse {
        println!("reusing {persons} persons in {}", path.display());
    } else {
        write_all(&store, &mut rng, persons, &mut records);
        println!("wrote {persons} persons, {records} records in {:.1} s", secs(t));
        if kept.is_some() {
            std::fs::write(&marker, b"").unwrap();
        }
    }
    let first_only: Option<usize> = std::env::var("PATHS_QUERY_FIRST").ok().map(|n| n.parse().expect("PATHS_QUERY_FIRST"));


    let full = (Ts::new(START, 0), Ts::new(START + 120 * DAY, 0));
    let week = (Ts::new(START + 30 * DAY, 0), Ts::new(START + 37 * DAY, 0));
    let slid = (week.0.plus_secs(3600), week.1.plus_secs(3600));
    let disjoint = (Ts::new(START + 40 * DAY, 0), Ts::new(START + 47 * DAY, 0));
    // The default window (the last 30 days before now) as the prewarm task
    // keeps it, then asked by a default query 5 s later, and 10 s later after changes.
    let window = (Ts::new(START + 60 * DAY, 0), Ts::new(START + 90 * DAY, 0));
    let window_5s = (window.0.plus_secs(5), window.1.plus_secs(5));
    let window_10s = (window.0.plus_secs(10), window.1.plus_secs(10));
    let query = |(from, to): (Ts, Ts)| AttributionQuery { from, to, group_by: GroupBy::Channel, lookback_days: 30, params: Default::default(), currency: None, horizon: None };
    let uncached_report = |model: Model, q: &AttributionQuery| -> AttributionResult {
        let (_, convs) = conversions_with_paths(&store, P, T, q).unwrap();
        if model.is_data_driven() {
            data_driven_report(&store, P, T, model, q, &convs).unwrap()
        } else {
            rule_report(model, &q.params, &convs)
        }
    };
    for model in [Model::Linear, Model::Markov, Model::Shapley] {
        // A new cache per model, so every model's first build is cold.
        if let Some(n) = first_only {
            let uncached = uncached_report(model, &query(full));
            let mut times = Vec::new();
            for _ in 0..n {
                let cache = PathsCache::new(budget);
                let t = Instant::now();
                let r = cache.report(&store, P, T, model, &query(full)).unwrap();
                times.push(format!("{:.3}", secs(t)));
                assert_eq!(r.rows, uncached.rows, "cached build equals the uncached answer");
            }
            println!("{model:?}: first full range {} s", times.join(", "));
            continue;
        }
        let cache = PathsCache::new(budget);
        forward.set(cache.clone());
        let t = Instant::now();
        let uncached = uncached_report(model, &query(full));
        let t_uncached = secs(t);
        let timed = |label: &'static str, range: (Ts, Ts)| -> (&'static str, f64, AttributionResult) {
            let t = Instant::now();
            let r = cache.report(&store, P, T, model, &query(range)).unwrap();
            (label, secs(t), r)
        };
        let mut runs = vec![timed("first full range", full), timed("repeat", full), timed("new week (cold)", week), timed("week slid 1 h", slid), timed("disjoint week", disjoint), timed("30-day window (prewarm)", window), timed("30-day window slid 5 s (default query)", window_5s)];
        assert_eq!(runs[0].2.rows, uncached.rows, "cached build equals the uncached answer");
        let verify = |runs: &[(&str, f64, AttributionResult)], ranges: &[(Ts, Ts)]| {
            for ((label, _, r), range) in runs.iter().zip(ranges) {
                let fresh = uncached_report(model, &query(*range));
                assert_eq!(r.rows, fresh.rows, "{label}: cached equals a fresh computation");
            }
        };
        verify(&runs, &[full, full, week, slid, disjoint, window, window_5s]);
        // A batch of changes: `changed` persons get new touchpoints/conversions.
        let mut txn = store.txn();
        for i in 0..changed {
            let person = (i * 7919) % persons;
            write_person(&mut txn, &mut rng, person, 1 + model as u32);
        }
        txn.commit(None).unwrap();
        runs.push(timed("full after changes", full));
        runs.push(timed("slid week after changes", slid));
        runs.push(timed("30-day window slid 10 s after changes", window_10s));
        verify(&runs[7..], &[full, slid, window_10s]);
        let line: Vec<String> = runs.iter().map(|(label, t, _)| format!("{label} {t:.4} s")).collect();
        println!("{model:?}: {} conversions; uncached full range {t_uncached:.3} s; {}", runs[0].2.conversions, line.join(", "));
        let s = cache.stats();
        println!("  cache: {} MiB charged, stats {s:?}", cache.charged_bytes() >> 20);
    }
}

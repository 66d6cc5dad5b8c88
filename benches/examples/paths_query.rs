//! End-to-end cost of an attribution query (linear, markov, shapley) over a large tenant, read from a
//! real RocksDB: the uncached computation, the cache's first (full) build, a
//! repeated query with no new data, and a query after a batch of changed persons
//! (the incremental path). Records are written straight through the storage
//! layer with the node's key layout, so the ingest pipeline is not measured here.
//!
//! ```sh
//! cargo run --release -p touchline-benches --example paths_query -- 1000000 1000
//! ```
//! (persons, persons changed between the last two queries).

use rand::{Rng, SeedableRng};
use std::time::Instant;
use touchline_actors::domain::models::Model;
use touchline_actors::domain::{Channel, ConversionInfo, Dims, GroupBy, TouchInfo, Ts};
use touchline_actors::query::attribution::{conversions_with_paths, rule_report, AttributionQuery, AttributionResult};
use touchline_actors::query::datadriven::data_driven_report;
use touchline_actors::query::paths_cache::PathsCache;
use touchline_actors::state::{key, ConvIndexRec, ConvRec, TenantMeta, TouchRec};
use touchline_storage::{Store, StoreOptions};

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
        txn.put_as(key::touch(P, T, person, rec.ts, &rec.event_id), &rec).unwrap();
    }
    if rng.random_bool(0.2) {
        let conversion = ConversionInfo { value: rng.random_range(10.0..500.0), currency: "USD".into(), conversion_type: None };
        let rec = ConvRec { event_id: format!("c{person}-{round}"), ts: Ts::new(ts + 3600, 0), customer_id: format!("c{person}"), conversion };
        txn.put_as(key::conv(P, T, person, rec.ts, &rec.event_id), &rec).unwrap();
        let idx = ConvIndexRec { person, currency: "USD".into(), value: rec.conversion.value };
        txn.put_as(key::conv_by_time(P, T, rec.ts, &rec.event_id), &idx).unwrap();
        return n + 1;
    }
    n
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let persons: u64 = args.next().map(|a| a.parse().expect("persons")).unwrap_or(100_000);
    let changed: u64 = args.next().map(|a| a.parse().expect("changed persons")).unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let cache = PathsCache::new(1 << 30);
    cache.observe(&store);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);

    let t = Instant::now();
    let mut records = 0usize;
    let mut txn = store.txn();
    let mut meta = TenantMeta::default();
    meta.currency_counts.insert("USD".into(), 1);
    txn.put_as(key::tenant_meta(P, T), &meta).unwrap();
    for person in 0..persons {
        records += write_person(&mut txn, &mut rng, person, 0);
        if person % 10_000 == 9_999 {
            txn.commit(None).unwrap();
            txn = store.txn();
        }
    }
    txn.commit(None).unwrap();
    println!("wrote {persons} persons, {records} records in {:.1} s", secs(t));

    let q = AttributionQuery {
        from: Ts::new(START, 0),
        to: Ts::new(START + 120 * DAY, 0),
        group_by: GroupBy::Channel,
        lookback_days: 30,
        params: Default::default(),
        currency: None,
        horizon: None,
    };
    let uncached_report = |model: Model| -> AttributionResult {
        let (_, convs) = conversions_with_paths(&store, P, T, &q).unwrap();
        if model.is_data_driven() {
            data_driven_report(&store, P, T, model, &q, &convs).unwrap()
        } else {
            rule_report(model, &q.params, &convs)
        }
    };
    for model in [Model::Linear, Model::Markov, Model::Shapley] {
        let t = Instant::now();
        let uncached = uncached_report(model);
        let t_uncached = secs(t);
        let t = Instant::now();
        let first = cache.report(&store, P, T, model, &q).unwrap();
        let t_build = secs(t);
        let t = Instant::now();
        let again = cache.report(&store, P, T, model, &q).unwrap();
        let t_again = secs(t);
        // A batch of changes: `changed` persons get new touchpoints/conversions.
        let mut txn = store.txn();
        for i in 0..changed {
            let person = (i * 7919) % persons;
            write_person(&mut txn, &mut rng, person, 1 + model as u32);
        }
        txn.commit(None).unwrap();
        let t = Instant::now();
        let updated = cache.report(&store, P, T, model, &q).unwrap();
        let t_update = secs(t);
        let fresh = uncached_report(model);
        assert_eq!(first.rows, uncached.rows, "cached build equals the uncached answer");
        assert_eq!(again.rows, first.rows);
        assert_eq!(updated.rows, fresh.rows, "updated entry equals a fresh computation");
        println!(
            "{model:?}: {} conversions; uncached {t_uncached:.3} s, cache build {t_build:.3} s, repeat {t_again:.4} s, after {changed} changed persons {t_update:.3} s",
            updated.conversions
        );
    }
    let s = cache.stats();
    println!("cache: {} MiB charged, stats {s:?}", cache.charged_bytes() >> 20);
}

//! Criterion benchmark of the retention sweep over a real RocksDB (the one
//! bench here with I/O): 5 000 persons × (10 touchpoints + 2 conversions) of
//! one tenant, plus the 10 000 conversion-index entries (70 000 timeline keys).
//!
//! - `steady_pass`: a whole sweep pass when nothing has expired (the usual
//!   tick): one key per person and a seek to the next person;
//! - `full_scan`: reading every timeline key once (`Store::scan_prefix`), the
//!   cost a sweep without seeks would pay on every pass;
//! - `expiring_pass`: a pass that deletes the older half of every timeline
//!   (fresh store per iteration, built outside the timing).
//!
//! One element = one timeline key in the store. Run (see BENCHMARKS.md):
//! `cargo bench -p touchline-benches --bench retention -- --warm-up-time 1 --measurement-time 5`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use touchline_actors::domain::retention::RetentionPolicy;
use touchline_actors::domain::Ts;
use touchline_actors::state::retention::Sweeper;
use touchline_actors::state::{key, ConvIndexRec, TenantMeta};
use touchline_storage::{codec, Store};

const PERSONS: u64 = 5_000;
const TOUCHES: i64 = 10;
const CONVS: i64 = 2;
const KEYS: u64 = PERSONS * (TOUCHES + 2 * CONVS) as u64;
const DAY: i64 = 86_400;
const P: u16 = 0;
const T: &str = "acme";

/// A store with the timelines above: touchpoint `i` on day `i`, conversions on days 4 and 9.
fn build() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), &Default::default()).expect("open");
    let mut txn = store.txn();
    txn.put(key::tenant_index(P, T), Vec::new());
    let meta = TenantMeta { max_ts: Some(Ts::new(10 * DAY, 0)), ..Default::default() };
    txn.put(key::tenant_meta(P, T), codec::encode(&meta).expect("meta"));
    let idx = codec::encode(&ConvIndexRec { person: 0, currency: "USD".into(), value: 1.0, late: false }).expect("index");
    for person in 0..PERSONS {
        for i in 0..TOUCHES {
            txn.put(key::touch(P, T, person, Ts::new(i * DAY, 0), &format!("t{person}-{i}")), vec![0; 64]);
        }
        for d in [4, 9].into_iter().take(CONVS as usize) {
            let (ts, eid) = (Ts::new(d * DAY, 1), format!("c{person}-{d}"));
            txn.put(key::conv(P, T, person, ts, &eid), vec![0; 64]);
            txn.put(key::conv_by_time(P, T, ts, &eid), idx.clone());
        }
    }
    txn.commit(None).expect("commit");
    (dir, store)
}

fn pass(store: &Store, days: u32) -> u64 {
    let mut sw = Sweeper::new();
    let mut deleted = 0;
    loop {
        let mut txn = store.txn();
        let r = sw.step(&mut txn, &[P], &RetentionPolicy::new(days), 10_000).expect("step");
        txn.commit(None).expect("commit");
        deleted += r.deleted;
        if r.pass_completed {
            return deleted;
        }
    }
}

fn bench_sweep(c: &mut Criterion) {
    let (_dir, store) = build();
    let mut g = c.benchmark_group("retention_sweep");
    g.throughput(Throughput::Elements(KEYS));
    g.sample_size(10);
    assert_eq!(pass(&store, 30), 0, "nothing expires under 30 days");
    g.bench_function("steady_pass", |b| b.iter(|| pass(&store, 30)));
    g.bench_function("full_scan", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for space in [touchline_storage::keys::Space::Touch, touchline_storage::keys::Space::Conversion, touchline_storage::keys::Space::ConversionByTime] {
                let prefix = touchline_storage::keys::KeyBuf::space(P, space).tenant(T).into_vec();
                store.scan_prefix(&prefix, |_, _| {
                    n += 1;
                    true
                })
                .expect("scan");
            }
            assert_eq!(n, KEYS);
            n
        })
    });
    // Horizon day 5: touchpoints 0..=4 and the day-4 conversion (+ its index entry) go.
    g.bench_function("expiring_pass", |b| {
        b.iter_batched(build, |(_d, s)| assert_eq!(pass(&s, 5), PERSONS * 7), BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, bench_sweep);
criterion_main!(benches);

//! The cache against the uncached computation: random batches of touchpoints,
//! conversions (of varied values), person moves (what a merge does to keys) and
//! erasures, each committed through a real RocksDB transaction; after every
//! batch both answers must be identical, values included, and the data-driven
//! values must follow the conversions' own values (attribution.md).

use super::*;
use crate::domain::{Channel, ConversionInfo, Dims, GroupBy, TouchInfo, Ts};
use crate::query::attribution::conversions_with_paths;
use crate::domain::report::ExactSum;
use crate::query::datadriven::data_driven_report;
use crate::state::{key, ConvRec, TenantMeta, TenantState, TouchRec};
use proptest::prelude::*;
use touchline_storage::{Store, StoreOptions};

const P: u16 = 3;
const T: &str = "acme";
const CHANNELS: [Channel; 4] = [Channel::Email, Channel::Search, Channel::Display, Channel::Social];

#[derive(Clone, Debug)]
enum Op {
    /// At `sec` seconds into `day`.
    Touch { person: u64, day: i64, sec: i64, channel: usize },
    Convert { person: u64, day: i64, sec: i64, value: u32 },
    /// Moves every record of `from` to `to` (a merge).
    Move { from: u64, to: u64 },
    /// Deletes every record of the person (an erasure).
    Erase { person: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..12u64, 0..40i64, 0..1000i64, 0..4usize).prop_map(|(person, day, sec, channel)| Op::Touch { person, day, sec, channel }),
        2 => (0..12u64, 0..40i64, 0..1000i64, 1..500u32).prop_map(|(person, day, sec, value)| Op::Convert { person, day, sec, value }),
        1 => (0..12u64, 0..12u64).prop_map(|(from, to)| Op::Move { from, to }),
        1 => (0..12u64).prop_map(|person| Op::Erase { person }),
    ]
}

/// The test's epoch: a whole hour, so `ts(day, k·3600)` starts an hour.
const BASE: i64 = 1_699_999_200;

fn ts(day: i64, sec: i64) -> Ts {
    Ts::new(BASE + day * 86_400 + sec, 0)
}

/// A time on hour edges: the first second, the second after it, half past
/// and the last second of an hour of a day.
fn edge_secs() -> impl Strategy<Value = i64> {
    (0..24i64, prop::sample::select(vec![0i64, 1, 1799, 3599])).prop_map(|(h, e)| h * 3600 + e)
}

/// Touchpoints and conversions on hour edges over 12 days.
fn edge_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..10u64, 0..12i64, edge_secs(), 0..4usize).prop_map(|(person, day, sec, channel)| Op::Touch { person, day, sec, channel }),
        2 => (0..10u64, 0..12i64, edge_secs(), 1..500u32).prop_map(|(person, day, sec, value)| Op::Convert { person, day, sec, value }),
        1 => (0..10u64, 0..10u64).prop_map(|(from, to)| Op::Move { from, to }),
        1 => (0..10u64).prop_map(|person| Op::Erase { person }),
    ]
}

/// How the next query's range follows the previous one.
#[derive(Clone, Debug)]
enum RangeOp {
    /// A range of its own (nested in, overlapping or disjoint from others).
    Abs { day: i64, sec: i64, span_hours: i64, extra_secs: i64 },
    /// The previous range moved by this many seconds (same length).
    Slide(i64),
}

fn range_op() -> impl Strategy<Value = RangeOp> {
    prop_oneof![
        2 => (0..12i64, edge_secs(), 0..200i64, prop::sample::select(vec![0i64, 1, 3599])).prop_map(|(day, sec, span_hours, extra_secs)| RangeOp::Abs { day, sec, span_hours, extra_secs }),
        2 => prop::sample::select(vec![1i64, 3600, 3601, 7200, 86_400, -3600, -1]).prop_map(RangeOp::Slide),
    ]
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    n: u64,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let mut txn = store.txn();
        let mut meta = TenantMeta::default();
        meta.currency_counts.insert("USD".into(), 1);
        txn.put_as(key::tenant_meta(P, T), &meta).unwrap();
        txn.commit(None).unwrap();
        World { _dir: dir, store, n: 0 }
    }


    fn apply(&mut self, batch: &[Op]) {
        let mut txn = self.store.txn();
        for op in batch {
            self.n += 1;
            let n = self.n;
            match *op {
                Op::Touch { person, day, sec, channel } => {
                    let touch = TouchInfo { channel: CHANNELS[channel], interaction_type: "click".into(), dims: Dims::default() };
                    let rec = TouchRec { event_id: format!("t{n}"), ts: ts(day, sec), customer_id: format!("c{person}"), touch };
                    TenantState::records(&mut txn, P, T).put_touch(person, &rec).unwrap();
                }
                Op::Convert { person, day, sec, value } => {
                    let conversion = ConversionInfo { value: value as f64 / 4.0, currency: "USD".into(), conversion_type: None };
                    let rec = ConvRec { event_id: format!("c{n}"), ts: ts(day, sec), customer_id: format!("c{person}"), conversion, late: false };
                    TenantState::records(&mut txn, P, T).put_conversion(person, &rec).unwrap();
                }
                Op::Move { from, to } if from != to => {
                    let m = crate::domain::identity::Move { from, to, nodes: Vec::new(), whole: true };
                    TenantState::records(&mut txn, P, T).apply_move(&m).unwrap();
                }
                Op::Move { .. } => {}
                Op::Erase { person } => {
                    let (touches, convs) = records(&txn, person);
                    for t in touches {
                        txn.delete(key::touch(P, T, person, t.ts, &t.event_id));
                    }
                    for c in convs {
                        txn.delete(key::conv(P, T, person, c.ts, &c.event_id));
                        txn.delete(key::conv_by_time(P, T, c.ts, &c.event_id));
                    }
                    txn.delete(key::summary(P, T, person));
                }
            }
        }
        txn.commit(None).unwrap();
    }
}

/// A person's records as the batch so far sees them.
fn records(txn: &touchline_storage::Txn, person: u64) -> (Vec<TouchRec>, Vec<ConvRec>) {
    let touches = txn.prefix_as::<TouchRec>(&key::touch_prefix(P, T, person)).unwrap();
    let convs = txn.prefix_as::<ConvRec>(&key::conv_prefix(P, T, person)).unwrap();
    (touches, convs)
}

fn query(from_day: i64, to_day: i64, lookback_days: i64) -> AttributionQuery {
    AttributionQuery {
        from: ts(from_day, 0),
        to: ts(to_day, 0),
        group_by: GroupBy::Channel,
        lookback_days,
        params: Default::default(),
        currency: None,
        horizon: None,
    }
}

fn uncached(store: &Store, model: Model, q: &AttributionQuery) -> AttributionResult {
    let (currency, convs) = conversions_with_paths(store, P, T, q).unwrap();
    let mut r = if model.is_data_driven() {
        data_driven_report(store, P, T, model, q, &convs).unwrap()
    } else {
        crate::query::attribution::rule_report(model, &q.params, &convs)
    };
    r.currency = currency;
    r
}

fn same(a: &AttributionResult, b: &AttributionResult) -> bool {
    a.conversions == b.conversions && a.conversion_value == b.conversion_value && a.currency == b.currency && a.rows == b.rows
}

/// Whether a markov/shapley report's values follow the conversions' own values
/// (any other model passes): `(direct)` has exactly the value of the
/// conversions without a path; the other rows share the modelled conversions'
/// total value (to 1e-9 relative), under markov in proportion to their credits.
fn values_follow_conversions(store: &Store, model: Model, q: &AttributionQuery, r: &AttributionResult) -> Result<(), String> {
    if !model.is_data_driven() {
        return Ok(());
    }
    let (_, convs) = conversions_with_paths(store, P, T, q).unwrap();
    let (mut direct, mut modelled, mut n) = (ExactSum::new(), ExactSum::new(), 0u64);
    for c in &convs {
        if c.touches.is_empty() {
            direct.add(c.value);
        } else {
            modelled.add(c.value);
            n += 1;
        }
    }
    let direct_row = r.rows.iter().find(|row| row.key == crate::domain::DIRECT_KEY).map_or(0.0, |row| row.value);
    if direct_row != direct.value() {
        return Err(format!("(direct) value {direct_row}, its conversions' {}", direct.value()));
    }
    let rows: Vec<_> = r.rows.iter().filter(|row| row.key != crate::domain::DIRECT_KEY).collect();
    if rows.is_empty() {
        return Ok(()); // no modelled credit (no conversion with a path)
    }
    let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= 1e-9 * scale.max(a.abs()).max(b.abs());
    let (v, scale) = (modelled.value(), rows.iter().map(|row| row.value.abs()).sum::<f64>());
    let sum: f64 = rows.iter().map(|row| row.value).sum();
    if !close(sum, v, scale) {
        return Err(format!("modelled values sum to {sum}, the conversions' to {v}"));
    }
    if model == Model::Markov {
        for row in rows {
            if !close(row.value * n as f64, row.credit * v, 0.0) {
                return Err(format!("{}: value {} credit {} of {n} conversions worth {v}", row.key, row.value, row.credit));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn cached_reports_equal_uncached_after_every_batch(
        batches in prop::collection::vec(prop::collection::vec(op(), 1..8), 1..10),
        (from_day, span, lookback) in (0..20i64, 1..30i64, 0..10i64),
        horizon_steps in prop::collection::vec(prop::option::of(0..6i64), 10),
    ) {
        let mut w = World::new();
        let cache = PathsCache::new(64 << 20);
        cache.observe(&w.store);
        let mut q = query(from_day, from_day + span, lookback);
        let mut horizon_day: Option<i64> = None;
        for (i, batch) in batches.iter().enumerate() {
            w.apply(batch);
            // A retention horizon that only moves forward (or stays unset).
            if let Some(step) = horizon_steps[i] {
                horizon_day = Some(horizon_day.map_or(step, |d| d + step));
            }
            q.horizon = horizon_day.map(|d| ts(d, 0));
            // Every model; time_decay with the default and another half-life
            // (two aggregates of one model), custom with weights.
            q.params.custom_weights = Some([30.0, 40.0, 30.0]);
            for (model, half_life_days) in Model::ALL.iter().map(|m| (*m, 7.0)).chain([(Model::TimeDecay, 0.5)]) {
                q.params.half_life_secs = half_life_days * 86_400.0;
                let cached = cache.report(&w.store, P, T, model, &q).unwrap();
                let fresh = uncached(&w.store, model, &q);
                prop_assert!(same(&cached, &fresh), "{model:?} after {batch:?}:\ncached {cached:?}\nfresh  {fresh:?}");
                if let Err(e) = values_follow_conversions(&w.store, model, &q, &cached) {
                    prop_assert!(false, "{model:?} after {batch:?}: {e}\n{cached:?}");
                }
            }
        }
        // A later batch that wrote a record was answered by an update (a
        // rebuild only when the horizon or too many persons changed).
        let later_writes = batches.iter().skip(1).flatten().any(|op| matches!(op, Op::Touch { .. } | Op::Convert { .. }));
        if later_writes && horizon_steps.iter().all(Option::is_none) {
            prop_assert!(cache.stats().updates.load(Ordering::Relaxed) > 0);
        }
    }
}

/// Ranges one after another for the same shape: each a range of its own or
/// the previous one slid (what the index derives from), all on hour edges.
fn next_range(prev: Option<(Ts, Ts)>, op: &RangeOp) -> (Ts, Ts) {
    match (op, prev) {
        (RangeOp::Slide(d), Some((f, t))) => (f.plus_secs(*d), t.plus_secs(*d)),
        (RangeOp::Abs { day, sec, span_hours, extra_secs }, _) => {
            let from = ts(*day, *sec);
            (from, from.plus_secs(span_hours * 3600 + extra_secs))
        }
        (RangeOp::Slide(_), None) => (ts(0, 0), ts(12, 0)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random ranges (overlapping, slid, nested, disjoint) after random
    /// batches: whether an entry is built from the index, derived from
    /// another range's or updated, every model's answer is the uncached one.
    #[test]
    fn random_ranges_equal_uncached_after_every_batch(
        batches in prop::collection::vec((prop::collection::vec(edge_op(), 1..8), prop::collection::vec(range_op(), 1..4)), 1..8),
        lookback in 0..3i64,
        horizon_steps in prop::collection::vec(prop::option::weighted(0.2, 0..2i64), 8),
    ) {
        let mut w = World::new();
        let cache = PathsCache::new(64 << 20);
        cache.observe(&w.store);
        let mut prev: Option<(Ts, Ts)> = None;
        let mut horizon_day: Option<i64> = None;
        for (i, (batch, ranges)) in batches.iter().enumerate() {
            w.apply(batch);
            if let Some(step) = horizon_steps[i] {
                horizon_day = Some(horizon_day.map_or(step, |d| d + step));
            }
            for r in ranges {
                let (from, to) = next_range(prev, r);
                prev = Some((from, to));
                let mut q = query(0, 0, lookback);
                (q.from, q.to) = (from, to);
                q.horizon = horizon_day.map(|d| ts(d, 0));
                q.params.custom_weights = Some([30.0, 40.0, 30.0]);
                for model in Model::ALL {
                    let cached = cache.report(&w.store, P, T, model, &q).unwrap();
                    let fresh = uncached(&w.store, model, &q);
                    prop_assert!(same(&cached, &fresh), "{model:?} over [{from}, {to}) after {batch:?}:\ncached {cached:?}\nfresh  {fresh:?}");
                    if let Err(e) = values_follow_conversions(&w.store, model, &q, &cached) {
                        prop_assert!(false, "{model:?} over [{from}, {to}) after {batch:?}: {e}\n{cached:?}");
                    }
                }
            }
        }
        prop_assert_eq!(cache.stats().full_scans.load(Ordering::Relaxed), 0, "the index answers every new range");
    }
}


#[test]
fn data_driven_values_follow_each_conversions_value() {
    // Person 1: email, then a conversion worth 10; person 2: a conversion
    // without a touchpoint worth 7; person 3: search, then one worth 30;
    // person 4: search, no conversion. (Op values are quarters.)
    let mut w = World::new();
    let cache = PathsCache::new(64 << 20);
    cache.observe(&w.store);
    w.apply(&[
        Op::Touch { person: 1, day: 1, sec: 0, channel: 0 },
        Op::Convert { person: 1, day: 2, sec: 0, value: 40 },
        Op::Convert { person: 2, day: 2, sec: 0, value: 28 },
        Op::Touch { person: 3, day: 1, sec: 0, channel: 1 },
        Op::Convert { person: 3, day: 2, sec: 0, value: 120 },
        Op::Touch { person: 4, day: 1, sec: 0, channel: 1 },
    ]);
    let q = query(0, 40, 30);
    let row = |r: &AttributionResult, k: &str| r.rows.iter().find(|row| row.key == k).map(|row| (row.credit, row.value));
    // Markov: P = 2/3, both removal effects 1/2: one conversion each and half
    // of the modelled 40 each (not the average 47/3 per conversion).
    // Shapley: each single-key set keeps its own conversion and value.
    for (model, email, search) in [(Model::Markov, (1.0, 20.0), (1.0, 20.0)), (Model::Shapley, (1.0, 10.0), (1.0, 30.0))] {
        for r in [cache.report(&w.store, P, T, model, &q).unwrap(), uncached(&w.store, model, &q)] {
            assert_eq!((r.conversions, r.conversion_value), (3, 47.0));
            assert_eq!(row(&r, crate::domain::DIRECT_KEY), Some((1.0, 7.0)), "{model:?}: the empty path's own value");
            for (k, (credit, value)) in [("email", email), ("search", search)] {
                let (c, v) = row(&r, k).unwrap_or_else(|| panic!("{model:?}: no {k} in {r:?}"));
                assert!((c - credit).abs() < 1e-12 && (v - value).abs() < 1e-9, "{model:?} {k}: {c}, {v}");
            }
        }
    }
    // Retracting person 3 (an erasure) takes its path's value out exactly.
    w.apply(&[Op::Erase { person: 3 }]);
    let r = cache.report(&w.store, P, T, Model::Shapley, &q).unwrap();
    assert_eq!(r.rows.iter().map(|row| (row.key.as_str(), row.credit, row.value)).collect::<Vec<_>>(), [("(direct)", 1.0, 7.0), ("email", 1.0, 10.0)]);
    assert!(same(&r, &uncached(&w.store, Model::Shapley, &q)));
}

#[test]
fn consent_write_invalidates_the_tenant() {
    let mut w = World::new();
    let cache = PathsCache::new(64 << 20);
    cache.observe(&w.store);
    let q = query(0, 40, 30);
    w.apply(&[Op::Touch { person: 1, day: 1, sec: 0, channel: 0 }, Op::Convert { person: 1, day: 2, sec: 0, value: 4 }]);
    cache.report(&w.store, P, T, Model::Markov, &q).unwrap();
    let mut txn = w.store.txn();
    let rec = crate::state::ConsentRec { ts: ts(0, 0), event_id: "k1".into(), analytics: true };
    txn.put_as(key::consent(P, T, "c1", rec.ts, &rec.event_id), &rec).unwrap();
    txn.commit(None).unwrap();
    let builds = cache.stats().builds.load(Ordering::Relaxed);
    cache.report(&w.store, P, T, Model::Markov, &q).unwrap();
    assert_eq!(cache.stats().builds.load(Ordering::Relaxed), builds + 1, "a consent write rebuilds");
}

#[test]
fn partition_reset_rebuilds_and_budget_bounds_entries() {
    let mut w = World::new();
    let cache = PathsCache::new(64 << 20);
    cache.observe(&w.store);
    w.apply(&[Op::Touch { person: 1, day: 1, sec: 0, channel: 0 }, Op::Convert { person: 1, day: 2, sec: 0, value: 4 }]);
    let q = query(0, 40, 30);
    let first = cache.report(&w.store, P, T, Model::Shapley, &q).unwrap();
    assert_eq!(first.conversions, 1);
    w.store.drop_partition(P).unwrap();
    let after = cache.report(&w.store, P, T, Model::Shapley, &q).unwrap();
    assert_eq!(after.conversions, 0, "a dropped partition is not answered from the cache");

    let tiny = PathsCache::new(1);
    tiny.observe(&w.store); // ignored: the store has its observer
    let mut w2 = World::new();
    tiny.observe(&w2.store);
    w2.apply(&[Op::Touch { person: 1, day: 1, sec: 0, channel: 0 }, Op::Convert { person: 1, day: 2, sec: 0, value: 4 }]);
    let r = tiny.report(&w2.store, P, T, Model::Markov, &q).unwrap();
    assert_eq!(r.conversions, 1, "an entry over the budget still answers");
    assert_eq!(tiny.charged_bytes(), 0, "and is not kept");
}

#[test]
fn quiet_tenant_is_answered_without_rebuilding() {
    let mut w = World::new();
    let cache = PathsCache::new(64 << 20);
    cache.observe(&w.store);
    w.apply(&[Op::Touch { person: 1, day: 1, sec: 0, channel: 0 }, Op::Convert { person: 1, day: 2, sec: 0, value: 4 }]);
    let q = query(0, 40, 30);
    for _ in 0..3 {
        cache.report(&w.store, P, T, Model::Markov, &q).unwrap();
    }
    assert_eq!(cache.stats().builds.load(Ordering::Relaxed), 1);
    w.apply(&[Op::Touch { person: 2, day: 3, sec: 0, channel: 1 }]);
    cache.report(&w.store, P, T, Model::Markov, &q).unwrap();
    assert_eq!(cache.stats().builds.load(Ordering::Relaxed), 1);
    assert_eq!(cache.stats().persons_recomputed.load(Ordering::Relaxed), 1);
}

#[test]
fn a_moving_horizon_recomputes_only_persons_with_older_records() {
    let mut w = World::new();
    let cache = PathsCache::new(64 << 20);
    cache.observe(&w.store);
    w.apply(&[
        Op::Touch { person: 1, day: 1, sec: 0, channel: 0 },
        Op::Convert { person: 1, day: 2, sec: 0, value: 4 },
        Op::Touch { person: 2, day: 10, sec: 0, channel: 1 },
        Op::Convert { person: 2, day: 11, sec: 0, value: 8 },
    ]);
    let mut q = query(0, 40, 30);
    assert_eq!(cache.report(&w.store, P, T, Model::Markov, &q).unwrap().conversions, 2);
    q.horizon = Some(ts(5, 0));
    let r = cache.report(&w.store, P, T, Model::Markov, &q).unwrap();
    assert_eq!(r.conversions, 1, "person 1's conversion is behind the horizon");
    assert!(same(&r, &uncached(&w.store, Model::Markov, &q)));
    assert_eq!(cache.stats().builds.load(Ordering::Relaxed), 1, "no rebuild");
    assert_eq!(cache.stats().persons_recomputed.load(Ordering::Relaxed), 1, "only person 1");
}

#[test]
fn new_ranges_come_from_the_index_and_a_slid_window_moves_its_entry() {
    let mut w = World::new();
    let cache = PathsCache::new(64 << 20);
    cache.observe(&w.store);
    let mut batch = Vec::new();
    for person in 0..40u64 {
        batch.push(Op::Touch { person, day: person as i64 % 10, sec: 3600 * (person as i64 % 24), channel: person as usize % 4 });
        batch.push(Op::Convert { person, day: person as i64 % 10, sec: 3600 * (person as i64 % 24) + 60, value: 8 });
    }
    w.apply(&batch);
    let stat = |s: &AtomicUsize| s.load(Ordering::Relaxed);
    let check = |w: &World, q: &AttributionQuery| {
        let r = cache.report(&w.store, P, T, Model::Linear, q).unwrap();
        assert!(same(&r, &uncached(&w.store, Model::Linear, q)));
        r
    };
    let mut q = query(0, 10, 1);
    check(&w, &q);
    assert_eq!((stat(&cache.stats().builds), stat(&cache.stats().full_scans), stat(&cache.stats().index_builds)), (1, 0, 1));
    // The window one hour later: derived by recomputing the persons of the
    // two hours that changed, and moved (the old range is not kept).
    let recomputed = stat(&cache.stats().persons_recomputed);
    (q.from, q.to) = (q.from.plus_secs(3600), q.to.plus_secs(3600));
    check(&w, &q);
    assert_eq!(stat(&cache.stats().derives), 1);
    assert!(stat(&cache.stats().persons_recomputed) - recomputed <= 4, "only the persons of the hours that left and came");
    assert_eq!(lock(&cache.slots).len(), 1, "a slid window moves its entry");
    // A nested range is derived from a copy: both stay cached.
    let mut nested = q.clone();
    (nested.from, nested.to) = (ts(2, 0), ts(8, 0));
    check(&w, &nested);
    assert_eq!(lock(&cache.slots).len(), 2);
    // A small disjoint range is built from its own persons.
    let builds = stat(&cache.stats().builds);
    let mut small = q.clone();
    (small.from, small.to) = (ts(30, 0), ts(31, 0));
    assert_eq!(check(&w, &small).conversions, 0);
    assert_eq!(stat(&cache.stats().builds), builds + 1);
    assert_eq!(stat(&cache.stats().full_scans), 0);
    // A commit reaches the index: a conversion in a range no entry covers yet.
    w.apply(&[Op::Convert { person: 3, day: 30, sec: 7200, value: 4 }]);
    (small.from, small.to) = (ts(30, 3600), ts(30, 10_800));
    assert_eq!(check(&w, &small).conversions, 1);
}

#[test]
fn an_index_over_half_the_budget_is_dropped_and_scans_answer() {
    let mut w = World::new();
    let cache = PathsCache::new(150);
    cache.observe(&w.store);
    let batch: Vec<Op> = (0..30u64).map(|person| Op::Touch { person, day: 1, sec: 0, channel: 0 }).collect();
    w.apply(&batch);
    let q = query(0, 5, 1);
    let r = cache.report(&w.store, P, T, Model::Markov, &q).unwrap();
    assert!(same(&r, &uncached(&w.store, Model::Markov, &q)));
    assert_eq!(cache.stats().full_scans.load(Ordering::Relaxed), 1);
    assert!(lock(&cache.journal).indexes.is_empty());
    assert!(cache.charged_bytes() <= 150);
}

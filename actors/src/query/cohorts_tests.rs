//! Cohorts from the summaries against cohorts from the records (the
//! timeline scan, as before summaries): random persons with touchpoints
//! (equal times included), conversions in two currencies and consent
//! withdrawals, random ranges (empty ones, ones that cut a cohort, ones
//! without a cohort start) and retention horizons: both give the same cells.

use super::*;
use crate::domain::identity::{IdKind, IdNode, PersonIds};
use crate::domain::{Channel, ConversionInfo, Dims, TouchInfo};
use crate::state::{key, PersonRec, TenantMeta, TenantState};
use proptest::prelude::*;
use touchline_storage::StoreOptions;

const P: u16 = 2;
const T: &str = "acme";
/// A Monday (2026-10-05T00:00:00Z): day 0 of the generated data.
const BASE: i64 = 1_791_158_400;

#[derive(Clone, Debug)]
struct Person {
    /// (hour, channel, campaign)
    touches: Vec<(i64, usize, usize)>,
    /// (hour, value, in EUR)
    convs: Vec<(i64, u32, bool)>,
    /// (hour, analytics)
    consent: Vec<(i64, bool)>,
}

fn person() -> impl Strategy<Value = Person> {
    (
        prop::collection::vec((0..40 * 24i64, 0..4usize, 0..3usize), 0..6),
        prop::collection::vec((0..40 * 24i64, 1..500u32, prop::bool::weighted(0.2)), 0..3),
        prop::collection::vec((0..40 * 24i64, any::<bool>()), 0..2),
    )
        .prop_map(|(touches, convs, consent)| Person { touches, convs, consent })
}

fn hour(h: i64) -> Ts {
    Ts::new(BASE + h * 3600, 0)
}

fn store_of(persons: &[Person]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let mut txn = store.txn();
    let mut meta = TenantMeta::default();
    meta.currency_counts.insert("USD".into(), 1);
    let mut st = TenantState::with_meta(&mut txn, P, T, meta);
    for (i, p) in persons.iter().enumerate() {
        let (person, cid) = (i as u64 * 7 + 1, format!("c{i}"));
        for (j, &(h, ch, camp)) in p.touches.iter().enumerate() {
            let dims = Dims { campaign: (camp > 0).then(|| format!("k{camp}")), ..Dims::default() };
            let touch = TouchInfo { channel: [Channel::Email, Channel::Search, Channel::Display, Channel::Social][ch], interaction_type: "click".into(), dims };
            // Hours only: two touchpoints of a person often share a time.
            st.put_touch(person, &TouchRec { event_id: format!("t{i}-{j}"), ts: hour(h), customer_id: cid.clone(), touch }).unwrap();
        }
        for (j, &(h, value, eur)) in p.convs.iter().enumerate() {
            let conversion = ConversionInfo { value: value as f64 / 10.0, currency: if eur { "EUR" } else { "USD" }.into(), conversion_type: None };
            st.put_conversion(person, &ConvRec { event_id: format!("c{i}-{j}"), ts: hour(h).plus_secs(1), customer_id: cid.clone(), conversion, late: false }).unwrap();
        }
        for (j, &(h, analytics)) in p.consent.iter().enumerate() {
            st.put_consent(&cid, hour(h), &format!("u{i}-{j}"), analytics).unwrap();
        }
        let ids = PersonIds { members: vec![IdNode { kind: IdKind::Customer, id: cid }], guarded: false };
        st.txn.put_as(key::person(P, T, person), &PersonRec { ids, segments: Vec::new() }).unwrap();
    }
    st.save().unwrap();
    drop(st);
    txn.commit(None).unwrap();
    (dir, store)
}

fn query(cohort: Granularity, by: GroupBy, from_h: i64, len_h: i64, horizon_h: Option<i64>, currency: Option<&str>) -> CohortQuery {
    CohortQuery { cohort, by, from: hour(from_h), to: hour(from_h + len_h), currency: currency.map(str::to_string), horizon: horizon_h.map(hour) }
}

/// Both paths' cells, as comparable rows.
fn both(store: &Store, q: &CohortQuery) -> (Vec<String>, Vec<String>) {
    let meta = crate::query::tenant_meta(store, P, T).unwrap().unwrap();
    let currency = q.currency.clone().or_else(|| meta.default_currency());
    let rows = |cells: Cells| cells.into_iter().map(|((s, k), c)| format!("{s} {k} {} {} {} {}", c.persons, c.converted, c.conversions, c.revenue.value())).collect::<Vec<_>>();
    let mut consent = ConsentCache::new(store, P, T, &meta);
    let want = rows(cells_from_records(store, P, T, q, currency.as_deref(), &mut consent, None).unwrap());
    let got = match first_touch_window(q) {
        Some(w) => rows(cells_from_summaries(store, P, T, q, currency.as_deref(), &mut ConsentCache::new(store, P, T, &meta), w).unwrap()),
        None => Vec::new(),
    };
    (got, want)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn cohorts_from_summaries_equal_cohorts_from_records(
        persons in prop::collection::vec(person(), 1..40),
        ranges in prop::collection::vec((any::<bool>(), 0..4usize, -24 * 3..42 * 24i64, 0..20 * 24i64, prop::option::of(0..20 * 24i64), any::<bool>()), 1..8),
    ) {
        let (_dir, store) = store_of(&persons);
        let by = [GroupBy::Channel, GroupBy::Campaign, GroupBy::Journey, GroupBy::Campaign];
        for (week, b, from_h, len_h, horizon_h, eur) in ranges {
            let g = if week { Granularity::Week } else { Granularity::Day };
            let q = query(g, by[b], from_h, len_h, horizon_h, eur.then_some("EUR"));
            let (got, want) = both(&store, &q);
            prop_assert_eq!(got, want, "{:?}", q);
        }
    }
}

#[test]
fn the_window_holds_exactly_the_first_touches_whose_cohort_starts_in_the_range() {
    for g in [Granularity::Day, Granularity::Week] {
        for (from_h, len_h) in [(0, 0), (0, 1), (1, 24), (1, 24 * 6), (1, 24 * 7), (0, 24 * 8), (-5, 24 * 9), (30, 24 * 13 + 5)] {
            let q = query(g, GroupBy::Channel, from_h, len_h, None, None);
            let w = first_touch_window(&q);
            for h in -24 * 10..24 * 30 {
                let ts = hour(h);
                let start = Ts::new(bucket_start(ts, g), 0);
                let inside = start >= q.from && start < q.to;
                assert_eq!(inside, w.is_some_and(|(lo, hi)| ts >= lo && ts < hi), "{g:?} {from_h}+{len_h} at {h}");
            }
        }
    }
    // A range without a cohort start (Tuesday to Sunday for weeks) is empty.
    assert_eq!(first_touch_window(&query(Granularity::Week, GroupBy::Channel, 24, 24 * 5, None, None)), None);
}

#[test]
fn an_empty_or_startless_range_answers_no_rows_and_a_cut_range_only_its_cohorts() {
    let p = Person { touches: vec![(2, 0, 1), (24 * 8, 1, 2)], convs: vec![(24 * 9, 100, false)], consent: vec![] };
    let q = Person { touches: vec![(24 * 8 + 3, 2, 0)], convs: vec![], consent: vec![(0, false), (24 * 8, true)] };
    let (_dir, store) = store_of(&[p, q]);
    let rows = |from_h: i64, len_h: i64| {
        let v = cohorts(&store, P, T, &query(Granularity::Week, GroupBy::Channel, from_h, len_h, None, None)).unwrap();
        v.rows.iter().map(|r| format!("{} {} {} {}", &r.cohort_start[..10], r.key, r.persons, r.converted_persons)).collect::<Vec<_>>()
    };
    assert_eq!(rows(-24 * 30, 24 * 7), Vec::<String>::new(), "a range before every touchpoint");
    assert_eq!(rows(1, 24 * 5), Vec::<String>::new(), "no Monday in the range");
    assert_eq!(rows(0, 24 * 14), vec!["2026-10-05 email 1 1", "2026-10-12 display 1 0"]);
    // Cut after the first week's start: only the second week's cohort, and
    // the first person stays in its own (first-touch) cohort.
    assert_eq!(rows(1, 24 * 13), vec!["2026-10-12 display 1 0"]);
}

#[test]
fn a_sweep_split_over_threads_equals_the_records() {
    // More persons than one thread sweeps (4096 person ids), consent included.
    let persons: Vec<Person> = (0..4200i64)
        .map(|i| Person {
            touches: (0..i % 4).map(|j| ((i * 37 + j * 53) % (30 * 24), (i + j) as usize % 4, (i % 3) as usize)).collect(),
            convs: if i % 3 == 0 { vec![((i * 11) % (35 * 24), (i % 400 + 1) as u32, i % 7 == 0)] } else { vec![] },
            consent: if i % 10 == 0 { vec![((i * 13) % (30 * 24), i % 20 == 0)] } else { vec![] },
        })
        .collect();
    let (_dir, store) = store_of(&persons);
    for q in [query(Granularity::Week, GroupBy::Channel, -24, 24 * 40, None, None), query(Granularity::Day, GroupBy::Campaign, 30, 24 * 9, Some(24 * 3), Some("EUR"))] {
        let (got, want) = both(&store, &q);
        assert!(want.len() > 5, "{want:?}");
        assert_eq!(got, want, "{q:?}");
    }
}

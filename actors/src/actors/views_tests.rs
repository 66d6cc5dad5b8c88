//! Cohorts and journey performance from the report cache (its view entries,
//! `query::paths_cache`) through the partition actor over a real RocksDB
//! store: for a random event stream (touchpoints of several journeys,
//! conversions in two currencies, logins that merge persons — late merges
//! included, as the arrival order is shuffled —, consent withdrawals and
//! grants, erasures, a retention horizon that moves with the newest event)
//! applied in random batches, after every batch the cached answers equal the
//! fresh computation exactly, for every grouping, cohort width, range,
//! journey, granularity and lookback asked.

use super::tests::{apply, harness, records};
use super::*;
use crate::domain::retention::RetentionPolicy;
use crate::domain::window::Granularity;
use crate::domain::{GroupBy, Ts};
use crate::query::cohorts::{cohorts, CohortQuery};
use crate::query::journey::{performance, Horizons};
use crate::query::paths_cache::PathsCache;
use proptest::prelude::*;
use std::sync::atomic::Ordering;

const T: &str = "acme";
/// 2026-10-05T10:00:00Z (a Monday), in ms.
const T0: i64 = 1_791_194_400_000;
const MIN: i64 = 60_000;
const DAY: i64 = 86_400;
const CHANNELS: [&str; 3] = ["email", "search", "social"];

#[derive(Clone, Debug)]
enum Ev {
    Touch { cid: u8, mins: i64, channel: u8, journey: Option<u8>, seq: u8, variant: bool },
    Conv { cid: u8, mins: i64, value: u16, eur: bool },
    /// `identify` of `c{cid}` as `u{user}`: merges the persons of its customer ids.
    Login { cid: u8, user: u8, mins: i64 },
    Consent { cid: u8, mins: i64, analytics: bool },
    Erase { cid: u8, mins: i64 },
}

fn payload(i: usize, e: &Ev) -> Vec<u8> {
    let base = |cid: &u8, mins: &i64, ty: &str| serde_json::json!({"event_id": format!("e{i:03}"), "tenant_id": T, "event_type": ty, "timestamp": T0 + mins * MIN, "customer_id": format!("c{cid}")});
    let v = match e {
        Ev::Touch { cid, mins, channel, journey, seq, variant } => {
            let mut url = format!("https://x.example/?cm_node_seq={seq}&utm_content=k{}", seq % 2);
            if let Some(j) = journey {
                url.push_str(&format!("&cm_journey_id=J{j}"));
            }
            if *variant {
                url.push_str("&cm_variant=B");
            }
            let mut m = base(cid, mins, "touchpoint_interaction");
            m["touchpoints"] = serde_json::json!({"channel": CHANNELS[*channel as usize], "interaction_type": "click", "metadata": {"url": url}});
            m
        }
        Ev::Conv { cid, mins, value, eur } => {
            let mut m = base(cid, mins, "conversion_event");
            m["conversion_data"] = serde_json::json!({"value": *value as f64 / 4.0, "currency": if *eur { "EUR" } else { "USD" }});
            m
        }
        Ev::Login { cid, user, mins } => {
            let mut m = base(cid, mins, "identify");
            m["user_id"] = format!("u{user}").into();
            m
        }
        Ev::Consent { cid, mins, analytics } => {
            let mut m = base(cid, mins, "consent_update");
            m["consent"] = serde_json::json!({"analytics": analytics});
            m
        }
        Ev::Erase { cid, mins } => base(cid, mins, "erasure_request"),
    };
    serde_json::to_vec(&v).unwrap()
}

/// Events over nine days from T0 (so cohorts cross a week boundary).
fn arb_ev() -> impl Strategy<Value = Ev> {
    let mins = || (0i64..9 * 144).prop_map(|t| t * 10);
    prop_oneof![
        10 => (0u8..5, mins(), 0u8..3, prop::option::weighted(0.8, 0u8..2), 1u8..4, any::<bool>())
            .prop_map(|(cid, mins, channel, journey, seq, variant)| Ev::Touch { cid, mins, channel, journey, seq, variant }),
        5 => (0u8..5, mins(), 1u16..400, prop::bool::weighted(0.15)).prop_map(|(cid, mins, value, eur)| Ev::Conv { cid, mins, value, eur }),
        3 => (0u8..5, 0u8..2, mins()).prop_map(|(cid, user, mins)| Ev::Login { cid, user, mins }),
        1 => (0u8..5, mins(), any::<bool>()).prop_map(|(cid, mins, analytics)| Ev::Consent { cid, mins, analytics }),
        1 => (0u8..5, mins()).prop_map(|(cid, mins)| Ev::Erase { cid, mins }),
    ]
}

fn at(days: i64) -> Ts {
    Ts::new(T0 / 1000 + days * DAY, 0)
}

/// Every cohorts and journeys question asked, cached against fresh.
fn check(cache: &PathsCache, store: &Store, policy: &RetentionPolicy, n: usize) {
    let horizon = crate::query::horizon(store, 0, T, policy).unwrap();
    for by in [GroupBy::Channel, GroupBy::Journey] {
        for cohort in [Granularity::Week, Granularity::Day] {
            for (from, to) in [(at(-7), at(14)), (at(1), at(4)), (at(2), at(2))] {
                let q = CohortQuery { cohort, by, from, to, currency: None, horizon };
                let want = cohorts(store, 0, T, &q).unwrap();
                assert_eq!(cache.cohorts(store, 0, T, &q).unwrap(), want, "cohorts {by:?} {cohort:?} {from}..{to} after {n} events");
            }
        }
    }
    let horizons = Horizons { retention: horizon, window_5s: None };
    for lookback in [30, 1] {
        for j in ["J0", "J1", "-", "J9"] {
            for (g, (from, to)) in [(Granularity::Day, (at(-7), at(14))), (Granularity::Hour, (at(1), at(3))), (Granularity::FiveSeconds, (at(0), at(9)))] {
                let want = performance(store, 0, T, j, g, from, to, lookback, horizons).unwrap();
                assert_eq!(cache.journey(store, 0, T, j, g, (from, to), lookback, horizons).unwrap(), want, "journey {j} {g:?} lookback {lookback} after {n} events");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cached_cohorts_and_journeys_equal_the_fresh_ones_after_every_batch(
        evs in prop::collection::vec(arb_ev(), 1..50),
        seed in any::<u64>(),
        cuts in prop::collection::btree_set(0usize..50, 0..8),
        retention_days in prop::sample::select(vec![0u32, 3]),
    ) {
        use rand::{seq::SliceRandom, SeedableRng};
        let mut order: Vec<usize> = (0..evs.len()).collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let policy = RetentionPolicy::new(retention_days);
        let config = EngineConfig { retention: policy.clone(), retention_sweep_interval: std::time::Duration::ZERO, ..EngineConfig::default() };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let h = harness(0, 1, config).await;
            let cache = PathsCache::new(64 << 20);
            cache.observe(&h.store);
            let (mut batch, mut offset) = (Vec::new(), 0i64);
            for (n, &i) in order.iter().enumerate() {
                batch.push(payload(i, &evs[i]));
                if cuts.contains(&n) || n + 1 == order.len() {
                    let len = batch.len() as i64;
                    apply(&h, records(std::mem::take(&mut batch), offset)).await;
                    offset += len;
                    check(&cache, &h.store, &policy, n + 1);
                }
            }
        });
    }
}

/// A fixed stream exercising the incremental path: a later batch changes
/// some persons (a touch, a conversion, a late merge) and the cache
/// recomputes only those, answering as the fresh computation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_recomputes_only_its_persons() {
    let h = harness(0, 1, EngineConfig::default()).await;
    let cache = PathsCache::new(64 << 20);
    cache.observe(&h.store);
    let policy = RetentionPolicy::new(0);
    let first: Vec<Ev> = (0..8u8).flat_map(|c| [Ev::Touch { cid: c, mins: 10 * c as i64, channel: c % 3, journey: Some(c % 2), seq: 1, variant: false }, Ev::Conv { cid: c, mins: 100 + c as i64, value: 40, eur: false }]).collect();
    apply(&h, records(first.iter().enumerate().map(|(i, e)| payload(i, e)).collect(), 0)).await;
    check(&cache, &h.store, &policy, first.len());
    let builds = cache.stats().builds.load(Ordering::Relaxed);
    let late = [Ev::Touch { cid: 1, mins: 50, channel: 2, journey: Some(1), seq: 2, variant: true }, Ev::Login { cid: 2, user: 0, mins: 5 }, Ev::Login { cid: 3, user: 0, mins: 6 }, Ev::Conv { cid: 4, mins: 200, value: 9, eur: false }];
    apply(&h, records(late.iter().enumerate().map(|(i, e)| payload(100 + i, e)).collect(), 100)).await;
    let before = cache.stats().persons_recomputed.load(Ordering::Relaxed);
    check(&cache, &h.store, &policy, first.len() + late.len());
    assert_eq!(cache.stats().builds.load(Ordering::Relaxed), builds, "no rebuild for a few changed persons");
    assert!(cache.stats().persons_recomputed.load(Ordering::Relaxed) > before, "the changed persons were recomputed");
}

/// View entries are bounded by the cache's budget: with none, every answer is
/// still exact and nothing is kept; with room for one entry, asking another
/// evicts the least recently used, whichever its kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_entries_stay_within_the_budget() {
    let h = harness(0, 1, EngineConfig::default()).await;
    let evs: Vec<Ev> = (0..5u8).flat_map(|c| [Ev::Touch { cid: c, mins: 10 * c as i64, channel: c % 3, journey: Some(c % 2), seq: 1, variant: false }, Ev::Conv { cid: c, mins: 100, value: 8, eur: false }]).collect();
    apply(&h, records(evs.iter().enumerate().map(|(i, e)| payload(i, e)).collect(), 0)).await;
    let none = PathsCache::new(0);
    none.observe(&h.store);
    check(&none, &h.store, &RetentionPolicy::new(0), evs.len());
    assert_eq!(none.charged_bytes(), 0, "a zero budget keeps no entry");

    let q = CohortQuery { cohort: Granularity::Week, by: GroupBy::Channel, from: at(-7), to: at(14), currency: None, horizon: None };
    let probe = PathsCache::new(64 << 20);
    probe.cohorts(&h.store, 0, T, &q).unwrap();
    let one = probe.charged_bytes();
    assert!(one > 0);
    let cache = PathsCache::new(one + one / 2);
    cache.cohorts(&h.store, 0, T, &q).unwrap();
    assert_eq!(cache.charged_bytes(), one, "the cohorts entry is kept");
    let horizons = Horizons { retention: None, window_5s: None };
    cache.journey(&h.store, 0, T, "J0", Granularity::Day, (at(-7), at(14)), 30, horizons).unwrap();
    assert!(cache.charged_bytes() <= one + one / 2, "over the budget: {} > {}", cache.charged_bytes(), one + one / 2);
    let builds = cache.stats().builds.load(Ordering::Relaxed);
    cache.cohorts(&h.store, 0, T, &q).unwrap();
    assert_eq!(cache.stats().builds.load(Ordering::Relaxed), builds + 1, "the cohorts entry was evicted (least recently used) and is built again");
}

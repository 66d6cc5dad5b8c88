//! Tests of the probabilistic links: the spec's worked cases and each rule by
//! hand, then properties: the batch is order-independent, and the incremental
//! index (after any sequence of changes) equals the batch.

use super::index::{Change, SignalIndex};
use super::*;
use proptest::prelude::*;
use serde_json::json;

const BASE: i64 = 1_790_812_800; // 2026-10-01T00:00:00Z
const MIN: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
const T: u32 = DEFAULT_THRESHOLD_POINTS;
const CHROME: Option<&str> = Some("Mozilla/5.0 Chrome/126.0");
const SAFARI: Option<&str> = Some("Mozilla/5.0 Mobile/15E148");
const HOME: (f64, f64) = (40.0, -74.0);
const NEAR_HOME: (f64, f64) = (40.005, -74.0); // 0.56 km
const CITY: (f64, f64) = (40.1, -74.0); // 11 km
const FAR: (f64, f64) = (41.0, -74.0); // 111 km

fn ev_at(c: ComponentId, ts: Ts, ip: &str, ua: Option<&str>, geo: Option<(f64, f64)>) -> SignalEvent {
    SignalEvent { component: c, ts, signal: Signal::new(ip, ua, geo).expect("an ip") }
}

fn ev(c: ComponentId, secs: i64, ip: &str, ua: Option<&str>, geo: Option<(f64, f64)>) -> SignalEvent {
    ev_at(c, Ts::new(BASE + secs, 0), ip, ua, geo)
}

fn anon(id: ComponentId) -> Component {
    Component::anonymous(id)
}

fn known(id: ComponentId) -> Component {
    Component::known(id)
}

fn erased(mut c: Component) -> Component {
    c.erased = true;
    c
}

/// The batch's links, checked equal to the index's evaluation of the same data.
fn run_with(components: &[Component], events: &[SignalEvent], threshold: u32, max: usize) -> BTreeMap<ComponentId, ProbLink> {
    let batch = links(components, events, threshold, max);
    assert_eq!(SignalIndex::build(components, events, max).evaluate_all(threshold), batch);
    batch
}

fn run(components: &[Component], events: &[SignalEvent]) -> BTreeMap<ComponentId, ProbLink> {
    run_with(components, events, T, DEFAULT_MAX_IP_PERSONS)
}

fn linked(to: ComponentId, score: u32) -> Option<ProbLink> {
    Some(ProbLink { known: to, score })
}

#[test]
fn worked_case_same_ip_30_min_same_agent_links_at_080() {
    let out = run(&[anon(1), known(2)], &[ev(1, 0, "ip", CHROME, None), ev(2, 20 * MIN, "ip", CHROME, None)]);
    assert_eq!(out.get(&1).copied(), linked(2, 8_000));
    assert_eq!(out[&1].confidence(), 0.8);
    assert_eq!(out.len(), 1, "the known component links to nothing");
}

#[test]
fn worked_case_other_agent_within_1_km_is_065_not_linked() {
    let events = [ev(1, 0, "ip", CHROME, Some(HOME)), ev(2, 10 * MIN, "ip", SAFARI, Some(NEAR_HOME))];
    assert_eq!(pair_score(events[0].ts, &events[0].signal, events[1].ts, &events[1].signal), Some(6_500));
    assert!(run(&[anon(1), known(2)], &events).is_empty());
    assert_eq!(run_with(&[anon(1), known(2)], &events, 6_500, 10).get(&1).copied(), linked(2, 6_500));
}

#[test]
fn worked_case_same_day_same_agent_within_25_km_links_at_072() {
    let events = [ev(1, 0, "ip", CHROME, Some(HOME)), ev(2, 5 * HOUR, "ip", CHROME, Some(CITY))];
    assert_eq!(run(&[anon(1), known(2)], &events).get(&1).copied(), linked(2, 7_200));
    assert!(run_with(&[anon(1), known(2)], &events, 7_201, 10).is_empty());
}

#[test]
fn worked_case_two_known_at_07_or_more_no_link() {
    let events = [ev(1, 0, "ip", CHROME, None), ev(2, MIN, "ip", CHROME, None), ev(3, 20 * MIN, "ip", CHROME, Some(HOME))];
    assert!(run(&[anon(1), known(2), known(3)], &events).is_empty());
}

#[test]
fn only_one_candidate_above_threshold_links_and_the_best_pair_counts() {
    // K2 reaches 0.8; K3 only 0.62 (same day, same agent) under the threshold.
    let events = [
        ev(1, 0, "ip", CHROME, None),
        ev(2, 29 * MIN, "ip", CHROME, None),
        ev(2, 20 * HOUR, "ip", SAFARI, None),
        ev(3, 3 * HOUR, "ip", CHROME, None),
    ];
    assert_eq!(run(&[anon(1), known(2), known(3)], &events).get(&1).copied(), linked(2, 8_000));
    // Scores are taken over all addresses: a second address can raise K3 to a second candidate.
    let mut more = events.to_vec();
    more.extend([ev(1, 10 * DAY, "ip2", SAFARI, Some(HOME)), ev(3, 10 * DAY + MIN, "ip2", SAFARI, Some(HOME))]);
    assert!(run(&[anon(1), known(2), known(3)], &more).is_empty());
}

#[test]
fn shared_address_scores_nothing_and_the_bound_still_scores() {
    // Components 1, 2 pair; 3, 4, 5 only use the address.
    let mut events = vec![ev(1, 0, "nat", CHROME, None), ev(2, MIN, "nat", CHROME, None)];
    events.extend((3..=5).map(|c| ev(c, c as i64 * 30 * DAY, "nat", None, None)));
    let cs = [anon(1), known(2), anon(3), known(4), anon(5)];
    assert_eq!(run_with(&cs, &events, T, 5).get(&1).copied(), linked(2, 8_000), "5 components, max 5");
    assert!(run_with(&cs, &events, T, 4).is_empty(), "5 components, max 4: shared");
    // Erased components are not counted.
    let cs = [anon(1), known(2), anon(3), known(4), erased(anon(5))];
    assert_eq!(run_with(&cs, &events, T, 4).get(&1).copied(), linked(2, 8_000));
    // A shared address does not stop another address from scoring.
    events.extend([ev(1, 50 * DAY, "home", CHROME, None), ev(2, 50 * DAY, "home", CHROME, None)]);
    let cs = [anon(1), known(2), anon(3), known(4), anon(5)];
    assert_eq!(run_with(&cs, &events, T, 4).get(&1).copied(), linked(2, 8_000));
}

#[test]
fn links_never_chain() {
    // A1 links to K2; A3 only meets A1 (anonymous with anonymous scores nothing).
    let events = [
        ev(1, 0, "ip", CHROME, None),
        ev(2, MIN, "ip", CHROME, None),
        ev(1, 5 * DAY, "ip2", SAFARI, Some(HOME)),
        ev(3, 5 * DAY, "ip2", SAFARI, Some(HOME)),
    ];
    let out = run(&[anon(1), known(2), anon(3)], &events);
    assert_eq!(out.keys().copied().collect::<Vec<_>>(), vec![1]);
    // Two known components never link to each other.
    assert!(run(&[known(1), known(2)], &events[..2]).is_empty());
}

#[test]
fn erased_components_take_no_part_on_either_side() {
    let events = [ev(1, 0, "ip", CHROME, None), ev(2, MIN, "ip", CHROME, None), ev(3, 2 * MIN, "ip", CHROME, None)];
    assert!(run(&[anon(1), known(2), known(3)], &events).is_empty(), "two candidates");
    assert_eq!(run(&[anon(1), known(2), erased(known(3))], &events).get(&1).copied(), linked(2, 8_000));
    assert!(run(&[erased(anon(1)), known(2), erased(known(3))], &events).is_empty());
    assert!(run(&[anon(1), erased(known(2)), erased(known(3))], &events).is_empty());
}

#[test]
fn time_windows_are_inclusive_to_the_nanosecond() {
    let a = ev(1, 0, "ip", None, None);
    let at = |secs: i64, nanos: u32| ev_at(2, Ts::new(BASE + secs, nanos), "ip", None, None);
    let score = |k: &SignalEvent| pair_score(a.ts, &a.signal, k.ts, &k.signal);
    assert_eq!(score(&at(30 * MIN, 0)), Some(4_500));
    assert_eq!(score(&at(30 * MIN, 1)), Some(2_700));
    assert_eq!(score(&at(-30 * MIN, 0)), Some(4_500));
    assert_eq!(score(&at(-30 * MIN - 1, 999_999_999)), Some(2_700));
    assert_eq!(score(&at(DAY, 0)), Some(2_700));
    assert_eq!(score(&at(DAY, 1)), None);
    assert_eq!(score(&at(-DAY, 0)), Some(2_700));
    assert_eq!(score(&at(-DAY - 1, 999_999_999)), None);
    assert_eq!(pair_score(a.ts, &a.signal, a.ts, &ev(2, 0, "ip2", None, None).signal), None, "other address");
    // The same bounds through both evaluations, ip alone (threshold 0.27).
    for (k, expect) in [(at(DAY, 0), linked(2, 2_700)), (at(DAY, 1), None), (at(30 * MIN, 0), linked(2, 4_500))] {
        assert_eq!(run_with(&[anon(1), known(2)], &[a.clone(), k], 2_700, 10).get(&1).copied(), expect);
    }
}

#[test]
fn distance_bounds_1_km_and_25_km() {
    let deg_per_km = 180.0 / (std::f64::consts::PI * EARTH_RADIUS_KM);
    let north = |km: f64| Some((10.0 + km * deg_per_km, 20.0));
    let origin = Some((10.0, 20.0));
    assert_eq!(geo_points(origin, origin), 2_000);
    assert_eq!(geo_points(origin, north(0.9999)), 2_000);
    assert_eq!(geo_points(origin, north(1.0001)), 1_000);
    assert_eq!(geo_points(origin, north(24.9999)), 1_000);
    assert_eq!(geo_points(origin, north(25.0001)), 0);
    assert_eq!(geo_points(origin, None), 0);
    assert_eq!(geo_points(None, None), 0);
    assert_eq!(geo_points(Some(HOME), Some(FAR)), 0);
    // One degree of longitude on the equator, and across the antimeridian.
    assert!((haversine_km((0.0, 0.0), (0.0, 1.0)) - 111.195).abs() < 0.001);
    assert!(haversine_km((0.0, 179.9995), (0.0, -179.9995)) < 1.0);
    assert!((haversine_km((90.0, 0.0), (-90.0, 0.0)) - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
}

#[test]
fn geolocation_bounds_are_inclusive_and_anything_else_is_absent() {
    let geo = |lat: f64, lon: f64| Signal::new("ip", None, Some((lat, lon))).unwrap().geo;
    for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)] {
        assert_eq!(geo(lat, lon), Some((lat, lon)));
    }
    for (lat, lon) in [(90.0001, 0.0), (0.0, -180.5), (f64::NAN, 0.0), (0.0, f64::INFINITY)] {
        assert_eq!(geo(lat, lon), None);
    }
    assert_eq!(Signal::new("", CHROME, Some(HOME)), None);
    assert_eq!(Signal::new("ip", Some(""), None).unwrap().user_agent, None);
}

#[test]
fn signal_object_is_context_when_an_object_else_initial_context() {
    let ctx = json!({"ip_address": "1.2.3.4", "user_agent": "UA", "geolocation": {"lat": 40, "lon": -74.5}});
    let initial = json!({"ip_address": "5.6.7.8", "user_agent": "UA2"});
    let s = signal_from_json(Some(&ctx), Some(&initial)).unwrap();
    assert_eq!(s, Signal { ip: "1.2.3.4".into(), user_agent: Some("UA".into()), geo: Some((40.0, -74.5)) });
    // No per-field fallback: a context object without ip gives no signal.
    assert_eq!(signal_from_json(Some(&json!({"user_agent": "UA"})), Some(&initial)), None);
    let only_ip = json!({"ip_address": "9.9.9.9"});
    assert_eq!(signal_from_json(Some(&only_ip), Some(&initial)).unwrap().user_agent, None);
    // A context that is not an object (null included) counts as absent.
    for bad in [json!(null), json!("ctx"), json!([1]), json!(3)] {
        assert_eq!(signal_from_json(Some(&bad), Some(&initial)).unwrap().ip, "5.6.7.8");
    }
    assert_eq!(signal_from_json(None, Some(&initial)).unwrap().ip, "5.6.7.8");
    assert_eq!(signal_from_json(None, None), None);
    // Ill-typed signals count as absent.
    let ill = json!({"ip_address": "1.1.1.1", "user_agent": 7, "geolocation": {"lat": "40", "lon": 1}});
    assert_eq!(signal_from_json(Some(&ill), None), Some(Signal { ip: "1.1.1.1".into(), user_agent: None, geo: None }));
    assert_eq!(signal_from_json(Some(&json!({"ip_address": 1234})), None), None);
    assert_eq!(signal_from_json(Some(&json!({"ip_address": ""})), None), None);
    assert_eq!(signal_from_json(Some(&json!({"ip_address": "a", "geolocation": [1, 2]})), None).unwrap().geo, None);
    // The decoded-fields form follows the same rule.
    let fields = SignalFields { ip_address: Some("a"), user_agent: Some(""), geolocation: Some((91.0, 0.0)) };
    assert_eq!(event_signal(Some(fields), None), Some(Signal { ip: "a".into(), user_agent: None, geo: None }));
    assert_eq!(event_signal(Some(SignalFields::default()), Some(fields)), None);
}

#[test]
fn threshold_points_from_the_decimal_written() {
    assert_ne!((0.57f64 * 10_000.0) as u32, 5_700, "the naive product truncates");
    for (t, points) in [(0.57, 5_700), (0.7, 7_000), (0.72, 7_200), (1.0, 10_000), (0.0001, 1), (0.29, 2_900)] {
        assert_eq!(threshold_points(t), Ok(points), "{t}");
    }
    // Digits past the 4th round up: a score must reach the threshold.
    assert_eq!(threshold_points(0.57005), Ok(5_701));
    assert_eq!(threshold_points(1e-12), Ok(1));
    for bad in [0.0, -0.0, -0.5, 1.5, 1.000_000_1, f64::NAN, f64::INFINITY] {
        assert!(threshold_points(bad).is_err(), "{bad}");
    }
    assert_eq!(threshold_points(1.5).unwrap_err().to_string(), "probabilistic_threshold must be a number in (0, 1], got 1.5");
}

#[test]
fn incremental_changes_on_hand_made_cases() {
    let mut index = SignalIndex::new(2);
    let mut got = BTreeMap::new();
    let mut step = |index: &mut SignalIndex, change: Change| {
        for c in index.apply(change) {
            match index.evaluate_component(c, T) {
                Some(l) => got.insert(c, l),
                None => got.remove(&c),
            };
        }
        got.clone()
    };
    step(&mut index, Change::Signal(ev(1, 0, "ip", CHROME, None)));
    assert!(step(&mut index, Change::Signal(ev(2, MIN, "ip", CHROME, None))).is_empty(), "2 is anonymous");
    assert_eq!(step(&mut index, Change::Known(2)).get(&1).copied(), linked(2, 8_000), "a login");
    assert!(step(&mut index, Change::Signal(ev(3, 9 * DAY, "ip", None, None))).is_empty(), "3 components, max 2");
    assert_eq!(step(&mut index, Change::Merge { into: 2, from: 3 }).get(&1).copied(), linked(2, 8_000));
    assert!(step(&mut index, Change::Erase(2)).is_empty());
    assert!(index.evaluate_all(T).is_empty());
}

/// A few values of each signal, so that pairs meet often.
const IPS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const AGENTS: [Option<&str>; 3] = [None, CHROME, SAFARI];
const GEOS: [Option<(f64, f64)>; 5] = [None, Some(HOME), Some(NEAR_HOME), Some(CITY), Some(FAR)];
const THRESHOLDS: [u32; 7] = [2_700, 5_000, 6_500, 7_000, 7_200, 8_000, 10_000];

/// A random signal event: times on a 15 min grid (so exactly 30 min and 24 h
/// apart often) give or take 1 ns.
fn arb_event(components: u64) -> impl Strategy<Value = SignalEvent> {
    (0..components, 0i64..400, 0u32..3, 0..IPS.len(), 0..AGENTS.len(), 0..GEOS.len()).prop_map(
        |(c, slot, jitter, ip, ua, geo)| {
            let ts = Ts::from_nanos(i128::from(BASE + slot * 15 * MIN) * 1_000_000_000 + i128::from(jitter) - 1);
            ev_at(c, ts, IPS[ip], AGENTS[ua], GEOS[geo])
        },
    )
}

fn arb_components(n: u64) -> impl Strategy<Value = Vec<Component>> {
    prop::collection::vec((any::<bool>(), 0u8..10), n as usize).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (known, e))| Component { id: i as u64, known, erased: e == 0 })
            .collect()
    })
}

/// The semantics of [`Change`] over plain lists, for the batch.
#[derive(Default)]
struct Model {
    roles: BTreeMap<ComponentId, Component>,
    events: Vec<SignalEvent>,
}

impl Model {
    fn role(&mut self, id: ComponentId) -> &mut Component {
        self.roles.entry(id).or_insert(Component::anonymous(id))
    }
    fn apply(&mut self, change: &Change) {
        match *change {
            Change::Signal(ref e) => {
                if !self.role(e.component).erased {
                    self.events.push(e.clone());
                }
            }
            Change::Merge { into, from } if into != from => {
                let b = *self.role(from);
                self.roles.remove(&from);
                let a = self.role(into);
                (a.known, a.erased) = (a.known || b.known, a.erased && b.erased);
                self.events.iter_mut().filter(|e| e.component == from).for_each(|e| e.component = into);
            }
            Change::Merge { .. } => {}
            Change::Known(c) => self.role(c).known = true,
            Change::Erase(c) => {
                self.role(c).erased = true;
                self.events.retain(|e| e.component != c);
            }
        }
    }
}

fn arb_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => arb_event(6).prop_map(Change::Signal),
        2 => (0u64..6, 0u64..6).prop_map(|(into, from)| Change::Merge { into, from }),
        2 => (0u64..6).prop_map(Change::Known),
        1 => (0u64..6).prop_map(Change::Erase),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn batch_is_independent_of_input_order(
        (events, shuffled) in prop::collection::vec(arb_event(8), 0..40)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        (components, shuffled_components) in arb_components(8)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        threshold in prop::sample::select(THRESHOLDS.to_vec()),
        max in 1usize..5,
    ) {
        let out = run_with(&components, &events, threshold, max);
        prop_assert_eq!(links(&shuffled_components, &shuffled, threshold, max), out.clone());
        for (a, l) in &out {
            let (ra, rk) = (components[*a as usize], components[l.known as usize]);
            prop_assert!(!ra.known && !ra.erased && rk.known && !rk.erased && l.score >= threshold);
        }
    }

    #[test]
    fn incremental_equals_batch_after_every_change(
        changes in prop::collection::vec(arb_change(), 0..60),
        threshold in prop::sample::select(THRESHOLDS.to_vec()),
        max in 1usize..4,
    ) {
        let (mut index, mut model, mut kept) = (SignalIndex::new(max), Model::default(), BTreeMap::new());
        for change in changes {
            model.apply(&change);
            for c in index.apply(change) {
                match index.evaluate_component(c, threshold) {
                    Some(l) => kept.insert(c, l),
                    None => kept.remove(&c),
                };
            }
            let roles: Vec<Component> = model.roles.values().copied().collect();
            prop_assert_eq!(&kept, &links(&roles, &model.events, threshold, max));
        }
        prop_assert_eq!(index.evaluate_all(threshold), kept);
    }
}

/// 1 M signal events of one tenant: 150 000 households of three components
/// over 90 days, 400 busy addresses (500 events of 40 components each, shared)
/// and 50 dense ones (a known and an anonymous device with other agents,
/// 2 000 events each in a week: every pair within 24 h is compared).
/// `cargo test -p touchline-actors probabilistic -- --ignored --nocapture`
#[test]
#[ignore]
fn one_million_signal_events_in_about_a_second() {
    use rand::{rngs::SmallRng, Rng, SeedableRng};
    let mut rng = SmallRng::seed_from_u64(7);
    let (mut components, mut events) = (Vec::new(), Vec::with_capacity(1_000_000));
    let push = |events: &mut Vec<SignalEvent>, rng: &mut SmallRng, c: u64, ip: &str, span: i64| {
        // A household's known and first anonymous device share an agent; all its devices, a place.
        let ua = AGENTS[1 + usize::from(c % 3 == 2)];
        let geo = Some((40.0 + (c / 3 % 7) as f64 * 0.01, -74.0));
        events.push(ev(c, rng.random_range(0..span), ip, ua, geo));
    };
    for h in 0..150_000u64 {
        let ip = format!("10.{}.{}.{}", h >> 16, (h >> 8) & 255, h & 255);
        components.extend([known(3 * h), anon(3 * h + 1), anon(3 * h + 2)]);
        for i in 0..4 {
            push(&mut events, &mut rng, 3 * h + i % 3, &ip, 90 * DAY);
        }
    }
    for b in 0..400u64 {
        for i in 0..500 {
            push(&mut events, &mut rng, b * 40 + i % 40, &format!("nat-{b}"), 90 * DAY);
        }
    }
    for d in 0..50u64 {
        for i in 0..4_000 {
            push(&mut events, &mut rng, 3 * d + 2 * (i % 2), &format!("dense-{d}"), 7 * DAY);
        }
    }
    let started = std::time::Instant::now();
    let out = links(&components, &events, T, DEFAULT_MAX_IP_PERSONS);
    let batch = started.elapsed();
    let started = std::time::Instant::now();
    let index = SignalIndex::build(&components, &events, DEFAULT_MAX_IP_PERSONS);
    let built = started.elapsed();
    let started = std::time::Instant::now();
    assert_eq!(index.evaluate_all(T), out);
    println!("{} events, {} links: batch {batch:?}, index build {built:?}, evaluate_all {:?}", events.len(), out.len(), started.elapsed());
    assert!(batch.as_secs_f64() < 10.0);
}

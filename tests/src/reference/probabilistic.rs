//! Probabilistic links (attribution.md, "Probabilistic links") for the batch
//! reference: a straightforward O(n²) reading of rules 1–5 over plain data,
//! written apart from `touchline_actors::domain::probabilistic` (which sweeps
//! per address) so that the two cross-check each other. Not yet applied to the
//! reference's persons.
//!
//! Every pair of signal events is looked at: an anonymous component's event
//! and a known component's event on the same address, that address used by at
//! most `max_ip_persons` distinct non-erased components, at most 24 h apart.
//! Its score is `45 × ip + 35 × ua + 20 × geo`; score(A, K) is the best; A
//! links to K when K alone reaches the threshold.

use std::collections::{BTreeMap, BTreeSet};
use touchline_actors::domain::Ts;

/// The role of a deterministic component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefRole {
    /// Holds a `user_id` node.
    pub known: bool,
    pub erased: bool,
}

/// One signal event (its validated signals) of component `C`.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSignal<C> {
    pub component: C,
    pub ts: Ts,
    pub ip: String,
    pub user_agent: Option<String>,
    /// `(lat, lon)` in degrees.
    pub geo: Option<(f64, f64)>,
}

/// `probabilistic_threshold` in points, from its decimal: 0.57 → 5 700
/// (`t` scaled by 10⁶ and rounded, so up to six decimals are read exactly,
/// then the smallest integer score reaching it).
pub fn threshold_points(t: f64) -> u32 {
    let millionths = (t * 1_000_000.0).round() as u64;
    millionths.div_ceil(100) as u32
}

/// Great-circle distance in km: the haversine with R = 6371.0088 km, in its
/// `atan2` form.
fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let rad = std::f64::consts::PI / 180.0;
    let s_lat = ((b.0 - a.0) * rad / 2.0).sin();
    let s_lon = ((b.1 - a.1) * rad / 2.0).sin();
    let h = s_lat * s_lat + (a.0 * rad).cos() * (b.0 * rad).cos() * s_lon * s_lon;
    let h = h.clamp(0.0, 1.0);
    2.0 * 6371.0088 * h.sqrt().atan2((1.0 - h).sqrt())
}

/// The pair score of rule 4 in points, `None` past 24 h (same address assumed).
fn pair_points<C>(a: &RefSignal<C>, k: &RefSignal<C>) -> Option<u32> {
    let apart_ns = (a.ts.as_nanos() - k.ts.as_nanos()).abs();
    let minute_ns: i128 = 60_000_000_000;
    if apart_ns > 24 * 60 * minute_ns {
        return None;
    }
    let ip = if apart_ns <= 30 * minute_ns { 100 } else { 60 };
    let ua = match (&a.user_agent, &k.user_agent) {
        (Some(x), Some(y)) if x == y => 100,
        _ => 0,
    };
    let geo = match (a.geo, k.geo) {
        (Some(x), Some(y)) => {
            let d = distance_km(x, y);
            if d <= 1.0 {
                100
            } else if d <= 25.0 {
                50
            } else {
                0
            }
        }
        _ => 0,
    };
    Some(45 * ip + 35 * ua + 20 * geo)
}

/// Every probabilistic link of one tenant: anonymous component → (known
/// component, score in points). A component missing from `roles` is anonymous
/// and not erased.
pub fn links<C: Ord + Clone>(
    roles: &BTreeMap<C, RefRole>,
    events: &[RefSignal<C>],
    threshold_points: u32,
    max_ip_persons: usize,
) -> BTreeMap<C, (C, u32)> {
    let role = |c: &C| roles.get(c).copied().unwrap_or_default();
    let live: Vec<&RefSignal<C>> = events.iter().filter(|e| !role(&e.component).erased).collect();
    let mut users: BTreeMap<&str, BTreeSet<&C>> = BTreeMap::new();
    for e in &live {
        users.entry(e.ip.as_str()).or_default().insert(&e.component);
    }
    let mut best: BTreeMap<(C, C), u32> = BTreeMap::new();
    for a in live.iter().filter(|e| !role(&e.component).known) {
        if users[a.ip.as_str()].len() > max_ip_persons {
            continue;
        }
        for k in live.iter().filter(|e| role(&e.component).known && e.ip == a.ip) {
            if let Some(points) = pair_points(a, k) {
                let cell = best.entry((a.component.clone(), k.component.clone())).or_insert(0);
                *cell = (*cell).max(points);
            }
        }
    }
    let mut candidates: BTreeMap<C, Vec<(C, u32)>> = BTreeMap::new();
    for ((a, k), points) in best {
        if points >= threshold_points.max(1) {
            candidates.entry(a).or_default().push((k, points));
        }
    }
    candidates.into_iter().filter(|(_, ks)| ks.len() == 1).map(|(a, mut ks)| (a, ks.remove(0))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};
    use touchline_actors::domain::probabilistic as actors;

    const BASE: i64 = 1_790_812_800; // 2026-10-01T00:00:00Z

    fn sig(c: u64, secs: i64, ua: Option<&str>, geo: Option<(f64, f64)>) -> RefSignal<u64> {
        RefSignal { component: c, ts: Ts::new(BASE + secs, 0), ip: "ip".into(), user_agent: ua.map(str::to_string), geo }
    }

    fn roles(known: &[u64], anonymous: &[u64]) -> BTreeMap<u64, RefRole> {
        let k = known.iter().map(|&c| (c, RefRole { known: true, erased: false }));
        k.chain(anonymous.iter().map(|&c| (c, RefRole::default()))).collect()
    }

    #[test]
    fn worked_cases_of_the_spec() {
        let t = threshold_points(0.7);
        let r = roles(&[2, 3], &[1]);
        let (ua, other) = (Some("UA"), Some("UA2"));
        let (home, near, city) = (Some((40.0, -74.0)), Some((40.005, -74.0)), Some((40.1, -74.0)));
        assert_eq!(links(&r, &[sig(1, 0, ua, None), sig(2, 600, ua, None)], t, 10), BTreeMap::from([(1, (2, 8_000))]));
        assert!(links(&r, &[sig(1, 0, ua, home), sig(2, 600, other, near)], t, 10).is_empty(), "0.65");
        assert_eq!(links(&r, &[sig(1, 0, ua, home), sig(2, 18_000, ua, city)], t, 10), BTreeMap::from([(1, (2, 7_200))]));
        let two = [sig(1, 0, ua, None), sig(2, 60, ua, None), sig(3, 120, ua, None)];
        assert!(links(&r, &two, t, 10).is_empty(), "two known at 0.8");
        assert!(links(&r, &two[..2], t, 1).is_empty(), "shared address");
        assert_eq!((threshold_points(0.57), threshold_points(1.0), threshold_points(0.57005)), (5_700, 10_000, 5_701));
    }

    /// The reference and the node's batch agree on random tenants (few
    /// addresses, agents and places, times on a 15 min grid ± 1 ns).
    #[test]
    fn agrees_with_the_actors_batch_on_random_tenants() {
        let agents = [None, Some("UA-a"), Some("UA-b")];
        let places = [None, Some((40.0, -74.0)), Some((40.005, -74.0)), Some((40.1, -74.0)), Some((41.0, -74.0))];
        let mut rng = SmallRng::seed_from_u64(19);
        let mut linked = 0;
        for _ in 0..1_500 {
            let n = rng.random_range(1..10u64);
            let r: BTreeMap<u64, RefRole> = (0..n)
                .map(|c| (c, RefRole { known: rng.random_bool(0.4), erased: rng.random_bool(0.1) }))
                .collect();
            let events: Vec<RefSignal<u64>> = (0..rng.random_range(0..50))
                .map(|_| RefSignal {
                    component: rng.random_range(0..n),
                    ts: Ts::from_nanos(
                        i128::from(BASE + rng.random_range(0..200i64) * 900) * 1_000_000_000 + rng.random_range(-1..=1),
                    ),
                    ip: format!("10.0.0.{}", rng.random_range(0..3)),
                    user_agent: agents[rng.random_range(0..agents.len())].map(str::to_string),
                    geo: places[rng.random_range(0..places.len())],
                })
                .collect();
            // Thresholds at each score level, so that every bound decides some link.
            let t = [0.27, 0.45, 0.47, 0.62, 0.65, 0.7, 0.72, 0.8, 1.0][rng.random_range(0..9)];
            let max = rng.random_range(1..6);
            let theirs = actors::links(
                &r.iter().map(|(&id, x)| actors::Component { id, known: x.known, erased: x.erased }).collect::<Vec<_>>(),
                &events
                    .iter()
                    .map(|e| actors::SignalEvent {
                        component: e.component,
                        ts: e.ts,
                        signal: actors::Signal::new(&e.ip, e.user_agent.as_deref(), e.geo).expect("an ip"),
                    })
                    .collect::<Vec<_>>(),
                actors::threshold_points(t).expect("a valid threshold"),
                max,
            );
            let ours = links(&r, &events, threshold_points(t), max);
            assert_eq!(ours, theirs.into_iter().map(|(a, l)| (a, (l.known, l.score))).collect::<BTreeMap<_, _>>());
            linked += ours.len();
        }
        assert!(linked > 200, "the random tenants exercise links ({linked})");
    }
}

//! Probabilistic cross-device links (attribution.md, "Probabilistic links",
//! opt-in per tenant) as plain functions over plain data, no I/O.
//!
//! Inputs are one tenant's deterministic components ([`Component`]: an id,
//! `known` = it holds a `user_id` node, `erased`) and its *signal events*
//! ([`SignalEvent`]: component, event time, [`Signal`]). The caller picks the
//! signal events (accepted journey events whose own `consent.analytics` is not
//! `false`) and their signal ([`event_signal`] / [`signal_from_json`]: the
//! `context` object, else `initial_context`, never field by field). The output
//! maps each linked anonymous component to its known component and score in
//! integer points (10 000 = 1.0), spec rules 1–5:
//!
//! - erased components take no part, on either side, nor in the counts;
//! - an `ip_address` of more than `max_ip_persons` distinct non-erased
//!   components (over all time) is *shared* and scores nothing;
//! - a pair (anonymous event `a`, known event `k`) on the same unshared address
//!   with |a.ts − k.ts| ≤ 24 h scores `45 × ip + 35 × ua + 20 × geo`
//!   ([`pair_score`]); score(A, K) is the best pair;
//! - A links to K when K is the only known component with score(A, K) ≥ the
//!   threshold ([`threshold_points`]); links never chain.
//!
//! Two evaluations, tested equal to each other:
//!
//! - [`links`], the batch: events grouped by address, split into anonymous and
//!   known events sorted by time, and swept with a 24 h window, so only pairs
//!   on one unshared address within 24 h are ever compared. Time
//!   O(n log n + P) for n signal events, P such (anonymous, known) event pairs,
//!   each O(1): the distance is computed only when it could raise the pair's
//!   best score. Memory O(n). Deterministic: the output is a `BTreeMap` and no
//!   result depends on hashing order.
//! - [`index::SignalIndex`], the incremental form a streaming engine keeps:
//!   which components must be re-evaluated after a change
//!   ([`index::SignalIndex::affected_components`]) and one component's link
//!   ([`index::SignalIndex::evaluate_component`]).

pub mod index;

use crate::domain::event::Ts;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// A deterministic component (person) of one tenant.
pub type ComponentId = u64;

/// 1.0 in points; also the highest pair score (45 + 35 + 20 = 100 %).
pub const FULL_POINTS: u32 = 10_000;
/// `probabilistic_threshold` default, 0.7.
pub const DEFAULT_THRESHOLD_POINTS: u32 = 7_000;
/// `probabilistic_max_ip_persons` default.
pub const DEFAULT_MAX_IP_PERSONS: usize = 10;
/// The haversine's Earth radius (mean radius, IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

const NANOS_PER_SEC: i128 = 1_000_000_000;
/// 30 min and 24 h in nanoseconds (the bounds are inclusive).
pub const HALF_HOUR_NANOS: i128 = 30 * 60 * NANOS_PER_SEC;
pub const DAY_NANOS: i128 = 24 * 3600 * NANOS_PER_SEC;

/// Points of each signal: weight × level (ip 100 or 60, ua 100, geo 100 or 50).
const IP_NEAR: u32 = 45 * 100;
const IP_DAY: u32 = 45 * 60;
const UA_SAME: u32 = 35 * 100;
const GEO_NEAR: u32 = 20 * 100;
const GEO_CITY: u32 = 20 * 50;

/// One tenant's probabilistic settings (config `[tenants.<t>]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linking {
    /// `probabilistic_threshold` in points (10 000 = 1.0).
    pub threshold: u32,
    /// `probabilistic_max_ip_persons`.
    pub max_ip_persons: usize,
}

/// The tenants with `probabilistic = true` and their settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkingPolicy {
    pub per_tenant: BTreeMap<String, Linking>,
}

impl LinkingPolicy {
    pub fn of(&self, tenant: &str) -> Option<Linking> {
        self.per_tenant.get(tenant).copied()
    }
}

/// A deterministic component and its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Component {
    pub id: ComponentId,
    /// Holds a `user_id` node.
    pub known: bool,
    /// Erased: takes no part, on either side.
    pub erased: bool,
}

impl Component {
    pub fn anonymous(id: ComponentId) -> Component {
        Component { id, known: false, erased: false }
    }
    pub fn known(id: ComponentId) -> Component {
        Component { id, known: true, erased: false }
    }
}

/// The signals of one event, valid by construction ([`Signal::new`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// Non-empty; compared byte for byte.
    pub ip: String,
    /// Non-empty when present; compared byte for byte.
    pub user_agent: Option<String>,
    /// `(lat, lon)` in degrees, |lat| ≤ 90, |lon| ≤ 180.
    pub geo: Option<(f64, f64)>,
}

impl Signal {
    /// The signal of an event's signal object: `None` without a non-empty
    /// `ip_address`; an empty `user_agent` and an out-of-range (or non-finite)
    /// geolocation count as absent.
    pub fn new(ip: &str, user_agent: Option<&str>, geo: Option<(f64, f64)>) -> Option<Signal> {
        if ip.is_empty() {
            return None;
        }
        Some(Signal {
            ip: ip.to_string(),
            user_agent: user_agent.filter(|u| !u.is_empty()).map(str::to_string),
            geo: geo.filter(|&(lat, lon)| lat.abs() <= 90.0 && lon.abs() <= 180.0),
        })
    }
}

/// The three signal fields of one context object, as decoded (ill-typed
/// fields already dropped to `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SignalFields<'a> {
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub geolocation: Option<(f64, f64)>,
}

/// An event's signal: from `context` when it is an object (`Some`), else from
/// `initial_context`; no per-field fallback (a `context` without `ip_address`
/// gives no signal even when `initial_context` has one).
pub fn event_signal(context: Option<SignalFields<'_>>, initial_context: Option<SignalFields<'_>>) -> Option<Signal> {
    let f = context.or(initial_context)?;
    Signal::new(f.ip_address?, f.user_agent, f.geolocation)
}

/// [`event_signal`] over the raw JSON values of `context` / `initial_context`
/// (`None` when the field is missing): a non-object (`null` included) counts
/// as absent; `ip_address` and `user_agent` must be strings, `geolocation` an
/// object with numeric `lat` and `lon`.
pub fn signal_from_json(context: Option<&Value>, initial_context: Option<&Value>) -> Option<Signal> {
    fn fields(v: Option<&Value>) -> Option<SignalFields<'_>> {
        let o = v?.as_object()?;
        let geolocation = o.get("geolocation").and_then(Value::as_object).and_then(|g| {
            Some((g.get("lat")?.as_f64()?, g.get("lon")?.as_f64()?))
        });
        Some(SignalFields {
            ip_address: o.get("ip_address").and_then(Value::as_str),
            user_agent: o.get("user_agent").and_then(Value::as_str),
            geolocation,
        })
    }
    event_signal(fields(context), fields(initial_context))
}

/// A signal event of one component.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalEvent {
    pub component: ComponentId,
    pub ts: Ts,
    pub signal: Signal,
}

/// A probabilistic link of an anonymous component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbLink {
    /// The known component it joins.
    pub known: ComponentId,
    /// score(A, K) in points, ≥ the threshold.
    pub score: u32,
}

impl ProbLink {
    /// `score / 10 000` (`customers/{id}` `confidence`).
    pub fn confidence(&self) -> f64 {
        f64::from(self.score) / f64::from(FULL_POINTS)
    }
}

/// `probabilistic_threshold` outside (0, 1] (or NaN).
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("probabilistic_threshold must be a number in (0, 1], got {0}")]
pub struct ThresholdError(pub f64);

/// The threshold in points, from the decimal written (0.57 → 5 700, although
/// `0.57 * 10000.0` is 5 699.999…): the shortest decimal that reads back as
/// `t` (Rust's `{}`, never an exponent) is scaled by 10⁴ in decimal. Digits past
/// the 4th round up, since scores are integers (0.57005 → 5 701, the smallest
/// score ≥ 5 700.5). `t` must be in (0, 1]; the result is in 1..=10 000.
pub fn threshold_points(t: f64) -> Result<u32, ThresholdError> {
    if !(t > 0.0 && t <= 1.0) {
        return Err(ThresholdError(t));
    }
    let written = format!("{t}");
    let (whole, frac) = written.split_once('.').unwrap_or((&written, ""));
    let mut points = if whole == "1" { FULL_POINTS } else { 0 };
    let frac = frac.as_bytes();
    for (i, scale) in [1000, 100, 10, 1].into_iter().enumerate() {
        points += frac.get(i).map_or(0, |d| u32::from(d - b'0')) * scale;
    }
    if frac.iter().skip(4).any(|&d| d != b'0') {
        points += 1;
    }
    Ok(points)
}

/// Great-circle distance in km (haversine, R = [`EARTH_RADIUS_KM`]).
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (phi1, phi2) = (a.0.to_radians(), b.0.to_radians());
    let dphi = (b.0 - a.0).to_radians();
    let dlambda = (b.1 - a.1).to_radians();
    let h = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

/// `20 × geo`: both present and ≤ 1 km → 2 000, ≤ 25 km → 1 000, else 0.
pub fn geo_points(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> u32 {
    let (Some(a), Some(b)) = (a, b) else { return 0 };
    let d = haversine_km(a, b);
    if d <= 1.0 {
        GEO_NEAR
    } else if d <= 25.0 {
        GEO_CITY
    } else {
        0
    }
}

/// `max(best, pair score)` of two events `gap_nanos` apart on one address,
/// with equal user agents or not, `geo` giving their [`geo_points`]; `best`
/// when they are more than 24 h apart. `geo` is only called when it could
/// raise `best`.
#[inline]
fn raise(best: u32, gap_nanos: i128, same_ua: bool, geo: impl FnOnce() -> u32) -> u32 {
    let gap = gap_nanos.abs();
    if gap > DAY_NANOS {
        return best;
    }
    let base = if gap <= HALF_HOUR_NANOS { IP_NEAR } else { IP_DAY } + if same_ua { UA_SAME } else { 0 };
    if base + GEO_NEAR <= best {
        return best;
    }
    best.max(base + geo())
}

type LatLon = Option<(f64, f64)>;

/// [`geo_points`] remembering its last answer: a sweep meets the same pair of
/// locations again and again (a device rarely moves), so most distances are
/// computed once.
#[derive(Default)]
struct GeoMemo {
    last: Option<(LatLon, LatLon, u32)>,
}

impl GeoMemo {
    fn points(&mut self, a: LatLon, b: LatLon) -> u32 {
        match self.last {
            Some((x, y, p)) if x == a && y == b => p,
            _ => {
                let p = geo_points(a, b);
                self.last = Some((a, b, p));
                p
            }
        }
    }
}

/// The pair score (rule 4) of two signal events, `None` when they do not pair:
/// other addresses, or more than 24 h apart. (Whether the address is shared,
/// and which side is anonymous, is the caller's business.)
pub fn pair_score(a_ts: Ts, a: &Signal, k_ts: Ts, k: &Signal) -> Option<u32> {
    let gap = a_ts.as_nanos() - k_ts.as_nanos();
    if a.ip != k.ip || gap.abs() > DAY_NANOS {
        return None;
    }
    let same_ua = a.user_agent.is_some() && a.user_agent == k.user_agent;
    Some(raise(0, gap, same_ua, || geo_points(a.geo, k.geo)))
}

/// Rule 5 over every score(A, K) > 0 of one anonymous component A (each K
/// once): the link when exactly one K reaches `threshold` points.
fn decide(scores: impl IntoIterator<Item = (ComponentId, u32)>, threshold: u32) -> Option<ProbLink> {
    let threshold = threshold.max(1);
    let mut found = None;
    for (known, score) in scores.into_iter().filter(|&(_, s)| s >= threshold) {
        if found.is_some() {
            return None;
        }
        found = Some(ProbLink { known, score });
    }
    found
}

/// One signal event as the batch sweep sees it (user agent interned, 0 = none).
struct Flat {
    ts: i128,
    component: ComponentId,
    ua: u32,
    geo: LatLon,
}

/// The anonymous and the known signal events of one address.
#[derive(Default)]
struct AddressEvents {
    anonymous: Vec<Flat>,
    known: Vec<Flat>,
}

/// The sorted distinct components of `events` and each event's position in it.
fn local_ids(events: &[Flat]) -> (Vec<ComponentId>, Vec<usize>) {
    let mut ids: Vec<ComponentId> = events.iter().map(|e| e.component).collect();
    ids.sort_unstable();
    ids.dedup();
    let at = events.iter().map(|e| ids.binary_search(&e.component).unwrap_or(0)).collect();
    (ids, at)
}

/// The batch: every probabilistic link of one tenant (rules 1–5), keyed by
/// anonymous component. A component without an entry in `components` is
/// anonymous and not erased. `threshold` in points (see [`threshold_points`]).
/// Independent of the order of `components` and `events`; O(n log n + P), see
/// the module doc.
pub fn links(
    components: &[Component],
    events: &[SignalEvent],
    threshold: u32,
    max_ip_persons: usize,
) -> BTreeMap<ComponentId, ProbLink> {
    let role: HashMap<ComponentId, Component> = components.iter().map(|c| (c.id, *c)).collect();
    let mut agents: HashMap<&str, u32> = HashMap::new();
    let mut by_ip: HashMap<&str, AddressEvents> = HashMap::new();
    for e in events {
        let c = role.get(&e.component).copied().unwrap_or(Component::anonymous(e.component));
        if c.erased {
            continue;
        }
        let next = agents.len() as u32 + 1;
        let ua = e.signal.user_agent.as_deref().map_or(0, |u| *agents.entry(u).or_insert(next));
        let flat = Flat { ts: e.ts.as_nanos(), component: e.component, ua, geo: e.signal.geo };
        let at = by_ip.entry(e.signal.ip.as_str()).or_default();
        if c.known { at.known.push(flat) } else { at.anonymous.push(flat) }
    }
    let mut best: BTreeMap<(ComponentId, ComponentId), u32> = BTreeMap::new();
    for at in by_ip.values_mut() {
        sweep_address(at, max_ip_persons, &mut best);
    }
    let best: Vec<((ComponentId, ComponentId), u32)> = best.into_iter().collect();
    let mut out = BTreeMap::new();
    for run in best.chunk_by(|x, y| x.0 .0 == y.0 .0) {
        if let Some(link) = decide(run.iter().map(|&((_, k), s)| (k, s)), threshold) {
            out.insert(run[0].0 .0, link);
        }
    }
    out
}

/// Scores of one address, unless it is shared: sorts its events by time and
/// compares every anonymous event with the known events within 24 h of it;
/// raises `best[(A, K)]` to each best pair score found.
fn sweep_address(at: &mut AddressEvents, max_ip_persons: usize, best: &mut BTreeMap<(ComponentId, ComponentId), u32>) {
    if at.anonymous.is_empty() || at.known.is_empty() {
        return;
    }
    at.anonymous.sort_unstable_by_key(|e| e.ts);
    at.known.sort_unstable_by_key(|e| e.ts);
    let (anon_ids, anon_at) = local_ids(&at.anonymous);
    let (known_ids, known_at) = local_ids(&at.known);
    if anon_ids.len() + known_ids.len() > max_ip_persons {
        return; // shared
    }
    let nk = known_ids.len();
    let mut cells = vec![0u32; anon_ids.len() * nk];
    let (mut lo, mut memo) = (0, GeoMemo::default());
    for (a, ai) in at.anonymous.iter().zip(anon_at) {
        while lo < at.known.len() && at.known[lo].ts < a.ts - DAY_NANOS {
            lo += 1;
        }
        let window = at.known[lo..].iter().zip(&known_at[lo..]).take_while(|(k, _)| k.ts - a.ts <= DAY_NANOS);
        for (k, &ki) in window {
            let cell = &mut cells[ai * nk + ki];
            *cell = raise(*cell, a.ts - k.ts, a.ua != 0 && a.ua == k.ua, || memo.points(a.geo, k.geo));
        }
    }
    for (ai, &a) in anon_ids.iter().enumerate() {
        for (ki, &k) in known_ids.iter().enumerate() {
            let s = cells[ai * nk + ki];
            if s > 0 {
                let e = best.entry((a, k)).or_insert(0);
                *e = (*e).max(s);
            }
        }
    }
}

#[cfg(test)]
#[path = "probabilistic_tests.rs"]
mod tests;

//! Tests of the generated dataset: determinism, that `valid` agrees with the
//! real validation (`decode`) while the invalid records cover every reason but
//! `poison`, and that its device signals exercise probabilistic stitching.

use super::dataset::*;
use super::payload::{civil_from_days, rfc3339};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use touchline_actors::domain::decode::{decode, ValidateCtx};
use touchline_actors::domain::routing::partition_for;
use touchline_actors::domain::{Body, JourneyEvent, JourneyKind, Ts};

fn small() -> DatasetSpec {
    DatasetSpec {
        persons: 400,
        invalid_rate: 0.05,
        ..DatasetSpec::default()
    }
}

fn body_kind(b: &Body) -> &'static str {
    match b {
        Body::Journey(_) => "journey",
        Body::Campaign(_) => "campaign",
        Body::Personalization(_) => "personalization",
        Body::ConsentUpdate { .. } => "consent_update",
        Body::Erasure { .. } => "erasure",
        Body::CostImport(_) => "cost_import",
        Body::Registry(_) => "registry_command",
    }
}

#[test]
fn gen_is_deterministic_and_seed_sensitive() {
    let spec = small();
    let a = generate(&spec);
    assert_eq!(a, generate(&spec));
    let b = generate(&DatasetSpec {
        seed: 7,
        ..spec.clone()
    });
    assert_ne!(a, b);
    let s1 = shuffled(a.clone(), 3);
    assert_eq!(s1, shuffled(a.clone(), 3));
    assert_ne!(s1, a);
    let mut x: Vec<Vec<u8>> = s1.into_iter().map(|r| r.value).collect();
    let mut y: Vec<Vec<u8>> = a.into_iter().map(|r| r.value).collect();
    x.sort();
    y.sort();
    assert_eq!(x, y);
}

#[test]
fn gen_validity_matches_decode_and_covers_every_reason() {
    let spec = small();
    let recs = generate(&spec);
    let now = Ts::now();
    let mut reasons = BTreeMap::new();
    let mut channels = BTreeSet::new();
    let mut types = BTreeSet::new();
    let (mut msgpack, mut late_logins, mut no_consent, mut carried) = (0, 0, 0, 0);
    let mut max_ts = Ts::default();
    let mut ids = HashSet::new();
    for r in &recs {
        let partition = r.partition.unwrap_or_else(|| partition_for(&r.key, spec.partitions));
        let ctx = ValidateCtx {
            now,
            partition: Some(partition),
            partitions: spec.partitions,
        };
        match decode(&r.value, &ctx) {
            Ok(ev) => {
                assert!(
                    r.valid,
                    "accepted but marked invalid: {}",
                    String::from_utf8_lossy(&r.value)
                );
                assert_eq!(ev.tenant_id, r.key);
                let first = ids.insert((ev.tenant_id.clone(), ev.event_id.clone()));
                if r.value[0] != b'{' {
                    msgpack += 1;
                }
                types.insert(body_kind(&ev.body).to_string());
                if let Body::Journey(j) = &ev.body {
                    types.insert(format!("{:?}", j.kind));
                    if let Some(t) = &j.touch {
                        channels.insert(t.channel.as_str());
                    }
                    if !j.analytics_consent {
                        no_consent += 1;
                    }
                    if first && j.kind == JourneyKind::Identify && ev.ts.plus_secs(60) < max_ts {
                        late_logins += 1;
                    }
                    if j.user_id.is_some() && j.kind != JourneyKind::Identify {
                        carried += 1;
                    }
                }
                max_ts = max_ts.max(ev.ts);
            }
            Err(rej) => {
                assert!(
                    !r.valid,
                    "rejected ({rej}) but marked valid: {}",
                    String::from_utf8_lossy(&r.value)
                );
                *reasons.entry(rej.reason.as_str()).or_insert(0) += 1;
            }
        }
    }
    let expected: BTreeSet<&str> = [
        "decode",
        "schema",
        "tenant",
        "timestamp",
        "misrouted",
        "too_large",
        "unknown_type",
    ]
    .into();
    assert_eq!(
        reasons.keys().copied().collect::<BTreeSet<_>>(),
        expected,
        "{reasons:?}"
    );
    assert_eq!(channels.len(), 10, "{channels:?}");
    for k in [
        "JourneyStart",
        "TouchpointInteraction",
        "ConversionEvent",
        "JourneyStageChange",
        "Identify",
    ] {
        assert!(types.contains(k), "no {k} in {types:?}");
    }
    for k in ["journey", "campaign", "personalization"] {
        assert!(types.contains(k), "no {k} in {types:?}");
    }
    let valid = recs.iter().filter(|r| r.valid).count();
    let dups = count_duplicates(&recs);
    assert_eq!(valid, ids.len() + dups);
    assert!(dups > 0 && msgpack > 0 && late_logins > 0 && no_consent > 0 && carried > 0);
}

#[test]
fn gen_scales_linearly_enough() {
    let spec = DatasetSpec {
        persons: 20_000,
        tenants: 5,
        ..DatasetSpec::default()
    };
    let t0 = std::time::Instant::now();
    let recs = generate(&spec);
    assert!(recs.len() > 150_000, "{}", recs.len());
    assert!(t0.elapsed().as_secs() < 60);
    let tenants: BTreeSet<&str> = recs.iter().filter(|r| r.valid).map(|r| r.key.as_str()).collect();
    assert_eq!(tenants, ["acme", "globex", "hooli", "initech", "umbrella"].into());
}

#[test]
fn gen_rfc3339_formatting() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(20_727), (2026, 10, 1));
    let ms = 1_790_812_800_000 + 1_234;
    assert_eq!(rfc3339(ms, 0, 'T', false, false), "2026-10-01T00:00:01.234Z");
    assert_eq!(rfc3339(ms, -300, ' ', true, false), "2026-09-30 19:00:01.234000-05:00");
    assert_eq!(rfc3339(ms - 1_234, 330, 't', false, true), "2026-10-01t05:30:00+05:30");
}

#[test]
fn chunks_cover_every_person_once_and_one_chunk_is_generate() {
    let spec = small();
    let whole = generate(&spec);
    let one: Vec<Vec<GenRecord>> = Chunks::new(spec.clone(), spec.persons).collect();
    assert_eq!(one, vec![whole.clone()]);
    let mut chunks = Chunks::new(spec.clone(), 150);
    let mut got = Vec::new();
    while let Some(c) = chunks.next() {
        got.push((chunks.persons_done(), c));
    }
    assert_eq!(got.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![150, 300, 400]);
    assert_eq!(got, {
        let mut again = Chunks::new(spec.clone(), 150);
        let mut v = Vec::new();
        while let Some(c) = again.next() {
            v.push((again.persons_done(), c));
        }
        v
    });
    let kinds = |recs: &[GenRecord], ty: &str| recs.iter().filter(|r| r.valid && String::from_utf8_lossy(&r.value).contains(ty)).count();
    // Campaign launches only with the first chunk, tenant-wide personalization only with the last.
    assert!(kinds(&got[0].1, "campaign_launch") > 0);
    assert!(got[1..].iter().all(|(_, c)| kinds(c, "campaign_launch") == 0));
    assert!(kinds(&got[2].1, "content_optimization") > 0);
    assert!(got[..2].iter().all(|(_, c)| kinds(c, "content_optimization") == 0));
    // About as many records as the whole dataset, every chunk valid by itself.
    let n: usize = got.iter().map(|(_, c)| c.len()).sum();
    assert!((n as f64 / whole.len() as f64 - 1.0).abs() < 0.1, "{n} vs {}", whole.len());
    assert_eq!(Chunks::new(DatasetSpec { persons: 0, ..spec }, 10).count(), 1);
}

/// One accepted journey event (first copy of each `event_id`): its tenant, its
/// map as written (JSON or MessagePack), and what `decode` made of it. Every
/// record marked valid must be accepted.
struct Accepted {
    tenant: String,
    ts_ms: i64,
    raw: Value,
    j: JourneyEvent,
}

fn accepted_journeys(spec: &DatasetSpec, recs: &[GenRecord]) -> Vec<Accepted> {
    let now = Ts::now();
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for r in recs.iter().filter(|r| r.valid) {
        let partition = r.partition.unwrap_or_else(|| partition_for(&r.key, spec.partitions));
        let ctx = ValidateCtx { now, partition: Some(partition), partitions: spec.partitions };
        let ev = decode(&r.value, &ctx).unwrap_or_else(|rej| panic!("rejected ({rej}): {}", String::from_utf8_lossy(&r.value)));
        if !ids.insert((ev.tenant_id.clone(), ev.event_id.clone())) {
            continue;
        }
        if let Body::Journey(j) = ev.body {
            let raw: Value = if r.value[0] == b'{' {
                serde_json::from_slice(&r.value).expect("json")
            } else {
                rmp_serde::from_slice(&r.value).expect("msgpack")
            };
            out.push(Accepted { tenant: ev.tenant_id, ts_ms: ev.ts.as_millis(), raw, j });
        }
    }
    out
}

/// A signal as stitching reads it: address, user agent, geolocation.
type Sig<'a> = (&'a str, Option<&'a str>, Option<(f64, f64)>);

/// The valid signal of an accepted event (spec: consent not `false`, an address).
fn signal(a: &Accepted) -> Option<Sig<'_>> {
    let c = a.j.context.as_ref().filter(|_| a.j.analytics_consent)?;
    Some((c.ip_address.as_deref()?, c.user_agent.as_deref(), c.geolocation.map(|g| (g.lat, g.lon))))
}

/// customer_id → user_id, per tenant (from `identify` and carried links).
fn owners(js: &[Accepted]) -> HashMap<(&str, &str), &str> {
    js.iter()
        .filter_map(|a| Some(((a.tenant.as_str(), a.j.customer_id.as_str()), a.j.user_id.as_deref()?)))
        .collect()
}

fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = std::f64::consts::PI / 180.0;
    let h = ((b.0 - a.0) * r / 2.0).sin().powi(2) + (a.0 * r).cos() * (b.0 * r).cos() * ((b.1 - a.1) * r / 2.0).sin().powi(2);
    2.0 * 6371.0088 * h.sqrt().asin()
}

#[test]
fn gen_households_share_an_address_and_cgnat_addresses_many_persons() {
    let spec = small();
    let js = accepted_journeys(&spec, &generate(&spec));
    let owner = owners(&js);
    // Persons (user ids) and components (a user id, else the device) per address.
    let mut persons: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    let mut components: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    let mut agents: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    let mut spots: BTreeMap<(&str, &str), Vec<(f64, f64)>> = BTreeMap::new();
    let mut signals = 0;
    for a in &js {
        let Some((ip, ua, geo)) = signal(a) else { continue };
        signals += 1;
        let (t, cid) = (a.tenant.as_str(), a.j.customer_id.as_str());
        let who = owner.get(&(t, cid)).copied();
        persons.entry((t, ip)).or_default().extend(who);
        components.entry((t, ip)).or_default().insert(who.unwrap_or(cid));
        agents.entry((t, cid)).or_default().extend(ua);
        if let Some(g) = geo.filter(|g| g.0.abs() < 90.0) {
            spots.entry((t, ip)).or_default().push(g);
        }
    }
    assert!(signals * 2 > js.len(), "most journey events carry a signal: {signals} of {}", js.len());
    // Families: several persons behind one home address, at most 6 (under the shared-address limit).
    let families = persons.values().filter(|p| (2..=6).contains(&p.len())).count();
    assert!(families >= 30, "{families} family addresses");
    assert!(persons.iter().filter(|((_, ip), _)| ip.starts_with("10.")).all(|(_, p)| p.len() <= 6));
    // Carrier-grade NAT: addresses of more than 10 persons (so they score nothing), in every tenant.
    let shared: BTreeSet<&str> = components.iter().filter(|(_, c)| c.len() > 10).map(|((t, _), _)| *t).collect();
    let most: BTreeMap<&str, usize> = components.iter().fold(BTreeMap::new(), |mut m, ((t, _), c)| {
        let e = m.entry(*t).or_insert(0);
        *e = (*e).max(c.len());
        m
    });
    assert_eq!(shared, ["acme", "globex", "initech"].into(), "most components on one address: {most:?}");
    assert!(persons.values().any(|p| p.len() > 10), "an address of more than 10 known persons");
    // A device keeps its user agent.
    assert!(agents.values().all(|u| u.len() <= 1));
    // At a home address (not shared) the devices sit within 1 km of each other, near one city.
    for (key, at) in spots.iter().filter(|(k, _)| components[*k].len() <= 10 && k.1.starts_with("10.")) {
        assert!(at.iter().all(|g| km(at[0], *g) <= 1.0), "{key:?}: {at:?}");
    }
}

#[test]
fn gen_cookie_resets_reappear_under_a_new_customer_id() {
    let spec = small();
    let js = accepted_journeys(&spec, &generate(&spec));
    let owner = owners(&js);
    // Events (customer_id, time) by browser: tenant, address, user agent and spot.
    type Browser<'a> = (&'a str, &'a str, &'a str, u64, u64);
    let mut browsers: HashMap<Browser, Vec<(&str, i64)>> = HashMap::new();
    for a in &js {
        if let Some((ip, Some(ua), Some((lat, lon)))) = signal(a) {
            browsers.entry((a.tenant.as_str(), ip, ua, lat.to_bits(), lon.to_bits())).or_default().push((a.j.customer_id.as_str(), a.ts_ms));
        }
    }
    // A reset: an anonymous customer_id first seen after a known one on that browser, within 24 h.
    let mut gaps = BTreeMap::new();
    for ((t, ..), evs) in &browsers {
        for (cid, ts) in evs.iter().filter(|(c, _)| !owner.contains_key(&(*t, *c))) {
            let gap = evs.iter().filter(|(k, kts)| owner.contains_key(&(*t, *k)) && kts < ts).map(|(_, kts)| ts - kts).min();
            if let Some(g) = gap.filter(|g| *g <= 24 * 3_600_000) {
                let e = gaps.entry((*t, *cid)).or_insert(g);
                *e = (*e).min(g);
            }
        }
    }
    assert!(gaps.len() >= 10, "{} cookie resets: {gaps:?}", gaps.len());
    assert!(gaps.values().any(|g| *g <= 30 * 60_000) && gaps.values().any(|g| *g > 30 * 60_000), "minutes and hours: {gaps:?}");
    assert!(gaps.keys().all(|(_, cid)| cid.starts_with("ck_")), "browser cookies");
}

#[test]
fn gen_ill_typed_signals_are_accepted_and_count_as_absent() {
    let spec = DatasetSpec { bad_signal_rate: 0.1, ..small() };
    let js = accepted_journeys(&spec, &generate(&spec));
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &js {
        let (ctx, init) = (a.raw.get("context"), a.raw.get("initial_context"));
        let dc = a.j.context.as_ref();
        let ip = dc.and_then(|c| c.ip_address.as_deref());
        let mut kind = |k| *kinds.entry(k).or_insert(0) += 1;
        if ctx.is_some_and(|c| !c.is_object()) && init.is_some_and(Value::is_object) {
            kind("context not an object");
            assert_eq!(ip, init.and_then(|i| i["ip_address"].as_str()).filter(|s| !s.is_empty()), "{}", a.raw);
        }
        if ctx.is_some_and(|c| c.is_object() && c.get("ip_address").is_none()) && init.is_some_and(|i| i.get("ip_address").is_some()) {
            kind("no per-field fallback");
            assert_eq!(ip, None, "{}", a.raw);
        }
        let Some(o) = ctx.filter(|c| c.is_object()).or(init.filter(|i| i.is_object())) else { continue };
        match o.get("ip_address") {
            Some(Value::Number(_)) => {
                kind("ip_address a number");
                assert_eq!(ip, None, "{}", a.raw);
            }
            Some(Value::String(s)) if s.is_empty() => {
                kind("empty ip_address");
                assert_eq!(ip, None, "{}", a.raw);
            }
            _ => {}
        }
        if o.get("user_agent") == Some(&json!("")) {
            kind("empty user_agent");
            assert_eq!(dc.and_then(|c| c.user_agent.as_deref()), None, "{}", a.raw);
        }
        let geo = dc.and_then(|c| c.geolocation);
        match o.get("geolocation") {
            Some(g) if !g.is_object() => {
                kind("geolocation not an object");
                assert_eq!(geo, None, "{}", a.raw);
            }
            Some(g) => match (g["lat"].as_f64(), g["lon"].as_f64()) {
                (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => {
                    if lat.abs() == 90.0 {
                        kind("geolocation on the bounds");
                    }
                    assert_eq!(geo.map(|g| (g.lat, g.lon)), Some((lat, lon)), "{}", a.raw);
                }
                (Some(_), Some(_)) => {
                    kind("geolocation out of range");
                    assert_eq!(geo, None, "{}", a.raw);
                }
                _ => {
                    kind("geolocation ill-typed");
                    assert_eq!(geo, None, "{}", a.raw);
                }
            },
            None => {}
        }
    }
    for k in [
        "context not an object",
        "no per-field fallback",
        "ip_address a number",
        "empty ip_address",
        "empty user_agent",
        "geolocation not an object",
        "geolocation ill-typed",
        "geolocation out of range",
        "geolocation on the bounds",
    ] {
        assert!(kinds.get(k).is_some_and(|n| *n > 0), "no `{k}` in {kinds:?}");
    }
}

#[test]
fn gen_tenant_skew_sizes_the_tenants() {
    let share_of_largest = |skew: f64| {
        let spec = DatasetSpec { tenants: 24, persons: 2_000, tenant_skew: skew, ..DatasetSpec::default() };
        let recs = generate(&spec);
        let mut per: HashMap<&str, usize> = HashMap::new();
        for r in &recs {
            *per.entry(r.key.as_str()).or_default() += 1;
        }
        *per.values().max().unwrap() as f64 / recs.len() as f64
    };
    // Zipf over 24 tenants: the largest has 1 / H(24) ≈ 26.5 % of the persons.
    let zipf = share_of_largest(1.0);
    assert!((0.2..0.33).contains(&zipf), "largest tenant {zipf}");
    let even = share_of_largest(0.0);
    assert!(even < 0.08, "largest of 24 equal tenants {even}");
    assert!(share_of_largest(0.5) > even && share_of_largest(0.5) < zipf);
}

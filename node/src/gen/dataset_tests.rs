//! Tests of the generated dataset: determinism, and that `valid` agrees with the
//! real validation (`decode`) while the invalid records cover every reason but `poison`.

use super::dataset::*;
use super::payload::{civil_from_days, rfc3339};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use touchline_actors::domain::decode::{decode, ValidateCtx};
use touchline_actors::domain::routing::partition_for;
use touchline_actors::domain::{Body, JourneyKind, Ts};

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

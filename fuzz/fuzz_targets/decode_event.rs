//! Fuzz target `decode_event`: arbitrary bytes → `decode` (JSON when the first
//! byte is `{`, MessagePack otherwise). Must never panic, and:
//! - an accepted event satisfies the contract's invariants (tenant pattern,
//!   id lengths, future bound, canonical `cm_node_seq`, finite metrics, ...)
//!   and survives the storage codec (`rmp_serde::to_vec_named` → `from_slice`);
//! - reading the same record from partition `Some(n)` (n derived from the
//!   input) gives the same event exactly when n is the tenant's murmur2
//!   partition, `misrouted` otherwise, and never changes an earlier rejection;
//! - a JSON record re-encoded as MessagePack decodes to the same result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use touchline_fuzz::{check_ts, plain_decimal};
use touchline_actors::domain::decode::{decode, ValidateCtx, MAX_EVENT_BYTES, MAX_FUTURE_SECS};
use touchline_actors::domain::{routing, Body, Event, JourneyKind, Reason, Rejection, Ts};

const PARTITIONS: i32 = 12;
/// 2026-01-01T00:00:00Z, the clock the unit tests use.
const NOW: Ts = Ts::new(1_767_225_600, 0);

/// `^[a-z0-9][a-z0-9_-]{0,63}$`, written independently of `valid_tenant`.
fn tenant_ok(t: &str) -> bool {
    let mut chars = t.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok && t.chars().count() <= 64 && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn len_in(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
}

fn check_event(e: &Event) {
    assert!(tenant_ok(&e.tenant_id), "tenant {:?}", e.tenant_id);
    assert!(len_in(&e.event_id, 128), "event_id {:?}", e.event_id);
    assert!(e.ts <= NOW.plus_secs(MAX_FUTURE_SECS), "ts {:?} in the future", e.ts);
    match &e.body {
        Body::Journey(j) => {
            assert!(len_in(&j.customer_id, 256));
            if let Some(u) = &j.user_id {
                assert!(len_in(u, 256));
            }
            if j.kind == JourneyKind::Identify {
                assert!(j.user_id.is_some(), "identify without user_id");
            }
            assert!(j.journey_id.as_deref().map_or(true, |s| !s.is_empty()));
            let touches = matches!(j.kind, JourneyKind::JourneyStart | JourneyKind::TouchpointInteraction);
            assert_eq!(j.touch.is_some(), touches);
            assert_eq!(j.conversion.is_some(), j.kind == JourneyKind::ConversionEvent);
            if let Some(t) = &j.touch {
                let d = &t.dims;
                if let Some(seq) = &d.sequence {
                    assert!(plain_decimal(seq), "cm_node_seq {seq:?}");
                }
                for (i, (n, v)) in d.params.iter().enumerate() {
                    assert!(n.starts_with("utm_") || n.starts_with("cm_"), "param {n:?}");
                    assert!(!v.is_empty(), "empty value for {n:?}");
                    assert!(d.params[..i].iter().all(|(m, _)| m != n), "repeated {n:?}");
                }
                let has = |n: &str| d.params.iter().any(|(m, _)| m == n);
                assert_eq!(d.source_medium.is_some(), has("utm_source") && has("utm_medium"));
            }
            if let Some(c) = &j.conversion {
                assert!(c.value.is_finite() && c.value >= 0.0, "value {}", c.value);
                assert!(c.currency.len() == 3 && c.currency.bytes().all(|b| b.is_ascii_uppercase()));
            }
        }
        Body::Campaign(c) => {
            assert!(!c.campaign_id.is_empty());
            let m = &c.metrics;
            assert!([m.impressions, m.clicks, m.conversions, m.cost, m.revenue].iter().all(|x| x.is_finite()));
        }
        Body::Personalization(p) => {
            if let Some(c) = &p.customer_id {
                assert!(len_in(c, 256));
            }
            for (i, s) in p.segments.iter().enumerate() {
                assert!(!s.is_empty());
                assert!(!p.segments[..i].contains(s), "repeated segment {s:?}");
            }
            for v in &p.variants {
                assert!(!v.variant_id.is_empty());
                assert!([v.impressions, v.clicks, v.conversions, v.revenue].iter().all(|x| x.is_finite()));
            }
        }
        Body::ConsentUpdate { customer_id, .. } | Body::Erasure { customer_id } => assert!(len_in(customer_id, 256)),
        Body::CostImport(c) => {
            assert!(len_in(&c.campaign_id, 256) && touchline_actors::domain::costs::valid_date(&c.date));
            assert!(c.cost.is_finite() && c.cost >= 0.0);
            assert!(c.currency.len() == 3 && c.currency.bytes().all(|b| b.is_ascii_uppercase()));
        }
        Body::Registry(_) => {}
    }
    // The storage codec round-trips every accepted event.
    let stored = rmp_serde::to_vec_named(e).expect("encode");
    let back: Event = rmp_serde::from_slice(&stored).expect("decode stored event");
    assert_eq!(&back, e);
    check_ts(e.ts);
}

fn check_rejection(r: &Rejection) {
    assert!(!matches!(r.reason, Reason::Misrouted | Reason::Poison), "{r:?} without a partition");
}

fuzz_target!(|data: &[u8]| {
    let ctx = ValidateCtx { now: NOW, partition: None, partitions: PARTITIONS };
    let r0 = decode(data, &ctx);
    match &r0 {
        Ok(e) => check_event(e),
        Err(r) => check_rejection(r),
    }

    // The same record read from partition n.
    let n = (data.iter().fold(0u32, |h, &b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % PARTITIONS as u32) as i32;
    let r1 = decode(data, &ValidateCtx { partition: Some(n), ..ctx });
    match &r0 {
        Ok(e) if routing::partition_for(&e.tenant_id, PARTITIONS) == n => assert_eq!(r1, r0),
        Ok(_) => assert_eq!(r1.map_err(|r| r.reason), Err(Reason::Misrouted)),
        // Every check before the partition check rejects with a reason other than
        // `schema`, or with `schema` on a common field; body checks come after.
        Err(r) if r.reason != Reason::Schema => assert_eq!(r1, r0),
        Err(_) => assert!(r1 == r0 || matches!(&r1, Err(r) if r.reason == Reason::Misrouted), "{r1:?} vs {r0:?}"),
    }

    // JSON ≡ MessagePack: the same map re-encoded decodes to the same result.
    if data.first() == Some(&b'{') && data.len() <= MAX_EVENT_BYTES {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            let mp = rmp_serde::to_vec_named(&v).expect("encode msgpack");
            if mp.len() <= MAX_EVENT_BYTES {
                assert_eq!(decode(&mp, &ctx), r0, "JSON and MessagePack disagree");
            }
        }
    }
});

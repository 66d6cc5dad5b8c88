//! Deterministic data builders shared by the criterion benchmarks of
//! `benches/domain.rs` (and checked by this crate's unit tests, so a benchmark
//! never silently measures a rejection path or an empty result).
//!
//! Everything is generated from fixed seeds with [`SmallRng`]: two runs time the
//! same inputs. Nothing here is timed; builders run once, outside the loops.
//!
//! - [`touchpoint_event`] / [`conversion_event`]: realistic journey events as
//!   `serde_json::Value` (the bench encodes them as JSON and as MessagePack);
//!   [`decode_ctx`] is the validation context a node would pass for them.
//! - [`ConversionPath`]: one conversion's touchpoint path of a given length, for
//!   the rule-based models.
//! - [`identity_links`]: deterministic `customer_id ↔ user_id` links forming
//!   persons of 2–5 devices, in interleaved arrival order.
//! - [`journey_paths`]: converted and non-converting journey paths over the ten
//!   channels, for the data-driven models.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use touchline_actors::domain::datadriven::JourneyPath;
use touchline_actors::domain::decode::ValidateCtx;
use touchline_actors::domain::identity::{IdNode, Link};
use touchline_actors::domain::models::PathTouch;
use touchline_actors::domain::{routing, timestamp, Channel, Ts};

/// Base seed; each builder derives its own stream from it.
pub const SEED: u64 = 0x7042_11AE_2026_0001;

/// The node clock used for decoding (events are a few hours older).
pub const NOW: &str = "2026-01-01T00:00:00Z";

/// Partitions of the events topic.
pub const PARTITIONS: i32 = 12;

/// Tenant of the sample events.
pub const TENANT: &str = "acme-retail";

/// `max_ids_per_person` of the node's default configuration.
pub const MAX_IDS_PER_PERSON: usize = 64;

/// A seeded generator for builder `stream`.
pub fn rng(stream: u64) -> SmallRng {
    SmallRng::seed_from_u64(SEED ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// [`NOW`] as a [`Ts`].
pub fn now() -> Ts {
    timestamp::parse_rfc3339(NOW).expect("valid NOW")
}

/// The context a node passes when it reads [`TENANT`]'s events from their own
/// partition (so the `misrouted` check runs too).
pub fn decode_ctx() -> ValidateCtx {
    ValidateCtx { now: now(), partition: Some(routing::partition_for(TENANT, PARTITIONS)), partitions: PARTITIONS }
}

/// A `touchpoint_interaction` with a landing URL carrying `utm_*` and `cm_*`
/// parameters and device context (about 550 bytes as compact JSON).
pub fn touchpoint_event() -> Value {
    json!({
        "event_id": "evt-7f3a9c2e-5b1d-4e8f",
        "tenant_id": TENANT,
        "event_type": "touchpoint_interaction",
        "timestamp": "2025-12-31T10:15:42.123Z",
        "customer_id": "cust-00018442",
        "user_id": "user-991137",
        "journey_id": "spring-sale-2026",
        "touchpoints": {
            "channel": "email",
            "interaction_type": "click",
            "metadata": {
                "url": "https://shop.example.com/spring?utm_source=newsletter&utm_medium=email\
                        &utm_campaign=spring_sale&utm_content=hero_banner\
                        &cm_journey_id=spring-sale-2026&cm_node_seq=03&cm_variant=B"
            }
        },
        "context": {"device_type": "mobile", "ip_address": "203.0.113.42"}
    })
}

/// A `conversion_event` of the same person (about 400 bytes as compact JSON).
pub fn conversion_event() -> Value {
    json!({
        "event_id": "evt-0c9d4e21-88b7-4f0a",
        "tenant_id": TENANT,
        "event_type": "conversion_event",
        "timestamp": "2025-12-31T11:02:07.480Z",
        "customer_id": "cust-00018442",
        "user_id": "user-991137",
        "journey_id": "spring-sale-2026",
        "conversion_data": {"value": 129.95, "currency": "EUR", "conversion_type": "purchase"},
        "context": {"device_type": "mobile", "ip_address": "203.0.113.42"},
        "consent": {"analytics": true}
    })
}

/// Channels with relative popularity (touchpoint draws) and conversion lift.
const CHANNEL_MIX: [(Channel, u32, f64); 10] = [
    (Channel::Email, 22, 0.05),
    (Channel::Social, 18, 0.02),
    (Channel::Display, 14, 0.01),
    (Channel::Search, 16, 0.08),
    (Channel::Video, 6, 0.02),
    (Channel::Native, 5, 0.01),
    (Channel::Direct, 10, 0.06),
    (Channel::Referral, 5, 0.04),
    (Channel::FieldSales, 2, 0.15),
    (Channel::Other, 2, 0.00),
];

fn draw_channel(rng: &mut SmallRng) -> (Channel, f64) {
    let total: u32 = CHANNEL_MIX.iter().map(|c| c.1).sum();
    let mut x = rng.random_range(0..total);
    for &(ch, weight, lift) in &CHANNEL_MIX {
        if x < weight {
            return (ch, lift);
        }
        x -= weight;
    }
    unreachable!("x < total")
}

/// One conversion's path: `len` touchpoints sorted by time within the 30 days
/// before [`ConversionPath::conv_ts`], grouped by channel. Owns the event ids the
/// [`PathTouch`]es borrow.
pub struct ConversionPath {
    pub conv_ts: Ts,
    touches: Vec<(Ts, Channel, String)>,
}

impl ConversionPath {
    /// A path of `len` touchpoints (deterministic per `len`). Paths of two or more
    /// touchpoints end on `direct`, so `last_non_direct` has to look back.
    pub fn new(len: usize) -> ConversionPath {
        let mut rng = rng(100 + len as u64);
        let conv_ts = now().minus_secs(3600);
        let mut offsets: Vec<i64> = (0..len).map(|_| rng.random_range(60..30 * 86_400)).collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a)); // oldest first
        let touches = offsets
            .iter()
            .enumerate()
            .map(|(i, &off)| {
                let ch = if len >= 2 && i == len - 1 { Channel::Direct } else { draw_channel(&mut rng).0 };
                (conv_ts.minus_secs(off), ch, format!("evt-{len:02}-{i:04}"))
            })
            .collect();
        ConversionPath { conv_ts, touches }
    }

    /// The path as the models take it (key = channel name).
    pub fn touches(&self) -> Vec<PathTouch<'_>> {
        self.touches
            .iter()
            .map(|(ts, ch, id)| PathTouch { ts: *ts, channel: *ch, key: ch.as_str(), event_id: id })
            .collect()
    }
}

/// `n` links forming persons of 2–5 devices: a person is one `user_id` (the
/// login) and 2–5 device `customer_id`s, each linked to the login once (the last
/// person is cut short at `n`). Persons interleave in arrival order; timestamps
/// increase with it, one second apart.
pub fn identity_links(n: usize) -> Vec<Link> {
    let mut rng = rng(200);
    let mut pairs: Vec<(IdNode, IdNode)> = Vec::with_capacity(n);
    let mut person = 0u32;
    while pairs.len() < n {
        let devices = rng.random_range(2..=5u32);
        let user = IdNode::user(format!("user-{person:07}"));
        for d in 0..devices {
            if pairs.len() == n {
                break;
            }
            pairs.push((IdNode::customer(format!("anon-{person:07}-{d}")), user.clone()));
        }
        person += 1;
    }
    pairs.shuffle(&mut rng);
    let t0 = now().minus_secs(86_400);
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, (a, b))| Link::new(t0.plus_secs(i as i64), format!("lnk-{i:07}"), a, b))
        .collect()
}

/// The distinct nodes of `links`, in first-appearance order.
pub fn link_nodes(links: &[Link]) -> Vec<IdNode> {
    let mut seen = std::collections::HashSet::new();
    links
        .iter()
        .flat_map(|l| [&l.a, &l.b])
        .filter(|n| seen.insert(*n))
        .cloned()
        .collect()
}

/// `n` journey paths over the ten channels (keys = channel names): 1–8
/// touchpoints (short paths most frequent), consecutive repeats possible;
/// converted with a probability that grows with the channels touched (about one
/// path in five converts).
pub fn journey_paths(n: usize) -> Vec<JourneyPath> {
    let mut rng = rng(300);
    (0..n)
        .map(|_| {
            let mut len = 1;
            while len < 8 && rng.random_bool(0.55) {
                len += 1;
            }
            let mut keys = Vec::with_capacity(len);
            let mut p: f64 = 0.03;
            for _ in 0..len {
                let (ch, lift) = draw_channel(&mut rng);
                p += lift;
                keys.push(ch.as_str().to_string());
            }
            JourneyPath { keys, converted: rng.random_bool(p.min(0.9)), value: 1.0 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchline_actors::domain::decode::decode;
    use touchline_actors::domain::identity::{apply_link, stitch, MemIdentity};
    use touchline_actors::domain::models::{credit_by_key, Model, ModelParams};
    use touchline_actors::domain::{datadriven, Body};

    #[test]
    fn sample_events_decode_alike_in_both_encodings() {
        for (v, lo, hi) in [(touchpoint_event(), 500, 600), (conversion_event(), 350, 450)] {
            let json = serde_json::to_vec(&v).unwrap();
            assert!((lo..hi).contains(&json.len()), "{} JSON bytes", json.len());
            let a = decode(&json, &decode_ctx()).expect("JSON accepted");
            let b = decode(&rmp_serde::to_vec_named(&v).unwrap(), &decode_ctx()).expect("MessagePack accepted");
            assert_eq!(a, b);
            assert!(matches!(a.body, Body::Journey(_)));
        }
        let Body::Journey(j) = decode(&serde_json::to_vec(&touchpoint_event()).unwrap(), &decode_ctx()).unwrap().body
        else {
            unreachable!()
        };
        let dims = j.touch.expect("touch").dims;
        assert_eq!(dims.sequence.as_deref(), Some("3"));
        assert_eq!(dims.source_medium.as_deref(), Some("newsletter / email"));
        assert_eq!(dims.params.len(), 7);
    }

    #[test]
    fn conversion_paths_are_sorted_and_credit_sums_to_one() {
        let params = ModelParams { custom_weights: Some([30.0, 40.0, 30.0]), ..ModelParams::default() };
        for len in [1, 5, 20] {
            let p = ConversionPath::new(len);
            let t = p.touches();
            assert_eq!(t.len(), len);
            assert!(t.windows(2).all(|w| w[0].ts <= w[1].ts) && t.iter().all(|x| x.ts < p.conv_ts));
            for m in Model::ALL.into_iter().filter(|m| !m.is_data_driven() && *m != Model::Participation) {
                let sum: f64 = credit_by_key(m, &t, p.conv_ts, &params).iter().map(|c| c.1).sum();
                assert!((sum - 1.0).abs() < 1e-9, "{m} len {len}: {sum}");
            }
        }
    }

    #[test]
    fn links_form_persons_of_two_to_five_devices() {
        let links = identity_links(10_000);
        assert_eq!(links.len(), 10_000);
        let st = stitch(&link_nodes(&links), &links, MAX_IDS_PER_PERSON);
        assert_eq!(st.blocked, 0);
        // user + 2..=5 devices (the cut-short last person may have 1 device).
        assert!(st.groups.iter().all(|g| (2..=6).contains(&g.len())));
        assert!(st.groups.iter().filter(|g| g.len() < 3).count() <= 1);
        let mut s = MemIdentity::default();
        for l in &links {
            apply_link(&mut s, l, MAX_IDS_PER_PERSON).unwrap();
        }
        assert_eq!(s.groups(), st.groups);
    }

    #[test]
    fn journey_paths_convert_sometimes_and_cover_every_channel() {
        let paths = journey_paths(20_000);
        let rate = paths.iter().filter(|p| p.converted).count() as f64 / paths.len() as f64;
        assert!((0.1..0.4).contains(&rate), "conversion rate {rate}");
        let m = datadriven::markov(&paths);
        assert_eq!(m.credits.len(), 10);
        let s = datadriven::shapley(&paths);
        assert_eq!(s.credits.len(), 10);
    }
}

//! Building blocks of the generated dataset: ids, timestamps (RFC 3339 with
//! offsets or epoch ms), landing URLs with `utm_*` / `cm_*` parameters, campaign
//! catalogues, JSON/MessagePack encoding (device signals for probabilistic
//! stitching are in [`super::signals`], re-exported here), and the
//! deliberately invalid records (one builder per rejection reason of
//! events.md except `poison`).
//!
//! Everything draws from the caller's RNG, so [`super::dataset::generate`] stays
//! deterministic.

use super::dataset::DatasetSpec;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use touchline_actors::domain::routing::partition_for;

pub use super::signals::{device, put_context, signal, Device, Household, Net, Signal, BAD_SIGNAL_KINDS, CGNAT_PERSONS};

pub const MIN_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// The ten channels of events.md with their relative frequency.
pub const CHANNELS: [(&str, u32); 10] = [
    ("email", 20),
    ("search", 18),
    ("display", 15),
    ("social", 12),
    ("video", 8),
    ("direct", 8),
    ("native", 6),
    ("referral", 5),
    ("field_sales", 5),
    ("other", 3),
];

/// `utm_content` values (spaces get encoded as `+` or `%20` in URLs).
pub const CONTENTS: [&str; 6] = [
    "hero banner",
    "cta button",
    "video 30s",
    "newsletter v2",
    "patient-story",
    "café",
];

const BRANDS: [&str; 8] = [
    "EYLEA", "DUPIXENT", "LIBTAYO", "PRALUENT", "KEVZARA", "PRAXBIND", "ZALTRAP", "ARCALYST",
];
const AUDIENCES: [&str; 4] = ["hcp_retina", "patients_18_65", "caregivers", "payers"];

pub struct Campaign {
    pub id: String,
    pub name: String,
    pub journey: String,
    pub brand: &'static str,
    pub utm_name: String,
    pub channel: &'static str,
    pub audience: &'static str,
    pub nodes: u32,
}

pub struct TenantCtx {
    pub idx: usize,
    pub id: String,
    pub partition: i32,
    pub weight: f64,
    pub campaigns: Vec<Campaign>,
}

/// A tenant with 3..=5 campaigns (`CMP-EYLEA-2026-001`, journey `CJ-EYLEA-2026-001`).
pub fn tenant_ctx(rng: &mut SmallRng, idx: usize, id: String, spec: &DatasetSpec) -> TenantCtx {
    let year = civil_from_days(spec.start_ms.div_euclid(DAY_MS)).0;
    let n = rng.random_range(3..=5);
    let campaigns = (0..n)
        .map(|k| {
            let brand = BRANDS[(idx * 3 + k) % BRANDS.len()];
            let num = idx * 10 + k + 1;
            let season = [
                "Fall Launch",
                "HCP Awareness",
                "Patient Support",
                "Retargeting",
                "Q4 Push",
            ][k % 5];
            Campaign {
                id: format!("CMP-{brand}-{year}-{num:03}"),
                name: format!("{} {season}", title(brand)),
                journey: format!("CJ-{brand}-{year}-{num:03}"),
                brand,
                utm_name: format!("{} {season}", brand.to_lowercase()),
                channel: loop {
                    let c = pick_channel(rng);
                    if c != "direct" {
                        break c;
                    }
                },
                audience: AUDIENCES.choose(rng).copied().unwrap_or("all"),
                nodes: rng.random_range(3..=8),
            }
        })
        .collect();
    TenantCtx {
        idx,
        partition: partition_for(&id, spec.partitions.max(1)),
        id,
        weight: tenant_weight(idx, spec.tenant_skew),
        campaigns,
    }
}

/// Tenant `idx`'s share of persons, relative: `(idx + 1)^-skew`
/// (`DatasetSpec::tenant_skew`; 0.5 exactly as before the option existed).
pub fn tenant_weight(idx: usize, skew: f64) -> f64 {
    let rank = (idx + 1) as f64;
    if skew == 0.5 {
        1.0 / rank.sqrt()
    } else {
        rank.powf(-skew)
    }
}

fn title(brand: &str) -> String {
    let mut c = brand.chars();
    c.next()
        .map(|f| f.to_string() + &c.as_str().to_lowercase())
        .unwrap_or_default()
}

/// JSON, or MessagePack of the same map with probability `msgpack_rate`.
pub fn encode(rng: &mut SmallRng, v: &Value, msgpack_rate: f64) -> Vec<u8> {
    encode_with(rng, v, msgpack_rate, &mut Vec::new())
}

/// [`encode`] through a reused `scratch` buffer, so that a record costs one
/// exact-size allocation instead of a growing one.
pub fn encode_with(rng: &mut SmallRng, v: &Value, msgpack_rate: f64, scratch: &mut Vec<u8>) -> Vec<u8> {
    scratch.clear();
    if rng.random_bool(msgpack_rate) {
        rmp_serde::encode::write_named(scratch, v).expect("a JSON value always encodes as MessagePack");
    } else {
        serde_json::to_writer(&mut *scratch, v).expect("a JSON value always serializes");
    }
    scratch.as_slice().to_vec()
}

/// A random (version-4 shaped) UUID; 122 random bits make collisions negligible.
pub fn event_id(rng: &mut SmallRng) -> String {
    let x: u128 = rng.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (x >> 96) as u32,
        (x >> 80) as u16,
        (x >> 68) as u16 & 0x0fff,
        ((x >> 52) as u16 & 0x3fff) | 0x8000,
        x as u64 & 0xffff_ffff_ffff
    )
}

/// A device-scoped id (cookie / mobile ad id style).
pub fn customer_id(rng: &mut SmallRng) -> String {
    let x: u64 = rng.random();
    if rng.random_bool(0.7) {
        format!("ck_{:016x}", x)
    } else {
        format!("dev-{:012X}", x & 0xffff_ffff_ffff)
    }
}

/// A browser cookie id.
pub fn cookie_id(rng: &mut SmallRng) -> String {
    format!("ck_{:016x}", rng.random::<u64>())
}

/// An authenticated id (CRM style).
pub fn user_id(rng: &mut SmallRng) -> String {
    format!("usr_{:010}", rng.random_range(0..10_000_000_000u64))
}

/// The event timestamp: epoch-ms integer or an RFC 3339 string in some offset.
pub fn ts_value(rng: &mut SmallRng, ms: i64) -> Value {
    if rng.random_bool(0.4) {
        return json!(ms);
    }
    let offset = *[0, 0, 0, 120, -300, 330, 60, -420, 540].choose(rng).unwrap_or(&0);
    let sep = *['T', 'T', 'T', 'T', 't', ' '].choose(rng).unwrap_or(&'T');
    let long_frac = rng.random_bool(0.2);
    let lower_z = rng.random_bool(0.1);
    Value::String(rfc3339(ms, offset, sep, long_frac, lower_z))
}

/// RFC 3339 of `ms` written in `offset_min` (fraction always kept exact).
pub fn rfc3339(ms: i64, offset_min: i32, sep: char, long_frac: bool, lower_z: bool) -> String {
    let local = ms + offset_min as i64 * MIN_MS;
    let (y, mo, d) = civil_from_days(local.div_euclid(DAY_MS));
    let rem = local.rem_euclid(DAY_MS);
    let (h, mi, s, milli) = (rem / HOUR_MS, rem % HOUR_MS / MIN_MS, rem % MIN_MS / 1000, rem % 1000);
    let mut out = format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}");
    if long_frac {
        let _ = write!(out, ".{milli:03}000");
    } else if milli != 0 {
        let _ = write!(out, ".{milli:03}");
    }
    if offset_min == 0 {
        out.push(if lower_z { 'z' } else { 'Z' });
    } else {
        let sign = if offset_min < 0 { '-' } else { '+' };
        let a = offset_min.abs();
        let _ = write!(out, "{sign}{:02}:{:02}", a / 60, a % 60);
    }
    out
}

pub use touchline_actors::domain::timestamp::civil_from_days;

pub fn pick_channel(rng: &mut SmallRng) -> &'static str {
    let total: u32 = CHANNELS.iter().map(|c| c.1).sum();
    let mut x = rng.random_range(0..total);
    for (c, w) in CHANNELS {
        if x < w {
            return c;
        }
        x -= w;
    }
    "other"
}

pub fn interaction_for(rng: &mut SmallRng, channel: &str) -> &'static str {
    let opts: &[&'static str] = match channel {
        "email" => &["open", "open", "click"],
        "display" | "native" | "social" => &["impression", "impression", "impression", "click"],
        "video" => &["view", "impression", "view", "click"],
        "search" => &["click", "impression"],
        "direct" | "field_sales" => &["visit"],
        "referral" => &["visit", "click"],
        _ => &["view", "visit", "impression"],
    };
    opts.choose(rng).copied().unwrap_or("view")
}

/// The `utm_source` / `utm_medium` of a channel.
pub fn source_medium(channel: &str) -> (&'static str, &'static str) {
    match channel {
        "email" => ("sfmc", "email"),
        "search" => ("google", "cpc"),
        "display" => ("dv360", "display"),
        "social" => ("linkedin", "paid_social"),
        "video" => ("youtube", "video"),
        "native" => ("taboola", "native"),
        "referral" => ("medscape", "referral"),
        "field_sales" => ("veeva", "field"),
        "direct" => ("(direct)", "(none)"),
        _ => ("partner", "other"),
    }
}

/// The first currency ~75 % of the time, else one of the others.
pub fn pick_currency(rng: &mut SmallRng, currencies: &[String]) -> String {
    match currencies {
        [] => "USD".to_string(),
        [only] => only.clone(),
        [first, rest @ ..] => {
            if rng.random_bool(0.75) {
                first.clone()
            } else {
                rest.choose(rng).cloned().unwrap_or_else(|| first.clone())
            }
        }
    }
}

/// Percent-encodes a query value onto `out`, spaces as `+` or `%20`, sometimes `-` as `%2D`.
fn enc(rng: &mut SmallRng, s: &str, out: &mut String) {
    let plus = rng.random_bool(0.5);
    let dash = rng.random_bool(0.3);
    for b in s.bytes() {
        match b {
            b' ' if plus => out.push('+'),
            b'-' if dash => out.push_str("%2D"),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// A URL's query being written in place: parameters joined by `&`.
struct Query {
    url: String,
    /// Where the query starts.
    start: usize,
    /// Where the first parameter ends, once there is a second one.
    first_end: Option<usize>,
}

impl Query {
    /// Starts parameter `key`; its value is written onto the returned string.
    fn key(&mut self, key: &str) -> &mut String {
        if self.url.len() > self.start {
            self.first_end.get_or_insert(self.url.len());
            self.url.push('&');
        }
        self.url.push_str(key);
        self.url.push('=');
        &mut self.url
    }

    fn is_empty(&self) -> bool {
        self.url.len() == self.start
    }

    fn first(&self) -> &str {
        &self.url[self.start..self.first_end.unwrap_or(self.url.len())]
    }
}

/// A landing URL (None for most `direct` touches). `cm_only` leaves out the `utm_*`
/// values so that a journey start's `entry_point` fills them. Written into one string.
pub fn landing_url(rng: &mut SmallRng, c: &Campaign, channel: &str, cm_only: bool) -> Option<String> {
    let mut url = String::with_capacity(320);
    url.push_str("https://www.");
    url.extend(c.brand.chars().flat_map(char::to_lowercase));
    url.push_str(".com");
    if channel == "direct" {
        return match rng.random_range(0..10) {
            0..=6 => None,
            7 | 8 => Some(url + "/"),
            _ => Some(url + "/support?ref=bookmark"),
        };
    }
    let path = *["/", "/hcp", "/patients/support", "/dosing", "/savings-card"]
        .choose(rng)
        .unwrap_or(&"/");
    url.push_str(path);
    url.push('?');
    let start = url.len();
    let mut q = Query { url, start, first_end: None };
    if !cm_only {
        let (source, medium) = source_medium(channel);
        enc(rng, source, q.key("utm_source"));
        enc(rng, medium, q.key("utm_medium"));
        if rng.random_bool(0.9) {
            enc(rng, &c.utm_name, q.key("utm_campaign"));
        }
        if rng.random_bool(0.8) {
            let content = *CONTENTS.choose(rng).unwrap_or(&"hero banner");
            enc(rng, content, q.key("utm_content"));
        }
        if channel == "search" {
            let term = *["eylea dosing", "wet amd treatment", "anti-vegf"]
                .choose(rng)
                .unwrap_or(&"");
            enc(rng, term, q.key("utm_term"));
        } else if rng.random_bool(0.05) {
            q.key("utm_term"); // empty counts as absent
        }
    }
    if rng.random_bool(0.85) {
        q.key("cm_campaign_id").push_str(&c.id);
    }
    if rng.random_bool(0.8) {
        q.key("cm_journey_id").push_str(&c.journey);
    }
    if rng.random_bool(0.75) {
        let seq = rng.random_range(1..=c.nodes);
        let padded = rng.random_bool(0.3);
        let v = q.key("cm_node_seq");
        let _ = if padded { write!(v, "{seq:02}") } else { write!(v, "{seq}") };
    }
    if rng.random_bool(0.7) {
        let variant = *["A", "B", "control"].choose(rng).unwrap_or(&"A");
        q.key("cm_variant").push_str(variant);
    }
    if rng.random_bool(0.2) {
        q.key("cm_brand").extend(c.brand.chars().flat_map(char::to_lowercase));
        q.key("cm_audience").push_str(c.audience);
    }
    if rng.random_bool(0.05) && !q.is_empty() {
        // A repeated parameter: the first wins.
        let again = q.first().replace('=', "=ignored-repeat-");
        q.url.push('&');
        q.url.push_str(&again);
    }
    if rng.random_bool(0.1) {
        q.key("gclid").push_str("Cj0KCQjw");
    }
    if rng.random_bool(0.1) {
        q.url.push_str("#isi");
    }
    Some(q.url)
}

/// A personalization event from its header (seed: PersonalizationEvent).
pub fn personalization(rng: &mut SmallRng, mut m: Map<String, Value>, customer_id: Option<&str>) -> Value {
    if let Some(c) = customer_id {
        m.insert("customer_id".into(), json!(c));
    }
    let segs: Vec<&str> = ["hcp_retina", "high_intent", "lapsed", "new_patient"]
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.5))
        .collect();
    m.insert("segments".into(), json!(segs));
    let variants: Vec<Value> = ["A", "B", "control"]
        .iter()
        .map(|v| {
            let impressions = rng.random_range(0..5_000);
            let clicks = impressions / rng.random_range(20..60);
            let conversions = clicks / rng.random_range(5..20);
            json!({"variant_id": v, "content": format!("hero-{}", v.to_lowercase()),
                   "performance_metrics": {"impressions": impressions, "clicks": clicks,
                   "conversions": conversions, "revenue": conversions as f64 * 125.5}})
        })
        .collect();
    m.insert("content_variations".into(), Value::Array(variants));
    Value::Object(m)
}

/// The rejection reason an invalid record is built to trigger: every stable
/// code of events.md but `poison` (which only a failing handler produces).
pub type InvalidKind = touchline_actors::domain::Reason;

/// The reasons a generated record can be built to trigger.
pub const INVALID_KINDS: [InvalidKind; 7] = [
    InvalidKind::Decode,
    InvalidKind::Schema,
    InvalidKind::Tenant,
    InvalidKind::Timestamp,
    InvalidKind::Misrouted,
    InvalidKind::TooLarge,
    InvalidKind::UnknownType,
];

pub struct BadRecord {
    pub key: String,
    pub value: Vec<u8>,
    pub partition: Option<i32>,
}

/// An otherwise valid touchpoint event of tenant `t` at `ts` (epoch ms).
fn base_touch(rng: &mut SmallRng, t: &TenantCtx, ts: i64) -> Map<String, Value> {
    let c = &t.campaigns[rng.random_range(0..t.campaigns.len())];
    let channel = pick_channel(rng);
    let mut tp = Map::new();
    tp.insert("channel".into(), json!(channel));
    tp.insert("interaction_type".into(), json!(interaction_for(rng, channel)));
    if let Some(url) = landing_url(rng, c, channel, false) {
        tp.insert("metadata".into(), json!({"url": url}));
    }
    let mut m = Map::new();
    m.insert("event_id".into(), json!(event_id(rng)));
    m.insert("tenant_id".into(), json!(t.id));
    m.insert("event_type".into(), json!("touchpoint_interaction"));
    m.insert("timestamp".into(), ts_value(rng, ts));
    m.insert("customer_id".into(), json!(customer_id(rng)));
    m.insert("touchpoints".into(), Value::Object(tp));
    m
}

/// A record that validation must reject with `kind`'s reason (and no earlier one).
pub fn invalid(rng: &mut SmallRng, kind: InvalidKind, t: &TenantCtx, ts: i64, partitions: i32) -> BadRecord {
    let mut m = base_touch(rng, t, ts);
    let mut key = t.id.clone();
    let mut partition = None;
    let as_json = |m: Map<String, Value>| serde_json::to_vec(&Value::Object(m)).expect("serializable");
    let value = match kind {
        InvalidKind::Decode => match rng.random_range(0..4) {
            0 => {
                let mut b = as_json(m);
                b.truncate(b.len() / 2); // JSON cut in the middle
                b
            }
            1 => vec![0xc1, 0x00, 0x13, 0x37], // 0xc1 is never used in MessagePack
            2 => {
                let mut b = rmp_serde::to_vec_named(&Value::Object(m)).expect("encodable");
                b.push(0x00); // trailing bytes after the value
                b
            }
            _ => {
                let s = String::from_utf8(as_json(m)).expect("utf-8");
                s.replacen('{', "{\"score\":NaN,", 1).into_bytes()
            }
        },
        InvalidKind::Schema => {
            match rng.random_range(0..5) {
                0 => {
                    m.remove("touchpoints");
                }
                1 => {
                    m.remove("customer_id");
                }
                2 => {
                    m.insert("event_type".into(), json!("conversion_event"));
                    m.insert("conversion_data".into(), json!({"value": "129.00", "currency": "USD"}));
                }
                3 => {
                    m.insert("timestamp".into(), json!(ts as f64 + 0.5));
                }
                _ => {
                    m.remove("event_id");
                }
            }
            if rng.random_bool(0.3) {
                rmp_serde::to_vec_named(&Value::Object(m)).expect("encodable")
            } else {
                as_json(m)
            }
        }
        InvalidKind::Tenant => {
            let bad = *["Acme Corp", "-acme", "", "ACME", "acme.corp"]
                .choose(rng)
                .unwrap_or(&"ACME");
            key = bad.to_string();
            m.insert("tenant_id".into(), json!(bad));
            as_json(m)
        }
        InvalidKind::Timestamp => {
            let bad = *[
                "2026-13-45T25:61:00Z",
                "yesterday",
                "2026-10-05T10:00:00",
                "9999-12-31T23:59:59Z",
                "2026-10-05T23:59:60Z",
            ]
            .choose(rng)
            .unwrap_or(&"yesterday");
            m.insert("timestamp".into(), json!(bad));
            as_json(m)
        }
        InvalidKind::Misrouted => {
            let p = partitions.max(2);
            partition = Some((t.partition + rng.random_range(1..p)) % p);
            encode(rng, &Value::Object(m), 0.5)
        }
        InvalidKind::TooLarge => {
            m.insert("notes".into(), json!("x".repeat(70_000)));
            encode(rng, &Value::Object(m), 0.5)
        }
        InvalidKind::UnknownType => {
            let ty = *["page_view", "journey_end", "CONVERSION_EVENT", "touchpoint"]
                .choose(rng)
                .unwrap_or(&"page_view");
            m.insert("event_type".into(), json!(ty));
            encode(rng, &Value::Object(m), 0.3)
        }
        // Only a failing handler produces `poison`; a generated record cannot.
        InvalidKind::Poison => encode(rng, &Value::Object(m), 0.0),
    };
    BadRecord { key, value, partition }
}

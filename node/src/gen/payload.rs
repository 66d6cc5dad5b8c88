//! Building blocks of the generated dataset: ids, timestamps (RFC 3339 with
//! offsets or epoch ms), landing URLs with `utm_*` / `cm_*` parameters, campaign
//! catalogues, JSON/MessagePack encoding, device signals for probabilistic
//! stitching (households, carrier-grade NAT pools, devices, contexts, some of
//! them ill-typed), and the deliberately invalid records (one builder per
//! rejection reason of events.md except `poison`).
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
        weight: 1.0 / ((idx + 1) as f64).sqrt(),
        campaigns,
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

/// Cities of the generated households: `location` label and centre (degrees).
const CITIES: [(&str, f64, f64); 8] = [
    ("New York, US", 40.7128, -74.0060),
    ("Tarrytown, US", 41.0762, -73.8587),
    ("Berlin, DE", 52.5200, 13.4050),
    ("Toronto, CA", 43.6532, -79.3832),
    ("Austin, US", 30.2672, -97.7431),
    ("Chicago, US", 41.8781, -87.6298),
    ("London, GB", 51.5074, -0.1278),
    ("Munich, DE", 48.1351, 11.5820),
];

/// Browser user agents per device type. Few enough that two members of a
/// family sometimes run the very same one, as in real traffic.
const DESKTOP_UAS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
];
const MOBILE_UAS: [&str; 5] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
];
const TABLET_UAS: [&str; 3] = [
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 16_7_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
];

/// Mobile persons per carrier-grade NAT address, on average: well over the
/// spec's 10 (`probabilistic_max_ip_persons`), so that those addresses score nothing.
pub const CGNAT_PERSONS: f64 = 25.0;
/// Share of a mobile device's events sent over the carrier (a CGNAT address), not home Wi-Fi.
const MOBILE_AWAY: f64 = 0.45;

/// A family: one home address (its router's) near one city.
#[derive(Clone, Debug)]
pub struct Household {
    pub ip: String,
    pub city: usize,
    /// Where the home is (degrees).
    pub at: (f64, f64),
}

/// The addresses of one tenant's persons: households formed in generation
/// order (a person joins the open household, or opens the next one with 1 to 6
/// members), and a small pool of carrier-grade NAT addresses (100.64.0.0/10)
/// sized so that each is used by about [`CGNAT_PERSONS`] persons. O(1) per person.
pub struct Net {
    tenant: usize,
    opened: u64,
    open: Option<Household>,
    /// Members the open household still expects.
    left: usize,
    cgnat: u32,
}

impl Net {
    /// `expected_persons`: about how many persons the tenant will have.
    pub fn new(tenant: usize, expected_persons: f64) -> Net {
        let cgnat = (expected_persons * 0.5 / CGNAT_PERSONS).round().clamp(1.0, 65_000.0) as u32;
        Net { tenant, opened: 0, open: None, left: 0, cgnat }
    }

    /// The household of the next person.
    pub fn household(&mut self, rng: &mut SmallRng) -> Household {
        if self.left > 0 {
            if let Some(h) = &self.open {
                self.left -= 1;
                return h.clone();
            }
        }
        let size = match rng.random_range(0..100) {
            0..=34 => 1,
            35..=64 => 2,
            65..=82 => 3,
            83..=94 => 4,
            95..=98 => 5,
            _ => 6,
        };
        // Distinct per tenant for 16 million households: 10.a.b.c, c in 1..=254.
        let n = self.opened;
        self.opened += 1;
        let ip = format!("10.{}.{}.{}", (n / 65_024) % 256, (n / 254) % 256, n % 254 + 1);
        let city = rng.random_range(0..CITIES.len());
        let (_, lat, lon) = CITIES[city];
        let at = (round5(lat + rng.random_range(-0.12..0.12)), round5(lon + rng.random_range(-0.15..0.15)));
        let h = Household { ip, city, at };
        self.open = Some(h.clone());
        self.left = size - 1;
        h
    }

    /// One of the tenant's carrier-grade NAT addresses.
    pub fn cgnat_ip(&self, rng: &mut SmallRng) -> String {
        let k = rng.random_range(0..self.cgnat);
        format!("100.{}.{}.{}", 64 + self.tenant % 64, k / 254, k % 254 + 1)
    }
}

fn round5(x: f64) -> f64 {
    (x * 100_000.0).round() / 100_000.0
}

/// One device (one `customer_id`) of a person: its type, its browser's user
/// agent (a few have none), and where it sits at home (none when location is off).
#[derive(Clone, Debug)]
pub struct Device {
    pub kind: &'static str,
    pub ua: Option<&'static str>,
    pub at: Option<(f64, f64)>,
}

/// A device of a member of household `home`.
pub fn device(rng: &mut SmallRng, home: &Household) -> Device {
    let (kind, uas): (&'static str, &[&'static str]) = match rng.random_range(0..100) {
        0..=39 => ("desktop", &DESKTOP_UAS),
        40..=84 => ("mobile", &MOBILE_UAS),
        _ => ("tablet", &TABLET_UAS),
    };
    let ua = if rng.random_bool(0.04) { None } else { uas.choose(rng).copied() };
    let at = rng
        .random_bool(0.85)
        .then(|| (round5(home.at.0 + rng.random_range(-0.001..0.001)), round5(home.at.1 + rng.random_range(-0.0013..0.0013))));
    Device { kind, ua, at }
}

/// What one event of a device reveals: the address it came from, its user agent, where it was.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub device_type: &'static str,
    pub location: &'static str,
    pub ip: String,
    pub ua: Option<&'static str>,
    pub geo: Option<(f64, f64)>,
}

/// The signal of an event of `dev`: a mobile device is on the carrier (a CGNAT
/// address of `net`, somewhere in or around the city) part of the time, at
/// home (the household's address, the device's own spot) otherwise.
pub fn signal(rng: &mut SmallRng, net: &Net, home: &Household, dev: &Device) -> Signal {
    let (location, clat, clon) = CITIES[home.city];
    let (ip, geo) = if dev.kind == "mobile" && rng.random_bool(MOBILE_AWAY) {
        let away = dev.at.map(|_| (round5(clat + rng.random_range(-0.25..0.25)), round5(clon + rng.random_range(-0.3..0.3))));
        (net.cgnat_ip(rng), away)
    } else {
        (home.ip.clone(), dev.at)
    };
    Signal { device_type: dev.kind, location, ip, ua: dev.ua, geo }
}

fn context_map(s: &Signal) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("device_type".into(), json!(s.device_type));
    c.insert("location".into(), json!(s.location));
    c.insert("ip_address".into(), json!(s.ip));
    if let Some(ua) = s.ua {
        c.insert("user_agent".into(), json!(ua));
    }
    if let Some((lat, lon)) = s.geo {
        c.insert("geolocation".into(), json!({"lat": lat, "lon": lon}));
    }
    c
}

/// The ways [`put_context`] writes a signal ill-typed (events.md: counted as
/// absent by probabilistic stitching, never a rejection).
pub const BAD_SIGNAL_KINDS: usize = 7;

/// Puts the device context `s` on event `m` under `key` (`context`, or
/// `initial_context` on a journey start). With probability `bad_rate` it is
/// written ill-typed instead, one of [`BAD_SIGNAL_KINDS`] ways: `ip_address` a
/// number; `geolocation` not a `{lat, lon}` of numbers; `geolocation` out of
/// range (or exactly on the bounds, which is valid); `context` not an object
/// next to an `initial_context` object (which is then the signal object);
/// empty strings; a `context` object without an address next to a full
/// `initial_context` (no per-field fallback: no signal). Returns whether the
/// event's signal, as stitching reads it, is exactly `s`.
pub fn put_context(rng: &mut SmallRng, m: &mut Map<String, Value>, key: &str, s: &Signal, bad_rate: f64) -> bool {
    let mut c = context_map(s);
    if !rng.random_bool(bad_rate) {
        m.insert(key.into(), Value::Object(c));
        return true;
    }
    let (lat, lon) = s.geo.unwrap_or((CITIES[0].1, CITIES[0].2));
    match rng.random_range(0..BAD_SIGNAL_KINDS) {
        0 => {
            let n = s.ip.split('.').filter_map(|o| o.parse::<u32>().ok()).fold(0u32, |a, o| a.wrapping_shl(8) | o);
            c.insert("ip_address".into(), json!(n));
        }
        1 => {
            let bad = match rng.random_range(0..4) {
                0 => json!(format!("{lat:.5},{lon:.5}")),
                1 => json!([lat, lon]),
                2 => json!({"lat": format!("{lat}"), "lon": lon}),
                _ => json!({"lat": lat}),
            };
            c.insert("geolocation".into(), bad);
        }
        2 => {
            let over = round5(rng.random_range(0.00001..30.0));
            let bad = if rng.random_bool(0.5) {
                json!({"lat": if lat < 0.0 { -90.0 - over } else { 90.0 + over }, "lon": lon})
            } else {
                json!({"lat": lat, "lon": if lon < 0.0 { -180.0 - over } else { 180.0 + over }})
            };
            c.insert("geolocation".into(), bad);
        }
        3 => {
            let junk = [json!("n/a"), json!(0), json!([]), json!(true), Value::Null];
            m.insert("context".into(), junk.choose(rng).cloned().unwrap_or(Value::Null));
            m.insert("initial_context".into(), Value::Object(c));
            return true;
        }
        4 => {
            let which = rng.random_range(0..3);
            if which != 1 {
                c.insert("ip_address".into(), json!(""));
            }
            if which != 0 {
                c.insert("user_agent".into(), json!(""));
            }
            c.insert("device_type".into(), json!(""));
        }
        5 => {
            let mut partial = Map::new();
            partial.insert("device_type".into(), json!(s.device_type));
            partial.insert("location".into(), json!(s.location));
            m.insert("context".into(), Value::Object(partial));
            m.insert("initial_context".into(), Value::Object(c));
            return false;
        }
        _ => {
            let lat_b = if rng.random_bool(0.5) { 90.0 } else { -90.0 };
            let lon_b = if rng.random_bool(0.5) { 180.0 } else { -180.0 };
            c.insert("geolocation".into(), json!({"lat": lat_b, "lon": lon_b}));
        }
    }
    m.insert(key.into(), Value::Object(c));
    false
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

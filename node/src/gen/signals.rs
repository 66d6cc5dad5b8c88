//! Device signals of the generated dataset, for probabilistic stitching:
//! households (a home address, a city, a few devices), carrier-grade NAT pools
//! shared by many, devices with their user agents, and the `context` /
//! `initial_context` maps built from them — some deliberately ill-typed
//! (attribution.md: an ill-typed signal counts as absent, never a rejection).
//!
//! Everything draws from the caller's RNG, so the dataset stays deterministic.

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Map, Value};

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

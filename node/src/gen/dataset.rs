//! Deterministic synthetic marketing-event dataset (the pure part of `touchline gen`).
//!
//! [`generate`] turns a [`DatasetSpec`] into Kafka records (key = tenant id, value =
//! JSON or MessagePack bytes) in arrival order, which is event-time order except
//! for deliberately late logins and re-emitted duplicates. The same spec (seed
//! included) always yields the same bytes. Content follows events.md: multi-device
//! persons stitched by `identify` or by journey events carrying both ids, all ten
//! channels, landing URLs with `utm_*` / `cm_*` parameters, conversions in several
//! currencies, campaign lifecycle and personalization events, a few events without
//! analytics consent, late consent withdrawals, exact duplicates, and invalid records for every rejection
//! reason but `poison` (built in [`super::payload`]).
//!
//! Device signals for probabilistic stitching (attribution.md): each person
//! belongs to a household (1 to 6 persons sharing one home address in one
//! city); each device has a stable user agent and a spot near home
//! (`geolocation`), and a mobile device is now and then on a carrier-grade NAT
//! address that many persons of its tenant share (more than 10, so that it
//! scores nothing). A person's browser sometimes loses its cookies and comes
//! back minutes to hours later under a new `customer_id`, from the same address
//! and user agent, without logging in. A few contexts are ill-typed, which
//! never rejects an event.
//!
//! Work is O(n log n) in the number of records (one final sort), so millions of
//! records are fine.
//!
//! Validity (`GenRecord::valid`) assumes the consumer's clock is no more than 7
//! days before the generated event times (the default span is in the past).

use super::payload::{self, Campaign, Device, Household, InvalidKind, Net, Signal, TenantCtx, DAY_MS, HOUR_MS, MIN_MS};
use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

/// What to generate. Rates are probabilities in `[0, 1]` (clamped).
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub seed: u64,
    pub tenants: usize,
    pub persons: usize,
    /// Devices (distinct `customer_id`s) per person, inclusive range.
    pub devices_per_person: (usize, usize),
    /// Touchpoints per person (the first one is a `journey_start`), inclusive range.
    pub touches_per_person: (usize, usize),
    /// Probability that a person converts (at least once).
    pub conversion_rate: f64,
    /// Event time of the dataset's start (epoch ms).
    pub start_ms: i64,
    pub span_days: i64,
    /// Probability per valid record of being re-emitted later as an exact byte copy.
    pub duplicate_rate: f64,
    /// Probability per valid record of an additional invalid record next to it.
    pub invalid_rate: f64,
    /// Probability per person that one login arrives after all the person's other events.
    pub late_login_rate: f64,
    /// Probability per record of MessagePack instead of JSON.
    pub msgpack_rate: f64,
    /// Probability per person that one of its browsers reappears under a new
    /// `customer_id` (same address and user agent), never logging in.
    pub cookie_reset_rate: f64,
    /// Probability per device context of being written ill-typed.
    pub bad_signal_rate: f64,
    /// Conversion currencies; the first one carries ~75 % of conversions.
    pub currencies: Vec<String>,
    /// Partition count of the topic (misrouted records need at least 2).
    pub partitions: i32,
    /// Tenant `i` (from 0) gets persons in proportion to `(i + 1)^-tenant_skew`:
    /// 0 = equal tenants, 0.5 (default) = mild skew, 1 = Zipf (24 tenants:
    /// the largest has ~27 % of the persons).
    pub tenant_skew: f64,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec {
            seed: 42,
            tenants: 3,
            persons: 200,
            devices_per_person: (1, 3),
            touches_per_person: (2, 8),
            conversion_rate: 0.35,
            start_ms: 1_790_812_800_000, // 2026-10-01T00:00:00Z
            span_days: 30,
            duplicate_rate: 0.05,
            invalid_rate: 0.03,
            late_login_rate: 0.3,
            msgpack_rate: 0.2,
            cookie_reset_rate: 0.1,
            bad_signal_rate: 0.03,
            currencies: vec!["USD".to_string(), "EUR".to_string()],
            partitions: 12,
            tenant_skew: 0.5,
        }
    }
}

/// One Kafka record to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenRecord {
    /// The tenant id (the Kafka key).
    pub key: String,
    pub value: Vec<u8>,
    /// `Some` only for deliberately misrouted records; otherwise the producer's
    /// murmur2 partitioner places the record by its key.
    pub partition: Option<i32>,
    /// Expected to be accepted by validation (duplicates count as valid).
    pub valid: bool,
}

/// The tenant id of tenant number `index` (`acme`, `globex`, `initech`, ...).
pub fn tenant_id(index: usize) -> String {
    const NAMES: [&str; 12] = [
        "acme",
        "globex",
        "initech",
        "umbrella",
        "hooli",
        "stark",
        "wayne",
        "wonka",
        "tyrell",
        "cyberdyne",
        "soylent",
        "vandelay",
    ];
    match NAMES.get(index) {
        Some(n) => n.to_string(),
        None => format!("tenant-{index:03}"),
    }
}

/// Generates the dataset in arrival order (event-time order except late logins and duplicates).
pub fn generate(spec: &DatasetSpec) -> Vec<GenRecord> {
    let whole = spec.persons.max(1);
    Chunks::new(spec.clone(), whole).flatten().collect()
}

/// The dataset generated `chunk_persons` persons at a time, so a caller can
/// produce and drop each chunk instead of holding millions of records.
///
/// Each chunk is sorted by arrival on its own (duplicates and invalid records
/// stay in the chunk of the record they copy or accompany); the campaign events
/// come with the first chunk and the tenant-wide personalization events with the
/// last. With `chunk_persons >= persons` the one chunk is exactly
/// [`generate`]'s output. Every chunk but the last covers `chunk_persons`
/// persons; at least one chunk is yielded, even for 0 persons.
pub struct Chunks {
    spec: DatasetSpec,
    chunk_persons: usize,
    rng: SmallRng,
    seq: u64,
    tenants: Vec<TenantCtx>,
    cumulative: Vec<f64>,
    /// Each tenant's households and CGNAT pool (households span chunks).
    nets: Vec<Net>,
    next_person: usize,
    started: bool,
}

impl Chunks {
    pub fn new(spec: DatasetSpec, chunk_persons: usize) -> Chunks {
        let mut rng = SmallRng::seed_from_u64(spec.seed);
        let tenants: Vec<TenantCtx> = (0..spec.tenants.max(1)).map(|i| payload::tenant_ctx(&mut rng, i, tenant_id(i), &spec)).collect();
        let cumulative: Vec<f64> = tenants
            .iter()
            .scan(0.0, |acc, t| {
                *acc += t.weight;
                Some(*acc)
            })
            .collect();
        let total = cumulative.last().copied().unwrap_or(1.0);
        let nets = tenants.iter().map(|t| Net::new(t.idx, spec.persons as f64 * t.weight / total)).collect();
        Chunks { spec, chunk_persons: chunk_persons.max(1), rng, seq: 0, tenants, cumulative, nets, next_person: 0, started: false }
    }

    /// Persons generated so far (those of the chunks already yielded).
    pub fn persons_done(&self) -> usize {
        self.next_person
    }
}

impl Iterator for Chunks {
    type Item = Vec<GenRecord>;

    fn next(&mut self) -> Option<Vec<GenRecord>> {
        if self.started && self.next_person >= self.spec.persons {
            return None;
        }
        let n = self.chunk_persons.min(self.spec.persons - self.next_person);
        let rng = std::mem::replace(&mut self.rng, SmallRng::seed_from_u64(0));
        let mut g = Gen { spec: &self.spec, nets: &mut self.nets, rng, out: Vec::with_capacity(n.saturating_mul(12)), seq: self.seq, scratch: Vec::with_capacity(4096) };
        if !self.started {
            for t in &self.tenants {
                g.campaign_events(t);
            }
            self.started = true;
        }
        for _ in 0..n {
            let x = g.rng.random::<f64>() * self.cumulative.last().copied().unwrap_or(1.0);
            let ti = self.cumulative.iter().position(|c| x < *c).unwrap_or(self.tenants.len() - 1);
            g.person(&self.tenants[ti]);
        }
        self.next_person += n;
        if self.next_person >= self.spec.persons {
            for t in &self.tenants {
                g.tenant_personalization(t);
            }
        }
        let out = g.finish(&self.tenants);
        self.rng = g.rng;
        self.seq = g.seq;
        Some(out)
    }
}

/// A deterministic permutation of `records` (arrival order destroyed, bytes kept).
pub fn shuffled(mut records: Vec<GenRecord>, seed: u64) -> Vec<GenRecord> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
    records.shuffle(&mut rng);
    records
}

/// Number of valid records that are byte copies of an earlier valid record.
pub fn count_duplicates(records: &[GenRecord]) -> usize {
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    records
        .iter()
        .filter(|r| r.valid && !seen.insert(r.value.as_slice()))
        .count()
}

struct Pending {
    arrival: i64,
    seq: u64,
    tenant: usize,
    rec: GenRecord,
}

/// How one device of a person gets linked to the person's `user_id`.
#[derive(Clone, Copy, PartialEq)]
enum Link {
    None,
    Identify,
    Carried,
}

struct Gen<'a> {
    spec: &'a DatasetSpec,
    nets: &'a mut [Net],
    rng: SmallRng,
    out: Vec<Pending>,
    seq: u64,
    /// Reused encoding buffer.
    scratch: Vec<u8>,
}

impl Gen<'_> {
    fn p(&self, rate: f64) -> f64 {
        if rate.is_finite() {
            rate.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    fn chance(&mut self, rate: f64) -> bool {
        let p = self.p(rate);
        self.rng.random_bool(p)
    }

    fn range(&mut self, (lo, hi): (usize, usize)) -> usize {
        let hi = hi.max(lo);
        self.rng.random_range(lo..=hi)
    }

    fn end_ms(&self) -> i64 {
        self.spec.start_ms + self.spec.span_days.max(1) * DAY_MS
    }

    fn push(&mut self, t: &TenantCtx, arrival: i64, value: Vec<u8>, partition: Option<i32>, valid: bool) {
        self.seq += 1;
        let rec = GenRecord {
            key: t.id.clone(),
            value,
            partition,
            valid,
        };
        self.out.push(Pending {
            arrival,
            seq: self.seq,
            tenant: t.idx,
            rec,
        });
    }

    /// Encodes and queues a valid event arriving shortly after its event time.
    fn emit(&mut self, t: &TenantCtx, ts: i64, v: &Value) {
        let arrival = ts + self.rng.random_range(0..5_000);
        self.emit_at(t, arrival, v);
    }

    fn emit_at(&mut self, t: &TenantCtx, arrival: i64, v: &Value) {
        let rate = self.p(self.spec.msgpack_rate);
        let bytes = payload::encode_with(&mut self.rng, v, rate, &mut self.scratch);
        self.push(t, arrival, bytes, None, true);
    }

    /// The common header of every event.
    fn header(&mut self, t: &TenantCtx, event_type: &str, ts: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("event_id".into(), Value::String(payload::event_id(&mut self.rng)));
        m.insert("tenant_id".into(), Value::String(t.id.clone()));
        m.insert("event_type".into(), Value::String(event_type.into()));
        m.insert("timestamp".into(), payload::ts_value(&mut self.rng, ts));
        m
    }

    fn campaign_events(&mut self, t: &TenantCtx) {
        let end = self.end_ms();
        for c in &t.campaigns {
            let launch = self.spec.start_ms + self.rng.random_range(0..2 * DAY_MS);
            let mut m = self.header(t, "campaign_launch", launch);
            m.insert("campaign_id".into(), json!(c.id));
            m.insert("campaign_name".into(), json!(c.name));
            m.insert("channel".into(), json!(c.channel));
            m.insert("performance_metrics".into(), self.metrics(0.0));
            let budget = self.rng.random_range(20..200) * 1000;
            m.insert(
                "launch_config".into(),
                json!({"budget": budget, "target_audience": c.audience, "bid_strategy": "target_cpa"}),
            );
            self.emit(t, launch, &Value::Object(m));
            let mut at = launch + 7 * DAY_MS;
            while at < end - DAY_MS {
                let ts = at + self.rng.random_range(0..DAY_MS);
                let mut m = self.header(t, "campaign_optimization", ts);
                m.insert("campaign_id".into(), json!(c.id));
                m.insert("channel".into(), json!(c.channel));
                m.insert("performance_metrics".into(), self.metrics(1.0));
                let trigger = *["low_ctr", "budget_pacing", "high_cpa", "creative_fatigue"]
                    .choose(&mut self.rng)
                    .unwrap();
                m.insert("optimization_trigger".into(), json!(trigger));
                m.insert(
                    "changes_made".into(),
                    json!({"bid_adjustment": -0.1, "paused_variants": ["B"]}),
                );
                self.emit(t, ts, &Value::Object(m));
                at += 7 * DAY_MS;
            }
            if self.rng.random_bool(0.5) {
                let ts = end - self.rng.random_range(HOUR_MS..DAY_MS);
                let mut m = self.header(t, "campaign_termination", ts);
                m.insert("campaign_id".into(), json!(c.id));
                m.insert("campaign_name".into(), json!(c.name));
                m.insert("performance_metrics".into(), self.metrics(0.5));
                self.emit(t, ts, &Value::Object(m));
            }
        }
    }

    /// Platform-reported deltas; `scale` 0 gives a launch's near-zero numbers.
    fn metrics(&mut self, scale: f64) -> Value {
        let impressions = (self.rng.random_range(1_000..200_000) as f64 * scale).round();
        let clicks = (impressions * self.rng.random_range(0.005..0.04)).round();
        let conversions = (clicks * self.rng.random_range(0.01..0.1)).round();
        let cost = (impressions * self.rng.random_range(2.0..25.0) / 10.0).round() / 100.0;
        let revenue = (conversions * self.rng.random_range(50.0..400.0) * 100.0).round() / 100.0;
        json!({"impressions": impressions as i64, "clicks": clicks as i64, "conversions": conversions as i64,
               "cost": cost, "revenue": revenue})
    }

    fn consent(&mut self, m: &mut Map<String, Value>) {
        let x = self.rng.random::<f64>();
        if x < 0.02 {
            m.insert("consent".into(), json!({"analytics": false}));
        } else if x < 0.2 {
            m.insert("consent".into(), json!({"analytics": true}));
        }
    }

    fn journey_header(&mut self, t: &TenantCtx, ty: &str, ts: i64, cid: &str, uid: Option<&str>) -> Map<String, Value> {
        let mut m = self.header(t, ty, ts);
        m.insert("customer_id".into(), json!(cid));
        if let Some(u) = uid {
            m.insert("user_id".into(), json!(u));
        }
        m
    }

    /// Puts a context of device `dev` on `m` under `key` with probability `p`;
    /// returns its signal when the event carries exactly that one.
    fn context(&mut self, m: &mut Map<String, Value>, key: &str, p: f64, t: &TenantCtx, home: &Household, dev: &Device) -> Option<Signal> {
        if !self.rng.random_bool(p) {
            return None;
        }
        let s = payload::signal(&mut self.rng, &self.nets[t.idx], home, dev);
        let bad = self.p(self.spec.bad_signal_rate);
        payload::put_context(&mut self.rng, m, key, &s, bad).then_some(s)
    }

    /// A `conversion_event` of `cid` at `ts` (consent and context left to the caller).
    fn conversion(&mut self, t: &TenantCtx, ts: i64, cid: &str, uid: Option<&str>, journey: &str) -> Map<String, Value> {
        let mut m = self.journey_header(t, "conversion_event", ts, cid, uid);
        let currency = payload::pick_currency(&mut self.rng, &self.spec.currencies);
        let value = if self.rng.random_bool(0.2) {
            json!(self.rng.random_range(1..50) * 10)
        } else {
            json!((self.rng.random_range(20.0..2_000.0_f64) * 100.0).round() / 100.0)
        };
        let ctype = *["purchase", "signup", "rx_fill", "lead", "demo_request"]
            .choose(&mut self.rng)
            .unwrap();
        m.insert(
            "conversion_data".into(),
            json!({"value": value, "currency": currency, "conversion_type": ctype}),
        );
        m.insert("journey_id".into(), json!(journey));
        m
    }

    fn person(&mut self, t: &TenantCtx) {
        let spec = self.spec;
        let ndev = self.range(spec.devices_per_person).max(1);
        let cids: Vec<String> = (0..ndev).map(|_| payload::customer_id(&mut self.rng)).collect();
        let uid = payload::user_id(&mut self.rng);
        let home = self.nets[t.idx].household(&mut self.rng);
        let devices: Vec<Device> = (0..ndev).map(|_| payload::device(&mut self.rng, &home)).collect();
        // Events whose signal is exactly their device's (and with consent): where a cookie reset can happen.
        let mut anchors: Vec<(i64, Signal)> = Vec::new();
        let end = self.end_ms();
        let span = (end - spec.start_ms).max(2);
        let pstart = spec.start_ms + self.rng.random_range(0..(span * 4 / 5).max(1));
        let horizon = (pstart + 21 * DAY_MS).min(end - 1).max(pstart + 1);
        let ntouch = self.range(spec.touches_per_person).max(1);
        let mut times: Vec<i64> = (1..ntouch).map(|_| self.rng.random_range(pstart..horizon)).collect();
        times.push(pstart);
        times.sort_unstable();
        let devs: Vec<usize> = (0..ntouch)
            .map(|i| if i == 0 { 0 } else { self.rng.random_range(0..ndev) })
            .collect();
        let home_camp = self.rng.random_range(0..t.campaigns.len());

        // How each device gets linked; one login may arrive late.
        let mut links: Vec<Link> = (0..ndev)
            .map(|_| match self.rng.random::<f64>() {
                x if x < 0.1 => Link::None,
                x if x < 0.55 => Link::Identify,
                _ => Link::Carried,
            })
            .collect();
        let late_dev = if self.chance(spec.late_login_rate) {
            let d = if ndev > 1 { self.rng.random_range(1..ndev) } else { 0 };
            links[d] = Link::Identify;
            Some(d)
        } else {
            None
        };
        let first_of = |d: usize| times.iter().zip(&devs).find(|(_, dd)| **dd == d).map(|(t, _)| *t);
        let mut carried_done = vec![false; ndev];
        let mut last_arrival = pstart;
        let mut stage_i = 0;
        let stages = ["awareness", "consideration", "intent", "evaluation", "conversion"];

        for i in 0..ntouch {
            let (ts, d) = (times[i], devs[i]);
            let carry = links[d] == Link::Carried && (!carried_done[d] || self.rng.random_bool(0.3));
            let uid_opt = if carry { Some(uid.as_str()) } else { None };
            let camp = if self.rng.random_bool(0.7) {
                home_camp
            } else {
                self.rng.random_range(0..t.campaigns.len())
            };
            let ty = if i == 0 {
                "journey_start"
            } else {
                "touchpoint_interaction"
            };
            let mut m = self.journey_header(t, ty, ts, &cids[d], uid_opt);
            let c = &t.campaigns[camp];
            self.touch_fields(&mut m, c, ts, i == 0);
            if i > 0 || self.rng.random_bool(0.5) {
                self.consent(&mut m);
            }
            let consented = !matches!(m.get("consent"), Some(c) if c["analytics"] != json!(true));
            if carry && consented {
                carried_done[d] = true;
            }
            let (key, p) = if i == 0 { ("initial_context", 0.7) } else { ("context", 0.75) };
            if let Some(s) = self.context(&mut m, key, p, t, &home, &devices[d]) {
                if consented {
                    anchors.push((ts, s));
                }
            }
            self.emit(t, ts, &Value::Object(m));
            last_arrival = last_arrival.max(ts + 5_000);
            if stage_i + 1 < stages.len() && self.rng.random_bool(0.25) {
                stage_i += 1;
                let sts = ts + self.rng.random_range(MIN_MS..HOUR_MS);
                let mut m = self.journey_header(t, "journey_stage_change", sts, &cids[d], None);
                m.insert("current_stage".into(), json!(stages[stage_i]));
                m.insert("previous_stage".into(), json!(stages[stage_i - 1]));
                m.insert("journey_id".into(), json!(t.campaigns[camp].journey));
                if let Some(s) = self.context(&mut m, "context", 0.5, t, &home, &devices[d]) {
                    anchors.push((sts, s));
                }
                self.emit(t, sts, &Value::Object(m));
                last_arrival = last_arrival.max(sts + 5_000);
            }
        }
        // Conversions, after a touch in the second half of the journey.
        if self.chance(spec.conversion_rate) {
            let nconv = if self.rng.random_bool(0.2) { 2 } else { 1 };
            for _ in 0..nconv {
                let k = self.rng.random_range(ntouch / 2..ntouch);
                let ts = times[k] + self.rng.random_range(MIN_MS..3 * DAY_MS);
                let d = self.rng.random_range(0..ndev);
                let uid_opt = if links[d] == Link::Carried {
                    Some(uid.as_str())
                } else {
                    None
                };
                // Now and then an anonymous (e.g. offline) conversion: an empty path, `(direct)`, no device context.
                let anon = self.rng.random_bool(0.05).then(|| payload::customer_id(&mut self.rng));
                let (cid, uid_opt) = match &anon {
                    Some(a) => (a.as_str(), None),
                    None => (cids[d].as_str(), uid_opt),
                };
                let mut m = self.conversion(t, ts, cid, uid_opt, &t.campaigns[home_camp].journey);
                self.consent(&mut m);
                if uid_opt.is_some() && !m.contains_key("consent") {
                    carried_done[d] = true;
                }
                let consented = !matches!(m.get("consent"), Some(c) if c["analytics"] == json!(false));
                if anon.is_none() {
                    if let Some(s) = self.context(&mut m, "context", 0.75, t, &home, &devices[d]) {
                        if consented {
                            anchors.push((ts, s));
                        }
                    }
                }
                self.emit(t, ts, &Value::Object(m));
                last_arrival = last_arrival.max(ts + 5_000);
            }
        }
        // A cookie reset: the browser of one of those events comes back minutes
        // to hours later under a new cookie, same address and user agent, and
        // never logs in; a conversion there is re-attributed once it is linked.
        if self.chance(spec.cookie_reset_rate) && !anchors.is_empty() {
            let (at, s) = anchors.swap_remove(self.rng.random_range(0..anchors.len()));
            let cid = payload::cookie_id(&mut self.rng);
            let mut ts = at + if self.rng.random_bool(0.5) {
                self.rng.random_range(MIN_MS..=30 * MIN_MS)
            } else {
                self.rng.random_range(30 * MIN_MS..12 * HOUR_MS)
            };
            let n = self.rng.random_range(1..=3);
            for k in 0..n {
                let mut m = if k + 1 == n && self.rng.random_bool(0.3) {
                    self.conversion(t, ts, &cid, None, &t.campaigns[home_camp].journey)
                } else {
                    let mut m = self.journey_header(t, "touchpoint_interaction", ts, &cid, None);
                    self.touch_fields(&mut m, &t.campaigns[home_camp], ts, false);
                    m
                };
                self.consent(&mut m);
                let bad = self.p(spec.bad_signal_rate);
                payload::put_context(&mut self.rng, &mut m, "context", &s, bad);
                self.emit(t, ts, &Value::Object(m));
                last_arrival = last_arrival.max(ts + 5_000);
                ts += self.rng.random_range(MIN_MS..20 * MIN_MS);
            }
        }
        // Logins: `identify` for identify-linked devices and for carried links that never happened.
        for d in 0..ndev {
            let needs = links[d] == Link::Identify || (links[d] == Link::Carried && !carried_done[d]);
            if !needs {
                continue;
            }
            let first = first_of(d).unwrap_or(pstart);
            let late = late_dev == Some(d);
            let ts = if late {
                first - self.rng.random_range(MIN_MS..2 * HOUR_MS)
            } else {
                first + self.rng.random_range(0..6 * HOUR_MS)
            };
            let mut m = self.journey_header(t, "identify", ts, &cids[d], Some(&uid));
            self.context(&mut m, "context", 0.9, t, &home, &devices[d]);
            if late {
                let arrival = last_arrival + self.rng.random_range(MIN_MS..12 * HOUR_MS);
                self.emit_at(t, arrival, &Value::Object(m));
            } else {
                self.emit(t, ts, &Value::Object(m));
            }
        }
        if self.rng.random_bool(0.05) {
            let ts = times[ntouch - 1] + self.rng.random_range(MIN_MS..DAY_MS);
            let h = self.header(t, "personalization_trigger", ts);
            let v = payload::personalization(&mut self.rng, h, Some(&cids[0]));
            self.emit(t, ts, &v);
        }
        // Now and then a device withdraws analytics consent mid-journey (arriving
        // late, so it retroactively excludes events), sometimes granting it again.
        if self.rng.random_bool(0.04) {
            let d = self.rng.random_range(0..ndev);
            let mut ts = times[self.rng.random_range(0..ntouch)] + self.rng.random_range(0..HOUR_MS);
            for analytics in [false, true] {
                let mut m = self.header(t, "consent_update", ts);
                m.insert("customer_id".into(), json!(cids[d]));
                m.insert("consent".into(), json!({"analytics": analytics}));
                let arrival = last_arrival + self.rng.random_range(MIN_MS..6 * HOUR_MS);
                self.emit_at(t, arrival, &Value::Object(m));
                if self.rng.random_bool(0.5) {
                    break;
                }
                ts += self.rng.random_range(HOUR_MS..2 * DAY_MS);
            }
        }
    }

    /// `touchpoints` (+ `entry_point`, `journey_id` on a journey start).
    fn touch_fields(&mut self, m: &mut Map<String, Value>, c: &Campaign, ts: i64, start: bool) {
        let channel = if start && self.rng.random_bool(0.5) {
            c.channel
        } else {
            payload::pick_channel(&mut self.rng)
        };
        let interaction = if start {
            "visit"
        } else {
            payload::interaction_for(&mut self.rng, channel)
        };
        let mut tp = Map::new();
        tp.insert("channel".into(), json!(channel));
        tp.insert("interaction_type".into(), json!(interaction));
        if self.rng.random_bool(0.3) {
            let skew = ts + self.rng.random_range(-2_000..2_000);
            tp.insert("timestamp".into(), payload::ts_value(&mut self.rng, skew));
        }
        let cm_only = start && self.rng.random_bool(0.5);
        if let Some(url) = payload::landing_url(&mut self.rng, c, channel, cm_only) {
            let mut meta = Map::new();
            meta.insert("url".into(), Value::String(url));
            if self.rng.random_bool(0.3) {
                meta.insert("page_title".into(), json!(format!("{} | {}", c.brand, c.name)));
            }
            tp.insert("metadata".into(), Value::Object(meta));
        }
        m.insert("touchpoints".into(), Value::Object(tp));
        if self.rng.random_bool(0.4) {
            m.insert("journey_id".into(), json!(c.journey));
        }
        if start {
            let (source, medium) = payload::source_medium(channel);
            let mut ep = Map::new();
            ep.insert("source".into(), json!(source));
            ep.insert("medium".into(), json!(medium));
            ep.insert("campaign".into(), json!(c.utm_name));
            if self.rng.random_bool(0.6) {
                ep.insert(
                    "content".into(),
                    json!(*payload::CONTENTS.choose(&mut self.rng).unwrap()),
                );
            }
            m.insert("entry_point".into(), Value::Object(ep));
            m.insert("current_stage".into(), json!("awareness"));
        }
    }

    fn tenant_personalization(&mut self, t: &TenantCtx) {
        let n = 2 + self.spec.persons / 200;
        for i in 0..n {
            let ts = self.spec.start_ms + self.rng.random_range(0..(self.end_ms() - self.spec.start_ms).max(1));
            let ty = if i % 2 == 0 {
                "content_optimization"
            } else {
                "segment_update"
            };
            let h = self.header(t, ty, ts);
            let v = payload::personalization(&mut self.rng, h, None);
            self.emit(t, ts, &v);
        }
    }

    /// Duplicates, invalid records, and the final arrival-order sort (of this chunk).
    fn finish(&mut self, tenants: &[TenantCtx]) -> Vec<GenRecord> {
        let n = self.out.len();
        let dup = self.p(self.spec.duplicate_rate);
        for i in 0..n {
            if self.rng.random_bool(dup) {
                let arrival = self.out[i].arrival + self.rng.random_range(1_000..2 * DAY_MS);
                let rec = self.out[i].rec.clone();
                let t = &tenants[self.out[i].tenant];
                self.push(t, arrival, rec.value, rec.partition, true);
            }
        }
        let kinds: Vec<InvalidKind> = payload::INVALID_KINDS
            .into_iter()
            .filter(|k| *k != InvalidKind::Misrouted || self.spec.partitions > 1)
            .collect();
        let mut k = self.rng.random_range(0..kinds.len());
        let inv = self.p(self.spec.invalid_rate);
        for i in 0..n {
            if self.rng.random_bool(inv) {
                let arrival = self.out[i].arrival + self.rng.random_range(0..5_000);
                let t = &tenants[self.out[i].tenant];
                let bad = payload::invalid(&mut self.rng, kinds[k % kinds.len()], t, arrival, self.spec.partitions);
                k += 1;
                self.seq += 1;
                let rec = GenRecord {
                    key: bad.key,
                    value: bad.value,
                    partition: bad.partition,
                    valid: false,
                };
                self.out.push(Pending {
                    arrival,
                    seq: self.seq,
                    tenant: t.idx,
                    rec,
                });
            }
        }
        let mut out = std::mem::take(&mut self.out);
        out.sort_unstable_by_key(|p| (p.arrival, p.seq));
        out.into_iter().map(|p| p.rec).collect()
    }
}

//! Raw Kafka record bytes → a validated [`Event`], or the [`Rejection`] that
//! dead-letters it (events.md, "Decoding", the field tables and the check order
//! of "Rejection reasons").
//!
//! JSON (first byte `{`, `serde_json`) and MessagePack (anything else, `rmpv`)
//! are both turned into one borrowed value tree ([`super::value`]), which is validated once,
//! so the same map gives the same event whatever its encoding.
//!
//! Readings of the contract made here:
//! - A key repeated in one map: the last occurrence wins (as JSON.parse and
//!   `serde_json::Value` do), in both encodings.
//! - MessagePack map entries whose key is not a string are ignored like any
//!   unknown field; binary and ext values are opaque (ill-typed wherever a typed
//!   field is expected). An invalid UTF-8 string or a NaN/±Infinity float
//!   anywhere is `decode`.
//! - `serde_json` (without `arbitrary_precision`) reads an integer literal beyond
//!   the u64/i64 range as a float, so such a `timestamp` is `schema`.
//! - An empty `journey_id` is stored as absent.
//! - `location` given as an object or a number is stored as canonical JSON text
//!   (keys sorted, a repeated key's last value, null members left out).
//! - `context` / `initial_context` never reject: the signal object is `context`
//!   when that is a map, else `initial_context`, and an ill-typed field in it
//!   (or an ill-typed `geolocation`, or one out of bounds) is absent.
//! - Personalization segments: `segments` (array of strings), then `segment`
//!   (string) and `segment_id` (string or integer), empty strings and repeats
//!   dropped; null array elements are skipped.

use super::event::*;
use super::value::{json_text, parse, V};
use super::{routing, timestamp, tracking};
use std::borrow::Cow;
use std::collections::HashSet;

/// Records larger than this are `too_large`.
pub const MAX_EVENT_BYTES: usize = 65_536;
/// `ts > now + MAX_FUTURE_SECS` is `timestamp`.
pub const MAX_FUTURE_SECS: i64 = 7 * 86_400;

const TENANT_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

/// What validation needs besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidateCtx {
    /// The node's clock (future check).
    pub now: Ts,
    /// The partition the record came from; `None` skips the `misrouted` check.
    pub partition: Option<i32>,
    /// The topic's partition count.
    pub partitions: i32,
}

fn reject(reason: Reason, detail: impl Into<String>) -> Rejection {
    Rejection::new(reason, detail)
}

fn schema(detail: impl Into<String>) -> Rejection {
    reject(Reason::Schema, detail)
}

/// Decodes and validates one record (see the module doc and events.md).
pub fn decode(bytes: &[u8], ctx: &ValidateCtx) -> Result<Event, Rejection> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(reject(Reason::TooLarge, format!("{} bytes > {MAX_EVENT_BYTES}", bytes.len())));
    }
    let root = parse(bytes).map_err(|e| reject(Reason::Decode, e))?;
    let V::Map(entries) = root else {
        return Err(schema("event: expected a map"));
    };
    let mut o = Obj { entries, prefix: "" };

    let tenant_id = o.req_str("tenant_id")?;
    if !valid_tenant(&tenant_id) {
        return Err(reject(Reason::Tenant, format!("tenant_id: does not match {TENANT_PATTERN}")));
    }
    let event_id = o.req_str_len("event_id", 128)?;
    let event_type = o.req_str("event_type")?;
    let kind = Kind::parse(&event_type)
        .ok_or_else(|| reject(Reason::UnknownType, format!("event_type: unknown {:?}", truncated(&event_type))))?;

    let ts = match o.take("timestamp") {
        None => return Err(schema("timestamp: missing")),
        Some(V::Str(s)) => timestamp::parse_rfc3339(&s)
            .ok_or_else(|| reject(Reason::Timestamp, format!("timestamp: not RFC 3339: {:?}", truncated(&s))))?,
        Some(V::Int(ms)) => i64::try_from(ms)
            .ok()
            .and_then(timestamp::from_epoch_millis)
            .ok_or_else(|| reject(Reason::Timestamp, format!("timestamp: epoch-ms {ms} out of range")))?,
        Some(_) => return Err(schema("timestamp: expected an RFC 3339 string or integer epoch-ms")),
    };
    if ts > ctx.now.plus_secs(MAX_FUTURE_SECS) {
        return Err(reject(Reason::Timestamp, format!("timestamp: {ts} is more than 7 days after {}", ctx.now)));
    }
    if let Some(p) = ctx.partition {
        let want = routing::partition_for(&tenant_id, ctx.partitions);
        if want != p {
            let mut r = reject(Reason::Misrouted, format!("tenant {tenant_id} belongs to partition {want}, read from {p}"));
            r.reroute_to = Some(want);
            return Err(r);
        }
    }

    let body = match kind {
        Kind::Journey(k) => Body::Journey(journey(&mut o, k)?),
        Kind::Campaign(k) => Body::Campaign(campaign(&mut o, k)?),
        Kind::Personalization(k) => Body::Personalization(personalization(&mut o, k)?),
        Kind::ConsentUpdate => {
            let customer_id = o.req_str_len("customer_id", 256)?;
            let analytics = o.req_obj("consent", "consent.")?.req_bool("analytics")?;
            Body::ConsentUpdate { customer_id, analytics }
        }
        Kind::Erasure => Body::Erasure { customer_id: o.req_str_len("customer_id", 256)? },
        Kind::CostImport => Body::CostImport(cost_import(&mut o)?),
        Kind::Registry => Body::Registry(Box::new(registry_command(&mut o)?)),
    };
    Ok(Event { event_id, tenant_id: tenant_id.into_owned(), ts, body })
}

/// At most 64 bytes of `s` (on a char boundary), for rejection details.
fn truncated(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `^[a-z0-9][a-z0-9_-]{0,63}$`
pub fn valid_tenant(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && matches!(b[0], b'a'..=b'z' | b'0'..=b'9')
        && b[1..].iter().all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

// ---------------------------------------------------------------------------
// Field access

/// A map being validated; fields are moved out as they are read. `prefix` is
/// the path of the map (e.g. `"conversion_data."`) for rejection details.
struct Obj<'a> {
    entries: Vec<(Cow<'a, str>, V<'a>)>,
    prefix: &'static str,
}

impl<'a> Obj<'a> {
    /// The (last) value of `key`; `None` when absent or null.
    fn take(&mut self, key: &str) -> Option<V<'a>> {
        let i = self.entries.iter().rposition(|(k, _)| k == key)?;
        match std::mem::replace(&mut self.entries[i].1, V::Null) {
            V::Null => None,
            v => Some(v),
        }
    }

    fn err(&self, key: &str, what: &str) -> Rejection {
        schema(format!("{}{key}: {what}", self.prefix))
    }

    fn opt_str(&mut self, key: &str) -> Result<Option<Cow<'a, str>>, Rejection> {
        match self.take(key) {
            None => Ok(None),
            Some(V::Str(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(key, "expected a string")),
        }
    }

    fn opt_string(&mut self, key: &str) -> Result<Option<String>, Rejection> {
        Ok(self.opt_str(key)?.map(Cow::into_owned))
    }

    fn req_str(&mut self, key: &str) -> Result<Cow<'a, str>, Rejection> {
        self.opt_str(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    /// An optional string of 1..=`max` bytes.
    fn opt_str_len(&mut self, key: &str, max: usize) -> Result<Option<String>, Rejection> {
        match self.opt_str(key)? {
            Some(s) if s.is_empty() || s.len() > max => Err(self.err(key, &format!("expected 1..{max} bytes"))),
            s => Ok(s.map(Cow::into_owned)),
        }
    }

    fn req_str_len(&mut self, key: &str, max: usize) -> Result<String, Rejection> {
        self.opt_str_len(key, max)?.ok_or_else(|| self.err(key, "missing"))
    }

    /// An optional finite number (integer or float).
    fn opt_num(&mut self, key: &str) -> Result<Option<f64>, Rejection> {
        match self.take(key) {
            None => Ok(None),
            Some(V::Int(n)) => Ok(Some(n as f64)),
            Some(V::Float(f)) => Ok(Some(f)),
            Some(_) => Err(self.err(key, "expected a number")),
        }
    }

    fn num_or_zero(&mut self, key: &str) -> Result<f64, Rejection> {
        Ok(self.opt_num(key)?.unwrap_or(0.0))
    }

    fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, Rejection> {
        match self.take(key) {
            None => Ok(None),
            Some(V::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.err(key, "expected a bool")),
        }
    }

    fn req_bool(&mut self, key: &str) -> Result<bool, Rejection> {
        self.opt_bool(key)?.ok_or_else(|| self.err(key, "missing"))
    }

    /// An optional nested object; `prefix` is its path followed by `.`.
    fn opt_obj(&mut self, key: &str, prefix: &'static str) -> Result<Option<Obj<'a>>, Rejection> {
        match self.take(key) {
            None => Ok(None),
            Some(V::Map(entries)) => Ok(Some(Obj { entries, prefix })),
            Some(_) => Err(self.err(key, "expected an object")),
        }
    }

    fn req_obj(&mut self, key: &str, prefix: &'static str) -> Result<Obj<'a>, Rejection> {
        self.opt_obj(key, prefix)?.ok_or_else(|| self.err(key, "missing"))
    }

    /// An optional array (empty when absent), null elements dropped.
    fn opt_array(&mut self, key: &str, what: &str) -> Result<Vec<V<'a>>, Rejection> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(V::Array(items)) => Ok(items.into_iter().filter(|v| !matches!(v, V::Null)).collect()),
            Some(_) => Err(self.err(key, what)),
        }
    }

    /// A string, or an object / number kept as its JSON text.
    fn opt_text(&mut self, key: &str) -> Result<Option<String>, Rejection> {
        match self.take(key) {
            None => Ok(None),
            Some(V::Str(s)) => Ok(Some(s.into_owned())),
            Some(v @ (V::Map(_) | V::Int(_) | V::Float(_))) => Ok(Some(json_text(&v))),
            Some(_) => Err(self.err(key, "expected a string, object or number")),
        }
    }
}

// ---------------------------------------------------------------------------
// Type-specific fields

#[derive(Clone, Copy)]
enum Kind {
    Journey(JourneyKind),
    Campaign(CampaignKind),
    Personalization(PersonalizationKind),
    ConsentUpdate,
    Erasure,
    CostImport,
    Registry,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "journey_start" => Kind::Journey(JourneyKind::JourneyStart),
            "touchpoint_interaction" => Kind::Journey(JourneyKind::TouchpointInteraction),
            "conversion_event" => Kind::Journey(JourneyKind::ConversionEvent),
            "journey_stage_change" => Kind::Journey(JourneyKind::JourneyStageChange),
            "identify" => Kind::Journey(JourneyKind::Identify),
            "campaign_launch" => Kind::Campaign(CampaignKind::Launch),
            "campaign_optimization" => Kind::Campaign(CampaignKind::Optimization),
            "campaign_termination" => Kind::Campaign(CampaignKind::Termination),
            "personalization_trigger" => Kind::Personalization(PersonalizationKind::PersonalizationTrigger),
            "content_optimization" => Kind::Personalization(PersonalizationKind::ContentOptimization),
            "segment_update" => Kind::Personalization(PersonalizationKind::SegmentUpdate),
            "consent_update" => Kind::ConsentUpdate,
            "erasure_request" => Kind::Erasure,
            "cost_import" => Kind::CostImport,
            "registry_command" => Kind::Registry,
            _ => return None,
        })
    }
}

fn journey(o: &mut Obj<'_>, kind: JourneyKind) -> Result<JourneyEvent, Rejection> {
    let customer_id = o.req_str_len("customer_id", 256)?;
    let user_id = match kind {
        JourneyKind::Identify => Some(o.req_str_len("user_id", 256)?),
        _ => o.opt_str_len("user_id", 256)?,
    };
    let journey_id = o.opt_string("journey_id")?.filter(|j| !j.is_empty());
    let current_stage = o.opt_string("current_stage")?;
    // The signal object: `context` when it is a map, else `initial_context`;
    // anything ill-typed in there is absent, never a rejection (events.md).
    let context = match (o.take("context"), o.take("initial_context")) {
        (Some(V::Map(c)), _) | (_, Some(V::Map(c))) => Some(parse_context(c)),
        _ => None,
    };
    let analytics_consent = match o.opt_obj("consent", "consent.")? {
        Some(mut c) => c.opt_bool("analytics")?.unwrap_or(true),
        None => true,
    };

    let touch = match kind {
        JourneyKind::JourneyStart | JourneyKind::TouchpointInteraction => {
            let mut t = o.req_obj("touchpoints", "touchpoints.")?;
            let channel = t.req_str("channel")?;
            let channel = Channel::parse(&channel).ok_or_else(|| {
                t.err("channel", "expected one of email, social, display, search, video, native, direct, referral, field_sales, other")
            })?;
            let interaction_type = t.req_str("interaction_type")?.into_owned();
            let url = match t.opt_obj("metadata", "touchpoints.metadata.")? {
                Some(mut m) => m.opt_str("url")?,
                None => None,
            };
            let entry_point = match kind {
                JourneyKind::JourneyStart => o.opt_obj("entry_point", "entry_point.")?.map(parse_entry_point).transpose()?,
                _ => None,
            };
            let dims = tracking::dims_from(url.as_deref(), entry_point.as_ref(), journey_id.as_deref());
            Some(TouchInfo { channel, interaction_type, dims })
        }
        _ => None,
    };

    let conversion = match kind {
        JourneyKind::ConversionEvent => {
            let mut c = o.req_obj("conversion_data", "conversion_data.")?;
            let value = c.opt_num("value")?.ok_or_else(|| c.err("value", "missing"))?;
            if value < 0.0 {
                return Err(c.err("value", "expected a finite number >= 0"));
            }
            let currency = c.req_str("currency")?;
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(c.err("currency", "expected [A-Z]{3}"));
            }
            let conversion_type = c.opt_string("conversion_type")?;
            Some(ConversionInfo { value, currency: currency.into_owned(), conversion_type })
        }
        _ => None,
    };

    Ok(JourneyEvent {
        kind,
        customer_id,
        user_id,
        journey_id,
        current_stage,
        touch,
        conversion,
        analytics_consent,
        context,
    })
}

fn parse_context(entries: Vec<(Cow<'_, str>, V<'_>)>) -> Context {
    let mut c = Obj { entries, prefix: "context." };
    let mut string = |key: &str| match c.take(key) {
        Some(V::Str(s)) => Some(s.into_owned()),
        _ => None,
    };
    let device_type = string("device_type");
    let referral_source = string("referral_source");
    let ip_address = string("ip_address").filter(|s| !s.is_empty());
    let user_agent = string("user_agent").filter(|s| !s.is_empty());
    let location = c.opt_text("location").ok().flatten();
    let geolocation = match c.take("geolocation") {
        Some(V::Map(g)) => geo(Obj { entries: g, prefix: "context.geolocation." }),
        _ => None,
    };
    Context { device_type, location, referral_source, ip_address, user_agent, geolocation }
}

/// `{lat, lon}`: numbers within |lat| <= 90, |lon| <= 180 (bounds included).
fn geo(mut g: Obj<'_>) -> Option<Geo> {
    let lat = g.opt_num("lat").ok().flatten()?;
    let lon = g.opt_num("lon").ok().flatten()?;
    (lat.abs() <= 90.0 && lon.abs() <= 180.0).then_some(Geo { lat, lon })
}

fn parse_entry_point(mut e: Obj<'_>) -> Result<tracking::EntryPoint, Rejection> {
    Ok(tracking::EntryPoint {
        source: e.req_str("source")?.into_owned(),
        medium: e.req_str("medium")?.into_owned(),
        campaign: e.opt_string("campaign")?,
        content: e.opt_string("content")?,
        term: e.opt_string("term")?,
    })
}

fn campaign(o: &mut Obj<'_>, kind: CampaignKind) -> Result<CampaignEvent, Rejection> {
    let campaign_id = o.req_str("campaign_id")?;
    if campaign_id.is_empty() {
        return Err(o.err("campaign_id", "must not be empty"));
    }
    let campaign_name = o.opt_string("campaign_name")?;
    let channel = o.opt_string("channel")?;
    let metrics = match o.opt_obj("performance_metrics", "performance_metrics.")? {
        Some(mut m) => CampaignMetrics {
            impressions: m.num_or_zero("impressions")?,
            clicks: m.num_or_zero("clicks")?,
            conversions: m.num_or_zero("conversions")?,
            cost: m.num_or_zero("cost")?,
            revenue: m.num_or_zero("revenue")?,
        },
        None => CampaignMetrics::default(),
    };
    Ok(CampaignEvent { kind, campaign_id: campaign_id.into_owned(), campaign_name, channel, metrics })
}

/// `cost_import` (docs/collector.md): one daily total of a campaign.
fn cost_import(o: &mut Obj<'_>) -> Result<super::costs::CostImport, Rejection> {
    let campaign_id = o.req_str_len("campaign_id", 256)?;
    let date = o.req_str("date")?.into_owned();
    if !super::costs::valid_date(&date) {
        return Err(o.err("date", "expected a YYYY-MM-DD calendar date"));
    }
    fn non_negative(o: &mut Obj<'_>, key: &str) -> Result<Option<f64>, Rejection> {
        match o.opt_num(key)? {
            Some(x) if x < 0.0 => Err(o.err(key, "expected a number >= 0")),
            x => Ok(x),
        }
    }
    let cost = non_negative(o, "cost")?.ok_or_else(|| o.err("cost", "missing"))?;
    let impressions = non_negative(o, "impressions")?;
    let clicks = non_negative(o, "clicks")?;
    let currency = o.req_str("currency")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(o.err("currency", "expected [A-Z]{3}"));
    }
    let source = o.opt_str_len("source", 256)?;
    let medium = o.opt_str_len("medium", 256)?;
    Ok(super::costs::CostImport { campaign_id, date, cost, currency: currency.into_owned(), source, medium, impressions, clicks })
}

/// `registry_command` (docs/registry.md): one registry write, its `command`
/// map read as JSON (both encodings give the same text).
fn registry_command(o: &mut Obj<'_>) -> Result<super::governance::registry::RegistryCommand, Rejection> {
    let command = match o.take("command") {
        Some(v @ V::Map(_)) => json_text(&v),
        None => return Err(o.err("command", "missing")),
        Some(_) => return Err(o.err("command", "expected a map")),
    };
    serde_json::from_str(&command).map_err(|e| o.err("command", &e.to_string()))
}

fn personalization(o: &mut Obj<'_>, kind: PersonalizationKind) -> Result<PersonalizationEvent, Rejection> {
    let customer_id = o.opt_str_len("customer_id", 256)?;

    let mut given: Vec<String> = Vec::new();
    const STRINGS: &str = "expected an array of strings";
    for item in o.opt_array("segments", STRINGS)? {
        let V::Str(s) = item else { return Err(o.err("segments", STRINGS)) };
        given.push(s.into_owned());
    }
    if let Some(s) = o.opt_string("segment")? {
        given.push(s);
    }
    match o.take("segment_id") {
        None => {}
        Some(V::Str(s)) => given.push(s.into_owned()),
        Some(V::Int(n)) => given.push(n.to_string()),
        Some(_) => return Err(o.err("segment_id", "expected a string or integer")),
    }
    let segments = unique_nonempty(given);

    const OBJECTS: &str = "expected an array of objects";
    let mut variants = Vec::new();
    for item in o.opt_array("content_variations", OBJECTS)? {
        let V::Map(entries) = item else { return Err(o.err("content_variations", OBJECTS)) };
        let mut c = Obj { entries, prefix: "content_variations[]." };
        let variant_id = c.req_str("variant_id")?;
        if variant_id.is_empty() {
            return Err(c.err("variant_id", "must not be empty"));
        }
        let mut v = VariantMetrics { variant_id: variant_id.into_owned(), ..VariantMetrics::default() };
        if let Some(mut m) = c.opt_obj("performance_metrics", "content_variations[].performance_metrics.")? {
            v.impressions = m.num_or_zero("impressions")?;
            v.clicks = m.num_or_zero("clicks")?;
            v.conversions = m.num_or_zero("conversions")?;
            v.revenue = m.num_or_zero("revenue")?;
        }
        variants.push(v);
    }

    Ok(PersonalizationEvent { kind, customer_id, segments, variants })
}

/// `items` without empty strings and repeats, first occurrences in order.
/// Linear: a `Vec::contains` per item made a 64 KiB record of ~18k distinct
/// segments cost ~0.3 s to decode (found while writing the fuzz targets, FUZZING.md).
fn unique_nonempty(items: Vec<String>) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
    items.into_iter().filter(|s| !s.is_empty() && seen.insert(s.clone())).collect()
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;

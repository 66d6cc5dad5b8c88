//! Maps one Segment Tracking API message (`track`, `identify`, `page`,
//! `screen`, `alias`) onto one events.md event's JSON bytes (docs/collector.md
//! has the tables). Pure: the caller gives the tenant, the receive time and
//! the tenant's conversion mapping; an invalid message names its field.
//!
//! The message is read field by field from the body's raw JSON (`raw`) and
//! the event is serialized from borrowed parts, so a message costs no JSON
//! tree on either side. `reference` keeps the tree-based mapping this
//! replaced; a property test holds the two to byte-identical events and the
//! same errors.

use super::channel::{self, Signals};
use super::raw::{self, Raw};
use super::ConversionSpec;
use serde::Serialize;
use std::borrow::Cow;
use touchline_actors::domain::timestamp::parse_rfc3339;
use touchline_actors::domain::tracking::tracking_params;
use touchline_actors::domain::Ts;

/// A message that cannot be mapped: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> MapError {
    MapError { field: field.to_string(), message: message.into() }
}

/// What the mapping needs besides the message.
pub struct MapContext<'a> {
    pub tenant: &'a str,
    pub received_at: Ts,
    /// The tenant's conversion spec of a `track` event name (`None`: not a conversion).
    pub conversion: &'a dyn Fn(&str) -> Option<ConversionSpec>,
    /// The tenant's own channel rules, tried before the defaults.
    pub channel_rules: &'a [channel::Rule],
}

/// One mapped event: its events.md type and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub event_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The fields of a message the mapping reads (`Message` indexes them).
pub const MESSAGE_FIELDS: [&str; 11] = ["type", "messageId", "userId", "anonymousId", "previousId", "event", "timestamp", "sentAt", "originalTimestamp", "context", "properties"];
/// A message's fields, in the order of [`MESSAGE_FIELDS`].
pub type Message<'a> = [Raw<'a>; 11];
const TYPE: usize = 0;
/// The index of `context` in a [`Message`].
pub const CONTEXT: usize = 9;

/// The `context` keys the mapping reads.
pub const CONTEXT_FIELDS: [&str; 5] = ["ip", "userAgent", "location", "page", "campaign"];
/// A context's fields, in the order of [`CONTEXT_FIELDS`].
pub type Context<'a> = [Raw<'a>; 5];

/// The message's `type` (`None` unless a string).
pub fn message_type<'a>(msg: &Message<'a>) -> Option<Cow<'a, str>> {
    raw::string(msg[TYPE])
}

/// The events.md event of `msg`; `call` is the message type (the route, or the
/// item's `type` in a batch). `shared` is a batch's top-level `context`: the
/// message's own context keys win over it.
pub fn map_message(call: &str, msg: &Message<'_>, shared: Option<&Context<'_>>, cx: &MapContext<'_>) -> Result<Mapped, MapError> {
    let [_, message_id, user_id, anonymous_id, previous_id, event, timestamp, sent_at, original, own_context, properties] = *msg;
    let event_id = str_field(message_id, "messageId")?.ok_or_else(|| err("messageId", "is required (the event id re-sends are deduplicated by)"))?;
    if event_id.len() > 128 {
        return Err(err("messageId", "must be at most 128 bytes"));
    }
    let user_id = id_field(user_id, "userId")?;
    let timestamp = event_time([timestamp, sent_at, original], cx.received_at)?;
    let context = effective_context(own_context, shared)?;
    let mut out = Event { event_id, tenant_id: cx.tenant, timestamp: timestamp.to_string(), context: context.as_ref().and_then(signals), ..Event::default() };
    match call {
        "identify" | "alias" => {
            let (customer, user) = if call == "alias" {
                let prev = id_field(previous_id, "previousId")?.ok_or_else(|| err("previousId", "is required for alias"))?;
                (prev, user_id.ok_or_else(|| err("userId", "is required for alias"))?)
            } else {
                let user = user_id.ok_or_else(|| err("userId", "is required for identify"))?;
                (id_field(anonymous_id, "anonymousId")?.unwrap_or_else(|| user.clone()), user)
            };
            out.event_type = "identify";
            out.customer_id = customer;
            out.user_id = Some(user);
        }
        "track" | "page" | "screen" => {
            out.customer_id = match (id_field(anonymous_id, "anonymousId")?, &user_id) {
                (Some(a), _) => a,
                (None, Some(u)) => u.clone(),
                (None, None) => return Err(err("anonymousId", "userId or anonymousId is required")),
            };
            out.user_id = user_id;
            let props = match properties {
                Some(p) if raw::is_null(p) => None,
                None => None,
                Some(p) if p.get().starts_with('{') => Some(p),
                Some(_) => return Err(err("properties", "must be an object")),
            };
            let name = if call == "track" { Some(str_field(event, "event")?.ok_or_else(|| err("event", "is required for track"))?) } else { None };
            if let Some(spec) = name.as_deref().and_then(|n| (cx.conversion)(n)) {
                out.event_type = "conversion_event";
                out.conversion_data = Some(conversion_data(name.unwrap_or_default(), props, &spec)?);
            } else {
                out.event_type = "touchpoint_interaction";
                out.touchpoints = Some(touchpoint(name.unwrap_or(Cow::Borrowed("view")), context.as_ref(), props, cx.channel_rules));
            }
        }
        other => return Err(err("type", format!("{other:?} is not one of track, identify, page, screen, alias"))),
    }
    let bytes = serde_json::to_vec(&out).map_err(|e| err("", e.to_string()))?;
    Ok(Mapped { event_type: out.event_type, bytes })
}

/// The message's context with a batch's shared one under it. As a merged
/// object would: with a shared context, an own context that is not an object
/// counts as empty; without one, it is an error.
fn effective_context<'a>(own: Raw<'a>, shared: Option<&Context<'a>>) -> Result<Option<Context<'a>>, MapError> {
    let own = own.filter(|c| !raw::is_null(c));
    let own_fields = match own {
        None => None,
        Some(c) => match raw::object(Some(c), &CONTEXT_FIELDS) {
            Some(f) => Some(f),
            None if shared.is_some() => None,
            None => return Err(err("context", "must be an object")),
        },
    };
    Ok(match (own_fields, shared) {
        (None, None) => None,
        (Some(f), None) => Some(f),
        (None, Some(s)) => Some(*s),
        (Some(f), Some(s)) => Some(std::array::from_fn(|i| f[i].or(s[i]))),
    })
}

/// The events.md event, keys in the sorted order a `serde_json::Map` gives.
#[derive(Serialize, Default)]
struct Event<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<SignalsOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversion_data: Option<Conversion<'a>>,
    customer_id: Cow<'a, str>,
    event_id: Cow<'a, str>,
    event_type: &'static str,
    tenant_id: &'a str,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    touchpoints: Option<Touch<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct SignalsOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    geolocation: Option<Geo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Geo {
    lat: f64,
    lon: f64,
}

#[derive(Serialize)]
struct Conversion<'a> {
    conversion_type: Cow<'a, str>,
    currency: String,
    value: f64,
}

#[derive(Serialize)]
struct Touch<'a> {
    channel: &'static str,
    interaction_type: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
}

#[derive(Serialize)]
struct Metadata {
    url: String,
}

/// A string field: absent, `null` and `""` are `None`; another type is an error.
fn str_field<'a>(v: Raw<'a>, key: &str) -> Result<Option<Cow<'a, str>>, MapError> {
    match v {
        None => Ok(None),
        Some(r) if raw::is_null(r) => Ok(None),
        Some(_) => match raw::string(v) {
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => Ok(Some(s)),
            None => Err(err(key, "must be a string")),
        },
    }
}

/// An id: a string (or a number, as Segment allows) of 1..256 bytes.
fn id_field<'a>(v: Raw<'a>, key: &str) -> Result<Option<Cow<'a, str>>, MapError> {
    let v = match raw::number_text(v) {
        Some(n) => Some(Cow::Owned(n)),
        None => str_field(v, key)?,
    };
    if v.as_ref().is_some_and(|v| v.len() > 256) {
        return Err(err(key, "must be at most 256 bytes"));
    }
    Ok(v)
}

fn time_field(v: Raw<'_>, key: &str) -> Result<Option<Ts>, MapError> {
    match str_field(v, key)? {
        None => Ok(None),
        Some(s) => parse_rfc3339(&s).map(Some).ok_or_else(|| err(key, format!("{s:?} is not an RFC 3339 date-time"))),
    }
}

fn event_time([timestamp, sent_at, original]: [Raw<'_>; 3], received_at: Ts) -> Result<Ts, MapError> {
    corrected_time(time_field(timestamp, "timestamp")?, time_field(sent_at, "sentAt")?, time_field(original, "originalTimestamp")?, received_at)
}

/// `timestamp`, else `receivedAt − (sentAt − originalTimestamp)`, else `receivedAt`.
pub fn corrected_time(timestamp: Option<Ts>, sent_at: Option<Ts>, original: Option<Ts>, received_at: Ts) -> Result<Ts, MapError> {
    let ts = match (timestamp, sent_at, original) {
        (Some(t), _, _) => t,
        (None, Some(sent), Some(orig)) => Ts::from_nanos(received_at.as_nanos() - (sent.as_nanos() - orig.as_nanos())),
        _ => received_at,
    };
    if ts.as_nanos() > Ts::now().as_nanos() + 7 * 86_400 * 1_000_000_000 {
        return Err(err("timestamp", "is more than 7 days in the future"));
    }
    Ok(ts)
}

/// `context.ip`/`userAgent`/`location` → events.md `context` (probabilistic stitching).
fn signals<'a>(c: &Context<'a>) -> Option<SignalsOut<'a>> {
    let [ip, user_agent, location, _, _] = *c;
    let geolocation = raw::object(location, &["latitude", "longitude"]).and_then(|[lat, lon]| Some(Geo { lat: raw::number(lat)?, lon: raw::number(lon)? }));
    let out = SignalsOut { geolocation, ip_address: raw::string(ip), user_agent: raw::string(user_agent) };
    (out.geolocation.is_some() || out.ip_address.is_some() || out.user_agent.is_some()).then_some(out)
}

/// The touchpoint of a page, screen or non-conversion track.
fn touchpoint<'a>(interaction: Cow<'a, str>, context: Option<&Context<'_>>, props: Raw<'_>, rules: &[channel::Rule]) -> Touch<'a> {
    let page = context.and_then(|c| raw::object(c[3], &["url", "referrer"]));
    let props = raw::object(props, &["url", "referrer"]);
    let page_str = |i: usize| raw::string(page.and_then(|p| p[i])).or_else(|| raw::string(props.and_then(|p| p[i]))).filter(|s| !s.is_empty());
    let campaign = context.and_then(|c| raw::object(c[4], &CAMPAIGN_KEYS.map(|(k, _)| k)));
    let url = with_campaign(page_str(0).as_deref().unwrap_or(""), campaign.map(|c| c.map(raw::string)).as_ref());
    let referrer = page_str(1);
    let referrer = referrer.as_deref().filter(|r| channel::host(r).is_none() || channel::host(r) != channel::host(&url));
    let params = tracking_params(&url);
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let channel = channel::channel_with(rules, &Signals { source: param("utm_source"), medium: param("utm_medium"), referrer });
    Touch { channel, interaction_type: interaction, metadata: (!url.is_empty()).then_some(Metadata { url }) }
}

const CAMPAIGN_KEYS: [(&str, &str); 5] = [("name", "utm_campaign"), ("source", "utm_source"), ("medium", "utm_medium"), ("term", "utm_term"), ("content", "utm_content")];

/// `url` with each `context.campaign` value the URL lacks appended as its
/// `utm_*` (`campaign`: name, source, medium, term, content).
pub fn with_campaign(url: &str, campaign: Option<&[Option<Cow<'_, str>>; 5]>) -> String {
    let Some(campaign) = campaign else { return url.to_string() };
    let (base, fragment) = url.split_once('#').map_or((url, None), |(b, f)| (b, Some(f)));
    let mut out = base.to_string();
    for ((_, param), value) in CAMPAIGN_KEYS.iter().zip(campaign) {
        let Some(v) = value.as_deref().filter(|v| !v.is_empty()) else { continue };
        if query_param(&out, param).is_some() {
            continue;
        }
        if !out.contains('?') {
            out.push('?');
        } else if !out.ends_with('?') && !out.ends_with('&') {
            out.push('&');
        }
        out.push_str(param);
        out.push('=');
        out.push_str(&encode(v));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// The first non-empty value of the tracking parameter `name` (`utm_*`,
/// `cm_*`) in the URL's query, decoded as events.md reads it.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    tracking_params(url).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `conversion_data` of a conversion `track`: value and currency from the
/// configured properties, else `revenue`/`value` and `currency`, else 0 / USD.
fn conversion_data<'a>(name: Cow<'a, str>, props: Raw<'_>, spec: &ConversionSpec) -> Result<Conversion<'a>, MapError> {
    let value_key = spec.value.as_deref().unwrap_or("revenue");
    let currency_key = spec.currency.as_deref().unwrap_or("currency");
    let [configured, revenue, value_prop, currency] = raw::object(props, &[value_key, "revenue", "value", currency_key]).unwrap_or_default();
    let present = |v: Raw<'_>| v.is_some_and(|r| !raw::is_null(r));
    let candidates = spec.value.as_deref().map(|k| (k, configured)).into_iter().chain([("revenue", revenue), ("value", value_prop)]);
    let mut value = 0.0;
    if let Some((k, v)) = candidates.into_iter().find(|(_, v)| present(*v)) {
        value = raw::number(v).filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| err(&format!("properties.{k}"), "must be a finite number ≥ 0"))?;
    }
    let currency = match currency.filter(|r| !raw::is_null(r)) {
        None => "USD".to_string(),
        Some(_) => match raw::string(currency) {
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => c.to_ascii_uppercase(),
            _ => return Err(err(&format!("properties.{currency_key}"), "must be a 3-letter currency code")),
        },
    };
    Ok(Conversion { conversion_type: name, currency, value })
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;

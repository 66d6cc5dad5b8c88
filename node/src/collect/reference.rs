//! The collector's mapping over `serde_json::Value` trees, as it was before the
//! mapping read raw fields (`mapping`, `request`): kept as the oracle of the
//! property test that the two give byte-identical events and the same errors
//! for any message, and as the baseline of the collector bench
//! (`benches/benches/collect.rs`). Not used by the node.

use super::channel::{self, Signals};
use super::mapping::{query_param, MapContext, MapError};
use super::request::RequestError;
use super::{ConversionSpec, MAX_EVENT_BYTES};
use serde_json::{json, Map, Value};
use touchline_actors::domain::timestamp::parse_rfc3339;
use touchline_actors::domain::Ts;

fn err(field: &str, message: impl Into<String>) -> MapError {
    MapError { field: field.to_string(), message: message.into() }
}

/// Every message of a request body mapped (all or nothing), as the node did
/// with `serde_json::Value`: `call` is the route (`batch` or a message type).
pub fn map_request(call: &str, raw: &[u8], cx: &MapContext<'_>) -> Result<Vec<Value>, RequestError> {
    let doc: Value = serde_json::from_slice(raw).map_err(|e| RequestError::Invalid(format!("body: not valid JSON: {e}")))?;
    let Value::Object(mut doc) = doc else { return Err(RequestError::Invalid("body: must be a JSON object".into())) };
    let mut events = Vec::new();
    if call == "batch" {
        let Some(Value::Array(items)) = doc.remove("batch") else { return Err(RequestError::Invalid("field `batch`: is required and must be an array".into())) };
        let shared = match doc.remove("context") {
            Some(Value::Object(c)) => Some(c),
            _ => None,
        };
        for (i, item) in items.into_iter().enumerate() {
            if serde_json::to_vec(&item).map_or(0, |v| v.len()) > MAX_EVENT_BYTES {
                return Err(RequestError::TooLarge(format!("batch[{i}]: over {MAX_EVENT_BYTES} bytes")));
            }
            let item = with_context(item, shared.as_ref());
            let kind = item.get("type").and_then(Value::as_str).ok_or_else(|| RequestError::Invalid(format!("batch[{i}].type: is required (track, identify, page, screen or alias)")))?;
            let ev = map_message(kind, &item, cx).map_err(|e| RequestError::Invalid(format!("batch[{i}].{}: {}", e.field, e.message)))?;
            events.push(ev);
        }
    } else {
        let ev = map_message(call, &Value::Object(doc), cx).map_err(|e| RequestError::Invalid(format!("field `{}`: {}", e.field, e.message)))?;
        events.push(ev);
    }
    Ok(events)
}

/// `item` with the batch's top-level `context` merged in (the item's own keys win).
fn with_context(item: Value, shared: Option<&Map<String, Value>>) -> Value {
    match (shared, item) {
        (Some(shared), Value::Object(mut obj)) => {
            let mut ctx = match obj.remove("context") {
                Some(Value::Object(own)) => own,
                _ => Map::new(),
            };
            for (k, v) in shared {
                ctx.entry(k.clone()).or_insert_with(|| v.clone());
            }
            obj.insert("context".into(), Value::Object(ctx));
            Value::Object(obj)
        }
        (_, item) => item,
    }
}

/// The events.md event of `msg`; `call` is the message type (the route, or the
/// item's `type` in a batch).
pub fn map_message(call: &str, msg: &Value, cx: &MapContext<'_>) -> Result<Value, MapError> {
    let m = msg.as_object().ok_or_else(|| err("", "must be a JSON object"))?;
    let event_id = str_field(m, "messageId")?.ok_or_else(|| err("messageId", "is required (the event id re-sends are deduplicated by)"))?;
    if event_id.len() > 128 {
        return Err(err("messageId", "must be at most 128 bytes"));
    }
    let user_id = id_field(m, "userId")?;
    let timestamp = event_time(m, cx.received_at)?;
    let mut out = Map::new();
    out.insert("event_id".into(), json!(event_id));
    out.insert("tenant_id".into(), json!(cx.tenant));
    out.insert("timestamp".into(), json!(timestamp.to_string()));
    let context = m.get("context").filter(|c| !c.is_null());
    if context.is_some_and(|c| !c.is_object()) {
        return Err(err("context", "must be an object"));
    }
    let context = context.and_then(Value::as_object);
    if let Some(c) = context.and_then(signals) {
        out.insert("context".into(), Value::Object(c));
    }
    match call {
        "identify" | "alias" => {
            let (customer, user) = if call == "alias" {
                let prev = id_field(m, "previousId")?.ok_or_else(|| err("previousId", "is required for alias"))?;
                (prev, user_id.ok_or_else(|| err("userId", "is required for alias"))?)
            } else {
                let user = user_id.ok_or_else(|| err("userId", "is required for identify"))?;
                (id_field(m, "anonymousId")?.unwrap_or_else(|| user.clone()), user)
            };
            out.insert("event_type".into(), json!("identify"));
            out.insert("customer_id".into(), json!(customer));
            out.insert("user_id".into(), json!(user));
        }
        "track" | "page" | "screen" => {
            let customer = match (id_field(m, "anonymousId")?, &user_id) {
                (Some(a), _) => a,
                (None, Some(u)) => u.clone(),
                (None, None) => return Err(err("anonymousId", "userId or anonymousId is required")),
            };
            out.insert("customer_id".into(), json!(customer));
            if let Some(u) = user_id {
                out.insert("user_id".into(), json!(u));
            }
            let props = match m.get("properties") {
                None | Some(Value::Null) => None,
                Some(Value::Object(p)) => Some(p),
                Some(_) => return Err(err("properties", "must be an object")),
            };
            let name = if call == "track" { Some(str_field(m, "event")?.ok_or_else(|| err("event", "is required for track"))?) } else { None };
            if let Some(spec) = name.as_deref().and_then(|n| (cx.conversion)(n)) {
                out.insert("event_type".into(), json!("conversion_event"));
                out.insert("conversion_data".into(), conversion_data(name.as_deref().unwrap_or(""), props, &spec)?);
            } else {
                out.insert("event_type".into(), json!("touchpoint_interaction"));
                out.insert("touchpoints".into(), touchpoint(name.as_deref().unwrap_or("view"), context, props, cx.channel_rules));
            }
        }
        other => return Err(err("type", format!("{other:?} is not one of track, identify, page, screen, alias"))),
    }
    Ok(Value::Object(out))
}

fn str_field(m: &Map<String, Value>, key: &str) -> Result<Option<String>, MapError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(key, "must be a string")),
    }
}

/// An id: a string (or a number, as Segment allows) of 1..256 bytes.
fn id_field(m: &Map<String, Value>, key: &str) -> Result<Option<String>, MapError> {
    let v = match m.get(key) {
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => str_field(m, key)?,
    };
    if v.as_ref().is_some_and(|v| v.len() > 256) {
        return Err(err(key, "must be at most 256 bytes"));
    }
    Ok(v)
}

fn time_field(m: &Map<String, Value>, key: &str) -> Result<Option<Ts>, MapError> {
    match str_field(m, key)? {
        None => Ok(None),
        Some(s) => parse_rfc3339(&s).map(Some).ok_or_else(|| err(key, format!("{s:?} is not an RFC 3339 date-time"))),
    }
}

fn event_time(m: &Map<String, Value>, received_at: Ts) -> Result<Ts, MapError> {
    super::mapping::corrected_time(time_field(m, "timestamp")?, time_field(m, "sentAt")?, time_field(m, "originalTimestamp")?, received_at)
}

/// `context.ip`/`userAgent`/`location` → events.md `context` (probabilistic stitching).
fn signals(c: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(ip) = c.get("ip").and_then(Value::as_str) {
        out.insert("ip_address".into(), json!(ip));
    }
    if let Some(ua) = c.get("userAgent").and_then(Value::as_str) {
        out.insert("user_agent".into(), json!(ua));
    }
    let loc = c.get("location");
    let coord = |k: &str| loc.and_then(|l| l.get(k)).and_then(Value::as_f64);
    if let (Some(lat), Some(lon)) = (coord("latitude"), coord("longitude")) {
        out.insert("geolocation".into(), json!({"lat": lat, "lon": lon}));
    }
    (!out.is_empty()).then_some(out)
}

/// The touchpoint of a page, screen or non-conversion track.
fn touchpoint(interaction: &str, context: Option<&Map<String, Value>>, props: Option<&Map<String, Value>>, rules: &[channel::Rule]) -> Value {
    let page = context.and_then(|c| c.get("page")).and_then(Value::as_object);
    let page_str = |k: &str| page.and_then(|p| p.get(k)).and_then(Value::as_str).or_else(|| props.and_then(|p| p.get(k)).and_then(Value::as_str)).filter(|s| !s.is_empty());
    let campaign = context.and_then(|c| c.get("campaign")).and_then(Value::as_object);
    let url = with_campaign(page_str("url").unwrap_or(""), campaign);
    let referrer = page_str("referrer").filter(|r| channel::host(r).is_none() || channel::host(r) != channel::host(&url));
    let source = query_param(&url, "utm_source");
    let medium = query_param(&url, "utm_medium");
    let ch = channel::channel_with(rules, &Signals { source: source.as_deref(), medium: medium.as_deref(), referrer });
    let mut tp = json!({"channel": ch, "interaction_type": interaction});
    if !url.is_empty() {
        tp["metadata"] = json!({"url": url});
    }
    tp
}

/// `url` with the campaign's values (shared with `mapping`: this part did not change).
fn with_campaign(url: &str, campaign: Option<&Map<String, Value>>) -> String {
    let value = |k: &str| campaign.and_then(|c| c.get(k)).and_then(Value::as_str).map(std::borrow::Cow::Borrowed);
    let values = ["name", "source", "medium", "term", "content"].map(value);
    super::mapping::with_campaign(url, campaign.map(|_| &values))
}

/// `conversion_data` of a conversion `track`: value and currency from the
/// configured properties, else `revenue`/`value` and `currency`, else 0 / USD.
fn conversion_data(name: &str, props: Option<&Map<String, Value>>, spec: &ConversionSpec) -> Result<Value, MapError> {
    let get = |k: &str| props.and_then(|p| p.get(k)).filter(|v| !v.is_null());
    let value_keys: Vec<&str> = spec.value.as_deref().into_iter().chain(["revenue", "value"]).collect();
    let mut value = 0.0;
    if let Some((k, v)) = value_keys.iter().find_map(|k| get(k).map(|v| (*k, v))) {
        value = v.as_f64().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| err(&format!("properties.{k}"), "must be a finite number ≥ 0"))?;
    }
    let currency_key = spec.currency.as_deref().unwrap_or("currency");
    let currency = match get(currency_key) {
        None => "USD".to_string(),
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => c.to_ascii_uppercase(),
        Some(_) => return Err(err(&format!("properties.{currency_key}"), "must be a 3-letter currency code")),
    };
    Ok(json!({"value": value, "currency": currency, "conversion_type": name}))
}


//! `POST /v1/collect/{track,identify,page,screen,alias,batch}`: Segment's HTTP
//! Tracking API on the node's listener, and `POST /v1/collect/costs` (cost
//! import: CSV or JSON daily totals). A write key (HTTP Basic user, or
//! `writeKey` in a JSON body) picks the tenant; every message or row is
//! validated and mapped first (a batch or a file is all-or-nothing), then all
//! are produced to the events topic and the answer is 200 `{"success": true}`
//! only once Kafka acknowledged every one of them.

use super::error::{ApiError, ErrorCode};
use super::{json_response, AppState};
use crate::collect::mapping::{MapContext, Mapped};
use crate::collect::request::{Request, RequestError};
use crate::collect::{self, MAX_BATCH_BYTES, MAX_EVENT_BYTES};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};
use touchline_actors::domain::Ts;

/// The answer of an accepted message or batch.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Success {
    /// Always true: every event is acknowledged by Kafka.
    pub success: bool,
}

/// The answer of an accepted cost import.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CostsImported {
    pub success: bool,
    /// Rows imported.
    pub rows: usize,
    /// RFC 3339: the import's time (a re-imported day supersedes older imports).
    pub imported_at: String,
}

/// `POST /v1/collect/{call}` (`call`: track, identify, page, screen, alias, batch or costs).
pub async fn route(state: Arc<AppState>, parts: Parts, body: Bytes, call: &'static str) -> Result<Response<Full<Bytes>>, ApiError> {
    metrics::counter!(collect::REQUESTS, "route" => call).increment(1);
    let result = if call == "costs" { import_costs(&state, &parts, &body).await } else { collect(&state, &parts, &body, call).await };
    if let Err((reason, _)) = &result {
        metrics::counter!(collect::REJECTED, "reason" => *reason).increment(1);
    }
    result.map_err(|(_, e)| e)
}

type Rejection = (&'static str, ApiError);

/// Web pages post from their own origin (a write key is public, as Segment's
/// is): every collector answer, errors included, lets any origin read it.
pub fn allow_any_origin(resp: &mut Response<Full<Bytes>>) {
    resp.headers_mut().insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, hyper::header::HeaderValue::from_static("*"));
}

/// The CORS preflight of a collector call: POST with the headers the calls
/// use (a JSON body, Basic auth, gzip), cached by the browser for a day.
pub fn preflight() -> Response<Full<Bytes>> {
    use hyper::header::{HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_MAX_AGE};
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type, Content-Encoding"));
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    resp
}

fn invalid(message: String) -> Rejection {
    ("invalid", ApiError::new(ErrorCode::BadRequest, message))
}

/// The request body, gunzipped when `Content-Encoding: gzip`, at most `limit` bytes.
fn decoded_body(parts: &Parts, body: &Bytes, limit: usize) -> Result<Bytes, Rejection> {
    let gzip = parts.headers.get(hyper::header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let raw = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).take(limit as u64 + 1).read_to_end(&mut out).map_err(|e| invalid(format!("body: not valid gzip: {e}")))?;
        Bytes::from(out)
    } else {
        body.clone()
    };
    if raw.len() > limit {
        return Err(("too_large", ApiError::new(ErrorCode::TooLarge, format!("body over {limit} bytes"))));
    }
    Ok(raw)
}

async fn collect(state: &AppState, parts: &Parts, body: &Bytes, call: &str) -> Result<Response<Full<Bytes>>, Rejection> {
    let limit = if call == "batch" { MAX_BATCH_BYTES } else { MAX_EVENT_BYTES };
    let raw = decoded_body(parts, body, limit)?;
    let request = Request::parse(&raw).map_err(rejection)?;
    let tenant = authenticate(state, parts, request.write_key().as_deref())?;

    // Validate and map everything before producing anything (the mapping
    // context is not `Send`, so it ends before the await).
    let events = {
        let conversion = |event: &str| state.collect.conversion(&tenant, event);
        let cx = MapContext { tenant: &tenant, received_at: Ts::now(), conversion: &conversion, channel_rules: state.collect.channel_rules(&tenant) };
        request.map(call, &cx).map_err(rejection)?
    };
    produce(state, &tenant, &events).await?;
    Ok(json_response(StatusCode::OK, &Success { success: true }))
}

fn rejection(e: RequestError) -> Rejection {
    match e {
        RequestError::Invalid(m) => invalid(m),
        RequestError::TooLarge(m) => ("too_large", ApiError::new(ErrorCode::TooLarge, m)),
    }
}

/// `POST /v1/collect/costs`: CSV (`Content-Type: text/csv`, or a body not
/// starting with `[`/`{`) or JSON (an array of rows, or `{"rows": [...],
/// "writeKey"?}`); every row checked before any is produced.
async fn import_costs(state: &AppState, parts: &Parts, body: &Bytes) -> Result<Response<Full<Bytes>>, Rejection> {
    use crate::collect::costs::{self, ImportError};
    let raw = decoded_body(parts, body, state.limits.cost_import_max_bytes)?;
    let max_rows = state.limits.cost_import_max_rows;
    let content_type = parts.headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let first = raw.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let is_json = content_type.contains("json") || (!content_type.contains("csv") && matches!(first, Some(b'[' | b'{')));
    let (doc, parsed) = if is_json {
        let doc: Value = serde_json::from_slice(&raw).map_err(|e| invalid(format!("body: not valid JSON: {e}")))?;
        let rows = match &doc {
            Value::Array(rows) => rows.as_slice(),
            Value::Object(o) => o.get("rows").and_then(Value::as_array).map(Vec::as_slice).ok_or_else(|| invalid("field `rows`: is required and must be an array".into()))?,
            _ => return Err(invalid("body: must be an array of rows or an object with `rows`".into())),
        };
        let parsed = costs::parse_json(rows, max_rows);
        (doc.as_object().cloned().unwrap_or_default(), parsed)
    } else {
        (Map::new(), costs::parse_csv(&raw, max_rows))
    };
    // Authentication before the rows' verdict, so an unauthenticated caller learns nothing of the file.
    let tenant = authenticate(state, parts, doc.get("writeKey").and_then(Value::as_str))?;
    let rows = parsed.map_err(|e| match e {
        ImportError::TooManyRows(_) => ("too_large", ApiError::new(ErrorCode::TooLarge, e.to_string())),
        ImportError::Invalid { .. } => invalid(e.to_string()),
    })?;
    let imported_at = Ts::now();
    let events: Vec<Mapped> = rows.iter().map(|r| Mapped { event_type: "cost_import", bytes: serde_json::to_vec(&costs::event(&tenant, imported_at, r)).unwrap_or_default() }).collect();
    produce(state, &tenant, &events).await?;
    Ok(json_response(StatusCode::OK, &CostsImported { success: true, rows: rows.len(), imported_at: imported_at.to_string() }))
}

/// Produces `events` to the tenant's partition and waits for every ack.
async fn produce(state: &AppState, tenant: &str, events: &[Mapped]) -> Result<(), Rejection> {
    let producer = state.events.as_ref().ok_or_else(|| ("produce", ApiError::new(ErrorCode::Unavailable, "no event producer on this node")))?;
    let timeout = Duration::from_millis(state.limits.request_timeout_ms);
    let started = Instant::now();
    let sends = events.iter().map(|e| producer.send(tenant, &e.bytes, timeout));
    let results = futures::future::join_all(sends).await;
    metrics::histogram!(collect::PRODUCE_DURATION).record(started.elapsed().as_secs_f64());
    if let Some(e) = results.into_iter().find_map(Result::err) {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        use touchline_cluster::ClusterError;
        let code = match e {
            ClusterError::Kafka(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => ErrorCode::Overloaded,
            _ => ErrorCode::Unavailable,
        };
        return Err(("produce", ApiError::new(code, format!("Kafka did not acknowledge the events (re-sending is safe: messageIds dedup, a re-imported day supersedes): {e}"))));
    }
    // One counter update per event type present, not one per event.
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    for e in events {
        match counts.iter_mut().find(|(t, _)| *t == e.event_type) {
            Some((_, n)) => *n += 1,
            None => counts.push((e.event_type, 1)),
        }
    }
    for (kind, n) in counts {
        metrics::counter!(collect::EVENTS, "type" => kind).increment(n);
    }
    Ok(())
}

/// The tenant of the request's write key: HTTP Basic (key as user, empty
/// password) first, else `writeKey` in the body. Keys are never logged.
fn authenticate(state: &AppState, parts: &Parts, body_key: Option<&str>) -> Result<String, Rejection> {
    let unauthorized = |m: &str| ("unauthorized", ApiError::new(ErrorCode::Unauthorized, m.to_string()));
    let header = parts.headers.get(hyper::header::AUTHORIZATION).map(|v| v.as_bytes());
    let key: Option<Vec<u8>> = match header {
        Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case(b"basic ") => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(h[6..].trim_ascii()).map_err(|_| unauthorized("`Authorization: Basic` is not valid base64"))?;
            let user = decoded.iter().position(|b| *b == b':').map_or(&decoded[..], |i| &decoded[..i]);
            Some(user.to_vec())
        }
        _ => body_key.map(|k| k.as_bytes().to_vec()),
    };
    let key = key.ok_or_else(|| unauthorized("a write key is required: HTTP Basic with the key as user, or `writeKey` in the body (query tokens cannot write)"))?;
    state.collect.tenant_of(&key).ok_or_else(|| unauthorized("unknown write key"))
}

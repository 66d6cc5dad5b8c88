//! How a registry write reaches the tenant's partition (docs/registry.md):
//! the handler, on the owner (non-owners forward, as for queries), produces a
//! `registry_command` event keyed by tenant, waits — bounded — until the
//! partition has applied it (its dedup marker is committed), and then reads
//! the outcome from committed state. The event id comes from the
//! `Idempotency-Key` header when given (a retry is the same event, applied
//! once), else it is random. Also the per-tenant registry settings and the
//! request-body parsing shared by the registry handlers.

use super::error::{ApiError, ErrorCode};
use super::reports::{blocking, owner_partition};
use super::AppState;
use hyper::http::request::Parts;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use touchline_actors::domain::decode::MAX_EVENT_BYTES;
use touchline_actors::domain::governance::registry::{default_pattern, parse_type, RegistryCommand};
use touchline_actors::domain::governance::IdType;
use touchline_actors::domain::Ts;
use touchline_actors::state::registry::RegistryView;

/// The `Idempotency-Key` request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Largest command text sent in one event (the event's envelope stays below `MAX_EVENT_BYTES`).
pub const MAX_COMMAND_BYTES: usize = MAX_EVENT_BYTES - 1024;
/// How often the wait looks at committed state.
const POLL: Duration = Duration::from_millis(10);

/// The registry settings of the node: id patterns per tenant and the wait bound.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    patterns: BTreeMap<String, BTreeMap<IdType, String>>,
    /// How long a write waits for its apply.
    pub wait: Duration,
}

impl Settings {
    pub fn new(config: &crate::config::NodeConfig) -> Settings {
        let patterns = config
            .tenants
            .iter()
            .map(|(t, s)| (t.clone(), s.id_patterns.iter().filter_map(|(k, p)| Some((parse_type(k)?, p.clone()))).collect()))
            .collect();
        let l = &config.limits;
        let wait = l.registry_wait_ms.min(l.request_timeout_ms * 4 / 5).min(config.cluster.forward_timeout_ms * 4 / 5).max(1);
        Settings { patterns, wait: Duration::from_millis(wait) }
    }

    /// The id pattern of `kind` for `tenant`.
    pub fn pattern(&self, tenant: &str, kind: IdType) -> String {
        self.patterns.get(tenant).and_then(|m| m.get(&kind)).cloned().unwrap_or_else(|| default_pattern(kind).to_owned())
    }
}

/// A JSON body as `T`; a bad one is a 400 naming what serde found (the
/// field, the line and column).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("body: {e}")))
}

/// A 400 naming a body field.
pub fn field_error(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, format!("field `{field}`: {message}"))
}

/// Hex of the first 16 bytes of SHA-256 over `parts` (NUL-separated).
pub fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The event id of a write: derived from the `Idempotency-Key` (and the
/// operation, so one key names one write), else random; and whether a key was given.
pub fn event_id(parts: &Parts, tenant: &str, op: &str) -> Result<(String, bool), ApiError> {
    match parts.headers.get(IDEMPOTENCY_KEY) {
        None => Ok((format!("reg-{:032x}", rand::random::<u128>()), false)),
        Some(v) => {
            let key = v.as_bytes();
            if key.is_empty() || key.len() > 256 {
                return Err(ApiError::new(ErrorCode::BadRequest, "header `Idempotency-Key`: must be 1..=256 bytes"));
            }
            Ok((format!("reg-{}", digest(&[tenant.as_bytes(), op.as_bytes(), key])), true))
        }
    }
}

/// The current calendar year (UTC).
pub fn current_year() -> u16 {
    let (y, _, _) = touchline_actors::domain::timestamp::civil_from_days(Ts::now().secs.div_euclid(86_400));
    u16::try_from(y).unwrap_or(9999)
}

/// Produces `cmd` as event `event_id` of `tenant` and waits until the
/// partition has applied it; 503 with `Retry-After` when it is not applied
/// within the wait (retry with the same `Idempotency-Key`).
pub async fn send_and_wait(state: &AppState, tenant: &str, event_id: &str, cmd: &RegistryCommand) -> Result<(), ApiError> {
    let event = json!({
        "event_id": event_id, "tenant_id": tenant, "event_type": "registry_command",
        "timestamp": Ts::now().to_string(), "command": cmd,
    });
    let payload = serde_json::to_vec(&event).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    if payload.len() > MAX_EVENT_BYTES {
        return Err(ApiError::new(ErrorCode::TooLarge, format!("the registry command is {} bytes, above {MAX_EVENT_BYTES}: send fewer or smaller rows", payload.len())));
    }
    let producer = state.events.as_ref().ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "no event producer on this node"))?;
    let started = Instant::now();
    let wait = state.registry.wait;
    producer
        .send(tenant, &payload, wait)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("could not record the registry write: {e}")))?;
    let deadline = started + wait;
    loop {
        let (partition, _) = owner_partition(state, tenant)?;
        let store = state.store.clone();
        let (t, id) = (tenant.to_owned(), event_id.to_owned());
        if blocking(move || Ok(RegistryView::new(&store, partition, &t).applied(&id)?)).await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ApiError::new(ErrorCode::Unavailable, format!("the registry write {event_id} was not applied within {} ms; retry with the same Idempotency-Key", wait.as_millis())));
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

//! Index routes, so a user (or a UI) has ids to follow: `GET /v1/tenants` (every
//! tenant the cluster has seen, gathered from the owner of each partition) and
//! `GET /v1/tenants/{t}/customers` (the tenant's persons, paged). Also the
//! "tenant seen" check of every tenant query: a tenant without a single
//! accepted event is 404 `not_found`, not a report of zeros.

use super::error::{ApiError, ErrorCode};
use super::params::Params;
use super::reports::{blocking, owner_partition};
use super::{json_response, AppState};
use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use touchline_actors::query::listing;
use touchline_actors::state::TenantMeta;
use touchline_actors::status::PartitionState;

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// Default and largest `limit` of the customers listing.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Largest `scope=local` answer relayed from a peer.
const MAX_PEER_REPLY: usize = 16 << 20;

/// The meta of `tenant` in `partition` (a blocking RocksDB read), or 404 when
/// the partition holds no event of it: the cluster has never seen the tenant.
pub(super) fn seen(state: &AppState, partition: u16, tenant: &str) -> Result<TenantMeta, ApiError> {
    touchline_actors::query::tenant_meta(&state.store, partition, tenant)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no events for tenant {tenant:?}")))
}

fn ts(t: Option<touchline_actors::domain::Ts>) -> Option<String> {
    t.map(|t| t.to_string())
}

/// One tenant of one partition.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantRow {
    pub tenant: String,
    pub partition: i32,
    pub events: u64,
    pub persons: u64,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
}

/// `GET /v1/tenants` (`scope=cluster`): every tenant, sorted by name.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterTenants {
    /// The events topic's partition count (every one answered).
    pub partitions: i32,
    pub tenants: Vec<TenantRow>,
}

/// `GET /v1/tenants?scope=local`: the tenants of this node's active partitions.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LocalTenants {
    pub node_id: String,
    /// The partitions answered.
    pub partitions: Vec<i32>,
    pub tenants: Vec<TenantRow>,
}

/// The answer of `GET /v1/tenants`, by `scope`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TenantsAnswer {
    Cluster(ClusterTenants),
    Local(LocalTenants),
}

/// `GET /v1/tenants/{tenant}/customers`: one page of persons.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CustomersPage {
    pub tenant: String,
    pub customers: Vec<CustomerEntry>,
    /// Pass as `cursor` for the next page (null: the last page).
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerEntry {
    pub person_id: String,
    pub identifiers: Vec<IdentifierEntry>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IdentifierEntry {
    pub id: String,
    pub kind: &'static str,
}

/// The tenants of the partitions this node owns and serves (active ones).
fn local(state: &AppState) -> Result<(Vec<i32>, Vec<TenantRow>), ApiError> {
    let mut partitions: Vec<i32> = state.status.all().iter().filter(|p| p.state() == PartitionState::Active).map(|p| p.partition).collect();
    partitions.sort_unstable();
    let mut tenants = Vec::new();
    for &p in &partitions {
        for t in listing::tenants(&state.store, p as u16)? {
            tenants.push(TenantRow { tenant: t.tenant, partition: p, events: t.events, persons: t.persons, first_event: ts(t.first_event), last_event: ts(t.last_event) });
        }
    }
    Ok((partitions, tenants))
}

/// `GET /v1/tenants` (admin): this node's tenants plus every alive peer's
/// (`?scope=local` answers only this node's partitions), sorted by name; 503
/// while some partition of the topic has no active owner that answered.
pub async fn tenants(state: Arc<AppState>, parts: &Parts, p: Params) -> Reply {
    let local_only = match p.str("scope") {
        None | Some("cluster") => false,
        Some("local") => true,
        Some(v) => return Err(ApiError::param("scope", format!("{v:?} is not one of cluster, local"))),
    };
    let st = state.clone();
    let (mut covered, mut rows) = blocking(move || local(&st)).await?;
    if local_only {
        return Ok(json_response(StatusCode::OK, &TenantsAnswer::Local(LocalTenants { node_id: state.node_id.clone(), partitions: covered, tenants: rows })));
    }
    let bearer = parts.headers.get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    let timeout = Duration::from_millis(state.limits.request_timeout_ms / 2);
    let peers: Vec<(String, String)> = state
        .forward
        .members
        .members()
        .into_iter()
        .filter(|m| m.alive && m.heartbeat.node_id != state.node_id && !m.heartbeat.owned.is_empty())
        .map(|m| (m.heartbeat.node_id, m.heartbeat.http_addr))
        .collect();
    let forward = &state.forward;
    let calls = peers.iter().map(|(id, addr)| async move {
        let r = forward.call(addr, Method::GET, "/v1/tenants?scope=local", bearer, MAX_PEER_REPLY, timeout).await;
        let v = match r {
            Ok((s, body)) if s == StatusCode::OK => serde_json::from_slice::<LocalTenants>(&body).map_err(|e| e.to_string()),
            Ok((s, body)) => Err(format!("{s}: {}", String::from_utf8_lossy(&body))),
            Err(e) => Err(e),
        };
        v.map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("member {id} at {addr} did not list its tenants: {e}")))
    });
    for v in futures::future::join_all(calls).await {
        let v = v?;
        covered.extend(v.partitions);
        rows.extend(v.tenants);
    }
    let n = state.status.topic_partitions.load(Ordering::Relaxed) as i32;
    if n <= 0 {
        return Err(ApiError::new(ErrorCode::Unavailable, "topic metadata not loaded yet"));
    }
    let covered: BTreeSet<i32> = covered.into_iter().collect();
    let missing: Vec<i32> = (0..n).filter(|p| !covered.contains(p)).collect();
    if !missing.is_empty() {
        return Err(ApiError::new(ErrorCode::Unavailable, format!("partitions {missing:?} of {n} have no active owner that answered (rebalancing or restoring)")));
    }
    // A partition answered twice (ownership moving during the calls) counts once.
    let mut seen_partitions = BTreeSet::new();
    rows.retain(|r| seen_partitions.insert((r.partition, r.tenant.clone())));
    rows.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    Ok(json_response(StatusCode::OK, &TenantsAnswer::Cluster(ClusterTenants { partitions: n, tenants: rows })))
}

/// The opaque paging cursor of a person key, and back.
fn cursor_of(person: u64) -> String {
    format!("p{person:x}")
}

fn parse_cursor(c: &str) -> Option<u64> {
    u64::from_str_radix(c.strip_prefix('p')?, 16).ok()
}

/// `GET /v1/tenants/{t}/customers?limit&cursor`: the tenant's persons in a
/// stable order (`limit` default 100, at most 1000; `next_cursor` continues).
pub async fn customers(state: Arc<AppState>, tenant: String, p: Params) -> Result<CustomersPage, ApiError> {
    let limit = p.int("limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT) as usize;
    let after = match p.str("cursor") {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| ApiError::param("cursor", format!("{c:?} is not a cursor this API returned (next_cursor)")))?),
    };
    let (partition, _) = owner_partition(&state, &tenant)?;
    blocking(move || {
        seen(&state, partition, &tenant)?;
        let page = listing::persons(&state.store, partition, &tenant, after, limit)?;
        let customers = page
            .persons
            .iter()
            .map(|(_, r)| CustomerEntry {
                person_id: r.ids.public_id(),
                identifiers: r.ids.members.iter().map(|n| IdentifierEntry { id: n.id.clone(), kind: n.kind.as_str() }).collect(),
            })
            .collect();
        Ok(CustomersPage { tenant, customers, next_cursor: page.next.map(cursor_of) })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        for k in [0, 7, u64::MAX] {
            assert_eq!(parse_cursor(&cursor_of(k)), Some(k));
        }
        for junk in ["", "p", "7", "pzz", "p1ffffffffffffffff"] {
            assert_eq!(parse_cursor(junk), None, "{junk}");
        }
    }
}

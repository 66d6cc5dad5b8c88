//! Forwarding, so that any node answers any `/v1/tenants/{t}/...` request: when
//! the tenant's partition is not owned here, the request goes one hop (same
//! method, path, query, `Authorization`, body; marked `x-touchline-forwarded`)
//! to the alive owner named by the membership table, and the owner's status,
//! headers and body come back unchanged, with `x-touchline-served-by`. A request
//! that was already forwarded is never forwarded again. No owner, an unreachable
//! owner or a timeout answer 503 `unavailable` with `Retry-After`. With TLS on,
//! forwarding is https, trusting `tls.ca` (default: the node's own certificate),
//! so the certificate must name the address each node advertises.

use super::error::{ApiError, ErrorCode};
use super::AppState;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Request, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::Ordering;
use std::time::Duration;
use touchline_actors::domain::routing::partition_for;
use touchline_cluster::Members;

/// Marks a request as forwarded once (loop guard).
pub const FORWARDED: &str = "x-touchline-forwarded";
/// Names the node that computed the answer.
pub const SERVED_BY: &str = "x-touchline-served-by";
/// Largest owner reply relayed (a compare report is far below).
const MAX_REPLY_BYTES: usize = 64 << 20;
/// Request headers that travel with a forwarded request.
const PASS_HEADERS: [HeaderName; 4] = [AUTHORIZATION, CONTENT_TYPE, ACCEPT, HeaderName::from_static("idempotency-key")];
/// Owner reply headers that do not travel back (hop-by-hop, or re-framed by hyper).
const HOP_BY_HOP: [&str; 5] = ["connection", "keep-alive", "transfer-encoding", "content-length", "date"];

/// What to do with a tenant request, decided from local ownership and the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Owned here: the local handler answers (503 itself while restoring).
    Local,
    Forward {
        node_id: String,
        http_addr: String,
    },
    Unavailable(String),
}

/// The forwarding decision for `partition`. `owner` is the table's alive
/// claimant `(node_id, http_addr)`; `owned_here` is the local truth.
pub fn decide(partition: i32, owned_here: bool, already_forwarded: bool, owner: Option<(&str, &str)>, self_id: &str) -> Decision {
    if owned_here {
        return Decision::Local;
    }
    if already_forwarded {
        return Decision::Unavailable(format!("partition {partition} is not owned by this node (request was already forwarded once)"));
    }
    match owner {
        None => Decision::Unavailable(format!("partition {partition} has no live owner (rebalancing or starting)")),
        Some((id, _)) if id == self_id => Decision::Unavailable(format!("partition {partition} is moving away from this node")),
        Some((id, addr)) => Decision::Forward { node_id: id.to_string(), http_addr: addr.to_string() },
    }
}

/// The membership view plus a pooled HTTP client towards the other nodes.
pub struct Forwarder {
    pub members: Members,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    /// `https` when the cluster serves TLS, else `http`.
    scheme: &'static str,
}

impl Forwarder {
    /// `tls`: the client config trusted towards other nodes (`None`: plain http).
    pub fn new(members: Members, timeout: Duration, tls: Option<rustls::ClientConfig>) -> Forwarder {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let connector = match tls {
            Some(cfg) => builder.with_tls_config(cfg).https_only().enable_http1().build(),
            // Never used for https (the URL scheme is http); any config will do.
            None => builder.with_tls_config(crate::tls::client_config(rustls::RootCertStore::empty())).https_or_http().enable_http1().build(),
        };
        // Idle connections close before the server's 10 s header-read timeout does.
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(5)).pool_max_idle_per_host(32).build(connector);
        Forwarder { members, client, timeout, scheme }
    }

    /// One request of this node to another node's surface, with an optional
    /// bearer token: its status and body (at most `max` bytes), within `timeout`.
    pub async fn call(&self, addr: &str, method: hyper::Method, path: &str, bearer: Option<&str>, max: usize, timeout: Duration) -> Result<(hyper::StatusCode, Bytes), String> {
        let mut req = Request::builder().method(method).uri(format!("{}://{addr}{path}", self.scheme));
        if let Some(t) = bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
        let exchange = async {
            let reply = self.client.request(req).await.map_err(|e| format!("{addr}: {e}"))?;
            let (head, body) = reply.into_parts();
            let bytes = Limited::new(body, max).collect().await.map_err(|e| format!("{addr}{path}: {e}"))?.to_bytes();
            Ok::<_, String>((head.status, bytes))
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("{addr}{path}: no answer within {} ms", timeout.as_millis()))?
    }

    async fn forward(&self, node_id: &str, addr: &str, parts: &Parts, body: &Bytes) -> Result<Response<Full<Bytes>>, ApiError> {
        touchline_actors::metrics::forwarded();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::builder().method(parts.method.clone()).uri(format!("{}://{addr}{path}", self.scheme)).header(FORWARDED, "1");
        for name in PASS_HEADERS {
            for v in parts.headers.get_all(&name) {
                req = req.header(&name, v);
            }
        }
        let req = req.body(Full::new(body.clone())).map_err(|e| ApiError::new(ErrorCode::Internal, format!("forward request: {e}")))?;
        let unreachable = |e: &dyn std::fmt::Display| ApiError::new(ErrorCode::Unavailable, format!("owner {node_id} at {addr} unreachable: {e}"));
        let exchange = async {
            let reply = self.client.request(req).await.map_err(|e| unreachable(&e))?;
            let (head, body) = reply.into_parts();
            let bytes = Limited::new(body, MAX_REPLY_BYTES).collect().await.map_err(|e| unreachable(&e))?.to_bytes();
            Ok::<_, ApiError>((head, bytes))
        };
        let (head, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ApiError::new(ErrorCode::Unavailable, format!("owner {node_id} at {addr} did not answer within {} ms", self.timeout.as_millis())))??;
        let mut out = Response::new(Full::new(bytes));
        *out.status_mut() = head.status;
        for (k, v) in &head.headers {
            if !HOP_BY_HOP.contains(&k.as_str()) {
                out.headers_mut().append(k.clone(), v.clone());
            }
        }
        if !out.headers().contains_key(SERVED_BY) {
            if let Ok(v) = HeaderValue::from_str(node_id) {
                out.headers_mut().insert(SERVED_BY, v);
            }
        }
        Ok(out)
    }
}

/// The dispatch hook for tenant routes: `Ok(None)` serves locally, `Ok(Some)` is
/// the owner's answer, `Err` a 503 (no owner, loop, unreachable, timeout).
pub async fn maybe_forward(state: &AppState, tenant: &str, parts: &Parts, body: &Bytes) -> Result<Option<Response<Full<Bytes>>>, ApiError> {
    let n = state.status.topic_partitions.load(Ordering::Relaxed) as i32;
    if n <= 0 {
        return Ok(None); // the local handler answers 503 until metadata is known
    }
    let p = partition_for(tenant, n);
    let owned_here = state.status.get(p).is_some();
    let already = parts.headers.contains_key(FORWARDED);
    let owner = if owned_here { None } else { state.forward.members.owner(p) };
    match decide(p, owned_here, already, owner.as_ref().map(|h| (h.node_id.as_str(), h.http_addr.as_str())), &state.node_id) {
        Decision::Local => Ok(None),
        Decision::Unavailable(m) => Err(ApiError::new(ErrorCode::Unavailable, m)),
        Decision::Forward { node_id, http_addr } => state.forward.forward(&node_id, &http_addr, parts, body).await.map(Some),
    }
}

/// Marks a locally computed `/v1` answer with this node's id (forwarded ones already carry the owner's).
pub fn mark_served_by(resp: &mut Response<Full<Bytes>>, node_id: &str) {
    if !resp.headers().contains_key(SERVED_BY) {
        if let Ok(v) = HeaderValue::from_str(node_id) {
            resp.headers_mut().insert(SERVED_BY, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_partitions_are_served_locally_even_when_forwarded() {
        assert_eq!(decide(3, true, false, None, "a"), Decision::Local);
        assert_eq!(decide(3, true, true, Some(("b", "b:1")), "a"), Decision::Local);
    }

    #[test]
    fn another_alive_owner_gets_the_request() {
        assert_eq!(decide(3, false, false, Some(("b", "h:1")), "a"), Decision::Forward { node_id: "b".into(), http_addr: "h:1".into() });
    }

    #[test]
    fn a_forwarded_request_is_never_forwarded_again() {
        let d = decide(3, false, true, Some(("b", "h:1")), "a");
        assert!(matches!(d, Decision::Unavailable(m) if m.contains("already forwarded")));
    }

    #[test]
    fn no_owner_or_a_stale_self_claim_is_unavailable() {
        assert!(matches!(decide(3, false, false, None, "a"), Decision::Unavailable(m) if m.contains("no live owner")));
        assert!(matches!(decide(3, false, false, Some(("a", "h:1")), "a"), Decision::Unavailable(m) if m.contains("moving")));
    }

    #[test]
    fn served_by_is_added_once() {
        let mut r = Response::new(Full::new(Bytes::new()));
        mark_served_by(&mut r, "n1");
        mark_served_by(&mut r, "n2");
        assert_eq!(r.headers().get(SERVED_BY).unwrap(), "n1");
    }
}

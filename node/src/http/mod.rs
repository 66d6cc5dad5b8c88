//! The HTTP surface (hyper 1): routing, forwarding to the owning node, limits
//! (concurrency → 429, request timeout, body size → 413), per-route latency
//! metrics, optional TLS (rustls) on the same listener, and JSON everywhere — never a panic, never an HTML page
//! (but the report page at `/ui`, see `ui`), never a hung connection.

pub mod auth;
mod collect;
pub mod csv;
mod enrich;
pub mod error;
mod insights;
mod listing;
pub mod registry;
pub mod registry_cmd;
mod registry_ops;
pub mod registry_urls;
mod cluster_view;
pub mod forward;
pub mod openapi;
mod operations;
pub mod params;
mod reports;
mod series;
pub mod routes;
pub mod snapshots;
pub mod ui;

use bytes::Bytes;
use error::{ApiError, ErrorCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use touchline_actors::status::NodeStatus;
use touchline_storage::Store;

/// What every request handler can reach.
pub struct AppState {
    pub node_id: String,
    pub http_addr: String,
    pub store: Store,
    pub status: Arc<NodeStatus>,
    pub metrics: PrometheusHandle,
    pub limits: crate::config::LimitsSection,
    pub default_lookback_days: i64,
    /// Event-time retention per tenant (queries ignore what lies behind the horizon).
    pub retention: touchline_actors::domain::retention::RetentionPolicy,
    pub inflight: Semaphore,
    pub auth: auth::Authorizer,
    /// Produces node-originated events (HTTP erasure); `None` in unit setups.
    pub events: Option<touchline_cluster::producer::EventProducer>,
    /// Membership view and the client that forwards to owners.
    pub forward: Arc<forward::Forwarder>,
    /// Incrementally maintained markov/shapley paths (the store's commit observer).
    pub paths: Arc<touchline_actors::query::paths_cache::PathsCache>,
    /// Partition snapshots exported for restoring peers.
    pub snapshots: Arc<snapshots::SnapshotShelf>,
    /// Tenants with probabilistic links on, and their settings.
    pub linking: touchline_actors::query::linking::LinkingPolicy,
    /// Their final persons, reused until the partition applies more.
    pub link_cache: touchline_actors::query::linking::LinkCache,
    /// Collector write keys and conversion mappings.
    pub collect: crate::collect::Collector,
    /// Registry id patterns per tenant and the write wait.
    pub registry: registry_cmd::Settings,
}

impl AppState {
    /// The final persons of `tenant` when the query asks for them and the
    /// tenant has probabilistic links that join anyone (`None`: the
    /// deterministic persons, answered from the report cache). `horizon`: the
    /// tenant's retention horizon, which the caller has already read.
    pub fn final_persons(&self, partition: u16, tenant: &str, view: touchline_actors::query::linking::IdentityView, horizon: Option<touchline_actors::domain::Ts>) -> Result<Option<std::sync::Arc<touchline_actors::query::linking::FinalPersons>>, ApiError> {
        use touchline_actors::query::linking::IdentityView;
        let Some(linking) = self.linking.of(tenant).filter(|_| view == IdentityView::All) else { return Ok(None) };
        let offset = self.status.get(partition as i32).map(|s| s.next_offset.load(std::sync::atomic::Ordering::Acquire)).unwrap_or(-1);
        let f = self.link_cache.get(&self.store, partition, tenant, linking, horizon, offset)?;
        Ok((!f.is_empty()).then_some(f))
    }

    /// The retention horizon of `tenant` in `partition` (a blocking RocksDB
    /// read); 404 `not_found` for a tenant the partition has no event of, so
    /// every query reading it answers "no events for tenant", not zeros.
    pub fn horizon(&self, partition: u16, tenant: &str) -> Result<Option<touchline_actors::domain::Ts>, ApiError> {
        let meta = listing::seen(self, partition, tenant)?;
        Ok(self.retention.horizon(tenant, meta.max_ts))
    }

    /// The retention and 5-second window horizons of `tenant` in `partition`
    /// (one blocking RocksDB read).
    pub fn journey_horizons(&self, partition: u16, tenant: &str) -> Result<touchline_actors::query::journey::Horizons, ApiError> {
        let newest = touchline_actors::query::tenant_meta(&self.store, partition, tenant)?.and_then(|m| m.max_ts);
        Ok(touchline_actors::query::journey::Horizons { retention: self.retention.horizon(tenant, newest), window_5s: self.retention.window_5s_horizon(newest) })
    }
}

/// A JSON answer. Serialized through a `serde_json::Value`, so object keys
/// come out sorted, byte for byte the answers built with `json!` before the
/// answers became typed.
pub fn json_response<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_value(body).and_then(|v| serde_json::to_vec(&v)).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A silent client holds neither a TLS handshake nor a header read longer than this.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` flips; each connection is served on its
/// own task with a header-read timeout so a silent client cannot hold it. With
/// `tls`, the connection is first a TLS handshake (bounded by the same timeout);
/// a failed one closes that connection only and is counted.
pub async fn serve(listener: TcpListener, state: Arc<AppState>, tls: Option<TlsAcceptor>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { break },
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve_connection(TokioIo::new(stream), state).await,
                        Some(acceptor) => match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(tls_stream)) => serve_connection(TokioIo::new(tls_stream), state).await,
                            Ok(Err(e)) => {
                                touchline_actors::metrics::tls_handshake_failed();
                                tracing::debug!(error = %e, "TLS handshake failed");
                            }
                            Err(_) => touchline_actors::metrics::tls_handshake_failed(),
                        },
                    }
                });
            }
        }
    }
}

async fn serve_connection<I>(io: I, state: Arc<AppState>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
    });
    let conn = http1::Builder::new().timer(TokioTimer::new()).header_read_timeout(CLIENT_TIMEOUT).serve_connection(io, svc);
    let _ = conn.await;
}

async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let route = routes::route_name(req.uri().path());
    let v1 = req.uri().path().starts_with("/v1/");
    let mut resp = match state.inflight.try_acquire() {
        Err(_) => ApiError::new(ErrorCode::Overloaded, "too many concurrent requests").into_response(),
        Ok(_permit) => {
            let timeout = Duration::from_millis(state.limits.request_timeout_ms);
            match tokio::time::timeout(timeout, dispatch(state.clone(), req)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => e.into_response(),
                Err(_) => ApiError::new(ErrorCode::Unavailable, "request timed out").into_response(),
            }
        }
    };
    if v1 {
        forward::mark_served_by(&mut resp, &state.node_id);
    }
    if route == "collect" {
        collect::allow_any_origin(&mut resp);
    }
    metrics::histogram!(touchline_actors::metrics::HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    resp
}

async fn dispatch(state: Arc<AppState>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, ApiError> {
    let (parts, body) = req.into_parts();
    // Bounded body: we read at most max_body_bytes (+1 to detect overflow).
    let limit = match parts.uri.path() {
        "/v1/collect/costs" => state.limits.cost_import_max_bytes,
        p if p.ends_with("/registry/urls:bulk") => state.limits.cost_import_max_bytes,
        p if p.starts_with("/v1/collect/") => crate::collect::MAX_BATCH_BYTES,
        _ => state.limits.max_body_bytes,
    };
    if let Some(len) = parts.headers.get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
        if len > limit {
            return Err(ApiError::new(ErrorCode::TooLarge, format!("body over {limit} bytes")));
        }
    }
    let body = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(ApiError::new(ErrorCode::TooLarge, format!("body over {limit} bytes"))),
    };
    routes::route(state, parts, body).await
}

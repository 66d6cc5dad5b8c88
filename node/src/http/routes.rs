//! The route table — every (method, path template) the HTTP surface serves,
//! who may call it, the query parameters it accepts and the operation it
//! dispatches to — and the dispatcher that matches a request against it
//! (`matchit`, whose `{param}` templates are the OpenAPI paths).
//!
//! Adding a route (as the tenant registry's `/v1/tenants/{tenant}/registry/…`)
//! is one `route!` entry here and one `#[utoipa::path]` annotation on its
//! operation (`operations.rs`, `registry_ops.rs`): the OpenAPI description
//! (`openapi.rs`, `GET /openapi.json`) is built from this table's described
//! entries, and its tests check every entry against its annotation (method,
//! path, query parameters) and the description against the table, both ways.
//! `hidden!` entries (the report page, `/internal/v1`, CORS preflights) are
//! served but not described.

use super::auth::Target;
use super::csv::Output;
use super::error::{ApiError, ErrorCode};
use super::operations as ops;
use super::params::{path_segment, Params};
use super::AppState;
use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Method, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

pub type Reply = Result<Response<Full<Bytes>>, ApiError>;
type Handler = fn(Arc<AppState>, Call) -> Pin<Box<dyn Future<Output = Reply> + Send>>;
/// Adds a route's operation (and the schemas it uses) to the description.
pub type Doc = fn(&mut utoipa::openapi::path::Paths, &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>);

/// Who may call a route (checked before its operation runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token (health, metrics, the description, the report page).
    Public,
    /// The admin bearer token.
    Admin,
    /// A bearer token granting the `{tenant}` path parameter (or admin); the
    /// tenant is validated and the request forwarded to its owner.
    Tenant,
    /// The collector's write key, checked by the operation.
    WriteKey,
}

pub struct Route {
    pub method: Method,
    /// The path template (`{name}` one segment, `{*name}` the rest).
    pub path: &'static str,
    /// The `route` label of the latency histogram.
    pub label: &'static str,
    pub access: Access,
    /// The query parameters the operation accepts (any other is a 400).
    pub query: &'static [&'static str],
    handler: Handler,
    /// `None`: served, not described.
    pub doc: Option<Doc>,
}

/// A described route: `route!(METHOD "path", label, access, query, operation, __path_operation)`.
macro_rules! route {
    ($m:ident $path:literal, $label:literal, $access:ident, $query:expr, $op:ident, $doc:ident) => {
        Route { method: Method::$m, path: $path, label: $label, access: Access::$access, query: $query, handler: |s, c| Box::pin(ops::$op(s, c)), doc: Some(super::openapi::described::<ops::$doc>) }
    };
}

/// A served route the description leaves out.
macro_rules! hidden {
    ($m:ident $path:literal, $label:literal, $access:ident, $op:ident) => {
        Route { method: Method::$m, path: $path, label: $label, access: Access::$access, query: &[], handler: |s, c| Box::pin(ops::$op(s, c)), doc: None }
    };
}

/// The query parameters of the reports (attribution, compare).
const REPORT: &[&str] = &["model", "from", "to", "group_by", "lookback_days", "half_life_hours", "currency", "weights", "identity", "format"];
const SERIES: &[&str] = &["model", "from", "to", "group_by", "bucket", "lookback_days", "half_life_hours", "currency", "weights", "identity", "format"];
const CAMPAIGNS: &[&str] = &["model", "from", "to", "lookback_days", "half_life_hours", "currency", "weights", "identity", "format"];

pub static ROUTES: &[Route] = &[
    route!(GET "/health/live", "other", Public, &[], health_live, __path_health_live),
    route!(GET "/health/ready", "other", Public, &[], health_ready, __path_health_ready),
    route!(GET "/metrics", "other", Public, &[], metrics, __path_metrics),
    route!(GET "/openapi.json", "openapi", Public, &[], openapi, __path_openapi),
    route!(GET "/v1/cluster", "cluster", Admin, &[], cluster, __path_cluster),
    route!(GET "/v1/tenants", "tenants", Admin, &["scope"], tenants, __path_tenants),
    route!(GET "/v1/tenants/{tenant}/attribution", "attribution", Tenant, REPORT, attribution, __path_attribution),
    route!(GET "/v1/tenants/{tenant}/attribution/compare", "attribution_compare", Tenant, REPORT, compare, __path_compare),
    route!(GET "/v1/tenants/{tenant}/attribution/series", "attribution_series", Tenant, SERIES, series, __path_series),
    route!(GET "/v1/tenants/{tenant}/customers", "customers", Tenant, &["limit", "cursor"], customers, __path_customers),
    route!(GET "/v1/tenants/{tenant}/customers/{id}", "customer", Tenant, &["lookback_days", "half_life_hours", "weights", "group_by", "identity"], customer, __path_customer),
    route!(DELETE "/v1/tenants/{tenant}/customers/{id}", "customer", Tenant, &[], erase, __path_erase),
    route!(GET "/v1/tenants/{tenant}/campaigns", "campaigns", Tenant, CAMPAIGNS, campaigns, __path_campaigns),
    route!(GET "/v1/tenants/{tenant}/cohorts", "cohorts", Tenant, &["cohort", "by", "from", "to", "currency", "format"], cohorts, __path_cohorts),
    route!(GET "/v1/tenants/{tenant}/variants", "variants", Tenant, &[], variants, __path_variants),
    route!(GET "/v1/tenants/{tenant}/journeys/{journey}/performance", "journey_performance", Tenant, &["granularity", "from", "to", "format"], journey, __path_journey),
    route!(GET "/v1/tenants/{tenant}/journeys/{journey}", "journey_performance", Tenant, &["granularity", "from", "to", "format"], journey_short, __path_journey_short),
    route!(POST "/v1/tenants/{tenant}/registry/ids", "registry_ids", Tenant, &[], registry_mint, __path_registry_mint),
    route!(GET "/v1/tenants/{tenant}/registry/ids", "registry_ids", Tenant, &["type", "brand", "year", "status", "q", "limit", "cursor"], registry_list, __path_registry_list),
    route!(GET "/v1/tenants/{tenant}/registry/ids/{id}", "registry_id", Tenant, &[], registry_get, __path_registry_get),
    route!(PATCH "/v1/tenants/{tenant}/registry/ids/{id}", "registry_id", Tenant, &[], registry_patch, __path_registry_patch),
    route!(PUT "/v1/tenants/{tenant}/registry/taxonomy", "registry_taxonomy", Tenant, &[], registry_put_taxonomy, __path_registry_put_taxonomy),
    route!(GET "/v1/tenants/{tenant}/registry/taxonomy", "registry_taxonomy", Tenant, &["version"], registry_get_taxonomy, __path_registry_get_taxonomy),
    route!(POST "/v1/tenants/{tenant}/registry/urls", "registry_urls", Tenant, &[], registry_url, __path_registry_url),
    route!(GET "/v1/tenants/{tenant}/registry/urls", "registry_urls", Tenant, &["vendor", "format"], registry_export, __path_registry_export),
    route!(POST "/v1/tenants/{tenant}/registry/urls:bulk", "registry_urls_bulk", Tenant, &["mint", "brand", "year"], registry_bulk, __path_registry_bulk),
    route!(GET "/v1/tenants/{tenant}/registry/compliance", "registry_compliance", Tenant, &["from", "to", "model", "lookback_days", "half_life_hours", "weights", "currency", "identity"], registry_compliance, __path_registry_compliance),
    route!(POST "/v1/collect/track", "collect", WriteKey, &[], collect_track, __path_collect_track),
    route!(POST "/v1/collect/identify", "collect", WriteKey, &[], collect_identify, __path_collect_identify),
    route!(POST "/v1/collect/page", "collect", WriteKey, &[], collect_page, __path_collect_page),
    route!(POST "/v1/collect/screen", "collect", WriteKey, &[], collect_screen, __path_collect_screen),
    route!(POST "/v1/collect/alias", "collect", WriteKey, &[], collect_alias, __path_collect_alias),
    route!(POST "/v1/collect/batch", "collect", WriteKey, &[], collect_batch, __path_collect_batch),
    route!(POST "/v1/collect/costs", "collect", WriteKey, &[], collect_costs, __path_collect_costs),
    hidden!(OPTIONS "/v1/collect/track", "collect", Public, collect_preflight),
    hidden!(OPTIONS "/v1/collect/identify", "collect", Public, collect_preflight),
    hidden!(OPTIONS "/v1/collect/page", "collect", Public, collect_preflight),
    hidden!(OPTIONS "/v1/collect/screen", "collect", Public, collect_preflight),
    hidden!(OPTIONS "/v1/collect/alias", "collect", Public, collect_preflight),
    hidden!(OPTIONS "/v1/collect/batch", "collect", Public, collect_preflight),
    hidden!(OPTIONS "/v1/collect/costs", "collect", Public, collect_preflight),
    // The report page needs no token; its /v1 calls carry the user's.
    hidden!(GET "/ui", "ui", Public, ui),
    hidden!(GET "/ui/{*asset}", "ui", Public, ui),
    hidden!(GET "/internal/v1/{*rest}", "internal", Admin, internal),
    hidden!(POST "/internal/v1/{*rest}", "internal", Admin, internal),
    hidden!(DELETE "/internal/v1/{*rest}", "internal", Admin, internal),
];

/// One matched request, as its operation sees it.
pub struct Call {
    pub parts: Parts,
    pub body: Bytes,
    /// The query string (without `format` on a report: `out` took it).
    pub query: Option<String>,
    allowed: &'static [&'static str],
    /// The path parameters, percent-decoded.
    path_params: Vec<(String, String)>,
    /// JSON or CSV (reports only).
    pub out: Output,
}

impl Call {
    /// The decoded path parameter `name` (empty when the route has none).
    pub fn param(&self, name: &str) -> String {
        self.path_params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// The query parameters, each one the route accepts (else a 400 naming it).
    pub fn params(&self) -> Result<Params, ApiError> {
        Params::parse(self.query.as_deref(), self.allowed)
    }
}

/// The table by path template: each template once, with its entries' indices.
static MATCHER: LazyLock<matchit::Router<Vec<usize>>> = LazyLock::new(|| {
    let mut paths: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, r) in ROUTES.iter().enumerate() {
        match paths.iter_mut().find(|(p, _)| *p == r.path) {
            Some((_, v)) => v.push(i),
            None => paths.push((r.path, vec![i])),
        }
    }
    let mut m = matchit::Router::new();
    for (p, v) in paths {
        m.insert(p, v).unwrap_or_else(|e| panic!("route table: {p}: {e}"));
    }
    m
});

/// `path` without trailing slashes (`/v1/cluster/` is `/v1/cluster`).
fn normalized(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// The `route` label of `path` (any method): `other` when nothing matches.
pub fn route_name(path: &str) -> &'static str {
    match MATCHER.at(normalized(path)) {
        Ok(m) => ROUTES[m.value[0]].label,
        Err(_) if path.starts_with("/internal/") => "internal",
        Err(_) => "other",
    }
}

pub async fn route(state: Arc<AppState>, parts: Parts, body: Bytes) -> Reply {
    let path = parts.uri.path().to_string();
    let Ok(m) = MATCHER.at(normalized(&path)) else { return Err(no_route(&state, &parts)) };
    let Some(r) = m.value.iter().map(|i| &ROUTES[*i]).find(|r| r.method == parts.method) else { return Err(no_route(&state, &parts)) };
    let path_params: Vec<(String, String)> = m.params.iter().map(|(k, v)| (k.to_string(), path_segment(v))).collect();
    let mut call = Call { query: parts.uri.query().map(str::to_string), parts, body, allowed: r.query, path_params, out: Output::json() };
    match r.access {
        Access::Public | Access::WriteKey => {}
        Access::Admin => state.auth.check(authorization(&call.parts), Target::Admin)?,
        Access::Tenant => {
            let tenant = call.param("tenant");
            state.auth.check(authorization(&call.parts), Target::Tenant(&tenant))?;
            if !touchline_actors::domain::decode::valid_tenant(&tenant) {
                return Err(ApiError::param("tenant", format!("{tenant:?} does not match ^[a-z0-9][a-z0-9_-]{{0,63}}$")));
            }
            if let Some(r) = super::forward::maybe_forward(&state, &tenant, &call.parts, &call.body).await? {
                return Ok(r);
            }
            // Reports answer JSON or CSV (`format`, `Accept`): one answer, two renderings.
            let rest: Vec<String> = normalized(&path).split('/').skip(4).map(path_segment).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            call.out = Output::negotiate(&call.parts.headers, &mut call.query, &tenant, &rest)?;
        }
    }
    (r.handler)(state, call).await
}

/// The 404 of a request no entry serves, after the authorization its path
/// would need (so a missing route is no hint to an unauthorized caller).
fn no_route(state: &AppState, parts: &Parts) -> ApiError {
    let path = parts.uri.path();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let auth = match segs.as_slice() {
        ["v1", "tenants", t, ..] => state.auth.check(authorization(parts), Target::Tenant(&path_segment(t))),
        ["v1", "collect", ..] => Ok(()),
        ["v1", ..] | ["internal", ..] => state.auth.check(authorization(parts), Target::Admin),
        _ => Ok(()),
    };
    match auth {
        Err(e) => e,
        Ok(()) => ApiError::new(ErrorCode::NotFound, format!("no route for {} {path}", parts.method)),
    }
}

fn authorization(parts: &Parts) -> Option<&[u8]> {
    parts.headers.get(hyper::header::AUTHORIZATION).map(|v| v.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_trailing_slashes() {
        assert_eq!(route_name("/v1/tenants/acme/attribution/"), "attribution");
        assert_eq!(route_name("/v1/tenants/acme/journeys/j%2Fk"), "journey_performance");
        assert_eq!(route_name("/v1/tenants/acme/attribution/series"), "attribution_series");
        assert_eq!(route_name("/v1/collect/track"), "collect");
        assert_eq!(route_name("/internal/v1/snapshots/x/data"), "internal");
        assert_eq!(route_name("/ui/"), "ui");
        assert_eq!(route_name("/nope"), "other");
        assert_eq!(route_name("/v1/tenants/acme/registry/urls:bulk"), "registry_urls_bulk");
        assert_eq!(route_name("/v1/tenants/acme/registry/urls"), "registry_urls");
        assert_eq!(route_name("/v1/tenants/acme/registry/ids/CMP-EYL-2026-001"), "registry_id");
    }
}

//! Route table and handlers. Reads run on the blocking pool against committed
//! RocksDB state of the partition that owns the tenant.

use super::auth::Target;
use super::error::{ApiError, ErrorCode};
use super::params::{path_segment, require_weights, Params};
use super::{json_response, AppState};
use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use touchline_actors::domain::models::Model;
use touchline_actors::domain::report::Row;
use touchline_actors::domain::routing::partition_for;
use touchline_actors::domain::window::Granularity;
use touchline_actors::domain::Ts;
use touchline_actors::query::{self, customer::CustomerQuery};
use touchline_actors::status::PartitionState;

pub fn route_name(path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["v1", "tenants", _, "attribution"] => "attribution",
        ["v1", "tenants", _, "attribution", "compare"] => "attribution_compare",
        ["v1", "tenants"] => "tenants",
        ["v1", "tenants", _, "customers"] => "customers",
        ["v1", "tenants", _, "customers", _] => "customer",
        ["v1", "tenants", _, "journeys", _, "performance"] => "journey_performance",
        ["v1", "tenants", _, "campaigns"] => "campaigns",
        ["v1", "tenants", _, "cohorts"] => "cohorts",
        ["v1", "tenants", _, "variants"] => "variants",
        ["v1", "tenants", _, "registry", ..] => "registry",
        ["v1", "cluster"] => "cluster",
        ["v1", "collect", _] => "collect",
        ["internal", ..] => "internal",
        ["ui", ..] => "ui",
        _ => "other",
    }
}

pub async fn route(state: Arc<AppState>, parts: Parts, body: Bytes) -> Result<Response<Full<Bytes>>, ApiError> {
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let get = parts.method == Method::GET;
    match (segs.as_slice(), get) {
        (["health", "live"], true) => Ok(json_response(StatusCode::OK, &json!({"status": "live", "node_id": state.node_id}))),
        (["health", "ready"], true) => {
            if state.status.ready() && state.status.topic_partitions.load(Ordering::Relaxed) > 0 {
                Ok(json_response(StatusCode::OK, &json!({"status": "ready", "node_id": state.node_id})))
            } else if let Some((p, e)) = state.status.storage_stalled().into_iter().next() {
                Err(ApiError::new(ErrorCode::Unavailable, format!("partition {p} is stalled on a failing storage write: {e}")))
            } else {
                Err(ApiError::new(ErrorCode::Unavailable, "not every owned partition is active yet"))
            }
        }
        (["metrics"], true) => Ok(Response::builder()
            .status(StatusCode::OK)
            .header(hyper::header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(state.metrics.render())))
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?),
        (["v1", "cluster"], true) => {
            state.auth.check(authorization(&parts), Target::Admin)?;
            Params::parse(query.as_deref(), &[])?;
            Ok(json_response(StatusCode::OK, &cluster(&state)))
        }
        (["v1", "tenants"], true) => {
            state.auth.check(authorization(&parts), Target::Admin)?;
            super::listing::tenants(state.clone(), &parts, query).await
        }
        (["internal", "v1", rest @ ..], _) => {
            state.auth.check(authorization(&parts), Target::Admin)?;
            super::snapshots::route(state.clone(), &parts.method, rest, query.as_deref()).await
        }
        (["v1", "tenants", t, rest @ ..], _) => {
            let tenant = path_segment(t);
            state.auth.check(authorization(&parts), Target::Tenant(&tenant))?;
            if !touchline_actors::domain::decode::valid_tenant(&tenant) {
                return Err(ApiError::param("tenant", format!("{tenant:?} does not match ^[a-z0-9][a-z0-9_-]{{0,63}}$")));
            }
            if let Some(r) = super::forward::maybe_forward(&state, &tenant, &parts, &body).await? {
                return Ok(r);
            }
            let rest: Vec<String> = rest.iter().map(|s| path_segment(s)).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            // Reports answer JSON or CSV (`format`, `Accept`): one answer, two renderings.
            let mut query = query;
            let out = super::csv::Output::negotiate(&parts.headers, &mut query, &tenant, &rest)?;
            match (rest.as_slice(), get) {
                (["attribution"], true) => out.reply(attribution(state, tenant, query, false).await?),
                (["attribution", "compare"], true) => out.reply(attribution(state, tenant, query, true).await?),
                (["customers"], true) => super::listing::customers(state, tenant, query).await,
                (["customers", id], true) => customer(state, tenant, id.to_string(), query).await,
                (["customers", id], false) if parts.method == Method::DELETE => super::insights::erase(state, tenant, id.to_string(), query).await,
                (["campaigns"], true) => out.reply(super::insights::campaigns(state, tenant, query).await?),
                (["cohorts"], true) => out.reply(super::insights::cohorts(state, tenant, query).await?),
                (["variants"], true) => super::insights::variants(state, tenant, query).await,
                (["journeys", j], true) | (["journeys", j, "performance"], true) => out.reply(journey(state, tenant, j.to_string(), query).await?),
                (["registry", sub @ ..], _) => super::registry::route(state, tenant, &parts, sub, query, body).await,
                _ => Err(ApiError::new(ErrorCode::NotFound, format!("no route for {} {path}", parts.method))),
            }
        }
        // The report page needs no token; its /v1 calls carry the user's.
        (["ui", ..], true) => super::ui::serve(&parts),
        (["v1", "collect", call], _) => super::collect::route(state, parts, body, call).await,
        (["v1", ..], _) => {
            state.auth.check(authorization(&parts), Target::Admin)?;
            Err(ApiError::new(ErrorCode::NotFound, format!("no route for {} {path}", parts.method)))
        }
        _ => Err(ApiError::new(ErrorCode::NotFound, format!("no route for {} {path}", parts.method))),
    }
}

fn authorization(parts: &Parts) -> Option<&[u8]> {
    parts.headers.get(hyper::header::AUTHORIZATION).map(|v| v.as_bytes())
}

/// The owned partition of `tenant`, or 503 while it is not servable here.
pub(super) fn owner_partition(state: &AppState, tenant: &str) -> Result<(u16, Option<Ts>), ApiError> {
    let n = state.status.topic_partitions.load(Ordering::Relaxed) as i32;
    if n <= 0 {
        return Err(ApiError::new(ErrorCode::Unavailable, "topic metadata not loaded yet"));
    }
    let p = partition_for(tenant, n);
    match state.status.get(p) {
        Some(st) if st.state() == PartitionState::Active => Ok((p as u16, st.watermark())),
        Some(_) => Err(ApiError::new(ErrorCode::Unavailable, format!("partition {p} is restoring"))),
        None => Err(ApiError::new(ErrorCode::Unavailable, format!("partition {p} of tenant {tenant} is not owned by this node"))),
    }
}

pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::new(ErrorCode::Internal, format!("query task failed: {e}")))?
}

fn rows_json(rows: &[Row]) -> Value {
    Value::Array(rows.iter().map(|r| json!({"key": r.key, "credit": r.credit, "value": r.value})).collect())
}

pub(super) const ATTR_PARAMS: &[&str] = &["model", "from", "to", "group_by", "lookback_days", "half_life_hours", "currency", "weights", "identity"];

async fn attribution(state: Arc<AppState>, tenant: String, query: Option<String>, compare: bool) -> Result<Value, ApiError> {
    // `compare` ignores a `model` parameter (every model is answered).
    let p = Params::parse(query.as_deref(), ATTR_PARAMS)?;
    let model = if compare { Model::Linear } else { p.model(Model::Linear)? };
    let (from, to) = p.range(super::params::DEFAULT_RANGE_DAYS, state.limits.max_query_range_days)?;
    let q = p.attribution_query(from, to, None, state.default_lookback_days)?;
    let identity = p.identity()?;
    if !compare {
        require_weights(model, &q.params)?;
    }
    let (partition, watermark) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let paths = state.paths.clone();
    let t = tenant.clone();
    let mut q2 = q.clone();
    blocking(move || {
        q2.horizon = state.horizon(partition, &t)?;
        let mut head = json!({
            "tenant": t, "group_by": q2.group_by.as_str(),
            "from": q2.from.to_string(), "to": q2.to.to_string(), "lookback_days": q2.lookback_days,
            "consumed_through": watermark.map(|w| w.to_string()),
        });
        // Every model is answered from the paths cache (one entry per query
        // shape, kept up to date incrementally), but over final persons joined
        // by probabilistic links, which are computed afresh.
        let view = state.final_persons(partition, &t, identity, q2.horizon)?;
        let report = |m: Model| -> Result<_, ApiError> {
            Ok(match &view {
                Some(v) => query::attribution::attribution_in(&store, partition, &t, m, &q2, Some(v))?,
                None => paths.report(&store, partition, &t, m, &q2)?,
            })
        };
        if compare {
            let mut models = serde_json::Map::new();
            let mut totals = (0u64, 0.0f64, None);
            for m in Model::ALL {
                if m == Model::Custom && q2.params.custom_weights.is_none() {
                    continue;
                }
                let r = report(m)?;
                totals = (r.conversions, r.conversion_value, r.currency);
                models.insert(m.as_str().to_string(), rows_json(&r.rows));
            }
            head["conversions"] = json!(totals.0);
            head["conversion_value"] = json!(totals.1);
            head["currency"] = json!(totals.2);
            head["models"] = Value::Object(models);
        } else {
            let r = report(model)?;
            head["model"] = json!(model.as_str());
            head["conversions"] = json!(r.conversions);
            head["conversion_value"] = json!(r.conversion_value);
            head["currency"] = json!(r.currency);
            head["rows"] = rows_json(&r.rows);
            if model == Model::TimeDecay {
                head["half_life_hours"] = json!(q2.params.half_life_secs / 3600.0);
            }
        }
        super::enrich::enrich(&store, partition, &t, &mut head)?;
        Ok(head)
    })
    .await
}

async fn customer(state: Arc<AppState>, tenant: String, id: String, query: Option<String>) -> Result<Response<Full<Bytes>>, ApiError> {
    let p = Params::parse(query.as_deref(), &["lookback_days", "half_life_hours", "weights", "group_by", "identity"])?;
    let identity = p.identity()?;
    let mut q = CustomerQuery {
        lookback_days: p.int("lookback_days", 0, 3650)?.unwrap_or(state.default_lookback_days),
        params: p.model_params()?,
        group_by: p.group_by("group_by")?,
        horizon: None,
    };
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::param("id", "must be 1..256 bytes"));
    }
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let body = blocking(move || {
        q.horizon = state.horizon(partition, &tenant)?;
        let view = state.final_persons(partition, &tenant, identity, q.horizon)?;
        Ok(query::customer::customer_in(&store, partition, &tenant, &id, &q, view.as_deref())?)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

async fn journey(state: Arc<AppState>, tenant: String, journey: String, query: Option<String>) -> Result<Value, ApiError> {
    let p = Params::parse(query.as_deref(), &["granularity", "from", "to"])?;
    let g = match p.str("granularity") {
        None => Granularity::Hour,
        Some(v) => Granularity::parse(v).ok_or_else(|| ApiError::param("granularity", format!("{v:?} is not one of 5s, hour, day, week")))?,
    };
    let (from, to) = p.range(super::params::DEFAULT_RANGE_DAYS, state.limits.max_query_range_days)?;
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let lookback = state.default_lookback_days;
    blocking(move || {
        super::listing::seen(&state, partition, &tenant)?;
        let horizons = state.journey_horizons(partition, &tenant)?;
        // Journeys use the final persons (attribution.md, Probabilistic links 6).
        let view = state.final_persons(partition, &tenant, Default::default(), horizons.retention)?;
        let mut body = query::journey::performance_in(&store, partition, &tenant, &journey, g, from, to, lookback, horizons, view.as_deref())?;
        super::enrich::enrich(&store, partition, &tenant, &mut body)?;
        Ok(body)
    })
    .await
}

fn cluster(state: &AppState) -> Value {
    super::cluster_view::view(state)
}

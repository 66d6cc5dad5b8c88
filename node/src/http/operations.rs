//! The operations the route table dispatches to, one per described route, each
//! with its `#[utoipa::path]` annotation (parameters, answers, errors,
//! security): the OpenAPI description is these annotations. An operation
//! reads its path and query parameters from the `Call` and runs the handler.

#![allow(dead_code)] // the parameter structs below only describe; `Call` parses

use super::collect::{self, CostsImported, Success};
use super::error::{ApiError, ClientErrors, ServerErrors};
use super::openapi::{BucketName, CohortName, FormatName, GranularityName, GroupByName, IdentityName, ModelName, ScopeName};
pub use super::registry_ops::*;
use super::routes::{Call, Reply};
use super::{json_response, AppState};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use touchline_actors::query::campaigns::CampaignsAnswer;
use touchline_actors::query::cohorts::CohortsAnswer;
use touchline_actors::query::customer::CustomerAnswer;
use touchline_actors::query::journey::JourneyAnswer;
use touchline_actors::query::variants::VariantsAnswer;

/// `{"status", "node_id"}` of the health probes.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(value_type = String, pattern = "^(live|ready)$")]
    pub status: &'static str,
    pub node_id: String,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct TenantPath {
    /// The tenant (`^[a-z0-9][a-z0-9_-]{0,63}$`; another is a 400).
    #[param(example = "acme")]
    tenant: String,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct CustomerPath {
    /// Any linked `customer_id` or `user_id` (1..256 bytes).
    #[param(example = "cust-0001")]
    id: String,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct JourneyPath {
    /// The journey id.
    #[param(example = "onboarding")]
    journey: String,
}

/// `[from, to)`: RFC 3339 date-times or dates (`YYYY-MM-DD`, midnight UTC).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RangeQuery {
    /// Inclusive start (default: `to` minus 30 days; all time for campaigns and cohorts).
    #[param(example = "2026-10-01")]
    from: Option<String>,
    /// Exclusive end (default: now; all time for campaigns and cohorts). At most `limits.max_query_range_days` after `from`.
    #[param(example = "2026-11-01")]
    to: Option<String>,
}

/// How conversions are credited.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CreditQuery {
    /// Days before a conversion whose touchpoints count (default: `engine.lookback_days`).
    #[param(minimum = 0, maximum = 3650)]
    lookback_days: Option<i64>,
    /// The `time_decay` half-life in hours (default 168).
    #[param(exclusive_minimum = 0, maximum = 1e300)]
    half_life_hours: Option<f64>,
    /// The `custom` model's first, middle and last weights, `F,M,L`.
    #[param(example = "0.4,0.2,0.4")]
    weights: Option<String>,
    /// Default `all`.
    #[param(inline)]
    identity: Option<IdentityName>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ModelQuery {
    /// Default `linear`.
    #[param(inline)]
    model: Option<ModelName>,
    /// Only conversions in this currency (`[A-Z]{3}`; default: the tenant's first).
    #[param(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct GroupByQuery {
    /// Default `channel`.
    #[param(inline)]
    group_by: Option<GroupByName>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FormatQuery {
    /// Default `json`, or `csv` when `Accept` names `text/csv`.
    #[param(inline)]
    format: Option<FormatName>,
}

#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "The process serves HTTP.", body = Health), ServerErrors))]
pub async fn health_live(state: Arc<AppState>, _: Call) -> Reply {
    Ok(json_response(StatusCode::OK, &Health { status: "live", node_id: state.node_id.clone() }))
}

#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, description = "Every owned partition is active (else 503).", body = Health), ServerErrors))]
pub async fn health_ready(state: Arc<AppState>, _: Call) -> Reply {
    if state.status.ready() && state.status.topic_partitions.load(Ordering::Relaxed) > 0 {
        Ok(json_response(StatusCode::OK, &Health { status: "ready", node_id: state.node_id.clone() }))
    } else if let Some((p, e)) = state.status.storage_stalled().into_iter().next() {
        Err(ApiError::new(super::error::ErrorCode::Unavailable, format!("partition {p} is stalled on a failing storage write: {e}")))
    } else {
        Err(ApiError::new(super::error::ErrorCode::Unavailable, "not every owned partition is active yet"))
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text exposition.", body = String, content_type = "text/plain"), ServerErrors))]
pub async fn metrics(state: Arc<AppState>, _: Call) -> Reply {
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(Full::new(Bytes::from(state.metrics.render())))
        .map_err(|e| ApiError::new(super::error::ErrorCode::Internal, e.to_string()))
}

#[utoipa::path(get, path = "/openapi.json", tag = "health", responses((status = 200, description = "This description (OpenAPI 3.1).", body = Object), ServerErrors))]
pub async fn openapi(_: Arc<AppState>, _: Call) -> Reply {
    Ok(json_response(StatusCode::OK, &*super::openapi::JSON))
}

#[utoipa::path(get, path = "/v1/cluster", tag = "cluster", security(("bearer" = [])), responses((status = 200, description = "Members, partitions and standbys (admin token).", body = super::cluster_view::ClusterAnswer), ClientErrors, ServerErrors))]
pub async fn cluster(state: Arc<AppState>, c: Call) -> Reply {
    c.params()?;
    Ok(json_response(StatusCode::OK, &super::cluster_view::view(&state)))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TenantsQuery {
    /// Default `cluster` (503 while a partition has no active owner that answered).
    #[param(inline)]
    scope: Option<ScopeName>,
}

#[utoipa::path(get, path = "/v1/tenants", tag = "cluster", security(("bearer" = [])), params(TenantsQuery),
    responses((status = 200, description = "Every tenant the cluster has seen (admin token).", body = super::listing::TenantsAnswer), ClientErrors, ServerErrors))]
pub async fn tenants(state: Arc<AppState>, c: Call) -> Reply {
    let p = c.params()?;
    super::listing::tenants(state, &c.parts, p).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/attribution", tag = "queries", security(("bearer" = [])),
    params(TenantPath, ModelQuery, RangeQuery, GroupByQuery, CreditQuery, FormatQuery),
    responses((status = 200, description = "Credit per key under one model.", content((super::reports::AttributionAnswer = "application/json"), (String = "text/csv"))), ClientErrors, ServerErrors))]
pub async fn attribution(state: Arc<AppState>, c: Call) -> Reply {
    c.out.reply(&super::reports::attribution(state, c.param("tenant"), c.params()?).await?)
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/attribution/compare", tag = "queries", security(("bearer" = [])),
    params(TenantPath, ModelQuery, RangeQuery, GroupByQuery, CreditQuery, FormatQuery),
    responses((status = 200, description = "Every model side by side (`model` is ignored).", content((super::reports::CompareAnswer = "application/json"), (String = "text/csv"))), ClientErrors, ServerErrors))]
pub async fn compare(state: Arc<AppState>, c: Call) -> Reply {
    c.out.reply(&super::reports::compare(state, c.param("tenant"), c.params()?).await?)
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct BucketQuery {
    /// Default `day`: buckets of 1 (or 7) days from `from`, the last cut at `to`; more than `limits.max_series_buckets` is a 400.
    #[param(inline)]
    bucket: Option<BucketName>,
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/attribution/series", tag = "queries", security(("bearer" = [])),
    params(TenantPath, ModelQuery, RangeQuery, GroupByQuery, BucketQuery, CreditQuery, FormatQuery),
    responses((status = 200, description = "Credit per key in each day or week of the range (by conversion time) under one rule model; each bucket equals `attribution` over its range. `markov` and `shapley` are a 400.", content((super::series::SeriesAnswer = "application/json"), (String = "text/csv"))), ClientErrors, ServerErrors))]
pub async fn series(state: Arc<AppState>, c: Call) -> Reply {
    c.out.reply(&super::series::series(state, c.param("tenant"), c.params()?).await?)
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CustomersQuery {
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/customers", tag = "queries", security(("bearer" = [])), params(TenantPath, CustomersQuery),
    responses((status = 200, description = "The tenant's persons, paged in a stable order.", body = super::listing::CustomersPage), ClientErrors, ServerErrors))]
pub async fn customers(state: Arc<AppState>, c: Call) -> Reply {
    Ok(json_response(StatusCode::OK, &super::listing::customers(state, c.param("tenant"), c.params()?).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/customers/{id}", tag = "queries", security(("bearer" = [])),
    params(TenantPath, CustomerPath, CreditQuery, GroupByQuery),
    responses((status = 200, description = "The stitched person, its timeline and each conversion's credit.", body = CustomerAnswer), ClientErrors, ServerErrors))]
pub async fn customer(state: Arc<AppState>, c: Call) -> Reply {
    let answer = super::reports::customer(state, c.param("tenant"), c.param("id"), c.params()?).await?;
    Ok(json_response(StatusCode::OK, &answer))
}

#[utoipa::path(delete, path = "/v1/tenants/{tenant}/customers/{id}", tag = "queries", security(("bearer" = [])), params(TenantPath, CustomerPath),
    responses((status = 202, description = "The erasure request is recorded (applied by the owner in order).", body = super::insights::Accepted), ClientErrors, ServerErrors))]
pub async fn erase(state: Arc<AppState>, c: Call) -> Reply {
    c.params()?;
    super::insights::erase(state, c.param("tenant"), c.param("id")).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/campaigns", tag = "queries", security(("bearer" = [])),
    params(TenantPath, ModelQuery, RangeQuery, CreditQuery, FormatQuery),
    responses((status = 200, description = "Spend, attributed revenue and ROAS per campaign.", content((CampaignsAnswer = "application/json"), (String = "text/csv"))), ClientErrors, ServerErrors))]
pub async fn campaigns(state: Arc<AppState>, c: Call) -> Reply {
    c.out.reply(&super::insights::campaigns(state, c.param("tenant"), c.params()?).await?)
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CohortsQuery {
    /// Default `week`.
    #[param(inline)]
    cohort: Option<CohortName>,
    /// The first touchpoint's dimension (default `channel`).
    #[param(inline)]
    by: Option<GroupByName>,
    /// Only conversions in this currency (default: the tenant's first).
    #[param(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/cohorts", tag = "queries", security(("bearer" = [])),
    params(TenantPath, CohortsQuery, RangeQuery, FormatQuery),
    responses((status = 200, description = "Persons by first-touch day or week × dimension.", content((CohortsAnswer = "application/json"), (String = "text/csv"))), ClientErrors, ServerErrors))]
pub async fn cohorts(state: Arc<AppState>, c: Call) -> Reply {
    c.out.reply(&super::insights::cohorts(state, c.param("tenant"), c.params()?).await?)
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/variants", tag = "queries", security(("bearer" = [])), params(TenantPath),
    responses((status = 200, description = "Per-variant performance from personalization events.", body = VariantsAnswer), ClientErrors, ServerErrors))]
pub async fn variants(state: Arc<AppState>, c: Call) -> Reply {
    c.params()?;
    Ok(json_response(StatusCode::OK, &super::insights::variants(state, c.param("tenant")).await?))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct JourneyQuery {
    /// Default `hour`.
    #[param(inline)]
    granularity: Option<GranularityName>,
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/journeys/{journey}/performance", tag = "queries", security(("bearer" = [])),
    params(TenantPath, JourneyPath, JourneyQuery, RangeQuery, FormatQuery),
    responses((status = 200, description = "Touches, clicks, conversions and revenue per composite key and bucket.", content((JourneyAnswer = "application/json"), (String = "text/csv"))), ClientErrors, ServerErrors))]
pub async fn journey(state: Arc<AppState>, c: Call) -> Reply {
    c.out.reply(&super::reports::journey(state, c.param("tenant"), c.param("journey"), c.params()?).await?)
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/journeys/{journey}", tag = "queries", security(("bearer" = [])),
    params(TenantPath, JourneyPath, JourneyQuery, RangeQuery, FormatQuery),
    responses((status = 200, description = "The same as `.../performance`.", content((JourneyAnswer = "application/json"), (String = "text/csv"))), ClientErrors, ServerErrors))]
pub async fn journey_short(state: Arc<AppState>, c: Call) -> Reply {
    journey(state, c).await
}

/// What every Segment message carries (docs/collector.md).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Common {
    /// The event id re-sends are deduplicated by.
    #[schema(min_length = 1, max_length = 128)]
    message_id: String,
    /// When it happened (else `sentAt`, `originalTimestamp`, the receive time); at most 7 days ahead.
    #[schema(format = DateTime)]
    timestamp: Option<String>,
    #[schema(format = DateTime)]
    sent_at: Option<String>,
    #[schema(format = DateTime)]
    original_timestamp: Option<String>,
    /// Device context (`ip`, `userAgent`, `page`, `campaign`, ...).
    #[schema(value_type = Option<Object>)]
    context: Option<serde_json::Value>,
    /// The write key, when not given as HTTP Basic user.
    write_key: Option<String>,
}

/// `track`, `page`, `screen`: a touchpoint or conversion of a visitor.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Activity {
    #[serde(flatten)]
    common: Common,
    /// The visitor's device id (`userId` alone is enough too).
    #[schema(min_length = 1, max_length = 256)]
    anonymous_id: String,
    #[schema(min_length = 1, max_length = 256)]
    user_id: Option<String>,
    /// page and screen: the name.
    name: Option<String>,
    #[schema(value_type = Option<Object>)]
    properties: Option<serde_json::Value>,
}

/// `track`: an activity with its event name.
#[derive(serde::Deserialize, utoipa::ToSchema)]
struct Track {
    #[serde(flatten)]
    activity: Activity,
    /// The event name (a conversion when mapped to one, docs/collector.md).
    #[schema(min_length = 1)]
    event: String,
}

/// `identify`: a login linking `anonymousId` (the device) to `userId`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Identify {
    #[serde(flatten)]
    common: Common,
    #[schema(min_length = 1, max_length = 256)]
    user_id: String,
    #[schema(min_length = 1, max_length = 256)]
    anonymous_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    traits: Option<serde_json::Value>,
}

/// `alias`: `previousId` and `userId` are one person.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Alias {
    #[serde(flatten)]
    common: Common,
    #[schema(min_length = 1, max_length = 256)]
    user_id: String,
    #[schema(min_length = 1, max_length = 256)]
    previous_id: String,
}

/// A batch item: any message with its `type`.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Message {
    Track(Track),
    Page(Activity),
    Screen(Activity),
    Identify(Identify),
    Alias(Alias),
}

/// Up to 500 KB of messages, all-or-nothing.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Batch {
    batch: Vec<Message>,
    /// Merged into each message's `context` (the message's own keys win).
    #[schema(value_type = Option<Object>)]
    context: Option<serde_json::Value>,
    write_key: Option<String>,
}

/// A daily cost row (`date`, `campaign_id`, `cost` and `currency` required).
#[derive(serde::Deserialize, utoipa::ToSchema)]
struct CostRow {
    #[schema(format = Date)]
    date: String,
    #[schema(min_length = 1, max_length = 256)]
    campaign_id: String,
    #[schema(minimum = 0)]
    cost: f64,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    source: Option<String>,
    medium: Option<String>,
    #[schema(minimum = 0)]
    impressions: Option<f64>,
    #[schema(minimum = 0)]
    clicks: Option<f64>,
}

/// JSON cost rows: an array, or an object with `rows` (and `writeKey`).
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
enum CostRows {
    Rows(Vec<CostRow>),
    Object {
        rows: Vec<CostRow>,
            write_key: Option<String>,
    },
}

/// Declares the operation of one collector call.
macro_rules! collect_op {
    ($op:ident, $call:literal, $body:ty, $what:literal) => {
        #[utoipa::path(post, path = concat!("/v1/collect/", $call), tag = "collector", security(("writeKey" = [])),
            request_body(content = $body, content_type = "application/json"),
            responses((status = 200, description = $what, body = Success), ClientErrors, ServerErrors))]
        pub async fn $op(state: Arc<AppState>, c: Call) -> Reply {
            collect::route(state, c.parts, c.body, $call).await
        }
    };
}

collect_op!(collect_track, "track", Track, "The event is acknowledged by Kafka.");
collect_op!(collect_identify, "identify", Identify, "The identify is acknowledged by Kafka.");
collect_op!(collect_page, "page", Activity, "The page view is acknowledged by Kafka.");
collect_op!(collect_screen, "screen", Activity, "The screen view is acknowledged by Kafka.");
collect_op!(collect_alias, "alias", Alias, "The alias is acknowledged by Kafka.");
collect_op!(collect_batch, "batch", Batch, "Every message is acknowledged by Kafka.");

#[utoipa::path(post, path = "/v1/collect/costs", tag = "collector", security(("writeKey" = [])),
    request_body(content((CostRows = "application/json"), (String = "text/csv")), description = "CSV with a header row, or JSON rows; all-or-nothing."),
    responses((status = 200, description = "Every daily total is acknowledged by Kafka.", body = CostsImported), ClientErrors, ServerErrors))]
pub async fn collect_costs(state: Arc<AppState>, c: Call) -> Reply {
    collect::route(state, c.parts, c.body, "costs").await
}

/// The CORS preflight of a collector call (not described).
pub async fn collect_preflight(_: Arc<AppState>, _: Call) -> Reply {
    Ok(collect::preflight())
}

/// The report page's assets (not described).
pub async fn ui(_: Arc<AppState>, c: Call) -> Reply {
    super::ui::serve(&c.parts)
}

/// Node-to-node snapshot transfer (admin; not described).
pub async fn internal(state: Arc<AppState>, c: Call) -> Reply {
    let rest = c.param("rest");
    let segs: Vec<&str> = rest.split('/').collect();
    super::snapshots::route(state, &c.parts.method, &segs, c.query.as_deref()).await
}

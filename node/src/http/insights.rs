//! Tenant endpoints beyond attribution: campaigns (ROAS), cohorts, variant
//! performance, and `DELETE customers/{id}`, which records an `erasure_request`
//! through Kafka so the erasure is applied by the partition's owner in order and
//! survives any rebalance.

use super::error::{ApiError, ErrorCode};
use super::params::{require_weights, Params};
use super::reports::{blocking, owner_partition};
use super::{json_response, AppState};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use touchline_actors::domain::models::Model;
use touchline_actors::domain::window::Granularity;
use touchline_actors::domain::{GroupBy, Ts};
use touchline_actors::query::campaigns::CampaignsAnswer;
use touchline_actors::query::cohorts::CohortsAnswer;
use touchline_actors::query::variants::VariantsAnswer;
use touchline_actors::query::{self, cohorts::CohortQuery};

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// `campaigns`: attribution query parameters (no `group_by`); range default all time.
pub async fn campaigns(state: Arc<AppState>, tenant: String, p: Params) -> Result<CampaignsAnswer, ApiError> {
    let model = p.model(Model::Linear)?;
    let (from, to) = p.range_all()?;
    let mut q = p.attribution_query(from, to, Some(GroupBy::Campaign), state.default_lookback_days)?;
    let p_identity = p.identity()?;
    require_weights(model, &q.params)?;
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    blocking(move || {
        q.horizon = state.horizon(partition, &tenant)?;
        let view = state.final_persons(partition, &tenant, p_identity, q.horizon)?;
        // As the attribution route: the report cache unless probabilistic links join persons.
        let mut body = match view {
            Some(v) => query::campaigns::campaigns_in(&store, partition, &tenant, model, &q, Some(&v))?,
            None => {
                let q = query::campaigns::by_campaign(&q);
                let report = state.paths.report(&store, partition, &tenant, model, &q)?;
                query::campaigns::campaigns_of(&store, partition, &tenant, model, &q, report)?
            }
        };
        super::enrich::label(&store, partition, &tenant, body.campaigns.iter_mut(), None)?;
        Ok(body)
    })
    .await
}

/// `cohorts`: `cohort` (week | day), `by` (a grouping dimension), `from`, `to`, `currency`.
pub async fn cohorts(state: Arc<AppState>, tenant: String, p: Params) -> Result<CohortsAnswer, ApiError> {
    let cohort = match p.str("cohort") {
        None | Some("week") => Granularity::Week,
        Some("day") => Granularity::Day,
        Some(v) => return Err(ApiError::param("cohort", format!("{v:?} is not one of week, day"))),
    };
    let (from, to) = p.range_all()?;
    let mut q = CohortQuery { cohort, by: p.group_by("by")?, from, to, currency: p.currency()?, horizon: None };
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    blocking(move || {
        q.horizon = state.horizon(partition, &tenant)?;
        // Cohorts use the final persons (attribution.md, Probabilistic links 6).
        let view = state.final_persons(partition, &tenant, Default::default(), q.horizon)?;
        Ok(match view {
            Some(v) => query::cohorts::cohorts_in(&store, partition, &tenant, &q, Some(&v))?,
            // Over the deterministic persons: kept up to date in the report cache.
            None => state.paths.cohorts(&store, partition, &tenant, &q)?,
        })
    })
    .await
}

/// `variants`: per-variant performance from personalization events.
pub async fn variants(state: Arc<AppState>, tenant: String) -> Result<VariantsAnswer, ApiError> {
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    blocking(move || {
        super::listing::seen(&state, partition, &tenant)?;
        Ok(query::variants::variants(&store, partition, &tenant)?)
    })
    .await
}

/// The answer of an accepted erasure.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    #[schema(value_type = String, pattern = "^accepted$")]
    pub status: &'static str,
    /// The `erasure_request` event's id.
    pub event_id: String,
}

/// `DELETE customers/{id}`: produces an `erasure_request` for `id` into the
/// tenant's partition and answers 202 once the broker has it.
pub async fn erase(state: Arc<AppState>, tenant: String, id: String) -> Reply {
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::param("id", "must be 1..256 bytes"));
    }
    let producer = state.events.as_ref().ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "no event producer on this node"))?;
    let event_id = format!("erasure-{:032x}", rand::random::<u128>());
    let event = json!({
        "event_id": event_id, "tenant_id": tenant, "event_type": "erasure_request",
        "customer_id": id, "timestamp": Ts::now().to_string(),
    });
    let payload = serde_json::to_vec(&event).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    producer
        .send(&tenant, &payload, Duration::from_millis(state.limits.request_timeout_ms))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("could not record the erasure: {e}")))?;
    Ok(json_response(StatusCode::ACCEPTED, &Accepted { status: "accepted", event_id }))
}

//! The attribution, compare, customer and journey-performance queries and their
//! answers. Reads run on the blocking pool against committed RocksDB state of
//! the partition that owns the tenant.

use super::error::{ApiError, ErrorCode};
use super::params::{require_weights, Params};
use super::AppState;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use touchline_actors::domain::models::Model;
use touchline_actors::domain::report::Row;
use touchline_actors::domain::routing::partition_for;
use touchline_actors::domain::window::Granularity;
use touchline_actors::domain::Ts;
use touchline_actors::query::customer::{CustomerAnswer, CustomerQuery};
use touchline_actors::query::journey::JourneyAnswer;
use touchline_actors::query;
use touchline_actors::state::registry::RegistryLabels;
use touchline_actors::status::PartitionState;

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

/// What an attribution answer and a compare answer share.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReportHead {
    pub tenant: String,
    pub group_by: &'static str,
    /// RFC 3339, inclusive.
    pub from: String,
    /// RFC 3339, exclusive.
    pub to: String,
    pub lookback_days: i64,
    /// The owner's watermark: events up to it are in the answer (null before any).
    pub consumed_through: Option<String>,
    pub conversions: u64,
    pub conversion_value: f64,
    /// The report currency (null: no conversion yet).
    pub currency: Option<String>,
}

/// One key's attributed conversions (`credit`) and value.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    pub key: String,
    pub credit: f64,
    pub value: f64,
    #[serde(flatten)]
    pub labels: RegistryLabels,
}

/// `GET /v1/tenants/{tenant}/attribution`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AttributionAnswer {
    #[serde(flatten)]
    pub head: ReportHead,
    pub model: &'static str,
    pub rows: Vec<ReportRow>,
    /// Only for `time_decay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = f64, required = false)]
    pub half_life_hours: Option<f64>,
}

/// `GET /v1/tenants/{tenant}/attribution/compare`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CompareAnswer {
    #[serde(flatten)]
    pub head: ReportHead,
    /// Model name → its rows (`custom` only with `weights`).
    pub models: BTreeMap<&'static str, Vec<ReportRow>>,
}

pub(super) fn report_rows(rows: &[Row]) -> Vec<ReportRow> {
    rows.iter().map(|r| ReportRow { key: r.key.clone(), credit: r.credit, value: r.value, labels: RegistryLabels::default() }).collect()
}

/// The attribution report of one model (`compare`: `None`, every model).
async fn report(state: Arc<AppState>, tenant: String, p: Params, model: Option<Model>) -> Result<(ReportHead, Vec<(Model, Vec<ReportRow>)>, Option<f64>), ApiError> {
    let (from, to) = p.range(super::params::DEFAULT_RANGE_DAYS, state.limits.max_query_range_days)?;
    let q = p.attribution_query(from, to, None, state.default_lookback_days)?;
    let identity = p.identity()?;
    if let Some(model) = model {
        require_weights(model, &q.params)?;
    }
    let (partition, watermark) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let paths = state.paths.clone();
    let mut q2 = q.clone();
    blocking(move || {
        q2.horizon = state.horizon(partition, &tenant)?;
        // Every model is answered from the paths cache (one entry per query
        // shape, kept up to date incrementally), over the final persons of
        // the stored probabilistic links too; links evaluated from the
        // signals (settings changed, not rebuilt yet) are computed afresh.
        let view = state.final_persons(partition, &tenant, identity, q2.horizon)?;
        let report = |m: Model| -> Result<_, ApiError> {
            Ok(match &view {
                Some(v) if !v.stored => query::attribution::attribution_in(&store, partition, &tenant, m, &q2, Some(v))?,
                v => paths.report_in(&store, partition, &tenant, m, &q2, v.as_deref())?,
            })
        };
        let models: Vec<Model> = match model {
            Some(m) => vec![m],
            None => Model::ALL.into_iter().filter(|m| *m != Model::Custom || q2.params.custom_weights.is_some()).collect(),
        };
        let mut out = Vec::with_capacity(models.len());
        let mut totals = (0u64, 0.0f64, None);
        for m in models {
            let r = report(m)?;
            totals = (r.conversions, r.conversion_value, r.currency);
            out.push((m, report_rows(&r.rows)));
        }
        super::enrich::label(&store, partition, &tenant, out.iter_mut().flat_map(|(_, rows)| rows.iter_mut()), None)?;
        let head = ReportHead {
            tenant: tenant.clone(),
            group_by: q2.group_by.as_str(),
            from: q2.from.to_string(),
            to: q2.to.to_string(),
            lookback_days: q2.lookback_days,
            consumed_through: watermark.map(|w| w.to_string()),
            conversions: totals.0,
            conversion_value: totals.1,
            currency: totals.2,
        };
        Ok((head, out, Some(q2.params.half_life_secs / 3600.0)))
    })
    .await
}

pub async fn attribution(state: Arc<AppState>, tenant: String, p: Params) -> Result<AttributionAnswer, ApiError> {
    let model = p.model(Model::Linear)?;
    let (head, mut models, half_life) = report(state, tenant, p, Some(model)).await?;
    let rows = models.pop().map(|(_, rows)| rows).unwrap_or_default();
    Ok(AttributionAnswer { head, model: model.as_str(), rows, half_life_hours: half_life.filter(|_| model == Model::TimeDecay) })
}

/// Every model side by side (a `model` parameter is ignored).
pub async fn compare(state: Arc<AppState>, tenant: String, p: Params) -> Result<CompareAnswer, ApiError> {
    let (head, models, _) = report(state, tenant, p, None).await?;
    Ok(CompareAnswer { head, models: models.into_iter().map(|(m, rows)| (m.as_str(), rows)).collect() })
}

pub async fn customer(state: Arc<AppState>, tenant: String, id: String, p: Params) -> Result<CustomerAnswer, ApiError> {
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
    blocking(move || {
        q.horizon = state.horizon(partition, &tenant)?;
        let view = state.final_persons(partition, &tenant, identity, q.horizon)?;
        Ok(query::customer::customer_in(&store, partition, &tenant, &id, &q, view.as_deref())?)
    })
    .await
}

pub async fn journey(state: Arc<AppState>, tenant: String, journey: String, p: Params) -> Result<JourneyAnswer, ApiError> {
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
        let mut answer = match view {
            Some(v) => query::journey::performance_in(&store, partition, &tenant, &journey, g, from, to, lookback, horizons, Some(&v))?,
            // Over the deterministic persons: conversions kept up to date in the report cache.
            None => state.paths.journey(&store, partition, &tenant, &journey, g, (from, to), lookback, horizons)?,
        };
        super::enrich::journey(&store, partition, &tenant, &mut answer)?;
        Ok(answer)
    })
    .await
}

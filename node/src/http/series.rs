//! `GET /v1/tenants/{tenant}/attribution/series`: one rule model's credit per
//! key in each day or week of a range (the report page's "one model over
//! time"), answered in one pass from the report cache entry of the whole
//! range (`touchline_actors::query::series`). Each bucket equals the
//! attribution report over that bucket's range; the number of buckets is
//! bounded by `limits.max_series_buckets`.

use super::error::ApiError;
use super::params::{Params, DEFAULT_RANGE_DAYS};
use super::reports::{blocking, owner_partition, report_rows, ReportHead, ReportRow};
use super::AppState;
use serde::Serialize;
use std::sync::Arc;
use touchline_actors::domain::models::Model;
use touchline_actors::query::series::{bucket_edges, series_in, SeriesResult};

/// One bucket of a series: `[from, to)` and its report.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesBucket {
    /// RFC 3339, inclusive.
    pub from: String,
    /// RFC 3339, exclusive (the last bucket ends at the range's `to`).
    pub to: String,
    /// Conversions in the bucket (by conversion time).
    pub conversions: u64,
    pub conversion_value: f64,
    pub rows: Vec<ReportRow>,
}

/// The series answer: the range's totals, then each bucket in order.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesAnswer {
    #[serde(flatten)]
    pub head: ReportHead,
    pub model: &'static str,
    /// `day` or `week`: buckets of 1 or 7 days from `from`.
    pub bucket: &'static str,
    pub buckets: Vec<SeriesBucket>,
    /// Only for `time_decay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = f64, required = false)]
    pub half_life_hours: Option<f64>,
}

/// The bucket length named by `bucket` (default `day`).
fn bucket_len(p: &Params) -> Result<(&'static str, i64), ApiError> {
    match p.str("bucket") {
        None | Some("day") => Ok(("day", 86_400)),
        Some("week") => Ok(("week", 7 * 86_400)),
        Some(v) => Err(ApiError::param("bucket", format!("{v:?} is not one of day, week"))),
    }
}

pub async fn series(state: Arc<AppState>, tenant: String, p: Params) -> Result<SeriesAnswer, ApiError> {
    let model = p.model(Model::Linear)?;
    let (bucket, len) = bucket_len(&p)?;
    let (from, to) = p.range(DEFAULT_RANGE_DAYS, state.limits.max_query_range_days)?;
    let max = state.limits.max_series_buckets;
    let edges = bucket_edges(from, to, len, max)
        .map_err(|n| ApiError::param("bucket", format!("{n} buckets of a {bucket} over the range; at most {max} (limits.max_series_buckets): choose week or a shorter range")))?;
    let mut q = p.attribution_query(from, to, None, state.default_lookback_days)?;
    let identity = p.identity()?;
    touchline_actors::query::series::check_model(model, &q.params)?;
    let (partition, watermark) = owner_partition(&state, &tenant)?;
    let (store, paths) = (state.store.clone(), state.paths.clone());
    blocking(move || {
        q.horizon = state.horizon(partition, &tenant)?;
        let view = state.final_persons(partition, &tenant, identity, q.horizon)?;
        let s: SeriesResult = match &view {
            Some(v) => series_in(&store, partition, &tenant, model, &q, &edges, Some(v))?,
            None => paths.series(&store, partition, &tenant, model, &q, &edges)?,
        };
        let mut buckets: Vec<SeriesBucket> = s
            .buckets
            .iter()
            .map(|((a, b), r)| SeriesBucket { from: a.to_string(), to: b.to_string(), conversions: r.conversions, conversion_value: r.conversion_value, rows: report_rows(&r.rows) })
            .collect();
        super::enrich::label(&store, partition, &tenant, buckets.iter_mut().flat_map(|b| b.rows.iter_mut()), None)?;
        let head = ReportHead {
            tenant: tenant.clone(),
            group_by: q.group_by.as_str(),
            from: q.from.to_string(),
            to: q.to.to_string(),
            lookback_days: q.lookback_days,
            consumed_through: watermark.map(|w| w.to_string()),
            conversions: s.conversions,
            conversion_value: s.conversion_value,
            currency: s.currency,
        };
        let half_life_hours = (model == Model::TimeDecay).then_some(q.params.half_life_secs / 3600.0);
        Ok(SeriesAnswer { head, model: model.as_str(), bucket, buckets, half_life_hours })
    })
    .await
}

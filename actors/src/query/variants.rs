//! `GET /v1/tenants/{t}/variants`: per-variant performance summed from the
//! personalization events' `content_variations` (platform-reported deltas).

use super::QueryError;
use crate::state::{key, VariantRec};
use serde::Serialize;
use touchline_storage::Store;

/// The variants answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct VariantsAnswer {
    pub tenant: String,
    pub variants: Vec<Variant>,
}

/// One variant's summed platform-reported metrics.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Variant {
    pub variant_id: String,
    pub events: u64,
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    pub revenue: f64,
    /// clicks / impressions; null without impressions.
    pub ctr: Option<f64>,
}

pub fn variants(store: &Store, p: u16, tenant: &str) -> Result<VariantsAnswer, QueryError> {
    let recs: Vec<VariantRec> = store.prefix_as(&key::variant_prefix(p, tenant))?;
    let variants = recs
        .iter()
        .map(|v| Variant {
            variant_id: v.variant_id.clone(),
            events: v.events,
            impressions: v.impressions,
            clicks: v.clicks,
            conversions: v.conversions,
            revenue: v.revenue,
            ctr: (v.impressions > 0.0).then(|| v.clicks / v.impressions),
        })
        .collect();
    Ok(VariantsAnswer { tenant: tenant.to_string(), variants })
}

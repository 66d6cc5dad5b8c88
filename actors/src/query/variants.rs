//! `GET /v1/tenants/{t}/variants`: per-variant performance summed from the
//! personalization events' `content_variations` (platform-reported deltas).

use super::QueryError;
use crate::state::{key, VariantRec};
use serde_json::{json, Value};
use touchline_storage::Store;

pub fn variants(store: &Store, p: u16, tenant: &str) -> Result<Value, QueryError> {
    let recs: Vec<VariantRec> = store.prefix_as(&key::variant_prefix(p, tenant))?;
    let rows: Vec<Value> = recs
        .iter()
        .map(|v| {
            let ctr = (v.impressions > 0.0).then(|| v.clicks / v.impressions);
            json!({"variant_id": v.variant_id, "events": v.events, "impressions": v.impressions, "clicks": v.clicks,
                   "conversions": v.conversions, "revenue": v.revenue, "ctr": ctr})
        })
        .collect();
    Ok(json!({"tenant": tenant, "variants": rows}))
}

//! `GET /v1/tenants/{t}/campaigns`: every campaign seen — from campaign events
//! (lifecycle status, spend and platform-reported metrics, summed deltas) or as a
//! campaign key of attributed touchpoints — with its attributed conversions and
//! revenue under the chosen model and ROAS = attributed revenue / spend.

use super::attribution::AttributionQuery;
use super::QueryError;
use crate::domain::models::Model;
use crate::domain::{GroupBy, DIRECT_KEY, NONE_KEY};
use crate::state::{key, CampaignRec};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use touchline_storage::Store;

/// One campaign's answer row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CampaignRow {
    pub rec: CampaignRec,
    pub attributed_conversions: f64,
    pub attributed_revenue: f64,
}

impl CampaignRow {
    /// Attributed revenue per unit of spend; `None` without spend.
    pub fn roas(&self) -> Option<f64> {
        (self.rec.cost > 0.0).then(|| self.attributed_revenue / self.rec.cost)
    }

    pub fn to_json(&self) -> Value {
        let r = &self.rec;
        json!({
            "campaign_id": r.campaign_id,
            "name": r.name,
            "channel": r.channel,
            "status": r.status_at.as_ref().map(|s| s.2.clone()),
            "status_at": r.status_at.as_ref().map(|s| s.0.to_string()),
            "spend": r.cost,
            "reported": {"impressions": r.impressions, "clicks": r.clicks, "conversions": r.conversions, "cost": r.cost, "revenue": r.revenue},
            "attributed_conversions": self.attributed_conversions,
            "attributed_revenue": self.attributed_revenue,
            "roas": self.roas(),
        })
    }
}

/// Joins campaign records with the attribution report grouped by campaign.
/// Pseudo-keys (`(none)`, `(direct)`) are not campaigns and are left out.
pub fn join(records: Vec<CampaignRec>, attributed: &[crate::domain::report::Row]) -> Vec<CampaignRow> {
    let mut rows: BTreeMap<String, CampaignRow> =
        records.into_iter().map(|r| (r.campaign_id.clone(), CampaignRow { rec: r, ..Default::default() })).collect();
    for a in attributed.iter().filter(|a| a.key != NONE_KEY && a.key != DIRECT_KEY) {
        let row = rows.entry(a.key.clone()).or_insert_with(|| CampaignRow {
            rec: CampaignRec { campaign_id: a.key.clone(), ..Default::default() },
            ..Default::default()
        });
        row.attributed_conversions = a.credit;
        row.attributed_revenue = a.value;
    }
    rows.into_values().collect()
}

pub fn campaigns(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery) -> Result<Value, QueryError> {
    campaigns_in(store, p, tenant, model, q, None)
}

/// [`campaigns`] over the final persons of `view`.
pub fn campaigns_in(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, view: Option<&super::linking::FinalPersons>) -> Result<Value, QueryError> {
    let q = AttributionQuery { group_by: GroupBy::Campaign, ..q.clone() };
    let report = super::attribution::attribution_in(store, p, tenant, model, &q, view)?;
    let records: Vec<CampaignRec> = store.prefix_as(&key::campaign_prefix(p, tenant))?;
    let rows = join(records, &report.rows);
    Ok(json!({
        "tenant": tenant, "model": model.as_str(), "currency": report.currency,
        "from": q.from.to_string(), "to": q.to.to_string(), "lookback_days": q.lookback_days,
        "conversions": report.conversions, "conversion_value": report.conversion_value,
        "campaigns": rows.iter().map(CampaignRow::to_json).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::report::Row;

    #[test]
    fn roas_joins_spend_with_attributed_revenue() {
        let spring = CampaignRec { campaign_id: "spring".into(), cost: 200.0, ..Default::default() };
        let idle = CampaignRec { campaign_id: "idle".into(), cost: 50.0, ..Default::default() };
        let attributed = vec![
            Row { key: "spring".into(), credit: 1.5, value: 300.0 },
            Row { key: "organic".into(), credit: 0.5, value: 40.0 },
            Row { key: NONE_KEY.into(), credit: 2.0, value: 10.0 },
            Row { key: DIRECT_KEY.into(), credit: 1.0, value: 5.0 },
        ];
        let rows = join(vec![spring, idle], &attributed);
        let ids: Vec<&str> = rows.iter().map(|r| r.rec.campaign_id.as_str()).collect();
        assert_eq!(ids, ["idle", "organic", "spring"]);
        assert_eq!(rows[2].roas(), Some(1.5));
        assert_eq!(rows[0].roas(), Some(0.0));
        assert_eq!(rows[1].roas(), None, "no spend, no ROAS");
        assert_eq!((rows[2].attributed_conversions, rows[1].attributed_revenue), (1.5, 40.0));
    }
}

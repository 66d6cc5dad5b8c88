//! Campaigns of the batch reference (`GET /v1/tenants/{t}/campaigns`): spend =
//! the campaign events' cost deltas + the imported daily totals that survive
//! (per (campaign, date) the `cost_import` with the greatest (import time,
//! event_id), docs/collector.md) in the report's currency, summed in date
//! order; attributed revenue from the reference's own campaign report; ROAS =
//! revenue / spend. Reimplemented here, not taken from `domain::costs`.

use super::{RefQuery, Reference, TenantData};
use std::collections::BTreeMap;
use touchline_actors::domain::costs::CostImport;
use touchline_actors::domain::{Body, Event, Ts, DIRECT_KEY, NONE_KEY};

/// One campaign's row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RefCampaign {
    pub spend: f64,
    /// Imported days counted (in the report's currency).
    pub imported_days: u64,
    pub attributed_conversions: f64,
    pub attributed_revenue: f64,
    pub roas: Option<f64>,
}

/// Campaign deltas and surviving cost days of one tenant's events.
pub(super) fn collect(td: &mut TenantData, events: &[Event]) {
    for ev in events {
        match &ev.body {
            Body::Campaign(c) => *td.campaign_cost.entry(c.campaign_id.clone()).or_insert(0.0) += c.metrics.cost,
            Body::CostImport(row) => {
                let k = (row.campaign_id.clone(), row.date.clone());
                let newer = td.cost_days.get(&k).is_none_or(|(ts, id, _)| (ev.ts, ev.event_id.as_str()) > (*ts, id.as_str()));
                if newer {
                    td.cost_days.insert(k, (ev.ts, ev.event_id.clone(), row.clone()));
                }
            }
            _ => {}
        }
    }
}

impl Reference {
    /// The campaigns report of `q` (its `group_by` is replaced by `campaign`).
    pub fn campaigns(&self, q: &RefQuery) -> BTreeMap<String, RefCampaign> {
        let q = RefQuery { group_by: "campaign".into(), ..q.clone() };
        let report = self.attribution(&q);
        let currency = report["currency"].as_str().map(str::to_string);
        let mut out: BTreeMap<String, RefCampaign> = BTreeMap::new();
        if let Some(td) = self.tenants.get(&q.tenant) {
            for (id, cost) in &td.campaign_cost {
                out.entry(id.clone()).or_default().spend = *cost;
            }
            let mut imported: BTreeMap<&str, Vec<&(Ts, String, CostImport)>> = BTreeMap::new();
            for ((id, _), day) in &td.cost_days {
                imported.entry(id.as_str()).or_default().push(day);
            }
            for (id, mut days) in imported {
                days.sort_by(|a, b| a.2.date.cmp(&b.2.date));
                let mut sum = 0.0;
                let row = out.entry(id.to_string()).or_default();
                for (_, _, d) in days.into_iter().filter(|d| currency.as_deref().is_none_or(|c| c == d.2.currency)) {
                    sum += d.cost;
                    row.imported_days += 1;
                }
                row.spend += sum;
            }
        }
        for r in report["rows"].as_array().into_iter().flatten() {
            let key = r["key"].as_str().unwrap_or_default();
            if key == NONE_KEY || key == DIRECT_KEY {
                continue;
            }
            let row = out.entry(key.to_string()).or_default();
            row.attributed_conversions = r["credit"].as_f64().unwrap_or(0.0);
            row.attributed_revenue = r["value"].as_f64().unwrap_or(0.0);
        }
        for row in out.values_mut() {
            row.roas = (row.spend > 0.0).then(|| row.attributed_revenue / row.spend);
        }
        out
    }
}

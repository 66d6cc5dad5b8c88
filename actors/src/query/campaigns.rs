//! `GET /v1/tenants/{t}/campaigns`: every campaign seen — from campaign events
//! (lifecycle status, spend and platform-reported metrics, summed deltas), from
//! imported daily costs (`cost_import`, the surviving total of each day) or as a
//! campaign key of attributed touchpoints — with its attributed conversions and
//! revenue under the chosen model and ROAS = attributed revenue / spend, where
//! spend = the campaign events' cost deltas + the imported daily totals in the
//! report's currency.

use super::attribution::AttributionQuery;
use super::QueryError;
use crate::domain::costs::{self, CostDay, ImportedSpend};
use crate::domain::models::Model;
use crate::domain::{GroupBy, DIRECT_KEY, NONE_KEY};
use crate::state::{key, CampaignRec};
use serde::Serialize;
use std::collections::BTreeMap;
use touchline_storage::Store;

/// One campaign's answer row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CampaignRow {
    pub rec: CampaignRec,
    pub attributed_conversions: f64,
    pub attributed_revenue: f64,
    /// Imported daily totals (in the report's currency).
    pub imported: ImportedSpend,
}

impl CampaignRow {
    /// The campaign events' cost deltas plus the imported daily totals.
    pub fn spend(&self) -> f64 {
        self.rec.cost + self.imported.cost
    }

    /// Attributed revenue per unit of spend; `None` without spend.
    pub fn roas(&self) -> Option<f64> {
        let spend = self.spend();
        (spend > 0.0).then(|| self.attributed_revenue / spend)
    }

    pub fn answer(&self) -> Campaign {
        let r = &self.rec;
        Campaign {
            campaign_id: r.campaign_id.clone(),
            name: r.name.clone(),
            channel: r.channel.clone(),
            status: r.status_at.as_ref().map(|s| s.2.clone()),
            status_at: r.status_at.as_ref().map(|s| s.0.to_string()),
            spend: self.spend(),
            reported: Reported { impressions: r.impressions, clicks: r.clicks, conversions: r.conversions, cost: r.cost, revenue: r.revenue },
            imported: Imported {
                cost: self.imported.cost,
                impressions: self.imported.impressions,
                clicks: self.imported.clicks,
                days: self.imported.days,
                other_currency_days: self.imported.other_currency_days,
            },
            attributed_conversions: self.attributed_conversions,
            attributed_revenue: self.attributed_revenue,
            roas: self.roas(),
            labels: Default::default(),
        }
    }
}

/// The campaigns answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CampaignsAnswer {
    pub tenant: String,
    pub model: &'static str,
    pub currency: Option<String>,
    pub from: String,
    pub to: String,
    pub lookback_days: i64,
    pub conversions: u64,
    pub conversion_value: f64,
    pub campaigns: Vec<Campaign>,
}

/// One campaign: spend, platform-reported and imported metrics, attributed results.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Campaign {
    pub campaign_id: String,
    pub name: Option<String>,
    pub channel: Option<String>,
    /// The last lifecycle event's status.
    pub status: Option<String>,
    pub status_at: Option<String>,
    pub spend: f64,
    pub reported: Reported,
    pub imported: Imported,
    pub attributed_conversions: f64,
    pub attributed_revenue: f64,
    /// Attributed revenue / spend; null without spend.
    pub roas: Option<f64>,
    #[serde(flatten)]
    pub labels: crate::state::registry::RegistryLabels,
}

/// The campaign events' summed platform-reported deltas.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reported {
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    pub cost: f64,
    pub revenue: f64,
}

/// Imported daily totals in the report's currency.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub cost: f64,
    pub impressions: f64,
    pub clicks: f64,
    pub days: u64,
    /// Imported days in another currency (not in `cost`).
    pub other_currency_days: u64,
}

/// Joins campaign records and imported cost days (in `currency`; `None`: all)
/// with the attribution report grouped by campaign. Pseudo-keys (`(none)`,
/// `(direct)`) are not campaigns and are left out.
pub fn join(records: Vec<CampaignRec>, days: &[CostDay], currency: Option<&str>, attributed: &[crate::domain::report::Row]) -> Vec<CampaignRow> {
    let mut rows: BTreeMap<String, CampaignRow> =
        records.into_iter().map(|r| (r.campaign_id.clone(), CampaignRow { rec: r, ..Default::default() })).collect();
    let mut by_campaign: BTreeMap<&str, Vec<&CostDay>> = BTreeMap::new();
    for d in days {
        by_campaign.entry(d.row.campaign_id.as_str()).or_default().push(d);
    }
    for (id, ds) in by_campaign {
        row_of(&mut rows, id).imported = costs::spend(ds, currency);
    }
    for a in attributed.iter().filter(|a| a.key != NONE_KEY && a.key != DIRECT_KEY) {
        let row = row_of(&mut rows, &a.key);
        row.attributed_conversions = a.credit;
        row.attributed_revenue = a.value;
    }
    rows.into_values().collect()
}

fn row_of<'a>(rows: &'a mut BTreeMap<String, CampaignRow>, id: &str) -> &'a mut CampaignRow {
    rows.entry(id.to_string()).or_insert_with(|| CampaignRow { rec: CampaignRec { campaign_id: id.to_string(), ..Default::default() }, ..Default::default() })
}

pub fn campaigns(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery) -> Result<CampaignsAnswer, QueryError> {
    campaigns_in(store, p, tenant, model, q, None)
}

/// [`campaigns`] over the final persons of `view`.
pub fn campaigns_in(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, view: Option<&super::linking::FinalPersons>) -> Result<CampaignsAnswer, QueryError> {
    let q = by_campaign(q);
    let report = super::attribution::attribution_in(store, p, tenant, model, &q, view)?;
    campaigns_of(store, p, tenant, model, &q, report)
}

/// `q` grouped by campaign: the attribution query a campaigns answer joins.
pub fn by_campaign(q: &AttributionQuery) -> AttributionQuery {
    AttributionQuery { group_by: GroupBy::Campaign, ..q.clone() }
}

/// The campaigns answer from `report`, the attribution report of
/// [`by_campaign`]`(q)` under `model` (computed afresh or by the report cache).
pub fn campaigns_of(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, report: super::attribution::AttributionResult) -> Result<CampaignsAnswer, QueryError> {
    let days: Vec<CostDay> = store.prefix_as(&key::cost_day_prefix(p, tenant))?;
    let records: Vec<CampaignRec> = store.prefix_as(&key::campaign_prefix(p, tenant))?;
    let rows = join(records, &days, report.currency.as_deref(), &report.rows);
    Ok(CampaignsAnswer {
        tenant: tenant.to_string(),
        model: model.as_str(),
        currency: report.currency,
        from: q.from.to_string(),
        to: q.to.to_string(),
        lookback_days: q.lookback_days,
        conversions: report.conversions,
        conversion_value: report.conversion_value,
        campaigns: rows.iter().map(CampaignRow::answer).collect(),
    })
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
        let rows = join(vec![spring, idle], &[], None, &attributed);
        let ids: Vec<&str> = rows.iter().map(|r| r.rec.campaign_id.as_str()).collect();
        assert_eq!(ids, ["idle", "organic", "spring"]);
        assert_eq!(rows[2].roas(), Some(1.5));
        assert_eq!(rows[0].roas(), Some(0.0));
        assert_eq!(rows[1].roas(), None, "no spend, no ROAS");
        assert_eq!((rows[2].attributed_conversions, rows[1].attributed_revenue), (1.5, 40.0));
    }

    #[test]
    fn imported_days_add_to_the_deltas_in_the_report_currency() {
        use crate::domain::costs::CostImport;
        use crate::domain::Ts;
        let day = |c: &str, date: &str, cost: f64, cur: &str| CostDay { imported_at: Ts::new(1, 0), event_id: format!("{c}{date}"), row: CostImport { campaign_id: c.into(), date: date.into(), cost, currency: cur.into(), clicks: Some(3.0), ..Default::default() } };
        let spring = CampaignRec { campaign_id: "spring".into(), cost: 100.0, ..Default::default() };
        let days = [day("spring", "2026-01-01", 50.0, "USD"), day("spring", "2026-01-02", 70.0, "EUR"), day("fall", "2026-01-01", 20.0, "USD")];
        let attributed = vec![Row { key: "spring".into(), credit: 1.0, value: 300.0 }];
        let rows = join(vec![spring], &days, Some("USD"), &attributed);
        let (fall, spring) = (&rows[0], &rows[1]);
        assert_eq!((spring.spend(), spring.roas(), spring.imported.other_currency_days, spring.imported.clicks), (150.0, Some(2.0), 1, 3.0));
        assert_eq!((fall.rec.campaign_id.as_str(), fall.spend(), fall.roas()), ("fall", 20.0, Some(0.0)));
        assert_eq!(spring.answer().spend, 150.0);
    }
}

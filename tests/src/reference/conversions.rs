//! The batch reference's per-conversion credits: for every retained
//! conversion of every tenant (any currency), its time, value, currency and
//! the credit per grouping key under each rule model — what the attribution
//! results topic must hold, one row per conversion (issue 21, 3). Same rules
//! as [`Reference::attribution`] (paths over the final persons, lookback,
//! consent and retention applied), conversion by conversion.

use super::rules::{weights, Model};
use super::Reference;
use std::collections::{BTreeMap, BTreeSet};
use touchline_actors::domain::{Channel, GroupBy, Ts, DIRECT_KEY};

/// One conversion's row.
#[derive(Clone, Debug, PartialEq)]
pub struct RefConversion {
    pub ts: Ts,
    pub value: f64,
    pub currency: String,
    /// model → grouping → key → credit (zero credits left out).
    pub credits: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
}

impl Reference {
    /// Every conversion's row by `(tenant, event_id)`, under `models` (rule
    /// models), for `groupings`, with the default `time_decay` half-life.
    pub fn conversion_credits(&self, models: &[&str], groupings: &[GroupBy], lookback_days: i64) -> BTreeMap<(String, String), RefConversion> {
        let lookback_secs = lookback_days.saturating_mul(86_400);
        let mut out = BTreeMap::new();
        for (tenant, td) in &self.tenants {
            for pd in td.persons.values() {
                for c in &pd.conversions {
                    let lo = c.ts.minus_secs(lookback_secs);
                    let path: Vec<_> = pd.touches.iter().filter(|t| t.ts >= lo && t.ts <= c.ts).collect();
                    let mut credits = BTreeMap::new();
                    for name in models {
                        let model = Model::parse(name, None, 168.0).expect("a rule model");
                        let mut by_group = BTreeMap::new();
                        for g in groupings {
                            let mut keys: BTreeMap<String, f64> = BTreeMap::new();
                            if path.is_empty() {
                                keys.insert(DIRECT_KEY.to_string(), 1.0);
                            } else if model == Model::Participation {
                                let distinct: BTreeSet<&str> = path.iter().map(|t| t.info.key(*g)).collect();
                                keys.extend(distinct.into_iter().map(|k| (k.to_string(), 1.0)));
                            } else {
                                let ages: Vec<f64> = path.iter().map(|t| c.ts.secs_since(t.ts)).collect();
                                let direct: Vec<bool> = path.iter().map(|t| t.info.channel == Channel::Direct).collect();
                                for (t, w) in path.iter().zip(weights(&model, &ages, &direct)) {
                                    *keys.entry(t.info.key(*g).to_string()).or_insert(0.0) += w;
                                }
                            }
                            keys.retain(|_, w| *w != 0.0);
                            by_group.insert(g.as_str().to_string(), keys);
                        }
                        credits.insert(name.to_string(), by_group);
                    }
                    let row = RefConversion { ts: c.ts, value: c.value, currency: c.currency.clone(), credits };
                    out.insert((tenant.clone(), c.event_id.clone()), row);
                }
            }
        }
        out
    }
}

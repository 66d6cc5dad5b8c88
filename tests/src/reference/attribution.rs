//! The attribution report of the batch reference (http-api.md), by a
//! grouping dimension or by any key of a touchpoint.

use super::rules::{weights, Model};
use super::{bad_request, datadriven, PersonData, RefQuery, Reference, Touch};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use touchline_actors::domain::timestamp::format_rfc3339;
use touchline_actors::domain::{Channel, GroupBy, TouchInfo, DIRECT_KEY};

impl Reference {
    /// The attribution report of http-api.md (without `consumed_through`), or an
    /// `{"error": {"code": "bad_request", ...}}` object for an invalid query.
    pub fn attribution(&self, q: &RefQuery) -> Value {
        let Some(group_by) = GroupBy::parse(&q.group_by) else {
            return bad_request(format!("group_by: unknown dimension `{}`", q.group_by));
        };
        self.attribution_keyed(q, group_by.as_str(), &|t| t.key(group_by).to_string())
    }

    /// [`Reference::attribution`] with each touchpoint's key given by `key`
    /// (its `group_by` answered as `group_by`): e.g. by the verdict on its
    /// tracking parameters, for the compliance report's credit.
    pub fn attribution_keyed(&self, q: &RefQuery, group_by: &str, key: &dyn Fn(&TouchInfo) -> String) -> Value {
        let model = match Model::parse(&q.model, q.weights, q.half_life_hours) {
            Ok(m) => m,
            Err(e) => return bad_request(e),
        };
        if q.lookback_days < 0 {
            return bad_request("lookback_days: must not be negative".into());
        }
        let currency = q.currency.clone().or_else(|| self.default_currency(&q.tenant));
        let lookback_secs = q.lookback_days.saturating_mul(86_400);
        let mut conversions = 0u64;
        let mut conversion_value = 0.0;
        let mut acc: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        let data_driven = matches!(model, Model::Markov | Model::Shapley);
        let mut dd_paths: Vec<datadriven::DdPath> = Vec::new();
        if let (Some(td), Some(cur)) = (self.tenants.get(&q.tenant), currency.as_deref()) {
            // Persons in a fixed order so that float sums do not depend on hashing.
            let mut persons: Vec<&PersonData> = td.persons.values().collect();
            persons.sort_by(|a, b| first_event_id(a).cmp(first_event_id(b)));
            for pd in persons {
                let mut last_conversion = None;
                for c in &pd.conversions {
                    if c.ts < q.from || c.ts >= q.to || c.currency != cur {
                        continue;
                    }
                    last_conversion = Some(c.ts);
                    conversions += 1;
                    conversion_value += c.value;
                    let lo = c.ts.minus_secs(lookback_secs);
                    let start = pd.touches.partition_point(|t| t.ts < lo);
                    let end = pd.touches.partition_point(|t| t.ts <= c.ts);
                    let path: Vec<&Touch> = pd.touches[start..end.max(start)].iter().collect();
                    if path.is_empty() {
                        add(&mut acc, DIRECT_KEY, 1.0, c.value);
                        continue;
                    }
                    if data_driven {
                        dd_paths.push((path.iter().map(|t| key(&t.info)).collect(), Some(c.value)));
                        continue;
                    }
                    if matches!(model, Model::Participation) {
                        let keys: BTreeSet<String> = path.iter().map(|t| key(&t.info)).collect();
                        for k in keys {
                            add(&mut acc, &k, 1.0, c.value);
                        }
                        continue;
                    }
                    let ages: Vec<f64> = path.iter().map(|t| c.ts.secs_since(t.ts)).collect();
                    let direct: Vec<bool> = path.iter().map(|t| t.info.channel == Channel::Direct).collect();
                    for (t, w) in path.iter().zip(weights(&model, &ages, &direct)) {
                        add(&mut acc, &key(&t.info), w, w * c.value);
                    }
                }
                // The person's touchpoints in range after its last conversion
                // in range (all, if none), as one `(null)` path.
                let tail: Vec<String> = pd
                    .touches
                    .iter()
                    .filter(|t| t.ts >= q.from && t.ts < q.to && last_conversion.is_none_or(|l| t.ts > l))
                    .map(|t| key(&t.info))
                    .collect();
                if data_driven && !tail.is_empty() {
                    dd_paths.push((tail, None));
                }
            }
        }
        let modelled = match model {
            Model::Markov => datadriven::markov(&dd_paths),
            Model::Shapley => datadriven::shapley(&dd_paths),
            _ => BTreeMap::new(),
        };
        for (k, (credit, value)) in modelled {
            add(&mut acc, &k, credit, value);
        }
        let mut rows: Vec<(String, f64, f64)> = acc
            .into_iter()
            .filter(|(_, (credit, _))| *credit != 0.0)
            .map(|(k, (c, v))| (k, c, v))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        json!({
            "tenant": q.tenant,
            "model": q.model,
            "group_by": group_by,
            "from": format_rfc3339(q.from),
            "to": format_rfc3339(q.to),
            "lookback_days": q.lookback_days,
            "conversions": conversions,
            "conversion_value": conversion_value,
            "currency": currency,
            "rows": rows.into_iter().map(|(k, c, v)| json!({"key": k, "credit": c, "value": v})).collect::<Vec<_>>(),
        })
    }
}

fn first_event_id(p: &PersonData) -> &str {
    p.touches
        .first()
        .map(|t| t.event_id.as_str())
        .or(p.conversions.first().map(|c| c.event_id.as_str()))
        .unwrap_or("")
}

fn add(acc: &mut BTreeMap<String, (f64, f64)>, key: &str, credit: f64, value: f64) {
    let e = acc.entry(key.to_string()).or_insert((0.0, 0.0));
    e.0 += credit;
    e.1 += value;
}


//! Paths for the data-driven models (markov, shapley) over a query range, per
//! attribution.md: one path per conversion (its lookback path, repeats kept,
//! ending in `(conversion)`), plus one `(null)` path per person from its
//! touchpoints in range strictly after its last conversion in range (all of them
//! if it did not convert). Empty-path conversions credit `(direct)` and stay out.

use super::attribution::{AttributionQuery, AttributionResult, ConversionPath};
use super::QueryError;
use crate::domain::datadriven::{markov, shapley, JourneyPath};
use crate::domain::models::Model;
use crate::domain::report::{Accumulator, ExactSum};
use crate::domain::{Ts, DIRECT_KEY};
use crate::state::TouchRec;
use std::collections::HashMap;
use touchline_storage::{codec, keys::KeyBuf, keys::Space, Store};

pub fn data_driven_report(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, convs: &[ConversionPath]) -> Result<AttributionResult, QueryError> {
    let mut paths: Vec<JourneyPath> = Vec::new();
    let mut direct = 0usize;
    let mut last_conv: HashMap<u64, Ts> = HashMap::new();
    let mut total_value = ExactSum::new();
    for c in convs {
        total_value.add(c.value);
        let e = last_conv.entry(c.person).or_insert(c.ts);
        if c.ts > *e {
            *e = c.ts;
        }
        if c.touches.is_empty() {
            direct += 1;
        } else {
            paths.push(JourneyPath { keys: c.touches.iter().map(|t| t.2.clone()).collect(), converted: true });
        }
    }
    // Non-converting tails: every person's touches in [from, to).
    let prefix = KeyBuf::space(p, Space::Touch).tenant(tenant).into_vec();
    let mut tails: HashMap<u64, Vec<(Ts, String, String)>> = HashMap::new();
    let meta = super::tenant_meta(store, p, tenant)?.unwrap_or_default();
    let mut consent = super::consent::ConsentCache::new(store, p, tenant, &meta);
    let mut err: Option<QueryError> = None;
    store.scan_prefix(&prefix, |k, v| {
        let Some(person) = crate::state::tenant::person_in_key(k, prefix.len()) else { return true };
        let Some(ts) = crate::state::tenant::ts_in_key(k, prefix.len() + 8) else { return true };
        if ts < q.from || ts >= q.to || !crate::domain::retention::retained(ts, q.horizon) || last_conv.get(&person).is_some_and(|lc| ts <= *lc) {
            return true;
        }
        match consent.allows_in_scan(person, ts, &mut err) {
            Some(true) => {}
            Some(false) => return true,
            None => return false,
        }
        match codec::decode::<TouchRec>(k, v) {
            Ok(t) => tails.entry(person).or_default().push((t.ts, t.event_id, t.touch.key(q.group_by).to_string())),
            Err(e) => {
                err = Some(e.into());
                return false;
            }
        }
        true
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    let mut persons: Vec<u64> = tails.keys().copied().collect();
    persons.sort_unstable();
    for person in persons {
        let mut t = tails.remove(&person).unwrap_or_default();
        t.sort();
        paths.push(JourneyPath { keys: t.into_iter().map(|x| x.2).collect(), converted: false });
    }
    let result = if model == Model::Markov { markov(&paths) } else { shapley(&paths) };
    let conversions = convs.len();
    let total = total_value.value();
    let per_conv = if conversions > 0 { total / conversions as f64 } else { 0.0 };
    let mut acc = Accumulator::new();
    for (k, credit) in &result.credits {
        acc.add(k, *credit, per_conv * credit);
    }
    if direct > 0 {
        acc.add(DIRECT_KEY, direct as f64, per_conv * direct as f64);
    }
    Ok(AttributionResult { conversions: conversions as u64, conversion_value: total, currency: None, rows: acc.into_rows() })
}

//! `GET /v1/tenants/{t}/cohorts`: persons grouped by the day or ISO week of
//! their first (consented) touchpoint × a dimension of that touchpoint, with
//! converted persons, conversions and revenue (report currency, all time).
//! Two sequential scans of the tenant's timelines; no per-person lookups.

use super::consent::ConsentCache;
use super::QueryError;
use crate::domain::report::ExactSum;
use crate::domain::retention::retained;
use crate::domain::window::{bucket_start, Granularity};
use crate::domain::{GroupBy, Ts};
use crate::state::tenant::person_in_key;
use crate::state::{ConvRec, TouchRec};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use touchline_storage::{codec, keys::KeyBuf, keys::Space, Store};

#[derive(Clone, Debug)]
pub struct CohortQuery {
    pub cohort: Granularity,
    pub by: GroupBy,
    pub from: Ts,
    pub to: Ts,
    pub currency: Option<String>,
    /// Retention horizon: a person's first touchpoint is its first one retained.
    pub horizon: Option<Ts>,
}

#[derive(Debug, Default)]
struct Cell {
    persons: u64,
    converted: u64,
    conversions: u64,
    revenue: ExactSum,
}

pub fn cohorts(store: &Store, p: u16, tenant: &str, q: &CohortQuery) -> Result<Value, QueryError> {
    cohorts_in(store, p, tenant, q, None)
}

/// [`cohorts`] over the final persons of `view`: a final person's first
/// touchpoint is the first of all its members'.
pub fn cohorts_in(store: &Store, p: u16, tenant: &str, q: &CohortQuery, view: Option<&super::linking::FinalPersons>) -> Result<Value, QueryError> {
    let group = |person: u64| view.map_or(person, |v| v.group_of(person));
    let meta = super::tenant_meta(store, p, tenant)?.unwrap_or_default();
    let currency = q.currency.clone().or_else(|| meta.default_currency());
    let mut consent = ConsentCache::new(store, p, tenant, &meta).with_view(view);
    let mut err: Option<QueryError> = None;

    // 1. First consented touchpoint per person: timelines are sorted by (person, ts, event_id).
    // Per final person: its first consented touchpoint (ts, event_id, key).
    let mut earliest: HashMap<u64, (Ts, String, String)> = HashMap::new();
    let tprefix = KeyBuf::space(p, Space::Touch).tenant(tenant).into_vec();
    let mut current: Option<u64> = None;
    store.scan_prefix(&tprefix, |k, v| {
        let Some(person) = person_in_key(k, tprefix.len()) else { return true };
        if current == Some(person) {
            return true; // already has its first touchpoint
        }
        let Some(ts) = crate::state::tenant::ts_in_key(k, tprefix.len() + 8) else { return true };
        if !retained(ts, q.horizon) {
            return true;
        }
        let g = group(person);
        match consent.allows_in_scan(g, ts, &mut err) {
            Some(true) => {}
            Some(false) => return true,
            None => return false,
        }
        current = Some(person);
        match codec::decode::<TouchRec>(k, v) {
            Ok(t) => {
                let cand = (t.ts, t.event_id, t.touch.key(q.by).to_string());
                match earliest.get_mut(&g) {
                    Some(e) if (&e.0, &e.1) <= (&cand.0, &cand.1) => {}
                    Some(e) => *e = cand,
                    None => {
                        earliest.insert(g, cand);
                    }
                }
                true
            }
            Err(e) => {
                err = Some(e.into());
                false
            }
        }
    })?;
    if let Some(e) = err.take() {
        return Err(e);
    }
    let first: HashMap<u64, (i64, String)> = earliest
        .into_iter()
        .map(|(g, (ts, _, key))| (g, (bucket_start(ts, q.cohort), key)))
        .filter(|(_, (start, _))| Ts::new(*start, 0) >= q.from && Ts::new(*start, 0) < q.to)
        .collect();

    // 2. Conversions of those persons in the report currency.
    let mut per_person: HashMap<u64, (u64, ExactSum)> = HashMap::new();
    if let Some(cur) = &currency {
        let cprefix = KeyBuf::space(p, Space::Conversion).tenant(tenant).into_vec();
        store.scan_prefix(&cprefix, |k, v| {
            let Some(person) = person_in_key(k, cprefix.len()).map(group) else { return true };
            if !first.contains_key(&person) {
                return true;
            }
            let c: ConvRec = match codec::decode(k, v) {
                Ok(c) => c,
                Err(e) => {
                    err = Some(e.into());
                    return false;
                }
            };
            if &c.conversion.currency != cur || !retained(c.ts, q.horizon) {
                return true;
            }
            match consent.allows_in_scan(person, c.ts, &mut err) {
                Some(true) => {
                    let e = per_person.entry(person).or_insert_with(|| (0, ExactSum::new()));
                    e.0 += 1;
                    e.1.add(c.conversion.value);
                    true
                }
                Some(false) => true,
                None => false,
            }
        })?;
        if let Some(e) = err {
            return Err(e);
        }
    }

    // 3. Roll up per (cohort start, key).
    let mut cells: BTreeMap<(i64, String), Cell> = BTreeMap::new();
    for (person, (start, k)) in first {
        let cell = cells.entry((start, k)).or_default();
        cell.persons += 1;
        if let Some((n, value)) = per_person.remove(&person) {
            cell.converted += 1;
            cell.conversions += n;
            cell.revenue.add(value.value());
        }
    }
    let rows: Vec<Value> = cells
        .into_iter()
        .map(|((start, k), c)| {
            json!({"cohort_start": Ts::new(start, 0).to_string(), "key": k, "persons": c.persons,
                   "converted_persons": c.converted, "conversions": c.conversions, "revenue": c.revenue.value()})
        })
        .collect();
    Ok(json!({
        "tenant": tenant, "cohort": q.cohort.as_str(), "by": q.by.as_str(), "currency": currency,
        "from": q.from.to_string(), "to": q.to.to_string(), "rows": rows,
    }))
}

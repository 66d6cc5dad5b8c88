//! `GET /v1/tenants/{t}/cohorts`: persons grouped by the day or ISO week of
//! their first (consented) touchpoint × a dimension of that touchpoint, with
//! converted persons, conversions and revenue (report currency, all time).
//! Over the deterministic persons: one pass over the tenant's path summaries
//! (`crate::state::summary`, a pure function of the records, in key order),
//! and none when no cohort starts in the range; a person's consent is read
//! only when it has a touchpoint in the range's cohorts. The HTTP route asks
//! the report cache instead (`super::paths_cache`'s view entries: the same
//! per-person parts, [`super::view_parts::CohortPart`], kept up to date);
//! this fresh computation is what it must equal. Over final persons
//! (probabilistic links): two sequential scans of the tenant's timelines.

use super::consent::ConsentCache;
use super::view_parts::{self, cohort_part};
use super::QueryError;
use crate::domain::report::ExactSum;
use crate::domain::retention::retained;
use crate::domain::window::{bucket_start, Granularity};
use crate::domain::{GroupBy, Ts};
use crate::state::tenant::person_in_key;
use crate::state::{ConvRec, TouchRec};
use serde::Serialize;
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

#[derive(Clone, Debug, Default)]
pub(super) struct Cell {
    persons: u64,
    converted: u64,
    conversions: u64,
    revenue: ExactSum,
}

/// The cohorts answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CohortsAnswer {
    pub tenant: String,
    #[schema(value_type = String, pattern = "^(day|week)$")]
    pub cohort: &'static str,
    pub by: &'static str,
    pub currency: Option<String>,
    pub from: String,
    pub to: String,
    pub rows: Vec<CohortRow>,
}

/// One cohort (first-touch day or week) × key cell.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CohortRow {
    pub cohort_start: String,
    pub key: String,
    pub persons: u64,
    pub converted_persons: u64,
    pub conversions: u64,
    pub revenue: f64,
}

pub fn cohorts(store: &Store, p: u16, tenant: &str, q: &CohortQuery) -> Result<CohortsAnswer, QueryError> {
    cohorts_in(store, p, tenant, q, None)
}

/// [`cohorts`] over the final persons of `view`: a final person's first
/// touchpoint is the first of all its members'.
pub fn cohorts_in(store: &Store, p: u16, tenant: &str, q: &CohortQuery, view: Option<&super::linking::FinalPersons>) -> Result<CohortsAnswer, QueryError> {
    let meta = super::tenant_meta(store, p, tenant)?.unwrap_or_default();
    let currency = q.currency.clone().or_else(|| meta.default_currency());
    let mut consent = ConsentCache::new(store, p, tenant, &meta).with_view(view);
    let cells = match (view, first_touch_window(q)) {
        // No cohort starts in the range: no person can be in it.
        (_, None) => BTreeMap::new(),
        (None, Some(window)) => cells_from_summaries(store, p, tenant, q, currency.as_deref(), &mut consent, window)?,
        (Some(_), Some(_)) => cells_from_records(store, p, tenant, q, currency.as_deref(), &mut consent, view)?,
    };
    Ok(answer_of(tenant, q, currency, cells))
}

/// The answer of `q` from its cells.
pub(super) fn answer_of(tenant: &str, q: &CohortQuery, currency: Option<String>, cells: Cells) -> CohortsAnswer {
    let rows: Vec<CohortRow> = cells
        .into_iter()
        .map(|((start, k), c)| CohortRow {
            cohort_start: Ts::new(start, 0).to_string(),
            key: k,
            persons: c.persons,
            converted_persons: c.converted,
            conversions: c.conversions,
            revenue: c.revenue.value(),
        })
        .collect();
    CohortsAnswer { tenant: tenant.to_string(), cohort: q.cohort.as_str(), by: q.by.as_str(), currency, from: q.from.to_string(), to: q.to.to_string(), rows }
}

/// The first-touchpoint times `[lo, hi)` whose cohort starts in `[from, to)`:
/// from the first cohort start at or after `from` to the end of the last one
/// starting before `to`; `None` when no cohort starts in the range.
pub fn first_touch_window(q: &CohortQuery) -> Option<(Ts, Ts)> {
    if q.from >= q.to {
        return None;
    }
    let w = q.cohort.width_secs();
    let mut first = bucket_start(q.from, q.cohort);
    if Ts::new(first, 0) < q.from {
        first += w;
    }
    let last = bucket_start(Ts::from_nanos(q.to.as_nanos() - 1), q.cohort);
    (first <= last).then(|| (Ts::new(first, 0), Ts::new(last + w, 0)))
}

pub(super) type Cells = BTreeMap<(i64, String), Cell>;

impl Cell {
    /// Adds (`sign` 1) or retracts (`sign` -1) a person with `conversions`
    /// worth `revenue` (a [`super::view_parts::CohortPart`]).
    pub(super) fn add(&mut self, conversions: u64, revenue: f64, sign: i64) {
        let bump = |n: &mut u64, by: u64| *n = n.checked_add_signed(sign * by as i64).expect("a person is retracted only after it was added");
        bump(&mut self.persons, 1);
        if conversions > 0 {
            bump(&mut self.converted, 1);
            bump(&mut self.conversions, conversions);
            self.revenue.add(if sign > 0 { revenue } else { -revenue });
        }
    }

    /// Adds every count of `other`.
    pub(super) fn merge(&mut self, other: &Cell) {
        self.persons += other.persons;
        self.converted += other.converted;
        self.conversions += other.conversions;
        self.revenue.merge(&other.revenue);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.persons == 0
    }
}

/// The cells over the deterministic persons, from one pass over the tenant's
/// summaries ([`view_parts::sweep_summaries`], in parallel ranges, cells
/// merged: sums exact, so the answer does not depend on the split): a
/// person's cohort is that of its [`CohortPart`]; only a person with a
/// touchpoint in `window` can have its first one there, so only those have
/// their part (and consent) read.
fn cells_from_summaries(store: &Store, p: u16, tenant: &str, q: &CohortQuery, currency: Option<&str>, consent: &mut ConsentCache, window: (Ts, Ts)) -> Result<Cells, QueryError> {
    let runs = view_parts::sweep_summaries(store, p, tenant, consent, |consent, person, s| {
        let at = s.touches.partition_point(|t| t.ts < window.0);
        if !s.touches.get(at).is_some_and(|t| t.ts < window.1) {
            return Ok(None);
        }
        Ok(cohort_part(s, person, q.by, currency, q.horizon, consent)?.filter(|c| c.first >= window.0 && c.first < window.1))
    })?;
    let mut cells = Cells::new();
    for (_, c) in runs.iter().flatten() {
        cells.entry((bucket_start(c.first, q.cohort), c.key.clone())).or_default().add(c.conversions, c.revenue, 1);
    }
    Ok(cells)
}

/// The cells over the final persons of `view`, from the records: a final
/// person's first touchpoint is the first of all its members' (ties by event id).
fn cells_from_records(store: &Store, p: u16, tenant: &str, q: &CohortQuery, currency: Option<&str>, consent: &mut ConsentCache, view: Option<&super::linking::FinalPersons>) -> Result<Cells, QueryError> {
    let group = |person: u64| view.map_or(person, |v| v.group_of(person));
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
    if let Some(cur) = currency {
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
            if c.conversion.currency != cur || !retained(c.ts, q.horizon) {
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
    let mut cells = Cells::new();
    for (person, (start, k)) in first {
        let cell = cells.entry((start, k)).or_default();
        cell.persons += 1;
        if let Some((n, value)) = per_person.remove(&person) {
            cell.converted += 1;
            cell.conversions += n;
            cell.revenue.add(value.value());
        }
    }
    Ok(cells)
}

#[cfg(test)]
#[path = "cohorts_tests.rs"]
mod tests;

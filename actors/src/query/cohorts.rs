//! `GET /v1/tenants/{t}/cohorts`: persons grouped by the day or ISO week of
//! their first (consented) touchpoint × a dimension of that touchpoint, with
//! converted persons, conversions and revenue (report currency, all time).
//! Over the deterministic persons: one pass over the tenant's path summaries
//! (`crate::state::summary`, a pure function of the records, in key order),
//! and none when no cohort starts in the range; a person's consent is read
//! only when it has a touchpoint in the range's cohorts. Over final persons
//! (probabilistic links): two sequential scans of the tenant's timelines.

use super::consent::ConsentCache;
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

#[derive(Debug, Default)]
struct Cell {
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
    Ok(CohortsAnswer { tenant: tenant.to_string(), cohort: q.cohort.as_str(), by: q.by.as_str(), currency, from: q.from.to_string(), to: q.to.to_string(), rows })
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

type Cells = BTreeMap<(i64, String), Cell>;

/// The cells over the deterministic persons, from one pass over the tenant's
/// summaries: a person's first touchpoint is the first of its summary (key
/// order) that is retained and its consent covers; only a person with a
/// touchpoint in `window` can have its first one there.
/// The persons are split into contiguous runs swept on up to
/// [`SWEEP_THREADS`] threads (each with its own consent cache), their cells
/// merged (sums exact, so the answer does not depend on the split).
fn cells_from_summaries(store: &Store, p: u16, tenant: &str, q: &CohortQuery, currency: Option<&str>, consent: &mut ConsentCache, window: (Ts, Ts)) -> Result<Cells, QueryError> {
    let prefix = crate::state::key::summary_prefix(p, tenant);
    let stop = touchline_storage::keys::prefix_end(&prefix);
    let Some(last) = store.last_key(&prefix, &stop)? else { return Ok(Cells::new()) };
    let end = person_in_key(&last, prefix.len()).map_or(u64::MAX, |m| m.saturating_add(1));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(SWEEP_THREADS) as u64;
    let threads = if end < 4096 { 1 } else { threads };
    let key_of = |person: u64| KeyBuf(prefix.clone()).u64(person).into_vec();
    let runs: Vec<(Vec<u8>, Vec<u8>)> = (0..threads).map(|i| (key_of(end / threads * i), if i + 1 == threads { stop.clone() } else { key_of(end / threads * (i + 1)) })).collect();
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(start, stop)| {
                let (mut consent, prefix) = (consent.fork(), &prefix);
                s.spawn(move || cells_in_run(store, p, tenant, q, currency, &mut consent, window, prefix, start, stop))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a cohort sweep thread panicked")).collect::<Result<Vec<_>, QueryError>>()
    })?;
    let mut cells = Cells::new();
    for part in parts {
        for (k, c) in part {
            let cell = cells.entry(k).or_default();
            cell.persons += c.persons;
            cell.converted += c.converted;
            cell.conversions += c.conversions;
            cell.revenue.merge(&c.revenue);
        }
    }
    Ok(cells)
}

/// Most threads one cohort sweep uses.
const SWEEP_THREADS: usize = 4;

/// [`cells_from_summaries`] over the summary keys `[start, stop)`.
#[allow(clippy::too_many_arguments)]
fn cells_in_run(store: &Store, p: u16, tenant: &str, q: &CohortQuery, currency: Option<&str>, consent: &mut ConsentCache, window: (Ts, Ts), prefix: &[u8], start: &[u8], stop: &[u8]) -> Result<Cells, QueryError> {
    let mut c = store.cursor(start, stop);
    let mut cells = Cells::new();
    while let Some((k, v)) = c.current() {
        let Some(person) = person_in_key(k, prefix.len()) else {
            c.next();
            continue;
        };
        let s = super::sweep::person_summary(store, p, tenant, person, k, v)?;
        let at = s.touches.partition_point(|t| t.ts < window.0);
        if s.touches.get(at).is_some_and(|t| t.ts < window.1) {
            let mut first = None;
            for t in s.touches.iter().filter(|t| retained(t.ts, q.horizon)) {
                if consent.allows(person, t.ts)? {
                    first = Some(t);
                    break;
                }
            }
            if let Some(t) = first.filter(|t| t.ts >= window.0 && t.ts < window.1) {
                let cell = cells.entry((bucket_start(t.ts, q.cohort), s.key(t, q.by).to_string())).or_default();
                cell.persons += 1;
                let (mut n, mut value) = (0, ExactSum::new());
                for sc in s.convs.iter().filter(|sc| currency == Some(s.currency(sc)) && retained(sc.ts, q.horizon)) {
                    if consent.allows(person, sc.ts)? {
                        n += 1;
                        value.add(sc.value);
                    }
                }
                if n > 0 {
                    cell.converted += 1;
                    cell.conversions += n;
                    cell.revenue.add(value.value());
                }
            }
        }
        c.next();
    }
    c.status()?;
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

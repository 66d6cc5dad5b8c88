//! Cohorts and journey performance from the report cache
//! ([`super::PathsCache`]), over the deterministic persons: a *view entry*
//! holds every person's part of one of them ([`super::super::view_parts`]) and
//! their sums, kept up to date by the cache's change log exactly as report
//! entries are, so a repeated cohorts or journeys query costs O(cells) or
//! O(conversions) instead of a sweep of every person.
//!
//! An entry does not depend on the query range, granularity or journey:
//! - cohorts, per (tenant, `by`, report currency): every person's
//!   [`CohortPart`] (first retained consented touchpoint with its key,
//!   conversions, revenue) and per (first-touch *day*, key) cells; a query
//!   sums the days of its first-touch window into its day or week cohorts
//!   (days tile weeks, and the sums are exact, so this equals summing the
//!   persons);
//! - journeys, per (tenant, lookback, report currency): every person's
//!   [`JourneyConv`]s over all time; a query takes those of its journey and
//!   buckets them as the fresh computation does.
//!
//! Invalidation is the report entries': the persons a commit touched
//! (timeline, conversions, person record) are recomputed from their summary
//! and conversion records; a consent update, an erasure, a partition reset or
//! a truncated change log rebuilds; a retention horizon moved forward
//! recomputes the persons whose part depends on a record behind it (its
//! `min_ts`), one moved back rebuilds. View entries share the cache's budget
//! (`storage.paths_cache_mb`) and its least-recently-used eviction.

use super::super::cohorts::{answer_of, first_touch_window, Cell, Cells, CohortQuery, CohortsAnswer};
use super::super::consent::ConsentCache;
use super::super::journey::{performance_with, Horizons, JourneyAnswer, JourneyConvRow};
use super::super::view_parts::{self, cohort_part, journey_parts, person_convs, CohortPart, JourneyConv};
use super::super::{tenant_meta, QueryError};
use super::{lock, PathsCache, REBUILD_FRACTION};
use crate::domain::window::{bucket_start, Granularity};
use crate::domain::{GroupBy, Ts};
use crate::state::TenantMeta;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use touchline_storage::Store;

/// Which answer a view entry serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ViewKind {
    Cohorts(GroupBy),
    Journeys { lookback_days: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ViewKey {
    pub partition: u16,
    pub tenant: String,
    pub currency: Option<String>,
    pub kind: ViewKind,
}

impl super::LruSlot for ViewSlot {
    type Key = ViewKey;
    fn key(&self) -> &ViewKey {
        &self.key
    }
    fn used(&self) -> &AtomicU64 {
        &self.used
    }
}

/// A view entry with what eviction needs outside its lock.
pub(super) struct ViewSlot {
    pub key: ViewKey,
    entry: Mutex<ViewEntry>,
    pub bytes: AtomicUsize,
    pub seq: AtomicU64,
    /// The cache's use tick when last asked (eviction order across both kinds).
    pub used: AtomicU64,
}

/// Bytes charged per person with a part, per journey conversion, per interned key.
const PERSON_BYTES: usize = 72;
const CONV_BYTES: usize = 48;
const NAME_BYTES: usize = 64;

/// A cohort part with its key interned.
struct CPart {
    day: i64,
    key: u32,
    conversions: u64,
    revenue: f64,
    min_ts: Ts,
}

/// A journey conversion with its journey and composite key interned.
struct JConv {
    ts: Ts,
    late: bool,
    value: f64,
    journey: u32,
    composite: u32,
    last: Ts,
}

enum ViewData {
    Cohorts { persons: HashMap<u64, CPart>, cells: BTreeMap<(i64, u32), Cell> },
    Journeys { persons: HashMap<u64, Vec<JConv>> },
}

struct ViewEntry {
    built: bool,
    epoch: u64,
    seq: u64,
    horizon: Option<Ts>,
    ids: HashMap<String, u32>,
    names: Vec<String>,
    data: ViewData,
    bytes: usize,
}

impl ViewEntry {
    fn new(kind: ViewKind) -> ViewEntry {
        let data = match kind {
            ViewKind::Cohorts(_) => ViewData::Cohorts { persons: HashMap::new(), cells: BTreeMap::new() },
            ViewKind::Journeys { .. } => ViewData::Journeys { persons: HashMap::new() },
        };
        ViewEntry { built: false, epoch: 0, seq: 0, horizon: None, ids: HashMap::new(), names: Vec::new(), data, bytes: 0 }
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        self.bytes += NAME_BYTES + 2 * name.len();
        id
    }

    fn persons(&self) -> usize {
        match &self.data {
            ViewData::Cohorts { persons, .. } => persons.len(),
            ViewData::Journeys { persons } => persons.len(),
        }
    }

    /// Replaces `person`'s cohort part.
    fn set_cohort(&mut self, person: u64, part: Option<CohortPart>) {
        let key = part.as_ref().map(|c| self.intern(&c.key));
        let ViewData::Cohorts { persons, cells } = &mut self.data else { unreachable!("a cohort part of a cohort entry") };
        if let Some(old) = persons.remove(&person) {
            let cell = cells.get_mut(&(old.day, old.key)).expect("a person's cell exists");
            cell.add(old.conversions, old.revenue, -1);
            if cell.is_empty() {
                cells.remove(&(old.day, old.key));
            }
            self.bytes -= PERSON_BYTES;
        }
        let (Some(c), Some(key)) = (part, key) else { return };
        let day = bucket_start(c.first, Granularity::Day);
        cells.entry((day, key)).or_default().add(c.conversions, c.revenue, 1);
        persons.insert(person, CPart { day, key, conversions: c.conversions, revenue: c.revenue, min_ts: c.min_ts });
        self.bytes += PERSON_BYTES;
    }

    /// Replaces `person`'s journey conversions.
    fn set_journey(&mut self, person: u64, convs: Vec<JourneyConv>) {
        let interned: Vec<JConv> = convs.iter().map(|c| JConv { ts: c.ts, late: c.late, value: c.value, journey: self.intern(&c.journey), composite: self.intern(&c.composite), last: c.last }).collect();
        let ViewData::Journeys { persons } = &mut self.data else { unreachable!("journey conversions of a journeys entry") };
        if let Some(old) = persons.remove(&person) {
            self.bytes -= PERSON_BYTES + CONV_BYTES * old.len();
        }
        if !interned.is_empty() {
            self.bytes += PERSON_BYTES + CONV_BYTES * interned.len();
            persons.insert(person, interned);
        }
    }

    /// The persons to recompute when the horizon goes from `self.horizon` to
    /// `new`: `None` when it moved back (everything may change).
    fn expired(&self, new: Option<Ts>) -> Option<BTreeSet<u64>> {
        match (self.horizon, new) {
            (old, new) if old == new => Some(BTreeSet::new()),
            (old, Some(new)) if old.is_none_or(|o| o < new) => Some(match &self.data {
                ViewData::Cohorts { persons, .. } => persons.iter().filter(|(_, c)| c.min_ts < new).map(|(p, _)| *p).collect(),
                ViewData::Journeys { persons } => persons.iter().filter(|(_, cs)| cs.iter().any(|c| c.last < new)).map(|(p, _)| *p).collect(),
            }),
            _ => None,
        }
    }

    /// The cells of `cohort` cohorts whose first touchpoint is in `window`.
    fn cohort_cells(&self, cohort: Granularity, window: (Ts, Ts)) -> Cells {
        let ViewData::Cohorts { cells, .. } = &self.data else { return Cells::new() };
        let mut out = Cells::new();
        for ((day, key), cell) in cells.range((window.0.secs, 0)..(window.1.secs, 0)) {
            out.entry((bucket_start(Ts::new(*day, 0), cohort), self.names[*key as usize].clone())).or_default().merge(cell);
        }
        out
    }

    /// Every conversion whose last touchpoint belongs to `journey`.
    fn journey_convs(&self, journey: &str) -> Vec<JourneyConvRow> {
        let (ViewData::Journeys { persons }, Some(&id)) = (&self.data, self.ids.get(journey)) else { return Vec::new() };
        persons.values().flatten().filter(|c| c.journey == id).map(|c| (c.ts, c.late, c.value, self.names[c.composite as usize].clone())).collect()
    }

    /// Fills the entry from every person of the tenant.
    fn build(&mut self, store: &Store, key: &ViewKey, horizon: Option<Ts>, consent: &mut ConsentCache) -> Result<(), QueryError> {
        *self = ViewEntry::new(key.kind);
        let (p, tenant, currency) = (key.partition, key.tenant.as_str(), key.currency.as_deref());
        match key.kind {
            ViewKind::Cohorts(by) => {
                let runs = view_parts::sweep_summaries(store, p, tenant, consent, |consent, person, s| cohort_part(s, person, by, currency, horizon, consent))?;
                for (person, c) in runs.into_iter().flatten() {
                    self.set_cohort(person, Some(c));
                }
            }
            ViewKind::Journeys { lookback_days } => {
                let Some(cur) = currency else { return Ok(()) };
                let convs = view_parts::indexed_convs(store, p, tenant, (Ts::new(i64::MIN, 0), Ts::new(i64::MAX, 0)), cur, horizon, consent)?;
                for (person, cs) in journey_parts(store, p, tenant, &convs, lookback_days.saturating_mul(86_400), horizon, consent)? {
                    self.set_journey(person, cs);
                }
            }
        }
        Ok(())
    }

    /// Recomputes `persons` (sorted, distinct) from their summaries and records.
    fn recompute(&mut self, store: &Store, key: &ViewKey, horizon: Option<Ts>, consent: &mut ConsentCache, persons: &[u64]) -> Result<(), QueryError> {
        let (p, tenant, currency) = (key.partition, key.tenant.as_str(), key.currency.as_deref());
        match key.kind {
            ViewKind::Cohorts(by) => {
                let mut parts = Vec::with_capacity(persons.len());
                view_parts::summaries_of(store, p, tenant, persons, |person, s| {
                    parts.push((person, s.map(|s| cohort_part(s, person, by, currency, horizon, consent)).transpose()?.flatten()));
                    Ok(())
                })?;
                for (person, part) in parts {
                    self.set_cohort(person, part);
                }
            }
            ViewKind::Journeys { lookback_days } => {
                let mut convs = Vec::new();
                if let Some(cur) = currency {
                    for &person in persons {
                        let cs = person_convs(store, p, tenant, person, cur, horizon, consent)?;
                        if !cs.is_empty() {
                            convs.push((person, cs));
                        }
                    }
                }
                let mut found: HashMap<u64, Vec<JourneyConv>> = journey_parts(store, p, tenant, &convs, lookback_days.saturating_mul(86_400), horizon, consent)?.into_iter().collect();
                for &person in persons {
                    self.set_journey(person, found.remove(&person).unwrap_or_default());
                }
            }
        }
        Ok(())
    }
}

/// The view entries of the cache, least recently used first.
pub(super) type ViewSlots = Mutex<Vec<Arc<ViewSlot>>>;

impl PathsCache {
    /// `GET .../cohorts` over the deterministic persons, from the cache.
    pub fn cohorts(&self, store: &Store, p: u16, tenant: &str, q: &CohortQuery) -> Result<CohortsAnswer, QueryError> {
        let meta = tenant_meta(store, p, tenant)?.unwrap_or_default();
        let currency = q.currency.clone().or_else(|| meta.default_currency());
        let Some(window) = first_touch_window(q) else { return Ok(answer_of(tenant, q, currency, Cells::new())) };
        let key = ViewKey { partition: p, tenant: tenant.to_string(), currency: currency.clone(), kind: ViewKind::Cohorts(q.by) };
        let cells = self.with_view(store, &meta, &key, q.horizon, |e| e.cohort_cells(q.cohort, window))?;
        Ok(answer_of(tenant, q, currency, cells))
    }

    /// `GET .../journeys/{j}/performance` over the deterministic persons,
    /// conversions from the cache (window counters read as always).
    #[allow(clippy::too_many_arguments)]
    pub fn journey(&self, store: &Store, p: u16, tenant: &str, journey: &str, g: Granularity, (from, to): (Ts, Ts), lookback_days: i64, horizons: Horizons) -> Result<JourneyAnswer, QueryError> {
        let meta = tenant_meta(store, p, tenant)?.unwrap_or_default();
        let convs = match meta.default_currency() {
            None => Vec::new(),
            currency => {
                let key = ViewKey { partition: p, tenant: tenant.to_string(), currency, kind: ViewKind::Journeys { lookback_days } };
                self.with_view(store, &meta, &key, horizons.retention, |e| e.journey_convs(journey))?
            }
        };
        performance_with(store, p, tenant, journey, g, (from, to), horizons, convs)
    }

    /// `f` of the view entry of `key`, brought up to date with the changes
    /// since last time (see the module docs).
    fn with_view<T>(&self, store: &Store, meta: &TenantMeta, key: &ViewKey, horizon: Option<Ts>, f: impl FnOnce(&ViewEntry) -> T) -> Result<T, QueryError> {
        let (p, tenant) = (key.partition, key.tenant.as_str());
        let slot = self.view_slot(key);
        let mut e = lock(&slot.entry);
        if !e.built {
            self.stats.cold.fetch_add(1, Ordering::Relaxed);
        }
        // The journal position and epoch are read before any state.
        let (epoch, seq, changes) = {
            let j = lock(&self.journal);
            (j.epoch(p), j.seq, j.changes_since(p, tenant, e.seq))
        };
        let changed = match (changes, e.expired(horizon)) {
            (Some(mut c), Some(x)) if e.built && e.epoch == epoch => {
                c.extend(x);
                ((c.len() as f64) <= REBUILD_FRACTION * (e.persons().max(64) as f64)).then_some(c)
            }
            _ => None,
        };
        let mut consent = ConsentCache::new(store, p, tenant, meta);
        // Not answerable until the update is done (an error on the way leaves it to a rebuild).
        e.built = false;
        match changed {
            Some(persons) => {
                e.recompute(store, key, horizon, &mut consent, &persons.iter().copied().collect::<Vec<_>>())?;
                if !persons.is_empty() {
                    self.stats.updates.fetch_add(1, Ordering::Relaxed);
                    self.stats.persons_recomputed.fetch_add(persons.len(), Ordering::Relaxed);
                    metrics::counter!(crate::metrics::REPORT_CACHE_UPDATES).increment(1);
                    metrics::counter!(crate::metrics::REPORT_CACHE_PERSONS).increment(persons.len() as u64);
                }
            }
            None => {
                e.build(store, key, horizon, &mut consent)?;
                self.stats.builds.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(crate::metrics::REPORT_CACHE_BUILDS).increment(1);
            }
        }
        (e.epoch, e.seq, e.horizon, e.built) = (epoch, seq, horizon, true);
        slot.bytes.store(e.bytes, Ordering::Relaxed);
        slot.seq.store(seq, Ordering::Relaxed);
        let answer = f(&e);
        drop(e);
        self.enforce_budget();
        Ok(answer)
    }

    /// The view slot for `key`, created (and its tenant watched) when
    /// missing; it becomes the most recently used.
    fn view_slot(&self, key: &ViewKey) -> Arc<ViewSlot> {
        self.lru_slot(&self.views, &self.views_live, key, (key.partition, &key.tenant), |used| ViewSlot {
            key: key.clone(),
            entry: Mutex::new(ViewEntry::new(key.kind)),
            bytes: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
            used: AtomicU64::new(used),
        })
    }
}

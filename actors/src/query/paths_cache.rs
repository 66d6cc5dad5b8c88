//! Incrementally maintained attribution reports: a query over a large tenant
//! must not re-read every conversion's path, whatever the model.
//!
//! An entry holds, for one query shape (partition, tenant, range, grouping,
//! lookback, report currency), every person's part (conversions with their
//! paths, the non-converting tail) and the aggregates answered from them
//! (`super::paths_entry`): paths for markov/shapley, exact per-key credit sums
//! per rule model and parameters — so a repeated report costs O(keys). The
//! cache is the store's [`CommitObserver`]: each committed batch tells it which
//! persons of watched tenants changed (any write under their timeline,
//! conversions or person record; a merge moves both persons' records, an
//! erasure deletes them), kept in a journal (`super::paths_journal`). The next
//! query recomputes only those persons from their own timelines
//! ([`persons_parts`], equal by construction to their part of a full build) and
//! swaps their part in the aggregate. A consent update or an erasure tombstone
//! invalidates the tenant's entries (their effect is read through customer ids,
//! not person keys); a partition reset, a truncated change log or too many
//! changed persons rebuild. When the tenant's retention horizon has moved
//! forward, the persons whose part holds a record behind it are recomputed too
//! (the horizon is not part of the entry's key).
//!
//! A new range is not a full scan either. The tenant's activity index
//! ([`super::activity_index`]: persons per hour with a touchpoint or conversion)
//! lists the persons that can have a part in it; the entry is either built from
//! those alone, or derived from a cached entry of the same shape over another
//! range by recomputing only the persons active in the difference of the two
//! ranges — whichever reads fewer persons. A range holding at least half the
//! tenant's activity is built instead by one parallel sweep of every person's
//! summary (cheaper than seeking that many persons), unless a derive costs
//! less. A derive clones the cached entry,
//! except when the new range is the cached one slid forward (the now-relative
//! default window asked again): then the entry moves to the new range. Without
//! an index (over its share of the budget) a build sweeps the whole tenant.
//!
//! Exactness under concurrent commits: a commit is journaled (and added to the
//! index) after its write, and an entry records the journal position read
//! *before* it reads state, so a person changed meanwhile is recomputed again
//! by the next query, never missed. An index is trusted only if it was still
//! registered (so still fed every commit) after it was read; one dropped
//! meanwhile (last entry evicted, partition reset) leaves the build to a full
//! scan.
//!
//! Memory is bounded: entries and indexes are charged an estimate of their
//! size; entries are evicted least recently used beyond the budget (an entry
//! larger than the whole budget answers its query and is not kept) and a
//! tenant's index goes with its last entry, or as soon as it outgrows half the
//! budget; the change log holds at most [`LOG_MAX_PERSONS`] person ids.
//!
//! The cache also keeps the cohorts and journey-performance answers over the
//! deterministic persons (`views_cache.rs`): view entries fed by the same
//! change log, in the same budget and eviction order.

use super::activity_index::{sym_diff, ActivityIndex, TenantIndex};
use super::attribution::{AttributionQuery, AttributionResult};
use super::consent::ConsentCache;
use super::linking::FinalPersons;
use super::paths_entry::{Entry, EntryKey};
use super::paths_view;
use super::series::SeriesResult;
pub use super::paths_journal::LOG_MAX_PERSONS;
use super::paths_journal::{lock, Journal};
use super::sweep::{persons_parts_parallel as persons_parts, sweep_all};
use super::{tenant_meta, QueryError};
use crate::domain::models::Model;
use crate::domain::Ts;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use touchline_storage::{CommitObserver, Store};

/// Milliseconds from `a` to `b` (build phases in debug logs).
fn ms(a: std::time::Instant, b: std::time::Instant) -> f64 {
    (b - a).as_secs_f64() * 1e3
}

/// More changed persons than this fraction of an entry's persons: rebuild.
const REBUILD_FRACTION: f64 = 0.25;

/// Persons an entry clone costs as much as recomputing one person for.
const CLONE_PER_RECOMPUTE: usize = 32;

/// An entry with what eviction needs outside its lock (a build can hold it for
/// a while; lookups and eviction must not wait for that).
struct Slot {
    key: EntryKey,
    entry: Arc<Mutex<Entry>>,
    bytes: AtomicUsize,
    seq: AtomicU64,
    /// The cache's use tick when last asked (eviction order across report and view entries).
    used: AtomicU64,
}

/// What [`PathsCache::lru_slot`] needs of a report or view slot.
trait LruSlot {
    type Key: PartialEq;
    fn key(&self) -> &Self::Key;
    fn used(&self) -> &AtomicU64;
}

impl LruSlot for Slot {
    type Key = EntryKey;
    fn key(&self) -> &EntryKey {
        &self.key
    }
    fn used(&self) -> &AtomicU64 {
        &self.used
    }
}

/// The node's cache of data-driven paths; see the module docs.
pub struct PathsCache {
    journal: Mutex<Journal>,
    /// Least recently used first.
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Number of entries (so commits skip all work while there is none).
    live: AtomicUsize,
    /// Cohorts and journeys entries (`views`), least recently used first, and their number.
    views: views::ViewSlots,
    views_live: AtomicUsize,
    /// Use ticks (least recently used across both lists).
    tick: AtomicU64,
    budget_bytes: usize,
    stats: CacheStats,
}

/// Counters for tests and metrics.
#[derive(Default, Debug)]
pub struct CacheStats {
    /// Entries built from scratch (from the index or by a full scan).
    pub builds: AtomicUsize,
    /// Of those, the builds that scanned the whole tenant (no index).
    pub full_scans: AtomicUsize,
    /// Builds (report or view) for a shape with no built entry and none to
    /// derive it from: a first question, or one the budget evicted (not a
    /// rebuild after many changes, nor a slid range).
    pub cold: AtomicUsize,
    /// Entries derived from another range's entry.
    pub derives: AtomicUsize,
    pub updates: AtomicUsize,
    pub persons_recomputed: AtomicUsize,
    pub index_builds: AtomicUsize,
}

/// A cached entry of another range to derive from, locked, with the persons
/// that must be recomputed for the new range.
struct Base<'a> {
    slot: &'a Arc<Slot>,
    entry: MutexGuard<'a, Entry>,
    persons: BTreeSet<u64>,
    moves: bool,
    cost: usize,
}

/// The persons of `e` to recompute when the horizon goes from `e.horizon` to
/// `new`: `None` when it moved back (everything may change).
fn expired(e: &Entry, new: Option<Ts>) -> Option<BTreeSet<u64>> {
    match (e.horizon, new) {
        (old, new) if old == new => Some(BTreeSet::new()),
        (old, Some(new)) if old.is_none_or(|o| o < new) => Some(e.persons.iter().filter(|(_, part)| part.min_ts.is_some_and(|m| m < new)).map(|(p, _)| *p).collect()),
        _ => None,
    }
}

impl PathsCache {
    pub fn new(budget_bytes: usize) -> Arc<PathsCache> {
        let (live, views_live, tick) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicU64::new(0));
        Arc::new(PathsCache { journal: Mutex::default(), slots: Mutex::default(), live, views: Mutex::default(), views_live, tick, budget_bytes, stats: CacheStats::default() })
    }

    /// Installs the cache as `store`'s commit observer.
    pub fn observe(self: &Arc<Self>, store: &Store) {
        store.set_observer(self.clone());
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The report of any model, from the cache: a rule model's aggregate or the
    /// data-driven paths, brought up to date with the changes since last time.
    pub fn report(&self, store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery) -> Result<AttributionResult, QueryError> {
        self.report_in(store, p, tenant, model, q, None)
    }

    /// [`Self::report`] over the final persons of `view` (read from the
    /// stored links: [`FinalPersons::stored`]; `super::paths_view`).
    pub fn report_in(&self, store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, view: Option<&FinalPersons>) -> Result<AttributionResult, QueryError> {
        Ok(self.with_entry(store, p, tenant, q, view, |e| e.report(model, &q.params))?.unwrap_or_default())
    }

    /// A rule model's credits per bucket of `edges` (which tile `q`'s range),
    /// from the cache entry of `q`'s range: see [`super::series`].
    pub fn series(&self, store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, edges: &[(Ts, Ts)]) -> Result<SeriesResult, QueryError> {
        super::series::check_model(model, &q.params)?;
        let series = self.with_entry(store, p, tenant, q, None, |e| e.series(model, &q.params, edges))?;
        Ok(series.unwrap_or_else(|| SeriesResult::empty(edges)))
    }

    /// `f` of the entry of `q`'s shape (over the final persons of `view`, if
    /// any), brought up to date with the changes since last time; `None` when
    /// the tenant has no conversion currency yet.
    fn with_entry<T>(&self, store: &Store, p: u16, tenant: &str, q: &AttributionQuery, view: Option<&FinalPersons>, f: impl FnOnce(&mut Entry) -> T) -> Result<Option<T>, QueryError> {
        debug_assert!(view.is_none_or(|v| v.stored), "a view evaluated from the signals changes without a journaled write");
        let meta = tenant_meta(store, p, tenant)?.unwrap_or_default();
        let Some(currency) = q.currency.clone().or_else(|| meta.default_currency()) else {
            return Ok(None);
        };
        let key = EntryKey { partition: p, tenant: tenant.to_string(), from: q.from, to: q.to, group_by: q.group_by, lookback_days: q.lookback_days, currency, all: view.is_some() };
        let slot = self.slot(&key);
        let mut e = lock(&slot.entry);
        let was_built = e.built;
        // The journal position and epoch are read before any state.
        let (epoch, seq, changes) = {
            let j = lock(&self.journal);
            (j.epoch(p), j.seq, j.changes_since(p, tenant, e.seq))
        };
        let changed = match (changes, expired(&e, q.horizon)) {
            (Some(mut c), Some(x)) if e.built && e.epoch == epoch => {
                c.extend(x);
                ((c.len() as f64) <= REBUILD_FRACTION * (e.persons.len().max(64) as f64)).then_some(c)
            }
            _ => None,
        };
        let mut consent = ConsentCache::new(store, p, tenant, &meta).with_view(view);
        match (changed, view) {
            (Some(persons), None) => self.recompute(store, q, &mut e, &mut consent, &persons.into_iter().collect::<Vec<_>>())?,
            (Some(persons), Some(v)) => {
                let persons = paths_view::expand(&e, v, persons);
                self.recompute_in(store, q, &mut e, &mut consent, persons.into_iter().collect(), v)?;
            }
            (None, _) => {
                let builds = self.stats.builds.load(Ordering::Relaxed);
                self.rebuild(store, q, &key, &mut e, &mut consent, epoch, seq)?;
                if !was_built && self.stats.builds.load(Ordering::Relaxed) > builds {
                    self.stats.cold.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(v) = view {
                    let persons = paths_view::grouped(&e, v);
                    self.recompute_in(store, q, &mut e, &mut consent, persons.into_iter().collect(), v)?;
                }
            }
        }
        e.epoch = epoch;
        e.seq = seq;
        e.horizon = q.horizon;
        e.built = true;
        slot.bytes.store(e.bytes(), Ordering::Relaxed);
        slot.seq.store(seq, Ordering::Relaxed);
        let answer = f(&mut e);
        drop(e);
        self.enforce_budget();
        Ok(Some(answer))
    }

    /// [`Self::recompute`] over the final persons of `view`: a person
    /// linked to another or with linked persons gets its final person's
    /// part; the links are remembered in the entry.
    fn recompute_in(&self, store: &Store, q: &AttributionQuery, e: &mut Entry, consent: &mut ConsentCache, mut persons: Vec<u64>, view: &FinalPersons) -> Result<(), QueryError> {
        let (p, tenant) = (e.key.partition, e.key.tenant.clone());
        let currency = e.key.currency.clone();
        let n = persons.len();
        for (person, pp) in paths_view::group_parts(store, (p, &tenant), q, &currency, consent, view, &mut persons)? {
            e.set(person, pp);
        }
        let grouped = n - persons.len();
        self.recompute(store, q, e, consent, &persons)?;
        if grouped > 0 {
            self.stats.persons_recomputed.fetch_add(grouped, Ordering::Relaxed);
        }
        e.groups = view.links.iter().map(|(a, l)| (*a, l.known)).collect();
        Ok(())
    }

    /// Recomputes `persons` (sorted, distinct) of `e` from their timelines.
    fn recompute(&self, store: &Store, q: &AttributionQuery, e: &mut Entry, consent: &mut ConsentCache, persons: &[u64]) -> Result<(), QueryError> {
        let (p, tenant) = (e.key.partition, e.key.tenant.clone());
        let currency = e.key.currency.clone();
        for (person, pp) in persons_parts(store, p, &tenant, q, &currency, consent, persons)? {
            e.set(person, pp);
        }
        if !persons.is_empty() {
            self.stats.updates.fetch_add(1, Ordering::Relaxed);
            self.stats.persons_recomputed.fetch_add(persons.len(), Ordering::Relaxed);
            metrics::counter!(crate::metrics::REPORT_CACHE_UPDATES).increment(1);
            metrics::counter!(crate::metrics::REPORT_CACHE_PERSONS).increment(persons.len() as u64);
        }
        Ok(())
    }

    /// Fills `e` for `key` afresh: derived from another range's entry, built
    /// from the persons the index lists, or (without an index) by a full scan.
    #[allow(clippy::too_many_arguments)]
    fn rebuild(&self, store: &Store, q: &AttributionQuery, key: &EntryKey, e: &mut Entry, consent: &mut ConsentCache, epoch: u64, seq: u64) -> Result<(), QueryError> {
        let (p, tenant) = (key.partition, key.tenant.as_str());
        let range = [(q.from, q.to)];
        let t0 = std::time::Instant::now();
        let candidates: Vec<Arc<Slot>> = lock(&self.slots).iter().filter(|s| s.key.same_shape(key) && s.key != *key).cloned().collect();
        // A tenant's first query with no index yet: one pass over every
        // summary builds both the entry and the index (a separate walk for
        // the index cost as much again at 1 M persons).
        if candidates.is_empty() {
            if let Some(ix) = self.index_slot(p, tenant) {
                let mut ready = lock(&ix.ready);
                if !*ready {
                    let t1 = std::time::Instant::now();
                    let (names, parts, scanned) = sweep_all(store, p, tenant, q, &key.currency, consent, true)?;
                    *ready = true;
                    let kept = self.index_filled(p, tenant, &ix, scanned);
                    drop(ready);
                    let t2 = std::time::Instant::now();
                    *e = Entry::new(key.clone(), epoch, seq);
                    e.absorb(names, parts);
                    tracing::debug!(sweep_ms = ms(t1, t2), set_ms = ms(t2, std::time::Instant::now()), "report cache entry and activity index built in one pass");
                    // Counted as a full scan when no index came out of it.
                    self.count_build(!kept);
                    return Ok(());
                }
            }
        }
        // What the index says, used only if the index was still kept up to
        // date (registered) after it was read: then it holds every commit up
        // to `seq`.
        let plan = match self.index(store, p, tenant)? {
            Some(ix) => {
                let (listed, pairs) = { let d = lock(&ix.data); (d.count_in(&range), d.pairs()) };
                // A range holding at least half the tenant's activity is
                // swept whole: reading every summary in order costs about half
                // as much per listed pair as recomputing persons one by one
                // (1 M persons: 0.15 µs against 0.3 µs), so a derive must beat that.
                let dense = listed.saturating_mul(2) >= pairs;
                let fresh_cost = if dense { pairs / 2 } else { listed };
                let plan = match self.best_base(&candidates, key, q, epoch, &ix, fresh_cost) {
                    Some(base) => Ok(base),
                    None if dense => Err(None),
                    None => Err(Some(lock(&ix.data).persons_in(&range))),
                };
                let registered = lock(&self.journal).indexes.get(&(p, tenant.as_bytes().to_vec())).is_some_and(|x| Arc::ptr_eq(x, &ix));
                registered.then_some(plan)
            }
            None => None,
        };
        let full_scan = plan.is_none();
        match plan {
            Some(Ok(mut base)) => {
                *e = if base.moves {
                    let k = base.entry.key.clone();
                    self.remove_slot(base.slot);
                    std::mem::replace(&mut *base.entry, Entry::new(k, 0, 0))
                } else {
                    base.entry.clone()
                };
                drop(base.entry);
                e.key = key.clone();
                // Not answerable for the new range until every listed person
                // is recomputed (an error on the way leaves it to a rebuild).
                e.built = false;
                self.stats.derives.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(crate::metrics::REPORT_CACHE_DERIVES).increment(1);
                return self.recompute(store, q, e, consent, &base.persons.into_iter().collect::<Vec<_>>());
            }
            Some(Err(Some(persons))) => {
                *e = Entry::new(key.clone(), epoch, seq);
                let t1 = std::time::Instant::now();
                for (person, pp) in persons_parts(store, p, tenant, q, &key.currency, consent, &persons)? {
                    e.set(person, pp);
                }
                tracing::debug!(persons = persons.len(), plan_ms = ms(t0, t1), sweep_ms = ms(t1, std::time::Instant::now()), "report cache entry built");
            }
            // Dense, or no index to go by: every summary, in parallel ranges.
            Some(Err(None)) | None => {
                *e = Entry::new(key.clone(), epoch, seq);
                let t1 = std::time::Instant::now();
                let (names, parts, _) = sweep_all(store, p, tenant, q, &key.currency, consent, false)?;
                e.absorb(names, parts);
                tracing::debug!(plan_ms = ms(t0, t1), sweep_ms = ms(t1, std::time::Instant::now()), "report cache entry built by a whole sweep");
            }
        }
        self.count_build(full_scan);
        Ok(())
    }

    fn count_build(&self, full_scan: bool) {
        self.stats.builds.fetch_add(1, Ordering::Relaxed);
        if full_scan {
            self.stats.full_scans.fetch_add(1, Ordering::Relaxed);
        }
        metrics::counter!(crate::metrics::REPORT_CACHE_BUILDS).increment(1);
    }

    /// The cached entry of another range the new one is cheapest to derive
    /// from, if any is cheaper than `fresh_cost` (entries busy elsewhere are
    /// passed over rather than waited for).
    fn best_base<'a>(&self, candidates: &'a [Arc<Slot>], key: &EntryKey, q: &AttributionQuery, epoch: u64, ix: &TenantIndex, fresh_cost: usize) -> Option<Base<'a>> {
        let mut best: Option<Base<'a>> = None;
        for slot in candidates {
            let Ok(entry) = slot.entry.try_lock() else { continue };
            if !entry.built || entry.epoch != epoch {
                continue;
            }
            let Some(changes) = lock(&self.journal).changes_since(key.partition, &key.tenant, entry.seq) else { continue };
            let Some(expired) = expired(&entry, q.horizon) else { continue };
            let moves = entry.key.slid_to(key);
            let delta = sym_diff((entry.key.from, entry.key.to), (key.from, key.to));
            let data = lock(&ix.data);
            let mut cost = data.count_in(&delta) + changes.len() + expired.len();
            if !moves {
                cost += entry.persons.len() / CLONE_PER_RECOMPUTE;
            }
            if cost >= fresh_cost || best.as_ref().is_some_and(|b| b.cost <= cost) {
                continue;
            }
            let mut persons = changes;
            persons.extend(expired);
            persons.extend(data.persons_in(&delta));
            drop(data);
            best = Some(Base { slot, entry, persons, moves, cost });
        }
        best
    }

    /// The tenant's activity index, built on first use (the tenant is
    /// watched: its slot exists); `None` when it does not fit its share of the
    /// budget.
    fn index(&self, store: &Store, p: u16, tenant: &str) -> Result<Option<Arc<TenantIndex>>, QueryError> {
        let Some(ix) = self.index_slot(p, tenant) else { return Ok(None) };
        let mut ready = lock(&ix.ready);
        if !*ready {
            let scanned = ActivityIndex::scan(store, p, tenant)?;
            *ready = true;
            if !self.index_filled(p, tenant, &ix, scanned) {
                return Ok(None);
            }
        }
        drop(ready);
        Ok(Some(ix))
    }

    /// The tenant's registered index, registered (not yet built) when
    /// missing, so commits from now on are added to it; `None` when the
    /// tenant is not watched or its index outgrew the budget.
    fn index_slot(&self, p: u16, tenant: &str) -> Option<Arc<TenantIndex>> {
        let w = (p, tenant.as_bytes().to_vec());
        let mut j = lock(&self.journal);
        if j.too_big.contains(&w) || !j.watched.contains_key(&w) {
            return None;
        }
        Some(j.indexes.entry(w).or_default().clone())
    }

    /// Adds a walk's result to a registered index (the caller holds its
    /// `ready` and sets it); whether the index is kept (dropped over half the budget).
    fn index_filled(&self, p: u16, tenant: &str, ix: &Arc<TenantIndex>, scanned: ActivityIndex) -> bool {
        let bytes = {
            let mut data = lock(&ix.data);
            data.merge(scanned);
            data.bytes()
        };
        self.stats.index_builds.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::REPORT_CACHE_INDEX_BUILDS).increment(1);
        if bytes > self.budget_bytes / 2 {
            let w = (p, tenant.as_bytes().to_vec());
            let mut j = lock(&self.journal);
            if j.indexes.get(&w).is_some_and(|x| Arc::ptr_eq(x, ix)) {
                j.indexes.remove(&w);
            }
            j.too_big.insert(w);
            return false;
        }
        true
    }

    /// The slot for `key`, created (and its tenant watched) when missing; it
    /// becomes the most recently used.
    fn slot(&self, key: &EntryKey) -> Arc<Slot> {
        self.lru_slot(&self.slots, &self.live, key, (key.partition, &key.tenant), |used| Slot {
            key: key.clone(),
            entry: Arc::new(Mutex::new(Entry::new(key.clone(), 0, 0))),
            bytes: AtomicUsize::new(0),
            seq: AtomicU64::new(0),
            used: AtomicU64::new(used),
        })
    }

    /// `key`'s slot in `list` (least recently used first), moved last with
    /// a new use tick; when missing, `make(tick)` is appended, `live` set to
    /// the list's length and the slot's (partition, tenant) `watch`ed. Report
    /// and view entries share the tick, so eviction orders both kinds.
    fn lru_slot<S: LruSlot>(&self, list: &Mutex<Vec<Arc<S>>>, live: &AtomicUsize, key: &S::Key, watch: (u16, &str), make: impl FnOnce(u64) -> S) -> Arc<S> {
        let mut slots = lock(list);
        let used = self.tick.fetch_add(1, Ordering::Relaxed);
        if let Some(i) = slots.iter().position(|s| s.key() == key) {
            let s = slots.remove(i);
            s.used().store(used, Ordering::Relaxed);
            slots.push(s.clone());
            return s;
        }
        let s = Arc::new(make(used));
        slots.push(s.clone());
        live.store(slots.len(), Ordering::Release);
        *lock(&self.journal).watched.entry((watch.0, watch.1.as_bytes().to_vec())).or_default() += 1;
        s
    }

    /// Forgets `slot` (its entry moved to another range).
    fn remove_slot(&self, slot: &Arc<Slot>) {
        let mut slots = lock(&self.slots);
        if let Some(i) = slots.iter().position(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(i);
            self.live.store(slots.len(), Ordering::Release);
            lock(&self.journal).unwatch(&(slot.key.partition, slot.key.tenant.as_bytes().to_vec()));
        }
    }

    /// Evicts least recently used entries while entries and indexes are over
    /// the budget (the one just used last, so an entry larger than the whole
    /// budget is dropped after answering), then trims the change log to what
    /// the remaining entries need.
    fn enforce_budget(&self) {
        let mut slots = lock(&self.slots);
        let mut views = lock(&self.views);
        let bytes = |b: &AtomicUsize| b.load(Ordering::Relaxed);
        let mut total: usize = slots.iter().map(|s| bytes(&s.bytes)).sum::<usize>() + views.iter().map(|s| bytes(&s.bytes)).sum::<usize>();
        let mut j = lock(&self.journal);
        let mut index_bytes = j.index_bytes();
        while total + index_bytes > self.budget_bytes && !(slots.is_empty() && views.is_empty()) {
            let used = |u: &AtomicU64| u.load(Ordering::Relaxed);
            let view_first = match (slots.first(), views.first()) {
                (Some(s), Some(v)) => used(&v.used) < used(&s.used),
                (s, _) => s.is_none(),
            };
            let (gone_bytes, w) = if view_first {
                let gone = views.remove(0);
                (bytes(&gone.bytes), (gone.key.partition, gone.key.tenant.as_bytes().to_vec()))
            } else {
                let gone = slots.remove(0);
                (bytes(&gone.bytes), (gone.key.partition, gone.key.tenant.as_bytes().to_vec()))
            };
            total -= gone_bytes;
            j.unwatch(&w);
            index_bytes = j.index_bytes();
        }
        self.live.store(slots.len(), Ordering::Release);
        self.views_live.store(views.len(), Ordering::Release);
        metrics::gauge!(crate::metrics::REPORT_CACHE_BYTES).set((total + index_bytes) as f64);
        let seqs = slots.iter().map(|s| s.seq.load(Ordering::Relaxed)).chain(views.iter().map(|s| s.seq.load(Ordering::Relaxed)));
        let keep_after = seqs.min().unwrap_or(j.seq);
        while j.log.front().is_some_and(|r| r.seq <= keep_after) {
            let r = j.log.pop_front().expect("front exists");
            j.forget(r);
        }
    }

    /// Bytes the entries and indexes are charged (for tests and metrics).
    pub fn charged_bytes(&self) -> usize {
        let entries: usize = lock(&self.slots).iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
        let views: usize = lock(&self.views).iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
        entries + views + lock(&self.journal).index_bytes()
    }
}

impl CommitObserver for PathsCache {
    fn committed(&self, keys: &mut dyn Iterator<Item = &[u8]>) {
        if self.live.load(Ordering::Acquire) == 0 && self.views_live.load(Ordering::Acquire) == 0 {
            return;
        }
        lock(&self.journal).record(keys, self.budget_bytes);
    }

    fn reset(&self, partition: u16) {
        lock(&self.journal).reset(partition);
    }
}

#[path = "views_cache.rs"]
mod views;

#[cfg(test)]
#[path = "paths_cache_tests.rs"]
mod tests;

//! Incrementally maintained attribution reports: a query over a large tenant
//! must not re-read every conversion's path, whatever the model.
//!
//! An entry holds, for one query shape (partition, tenant, range, grouping,
//! lookback, report currency), every person's part (conversions with their
//! paths, the non-converting tail) and the aggregates answered from them
//! (`super::paths_entry`): paths for markov/shapley, exact per-key credit sums
//! per rule model and parameters — so a repeated report costs O(keys). The cache is the store's [`CommitObserver`]: each committed batch
//! tells it which persons of watched tenants changed (any write under their
//! timeline, conversions or person record; a merge moves both persons' records,
//! an erasure deletes them). The next query recomputes only those persons from
//! their own timelines ([`one_person`], equal by construction to their part of a
//! full build) and swaps their part in the aggregate. A consent update or an
//! erasure tombstone invalidates the tenant's entries (their effect is read
//! through customer ids, not person keys); a partition reset, a truncated change
//! log or too many changed persons fall back to a full build. When the tenant's
//! retention horizon has moved forward, the persons whose part holds a record
//! behind it are recomputed too (the horizon is not part of the entry's key).
//!
//! Exactness under concurrent commits: a commit is journaled after its write, and
//! an entry records the journal position read *before* it reads state, so a
//! person changed meanwhile is recomputed again by the next query, never missed.
//!
//! Memory is bounded: entries are charged an estimate of their size and evicted
//! least recently used beyond the budget (an entry larger than the whole budget
//! answers its query and is not kept); the change log holds at most
//! [`LOG_MAX_PERSONS`] person ids.

use super::attribution::{AttributionQuery, AttributionResult};
use super::consent::ConsentCache;
use super::datadriven::{all_persons_of_query, one_person};
use super::paths_entry::{Entry, EntryKey};
use super::{tenant_meta, QueryError};
use crate::domain::models::Model;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use touchline_storage::{keys::Space, CommitObserver, Store};

/// Most person ids the change log keeps; older changes are forgotten and the
/// entries that still needed them rebuild.
pub const LOG_MAX_PERSONS: usize = 1 << 20;

/// More changed persons than this fraction of an entry's persons: rebuild.
const REBUILD_FRACTION: f64 = 0.25;


/// What a commit changed for one watched tenant.
#[derive(Debug)]
enum Change {
    Persons(Vec<u64>),
    Tenant,
}

struct LogRecord {
    seq: u64,
    partition: u16,
    tenant: Arc<str>,
    change: Change,
}

#[derive(Default)]
struct Journal {
    seq: u64,
    /// Highest sequence number forgotten from the log.
    forgotten: u64,
    log: VecDeque<LogRecord>,
    log_persons: usize,
    epochs: HashMap<u16, u64>,
    /// Entries per watched (partition, tenant): only their changes are logged.
    watched: HashMap<(u16, Vec<u8>), usize>,
}

impl Journal {
    fn epoch(&self, p: u16) -> u64 {
        self.epochs.get(&p).copied().unwrap_or(0)
    }

    fn push(&mut self, partition: u16, tenant: &[u8], change: Change) {
        self.seq += 1;
        if let Change::Persons(ps) = &change {
            self.log_persons += ps.len();
        }
        let tenant: Arc<str> = String::from_utf8_lossy(tenant).into();
        self.log.push_back(LogRecord { seq: self.seq, partition, tenant, change });
        while self.log_persons > LOG_MAX_PERSONS {
            let Some(r) = self.log.pop_front() else { break };
            self.forget(r);
        }
    }

    fn forget(&mut self, r: LogRecord) {
        self.forgotten = self.forgotten.max(r.seq);
        if let Change::Persons(ps) = r.change {
            self.log_persons -= ps.len();
        }
    }

    /// The changes to (partition, tenant) after `seq`: `None` when they are no
    /// longer all known or include a tenant-wide one.
    fn changes_since(&self, partition: u16, tenant: &str, seq: u64) -> Option<BTreeSet<u64>> {
        if self.forgotten > seq {
            return None;
        }
        let mut out = BTreeSet::new();
        for r in self.log.iter().filter(|r| r.seq > seq && r.partition == partition && &*r.tenant == tenant) {
            match &r.change {
                Change::Tenant => return None,
                Change::Persons(ps) => out.extend(ps.iter().copied()),
            }
        }
        Some(out)
    }
}

/// An entry with what eviction needs outside its lock (a build can hold it for
/// a while; lookups and eviction must not wait for that).
struct Slot {
    key: EntryKey,
    entry: Arc<Mutex<Entry>>,
    bytes: AtomicUsize,
    seq: AtomicU64,
}

/// The node's cache of data-driven paths; see the module docs.
pub struct PathsCache {
    journal: Mutex<Journal>,
    /// Least recently used first.
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Number of entries (so commits skip all work while there is none).
    live: AtomicUsize,
    budget_bytes: usize,
    stats: CacheStats,
}

/// Counters for tests and metrics.
#[derive(Default, Debug)]
pub struct CacheStats {
    pub builds: AtomicUsize,
    pub updates: AtomicUsize,
    pub persons_recomputed: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PathsCache {
    pub fn new(budget_bytes: usize) -> Arc<PathsCache> {
        Arc::new(PathsCache { journal: Mutex::default(), slots: Mutex::default(), live: AtomicUsize::new(0), budget_bytes, stats: CacheStats::default() })
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
        let meta = tenant_meta(store, p, tenant)?.unwrap_or_default();
        let Some(currency) = q.currency.clone().or_else(|| meta.default_currency()) else {
            return Ok(AttributionResult::default());
        };
        let key = EntryKey { partition: p, tenant: tenant.to_string(), from: q.from, to: q.to, group_by: q.group_by, lookback_days: q.lookback_days, currency };
        let slot = self.slot(&key);
        let mut e = lock(&slot.entry);
        // The journal position and epoch are read before any state.
        let (epoch, seq, changes) = {
            let j = lock(&self.journal);
            (j.epoch(p), j.seq, j.changes_since(p, tenant, e.seq))
        };
        // The horizon only moves forward: the persons with a record behind
        // the new one change; the others keep their part.
        let expired = match (e.horizon, q.horizon) {
            (old, new) if old == new => Some(BTreeSet::new()),
            (old, Some(new)) if old.is_none_or(|o| o < new) => Some(e.persons.iter().filter(|(_, part)| part.min_ts.is_some_and(|m| m < new)).map(|(p, _)| *p).collect()),
            _ => None,
        };
        let changed = match (changes, expired) {
            (Some(mut c), Some(x)) if e.built && e.epoch == epoch => {
                c.extend(x);
                ((c.len() as f64) <= REBUILD_FRACTION * (e.persons.len().max(64) as f64)).then_some(c)
            }
            _ => None,
        };
        match changed {
            Some(persons) => {
                let mut consent = ConsentCache::new(store, p, tenant, &meta);
                for person in &persons {
                    let pp = one_person(store, p, tenant, q, &key.currency, &mut consent, *person)?;
                    e.set(*person, pp);
                }
                if !persons.is_empty() {
                    self.stats.updates.fetch_add(1, Ordering::Relaxed);
                    self.stats.persons_recomputed.fetch_add(persons.len(), Ordering::Relaxed);
                    metrics::counter!(crate::metrics::REPORT_CACHE_UPDATES).increment(1);
                    metrics::counter!(crate::metrics::REPORT_CACHE_PERSONS).increment(persons.len() as u64);
                }
            }
            None => {
                let mut q2 = q.clone();
                q2.currency = Some(key.currency.clone());
                let (_, persons) = all_persons_of_query(store, p, tenant, &q2)?;
                *e = Entry::new(key.clone(), epoch, seq);
                for (person, pp) in persons {
                    e.set(person, pp);
                }
                e.built = true;
                self.stats.builds.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(crate::metrics::REPORT_CACHE_BUILDS).increment(1);
            }
        }
        e.epoch = epoch;
        e.seq = seq;
        e.horizon = q.horizon;
        slot.bytes.store(e.bytes, Ordering::Relaxed);
        slot.seq.store(seq, Ordering::Relaxed);
        let report = e.report(model, &q.params);
        drop(e);
        self.enforce_budget();
        Ok(report)
    }

    /// The slot for `key`, created (and its tenant watched) when missing; it
    /// becomes the most recently used.
    fn slot(&self, key: &EntryKey) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        if let Some(i) = slots.iter().position(|s| s.key == *key) {
            let s = slots.remove(i);
            slots.push(s.clone());
            return s;
        }
        let s = Arc::new(Slot { key: key.clone(), entry: Arc::new(Mutex::new(Entry::new(key.clone(), 0, 0))), bytes: AtomicUsize::new(0), seq: AtomicU64::new(0) });
        slots.push(s.clone());
        self.live.store(slots.len(), Ordering::Release);
        *lock(&self.journal).watched.entry((key.partition, key.tenant.as_bytes().to_vec())).or_default() += 1;
        s
    }

    /// Evicts least recently used entries while over the budget (the one just
    /// used last, so an entry larger than the whole budget is dropped after
    /// answering), then trims the change log to what the remaining entries need.
    fn enforce_budget(&self) {
        let mut slots = lock(&self.slots);
        let mut total: usize = slots.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
        let mut j = lock(&self.journal);
        while total > self.budget_bytes && !slots.is_empty() {
            let gone = slots.remove(0);
            total -= gone.bytes.load(Ordering::Relaxed);
            let w = (gone.key.partition, gone.key.tenant.as_bytes().to_vec());
            if let Some(n) = j.watched.get_mut(&w) {
                *n -= 1;
                if *n == 0 {
                    j.watched.remove(&w);
                }
            }
        }
        self.live.store(slots.len(), Ordering::Release);
        metrics::gauge!(crate::metrics::REPORT_CACHE_BYTES).set(total as f64);
        let keep_after = slots.iter().map(|s| s.seq.load(Ordering::Relaxed)).min().unwrap_or(j.seq);
        while j.log.front().is_some_and(|r| r.seq <= keep_after) {
            let r = j.log.pop_front().expect("front exists");
            j.forget(r);
        }
    }

    /// Bytes the entries are charged (for tests and metrics).
    pub fn charged_bytes(&self) -> usize {
        lock(&self.slots).iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum()
    }
}

/// `(partition, space, tenant bytes, rest)` of a tenant-scoped key.
fn split_key(k: &[u8]) -> Option<(u16, u8, &[u8], &[u8])> {
    if k.len() < 4 {
        return None;
    }
    let p = u16::from_be_bytes([k[0], k[1]]);
    let nul = k[3..].iter().position(|b| *b == 0)? + 3;
    Some((p, k[2], &k[3..nul], &k[nul + 1..]))
}

impl CommitObserver for PathsCache {
    fn committed(&self, keys: &mut dyn Iterator<Item = &[u8]>) {
        if self.live.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut j = lock(&self.journal);
        // Keys come sorted, so one tenant's keys of one space are contiguous.
        let mut pending: HashMap<(u16, Vec<u8>), Change> = HashMap::new();
        let mut last: Option<(u16, u8, Vec<u8>, bool)> = None;
        for k in keys {
            let Some((p, space, tenant, rest)) = split_key(k) else { continue };
            let watched = match &last {
                Some((lp, ls, lt, w)) if *lp == p && *ls == space && lt.as_slice() == tenant => *w,
                _ => {
                    let w = j.watched.contains_key(&(p, tenant.to_vec()));
                    last = Some((p, space, tenant.to_vec(), w));
                    w
                }
            };
            if !watched {
                continue;
            }
            let slot = pending.entry((p, tenant.to_vec())).or_insert_with(|| Change::Persons(Vec::new()));
            if space == Space::Consent as u8 || space == Space::Erased as u8 {
                *slot = Change::Tenant;
            } else if space == Space::Touch as u8 || space == Space::Conversion as u8 || space == Space::Person as u8 {
                if let (Change::Persons(ps), Some(b)) = (&mut *slot, rest.get(..8)) {
                    let person = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                    if ps.last() != Some(&person) {
                        ps.push(person);
                    }
                }
            }
        }
        for ((p, tenant), mut change) in pending {
            if let Change::Persons(ps) = &mut change {
                ps.sort_unstable();
                ps.dedup();
                if ps.is_empty() {
                    continue;
                }
            }
            j.push(p, &tenant, change);
        }
    }

    fn reset(&self, partition: u16) {
        *lock(&self.journal).epochs.entry(partition).or_default() += 1;
    }
}

#[cfg(test)]
#[path = "paths_cache_tests.rs"]
mod tests;

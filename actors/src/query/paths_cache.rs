//! Incrementally maintained paths of the data-driven models (issue: a markov or
//! shapley query over a large tenant must not rebuild every person's paths).
//!
//! An entry holds, for one query shape (partition, tenant, range, grouping,
//! lookback, report currency), every person's [`PersonPaths`] and their
//! aggregate. The cache is the store's [`CommitObserver`]: each committed batch
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
use super::datadriven::{all_persons_of_query, one_person, rows_of, PersonPaths};
use super::{tenant_meta, QueryError};
use crate::domain::datadriven::{markov_ids, shapley_ids, IdPath};
use crate::domain::models::Model;
use crate::domain::report::ExactSum;
use crate::domain::{GroupBy, Ts};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use touchline_storage::{keys::Space, CommitObserver, Store};

/// Most person ids the change log keeps; older changes are forgotten and the
/// entries that still needed them rebuild.
pub const LOG_MAX_PERSONS: usize = 1 << 20;

/// More changed persons than this fraction of an entry's persons: rebuild.
const REBUILD_FRACTION: f64 = 0.25;

/// Rough bytes per person part, per distinct path and per distinct key (for
/// the budget).
const PERSON_BYTES: usize = 112;
const PATH_BYTES: usize = 48;
const KEY_BYTES: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EntryKey {
    partition: u16,
    tenant: String,
    from: Ts,
    to: Ts,
    group_by: GroupBy,
    lookback_days: i64,
    currency: String,
}

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

/// A person's part with its paths' keys interned in the entry.
#[derive(Default)]
struct Part {
    converted: Vec<Box<[u32]>>,
    null: Option<Box<[u32]>>,
    direct: u64,
    values: Vec<f64>,
    /// Earliest record time in the part (see [`PersonPaths::min_ts`]).
    min_ts: Option<Ts>,
}

struct Entry {
    key: EntryKey,
    /// Whether a full build has filled it (a fresh entry has not).
    built: bool,
    /// The retention horizon the parts were computed under.
    horizon: Option<Ts>,
    epoch: u64,
    seq: u64,
    key_ids: HashMap<String, u32>,
    key_names: Vec<String>,
    persons: HashMap<u64, Part>,
    paths: HashMap<Box<[u32]>, (u64, u64)>,
    conversions: u64,
    direct: u64,
    value: ExactSum,
    bytes: usize,
}

impl Entry {
    fn new(key: EntryKey, epoch: u64, seq: u64) -> Entry {
        Entry {
            key,
            built: false,
            horizon: None,
            epoch,
            seq,
            key_ids: HashMap::new(),
            key_names: Vec::new(),
            persons: HashMap::new(),
            paths: HashMap::new(),
            conversions: 0,
            direct: 0,
            value: ExactSum::new(),
            bytes: 0,
        }
    }

    fn intern(&mut self, path: &[String]) -> Box<[u32]> {
        path.iter()
            .map(|k| match self.key_ids.get(k) {
                Some(id) => *id,
                None => {
                    let id = self.key_names.len() as u32;
                    self.key_names.push(k.clone());
                    self.key_ids.insert(k.clone(), id);
                    self.bytes += KEY_BYTES;
                    id
                }
            })
            .collect()
    }

    fn apply(&mut self, part: &Part, sign: i64) {
        let paths = part.converted.iter().map(|p| (p, true)).chain(part.null.iter().map(|p| (p, false)));
        for (path, converted) in paths {
            let counts = match self.paths.get_mut(path) {
                Some(c) => c,
                None => {
                    self.bytes += PATH_BYTES + path.len() * 4;
                    self.paths.entry(path.clone()).or_default()
                }
            };
            let n = if converted { &mut counts.0 } else { &mut counts.1 };
            *n = n.checked_add_signed(sign).expect("a person's part is removed only after it was added");
        }
        self.direct = self.direct.checked_add_signed(sign * part.direct as i64).expect("direct count");
        self.conversions = self.conversions.checked_add_signed(sign * part.values.len() as i64).expect("conversion count");
        for v in &part.values {
            self.value.add(if sign > 0 { *v } else { -*v });
        }
    }

    /// Replaces `person`'s part.
    fn set(&mut self, person: u64, pp: PersonPaths) {
        if let Some(old) = self.persons.remove(&person) {
            self.apply(&old, -1);
            self.bytes -= PERSON_BYTES;
        }
        if pp.is_empty() {
            return;
        }
        let part = Part {
            converted: pp.converted.iter().map(|p| self.intern(p)).collect(),
            null: pp.null.as_deref().map(|p| self.intern(p)),
            direct: pp.direct,
            values: pp.values,
            min_ts: pp.min_ts,
        };
        self.apply(&part, 1);
        self.bytes += PERSON_BYTES;
        self.persons.insert(person, part);
    }

    /// Runs the model over the aggregate: the keys still in use, sorted by
    /// name and renumbered, as the models require.
    fn report(&self, model: Model) -> AttributionResult {
        let live: Vec<(&[u32], u64, u64)> = self.paths.iter().filter(|(_, c)| c.0 + c.1 > 0).map(|(k, c)| (&k[..], c.0, c.1)).collect();
        let mut used = vec![false; self.key_names.len()];
        for (ids, _, _) in &live {
            for &id in ids.iter() {
                used[id as usize] = true;
            }
        }
        let mut order: Vec<u32> = (0..self.key_names.len() as u32).filter(|id| used[*id as usize]).collect();
        order.sort_by(|a, b| self.key_names[*a as usize].cmp(&self.key_names[*b as usize]));
        let mut remap = vec![u32::MAX; self.key_names.len()];
        for (new, old) in order.iter().enumerate() {
            remap[*old as usize] = new as u32;
        }
        let names: Vec<&str> = order.iter().map(|id| self.key_names[*id as usize].as_str()).collect();
        let flat: Vec<u32> = live.iter().flat_map(|(ids, _, _)| ids.iter().map(|id| remap[*id as usize])).collect();
        let mut id_paths: Vec<IdPath> = Vec::with_capacity(live.len());
        let mut at = 0;
        for (ids, c, n) in &live {
            id_paths.push((&flat[at..at + ids.len()], *c, *n));
            at += ids.len();
        }
        let result = if model == Model::Markov { markov_ids(&names, &id_paths) } else { shapley_ids(&names, &id_paths) };
        let mut r = rows_of(&result, self.conversions, self.direct, self.value.value());
        r.currency = Some(self.key.currency.clone());
        r
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

    /// The `markov` / `shapley` report, from the cache when possible.
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
                self.stats.updates.fetch_add(1, Ordering::Relaxed);
                self.stats.persons_recomputed.fetch_add(persons.len(), Ordering::Relaxed);
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
            }
        }
        e.epoch = epoch;
        e.seq = seq;
        e.horizon = q.horizon;
        slot.bytes.store(e.bytes, Ordering::Relaxed);
        slot.seq.store(seq, Ordering::Relaxed);
        let report = e.report(model);
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

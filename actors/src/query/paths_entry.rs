//! One entry of the [`super::paths_cache::PathsCache`]: every person's part of
//! one query shape, and the aggregates answered from it — distinct paths with
//! their counts and conversion value sums for markov/shapley (and the
//! `(direct)` conversions' count and value), and an exact per-key sum of credits for each
//! rule model (with its parameters) asked so far. Replacing a person's part
//! retracts its old contribution and adds the new one; the sums are
//! [`ExactSum`]s, so the result is the same as summing afresh in any order.

use super::attribution::AttributionResult;
use super::datadriven::{rows_of, PersonPaths, Totals};
use super::path_id::PathId;
use super::series::{Series, SeriesResult};
use crate::domain::datadriven::{markov_ids, shapley_ids, IdPath};
use crate::domain::models::{credit_by_key, Model, ModelParams, PathTouch};
use crate::domain::report::{Accumulator, ExactSum};
use crate::domain::{Channel, GroupBy, Ts};
use foldhash::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Rough bytes per person part, per distinct path (its key, counts and exact
/// value sum), per distinct key and per conversion touchpoint (for the cache
/// budget).
const PERSON_BYTES: usize = 112;
const PATH_BYTES: usize = 96;
const KEY_BYTES: usize = 64;
const TOUCH_BYTES: usize = 32;

/// Most rule-model aggregates one entry keeps (least recently added dropped).
const MAX_RULES: usize = 16;

/// The query shape an entry answers (rule parameters aside: see [`Entry`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct EntryKey {
    pub partition: u16,
    pub tenant: String,
    pub from: Ts,
    pub to: Ts,
    pub group_by: GroupBy,
    pub lookback_days: i64,
    pub currency: String,
    /// Over the final persons of the tenant's stored probabilistic links
    /// (`identity=all`; see `super::paths_view`).
    pub all: bool,
}

impl EntryKey {
    /// Whether `other` differs from this key at most by its range (an entry
    /// of one can be derived from the other's).
    pub fn same_shape(&self, other: &EntryKey) -> bool {
        self.partition == other.partition && self.tenant == other.tenant && self.group_by == other.group_by && self.lookback_days == other.lookback_days && self.currency == other.currency && self.all == other.all
    }

    /// Whether `next` is this range slid forward (same length, later start):
    /// the now-relative default window asked again later.
    pub fn slid_to(&self, next: &EntryKey) -> bool {
        next.from > self.from && next.to.as_nanos() - next.from.as_nanos() == self.to.as_nanos() - self.from.as_nanos()
    }
}

/// A conversion of a part, its path's keys interned in the entry.
#[derive(Clone)]
struct PartConv {
    ts: Ts,
    value: f64,
    touches: Box<[(Ts, Channel, u32)]>,
}

/// A person's part with its keys interned in the entry.
#[derive(Clone, Default)]
pub(super) struct Part {
    convs: Vec<PartConv>,
    /// The `(null)` path, as its count's key (inline when it packs).
    null: Option<PathId>,
    /// Earliest record time in the part (see [`PersonPaths::min_ts`]).
    pub min_ts: Option<Ts>,
}

impl Part {
    /// Bytes charged for the part (see the constants).
    fn bytes(&self) -> usize {
        PERSON_BYTES + TOUCH_BYTES * self.convs.iter().map(|c| c.touches.len()).sum::<usize>()
    }
}

#[derive(Clone)]
struct RuleAgg {
    model: Model,
    params: ModelParams,
    acc: Accumulator,
}

/// Cloned to derive another range's entry from it (see
/// [`super::paths_cache`]).
#[derive(Clone)]
pub(super) struct Entry {
    pub key: EntryKey,
    /// Whether a full build has filled it (a fresh entry has not).
    pub built: bool,
    /// The retention horizon the parts were computed under.
    pub horizon: Option<Ts>,
    /// `key.all`: each linked anonymous person → its known person, as the
    /// parts were last computed under (a relink recomputes both sides).
    pub groups: std::collections::BTreeMap<u64, u64>,
    pub epoch: u64,
    pub seq: u64,
    pub persons: Persons,
    /// Bytes charged for the parts and keys (the paths' are the aggregate's).
    bytes: usize,
    names: Names,
    agg: Aggregate,
    rules: Vec<RuleAgg>,
}

/// Adds (`sign` 1) or retracts (`sign` -1) a part's credits under a rule model.
fn add_credits(acc: &mut Accumulator, model: Model, params: &ModelParams, part: &Part, names: &[String], sign: f64) {
    for c in &part.convs {
        let path: Vec<PathTouch> =
            c.touches.iter().map(|(ts, channel, id)| PathTouch { ts: *ts, channel: *channel, key: names[*id as usize].as_str(), event_id: "" }).collect();
        for (key, credit) in credit_by_key(model, &path, c.ts, params) {
            acc.add(key, sign * credit, sign * (credit * c.value));
        }
    }
}

/// Every person's part, in contiguous person ranges: one per thread of the
/// sweep that built the entry (each thread's map moves in as it is), or one
/// for an entry built person by person.
#[derive(Clone)]
pub(super) struct Persons {
    /// (lowest person of the range, its parts), ascending; the first from 0.
    shards: Vec<(u64, BTreeMap<u64, Part>)>,
}

impl Default for Persons {
    fn default() -> Persons {
        Persons { shards: vec![(0, BTreeMap::new())] }
    }
}

impl Persons {
    fn shard(&mut self, person: u64) -> &mut BTreeMap<u64, Part> {
        let i = self.shards.partition_point(|s| s.0 <= person) - 1;
        &mut self.shards[i].1
    }

    fn remove(&mut self, person: u64) -> Option<Part> {
        self.shard(person).remove(&person)
    }

    fn insert(&mut self, person: u64, part: Part) -> Option<Part> {
        self.shard(person).insert(person, part)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.1.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.1.is_empty())
    }

    /// The credits of every part under a rule model (exact sums, so the same
    /// in any split).
    fn sum_credits(&self, model: Model, params: &ModelParams, names: &[String]) -> Accumulator {
        self.fold(
            |m| {
                let mut acc = Accumulator::new();
                for part in m.values() {
                    add_credits(&mut acc, model, params, part, names, 1.0);
                }
                acc
            },
            |a, b| a.merge(&b),
        )
    }

    /// `f` of every range of parts, one thread per range when there are
    /// several, joined by `merge` in range order.
    fn fold<T: Send>(&self, f: impl Fn(&BTreeMap<u64, Part>) -> T + Sync, mut merge: impl FnMut(&mut T, T)) -> T {
        if let [(_, only)] = self.shards.as_slice() {
            return f(only);
        }
        let f = &f;
        std::thread::scope(|s| {
            let handles: Vec<_> = self.shards.iter().map(|(_, m)| s.spawn(move || f(m))).collect();
            let mut all = handles.into_iter().map(|h| h.join().expect("a credit thread panicked"));
            let mut out = all.next().expect("at least one range");
            for x in all {
                merge(&mut out, x);
            }
            out
        })
    }

    /// Every person's part, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Part)> {
        self.shards.iter().flat_map(|s| s.1.iter())
    }
}

/// Grouping keys and their ids (an entry's, or those one sweep's threads
/// share).
#[derive(Clone, Default)]
pub(super) struct Names {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Names {
    /// `key`'s id, and whether it is new.
    fn intern(&mut self, key: &str) -> (u32, bool) {
        if let Some(id) = self.ids.get(key) {
            return (*id, false);
        }
        let id = self.names.len() as u32;
        self.names.push(key.to_string());
        self.ids.insert(key.to_string(), id);
        (id, true)
    }
}

/// Many persons' parts (one range of persons) with their keys interned in the sweep's
/// shared [`Names`], and their aggregate (path counts, conversions, value):
/// what one sweep thread builds on its own so a fresh entry's build
/// aggregates in parallel; [`Entry::absorb`] takes them as they are.
#[derive(Default)]
pub(super) struct LocalParts {
    /// The shared ids this thread has used (so it locks only for new keys).
    ids: HashMap<String, u32>,
    /// The lowest person of the thread's range.
    lo: u64,
    parts: BTreeMap<u64, Part>,
    agg: Aggregate,
    /// Bytes charged for the parts.
    bytes: usize,
}

impl LocalParts {
    /// The parts of the persons from `lo` up to the next thread's range.
    pub fn new(lo: u64) -> LocalParts {
        LocalParts { lo, ..LocalParts::default() }
    }

    /// Adds a person's part (an empty one is skipped), persons ascending.
    pub fn push(&mut self, shared: &Mutex<Names>, person: u64, pp: PersonPaths) {
        if pp.is_empty() {
            return;
        }
        debug_assert!(person >= self.lo && self.parts.last_key_value().is_none_or(|l| *l.0 < person), "persons ascending, in range");
        let ids = &mut self.ids;
        let part = to_part(&pp, |k| match ids.get(k) {
            Some(id) => *id,
            None => {
                let id = shared.lock().unwrap_or_else(|e| e.into_inner()).intern(k).0;
                ids.insert(k.to_string(), id);
                id
            }
        });
        self.agg.add(&part, 1);
        self.bytes += part.bytes();
        self.parts.insert(person, part);
    }
}

/// One distinct path's counts: conversions, `(null)` ends, and the exact sum
/// of its conversions' values (retracting a part leaves it exact).
#[derive(Clone, Default)]
struct PathCounts {
    conv: u64,
    null: u64,
    value: ExactSum,
}

/// Path counts and totals over many parts: what the data-driven models and
/// every report's header read. An entry keeps one; each sweep thread builds
/// its own, and [`Aggregate::merge`] joins them.
#[derive(Clone, Default)]
struct Aggregate {
    paths: HashMap<PathId, PathCounts>,
    totals: Totals,
    /// Bytes charged for the distinct paths.
    bytes: usize,
}

impl Aggregate {
    /// The counts of `path`, charged when new.
    fn counts(&mut self, path: PathId) -> &mut PathCounts {
        let len = path.len();
        match self.paths.entry(path) {
            MapEntry::Occupied(o) => o.into_mut(),
            MapEntry::Vacant(v) => {
                self.bytes += PATH_BYTES + len * 4;
                v.insert(PathCounts::default())
            }
        }
    }

    /// Adds (`sign` 1) or retracts (`sign` -1) a part.
    fn add(&mut self, part: &Part, sign: i64) {
        let bump = |n: &mut u64| *n = n.checked_add_signed(sign).expect("a person's part is removed only after it was added");
        for c in &part.convs {
            let value = if sign > 0 { c.value } else { -c.value };
            if c.touches.is_empty() {
                bump(&mut self.totals.direct);
                self.totals.direct_value.add(value);
            } else {
                let counts = self.counts(PathId::collect(c.touches.iter().map(|t| t.2)));
                bump(&mut counts.conv);
                counts.value.add(value);
            }
            bump(&mut self.totals.conversions);
            self.totals.value.add(value);
        }
        if let Some(null) = &part.null {
            bump(&mut self.counts(null.clone()).null);
        }
    }

    /// Adds every count of `other`: the larger path map is kept whole and
    /// the smaller merged into it.
    fn merge(&mut self, mut other: Aggregate) {
        if other.paths.len() > self.paths.len() {
            std::mem::swap(self, &mut other);
        }
        for (path, c) in other.paths {
            let counts = self.counts(path);
            counts.conv += c.conv;
            counts.null += c.null;
            counts.value.merge(&c.value);
        }
        let (t, o) = (&mut self.totals, &other.totals);
        t.conversions += o.conversions;
        t.direct += o.direct;
        t.value.merge(&o.value);
        t.direct_value.merge(&o.direct_value);
    }
}

/// A person's part with its keys interned by `intern`.
fn to_part(pp: &PersonPaths, mut intern: impl FnMut(&str) -> u32) -> Part {
    let convs = pp.convs.iter().map(|c| PartConv { ts: c.ts, value: c.value, touches: c.touches.iter().map(|(ts, ch, k)| (*ts, *ch, intern(k))).collect() }).collect();
    let null = pp.null.as_ref().map(|p| PathId::collect(p.iter().map(|k| intern(k))));
    Part { convs, null, min_ts: pp.min_ts }
}

impl Entry {
    pub fn new(key: EntryKey, epoch: u64, seq: u64) -> Entry {
        Entry {
            key,
            built: false,
            horizon: None,
            groups: Default::default(),
            epoch,
            seq,
            persons: Persons::default(),
            bytes: 0,
            names: Names::default(),
            agg: Aggregate::default(),
            rules: Vec::new(),
        }
    }

    fn intern(&mut self, key: &str) -> u32 {
        let (id, new) = self.names.intern(key);
        if new {
            self.bytes += KEY_BYTES;
        }
        id
    }

    /// Bytes charged for the entry (the budget's measure).
    pub fn bytes(&self) -> usize {
        self.bytes + self.agg.bytes
    }

    fn apply(&mut self, part: &Part, sign: i64) {
        self.agg.add(part, sign);
        for r in &mut self.rules {
            add_credits(&mut r.acc, r.model, &r.params, part, &self.names.names, sign as f64);
        }
    }

    /// Replaces `person`'s part.
    pub fn set(&mut self, person: u64, pp: PersonPaths) {
        if let Some(old) = self.persons.remove(person) {
            self.apply(&old, -1);
            self.bytes -= old.bytes();
        }
        if pp.is_empty() {
            return;
        }
        let part = to_part(&pp, |k| self.intern(k));
        self.apply(&part, 1);
        self.bytes += part.bytes();
        self.persons.insert(person, part);
    }

    /// Fills a fresh entry (no part, key or rule aggregate yet) with one
    /// sweep's parts: the keys they were interned in (`names`) and each
    /// thread's parts, in ascending person ranges from 0. Equal to
    /// [`Entry::set`] of every part; each thread's parts move in as one range,
    /// only the aggregates merge.
    pub fn absorb(&mut self, names: Names, mut locals: Vec<LocalParts>) {
        debug_assert!(self.rules.is_empty() && self.persons.is_empty() && self.names.names.is_empty(), "absorb fills fresh entries only");
        self.bytes += KEY_BYTES * names.names.len();
        self.names = names;
        for local in &mut locals {
            self.agg.merge(std::mem::take(&mut local.agg));
            self.bytes += local.bytes;
        }
        debug_assert!(locals.first().is_none_or(|l| l.lo == 0) && locals.windows(2).all(|w| w[0].lo < w[1].lo), "ranges ascending from 0");
        if !locals.is_empty() {
            self.persons.shards = locals.into_iter().map(|l| (l.lo, l.parts)).collect();
        }
    }

    /// The report of `model` with `params` over the entry.
    pub fn report(&mut self, model: Model, params: &ModelParams) -> AttributionResult {
        let mut r = if model.is_data_driven() { self.data_driven(model) } else { self.rule(model, params) };
        r.currency = Some(self.key.currency.clone());
        r
    }

    /// A rule model's credits per bucket of `edges` over every part's
    /// conversions, by conversion time ([`super::series`]).
    pub fn series(&self, model: Model, params: &ModelParams, edges: &[(Ts, Ts)]) -> SeriesResult {
        let names = &self.names.names;
        let series = self.persons.fold(
            |m| {
                let mut s = Series::new(model, params, edges);
                let mut path = Vec::new();
                for c in m.values().flat_map(|part| &part.convs) {
                    path.clear();
                    path.extend(c.touches.iter().map(|(ts, channel, id)| PathTouch { ts: *ts, channel: *channel, key: names[*id as usize].as_str(), event_id: "" }));
                    s.add(c.ts, c.value, &path);
                }
                s
            },
            |a, b| a.merge(b),
        );
        series.finish(Some(self.key.currency.clone()))
    }

    /// Runs markov/shapley over the aggregate: the keys still in use, sorted by
    /// name and renumbered, as the models require.
    fn data_driven(&self, model: Model) -> AttributionResult {
        let (mut raw, mut live) = (Vec::new(), Vec::new());
        for (path, c) in self.agg.paths.iter().filter(|(_, c)| c.conv + c.null > 0) {
            let at = raw.len();
            path.push_ids(&mut raw);
            live.push((raw.len() - at, c.conv, c.null, c.value.value()));
        }
        let mut used = vec![false; self.names.names.len()];
        for &id in &raw {
            used[id as usize] = true;
        }
        let mut order: Vec<u32> = (0..self.names.names.len() as u32).filter(|id| used[*id as usize]).collect();
        order.sort_by(|a, b| self.names.names[*a as usize].cmp(&self.names.names[*b as usize]));
        let mut remap = vec![u32::MAX; self.names.names.len()];
        for (new, old) in order.iter().enumerate() {
            remap[*old as usize] = new as u32;
        }
        let names: Vec<&str> = order.iter().map(|id| self.names.names[*id as usize].as_str()).collect();
        let flat: Vec<u32> = raw.iter().map(|id| remap[*id as usize]).collect();
        let mut id_paths: Vec<IdPath> = Vec::with_capacity(live.len());
        let mut at = 0;
        for (len, c, n, v) in live {
            id_paths.push((&flat[at..at + len], c, n, v));
            at += len;
        }
        let result = if model == Model::Markov { markov_ids(&names, &id_paths) } else { shapley_ids(&names, &id_paths) };
        rows_of(&result, &self.agg.totals)
    }

    /// A rule model's report: its aggregate, summed over every part the first
    /// time these parameters are asked, then kept up to date by [`Entry::set`].
    fn rule(&mut self, model: Model, params: &ModelParams) -> AttributionResult {
        let i = match self.rules.iter().position(|r| r.model == model && r.params == *params) {
            Some(i) => i,
            None => {
                let acc = self.persons.sum_credits(model, params, &self.names.names);
                if self.rules.len() == MAX_RULES {
                    self.rules.remove(0);
                }
                self.rules.push(RuleAgg { model, params: *params, acc });
                self.rules.len() - 1
            }
        };
        let totals = &self.agg.totals;
        AttributionResult { conversions: totals.conversions, conversion_value: totals.value.value(), currency: None, rows: self.rules[i].acc.clone().into_rows() }
    }
}

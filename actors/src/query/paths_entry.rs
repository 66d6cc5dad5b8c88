//! One entry of the [`super::paths_cache::PathsCache`]: every person's part of
//! one query shape, and the aggregates answered from it — distinct paths with
//! their counts for markov/shapley, and an exact per-key sum of credits for each
//! rule model (with its parameters) asked so far. Replacing a person's part
//! retracts its old contribution and adds the new one; the sums are
//! [`ExactSum`]s, so the result is the same as summing afresh in any order.

use super::attribution::AttributionResult;
use super::datadriven::{rows_of, PersonPaths};
use crate::domain::datadriven::{markov_ids, shapley_ids, IdPath};
use crate::domain::models::{credit_by_key, Model, ModelParams, PathTouch};
use crate::domain::report::{Accumulator, ExactSum};
use crate::domain::{Channel, GroupBy, Ts};
use foldhash::{HashMap, HashMapExt};
use std::collections::hash_map::Entry as MapEntry;

/// Rough bytes per person part, per distinct path, per distinct key and per
/// conversion touchpoint (for the cache budget).
const PERSON_BYTES: usize = 112;
const PATH_BYTES: usize = 48;
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
}

impl EntryKey {
    /// Whether `other` differs from this key at most by its range (an entry
    /// of one can be derived from the other's).
    pub fn same_shape(&self, other: &EntryKey) -> bool {
        self.partition == other.partition && self.tenant == other.tenant && self.group_by == other.group_by && self.lookback_days == other.lookback_days && self.currency == other.currency
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
    null: Option<Box<[u32]>>,
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
    pub epoch: u64,
    pub seq: u64,
    pub persons: HashMap<u64, Part>,
    pub bytes: usize,
    key_ids: HashMap<String, u32>,
    key_names: Vec<String>,
    paths: HashMap<Box<[u32]>, (u64, u64)>,
    rules: Vec<RuleAgg>,
    conversions: u64,
    direct: u64,
    value: ExactSum,
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

/// Many persons' parts with their keys interned locally, and their aggregate
/// (path counts, conversions, value): what one sweep thread builds on its own
/// so a fresh entry's build aggregates in parallel; [`Entry::absorb`] merges it.
#[derive(Default)]
pub(super) struct LocalParts {
    names: Vec<String>,
    ids: HashMap<String, u32>,
    parts: Vec<(u64, Part)>,
    paths: HashMap<Box<[u32]>, (u64, u64)>,
    conversions: u64,
    direct: u64,
    value: ExactSum,
}

impl LocalParts {
    /// Adds a person's part (an empty one is skipped).
    pub fn push(&mut self, person: u64, pp: PersonPaths) {
        if pp.is_empty() {
            return;
        }
        let (names, ids) = (&mut self.names, &mut self.ids);
        let part = to_part(&pp, |k| intern_in(names, ids, k));
        let mut path = Vec::new();
        for c in &part.convs {
            if c.touches.is_empty() {
                self.direct += 1;
            } else {
                path.clear();
                path.extend(c.touches.iter().map(|t| t.2));
                bump(&mut self.paths, &path, true);
            }
            self.conversions += 1;
            self.value.add(c.value);
        }
        if let Some(null) = &part.null {
            bump(&mut self.paths, null, false);
        }
        self.parts.push((person, part));
    }
}

fn intern_in(names: &mut Vec<String>, ids: &mut HashMap<String, u32>, key: &str) -> u32 {
    if let Some(id) = ids.get(key) {
        return *id;
    }
    let id = names.len() as u32;
    names.push(key.to_string());
    ids.insert(key.to_string(), id);
    id
}

fn bump(paths: &mut HashMap<Box<[u32]>, (u64, u64)>, path: &[u32], converted: bool) {
    let counts = match paths.get_mut(path) {
        Some(c) => c,
        None => paths.entry(Box::from(path)).or_default(),
    };
    if converted {
        counts.0 += 1;
    } else {
        counts.1 += 1;
    }
}

/// A person's part with its keys interned by `intern`.
fn to_part(pp: &PersonPaths, mut intern: impl FnMut(&str) -> u32) -> Part {
    let convs = pp.convs.iter().map(|c| PartConv { ts: c.ts, value: c.value, touches: c.touches.iter().map(|(ts, ch, k)| (*ts, *ch, intern(k))).collect() }).collect();
    let null = pp.null.as_ref().map(|p| p.iter().map(|k| intern(k)).collect());
    Part { convs, null, min_ts: pp.min_ts }
}

impl Entry {
    pub fn new(key: EntryKey, epoch: u64, seq: u64) -> Entry {
        Entry {
            key,
            built: false,
            horizon: None,
            epoch,
            seq,
            persons: HashMap::new(),
            bytes: 0,
            key_ids: HashMap::new(),
            key_names: Vec::new(),
            paths: HashMap::new(),
            rules: Vec::new(),
            conversions: 0,
            direct: 0,
            value: ExactSum::new(),
        }
    }

    fn intern(&mut self, key: &str) -> u32 {
        if let Some(id) = self.key_ids.get(key) {
            return *id;
        }
        let id = self.key_names.len() as u32;
        self.key_names.push(key.to_string());
        self.key_ids.insert(key.to_string(), id);
        self.bytes += KEY_BYTES;
        id
    }

    fn count_path(&mut self, path: &[u32], converted: bool, sign: i64) {
        let counts = match self.paths.get_mut(path) {
            Some(c) => c,
            None => {
                self.bytes += PATH_BYTES + path.len() * 4;
                self.paths.entry(Box::from(path)).or_default()
            }
        };
        let n = if converted { &mut counts.0 } else { &mut counts.1 };
        *n = n.checked_add_signed(sign).expect("a person's part is removed only after it was added");
    }

    fn apply(&mut self, part: &Part, sign: i64) {
        let mut ids = Vec::new();
        for c in &part.convs {
            if c.touches.is_empty() {
                self.direct = self.direct.checked_add_signed(sign).expect("direct count");
            } else {
                ids.clear();
                ids.extend(c.touches.iter().map(|t| t.2));
                self.count_path(&ids, true, sign);
            }
            self.conversions = self.conversions.checked_add_signed(sign).expect("conversion count");
            self.value.add(if sign > 0 { c.value } else { -c.value });
        }
        if let Some(path) = &part.null {
            self.count_path(path, false, sign);
        }
        for r in &mut self.rules {
            add_credits(&mut r.acc, r.model, &r.params, part, &self.key_names, sign as f64);
        }
    }

    /// Room for `n` more persons.
    pub fn reserve(&mut self, n: usize) {
        self.persons.reserve(n);
    }

    /// Replaces `person`'s part.
    pub fn set(&mut self, person: u64, pp: PersonPaths) {
        if let Some(old) = self.persons.remove(&person) {
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

    /// Merges a sweep thread's parts into a fresh entry (no rule aggregate
    /// yet, none of these persons present): its keys re-interned here, its
    /// path counts and sums added. Equal to [`Entry::set`] of every part.
    pub fn absorb(&mut self, local: LocalParts) {
        debug_assert!(self.rules.is_empty(), "absorb builds fresh entries only");
        let remap: Vec<u32> = local.names.iter().map(|n| self.intern(n)).collect();
        for (path, (c, n)) in local.paths {
            let path: Box<[u32]> = path.iter().map(|&i| remap[i as usize]).collect();
            let bytes = PATH_BYTES + path.len() * 4;
            let counts = match self.paths.entry(path) {
                MapEntry::Occupied(o) => o.into_mut(),
                MapEntry::Vacant(v) => {
                    self.bytes += bytes;
                    v.insert((0, 0))
                }
            };
            counts.0 += c;
            counts.1 += n;
        }
        self.conversions += local.conversions;
        self.direct += local.direct;
        self.value.merge(&local.value);
        self.persons.reserve(local.parts.len());
        for (person, mut part) in local.parts {
            for c in &mut part.convs {
                for t in c.touches.iter_mut() {
                    t.2 = remap[t.2 as usize];
                }
            }
            if let Some(null) = &mut part.null {
                for id in null.iter_mut() {
                    *id = remap[*id as usize];
                }
            }
            self.bytes += part.bytes();
            let old = self.persons.insert(person, part);
            debug_assert!(old.is_none(), "absorb builds fresh entries only");
        }
    }

    /// The report of `model` with `params` over the entry.
    pub fn report(&mut self, model: Model, params: &ModelParams) -> AttributionResult {
        let mut r = if model.is_data_driven() { self.data_driven(model) } else { self.rule(model, params) };
        r.currency = Some(self.key.currency.clone());
        r
    }

    /// Runs markov/shapley over the aggregate: the keys still in use, sorted by
    /// name and renumbered, as the models require.
    fn data_driven(&self, model: Model) -> AttributionResult {
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
        rows_of(&result, self.conversions, self.direct, self.value.value())
    }

    /// A rule model's report: its aggregate, summed over every part the first
    /// time these parameters are asked, then kept up to date by [`Entry::set`].
    fn rule(&mut self, model: Model, params: &ModelParams) -> AttributionResult {
        let i = match self.rules.iter().position(|r| r.model == model && r.params == *params) {
            Some(i) => i,
            None => {
                let mut acc = Accumulator::new();
                for part in self.persons.values() {
                    add_credits(&mut acc, model, params, part, &self.key_names, 1.0);
                }
                if self.rules.len() == MAX_RULES {
                    self.rules.remove(0);
                }
                self.rules.push(RuleAgg { model, params: *params, acc });
                self.rules.len() - 1
            }
        };
        AttributionResult { conversions: self.conversions, conversion_value: self.value.value(), currency: None, rows: self.rules[i].acc.clone().into_rows() }
    }
}

//! The incremental form of the probabilistic links: the per-address index a
//! streaming engine keeps for one tenant, which anonymous components a change
//! can affect, and one component's link — pure data and functions, no I/O.
//!
//! The contract: keep `links` (anonymous component → [`ProbLink`]) and, for
//! every change, `for c in index.apply(change) { links[c] = index.evaluate_component(c, t) }`
//! (removing the entry on `None`). Then `links` always equals the batch
//! [`links`](super::links) over the index's components and events
//! (property-tested). Why the affected sets are enough (score(X, K) depends
//! only on X's and K's events on unshared addresses, and X's link on the
//! scores of X alone):
//!
//! - (a) a signal event of C on address I: nothing if C is erased or I was
//!   shared already. If I becomes shared (C is its `max_ip_persons + 1`-th
//!   component), every anonymous component on I loses its scores there.
//!   Otherwise only C (when anonymous: its own scores grow) or the anonymous
//!   components with an event on I within 24 h of it (C known: their score
//!   with C may grow, and a second candidate removes a link).
//! - (b) a merge of `from` into `into`: both (the merged one may be known now,
//!   `from` disappears) and the anonymous components on every address of
//!   either, except addresses shared before and after (the merge removes one
//!   component from an address holding both).
//! - (c) C becomes known (a login without a merge): C and the anonymous
//!   components on its unshared addresses (C is a new candidate for them).
//! - (d) C is erased: C and the anonymous components on its addresses that
//!   are unshared once C has left them (its events are dropped).
//!
//! `evaluate_component(A)` reads only A's addresses: for each unshared one,
//! each known component there is scored with a 24 h window sweep over the
//! two time-sorted event lists, in O(|A's events| + |K's events| + pairs).

use super::{decide, raise, Component, ComponentId, GeoMemo, LatLon, ProbLink, SignalEvent, DAY_NANOS, FULL_POINTS};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A change to one tenant's deterministic components or signal events.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A new signal event (ignored when its component is erased). A component
    /// the index has not seen is anonymous.
    Signal(SignalEvent),
    /// Component `from` merged into `into` (deterministic link): `from`'s
    /// events move to `into`, which is known when either was, and erased only
    /// when both were.
    Merge { into: ComponentId, from: ComponentId },
    /// The component now holds a `user_id` node.
    Known(ComponentId),
    /// The component is erased: its events are dropped and it takes no part.
    Erase(ComponentId),
}

/// One signal event on an address.
#[derive(Clone, Debug, PartialEq)]
struct Stamp {
    ts: i128,
    user_agent: Option<String>,
    geo: LatLon,
}

/// The signal events of one tenant by address and component, and the roles of
/// its components.
#[derive(Clone, Debug, Default)]
pub struct SignalIndex {
    max_ip_persons: usize,
    roles: HashMap<ComponentId, Component>,
    /// Address → non-erased component → its events there, sorted by time.
    addresses: HashMap<String, BTreeMap<ComponentId, Vec<Stamp>>>,
    /// Component → the addresses it has events on.
    addresses_of: HashMap<ComponentId, BTreeSet<String>>,
}

impl SignalIndex {
    pub fn new(max_ip_persons: usize) -> SignalIndex {
        SignalIndex { max_ip_persons, ..SignalIndex::default() }
    }

    /// The index of a whole snapshot (the batch's inputs).
    pub fn build(components: &[Component], events: &[SignalEvent], max_ip_persons: usize) -> SignalIndex {
        let mut index = SignalIndex::new(max_ip_persons);
        index.roles.extend(components.iter().map(|c| (c.id, *c)));
        for e in events {
            index.insert(e);
        }
        index
    }

    /// A component's role (anonymous when never seen).
    pub fn role(&self, id: ComponentId) -> Component {
        self.roles.get(&id).copied().unwrap_or(Component::anonymous(id))
    }

    fn is_shared(&self, components_there: usize) -> bool {
        components_there > self.max_ip_persons
    }

    /// The components whose link may differ after `change`, on the index
    /// before it (see the module doc). Any of them may have become known,
    /// erased or merged away: `evaluate_component` answers `None` for those.
    pub fn affected_components(&self, change: &Change) -> BTreeSet<ComponentId> {
        let mut out = BTreeSet::new();
        match change {
            Change::Signal(e) => {
                let c = self.role(e.component);
                let there = self.addresses.get(&e.signal.ip);
                let before = there.map_or(0, BTreeMap::len);
                if c.erased || self.is_shared(before) {
                    return out;
                }
                let after = before + usize::from(!there.is_some_and(|t| t.contains_key(&c.id)));
                if !c.known {
                    out.insert(c.id);
                }
                if self.is_shared(after) {
                    self.anonymous_on(&e.signal.ip, None, &mut out);
                } else if c.known {
                    self.anonymous_on(&e.signal.ip, Some(e.ts.as_nanos()), &mut out);
                }
            }
            &Change::Merge { into, from } => {
                if into == from {
                    return out;
                }
                out.extend([into, from]);
                for ip in self.addresses_of_all(&[into, from]) {
                    let there = &self.addresses[ip];
                    let both = there.contains_key(&into) && there.contains_key(&from);
                    if !self.is_shared(there.len() - usize::from(both)) || !self.is_shared(there.len()) {
                        self.anonymous_on(ip, None, &mut out);
                    }
                }
            }
            &Change::Known(c) | &Change::Erase(c) => {
                let role = self.role(c);
                let erase = matches!(change, Change::Erase(_));
                if role.erased || (role.known && !erase) {
                    return out;
                }
                out.insert(c);
                for ip in self.addresses_of_all(&[c]) {
                    let there = self.addresses[ip].len();
                    if !self.is_shared(there - usize::from(erase)) {
                        self.anonymous_on(ip, None, &mut out);
                    }
                }
            }
        }
        out
    }

    /// The addresses of any of `components`, each once.
    fn addresses_of_all(&self, components: &[ComponentId]) -> BTreeSet<&String> {
        components.iter().filter_map(|c| self.addresses_of.get(c)).flatten().collect()
    }

    /// Adds the anonymous components on `ip` (with an event within 24 h of
    /// `near`, when given) to `out`.
    fn anonymous_on(&self, ip: &str, near: Option<i128>, out: &mut BTreeSet<ComponentId>) {
        let Some(there) = self.addresses.get(ip) else { return };
        for (&c, stamps) in there {
            let close = match near {
                None => true,
                Some(t) => {
                    let first = stamps.partition_point(|s| s.ts < t - DAY_NANOS);
                    stamps.get(first).is_some_and(|s| s.ts <= t + DAY_NANOS)
                }
            };
            if close && !self.role(c).known {
                out.insert(c);
            }
        }
    }

    /// Applies `change` and returns [`affected_components`](Self::affected_components)
    /// (computed before it), the components to re-evaluate.
    pub fn apply(&mut self, change: Change) -> BTreeSet<ComponentId> {
        let affected = self.affected_components(&change);
        match change {
            Change::Signal(e) => {
                if !self.role(e.component).erased {
                    self.roles.entry(e.component).or_insert(Component::anonymous(e.component));
                    self.insert(&e);
                }
            }
            Change::Merge { into, from } if into != from => {
                let (a, b) = (self.role(into), self.role(from));
                self.roles.remove(&from);
                let merged = Component { id: into, known: a.known || b.known, erased: a.erased && b.erased };
                self.roles.insert(into, merged);
                for ip in self.addresses_of.remove(&from).unwrap_or_default() {
                    let there = self.addresses.get_mut(&ip).expect("indexed address");
                    let moved = there.remove(&from).unwrap_or_default();
                    let dst = there.entry(into).or_default();
                    dst.extend(moved);
                    dst.sort_by_key(|s| s.ts);
                    self.addresses_of.entry(into).or_default().insert(ip);
                }
            }
            Change::Merge { .. } => {}
            Change::Known(c) => self.roles.entry(c).or_insert(Component::anonymous(c)).known = true,
            Change::Erase(c) => {
                self.roles.entry(c).or_insert(Component::anonymous(c)).erased = true;
                for ip in self.addresses_of.remove(&c).unwrap_or_default() {
                    if let Some(there) = self.addresses.get_mut(&ip) {
                        there.remove(&c);
                        if there.is_empty() {
                            self.addresses.remove(&ip);
                        }
                    }
                }
            }
        }
        affected
    }

    /// Indexes one signal event (skipped when its component is erased).
    fn insert(&mut self, e: &SignalEvent) {
        if self.role(e.component).erased {
            return;
        }
        let s = &e.signal;
        let stamp = Stamp { ts: e.ts.as_nanos(), user_agent: s.user_agent.clone(), geo: s.geo };
        let stamps = self.addresses.entry(s.ip.clone()).or_default().entry(e.component).or_default();
        let at = stamps.partition_point(|x| x.ts <= stamp.ts);
        stamps.insert(at, stamp);
        self.addresses_of.entry(e.component).or_default().insert(s.ip.clone());
    }

    /// The link of one component (rule 5): `None` unless it is anonymous, not
    /// erased, and exactly one known component scores ≥ `threshold` points with it.
    pub fn evaluate_component(&self, anon: ComponentId, threshold: u32) -> Option<ProbLink> {
        let role = self.role(anon);
        if role.known || role.erased {
            return None;
        }
        let mut scores: BTreeMap<ComponentId, u32> = BTreeMap::new();
        for ip in self.addresses_of.get(&anon)? {
            let there = &self.addresses[ip];
            if self.is_shared(there.len()) {
                continue;
            }
            let mine = &there[&anon];
            for (&k, theirs) in there.iter().filter(|&(&k, _)| self.role(k).known) {
                let s = best_between(mine, theirs);
                if s > 0 {
                    let e = scores.entry(k).or_insert(0);
                    *e = (*e).max(s);
                }
            }
        }
        decide(scores, threshold)
    }

    /// Every link, by evaluating each anonymous component with events.
    pub fn evaluate_all(&self, threshold: u32) -> BTreeMap<ComponentId, ProbLink> {
        let mut ids: Vec<ComponentId> = self.addresses_of.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().filter_map(|c| Some((c, self.evaluate_component(c, threshold)?))).collect()
    }
}

/// The best pair score between two time-sorted event lists on one address
/// (a 24 h window sweep; stops at the highest possible score).
fn best_between(mine: &[Stamp], theirs: &[Stamp]) -> u32 {
    let (mut best, mut lo, mut memo) = (0, 0, GeoMemo::default());
    for a in mine {
        while lo < theirs.len() && theirs[lo].ts < a.ts - DAY_NANOS {
            lo += 1;
        }
        for k in theirs[lo..].iter().take_while(|k| k.ts - a.ts <= DAY_NANOS) {
            let same_ua = a.user_agent.is_some() && a.user_agent == k.user_agent;
            best = raise(best, a.ts - k.ts, same_ua, || memo.points(a.geo, k.geo));
            if best == FULL_POINTS {
                return best;
            }
        }
    }
    best
}

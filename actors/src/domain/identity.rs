//! Cross-device identity stitching: typed identifier nodes, deterministic links,
//! union by size, and the merge guard — written once over an [`IdentityStore`] so
//! the same code runs over RocksDB (the tenant actor) and over a `HashMap` (tests,
//! property tests, the batch reference).
//!
//! Semantics (attribution.md, "Persons"): a person is a connected set of typed
//! identifiers. The merge guard `max_ids_per_person` is order-independent by
//! definition: links are replayed in `(timestamp, event_id)` order and a link
//! whose merge would make a person exceed the cap is blocked ([`stitch`]).
//! Streaming reaches the same answer: while a link component stays within the cap
//! every link simply merges (no merge can then be blocked in any order); once a
//! component exceeds it, its persons are marked `guarded` and every later link
//! touching them re-stitches the component from its stored links.
//!
//! Links are stored one record per node pair ([`Link::count`]): the pair's
//! earliest link in `(timestamp, event_id)` order and how many links it has
//! seen. That keeps the guard and the blocked count exact: in the batch order
//! a pair's later links either find both nodes already joined (no-ops) or,
//! once its earliest link is blocked, are blocked too (the two persons only
//! grow, so their sum stays over the cap) and count one each.

use crate::domain::event::Ts;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// `customer_id x` and `user_id x` are different nodes; lookups try customer first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IdKind {
    Customer,
    User,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::Customer => "customer_id",
            IdKind::User => "user_id",
        }
    }
    pub fn tag(self) -> u8 {
        match self {
            IdKind::Customer => b'c',
            IdKind::User => b'u',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdNode {
    pub kind: IdKind,
    pub id: String,
}

impl IdNode {
    pub fn customer(id: impl Into<String>) -> IdNode {
        IdNode { kind: IdKind::Customer, id: id.into() }
    }
    pub fn user(id: impl Into<String>) -> IdNode {
        IdNode { kind: IdKind::User, id: id.into() }
    }
}

/// A deterministic link observed on an event (`customer_id` ↔ `user_id`),
/// or, stored, the record of one node pair: its earliest link and the
/// number of links of the pair seen.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Link {
    pub ts: Ts,
    pub event_id: String,
    pub a: IdNode,
    pub b: IdNode,
    /// Links of the pair this record stands for: 1 for one event's link.
    /// Values written before pairs were kept (one record per event) read as 1.
    #[serde(default = "one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

impl Link {
    /// The link of one event.
    pub fn new(ts: Ts, event_id: impl Into<String>, a: IdNode, b: IdNode) -> Link {
        Link { ts, event_id: event_id.into(), a, b, count: 1 }
    }

    /// Whether `other` joins the same two nodes (in either direction).
    pub fn same_pair(&self, other: &Link) -> bool {
        (self.a == other.a && self.b == other.b) || (self.a == other.b && self.b == other.a)
    }

    /// The record of this pair once `other` (a link of the same pair) is
    /// added: the earlier of the two in `(ts, event_id)` order, counts summed.
    pub fn merged(&self, other: &Link) -> Link {
        let first = if (other.ts, &other.event_id) < (self.ts, &self.event_id) { other } else { self };
        Link { count: self.count + other.count, ..first.clone() }
    }
}

/// The identity part of a person record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonIds {
    /// Sorted, unique.
    pub members: Vec<IdNode>,
    /// Its link component exceeded the cap: links touching it re-stitch.
    pub guarded: bool,
}

impl PersonIds {
    /// The public, order-independent person id: the smallest member.
    pub fn public_id(&self) -> String {
        match self.members.first() {
            Some(n) => format!("{}:{}", n.kind.as_str(), n.id),
            None => String::new(),
        }
    }
}

/// Storage the stitching logic runs over.
pub trait IdentityStore {
    type Error;
    fn person_of(&mut self, node: &IdNode) -> Result<Option<u64>, Self::Error>;
    fn set_person_of(&mut self, node: &IdNode, person: u64) -> Result<(), Self::Error>;
    fn person(&mut self, key: u64) -> Result<Option<PersonIds>, Self::Error>;
    fn put_person(&mut self, key: u64, ids: &PersonIds) -> Result<(), Self::Error>;
    fn delete_person(&mut self, key: u64) -> Result<(), Self::Error>;
    /// Adds `link` to its pair's record ([`Link::merged`]), kept under both
    /// nodes; returns the record before (`None`: the pair's first link).
    fn add_link(&mut self, link: &Link) -> Result<Option<Link>, Self::Error>;
    /// The records of `node`'s pairs (one per pair; stores written by older
    /// builds may also hold one record per link, each counting 1).
    fn links_of(&mut self, node: &IdNode) -> Result<Vec<Link>, Self::Error>;
    fn next_person_key(&mut self) -> Result<u64, Self::Error>;
}

/// Nodes that changed person: their records must move from `from` to `to`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Move {
    pub from: u64,
    pub to: u64,
    pub nodes: Vec<IdNode>,
    /// `from` no longer exists (all its nodes moved).
    pub whole: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkOutcome {
    pub moves: Vec<Move>,
    /// Links the guard blocks now that it did not block before this step (the
    /// metric counts each blocked link once, however often its component is
    /// re-stitched).
    pub blocked: usize,
    /// Links the guard blocked before this step and no longer does: a late
    /// link earlier in `(ts, event_id)` order can change which merges come
    /// first. `blocked − unblocked` summed over every step is the batch count.
    pub unblocked: usize,
    /// Persons created for previously unknown nodes.
    pub created: Vec<u64>,
}

/// The person of `node`, creating a singleton person when it is new.
pub fn ensure_node<S: IdentityStore>(store: &mut S, node: &IdNode, created: &mut Vec<u64>) -> Result<u64, S::Error> {
    if let Some(p) = store.person_of(node)? {
        return Ok(p);
    }
    let key = store.next_person_key()?;
    store.put_person(key, &PersonIds { members: vec![node.clone()], guarded: false })?;
    store.set_person_of(node, key)?;
    created.push(key);
    Ok(key)
}

/// Applies one link (both nodes are created when new).
pub fn apply_link<S: IdentityStore>(store: &mut S, link: &Link, max_ids: usize) -> Result<LinkOutcome, S::Error> {
    let mut out = LinkOutcome::default();
    let pa = ensure_node(store, &link.a, &mut out.created)?;
    let pb = ensure_node(store, &link.b, &mut out.created)?;
    let prev = store.add_link(link)?;
    let a = store.person(pa)?.unwrap_or_default();
    let b = if pa == pb { a.clone() } else { store.person(pb)?.unwrap_or_default() };
    if pa == pb && !a.guarded {
        return Ok(out);
    }
    if !a.guarded && !b.guarded && a.members.len() + b.members.len() <= max_ids {
        // Union by size: the larger person keeps its key.
        let (keep, gone, mut kept, moved) =
            if a.members.len() >= b.members.len() { (pa, pb, a, b) } else { (pb, pa, b, a) };
        for n in &moved.members {
            store.set_person_of(n, keep)?;
        }
        kept.members.extend(moved.members.iter().cloned());
        kept.members.sort();
        kept.members.dedup();
        store.put_person(keep, &kept)?;
        store.delete_person(gone)?;
        out.moves.push(Move { from: gone, to: keep, nodes: moved.members, whole: true });
        return Ok(out);
    }
    restitch(store, link, prev.as_ref(), max_ids, &mut out)?;
    Ok(out)
}

/// Recomputes the guarded persons of the whole link component of `new`, the
/// link just added to its pair's record `prev`.
fn restitch<S: IdentityStore>(store: &mut S, new: &Link, prev: Option<&Link>, max_ids: usize, out: &mut LinkOutcome) -> Result<(), S::Error> {
    let start = &new.a;
    // Gather the raw component and its links.
    let mut seen: BTreeSet<IdNode> = BTreeSet::new();
    let mut links: BTreeSet<Link> = BTreeSet::new();
    let mut queue = VecDeque::from([start.clone()]);
    seen.insert(start.clone());
    while let Some(n) = queue.pop_front() {
        for l in store.links_of(&n)? {
            for m in [&l.a, &l.b] {
                if seen.insert(m.clone()) {
                    queue.push_back(m.clone());
                }
            }
            links.insert(l);
        }
    }
    // Old assignment of the component's nodes.
    let mut old_of: BTreeMap<IdNode, u64> = BTreeMap::new();
    let mut old_persons: BTreeSet<u64> = BTreeSet::new();
    for n in &seen {
        if let Some(p) = store.person_of(n)? {
            old_of.insert(n.clone(), p);
            old_persons.insert(p);
        }
    }
    // A person may hold nodes outside this link component only if they were
    // merged by links; by construction persons are link-connected, so all of an
    // old person's members are in `seen`.
    let nodes: Vec<IdNode> = seen.iter().cloned().collect();
    let links: Vec<Link> = links.into_iter().collect();
    let st = stitch(&nodes, &links, max_ids);
    // The component before this link: its pair's record as it was.
    let after = prev.map_or_else(|| new.clone(), |p| p.merged(new));
    let before: Vec<Link> = links.iter().filter(|l| **l != after).cloned().chain(prev.cloned()).collect();
    let was = stitch(&nodes, &before, max_ids).blocked;
    out.blocked += st.blocked.saturating_sub(was);
    out.unblocked += was.saturating_sub(st.blocked);
    let guarded = nodes.len() > max_ids;
    // Give each new group the old key that holds most of its members (ties: smaller key).
    let mut used: BTreeSet<u64> = BTreeSet::new();
    let mut assignment: Vec<(u64, &Vec<IdNode>)> = Vec::new();
    let mut groups: Vec<&Vec<IdNode>> = st.groups.iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    for g in groups {
        let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
        for n in g {
            if let Some(p) = old_of.get(n) {
                *votes.entry(*p).or_default() += 1;
            }
        }
        let best = votes
            .iter()
            .filter(|(k, _)| !used.contains(k))
            .max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0)))
            .map(|(k, _)| *k);
        let key = match best {
            Some(k) => k,
            None => {
                let k = store.next_person_key()?;
                out.created.push(k);
                k
            }
        };
        used.insert(key);
        assignment.push((key, g));
    }
    let mut moves: BTreeMap<(u64, u64), Vec<IdNode>> = BTreeMap::new();
    for (key, g) in &assignment {
        for n in g.iter() {
            let old = old_of.get(n).copied();
            if old != Some(*key) {
                store.set_person_of(n, *key)?;
                if let Some(old) = old {
                    moves.entry((old, *key)).or_default().push(n.clone());
                }
            }
        }
        store.put_person(*key, &PersonIds { members: (*g).clone(), guarded })?;
    }
    for p in &old_persons {
        if !used.contains(p) {
            store.delete_person(*p)?;
        }
    }
    for ((from, to), nodes) in moves {
        out.moves.push(Move { from, to, nodes, whole: !used.contains(&from) });
    }
    Ok(())
}

/// The result of the batch definition of stitching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stitching {
    /// Each group sorted; groups sorted by their first member.
    pub groups: Vec<Vec<IdNode>>,
    pub blocked: usize,
}

/// The batch definition: every node is a person; links in `(ts, event_id)` order
/// merge persons unless the merged person would exceed `max_ids`. A record
/// standing for several links of one pair ([`Link::count`]) is decided by its
/// earliest and, blocked, counts each of them.
pub fn stitch(nodes: &[IdNode], links: &[Link], max_ids: usize) -> Stitching {
    let mut index: HashMap<&IdNode, usize> = HashMap::new();
    let mut all: Vec<&IdNode> = Vec::new();
    for n in nodes.iter().chain(links.iter().flat_map(|l| [&l.a, &l.b])) {
        if !index.contains_key(n) {
            index.insert(n, all.len());
            all.push(n);
        }
    }
    let mut parent: Vec<usize> = (0..all.len()).collect();
    let mut size: Vec<usize> = vec![1; all.len()];
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut order: Vec<&Link> = links.iter().collect();
    order.sort_by(|x, y| (x.ts, &x.event_id, &x.a, &x.b).cmp(&(y.ts, &y.event_id, &y.a, &y.b)));
    let mut blocked = 0;
    for l in order {
        let (ra, rb) = (find(&mut parent, index[&l.a]), find(&mut parent, index[&l.b]));
        if ra == rb {
            continue;
        }
        if size[ra] + size[rb] > max_ids {
            blocked += l.count as usize;
            continue;
        }
        let (big, small) = if size[ra] >= size[rb] { (ra, rb) } else { (rb, ra) };
        parent[small] = big;
        size[big] += size[small];
    }
    let mut groups: BTreeMap<usize, Vec<IdNode>> = BTreeMap::new();
    for (i, node) in all.iter().enumerate() {
        let r = find(&mut parent, i);
        groups.entry(r).or_default().push((*node).clone());
    }
    let mut groups: Vec<Vec<IdNode>> = groups.into_values().collect();
    for g in &mut groups {
        g.sort();
    }
    groups.sort();
    Stitching { groups, blocked }
}

/// An in-memory [`IdentityStore`] (tests and the batch reference).
#[derive(Clone, Debug, Default)]
pub struct MemIdentity {
    pub node_person: HashMap<IdNode, u64>,
    pub persons: HashMap<u64, PersonIds>,
    /// Per node, one record per pair ([`Link::merged`]).
    pub links: HashMap<IdNode, Vec<Link>>,
    pub next: u64,
}

impl MemIdentity {
    /// Persons as sorted member groups (comparable across runs).
    pub fn groups(&self) -> Vec<Vec<IdNode>> {
        let mut g: Vec<Vec<IdNode>> = self.persons.values().map(|p| p.members.clone()).collect();
        g.sort();
        g
    }
}

impl IdentityStore for MemIdentity {
    type Error = std::convert::Infallible;
    fn person_of(&mut self, node: &IdNode) -> Result<Option<u64>, Self::Error> {
        Ok(self.node_person.get(node).copied())
    }
    fn set_person_of(&mut self, node: &IdNode, person: u64) -> Result<(), Self::Error> {
        self.node_person.insert(node.clone(), person);
        Ok(())
    }
    fn person(&mut self, key: u64) -> Result<Option<PersonIds>, Self::Error> {
        Ok(self.persons.get(&key).cloned())
    }
    fn put_person(&mut self, key: u64, ids: &PersonIds) -> Result<(), Self::Error> {
        self.persons.insert(key, ids.clone());
        Ok(())
    }
    fn delete_person(&mut self, key: u64) -> Result<(), Self::Error> {
        self.persons.remove(&key);
        Ok(())
    }
    fn add_link(&mut self, link: &Link) -> Result<Option<Link>, Self::Error> {
        let mut prev = None;
        for n in [&link.a, &link.b] {
            let v = self.links.entry(n.clone()).or_default();
            match v.iter_mut().find(|l| l.same_pair(link)) {
                Some(l) => {
                    prev = Some(l.clone());
                    *l = l.merged(link);
                }
                None => v.push(link.clone()),
            }
        }
        Ok(prev)
    }
    fn links_of(&mut self, node: &IdNode) -> Result<Vec<Link>, Self::Error> {
        Ok(self.links.get(node).cloned().unwrap_or_default())
    }
    fn next_person_key(&mut self) -> Result<u64, Self::Error> {
        self.next += 1;
        Ok(self.next)
    }
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;

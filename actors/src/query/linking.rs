//! Probabilistic links as queries see them (attribution.md, "Probabilistic
//! links"): for a tenant with `probabilistic = true`, the deterministic persons
//! are joined into final persons by the links the tenant actor keeps at apply
//! time (`state::problinks`, read with [`stored_links`](crate::state::problinks::stored_links)),
//! so a later event, merge, login or erasure is reflected exactly, whatever
//! the arrival order. Until the tenant has applied a batch under its current
//! settings (just turned on, or a threshold changed), the links are evaluated
//! here instead, by the pure rule (`domain::probabilistic::links`) over the
//! tenant's stored signals (`state::SignalRec`, kept for every tenant) and its
//! current identity graph ([`final_persons`]). Reports under `identity=all`
//! then read each final person's members together ([`FinalPersons`]).

use super::QueryError;
use crate::domain::identity::IdKind;
use crate::domain::probabilistic::{self, Component, ProbLink, Signal, SignalEvent};
use crate::domain::Ts;
use crate::state::{key, PersonRec, SignalRec};
use std::collections::{BTreeMap, HashMap};
use touchline_storage::{codec, Store};

pub use crate::domain::probabilistic::{Linking, LinkingPolicy};

/// Which persons a query answers over (`identity` query parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdentityView {
    /// Final persons: deterministic ones joined by probabilistic links.
    #[default]
    All,
    Deterministic,
}

impl IdentityView {
    pub fn parse(s: &str) -> Option<IdentityView> {
        match s {
            "all" => Some(IdentityView::All),
            "deterministic" => Some(IdentityView::Deterministic),
            _ => None,
        }
    }
}

/// Final persons of a tenant: each anonymous deterministic person linked to a
/// known one, and each known person's linked members.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FinalPersons {
    /// Anonymous person → its link.
    pub links: BTreeMap<u64, ProbLink>,
    /// Known person → its linked anonymous persons (ascending).
    pub linked: BTreeMap<u64, Vec<u64>>,
    /// Read from the stored links (kept up to date by the tenant actor, so
    /// every change of them is a committed write the report cache sees),
    /// not evaluated from the signals.
    pub stored: bool,
}

impl FinalPersons {
    pub fn from_links(links: BTreeMap<u64, ProbLink>) -> FinalPersons {
        let mut linked: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (a, l) in &links {
            linked.entry(l.known).or_default().push(*a);
        }
        FinalPersons { links, linked, stored: false }
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The final person a deterministic person belongs to (its known person's key).
    pub fn group_of(&self, person: u64) -> u64 {
        self.links.get(&person).map_or(person, |l| l.known)
    }

    /// The deterministic persons of the final person `group`: itself first,
    /// then its linked ones.
    pub fn members_of(&self, group: u64) -> Vec<u64> {
        std::iter::once(group).chain(self.linked.get(&group).into_iter().flatten().copied()).collect()
    }
}

/// The deterministic persons of `person` as `view` sees it (itself alone
/// without a view).
pub fn members(view: Option<&FinalPersons>, person: u64) -> Vec<u64> {
    view.map_or_else(|| vec![person], |v| v.members_of(person))
}

/// Evaluates the tenant's probabilistic links over its stored signals: one
/// scan of the signals plus a lookup of each distinct customer_id's person.
/// Signals behind the retention `horizon` are gone like the touchpoints of
/// their time (the sweep deletes them; until it has, they are skipped here),
/// so the links never depend on how far the sweep got.
pub fn final_persons(store: &Store, p: u16, tenant: &str, linking: Linking, horizon: Option<Ts>) -> Result<FinalPersons, QueryError> {
    let mut person_of: HashMap<String, Option<u64>> = HashMap::new();
    let mut known: BTreeMap<u64, bool> = BTreeMap::new();
    let mut events = Vec::new();
    let mut recs: Vec<SignalRec> = Vec::new();
    store.scan_as::<SignalRec>(&key::signals_prefix(p, tenant), &touchline_storage::keys::prefix_end(&key::signals_prefix(p, tenant)), |_, r| {
        recs.push(r);
        true
    })?;
    for r in recs.into_iter().filter(|r| crate::domain::retention::retained(r.ts, horizon)) {
        let person = match person_of.get(&r.customer_id) {
            Some(x) => *x,
            None => {
                let x = lookup(store, p, tenant, &r.customer_id)?;
                person_of.insert(r.customer_id.clone(), x);
                x
            }
        };
        // An erased person's identifiers are gone: it takes no part.
        let Some(person) = person else { continue };
        if let std::collections::btree_map::Entry::Vacant(e) = known.entry(person) {
            e.insert(is_known(store, p, tenant, person)?);
        }
        if let Some(signal) = Signal::new(&r.ip, r.user_agent.as_deref(), r.geo) {
            events.push(SignalEvent { component: person, ts: r.ts, signal });
        }
    }
    let components: Vec<Component> = known.iter().map(|(&id, &k)| if k { Component::known(id) } else { Component::anonymous(id) }).collect();
    let links = probabilistic::links(&components, &events, linking.threshold, linking.max_ip_persons);
    crate::metrics::probabilistic_links(p, tenant, links.len());
    Ok(FinalPersons::from_links(links))
}

/// Final persons read (or evaluated) per (partition, tenant), reused while the
/// partition has applied nothing since (state is a function of the applied
/// prefix of the partition, so the same next offset means the same links).
/// At most `cap` tenants are kept.
pub struct LinkCache {
    cap: usize,
    entries: std::sync::Mutex<HashMap<(u16, String), Evaluated>>,
}

/// The next offset an evaluation was made at, and its result.
type Evaluated = (i64, std::sync::Arc<FinalPersons>);

impl LinkCache {
    pub fn new(cap: usize) -> LinkCache {
        LinkCache { cap, entries: Default::default() }
    }

    /// The final persons of `tenant` as of `next_offset` (read before the
    /// call; `horizon`, the tenant's retention horizon, is a function of the
    /// same applied prefix).
    pub fn get(&self, store: &Store, p: u16, tenant: &str, linking: Linking, horizon: Option<Ts>, next_offset: i64) -> Result<std::sync::Arc<FinalPersons>, QueryError> {
        let k = (p, tenant.to_string());
        if let Some((o, f)) = self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(&k) {
            if *o == next_offset {
                return Ok(f.clone());
            }
        }
        let f = std::sync::Arc::new(match crate::state::problinks::stored_links(store, p, tenant, linking)? {
            Some(links) => {
                crate::metrics::probabilistic_links(p, tenant, links.len());
                FinalPersons { stored: true, ..FinalPersons::from_links(links) }
            }
            None => final_persons(store, p, tenant, linking, horizon)?,
        });
        let mut m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= self.cap && !m.contains_key(&k) {
            if let Some(evict) = m.keys().next().cloned() {
                m.remove(&evict);
            }
        }
        m.insert(k, (next_offset, f.clone()));
        Ok(f)
    }
}

/// The person of a customer_id node.
fn lookup(store: &Store, p: u16, tenant: &str, customer_id: &str) -> Result<Option<u64>, QueryError> {
    Ok(store.get(&key::node_lookup(p, tenant, IdKind::Customer, customer_id))?.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok()).map(u64::from_be_bytes))
}

/// Whether a person holds a user_id node.
fn is_known(store: &Store, p: u16, tenant: &str, person: u64) -> Result<bool, QueryError> {
    let k = key::person(p, tenant, person);
    let Some(raw) = store.get(&k)? else { return Ok(false) };
    let rec: PersonRec = codec::decode(&k, &raw)?;
    Ok(rec.ids.members.iter().any(|n| n.kind == IdKind::User))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_join_linked_persons_under_their_known_person() {
        let links = BTreeMap::from([(5, ProbLink { known: 2, score: 8000 }), (7, ProbLink { known: 2, score: 7200 }), (9, ProbLink { known: 3, score: 9000 })]);
        let f = FinalPersons::from_links(links);
        assert_eq!((f.group_of(5), f.group_of(7), f.group_of(9), f.group_of(2), f.group_of(4)), (2, 2, 3, 2, 4));
        assert_eq!(f.members_of(2), vec![2, 5, 7]);
        assert_eq!(f.members_of(4), vec![4]);
        assert_eq!(IdentityView::parse("all"), Some(IdentityView::All));
        assert_eq!(IdentityView::parse("x"), None);
    }

    #[test]
    fn the_cache_reuses_an_evaluation_only_at_the_same_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        let c = LinkCache::new(1);
        let l = Linking { threshold: 7000, max_ip_persons: 10 };
        let a = c.get(&store, 0, "t", l, None, 5).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &c.get(&store, 0, "t", l, None, 5).unwrap()));
        assert!(!std::sync::Arc::ptr_eq(&a, &c.get(&store, 0, "t", l, None, 6).unwrap()), "applied since: evaluated again");
        c.get(&store, 0, "u", l, None, 6).unwrap();
        assert_eq!(c.entries.lock().unwrap().len(), 1, "bounded");
    }

    #[test]
    fn signals_behind_the_retention_horizon_link_nothing() {
        use crate::domain::identity::{IdNode, PersonIds};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        let (p, t) = (0u16, "t");
        let mut txn = store.txn();
        // Person 1 known (phone + login), person 2 an anonymous laptop cookie.
        for (pk, members) in [(1u64, vec![IdNode::customer("phone".to_string()), IdNode::user("u1".to_string())]), (2, vec![IdNode::customer("laptop".to_string())])] {
            for n in members.iter().filter(|n| n.kind == IdKind::Customer) {
                txn.put(key::node_lookup(p, t, IdKind::Customer, &n.id), pk.to_be_bytes().to_vec());
            }
            txn.put_as(key::person(p, t, pk), &PersonRec { ids: PersonIds { members, guarded: false }, segments: vec![] }).unwrap();
        }
        // Same ip and user agent, ten minutes apart on day 1: a 0.80 pair.
        for (c, secs, id) in [("phone", 86_400, "e1"), ("laptop", 87_000, "e2")] {
            let rec = SignalRec { customer_id: c.into(), ts: Ts::new(secs, 0), ip: "10.1.1.1".into(), user_agent: Some("UA".into()), geo: None };
            txn.put_as(key::signal(p, t, c, rec.ts, id), &rec).unwrap();
        }
        txn.commit(None).unwrap();
        let l = Linking { threshold: 7000, max_ip_persons: 10 };
        let linked = final_persons(&store, p, t, l, Some(Ts::new(86_400, 0))).unwrap();
        assert_eq!(linked.group_of(2), 1, "both signals retained: linked");
        let gone = final_persons(&store, p, t, l, Some(Ts::new(86_401, 0))).unwrap();
        assert!(gone.is_empty(), "the phone's signal is behind the horizon: no link, swept or not");
    }
}

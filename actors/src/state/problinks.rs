//! Stored probabilistic links (attribution.md, "Probabilistic links"),
//! maintained by the tenant actor at apply time, in the batch transaction —
//! so the changelog, snapshots and standbys carry them like every state write.
//!
//! Two key families per tenant with `probabilistic = true`:
//!
//! - `SignalIndex` (`J`): every *retained* signal by (ip, customer_id, ts,
//!   event_id), an expiry entry by (ts, ip), a mark per address currently
//!   shared by more than `max_ip_persons` persons, and the settings the index
//!   was built with ([`IndexMeta`]);
//! - `ProbLink` (`A`): anonymous person → (known person, score), the links.
//!
//! During a batch a [`LinkTracker`] collects what can change a link: the
//! addresses of new signals, the persons of merges and of logins that make a
//! person known, and erasures (whose indexed signals it deletes). At the end
//! of the batch ([`LinkTracker::finish`]) it drops the index entries that
//! have fallen behind the retention horizon (their addresses count as
//! changed), recomputes the shared marks of the changed addresses, and
//! re-evaluates only the persons a change can affect: on an address with new
//! signals only, the anonymous persons in a new pair (an anonymous and a known
//! event within 24 h, one of them new), or all of them when the address has
//! just become shared; on an address whose person count may have shrunk
//! (merge, erasure, expiry), all its anonymous persons; and the persons
//! merged, logged in or erased — each with the pure rule
//! ([`crate::domain::probabilistic::links`]) over the events of its own
//! unshared addresses, which is all its link depends on. Links that differ
//! are written; the ones whose known person changed are returned
//! ([`Relink`]) — the persons whose final person changed in this batch.
//!
//! A changed setting (the stored [`IndexMeta`] differs from the config,
//! including "none stored": turned on, or state written before the index
//! existed) rebuilds the index and every link from the stored signals
//! (`Signal`, `Z`, kept for every tenant); turning it off deletes both
//! families. The partition actor rebuilds at start-up, before any batch, for
//! every tenant whose settings changed ([`settings_changed`]); a tenant
//! turned off has its families deleted by its next batch. Queries read the
//! links only when the stored settings equal the config ([`stored_links`]);
//! until the rebuild commits they evaluate from the signals instead.
//!
//! Bound: the index holds one entry per retained signal (the exact rule needs
//! them all: a late event or a late login can pair with any retained event
//! within 24 h of it, and the shared-address rule counts persons over all
//! retained time), one expiry entry per (ts, ip), one mark per shared
//! address; entries behind the retention horizon are deleted by the next
//! batch. The links are at most one per anonymous person. In memory, the
//! tenant actor keeps an [`IndexCache`] of at most a quarter of its share of
//! `engine.state_cache_entries` addresses and as many customer_ids.

use super::records::{key, SignalRec};
use super::tenant::TenantState;
use crate::domain::identity::{IdKind, IdNode, IdentityStore};
use crate::domain::probabilistic::{self, Component, ComponentId, Linking, ProbLink, Signal, SignalEvent};
use crate::domain::retention::retained;
use crate::domain::Ts;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use touchline_storage::keys::prefix_end;
use touchline_storage::{codec, StorageError, Store};

/// The settings the stored index and links were built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMeta {
    pub threshold: u32,
    pub max_ip_persons: u64,
}

impl IndexMeta {
    pub fn of(l: Linking) -> IndexMeta {
        IndexMeta { threshold: l.threshold, max_ip_persons: l.max_ip_persons as u64 }
    }
}

/// An anonymous person whose final person changed: linked to `before`
/// (`None`: it was its own final person), now to `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relink {
    pub person: u64,
    pub before: Option<u64>,
    pub after: Option<u64>,
}

/// One indexed signal as stored: customer_id, time, signal.
type RawEvents = Vec<(String, Ts, Signal)>;

/// The tenant actor's cache of its index, kept across batches (the actor is
/// the only writer of its index; see [`super::cache`] for the rules): each
/// cached address's indexed signals, exactly as in the index, and each
/// cached customer_id's addresses (a superset: an address whose signals of
/// it expired may stay, which only re-evaluates a person needlessly). At most
/// `cap` addresses and `cap` customer_ids.
pub struct IndexCache {
    by_ip: super::GenCache<String, RawEvents>,
    ips_of: super::GenCache<String, BTreeSet<String>>,
}

impl IndexCache {
    pub fn new(cap: usize) -> IndexCache {
        IndexCache { by_ip: super::GenCache::new(cap), ips_of: super::GenCache::new(cap) }
    }

    /// Empties the cache if a transaction of `store` was aborted since the last call.
    pub fn validate(&mut self, store: &Store) {
        self.by_ip.validate(store.aborted_txns());
        self.ips_of.validate(store.aborted_txns());
    }

    fn clear(&mut self) {
        self.by_ip.clear();
        self.ips_of.clear();
    }
}

/// What a batch changed that can change links (see the module doc).
pub struct LinkTracker {
    linking: Option<Linking>,
    cache: IndexCache,
    /// Addresses with new signals (their person count can only grow), with
    /// each new signal's customer_id and time.
    grown: BTreeMap<String, Vec<(String, Ts)>>,
    /// Addresses whose person count may have shrunk (merge, erasure, expiry).
    shrunk: BTreeSet<String>,
    /// Persons merged, logged in or erased.
    persons: BTreeSet<u64>,
}

/// The (ts, event_id) tail of a `Signal` key (the index keys end with it too).
fn tail<'k>(k: &'k [u8], customer_prefix: &[u8]) -> &'k [u8] {
    &k[customer_prefix.len().min(k.len())..]
}

impl LinkTracker {
    /// A tracker for a tenant with these settings (`None`: probabilistic
    /// off), with the tenant actor's cache (validated by the caller).
    pub fn new(linking: Option<Linking>, cache: IndexCache) -> LinkTracker {
        LinkTracker { linking, cache, grown: BTreeMap::new(), shrunk: BTreeSet::new(), persons: BTreeSet::new() }
    }

    pub fn is_on(&self) -> bool {
        self.linking.is_some()
    }

    /// Indexes a signal just stored (`put_signal`) under `event_id`.
    pub fn signal(&mut self, st: &mut TenantState<'_>, event_id: &str, rec: &SignalRec) -> Result<(), StorageError> {
        if !self.is_on() {
            return Ok(());
        }
        let (p, t) = (st.partition, st.tenant);
        let suffix = key::signal(p, t, &rec.customer_id, rec.ts, event_id);
        let suffix = tail(&suffix, &key::signal_prefix(p, t, &rec.customer_id));
        st.txn.put_as(key::signal_by_ip(p, t, &rec.ip, &rec.customer_id, suffix), rec)?;
        st.txn.put(key::signal_expiry(p, t, rec.ts, &rec.ip), Vec::new());
        self.grown.entry(rec.ip.clone()).or_default().push((rec.customer_id.clone(), rec.ts));
        if let (Some(raw), Some(signal)) = (self.cache.by_ip.get_mut(&rec.ip), Signal::new(&rec.ip, rec.user_agent.as_deref(), rec.geo)) {
            raw.push((rec.customer_id.clone(), rec.ts, signal));
        }
        if let Some(ips) = self.cache.ips_of.get_mut(&rec.customer_id) {
            ips.insert(rec.ip.clone());
        }
        Ok(())
    }

    /// A person merged (either side of a move) or that may have become known.
    pub fn person(&mut self, person: u64) {
        if self.is_on() {
            self.persons.insert(person);
        }
    }

    /// Before `scope` is erased: drops its indexed signals; its addresses
    /// and persons are re-evaluated.
    pub fn erasing(&mut self, st: &mut TenantState<'_>, scope: &super::erasure::ErasureScope) -> Result<(), StorageError> {
        if !self.is_on() {
            return Ok(());
        }
        let (p, t) = (st.partition, st.tenant.to_string());
        for n in scope.customers() {
            let prefix = key::signal_prefix(p, &t, &n.id);
            for (k, v) in st.txn.collect_prefix(&prefix)? {
                let rec: SignalRec = codec::decode(&k, &v)?;
                st.txn.delete(key::signal_by_ip(p, &t, &rec.ip, &n.id, tail(&k, &prefix)));
                self.cache.by_ip.remove(&rec.ip);
                self.shrunk.insert(rec.ip);
            }
        }
        self.persons.extend(scope.persons.iter().copied());
        Ok(())
    }

    /// Ends the batch: expiry, shared marks, re-evaluation of the affected
    /// persons, links written (see the module doc). `horizon`: the tenant's
    /// retention horizon after the batch. Returns the persons whose final
    /// person changed, and the cache for the next batch.
    pub fn finish(self, st: &mut TenantState<'_>, horizon: Option<Ts>) -> Result<(Vec<Relink>, IndexCache), StorageError> {
        let (p, t) = (st.partition, st.tenant);
        let stored: Option<IndexMeta> = st.txn.get_as(&key::signal_index_meta(p, t))?;
        let want = self.linking.map(IndexMeta::of);
        let LinkTracker { linking, mut cache, grown, mut shrunk, persons } = self;
        if stored != want {
            cache.clear();
            return Ok((rebuild(st, linking, horizon, &mut cache)?, cache));
        }
        let Some(linking) = linking else { return Ok((Vec::new(), cache)) };
        if let Some(h) = horizon {
            expire(st, h, &mut shrunk, &mut cache)?;
        }
        let out = update(st, linking, horizon, &mut cache, grown, shrunk, persons)?;
        Ok((out, cache))
    }
}

/// The incremental step of [`LinkTracker::finish`].
fn update(st: &mut TenantState<'_>, linking: Linking, horizon: Option<Ts>, cache: &mut IndexCache, grown: BTreeMap<String, Vec<(String, Ts)>>, mut shrunk: BTreeSet<String>, persons: BTreeSet<u64>) -> Result<Vec<Relink>, StorageError> {
    let (p, t) = (st.partition, st.tenant);
    let mut ev = Evaluator::new(linking, horizon, cache);
    for &pk in &persons {
        shrunk.extend(ev.addresses_of(st, pk)?);
    }
    let mut affected = persons;
    for (ip, new) in grown.iter().filter(|(ip, _)| !shrunk.contains(*ip)) {
        // A new signal never un-shares an address: one shared before stays
        // shared and changes nobody's scores.
        if !st.txn.contains(&key::shared_ip(p, t, ip))? {
            ev.address_grown(st, ip, new, &mut affected)?;
        }
    }
    for ip in &shrunk {
        let was = st.txn.contains(&key::shared_ip(p, t, ip))?;
        ev.address_changed(st, ip, was, &mut affected)?;
    }
    let mut out = Vec::new();
    for a in affected {
        let link = ev.evaluate(st, a)?;
        write_link(st, a, link, &mut out)?;
    }
    Ok(out)
}

/// Writes `a`'s link if it differs from the stored one; notes a [`Relink`]
/// when its known person changed.
fn write_link(st: &mut TenantState<'_>, a: u64, link: Option<ProbLink>, out: &mut Vec<Relink>) -> Result<(), StorageError> {
    let k = key::prob_link(st.partition, st.tenant, a);
    let old: Option<(u64, u32)> = st.txn.get_as(&k)?;
    let new = link.map(|l| (l.known, l.score));
    if old == new {
        return Ok(());
    }
    match new {
        Some(v) => st.txn.put_as(k, &v)?,
        None => st.txn.delete(k),
    }
    let (before, after) = (old.map(|o| o.0), new.map(|n| n.0));
    if before != after {
        out.push(Relink { person: a, before, after });
    }
    Ok(())
}

/// Drops the expiry entries and indexed signals behind `h`; their addresses
/// go to `changed`.
fn expire(st: &mut TenantState<'_>, h: Ts, changed: &mut BTreeSet<String>, cache: &mut IndexCache) -> Result<(), StorageError> {
    let (p, t) = (st.partition, st.tenant);
    let start = key::signal_expiry_prefix(p, t);
    let end = key::signal_expiry(p, t, h, "");
    let mut gone = Vec::new();
    st.txn.scan(&start, &end, |k, _| {
        gone.push(k.to_vec());
        true
    })?;
    let mut ips = BTreeSet::new();
    for k in gone {
        ips.insert(String::from_utf8_lossy(&k[start.len() + 12..]).into_owned());
        st.txn.delete(k);
    }
    for ip in ips {
        for (k, v) in st.txn.collect_prefix(&key::signal_by_ip_prefix(p, t, &ip))? {
            let rec: SignalRec = codec::decode(&k, &v)?;
            if !retained(rec.ts, Some(h)) {
                st.txn.delete(k);
            }
        }
        cache.by_ip.remove(&ip);
        changed.insert(ip);
    }
    Ok(())
}

/// Deletes the tenant's index and links; when `linking` is on, builds both
/// again from the stored signals. Returns every changed final person.
fn rebuild(st: &mut TenantState<'_>, linking: Option<Linking>, horizon: Option<Ts>, cache: &mut IndexCache) -> Result<Vec<Relink>, StorageError> {
    let (p, t) = (st.partition, st.tenant);
    let mut old: BTreeMap<u64, u64> = BTreeMap::new();
    for (k, v) in st.txn.collect_prefix(&key::prob_links_prefix(p, t))? {
        let (known, _): (u64, u32) = codec::decode(&k, &v)?;
        if let Some(a) = crate::state::tenant::person_in_key(&k[key::prob_links_prefix(p, t).len()..], 0) {
            old.insert(a, known);
        }
        st.txn.delete(k);
    }
    for (k, _) in st.txn.collect_prefix(&key::signal_index_prefix(p, t))? {
        st.txn.delete(k);
    }
    let mut out = Vec::new();
    let Some(linking) = linking else {
        out.extend(old.into_iter().map(|(person, k)| Relink { person, before: Some(k), after: None }));
        return Ok(out);
    };
    let mut ips = BTreeSet::new();
    for (k, v) in st.txn.collect_prefix(&key::signals_prefix(p, t))? {
        let rec: SignalRec = codec::decode(&k, &v)?;
        if retained(rec.ts, horizon) {
            let suffix = tail(&k, &key::signal_prefix(p, t, &rec.customer_id)).to_vec();
            st.txn.put_as(key::signal_by_ip(p, t, &rec.ip, &rec.customer_id, &suffix), &rec)?;
            st.txn.put(key::signal_expiry(p, t, rec.ts, &rec.ip), Vec::new());
            ips.insert(rec.ip);
        }
    }
    st.txn.put_as(key::signal_index_meta(p, t), &IndexMeta::of(linking))?;
    let mut ev = Evaluator::new(linking, horizon, cache);
    let mut affected = BTreeSet::new();
    for ip in &ips {
        ev.address_changed(st, ip, false, &mut affected)?;
    }
    let mut new = BTreeMap::new();
    for a in affected {
        if let Some(l) = ev.evaluate(st, a)? {
            st.txn.put_as(key::prob_link(p, t, a), &(l.known, l.score))?;
            new.insert(a, l.known);
        }
    }
    for a in old.keys().chain(new.keys()).copied().collect::<BTreeSet<_>>() {
        let (before, after) = (old.get(&a).copied(), new.get(&a).copied());
        if before != after {
            out.push(Relink { person: a, before, after });
        }
    }
    Ok(out)
}

/// One indexed signal event of an address, with its person.
type AddressEvents = Rc<Vec<(ComponentId, Ts, Signal)>>;

/// Reads the index through the batch transaction and the cache,
/// remembering persons, roles and addresses already read.
struct Evaluator<'c> {
    cache: &'c mut IndexCache,
    linking: Linking,
    horizon: Option<Ts>,
    person_of: HashMap<String, Option<u64>>,
    /// Person → known (`None`: no such person, merged away or erased).
    known: HashMap<u64, Option<bool>>,
    by_ip: HashMap<String, AddressEvents>,
    shared: HashMap<String, bool>,
    /// The rule's links over one set of unshared addresses: every anonymous
    /// person on exactly those addresses (a household's members) gets its
    /// link from one evaluation.
    by_addresses: HashMap<Vec<String>, Rc<BTreeMap<u64, ProbLink>>>,
}

impl<'c> Evaluator<'c> {
    fn new(linking: Linking, horizon: Option<Ts>, cache: &'c mut IndexCache) -> Evaluator<'c> {
        Evaluator { cache, linking, horizon, person_of: HashMap::new(), known: HashMap::new(), by_ip: HashMap::new(), shared: HashMap::new(), by_addresses: HashMap::new() }
    }

    fn person(&mut self, st: &mut TenantState<'_>, customer_id: &str) -> Result<Option<u64>, StorageError> {
        if let Some(x) = self.person_of.get(customer_id) {
            return Ok(*x);
        }
        let x = st.person_of(&IdNode::customer(customer_id.to_string()))?;
        self.person_of.insert(customer_id.to_string(), x);
        Ok(x)
    }

    fn role(&mut self, st: &mut TenantState<'_>, person: u64) -> Result<Option<bool>, StorageError> {
        if let Some(x) = self.known.get(&person) {
            return Ok(*x);
        }
        let x = st.person_rec(person)?.map(|r| r.ids.members.iter().any(|n| n.kind == IdKind::User));
        self.known.insert(person, x);
        Ok(x)
    }

    /// The retained signal events of `ip` with their (existing) persons.
    fn events_on(&mut self, st: &mut TenantState<'_>, ip: &str) -> Result<AddressEvents, StorageError> {
        if let Some(x) = self.by_ip.get(ip) {
            return Ok(x.clone());
        }
        let mut local = None;
        if self.cache.by_ip.get(ip).is_none() {
            let raw = raw_events(st, ip)?;
            self.cache.by_ip.insert(ip.to_string(), raw);
            if self.cache.by_ip.get(ip).is_none() {
                local = Some(raw_events(st, ip)?);
            }
        }
        let horizon = self.horizon;
        let customers: BTreeSet<String> = {
            let raw = local.as_ref().or_else(|| self.cache.by_ip.get(ip)).expect("read above");
            raw.iter().filter(|e| retained(e.1, horizon)).map(|e| e.0.clone()).collect()
        };
        let mut person_of = HashMap::with_capacity(customers.len());
        for c in customers {
            let x = self.person(st, &c)?;
            person_of.insert(c, x);
        }
        let raw = local.as_ref().or_else(|| self.cache.by_ip.get(ip)).expect("read above");
        let out: Vec<(ComponentId, Ts, Signal)> =
            raw.iter().filter(|e| retained(e.1, horizon)).filter_map(|(c, ts, s)| Some((person_of.get(c).copied().flatten()?, *ts, s.clone()))).collect();
        let out = Rc::new(out);
        self.by_ip.insert(ip.to_string(), out.clone());
        Ok(out)
    }

    /// Recomputes `ip`'s shared mark (`was`: marked before) and adds the
    /// anonymous persons on it to `affected` unless it was and stays shared.
    fn address_changed(&mut self, st: &mut TenantState<'_>, ip: &str, was: bool, affected: &mut BTreeSet<u64>) -> Result<(), StorageError> {
        let events = self.events_on(st, ip)?;
        let persons: BTreeSet<u64> = events.iter().map(|e| e.0).collect();
        let shared = persons.len() > self.linking.max_ip_persons;
        let mark = key::shared_ip(st.partition, st.tenant, ip);
        if shared && !was {
            st.txn.put(mark, Vec::new());
        } else if !shared && was {
            st.txn.delete(mark);
        }
        self.shared.insert(ip.to_string(), shared);
        if !(shared && was) {
            for pk in persons {
                if self.role(st, pk)? == Some(false) {
                    affected.insert(pk);
                }
            }
        }
        Ok(())
    }

    /// An address unshared before the batch with `new` signals (customer_id,
    /// time): if it is shared now, every anonymous person on it is affected;
    /// else only the pairs a new signal forms can raise a score — a new
    /// signal of an anonymous person that has a known person's event within
    /// 24 h there affects that person, one of a known person affects the
    /// anonymous persons with an event within 24 h of it.
    fn address_grown(&mut self, st: &mut TenantState<'_>, ip: &str, new: &[(String, Ts)], affected: &mut BTreeSet<u64>) -> Result<(), StorageError> {
        let events = self.events_on(st, ip)?;
        let persons: BTreeSet<u64> = events.iter().map(|e| e.0).collect();
        if persons.len() > self.linking.max_ip_persons {
            return self.address_changed(st, ip, false, affected);
        }
        if persons.len() < 2 {
            return Ok(());
        }
        let mut roles = HashMap::new();
        for &pk in &persons {
            roles.insert(pk, self.role(st, pk)?);
        }
        for (customer_id, ts) in new {
            let Some(x) = self.person(st, customer_id)? else { continue };
            let Some(known) = roles.get(&x).copied().flatten() else { continue };
            let near = |e: &&(ComponentId, Ts, Signal)| e.0 != x && (e.1.as_nanos() - ts.as_nanos()).abs() <= probabilistic::DAY_NANOS && roles.get(&e.0).copied().flatten() == Some(!known);
            if known {
                affected.extend(events.iter().filter(near).map(|e| e.0));
            } else if events.iter().any(|e| near(&e)) {
                affected.insert(x);
            }
        }
        Ok(())
    }

    fn is_shared(&mut self, st: &mut TenantState<'_>, ip: &str) -> Result<bool, StorageError> {
        if let Some(s) = self.shared.get(ip) {
            return Ok(*s);
        }
        let s = st.txn.contains(&key::shared_ip(st.partition, st.tenant, ip))?;
        self.shared.insert(ip.to_string(), s);
        Ok(s)
    }

    /// The addresses of `person`'s retained signals (none when it is gone).
    fn addresses_of(&mut self, st: &mut TenantState<'_>, person: u64) -> Result<BTreeSet<String>, StorageError> {
        let mut out = BTreeSet::new();
        let Some(rec) = st.person_rec(person)? else { return Ok(out) };
        for n in rec.ids.members.iter().filter(|n| n.kind == IdKind::Customer) {
            if let Some(ips) = self.cache.ips_of.get(&n.id) {
                out.extend(ips.iter().cloned());
                continue;
            }
            let recs: Vec<SignalRec> = st.txn.prefix_as(&key::signal_prefix(st.partition, st.tenant, &n.id))?;
            let ips: BTreeSet<String> = recs.into_iter().filter(|r| retained(r.ts, self.horizon)).map(|r| r.ip).collect();
            out.extend(ips.iter().cloned());
            self.cache.ips_of.insert(n.id.clone(), ips);
        }
        Ok(out)
    }

    /// `a`'s link under the rule, from the events of its unshared addresses
    /// (every score of `a` comes from them, and their persons' roles).
    fn evaluate(&mut self, st: &mut TenantState<'_>, a: u64) -> Result<Option<ProbLink>, StorageError> {
        if self.role(st, a)? != Some(false) {
            return Ok(None);
        }
        let mut unshared = Vec::new();
        for ip in self.addresses_of(st, a)? {
            if !self.is_shared(st, &ip)? {
                unshared.push(ip);
            }
        }
        if let Some(links) = self.by_addresses.get(&unshared) {
            return Ok(links.get(&a).copied());
        }
        let mut events = Vec::new();
        let mut roles: BTreeMap<u64, Component> = BTreeMap::new();
        for ip in &unshared {
            for (person, ts, signal) in self.events_on(st, ip)?.iter() {
                if let std::collections::btree_map::Entry::Vacant(e) = roles.entry(*person) {
                    let known = self.role(st, *person)? == Some(true);
                    e.insert(Component { id: *person, known, erased: false });
                }
                events.push(SignalEvent { component: *person, ts: *ts, signal: signal.clone() });
            }
        }
        let components: Vec<Component> = roles.into_values().collect();
        let links = Rc::new(probabilistic::links(&components, &events, self.linking.threshold, self.linking.max_ip_persons));
        let out = links.get(&a).copied();
        self.by_addresses.insert(unshared, links);
        Ok(out)
    }
}

/// The indexed signals of `ip` as stored.
fn raw_events(st: &mut TenantState<'_>, ip: &str) -> Result<RawEvents, StorageError> {
    let recs: Vec<SignalRec> = st.txn.prefix_as(&key::signal_by_ip_prefix(st.partition, st.tenant, ip))?;
    Ok(recs.into_iter().filter_map(|r| Some((r.customer_id, r.ts, Signal::new(&r.ip, r.user_agent.as_deref(), r.geo)?))).collect())
}

/// Whether the stored index and links of `tenant` were built with other
/// settings than `linking` (or never built).
pub fn settings_changed(store: &Store, p: u16, tenant: &str, linking: Linking) -> Result<bool, StorageError> {
    let k = key::signal_index_meta(p, tenant);
    let stored: Option<IndexMeta> = match store.get(&k)? {
        Some(raw) => Some(codec::decode(&k, &raw)?),
        None => None,
    };
    Ok(stored != Some(IndexMeta::of(linking)))
}

/// The stored links of `tenant` when they were built with `linking` (else
/// `None`: not rebuilt yet since its settings changed).
pub fn stored_links(store: &Store, p: u16, tenant: &str, linking: Linking) -> Result<Option<BTreeMap<u64, ProbLink>>, StorageError> {
    if settings_changed(store, p, tenant, linking)? {
        return Ok(None);
    }
    let prefix = key::prob_links_prefix(p, tenant);
    let mut out = BTreeMap::new();
    store.scan_as::<(u64, u32)>(&prefix, &prefix_end(&prefix), |k, (known, score)| {
        if let Some(a) = crate::state::tenant::person_in_key(&k[prefix.len()..], 0) {
            out.insert(a, ProbLink { known, score });
        }
        true
    })?;
    Ok(Some(out))
}

#[cfg(test)]
#[path = "problinks_tests.rs"]
mod tests;

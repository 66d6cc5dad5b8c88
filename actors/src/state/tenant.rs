//! Tenant-scoped write access inside a partition transaction: dedup, identity
//! (implements [`IdentityStore`]), timelines, conversions and their time index,
//! record moves after a merge, window counters and campaigns.

use super::cache::GenCache;
use super::summary::{self, Summary};
use super::records::{key, CampaignRec, ConvIndexRec, ConvRec, PersonRec, TenantMeta, TouchRec, WindowCounts};
use crate::domain::identity::{IdNode, IdentityStore, Link, Move, PersonIds};
use crate::domain::Ts;
use touchline_storage::{codec, StorageError, Store, Txn};

/// A record appended to a person's timeline ([`TenantState::append`]).
pub enum NewRecord<'r> {
    Touch(&'r TouchRec),
    Conversion(&'r ConvRec),
}

pub struct TenantState<'a> {
    pub txn: &'a mut Txn,
    pub partition: u16,
    pub tenant: &'a str,
    pub meta: TenantMeta,
    meta_dirty: bool,
    /// The tenant actor's identity cache, when it passes one.
    ids: Option<&'a mut IdCache>,
}

/// The tenant actor's cache of its identity records: node → person key and
/// person key → record (`None` = known absent). See [`super::cache`].
pub struct IdCache {
    nodes: GenCache<IdNode, Option<u64>>,
    persons: GenCache<u64, Option<PersonRec>>,
}

impl IdCache {
    /// At most `cap` nodes and `cap` persons.
    pub fn new(cap: usize) -> IdCache {
        IdCache { nodes: GenCache::new(cap), persons: GenCache::new(cap) }
    }

    /// At most `cap` nodes and `cap` persons from now on (see [`GenCache::set_cap`]).
    pub fn set_cap(&mut self, cap: usize) {
        self.nodes.set_cap(cap);
        self.persons.set_cap(cap);
    }

    /// Empties the cache if a transaction of `store` was aborted since the last call.
    pub fn validate(&mut self, store: &touchline_storage::Store) {
        let n = store.aborted_txns();
        self.nodes.validate(n);
        self.persons.validate(n);
    }
}

impl<'a> TenantState<'a> {
    pub fn load(txn: &'a mut Txn, partition: u16, tenant: &'a str) -> Result<TenantState<'a>, StorageError> {
        let meta = txn.get_as::<TenantMeta>(&key::tenant_meta(partition, tenant))?;
        let meta_dirty = meta.is_none();
        if meta_dirty {
            txn.put(key::tenant_index(partition, tenant), Vec::new());
        }
        Ok(TenantState { txn, partition, tenant, meta: meta.unwrap_or_default(), meta_dirty, ids: None })
    }

    /// Wraps a meta the caller keeps in memory across a batch.
    pub fn with_meta(txn: &'a mut Txn, partition: u16, tenant: &'a str, meta: TenantMeta) -> TenantState<'a> {
        TenantState { txn, partition, tenant, meta, meta_dirty: true, ids: None }
    }

    /// Reads and writes identity records through `cache` (validated here).
    pub fn with_id_cache(mut self, cache: &'a mut IdCache) -> TenantState<'a> {
        cache.validate(self.txn.store());
        self.ids = Some(cache);
        self
    }

    pub fn into_meta(self) -> TenantMeta {
        self.meta
    }

    /// Record access without the tenant meta (customer and journey actors: only
    /// the tenant actor owns and saves the meta).
    pub fn records(txn: &'a mut Txn, partition: u16, tenant: &'a str) -> TenantState<'a> {
        TenantState { txn, partition, tenant, meta: TenantMeta::default(), meta_dirty: false, ids: None }
    }

    /// Writes the tenant meta back if it changed.
    pub fn save(&mut self) -> Result<(), StorageError> {
        if self.meta_dirty {
            self.txn.put_as(key::tenant_meta(self.partition, self.tenant), &self.meta)?;
            self.meta_dirty = false;
        }
        Ok(())
    }

    /// Appends a touchpoint to the person's timeline and summary.
    pub fn put_touch(&mut self, person: u64, rec: &TouchRec) -> Result<(), StorageError> {
        self.append(person, None, [NewRecord::Touch(rec)]).map(drop)
    }

    /// Adds a conversion to the person's conversions, the tenant's time index
    /// and the person's summary.
    pub fn put_conversion(&mut self, person: u64, rec: &ConvRec) -> Result<(), StorageError> {
        self.append(person, None, [NewRecord::Conversion(rec)]).map(drop)
    }

    /// Appends `recs` to the person's records and its summary, the summary
    /// written once: each record inserted at its time, or, when one declines
    /// (an equal time), the summary rebuilt from the records after them all.
    /// `known` is the summary as [`Self::load_summary`] would return it, when
    /// the caller keeps it (else it is read). Returns the summary as written
    /// (`None`: an overflow person, whose records readers read instead).
    pub fn append<'r>(&mut self, person: u64, known: Option<Option<Summary>>, recs: impl IntoIterator<Item = NewRecord<'r>>) -> Result<Option<Summary>, StorageError> {
        let mut summary = match known {
            Some(s) => s,
            None => self.load_summary(person)?,
        };
        let (p, t) = (self.partition, self.tenant);
        let mut rebuild = false;
        for r in recs {
            let inserted = match r {
                NewRecord::Touch(rec) => {
                    self.txn.put_as(key::touch(p, t, person, rec.ts, &rec.event_id), rec)?;
                    summary.as_mut().map(|s| rebuild || s.insert_touch(rec))
                }
                NewRecord::Conversion(rec) => {
                    self.txn.put_as(key::conv(p, t, person, rec.ts, &rec.event_id), rec)?;
                    let idx = ConvIndexRec::of(person, rec);
                    self.txn.put_as(key::conv_by_time(p, t, rec.ts, &rec.event_id), &idx)?;
                    summary.as_mut().map(|s| rebuild || s.insert_conv(rec))
                }
            };
            rebuild |= inserted == Some(false);
        }
        if rebuild {
            return self.rebuild_summary(person);
        }
        Ok(summary.and_then(|s| self.write_summary(person, s)))
    }

    /// The person's summary as the transaction sees it (empty when it has
    /// none yet; an unreadable value is rebuilt from the records); `None`
    /// for an [`OVERFLOW`](super::summary::OVERFLOW) person, whose records
    /// readers read instead.
    pub fn load_summary(&mut self, person: u64) -> Result<Option<Summary>, StorageError> {
        let k = key::summary(self.partition, self.tenant, person);
        let current = self.txn.get_with(&k, |v| v.map(|v| if summary::is_overflow(v) { Ok(None) } else { Summary::decode(v).map(Some) }))?;
        match current {
            None => Ok(Some(Summary::default())),
            Some(Ok(s)) => Ok(s),
            Some(Err(_)) => self.rebuild_summary(person),
        }
    }

    /// Writes the person's summary afresh from its records (deleted when it
    /// has none) and returns it (`None`: over the record limit, stored as the
    /// overflow marker).
    pub fn rebuild_summary(&mut self, person: u64) -> Result<Option<Summary>, StorageError> {
        let (p, t) = (self.partition, self.tenant);
        let touches = self.txn.collect_prefix(&key::touch_prefix(p, t, person))?.iter().map(|(k, v)| codec::decode::<TouchRec>(k, v)).collect::<Result<Vec<_>, _>>()?;
        let convs = self.txn.collect_prefix(&key::conv_prefix(p, t, person))?.iter().map(|(k, v)| codec::decode::<ConvRec>(k, v)).collect::<Result<Vec<_>, _>>()?;
        Ok(self.write_summary(person, Summary::of(&touches, &convs)))
    }

    /// Stores `s` as the person's summary (the overflow marker beyond the
    /// record limit, deleted when empty) and returns it as
    /// [`Self::load_summary`] would (`None`: overflow).
    fn write_summary(&mut self, person: u64, s: Summary) -> Option<Summary> {
        let k = key::summary(self.partition, self.tenant, person);
        if s.is_empty() {
            self.txn.delete(k);
        } else {
            self.txn.put(k, s.stored());
        }
        (s.len() <= summary::MAX_RECORDS).then_some(s)
    }

    /// Counts a conversion's currency (the tenant's default report currency).
    pub fn count_currency(&mut self, currency: &str) {
        *self.meta.currency_counts.entry(currency.to_string()).or_default() += 1;
        self.meta_dirty = true;
    }

    pub fn person_rec(&mut self, person: u64) -> Result<Option<PersonRec>, StorageError> {
        if let Some(c) = self.ids.as_deref_mut() {
            if let Some(r) = c.persons.get(&person) {
                return Ok(r.clone());
            }
        }
        let r: Option<PersonRec> = self.txn.get_as(&key::person(self.partition, self.tenant, person))?;
        if let Some(c) = self.ids.as_deref_mut() {
            c.persons.insert(person, r.clone());
        }
        Ok(r)
    }

    fn write_person_rec(&mut self, person: u64, rec: Option<PersonRec>) -> Result<(), StorageError> {
        let k = key::person(self.partition, self.tenant, person);
        match &rec {
            Some(r) => self.txn.put_as(k, r)?,
            None => self.txn.delete(k),
        }
        if let Some(c) = self.ids.as_deref_mut() {
            c.persons.insert(person, rec);
        }
        Ok(())
    }

    /// Deletes the node record of `node` (erasure).
    pub fn delete_node(&mut self, node: &IdNode) {
        self.txn.delete(key::node(self.partition, self.tenant, node));
        if let Some(c) = self.ids.as_deref_mut() {
            c.nodes.insert(node.clone(), None);
        }
    }

    /// Moves `from`'s records that `m` covers to `to` (raw values, new keys)
    /// and updates both summaries without reading either timeline again:
    /// `from`'s from the records it keeps, `to`'s by inserting the moved ones
    /// (rebuilt from its records only when one declines, an equal time, or it
    /// is an overflow person). `from`'s summary also says which of its two
    /// record spaces are empty, so those are not scanned. Returns how many
    /// records moved.
    pub fn apply_move(&mut self, m: &Move) -> Result<usize, StorageError> {
        let (p, t) = (self.partition, self.tenant);
        let owns = |cid: &str| m.whole || m.nodes.iter().any(|n| n.kind == crate::domain::identity::IdKind::Customer && n.id == cid);
        // Which spaces to scan: both unless a stored summary says one is empty.
        let stored = self.txn.get_with(&key::summary(p, t, m.from), |v| v.map(|v| if summary::is_overflow(v) { None } else { Summary::decode(v).ok() }))?;
        let (scan_touches, scan_convs) = match &stored {
            Some(Some(s)) => (!s.touches.is_empty(), !s.convs.is_empty()),
            _ => (true, true),
        };
        let (kept_touches, moved_touches) = if scan_touches {
            self.move_records(&key::touch_prefix(p, t, m.from), |r: &TouchRec| owns(&r.customer_id), |r| key::touch(p, t, m.to, r.ts, &r.event_id))?
        } else {
            Default::default()
        };
        let (kept_convs, moved_convs) = if scan_convs {
            self.move_records(&key::conv_prefix(p, t, m.from), |r: &ConvRec| owns(&r.customer_id), |r| key::conv(p, t, m.to, r.ts, &r.event_id))?
        } else {
            Default::default()
        };
        for rec in &moved_convs {
            let idx = ConvIndexRec::of(m.to, rec);
            self.txn.put_as(key::conv_by_time(p, t, rec.ts, &rec.event_id), &idx)?;
        }
        let moved = moved_touches.len() + moved_convs.len();
        if moved > 0 {
            self.write_summary(m.from, Summary::of(&kept_touches, &kept_convs));
            let mut to = self.load_summary(m.to)?;
            let inserted = to.as_mut().is_some_and(|s| moved_touches.iter().all(|r| s.insert_touch(r)) && moved_convs.iter().all(|r| s.insert_conv(r)));
            match to {
                Some(s) if inserted => drop(self.write_summary(m.to, s)),
                _ => drop(self.rebuild_summary(m.to)?),
            }
        }
        Ok(moved)
    }

    /// The records under `prefix`, split into those that stay and those
    /// `moves` takes; each moved one is deleted and its raw value written
    /// again under `key_of` (no re-encoding). Returns (kept, moved).
    fn move_records<R: serde::de::DeserializeOwned>(
        &mut self,
        prefix: &[u8],
        moves: impl Fn(&R) -> bool,
        key_of: impl Fn(&R) -> Vec<u8>,
    ) -> Result<(Vec<R>, Vec<R>), StorageError> {
        let (mut kept, mut moved) = (Vec::new(), Vec::new());
        for (k, v) in self.txn.collect_prefix(prefix)? {
            let rec: R = codec::decode(&k, &v)?;
            if moves(&rec) {
                self.txn.delete(k);
                self.txn.put(key_of(&rec), v);
                moved.push(rec);
            } else {
                kept.push(rec);
            }
        }
        Ok((kept, moved))
    }

    /// Adds `add` to one journey window bucket; `cached` is the bucket's current
    /// counts when the caller knows them (else they are read). Returns the sum.
    pub fn count_window(
        &mut self,
        gran: u8,
        journey: &str,
        bucket: i64,
        composite: &str,
        add: &WindowCounts,
        cached: Option<&WindowCounts>,
    ) -> Result<WindowCounts, StorageError> {
        let k = key::window(self.partition, self.tenant, gran, journey, bucket, composite);
        let mut c: WindowCounts = match cached {
            Some(c) => c.clone(),
            None => self.txn.get_as(&k)?.unwrap_or_default(),
        };
        c.touches += add.touches;
        c.impressions += add.impressions;
        c.clicks += add.clicks;
        self.txn.put_as(k, &c)?;
        Ok(c)
    }

    /// No window bucket of `(gran, journey)` starts after the returned time
    /// (`None`: there is none).
    pub fn window_ceiling(&self, gran: u8, journey: &str) -> Result<Option<Ts>, StorageError> {
        let prefix = key::window_prefix(self.partition, self.tenant, gran, journey);
        let end = touchline_storage::keys::prefix_end(&prefix);
        Ok(self.txn.last_key_bound(&prefix, &end)?.map(|k| ts_in_key(&k, prefix.len()).unwrap_or(Ts::new(i64::MAX, 0))))
    }

    pub fn campaign(&self, campaign_id: &str) -> Result<Option<CampaignRec>, StorageError> {
        self.txn.get_as(&key::campaign(self.partition, self.tenant, campaign_id))
    }

    pub fn put_campaign(&mut self, rec: &CampaignRec) -> Result<(), StorageError> {
        self.txn.put_as(key::campaign(self.partition, self.tenant, &rec.campaign_id), rec)
    }

    /// The surviving import of (campaign, date).
    pub fn cost_day(&self, campaign_id: &str, date: &str) -> Result<Option<crate::domain::costs::CostDay>, StorageError> {
        self.txn.get_as(&key::cost_day(self.partition, self.tenant, campaign_id, date))
    }

    pub fn put_cost_day(&mut self, day: &crate::domain::costs::CostDay) -> Result<(), StorageError> {
        self.txn.put_as(key::cost_day(self.partition, self.tenant, &day.row.campaign_id, &day.row.date), day)
    }

    pub fn mark_meta_dirty(&mut self) {
        self.meta_dirty = true;
    }

    /// Keeps the tenant's count of blocked links (the batch's: links newly
    /// blocked minus those a late, earlier link unblocked).
    pub fn note_blocked(&mut self, blocked: usize, unblocked: usize) {
        if blocked != unblocked {
            self.meta.merges_blocked = (self.meta.merges_blocked + blocked as u64).saturating_sub(unblocked as u64);
            self.meta_dirty = true;
        }
    }
}

impl IdentityStore for TenantState<'_> {
    type Error = StorageError;

    fn person_of(&mut self, node: &IdNode) -> Result<Option<u64>, StorageError> {
        if let Some(c) = self.ids.as_deref_mut() {
            if let Some(p) = c.nodes.get(node) {
                return Ok(*p);
            }
        }
        let k = key::node(self.partition, self.tenant, node);
        let p = self.txn.get_with(&k, |v| v.and_then(|b| b.try_into().ok().map(u64::from_be_bytes)))?;
        if let Some(c) = self.ids.as_deref_mut() {
            c.nodes.insert(node.clone(), p);
        }
        Ok(p)
    }
    fn set_person_of(&mut self, node: &IdNode, person: u64) -> Result<(), StorageError> {
        self.txn.put(key::node(self.partition, self.tenant, node), person.to_be_bytes().to_vec());
        if let Some(c) = self.ids.as_deref_mut() {
            c.nodes.insert(node.clone(), Some(person));
        }
        Ok(())
    }
    fn person(&mut self, key_: u64) -> Result<Option<PersonIds>, StorageError> {
        Ok(self.person_rec(key_)?.map(|p| p.ids))
    }
    fn put_person(&mut self, key_: u64, ids: &PersonIds) -> Result<(), StorageError> {
        let mut rec = self.person_rec(key_)?.unwrap_or_else(|| {
            self.meta.persons += 1;
            self.meta_dirty = true;
            PersonRec::default()
        });
        rec.ids = ids.clone();
        self.write_person_rec(key_, Some(rec))
    }
    fn delete_person(&mut self, key_: u64) -> Result<(), StorageError> {
        if self.person_rec(key_)?.is_some() {
            self.meta.persons = self.meta.persons.saturating_sub(1);
            self.meta_dirty = true;
        }
        self.write_person_rec(key_, None)
    }
    fn add_link(&mut self, l: &Link) -> Result<Option<Link>, StorageError> {
        self.put_link(l)
    }
    fn links_of(&mut self, node: &IdNode) -> Result<Vec<Link>, StorageError> {
        self.txn.prefix_as(&key::link_prefix(self.partition, self.tenant, node))
    }
    fn next_person_key(&mut self) -> Result<u64, StorageError> {
        self.meta.next_person += 1;
        self.meta_dirty = true;
        Ok(self.meta.next_person)
    }
}

/// Parses the person key (8 bytes, big endian) at `offset` of a timeline key.
pub fn person_in_key(key: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(offset..offset + 8)?.try_into().ok()?))
}

/// `(partition, space, tenant bytes, rest)` of a tenant-scoped key.
pub fn split_key(k: &[u8]) -> Option<(u16, u8, &[u8], &[u8])> {
    if k.len() < 4 {
        return None;
    }
    let p = u16::from_be_bytes([k[0], k[1]]);
    let nul = k[3..].iter().position(|b| *b == 0)? + 3;
    Some((p, k[2], &k[3..nul], &k[nul + 1..]))
}

/// Parses a `Ts` out of the 12 sortable key bytes at `offset` of `key`.
pub fn ts_in_key(key: &[u8], offset: usize) -> Option<Ts> {
    key.get(offset..offset + 12).and_then(Ts::from_key_bytes)
}

/// The tenants with state in partition `p` (from the partition's tenant registry).
pub fn tenants(store: &Store, p: u16) -> Result<Vec<String>, StorageError> {
    let prefix = key::tenant_index_prefix(p);
    let mut tenants = Vec::new();
    store.scan_prefix(&prefix, |k, _| {
        // Tenant ids are [a-z0-9_-]: their NUL-terminated segment needs no unescaping.
        if let Some(t) = k[prefix.len()..].strip_suffix(&[0]) {
            tenants.push(String::from_utf8_lossy(t).into_owned());
        }
        true
    })?;
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchline_storage::StoreOptions;

    #[test]
    fn id_cache_forgets_writes_of_a_dropped_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let mut cache = IdCache::new(16);
        let n = IdNode::customer("c1");
        // Committed: the cache answers like the store.
        let mut t = store.txn();
        let mut st = TenantState::records(&mut t, 1, "acme").with_id_cache(&mut cache);
        assert_eq!(st.person_of(&n).unwrap(), None);
        st.set_person_of(&n, 7).unwrap();
        st.put_person(7, &PersonIds { members: vec![n.clone()], guarded: false }).unwrap();
        drop(st);
        t.commit(None).unwrap();
        // Written, then dropped uncommitted: the next transaction must not see it.
        let mut t = store.txn();
        let mut st = TenantState::records(&mut t, 1, "acme").with_id_cache(&mut cache);
        assert_eq!(st.person_of(&n).unwrap(), Some(7));
        st.set_person_of(&n, 9).unwrap();
        st.delete_person(7).unwrap();
        assert_eq!(st.person_of(&n).unwrap(), Some(9));
        drop(st);
        drop(t);
        let mut t = store.txn();
        let mut st = TenantState::records(&mut t, 1, "acme").with_id_cache(&mut cache);
        assert_eq!(st.person_of(&n).unwrap(), Some(7));
        assert_eq!(st.person(7).unwrap().map(|p| p.members), Some(vec![n]));
    }

    /// The stored summary of `person` (empty when absent) and the one its records give.
    fn stored_and_fresh(store: &Store, person: u64) -> (Option<Summary>, Summary) {
        let stored = match store.get(&key::summary(1, "acme", person)).unwrap() {
            None => Some(Summary::default()),
            Some(v) if summary::is_overflow(&v) => None,
            Some(v) => Some(Summary::decode(&v).unwrap()),
        };
        let touches: Vec<TouchRec> = store.prefix_as(&key::touch_prefix(1, "acme", person)).unwrap();
        let convs: Vec<ConvRec> = store.prefix_as(&key::conv_prefix(1, "acme", person)).unwrap();
        (stored, Summary::of(&touches, &convs))
    }

    proptest::proptest! {
        /// After a move (whole or of one customer's records, with equal
        /// times, either person's record kinds empty), both persons'
        /// summaries equal the summaries of their records, and every record
        /// the move covers is on `to`.
        #[test]
        fn a_move_leaves_both_summaries_equal_to_their_records(
            recs in proptest::collection::vec((0u64..2, 0u8..3, proptest::bool::ANY, 0i64..6, 0usize..3), 0..14),
            whole in proptest::bool::ANY,
        ) {
            use crate::domain::{Channel, ConversionInfo, Dims, TouchInfo};
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            let mut t = store.txn();
            let mut st = TenantState::records(&mut t, 1, "acme");
            // Persons 1 and 2; on 1, customers c0 and c1; on 2, c2.
            for (i, (person, cust, conv, ts, campaign)) in recs.iter().enumerate() {
                let customer_id = format!("c{}", if *person == 0 { *cust % 2 } else { 2 });
                let ts = Ts::new(1_000 + ts * 60, 0);
                let person = person + 1;
                if *conv {
                    let conversion = ConversionInfo { value: i as f64, currency: ["USD", "EUR"][*campaign % 2].into(), conversion_type: None };
                    st.put_conversion(person, &ConvRec { event_id: format!("e{i}"), ts, customer_id, conversion, late: false }).unwrap();
                } else {
                    let dims = Dims { campaign: Some(format!("k{campaign}")), ..Dims::default() };
                    let touch = TouchInfo { channel: Channel::ALL[i % 10], interaction_type: "click".into(), dims };
                    st.put_touch(person, &TouchRec { event_id: format!("e{i}"), ts, customer_id, touch }).unwrap();
                }
            }
            drop(st);
            t.commit(None).unwrap();
            let covered = recs.iter().filter(|r| r.0 == 0 && (whole || r.1 % 2 == 0)).count();
            let mut t = store.txn();
            let mut st = TenantState::records(&mut t, 1, "acme");
            let m = Move { from: 1, to: 2, nodes: vec![IdNode::customer("c0")], whole };
            proptest::prop_assert_eq!(st.apply_move(&m).unwrap(), covered);
            drop(st);
            t.commit(None).unwrap();
            for person in [1, 2] {
                let (stored, fresh) = stored_and_fresh(&store, person);
                proptest::prop_assert_eq!(stored.unwrap().content(), fresh.content(), "person {}", person);
            }
            let on_to = stored_and_fresh(&store, 2).1.len();
            proptest::prop_assert_eq!(on_to, covered + recs.iter().filter(|r| r.0 == 1).count());
        }
    }
}

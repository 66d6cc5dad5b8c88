//! A read-your-writes transaction: pending puts/deletes kept in a sorted overlay
//! over the committed DB, written atomically as one `WriteBatch` together with the
//! partition checkpoint.
//!
//! Actors of one partition share one `Txn` per Kafka batch. Nothing is visible to
//! readers (HTTP queries) before `commit`; a failed batch is simply dropped and
//! retried, so a crash or a handler panic can never leave half an event applied.
//!
//! A transaction with writes that ends without a successful commit counts as an
//! abort on its store ([`Store::aborted_txns`]): in-memory caches of state written
//! through transactions compare that count to know their contents may include
//! writes that never became durable.

use crate::keys::prefix_end;
use crate::store::{batch_of, Checkpoint, Durability, Store};
use crate::{codec, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;

pub struct Txn {
    store: Store,
    overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
}

impl Txn {
    pub(crate) fn new(store: Store) -> Txn {
        Txn { store, overlay: BTreeMap::new(), bytes: 0 }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The keys written or deleted so far, in key order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.overlay.keys().map(Vec::as_slice)
    }

    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.overlay.len()
    }

    pub fn is_empty(&self) -> bool {
        self.overlay.is_empty()
    }

    /// Approximate pending bytes (callers commit early when this grows).
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, |v| v.map(<[u8]>::to_vec))
    }

    /// Calls `f` with the value of `key` as the transaction sees it, borrowed
    /// (no copy of the overlay value or of RocksDB's pinned value).
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        match self.overlay.get(key) {
            Some(v) => Ok(f(v.as_deref())),
            None => {
                self.store.read_fault()?;
                let pinned = self.store.db().get_pinned(key)?;
                Ok(f(pinned.as_deref()))
            }
        }
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        match self.overlay.get(key) {
            Some(v) => Ok(v.is_some()),
            None => {
                self.store.read_fault()?;
                Ok(self.store.db().get_pinned(key)?.is_some())
            }
        }
    }

    pub fn get_as<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        self.get_with(key, |v| v.map(|b| codec::decode(key, b)).transpose())?
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += key.len() + value.len();
        self.overlay.insert(key, Some(value));
    }

    pub fn put_as<T: Serialize + ?Sized>(&mut self, key: Vec<u8>, value: &T) -> Result<()> {
        let v = codec::encode(value)?;
        self.put(key, v);
        Ok(())
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.bytes += key.len();
        self.overlay.insert(key, None);
    }

    /// Visits `[start, end)` as the transaction sees it (overlay over DB), in key
    /// order, until `f` returns `false`.
    pub fn scan(&self, start: &[u8], end: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let mut pending = self
            .overlay
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .peekable();
        let mut stopped = false;
        self.store.scan(start, end, |k, v| {
            // Emit overlay entries ordered before this DB key.
            while let Some((pk, pv)) = pending.peek() {
                if pk.as_slice() < k {
                    if let Some(pv) = pv {
                        if !f(pk, pv) {
                            stopped = true;
                            return false;
                        }
                    }
                    pending.next();
                } else {
                    break;
                }
            }
            match pending.peek() {
                Some((pk, pv)) if pk.as_slice() == k => {
                    let r = match pv {
                        Some(pv) => f(pk, pv),
                        None => true,
                    };
                    pending.next();
                    if !r {
                        stopped = true;
                    }
                    r
                }
                _ => {
                    let r = f(k, v);
                    if !r {
                        stopped = true;
                    }
                    r
                }
            }
        })?;
        if !stopped {
            for (pk, pv) in pending {
                if let Some(pv) = pv {
                    if !f(pk, pv) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// An upper bound of the keys in `[start, end)` as the transaction sees them:
    /// the greatest such key in the DB or written (or deleted) in this
    /// transaction. No key above it exists; `None`: the range is empty.
    pub fn last_key_bound(&self, start: &[u8], end: &[u8]) -> Result<Option<Vec<u8>>> {
        let pending = self.overlay.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end))).next_back().map(|(k, _)| k);
        let stored = self.store.last_key(start, end)?;
        Ok(match (pending, stored) {
            (Some(p), Some(s)) => Some(if p.as_slice() > s.as_slice() { p.clone() } else { s }),
            (Some(p), None) => Some(p.clone()),
            (None, s) => s,
        })
    }

    pub fn scan_prefix(&self, prefix: &[u8], f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.scan(prefix, &prefix_end(prefix), f)
    }

    /// Every value under `prefix` as the transaction sees it, decoded, in key order.
    pub fn prefix_as<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut err = None;
        self.scan_prefix(prefix, |k, v| match codec::decode::<T>(k, v) {
            Ok(x) => {
                out.push(x);
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
        err.map_or(Ok(out), Err)
    }

    /// Collects `(key, value)` pairs under `prefix` (for small ranges).
    pub fn collect_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.scan_prefix(prefix, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        })?;
        Ok(out)
    }

    /// Moves the pending writes of `parts` into this transaction; a key written
    /// by several keeps the last part's value. `parts` end empty (not aborts). For transactions over
    /// disjoint keys built concurrently (one per tenant of a batch): a k-way
    /// merge of sorted runs, O(n log k).
    pub fn absorb(&mut self, parts: Vec<Txn>) {
        let mut runs = Vec::with_capacity(parts.len() + 1);
        runs.push(std::mem::take(&mut self.overlay));
        for mut t in parts {
            self.bytes += t.bytes;
            runs.push(std::mem::take(&mut t.overlay));
        }
        self.overlay = runs.into_iter().flatten().collect();
    }

    /// Writes everything pending, plus `checkpoint` of `partition` when given, as
    /// one atomic `WriteBatch` through the write-ahead log.
    pub fn commit(self, checkpoint: Option<(u16, Checkpoint)>) -> Result<()> {
        self.prepare().commit_as(checkpoint, Durability::Wal)
    }

    /// [`Txn::commit`] of partition state that was published to the changelog
    /// first (or that the events topic re-delivers from the checkpoint): it skips
    /// the write-ahead log unless [`crate::StoreOptions::replicated_wal`].
    pub fn commit_replicated(self, checkpoint: Option<(u16, Checkpoint)>) -> Result<()> {
        self.prepare().commit_as(checkpoint, Durability::Replicated)
    }

    /// Moves the pending writes out (no copy) and builds their `WriteBatch`, to
    /// be written with [`Prepared::commit_replicated`] (the checkpoint is added
    /// then).
    pub fn prepare(mut self) -> Prepared {
        let entries: Entries = std::mem::take(&mut self.overlay).into_iter().collect();
        Prepared { store: self.store.clone(), batch: Some(batch_of(&entries)), entries: std::sync::Arc::new(entries) }
    }
}

/// The pending writes of a transaction as `(key, value)` pairs in key order
/// (`None` deletes).
pub type Entries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A transaction turned into its `WriteBatch`, not written yet: its entries
/// moved out (shared, e.g. with a changelog producer) instead of copied.
/// Dropped without [`Prepared::commit_replicated`], it counts as an abort.
pub struct Prepared {
    store: Store,
    batch: Option<rocksdb::WriteBatch>,
    entries: std::sync::Arc<Entries>,
}

impl Prepared {
    pub fn entries(&self) -> &std::sync::Arc<Entries> {
        &self.entries
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes the batch, plus `checkpoint` of `partition`, as
    /// [`Txn::commit_replicated`] does.
    pub fn commit_replicated(self, checkpoint: Option<(u16, Checkpoint)>) -> Result<()> {
        self.commit_as(checkpoint, Durability::Replicated)
    }

    fn commit_as(mut self, checkpoint: Option<(u16, Checkpoint)>, durability: Durability) -> Result<()> {
        let batch = self.batch.take().expect("a prepared batch is written once");
        let written = self.store.write_entries(batch, &self.entries, checkpoint, durability);
        if written.is_err() && !self.entries.is_empty() {
            self.store.note_aborted_txn();
        }
        written
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.batch.is_some() && !self.entries.is_empty() {
            self.store.note_aborted_txn();
        }
    }
}

impl Drop for Txn {
    /// Dropped with pending writes = never committed (`commit` and `prepare`
    /// move them out; a [`Prepared`] counts its own).
    fn drop(&mut self) {
        if !self.overlay.is_empty() {
            self.store.note_aborted_txn();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use proptest::prelude::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        (dir, s)
    }

    #[derive(Default)]
    struct Seen {
        keys: std::sync::Mutex<Vec<Vec<u8>>>,
        resets: std::sync::Mutex<Vec<u16>>,
    }

    impl crate::CommitObserver for Seen {
        fn committed(&self, keys: &mut dyn Iterator<Item = &[u8]>) {
            self.keys.lock().unwrap().extend(keys.map(<[u8]>::to_vec));
        }
        fn reset(&self, partition: u16) {
            self.resets.lock().unwrap().push(partition);
        }
    }

    #[test]
    fn absorb_merges_parts_in_key_order_and_counts_no_abort() {
        let (_d, s) = store();
        let mut a = s.txn();
        a.put(b"b1".to_vec(), b"x".to_vec());
        a.put(b"d1".to_vec(), b"x".to_vec());
        let mut b = s.txn();
        b.put(b"a2".to_vec(), b"y".to_vec());
        b.put(b"c2".to_vec(), b"y".to_vec());
        b.delete(b"e2".to_vec());
        let mut c = s.txn();
        c.put(b"d1".to_vec(), b"later".to_vec());
        let mut t = s.txn();
        t.put(b"z".to_vec(), b"own".to_vec());
        t.absorb(vec![a, b, c]);
        assert_eq!(s.aborted_txns(), 0, "absorbed parts are not aborts");
        assert_eq!(t.get(b"d1").unwrap().as_deref(), Some(&b"later"[..]));
        let p = t.prepare();
        let keys: Vec<Vec<u8>> = p.entries().iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, [&b"a2"[..], b"b1", b"c2", b"d1", b"e2", b"z"].map(<[u8]>::to_vec));
        p.commit_replicated(None).unwrap();
        assert_eq!(s.get(b"c2").unwrap().as_deref(), Some(&b"y"[..]));
        assert_eq!(s.get(b"e2").unwrap(), None);
    }

    #[test]
    fn prepared_batch_commits_with_its_checkpoint_or_counts_as_an_abort() {
        let (_d, s) = store();
        let mut t = s.txn();
        t.put(b"b".to_vec(), b"2".to_vec());
        t.put(b"a".to_vec(), b"1".to_vec());
        t.delete(b"c".to_vec());
        let p = t.prepare();
        assert_eq!(**p.entries(), vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), Some(b"2".to_vec())), (b"c".to_vec(), None)]);
        assert_eq!(s.get(b"a").unwrap(), None, "nothing written before the commit");
        let cp = Checkpoint { next_offset: 9, changelog_next: 4, ..Default::default() };
        p.commit_replicated(Some((2, cp))).unwrap();
        assert_eq!(s.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(s.checkpoint(2).unwrap(), Some(cp));
        assert_eq!(s.aborted_txns(), 0);
        let mut t = s.txn();
        t.put(b"d".to_vec(), b"4".to_vec());
        drop(t.prepare());
        assert_eq!(s.aborted_txns(), 1, "a prepared batch dropped unwritten is an abort");
        assert_eq!(s.get(b"d").unwrap(), None);
    }

    #[test]
    fn observer_sees_committed_keys_only_and_partition_resets() {
        let (_d, s) = store();
        let seen = std::sync::Arc::new(Seen::default());
        assert!(s.set_observer(seen.clone()));
        assert!(!s.set_observer(seen.clone()), "one observer per store");
        let mut t = s.txn();
        t.put(b"\x00\x01Tb".to_vec(), b"1".to_vec());
        drop(t);
        assert!(seen.keys.lock().unwrap().is_empty(), "a dropped transaction is not reported");
        let mut t = s.txn();
        t.put(b"\x00\x01Tb".to_vec(), b"1".to_vec());
        t.delete(b"\x00\x01Ta".to_vec());
        t.commit(None).unwrap();
        assert_eq!(*seen.keys.lock().unwrap(), vec![b"\x00\x01Ta".to_vec(), b"\x00\x01Tb".to_vec()], "sorted, deletes included");
        s.drop_partition(1).unwrap();
        assert_eq!(*seen.resets.lock().unwrap(), vec![1]);
    }

    #[test]
    fn commit_is_atomic_with_checkpoint_and_drop_discards() {
        let (_d, s) = store();
        let mut t = s.txn();
        t.put(b"\x00\x01Ta".to_vec(), b"1".to_vec());
        assert_eq!(t.get(b"\x00\x01Ta").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get(b"\x00\x01Ta").unwrap(), None);
        drop(t);
        assert_eq!(s.get(b"\x00\x01Ta").unwrap(), None);
        let mut t = s.txn();
        t.put(b"\x00\x01Ta".to_vec(), b"1".to_vec());
        let cp = Checkpoint { next_offset: 42, watermark_nanos: Some(7), applied_events: 1, changelog_next: 0 };
        t.commit(Some((1, cp))).unwrap();
        assert_eq!(s.get(b"\x00\x01Ta").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.checkpoint(1).unwrap(), Some(cp));
        s.drop_partition(1).unwrap();
        assert_eq!(s.checkpoint(1).unwrap(), None);
        assert_eq!(s.get(b"\x00\x01Ta").unwrap(), None);
    }

    #[test]
    fn aborts_count_dropped_or_failed_transactions_with_writes() {
        let (_d, s) = store();
        assert_eq!(s.aborted_txns(), 0);
        drop(s.txn()); // nothing written: not an abort
        let mut t = s.txn();
        t.put(b"\x00\x01a".to_vec(), b"1".to_vec());
        t.commit(None).unwrap();
        assert_eq!(s.aborted_txns(), 0);
        let mut t = s.txn();
        t.delete(b"\x00\x01a".to_vec());
        drop(t);
        assert_eq!(s.aborted_txns(), 1);
        assert_eq!(s.txn().get_with(b"\x00\x01a", |v| v.map(<[u8]>::to_vec)).unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn last_key_bound_covers_db_and_overlay() {
        let (_d, s) = store();
        let mut t = s.txn();
        for k in [b"a1", b"b1", b"b3", b"c1"] {
            t.put(k.to_vec(), Vec::new());
        }
        t.commit(None).unwrap();
        let mut t = s.txn();
        assert_eq!(t.last_key_bound(b"b", b"c").unwrap(), Some(b"b3".to_vec()));
        assert_eq!(t.last_key_bound(b"d", b"e").unwrap(), None);
        assert_eq!(t.last_key_bound(b"b", b"b3").unwrap(), Some(b"b1".to_vec()));
        t.put(b"b4".to_vec(), Vec::new());
        assert_eq!(t.last_key_bound(b"b", b"c").unwrap(), Some(b"b4".to_vec()));
        t.delete(b"b5".to_vec()); // deleted keys still bound the range
        assert_eq!(t.last_key_bound(b"b", b"c").unwrap(), Some(b"b5".to_vec()));
        t.put(b"d0".to_vec(), Vec::new());
        assert_eq!(t.last_key_bound(b"d", b"e").unwrap(), Some(b"d0".to_vec()));
    }

    proptest! {
        /// The merged scan equals a scan of a model map with the same operations.
        #[test]
        fn scan_merges_overlay_and_db(
            committed in proptest::collection::btree_map(proptest::collection::vec(0u8..4, 1..4), any::<u8>(), 0..20),
            ops in proptest::collection::vec((proptest::collection::vec(0u8..4, 1..4), proptest::option::of(any::<u8>())), 0..20),
            stop_after in 0usize..30,
        ) {
            let (_d, s) = store();
            let mut t = s.txn();
            for (k, v) in &committed { t.put(k.clone(), vec![*v]); }
            t.commit(None).unwrap();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = committed.iter().map(|(k, v)| (k.clone(), vec![*v])).collect();
            let mut t = s.txn();
            for (k, v) in &ops {
                match v {
                    Some(v) => { t.put(k.clone(), vec![*v]); model.insert(k.clone(), vec![*v]); }
                    None => { t.delete(k.clone()); model.remove(k); }
                }
            }
            let mut seen = Vec::new();
            t.scan(&[], &[0xff], |k, v| { seen.push((k.to_vec(), v.to_vec())); seen.len() < stop_after }).unwrap();
            let expect: Vec<_> = model.into_iter().take(stop_after.max(1)).collect();
            prop_assert_eq!(seen, expect);
        }
    }
}

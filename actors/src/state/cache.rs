//! Bounded in-memory caches of state records that exactly one actor writes
//! (a tenant actor's identity nodes and persons, a journey actor's window
//! counters), kept across batches so hot records are not re-read and re-decoded
//! from RocksDB for every event.
//!
//! Correctness rests on two rules: only the owning actor writes the cached keys,
//! and it writes them through the batch transaction *and* the cache at once; a
//! cache is emptied as soon as any transaction with writes was dropped without a
//! commit ([`touchline_storage::Store::aborted_txns`] moved), because it may then
//! hold values that never became durable. A restarted actor starts empty.
//!
//! Bound: two generations of at most `cap / 2` entries each; when the current
//! one is full it becomes the old one (the previous old one is dropped), and a
//! hit in the old generation moves the entry back. Memory is O(cap), eviction
//! O(1) amortized, and recently used entries survive.

use std::borrow::Borrow;
use foldhash::{HashMap, HashMapExt};
use std::hash::Hash;

pub struct GenCache<K, V> {
    cur: HashMap<K, V>,
    old: HashMap<K, V>,
    half: usize,
    /// `aborted_txns` of the store when the contents were last known good.
    epoch: u64,
}

impl<K: Hash + Eq, V> GenCache<K, V> {
    /// A cache of at most `cap` entries (`cap` 0 disables it).
    pub fn new(cap: usize) -> Self {
        GenCache { cur: HashMap::new(), old: HashMap::new(), half: cap / 2, epoch: 0 }
    }

    /// Empties the cache if a transaction was aborted since the last call.
    pub fn validate(&mut self, aborted_txns: u64) {
        if aborted_txns != self.epoch {
            self.clear();
            self.epoch = aborted_txns;
        }
    }

    pub fn clear(&mut self) {
        self.cur = HashMap::new();
        self.old = HashMap::new();
    }

    pub fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get<Q>(&mut self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.cur.contains_key(k) {
            let (k, v) = self.old.remove_entry(k)?;
            self.insert(k, v);
        }
        self.cur.get(k)
    }

    /// The entry of `k`, to change in place (a hit in the old generation
    /// moves it back, as [`Self::get`]).
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(k)?;
        self.cur.get_mut(k)
    }

    pub fn remove<Q>(&mut self, k: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cur.remove(k);
        self.old.remove(k);
    }

    /// Changes the bound to `cap` entries (a node-wide budget split among a
    /// changing number of actors); shrinking drops the old generation first.
    pub fn set_cap(&mut self, cap: usize) {
        self.half = cap / 2;
        if self.old.len() > self.half {
            self.old = HashMap::new();
        }
        if self.cur.len() > self.half {
            self.old = std::mem::take(&mut self.cur);
            if self.old.len() > self.half {
                self.old = HashMap::new();
            }
        }
    }

    pub fn insert(&mut self, k: K, v: V) {
        if self.half == 0 {
            return;
        }
        if self.cur.len() >= self.half && !self.cur.contains_key(&k) {
            self.old = std::mem::take(&mut self.cur);
        }
        self.old.remove(&k);
        self.cur.insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_recent_and_promotes_hits() {
        let mut c = GenCache::new(4);
        for i in 0..10u32 {
            c.insert(i, i * 10);
            assert!(c.len() <= 4);
        }
        assert_eq!(c.get(&9), Some(&90));
        assert_eq!(c.get(&0), None);
        // 8 is in the old generation; a hit moves it to the current one.
        assert_eq!(c.get(&8), Some(&80));
        c.insert(11, 110);
        c.insert(12, 120);
        assert_eq!(c.get(&8), Some(&80));
        assert!(c.len() <= 4);
    }

    #[test]
    fn an_abort_empties_it_and_zero_disables_it() {
        let mut c = GenCache::new(8);
        c.validate(0);
        c.insert("a", 1);
        c.validate(0);
        assert_eq!(c.get("a"), Some(&1));
        c.validate(1);
        assert!(c.is_empty());
        let mut off = GenCache::new(0);
        off.insert("a", 1);
        assert_eq!(off.get("a"), None);
    }

    #[test]
    fn set_cap_shrinks_and_grows_the_bound() {
        let mut c = GenCache::new(8);
        for i in 0..8u32 {
            c.insert(i, i);
        }
        assert_eq!(c.len(), 8);
        c.set_cap(4);
        assert!(c.len() <= 4, "{}", c.len());
        for i in 100..110u32 {
            c.insert(i, i);
            assert!(c.len() <= 4, "{}", c.len());
        }
        assert_eq!(c.get(&109), Some(&109));
        c.set_cap(0);
        assert!(c.is_empty());
        c.insert(1, 1);
        assert!(c.is_empty(), "cap 0 keeps nothing");
        c.set_cap(16);
        for i in 0..16u32 {
            c.insert(i, i);
        }
        assert_eq!(c.len(), 16);
    }

    #[test]
    fn overwrite_replaces_in_either_generation() {
        let mut c = GenCache::new(4);
        c.insert(1, 1);
        c.insert(2, 2);
        c.insert(3, 3); // rotates: {1,2} old
        c.insert(1, 10);
        assert_eq!(c.get(&1), Some(&10));
        assert_eq!(c.len(), 3);
    }
}

//! Identity link records in RocksDB: one record per node pair, kept under
//! each of its two nodes (so a node's pairs are one prefix scan), holding the
//! pair's earliest link in `(ts, event_id)` order and how many links it has
//! seen ([`Link::merged`]). A re-login rewrites its pair's two keys instead of
//! adding two, so the family is bounded by the distinct pairs, and a
//! re-stitch reads a busy person's pairs, not its logins.
//!
//! Builds before pair records wrote one record per link
//! (`key::link_per_event`); those are still read (each counts 1, and the
//! domain's stitching is exact over any mix of both forms) and deleted by
//! erasure, never written again.

use super::records::key;
use super::tenant::TenantState;
use crate::domain::identity::{IdNode, Link};
use touchline_storage::{codec, StorageError};

impl TenantState<'_> {
    /// Adds `l` to its pair's record under both nodes; returns the record before.
    pub(super) fn put_link(&mut self, l: &Link) -> Result<Option<Link>, StorageError> {
        let (p, t) = (self.partition, self.tenant);
        let under_a = key::link(p, t, &l.a, &l.b);
        let prev: Option<Link> = self.txn.get_as(&under_a)?;
        let rec = prev.as_ref().map_or_else(|| l.clone(), |r| r.merged(l));
        let v = codec::encode(&rec)?;
        self.txn.put(key::link(p, t, &l.b, &l.a), v.clone());
        self.txn.put(under_a, v);
        Ok(prev)
    }

    /// Deletes every link record of `n`, under both of its nodes, in either
    /// form (erasure); returns how many records of `n` went.
    pub fn delete_links_of(&mut self, n: &IdNode) -> Result<usize, StorageError> {
        let (p, t) = (self.partition, self.tenant.to_string());
        let mut deleted = 0;
        for (k, v) in self.txn.collect_prefix(&key::link_prefix(p, &t, n))? {
            let l: Link = codec::decode(&k, &v)?;
            let other = if &l.a == n { &l.b } else { &l.a };
            let per_event = k == key::link_per_event(p, &t, n, l.ts, &l.event_id, other);
            let mirror = if per_event { key::link_per_event(p, &t, other, l.ts, &l.event_id, n) } else { key::link(p, &t, other, n) };
            self.txn.delete(mirror);
            self.txn.delete(k);
            deleted += 1;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::{apply_link, stitch, IdentityStore};
    use crate::domain::Ts;
    use touchline_storage::keys::{KeyBuf, Space};
    use touchline_storage::{Store, StoreOptions};

    const P: u16 = 1;
    const T: &str = "acme";

    fn link(ts: i64, eid: &str, c: &str, u: &str) -> Link {
        Link::new(Ts::new(ts, 0), eid, IdNode::customer(c), IdNode::user(u))
    }

    fn link_keys(store: &Store) -> usize {
        let mut n = 0;
        store.scan_prefix(&KeyBuf::space(P, Space::Link).tenant(T).into_vec(), |_, _| {
            n += 1;
            true
        })
        .unwrap();
        n
    }

    /// Applies `l` in its own committed transaction; returns (blocked, unblocked).
    fn apply(store: &Store, l: &Link, max: usize) -> (usize, usize) {
        let mut txn = store.txn();
        let mut st = TenantState::load(&mut txn, P, T).unwrap();
        let out = apply_link(&mut st, l, max).unwrap();
        st.save().unwrap();
        drop(st);
        txn.commit(None).unwrap();
        (out.blocked, out.unblocked)
    }

    #[test]
    fn a_relogin_adds_no_link_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        for i in 0..50 {
            apply(&store, &link(100 - i, &format!("p{i:02}"), "phone", "alice"), 64);
        }
        assert_eq!(link_keys(&store), 2, "one record per pair, under each node");
        apply(&store, &link(500, "l0", "laptop", "alice"), 64);
        apply(&store, &link(501, "l1", "laptop", "alice"), 64);
        assert_eq!(link_keys(&store), 4);
        let mut txn = store.txn();
        let mut st = TenantState::records(&mut txn, P, T);
        let phone = st.links_of(&IdNode::customer("phone")).unwrap();
        assert_eq!(phone, vec![Link { count: 50, ..link(51, "p49", "phone", "alice") }]);
        let alice = st.links_of(&IdNode::user("alice")).unwrap();
        assert_eq!(alice.iter().map(|l| l.count).sum::<u64>(), 52);
        assert_eq!(st.delete_links_of(&IdNode::user("alice")).unwrap(), 2);
        drop(st);
        txn.commit(None).unwrap();
        assert_eq!(link_keys(&store), 0, "erasure deletes both sides of every pair");
    }

    /// The record of an older build: a link without its count.
    #[derive(serde::Serialize)]
    struct OldLink {
        ts: Ts,
        event_id: String,
        a: IdNode,
        b: IdNode,
    }

    #[test]
    fn per_event_links_of_an_older_build_still_count() {
        // max 2: a-u (t1) merges; b-u at t2, t3 (stored per event by an older
        // build) and t4 (this build) are all blocked: 3, as the batch says.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        apply(&store, &link(1, "e1", "a", "u"), 2);
        let mut txn = store.txn();
        for (ts, eid) in [(2, "e2"), (3, "e3")] {
            let l = link(ts, eid, "b", "u");
            let v = codec::encode(&OldLink { ts: l.ts, event_id: l.event_id.clone(), a: l.a.clone(), b: l.b.clone() }).unwrap();
            txn.put(key::link_per_event(P, T, &l.a, l.ts, eid, &l.b), v.clone());
            txn.put(key::link_per_event(P, T, &l.b, l.ts, eid, &l.a), v);
        }
        let mut st = TenantState::load(&mut txn, P, T).unwrap();
        let b = IdNode::customer("b");
        crate::domain::identity::ensure_node(&mut st, &b, &mut Vec::new()).unwrap();
        let read = st.links_of(&b).unwrap();
        assert_eq!(read.iter().map(|l| l.count).collect::<Vec<_>>(), vec![1, 1], "old values read with count 1");
        st.save().unwrap();
        drop(st);
        txn.commit(None).unwrap();
        // e4 adds one blocked link to the two the older build counted.
        assert_eq!(apply(&store, &link(4, "e4", "b", "u"), 2), (1, 0));
        let mut txn = store.txn();
        let mut st = TenantState::records(&mut txn, P, T);
        let mut links = st.links_of(&IdNode::user("u")).unwrap();
        links.sort();
        links.dedup();
        let nodes = [IdNode::customer("a"), IdNode::customer("b"), IdNode::user("u")];
        assert_eq!(stitch(&nodes, &links, 2).blocked, 3);
        assert_eq!(stitch(&nodes, &[link(1, "e1", "a", "u"), link(2, "e2", "b", "u"), link(3, "e3", "b", "u"), link(4, "e4", "b", "u")], 2).blocked, 3);
        // Erasure removes both forms on both sides.
        st.delete_links_of(&IdNode::customer("b")).unwrap();
        st.delete_links_of(&IdNode::customer("a")).unwrap();
        drop(st);
        txn.commit(None).unwrap();
        assert_eq!(link_keys(&store), 0);
    }
}

//! Change detection of the results topic, pure: given what was last
//! published for the conversions of the persons a batch touched (their stored
//! digests) and what those persons' conversions give now, which records to
//! publish, which tombstones, and how the digests change.
//!
//! A conversion is published when it has no digest yet or its digest differs;
//! a conversion with a digest that no touched person holds any more (erased,
//! swept, withdrawn by consent) gets a tombstone. A conversion that moved to
//! another person in a merge is not "gone": both persons are touched by the
//! merge, so it is found under its new person, published again only if its
//! record changed, and its digest moves with it.

use std::collections::BTreeMap;

/// A stored digest: (person, conversion event_id) → digest of the last record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub person: u64,
    pub event_id: String,
    pub digest: u64,
}

/// A conversion's record as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    pub person: u64,
    pub event_id: String,
    pub digest: u64,
    pub value: Vec<u8>,
}

/// What to do: records to produce (event_id, value; `None` = tombstone), in
/// event_id order, and the digest keys to write and delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub records: Vec<(String, Option<Vec<u8>>)>,
    pub put: Vec<Published>,
    pub delete: Vec<(u64, String)>,
}

/// The plan that brings the topic from `old` (every digest of the touched
/// persons) to `new` (every current conversion of the same persons).
pub fn plan(old: Vec<Published>, new: Vec<Current>) -> Plan {
    let mut before: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for o in old {
        before.entry(o.event_id).or_default().push((o.person, o.digest));
    }
    let mut out = Plan::default();
    let mut records: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for n in new {
        let prev = before.remove(&n.event_id).unwrap_or_default();
        if !prev.iter().any(|(_, d)| *d == n.digest) || prev.len() > 1 {
            records.insert(n.event_id.clone(), Some(n.value));
        }
        let mut kept = false;
        for (person, d) in prev {
            if person == n.person && d == n.digest {
                kept = true;
            } else if person != n.person {
                out.delete.push((person, n.event_id.clone()));
            }
        }
        if !kept {
            out.put.push(Published { person: n.person, event_id: n.event_id, digest: n.digest });
        }
    }
    for (event_id, prev) in before {
        for (person, _) in prev {
            out.delete.push((person, event_id.clone()));
        }
        records.insert(event_id, None);
    }
    out.records = records.into_iter().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn cur(person: u64, id: &str, v: &str) -> Current {
        Current { person, event_id: id.into(), digest: super::super::record::digest(v.as_bytes()), value: v.as_bytes().to_vec() }
    }

    fn pubd(c: &Current) -> Published {
        Published { person: c.person, event_id: c.event_id.clone(), digest: c.digest }
    }

    #[test]
    fn unchanged_is_silent_changed_is_published_gone_is_a_tombstone_and_moved_keeps_its_value() {
        let (a, b, c) = (cur(1, "a", "A"), cur(1, "b", "B"), cur(1, "c", "C"));
        let old = vec![pubd(&a), pubd(&b), pubd(&c)];
        let b2 = cur(1, "b", "B2");
        // `c` moved to person 2 in a merge, same record.
        let c2 = cur(2, "c", "C");
        let p = plan(old, vec![a.clone(), b2.clone(), c2.clone(), cur(2, "d", "D")]);
        assert_eq!(p.records, vec![("b".into(), Some(b"B2".to_vec())), ("d".into(), Some(b"D".to_vec()))]);
        assert_eq!(p.put, vec![pubd(&b2), pubd(&c2), pubd(&cur(2, "d", "D"))]);
        assert_eq!(p.delete, vec![(1, "c".into())]);
        // Erased: everything goes.
        let p = plan(vec![pubd(&a), pubd(&c2)], vec![]);
        assert_eq!(p.records, vec![("a".into(), None), ("c".into(), None)]);
        assert_eq!(p.delete, vec![(1, "a".into()), (2, "c".into())]);
        assert!(p.put.is_empty());
    }

    /// A table (event_id → value) and the digests, as a sink and the store hold them.
    fn apply(table: &mut BTreeMap<String, Vec<u8>>, digests: &mut BTreeMap<(u64, String), u64>, p: &Plan) {
        for (id, v) in &p.records {
            match v {
                Some(v) => table.insert(id.clone(), v.clone()),
                None => table.remove(id),
            };
        }
        for (person, id) in &p.delete {
            digests.remove(&(*person, id.clone()));
        }
        for x in &p.put {
            digests.insert((x.person, x.event_id.clone()), x.digest);
        }
    }

    proptest! {
        /// Over random sequences of states (conversions with values, moving
        /// between persons, appearing and leaving), applying each step's plan
        /// to an upsert table keeps it equal to the current state, the digests
        /// equal to one per current conversion, and a step that changes
        /// nothing publishes nothing.
        #[test]
        fn the_table_follows_the_state(steps in prop::collection::vec(prop::collection::btree_map(0u8..12, (0u64..4, 0u8..3), 0..10), 1..12)) {
            let mut table = BTreeMap::new();
            let mut digests: BTreeMap<(u64, String), u64> = BTreeMap::new();
            for state in steps.iter().chain(steps.last()) {
                let new: Vec<Current> = state.iter().map(|(id, (person, v))| cur(*person, &format!("e{id}"), &format!("{person}:{v}"))).collect();
                // Every person of the old or new state is touched.
                let old: Vec<Published> = digests.iter().map(|((person, id), d)| Published { person: *person, event_id: id.clone(), digest: *d }).collect();
                let p = plan(old, new.clone());
                let before = table.clone();
                apply(&mut table, &mut digests, &p);
                let want: BTreeMap<String, Vec<u8>> = new.iter().map(|c| (c.event_id.clone(), c.value.clone())).collect();
                prop_assert_eq!(&table, &want);
                let want_digests: BTreeMap<(u64, String), u64> = new.iter().map(|c| ((c.person, c.event_id.clone()), c.digest)).collect();
                prop_assert_eq!(&digests, &want_digests);
                if before == want {
                    prop_assert!(p.records.is_empty(), "nothing changed, yet {:?}", p.records);
                }
            }
        }
    }
}

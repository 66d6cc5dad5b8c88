//! Change detection of the results topic, pure: given what was last
//! published for the conversions of the persons a batch touched (their stored
//! digests) and what those persons' conversions give now, which records to
//! publish and which tombstones.
//!
//! A conversion is published when it has no digest yet or its digest differs;
//! a conversion with a digest that no touched person holds any more (erased,
//! swept, withdrawn by consent) gets a tombstone. A conversion that moved to
//! another person in a merge is not "gone": both persons are touched by the
//! merge, so it is found under its new person and published again only if its
//! record changed. Afterwards the touched persons' digests are those of the
//! current records.
//!
//! While a backfill is pending (`super::backfill`: the topic, its models or
//! lookback changed, or it was just turned on) the plan is *forced*: every
//! current record is published whatever its digest — the topic may not hold
//! it (a new topic) — and the gone ones still get their tombstones.

use std::collections::BTreeMap;

/// A stored digest: a conversion of a person and the digest of its last record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub event_id: String,
    pub digest: u64,
}

/// A conversion's record as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    pub event_id: String,
    pub digest: u64,
    pub value: Vec<u8>,
}

/// The records that bring the topic from `old` (every digest of the touched
/// persons) to `new` (every current conversion of the same persons): (event_id,
/// value; `None` = tombstone), in event_id order. `force`: publish every
/// current record, changed or not.
pub fn plan(old: Vec<Published>, new: Vec<Current>, force: bool) -> Vec<(String, Option<Vec<u8>>)> {
    let mut before: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for o in old {
        before.entry(o.event_id).or_default().push(o.digest);
    }
    let mut records: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    for n in new {
        let prev = before.remove(&n.event_id).unwrap_or_default();
        // Two digests of one conversion (never written so): publish to be sure.
        if force || prev.len() != 1 || prev[0] != n.digest {
            records.insert(n.event_id, Some(n.value));
        }
    }
    for event_id in before.into_keys() {
        records.insert(event_id, None);
    }
    records.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(id: &str, v: &str) -> Current {
        Current { event_id: id.into(), digest: super::super::record::digest(v.as_bytes()), value: v.as_bytes().to_vec() }
    }

    fn pubd(c: &Current) -> Published {
        Published { event_id: c.event_id.clone(), digest: c.digest }
    }

    #[test]
    fn unchanged_is_silent_changed_is_published_gone_is_a_tombstone_and_moved_keeps_its_value() {
        let (a, b, c) = (cur("a", "A"), cur("b", "B"), cur("c", "C"));
        // `c` moved to another person in a merge with the same record: both persons are touched.
        let p = plan(vec![pubd(&a), pubd(&b), pubd(&c)], vec![a.clone(), cur("b", "B2"), c.clone(), cur("d", "D")], false);
        assert_eq!(p, vec![("b".into(), Some(b"B2".to_vec())), ("d".into(), Some(b"D".to_vec()))]);
        // Erased: everything goes.
        assert_eq!(plan(vec![pubd(&a), pubd(&c)], vec![], false), vec![("a".into(), None), ("c".into(), None)]);
        // Forced (a backfill): every current record, and the tombstones.
        let all = plan(vec![pubd(&a), pubd(&b)], vec![a.clone(), cur("d", "D")], true);
        assert_eq!(all, vec![("a".into(), Some(b"A".to_vec())), ("b".into(), None), ("d".into(), Some(b"D".to_vec()))]);
    }

    /// An upsert table (event_id → value) as a sink keeps it.
    fn apply(table: &mut BTreeMap<String, Vec<u8>>, records: &[(String, Option<Vec<u8>>)]) {
        for (id, v) in records {
            match v {
                Some(v) => table.insert(id.clone(), v.clone()),
                None => table.remove(id),
            };
        }
    }

    proptest! {
        /// Over random sequences of states (conversions appearing, changing
        /// and leaving), applying each step's plan to an upsert table keeps it
        /// equal to the current state, and a step that changes nothing
        /// publishes nothing.
        #[test]
        fn the_table_follows_the_state(steps in prop::collection::vec(prop::collection::btree_map(0u8..12, 0u8..3, 0..10), 1..12)) {
            let mut table = BTreeMap::new();
            let mut digests: Vec<Published> = Vec::new();
            for state in steps.iter().chain(steps.last()) {
                let new: Vec<Current> = state.iter().map(|(id, v)| cur(&format!("e{id}"), &format!("v{v}"))).collect();
                let records = plan(std::mem::take(&mut digests), new.clone(), false);
                let before = table.clone();
                apply(&mut table, &records);
                let want: BTreeMap<String, Vec<u8>> = new.iter().map(|c| (c.event_id.clone(), c.value.clone())).collect();
                prop_assert_eq!(&table, &want);
                if before == want {
                    prop_assert!(records.is_empty(), "nothing changed, yet {:?}", records);
                }
                digests = new.iter().map(pubd).collect();
            }
        }
    }
}

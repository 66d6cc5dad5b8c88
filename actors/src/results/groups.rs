//! The persons a record is computed over, read through the batch
//! transaction: for a tenant with probabilistic links on
//! (`[tenants.<t>] probabilistic = true`), a conversion's record follows its
//! *final* person (attribution.md, "Probabilistic links"): its deterministic
//! person joined with the anonymous persons linked to the same known person
//! (the stored links, key family `A`, as the batch leaves them) — the person
//! `/v1` reports answer over under `identity=all` and the batch reference
//! uses. The path of any conversion of a final person then holds every
//! member's touchpoints, so a touch of one member changes the records of all
//! members: [`groups`] widens the touched persons to their whole final
//! persons. For any other tenant every person is its own group.

use crate::domain::probabilistic::ProbLink;
use crate::query::linking::FinalPersons;
use crate::state::key;
use std::collections::{BTreeMap, BTreeSet};
use touchline_storage::{codec, StorageError, Txn};

/// One final person: its head (the known person, or the person itself) and
/// its deterministic members (the head first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub head: u64,
    pub members: Vec<u64>,
}

/// The final persons holding `persons` of `tenant`, each once, in head
/// order. `linked`: the tenant has probabilistic links on (its stored links
/// are read once, a scan of at most one key per linked anonymous person).
pub fn groups(txn: &Txn, p: u16, tenant: &str, persons: &BTreeSet<u64>, linked: bool) -> Result<Vec<Group>, StorageError> {
    if !linked {
        return Ok(persons.iter().map(|&x| Group { head: x, members: vec![x] }).collect());
    }
    let view = FinalPersons::from_links(links(txn, p, tenant)?);
    let heads: BTreeSet<u64> = persons.iter().map(|&x| view.group_of(x)).collect();
    Ok(heads.into_iter().map(|head| Group { head, members: view.members_of(head) }).collect())
}

/// The tenant's stored probabilistic links as `txn` sees them.
fn links(txn: &Txn, p: u16, tenant: &str) -> Result<BTreeMap<u64, ProbLink>, StorageError> {
    let prefix = key::prob_links_prefix(p, tenant);
    let mut out = BTreeMap::new();
    for (k, v) in txn.collect_prefix(&prefix)? {
        let (known, score): (u64, u32) = codec::decode(&k, &v)?;
        if let Some(a) = crate::state::tenant::person_in_key(&k[prefix.len()..], 0) {
            out.insert(a, ProbLink { known, score });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchline_storage::Store;

    #[test]
    fn touched_persons_widen_to_their_final_persons() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        let mut txn = store.txn();
        // 5 and 7 linked to known 2; 9 linked to 3; 4 alone.
        for (a, k) in [(5u64, 2u64), (7, 2), (9, 3)] {
            txn.put_as(key::prob_link(0, "t", a), &(k, 8_000u32)).unwrap();
        }
        txn.put_as(key::prob_link(0, "u", 4), &(3u64, 8_000u32)).unwrap();
        let touched = BTreeSet::from([7, 4]);
        let g = groups(&txn, 0, "t", &touched, true).unwrap();
        assert_eq!(g, vec![Group { head: 2, members: vec![2, 5, 7] }, Group { head: 4, members: vec![4] }]);
        let plain = groups(&txn, 0, "t", &touched, false).unwrap();
        assert_eq!(plain, vec![Group { head: 4, members: vec![4] }, Group { head: 7, members: vec![7] }]);
    }
}

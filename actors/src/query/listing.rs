//! Listings of what a partition holds, for the HTTP index routes: the tenants
//! it has seen (accepted events, persons and event-time range, from each
//! tenant's meta) and a tenant's persons in key order, paged.

use super::{tenant_meta, QueryError};
use crate::domain::Ts;
use crate::state::{key, PersonRec};
use touchline_storage::keys::prefix_end;
use touchline_storage::Store;

/// One tenant of a partition.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantSummary {
    pub tenant: String,
    /// Events accepted (duplicates and dead letters aside).
    pub events: u64,
    pub persons: u64,
    /// Event-time range of the accepted events (erasure requests aside); the
    /// first is unknown (`None`) for state written before it was recorded.
    pub first_event: Option<Ts>,
    pub last_event: Option<Ts>,
}

/// Every tenant with state in `partition`, by name.
pub fn tenants(store: &Store, partition: u16) -> Result<Vec<TenantSummary>, QueryError> {
    let prefix = key::tenant_index_prefix(partition);
    let mut names = Vec::new();
    store.scan_prefix(&prefix, |k, _| {
        if let Some(name) = k[prefix.len()..].strip_suffix(&[0]).and_then(|b| std::str::from_utf8(b).ok()) {
            names.push(name.to_string());
        }
        true
    })?;
    let mut out = Vec::with_capacity(names.len());
    for tenant in names {
        if let Some(m) = tenant_meta(store, partition, &tenant)? {
            out.push(TenantSummary { tenant, events: m.events, persons: m.persons, first_event: m.min_ts, last_event: m.max_ts });
        }
    }
    Ok(out)
}

/// A page of persons: `(person key, record)` in key order, and the key to
/// continue after when more follow.
#[derive(Debug, Default)]
pub struct PersonPage {
    pub persons: Vec<(u64, PersonRec)>,
    pub next: Option<u64>,
}

/// At most `limit` persons of `tenant` after the person key `after`, in key
/// order. Keys are allocated increasing and never reused, so paging is stable
/// while events arrive: a new person comes after every key listed so far, a
/// person merged or erased between pages is not listed again.
pub fn persons(store: &Store, partition: u16, tenant: &str, after: Option<u64>, limit: usize) -> Result<PersonPage, QueryError> {
    let prefix = key::person_prefix(partition, tenant);
    let start = match after {
        None => prefix.clone(),
        Some(u64::MAX) => return Ok(PersonPage::default()),
        Some(k) => key::person(partition, tenant, k + 1),
    };
    let mut page = PersonPage::default();
    let mut more = false;
    store.scan_as::<PersonRec>(&start, &prefix_end(&prefix), |k, rec| {
        if page.persons.len() == limit {
            more = true;
            return false;
        }
        if let Some(id) = k.get(prefix.len()..).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            page.persons.push((u64::from_be_bytes(id), rec));
        }
        true
    })?;
    if more {
        page.next = page.persons.last().map(|(k, _)| *k);
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::{IdNode, PersonIds};
    use crate::state::TenantMeta;

    fn put<T: serde::Serialize>(store: &Store, k: Vec<u8>, v: &T) {
        let mut t = store.txn();
        t.put_as(k, v).unwrap();
        t.commit(None).unwrap();
    }

    #[test]
    fn tenants_and_persons_are_listed_in_order_and_paged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        for (t, events) in [("globex", 2u64), ("acme", 5)] {
            let mut t_ = store.txn();
            t_.put(key::tenant_index(3, t), Vec::new());
            t_.commit(None).unwrap();
            let meta = TenantMeta { events, persons: 3, min_ts: Some(Ts::new(10, 0)), max_ts: Some(Ts::new(20, 0)), ..Default::default() };
            put(&store, key::tenant_meta(3, t), &meta);
        }
        let ts = tenants(&store, 3).unwrap();
        assert_eq!(ts.iter().map(|t| (t.tenant.as_str(), t.events)).collect::<Vec<_>>(), [("acme", 5), ("globex", 2)]);
        assert_eq!((ts[0].first_event, ts[0].last_event), (Some(Ts::new(10, 0)), Some(Ts::new(20, 0))));
        assert!(tenants(&store, 4).unwrap().is_empty());

        for pk in [7u64, 2, 300] {
            let rec = PersonRec { ids: PersonIds { members: vec![IdNode::customer(format!("c{pk}"))], guarded: false }, segments: vec![] };
            put(&store, key::person(3, "acme", pk), &rec);
        }
        put(&store, key::person(3, "acmex", 1), &PersonRec::default());
        let p1 = persons(&store, 3, "acme", None, 2).unwrap();
        assert_eq!(p1.persons.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2, 7]);
        assert_eq!(p1.next, Some(7));
        let p2 = persons(&store, 3, "acme", p1.next, 2).unwrap();
        assert_eq!((p2.persons.iter().map(|(k, _)| *k).collect::<Vec<_>>(), p2.next), (vec![300], None));
        assert!(persons(&store, 3, "acme", Some(u64::MAX), 2).unwrap().persons.is_empty());
        let all = persons(&store, 3, "acme", None, 3).unwrap();
        assert_eq!((all.persons.len(), all.next), (3, None), "an exactly full page has no next");
    }
}

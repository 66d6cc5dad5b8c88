//! Consent as queries see it (events.md, Privacy): a `consent_update` of any of
//! a person's customer_ids decides, from its event time on, whether that
//! person's touchpoints and conversions count. Applied at read time over the
//! final identity graph, so late updates and late merges stay exact.

use super::linking::FinalPersons;
use super::QueryError;
use crate::domain::identity::IdKind;
use crate::domain::Ts;
use crate::state::{key, ConsentRec, PersonRec, TenantMeta};
use std::collections::HashMap;
use touchline_storage::{codec, Store};

/// Whether `ts` is covered by analytics consent given a person's updates,
/// sorted by (ts, event_id): the latest update at or before `ts` decides;
/// without one, consent is the event's own (already checked at ingest).
pub fn allows(updates: &[ConsentRec], ts: Ts) -> bool {
    let n = updates.partition_point(|u| u.ts <= ts);
    n == 0 || updates[n - 1].analytics
}

/// Per-query cache of persons' consent updates. With no `consent_update` in
/// the tenant (the common case) it answers `true` without reading anything.
pub struct ConsentCache<'a> {
    store: &'a Store,
    partition: u16,
    tenant: &'a str,
    enabled: bool,
    persons: HashMap<u64, Vec<ConsentRec>>,
    /// Final persons (identity=all with probabilistic links): a person's
    /// consent is that of all its members.
    view: Option<&'a FinalPersons>,
}

impl<'a> ConsentCache<'a> {
    pub fn new(store: &'a Store, partition: u16, tenant: &'a str, meta: &TenantMeta) -> ConsentCache<'a> {
        ConsentCache { store, partition, tenant, enabled: meta.consent_updates > 0, persons: HashMap::new(), view: None }
    }

    /// Reads consent per final person of `view` (the person keys passed in are
    /// then final persons).
    pub fn with_view(mut self, view: Option<&'a FinalPersons>) -> ConsentCache<'a> {
        self.view = view;
        self
    }

    /// An empty cache with the same settings (for another thread).
    pub fn fork(&self) -> ConsentCache<'a> {
        ConsentCache { store: self.store, partition: self.partition, tenant: self.tenant, enabled: self.enabled, persons: HashMap::new(), view: self.view }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    pub fn allows(&mut self, person: u64, ts: Ts) -> Result<bool, QueryError> {
        if !self.enabled {
            return Ok(true);
        }
        if !self.persons.contains_key(&person) {
            let updates = self.load(person)?;
            self.persons.insert(person, updates);
        }
        Ok(self.persons.get(&person).is_none_or(|u| allows(u, ts)))
    }

    /// For scan callbacks, which cannot return errors: `Some(allowed)`, or
    /// `None` after moving the error into `err` (the caller stops the scan).
    pub fn allows_in_scan(&mut self, person: u64, ts: Ts, err: &mut Option<QueryError>) -> Option<bool> {
        match self.allows(person, ts) {
            Ok(a) => Some(a),
            Err(e) => {
                *err = Some(e);
                None
            }
        }
    }

    /// Keeps the records of `person` whose time its consent covers.
    pub fn retain<T>(&mut self, person: u64, recs: &mut Vec<T>, ts: impl Fn(&T) -> Ts) -> Result<(), QueryError> {
        if !self.enabled {
            return Ok(());
        }
        let mut keep = Vec::with_capacity(recs.len());
        for r in recs.drain(..) {
            if self.allows(person, ts(&r))? {
                keep.push(r);
            }
        }
        *recs = keep;
        Ok(())
    }

    fn load(&self, person: u64) -> Result<Vec<ConsentRec>, QueryError> {
        let (p, t) = (self.partition, self.tenant);
        let members = match self.view {
            Some(v) => v.members_of(person),
            None => vec![person],
        };
        let mut updates: Vec<ConsentRec> = Vec::new();
        for m in members {
            let pk = key::person(p, t, m);
            let Some(raw) = self.store.get(&pk)? else { continue };
            let rec: PersonRec = codec::decode(&pk, &raw)?;
            for n in rec.ids.members.iter().filter(|n| n.kind == IdKind::Customer) {
                updates.extend(self.store.prefix_as::<ConsentRec>(&key::consent_prefix(p, t, &n.id))?);
            }
        }
        updates.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
        Ok(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(secs: i64, id: &str, analytics: bool) -> ConsentRec {
        ConsentRec { ts: Ts::new(secs, 0), event_id: id.into(), analytics }
    }

    #[test]
    fn latest_update_at_or_before_decides() {
        let ups = vec![u(10, "a", false), u(20, "b", true), u(20, "c", false), u(30, "d", true)];
        assert!(allows(&ups, Ts::new(9, 0)), "before any update: allowed");
        assert!(!allows(&ups, Ts::new(10, 0)), "from its event time on");
        assert!(!allows(&ups, Ts::new(19, 0)));
        assert!(!allows(&ups, Ts::new(20, 0)), "ties at one ts: the later event_id wins");
        assert!(allows(&ups, Ts::new(30, 0)));
        assert!(allows(&[], Ts::new(0, 0)));
    }
}

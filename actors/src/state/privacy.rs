//! Privacy and personalization writes inside a partition transaction:
//! `consent_update` records, segment membership, variant performance, and the
//! erasure of a whole stitched person with one-way tombstones.
//!
//! Consent is stored per customer_id and applied when a query reads a person
//! (see `query::consent`), so a late `consent_update` or a late merge gives the
//! same answer as a batch run. Erasure deletes every record of the person and
//! leaves, per identifier, only a SHA-256 tombstone with the erasure time, so
//! an event of that identifier at or before it that arrives later is dropped.

use super::records::{key, ConsentRec, ConvRec, PersonRec, SignalRec, VariantRec};
use super::tenant::TenantState;
use crate::domain::identity::{IdKind, IdNode, IdentityStore};
use crate::domain::{Ts, VariantMetrics};
use touchline_storage::{codec, StorageError};

/// What an erasure removed (for logs and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    pub identifiers: usize,
    pub records: usize,
}

impl TenantState<'_> {
    pub fn put_consent(&mut self, customer_id: &str, ts: Ts, event_id: &str, analytics: bool) -> Result<(), StorageError> {
        let k = key::consent(self.partition, self.tenant, customer_id, ts, event_id);
        self.txn.put_as(k, &ConsentRec { ts, event_id: event_id.to_string(), analytics })?;
        self.meta.consent_updates += 1;
        self.mark_meta_dirty();
        Ok(())
    }

    /// Stores the probabilistic-stitching signal of an accepted event.
    pub fn put_signal(&mut self, customer_id: &str, event_id: &str, rec: &SignalRec) -> Result<(), StorageError> {
        let k = key::signal(self.partition, self.tenant, customer_id, rec.ts, event_id);
        self.txn.put_as(k, rec)
    }

    pub fn add_segments(&mut self, customer_id: &str, segments: &[String]) {
        for s in segments {
            self.txn.put(key::segment(self.partition, self.tenant, customer_id, s), Vec::new());
        }
    }

    pub fn add_variant(&mut self, v: &VariantMetrics) -> Result<(), StorageError> {
        let k = key::variant(self.partition, self.tenant, &v.variant_id);
        let mut r: VariantRec = self.txn.get_as(&k)?.unwrap_or_else(|| VariantRec { variant_id: v.variant_id.clone(), ..Default::default() });
        r.events += 1;
        r.impressions += v.impressions;
        r.clicks += v.clicks;
        r.conversions += v.conversions;
        r.revenue += v.revenue;
        self.txn.put_as(k, &r)
    }

    /// The latest erasure time of `n`, if it was ever erased.
    pub fn erased_at(&self, n: &IdNode) -> Result<Option<Ts>, StorageError> {
        self.txn.get_as::<Ts>(&key::erased(self.partition, self.tenant, n))
    }

    /// `true` when any of `nodes` was erased at or after `ts`: the event belongs
    /// to an erased person and must not recreate it.
    pub fn is_erased(&self, nodes: &[&IdNode], ts: Ts) -> Result<bool, StorageError> {
        if self.meta.erasures == 0 {
            return Ok(false);
        }
        for n in nodes {
            if self.erased_at(n)?.is_some_and(|te| ts <= te) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Erases the person `person` (the component of `node`, or just `node` when
    /// it has none): identity nodes and links, timeline, conversions and their
    /// index, consent and segments; then tombstones every identifier at `ts`.
    pub fn erase_person(&mut self, person: Option<u64>, node: &IdNode, ts: Ts) -> Result<Erased, StorageError> {
        let (p, t) = (self.partition, self.tenant.to_string());
        let mut out = Erased::default();
        self.meta.erasures += 1;
        self.mark_meta_dirty();
        let members: Vec<IdNode> = match person {
            Some(pk) => self.person_rec(pk)?.map(|r: PersonRec| r.ids.members).unwrap_or_default(),
            None => Vec::new(),
        };
        let members = if members.is_empty() { vec![node.clone()] } else { members };
        for n in &members {
            self.delete_node(n);
            out.records += self.delete_links_of(n)?;
            if n.kind == IdKind::Customer {
                for prefix in [key::consent_prefix(p, &t, &n.id), key::segment_prefix(p, &t, &n.id), key::signal_prefix(p, &t, &n.id)] {
                    for (k, _) in self.txn.collect_prefix(&prefix)? {
                        self.txn.delete(k);
                        out.records += 1;
                    }
                }
            }
            let tomb = key::erased(p, &t, n);
            let te = self.txn.get_as::<Ts>(&tomb)?.map_or(ts, |old| old.max(ts));
            self.txn.put_as(tomb, &te)?;
            out.identifiers += 1;
        }
        if let Some(pk) = person {
            for (k, _) in self.txn.collect_prefix(&key::touch_prefix(p, &t, pk))? {
                self.txn.delete(k);
                out.records += 1;
            }
            for (k, v) in self.txn.collect_prefix(&key::conv_prefix(p, &t, pk))? {
                let c: ConvRec = codec::decode(&k, &v)?;
                self.txn.delete(key::conv_by_time(p, &t, c.ts, &c.event_id));
                self.txn.delete(k);
                out.records += 1;
            }
            self.txn.delete(key::summary(p, &t, pk));
            self.delete_person(pk)?;
        }
        Ok(out)
    }
}

//! The apply-time compliance count of one tenant actor (issue 20, item 5):
//! each applied touchpoint of a tenant that uses the registry (an id or a
//! taxonomy) is classified (`domain::governance::compliance`) against the
//! tenant's current taxonomy and registry as committed so far, and a
//! noncompliant one counts in `touchline_tracking_noncompliant_total{reason}`.
//! The taxonomy is re-read only when the registry's meta says it changed
//! (one read per batch).
//!
//! Exact with respect to state: a touchpoint is judged only once the dedup
//! check found it new, and its count travels in the batch's
//! [`super::tenant::TenantStats`] to the partition actor, which adds it to
//! the counter only after the batch's commit, with the other "applied"
//! metrics. A batch that fails before its commit (a crash, a failed
//! re-route or results publish, a storage stall) and is applied again
//! counts once: its first attempt's counts are dropped with its
//! transaction, and the replay finds the events new again. A replay of a
//! committed batch finds them applied and counts nothing. (Counting at
//! apply time counted every attempt; a gauge recomputed from state would
//! need a stored count per tenant written through the changelog, and would
//! move with the partition rather than count what this node applied.)

use crate::domain::governance::compliance::{classify, Verdict};
use crate::domain::governance::registry::Status;
use crate::domain::governance::{CompiledTaxonomy, IdType};
use crate::state::registry::{key, RegistryEntry, RegistryMeta, TaxonomyRec};
use touchline_storage::{StorageError, Txn};

#[derive(Default)]
pub struct TrackingCheck {
    meta: RegistryMeta,
    template: Option<CompiledTaxonomy>,
}

impl TrackingCheck {
    /// Reads the tenant's registry meta, and its taxonomy when the version changed.
    pub fn refresh(&mut self, txn: &Txn, p: u16, tenant: &str) -> Result<(), StorageError> {
        let meta: RegistryMeta = txn.get_as(&key::meta(p, tenant))?.unwrap_or_default();
        if meta.taxonomy_version != self.meta.taxonomy_version {
            let rec: Option<TaxonomyRec> = txn.get_as(&key::taxonomy(p, tenant, meta.taxonomy_version))?;
            self.template = rec.and_then(|r| r.template()).and_then(|t| t.compile().ok());
        }
        self.meta = meta;
        Ok(())
    }

    /// Counts, in `counts`, the new touchpoint with tracking `params` if it
    /// is noncompliant.
    pub fn observe(&self, txn: &Txn, p: u16, tenant: &str, params: &[(String, String)], counts: &mut Noncompliant) {
        if self.meta.ids == 0 && self.template.is_none() {
            return;
        }
        let entry = |id: &str| txn.get_as::<RegistryEntry>(&key::entry(p, tenant, id)).ok().flatten();
        let exists = |kind: IdType, id: &str| entry(id).is_some_and(|e| e.kind == kind);
        let live = |kind: IdType, id: &str| entry(id).is_some_and(|e| e.kind == kind && e.status == Status::Live);
        match classify(self.template.as_ref(), params, &exists, &live).verdict {
            Verdict::UnknownId => counts.unknown_id += 1,
            Verdict::OffTaxonomy => counts.off_taxonomy += 1,
            Verdict::Compliant | Verdict::Untracked => {}
        }
    }
}

/// Noncompliant touchpoints of a batch, by reason; counted once committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Noncompliant {
    pub unknown_id: u64,
    pub off_taxonomy: u64,
}

impl Noncompliant {
    pub fn add(&mut self, other: Noncompliant) {
        self.unknown_id += other.unknown_id;
        self.off_taxonomy += other.off_taxonomy;
    }

    /// Adds the counts to `touchline_tracking_noncompliant_total` (after the commit).
    pub fn record(self) {
        crate::metrics::tracking_noncompliant("unknown_id", self.unknown_id);
        crate::metrics::tracking_noncompliant("off_taxonomy", self.off_taxonomy);
    }
}

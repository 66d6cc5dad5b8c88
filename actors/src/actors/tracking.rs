//! The apply-time compliance count of one tenant actor (issue 20, item 5):
//! each applied touchpoint of a tenant that uses the registry (an id or a
//! taxonomy) is classified (`domain::governance::compliance`) against the
//! tenant's current taxonomy and registry as committed so far, and a
//! noncompliant one counts in `touchline_tracking_noncompliant_total{reason}`.
//! The taxonomy is re-read only when the registry's meta says it changed
//! (one read per batch). A replayed batch may count its touchpoints again.

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

    /// Counts the touchpoint with tracking `params` if it is noncompliant.
    pub fn observe(&self, txn: &Txn, p: u16, tenant: &str, params: &[(String, String)]) {
        if self.meta.ids == 0 && self.template.is_none() {
            return;
        }
        let entry = |id: &str| txn.get_as::<RegistryEntry>(&key::entry(p, tenant, id)).ok().flatten();
        let exists = |kind: IdType, id: &str| entry(id).is_some_and(|e| e.kind == kind);
        let live = |kind: IdType, id: &str| entry(id).is_some_and(|e| e.kind == kind && e.status == Status::Live);
        match classify(self.template.as_ref(), params, &exists, &live).verdict {
            Verdict::UnknownId => crate::metrics::tracking_noncompliant("unknown_id"),
            Verdict::OffTaxonomy => crate::metrics::tracking_noncompliant("off_taxonomy"),
            Verdict::Compliant | Verdict::Untracked => {}
        }
    }
}

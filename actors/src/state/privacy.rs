//! Privacy and personalization writes inside a partition transaction:
//! `consent_update` records, segment membership, variant performance and the
//! probabilistic-stitching signals (erasure: `super::erasure`).
//!
//! Consent is stored per customer_id and applied when a query reads a person
//! (see `query::consent`), so a late `consent_update` or a late merge gives the
//! same answer as a batch run.

use super::records::{key, ConsentRec, SignalRec, VariantRec};
use super::tenant::TenantState;
use crate::domain::{Ts, VariantMetrics};
use touchline_storage::StorageError;

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
}

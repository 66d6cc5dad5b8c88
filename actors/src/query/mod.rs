//! The read side: answers the HTTP queries from committed RocksDB state of the
//! partition that owns the tenant. Pure aggregation over scans; no actor is
//! involved, so queries never queue behind ingest. Every query ignores
//! touchpoints and conversions behind the tenant's retention horizon, so an
//! answer never depends on whether the retention sweep has run yet.

pub mod activity_index;
pub mod attribution;
pub mod campaigns;
pub mod cohorts;
pub mod compliance;
pub mod compliance_credit;
pub mod consent;
pub mod customer;
pub mod datadriven;
pub mod journey;
pub mod listing;
pub mod linking;
pub mod paths_cache;
pub mod series;
pub mod sweep;
mod path_id;
mod paths_entry;
mod paths_journal;
mod paths_view;
pub mod variants;
pub mod view_parts;
mod paths;

use crate::state::{key, TenantMeta};
use touchline_storage::{codec, StorageError, Store};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{param}: {message}")]
    BadRequest { param: &'static str, message: String },
}

/// The tenant's retention horizon under `policy` (from its stored maximum event time).
pub fn horizon(store: &Store, partition: u16, tenant: &str, policy: &crate::domain::retention::RetentionPolicy) -> Result<Option<crate::domain::Ts>, QueryError> {
    let max_ts = tenant_meta(store, partition, tenant)?.and_then(|m| m.max_ts);
    Ok(policy.horizon(tenant, max_ts))
}

/// The tenant's metadata, if the tenant has any state in `partition`.
pub fn tenant_meta(store: &Store, partition: u16, tenant: &str) -> Result<Option<TenantMeta>, QueryError> {
    let k = key::tenant_meta(partition, tenant);
    match store.get(&k)? {
        Some(b) => Ok(Some(codec::decode(&k, &b)?)),
        None => Ok(None),
    }
}

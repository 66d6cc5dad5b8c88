//! Typed state over the storage keyspaces: the records a partition keeps, the
//! key builders for them, and tenant-scoped accessors used by the actors (write
//! side, through a [`touchline_storage::Txn`]) and by queries (read side).

pub mod cache;
pub mod dedup;
pub mod erasure;
pub mod links;
pub mod privacy;
pub mod problinks;
pub mod records;
pub mod registry;
pub mod retention;
pub mod summary;
pub mod tenant;

pub use records::*;
pub use cache::GenCache;
pub use tenant::{IdCache, NewRecord, TenantState};

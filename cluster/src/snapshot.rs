//! Snapshot transfer, as a restore sees it. Before reading a partition's
//! changelog, a restore asks its peers for a RocksDB snapshot of the partition
//! (see `touchline_storage::Store::export_partition`) that is further along the
//! changelog than the local state; it ingests the best one and then reads only
//! the changelog after it. The transport (HTTP between nodes, with their TLS
//! and admin token) lives in the node; this trait keeps the restore free of it.

use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;

/// A snapshot file received from a peer, ready to be ingested.
#[derive(Debug)]
pub struct Fetched {
    /// On the store's file system (ingestion moves it into the DB).
    pub path: PathBuf,
    pub from_node: String,
    pub bytes: u64,
}

/// Where snapshots come from.
pub trait SnapshotSource: Send + Sync {
    /// The snapshot of `partition` of the alive peer furthest along the
    /// changelog, if one has reached at least `min_changelog_next`.
    fn fetch(&self, partition: i32, min_changelog_next: i64) -> BoxFuture<'_, Result<Option<Fetched>, String>>;
}

/// Snapshot transfer settings of the intake.
#[derive(Clone)]
pub struct Snapshots {
    pub source: Arc<dyn SnapshotSource>,
    /// A snapshot is fetched only when it saves at least this many changelog
    /// records (below that, reading them is cheaper than a transfer).
    pub min_records: i64,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots").field("min_records", &self.min_records).finish_non_exhaustive()
    }
}

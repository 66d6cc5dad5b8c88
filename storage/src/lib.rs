//! touchline storage: one RocksDB per node, partition-scoped keyspaces, a
//! read-your-writes transaction overlay, and per-partition checkpoints.
//!
//! Every key starts with the Kafka partition (`u16` big-endian), so a partition's
//! whole state is one contiguous key range: it can be exported, restored and
//! dropped as a range when the partition moves to another node. The applied offset
//! of a partition is written in the same `WriteBatch` as the state it covers
//! ([`Txn::commit`]), which is what makes restarts exact.

pub mod codec;
pub mod keys;
mod snapshot;
mod store;
mod txn;

pub use snapshot::SnapshotInfo;
pub use store::{Checkpoint, CommitObserver, Cursor, Store, StoreOptions, Walk};
pub use txn::{Entries, Prepared, Txn};

/// Errors at the storage edge.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt record under key {key:?}: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("encode: {0}")]
    Encode(String),
    /// A read failed on purpose ([`Store::inject_read_faults`], tests only).
    #[error("injected read fault")]
    InjectedRead,
}

pub type Result<T> = std::result::Result<T, StorageError>;

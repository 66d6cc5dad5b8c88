//! The supervised actor tree of one node:
//!
//! ```text
//! PartitionActor (one per assigned Kafka partition; decodes, dead-letters, commits)
//!  └─ TenantActor (one per tenant seen in the partition; dedup, identity, routing)
//!      ├─ CustomerActor (one per active person; timeline writes; passivates)
//!      └─ JourneyActor (one per active journey; windowed performance counters)
//! ```
//!
//! All actors of a partition write into one shared [`touchline_storage::Txn`] per
//! record batch; the partition actor commits it together with the applied offset.
//! A failure anywhere below a partition drops the batch's transaction, restarts
//! that partition's subtree and replays the batch one record at a time, so the
//! failing record is found, retried, and after [`POISON_ATTEMPTS`] tries
//! dead-lettered as `poison` while the partition keeps flowing. ractor has no
//! restart strategy of its own (its default stops a supervisor whenever a child
//! exits), so every supervisor here overrides `handle_supervisor_evt`.

pub mod customer;
pub mod journey;
pub mod partition;
pub mod stall;
pub mod supervisor;
pub mod tenant;

use std::sync::{Arc, Mutex, MutexGuard};
use touchline_storage::Txn;

/// A failing record is retried this many times before it is dead-lettered.
pub const POISON_ATTEMPTS: u32 = 3;

/// Engine settings shared by the actors of a node (validated by the node config).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Merge guard (attribution.md): a person never grows past this many identifiers.
    pub max_ids_per_person: usize,
    /// Allowed lateness for 5-second windows, seconds.
    pub allowed_lateness_secs: i64,
    /// Customer actors kept alive per tenant actor before the least recently used passivate.
    pub customer_actor_cap: usize,
    /// Customer actors idle for this many batches passivate.
    pub customer_idle_batches: u64,
    /// Entries of each per-actor state cache kept across batches: identity
    /// nodes and persons per tenant actor; an eighth of it for the window
    /// counters of each journey actor.
    pub state_cache_entries: usize,
    /// Testing hook: a customer actor panics on events of this customer_id.
    pub fault_panic_customer: Option<String>,
    /// Event-time retention per tenant: older touchpoints and conversions stay out of per-person state.
    pub retention: crate::domain::retention::RetentionPolicy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_ids_per_person: 64,
            allowed_lateness_secs: 3600,
            customer_actor_cap: 4096,
            customer_idle_batches: 8,
            state_cache_entries: 8192,
            fault_panic_customer: None,
            retention: crate::domain::retention::RetentionPolicy::new(90),
        }
    }
}

/// The transaction of the batch in flight, shared by a partition's actors.
#[derive(Clone)]
pub struct SharedTxn(Arc<Mutex<Txn>>);

impl SharedTxn {
    pub fn new(txn: Txn) -> SharedTxn {
        SharedTxn(Arc::new(Mutex::new(txn)))
    }
    /// Never held across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Txn> {
        // A panicking holder leaves the txn poisoned; the batch is dropped anyway.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Takes the transaction back once every actor is done with the batch
    /// (children drop their handle before marking their `Done` token).
    pub fn into_inner(self) -> Option<Txn> {
        Arc::try_unwrap(self.0).ok().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A completion token carried by every unit of work a tenant hands to a child.
/// Marked done after the work is in the transaction and the child has dropped
/// its transaction handle; dropped undone — an error,
/// a panic, or a mailbox discarded with its dead actor — it reports a failure.
/// The tenant's batch barrier is "every token gone", one wake-up instead of a
/// round trip per child.
pub struct Done {
    tx: tokio::sync::mpsc::Sender<()>,
    ok: bool,
}

impl Done {
    pub fn new(tx: &tokio::sync::mpsc::Sender<()>) -> Done {
        Done { tx: tx.clone(), ok: false }
    }
    pub fn ok(mut self) {
        self.ok = true;
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if !self.ok {
            let _ = self.tx.try_send(());
        }
    }
}

/// Why applying a batch failed (the batch is dropped and replayed).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("storage: {0}")]
    Storage(#[from] touchline_storage::StorageError),
    #[error("actor {0} failed")]
    ActorFailed(String),
}

pub(crate) fn boxed(e: impl std::fmt::Display) -> ractor::ActorProcessingErr {
    e.to_string().into()
}

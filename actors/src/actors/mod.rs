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
mod plan;
pub mod stall;
pub mod supervisor;
pub mod tenant;
pub mod tracking;

use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Customer actors kept alive by the node, split evenly among its tenant
    /// actors; beyond its share a tenant actor passivates the least recently used.
    pub customer_actor_cap: usize,
    /// Customer actors idle for this many batches passivate.
    pub customer_idle_batches: u64,
    /// Journey actors kept alive by the node, split like `customer_actor_cap`
    /// (journey ids come from event data: without a bound, memory grows with them).
    pub journey_actor_cap: usize,
    /// Entries of the node's state caches kept across batches, split evenly
    /// among its tenant actors (identity nodes and persons, each map); a
    /// journey actor keeps an eighth of its tenant's share of window counters.
    pub state_cache_entries: usize,
    /// Testing hook: a customer actor panics on events of this customer_id.
    pub fault_panic_customer: Option<String>,
    /// Event-time retention per tenant: older touchpoints and conversions stay
    /// out of per-person state; also the dedup and 5-second window horizons.
    pub retention: crate::domain::retention::RetentionPolicy,
    /// Each partition actor runs one retention sweep step this often, between
    /// its batches (`Duration::ZERO`: never).
    pub retention_sweep_interval: std::time::Duration,
    /// Keys one sweep step visits at most.
    pub retention_sweep_batch: usize,
    /// Tenants with `probabilistic = true` and their settings: their tenant
    /// actors keep the stored probabilistic links (`state::problinks`).
    pub linking: crate::domain::probabilistic::LinkingPolicy,
    /// Live tenant actors of the node (runtime state shared by every clone of
    /// this config): the node-wide bounds above are split among them.
    pub tenant_actors: Arc<TenantActors>,
    /// Live customer and journey actors of the node, with their high-water marks.
    pub live_customers: Arc<LiveCount>,
    pub live_journeys: Arc<LiveCount>,
}

/// A count of live actors of one kind and the most there ever were at once.
#[derive(Debug, Default)]
pub struct LiveCount {
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl LiveCount {
    pub fn started(&self) {
        let n = self.live.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(n, Ordering::AcqRel);
    }

    pub fn stopped(&self) {
        let _ = self.live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }
}

/// The number of live tenant actors of a node, for splitting node-wide bounds.
#[derive(Debug, Default)]
pub struct TenantActors(AtomicUsize);

impl TenantActors {
    pub fn started(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    pub fn stopped(&self) {
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)));
    }

    /// One tenant actor's share of a node-wide bound of `total`.
    pub fn share(&self, total: usize) -> usize {
        share(total, self.0.load(Ordering::Acquire))
    }
}

/// `total` split evenly among `actors` (at least 1 each, unless `total` is 0).
pub fn share(total: usize, actors: usize) -> usize {
    if total == 0 {
        0
    } else {
        (total / actors.max(1)).max(1)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_ids_per_person: 64,
            allowed_lateness_secs: 3600,
            customer_actor_cap: 4096,
            customer_idle_batches: 8,
            journey_actor_cap: 1024,
            state_cache_entries: 65_536,
            fault_panic_customer: None,
            retention: crate::domain::retention::RetentionPolicy {
                dedup_days: crate::domain::retention::DEFAULT_DEDUP_HORIZON_DAYS,
                window_5s_hours: crate::domain::retention::DEFAULT_WINDOW_5S_RETENTION_HOURS,
                ..crate::domain::retention::RetentionPolicy::new(90)
            },
            retention_sweep_interval: std::time::Duration::from_secs(10),
            retention_sweep_batch: 10_000,
            linking: Default::default(),
            tenant_actors: Arc::default(),
            live_customers: Arc::default(),
            live_journeys: Arc::default(),
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
    tx: tokio::sync::mpsc::UnboundedSender<Fault>,
    ok: bool,
}

/// Why a unit of work was not done: storage (not the records' fault: the
/// partition stalls and retries) or anything else (counts toward poison).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Storage(String),
    Failed,
}

impl Done {
    /// One token per unit of work: the channel holds at most one fault per
    /// token, so it is bounded by the batch's work.
    pub fn new(tx: &tokio::sync::mpsc::UnboundedSender<Fault>) -> Done {
        Done { tx: tx.clone(), ok: false }
    }
    pub fn ok(mut self) {
        self.ok = true;
    }
    /// The work failed on a storage error (read or write).
    pub fn storage(mut self, e: impl std::fmt::Display) {
        self.ok = true;
        let _ = self.tx.send(Fault::Storage(e.to_string()));
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if !self.ok {
            let _ = self.tx.send(Fault::Failed);
        }
    }
}

/// Why applying a batch failed (the batch is dropped and replayed).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("storage: {0}")]
    Storage(#[from] touchline_storage::StorageError),
    /// A storage error a child actor met, or a wait that timed out (a slow
    /// disk): not the records' fault.
    #[error("storage: {0}")]
    Stalled(String),
    #[error("actor {0} failed")]
    ActorFailed(String),
}

/// How a batch failed, as the partition actor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// Storage (read or write) or a timeout: the partition stalls and retries
    /// the same batch; never counts toward poison.
    Io(String),
    /// An actor below failed (a panic, a crash): replay, counting toward poison.
    Actor(String),
}

impl From<ApplyError> for BatchError {
    fn from(e: ApplyError) -> BatchError {
        match e {
            ApplyError::Storage(_) | ApplyError::Stalled(_) => BatchError::Io(e.to_string()),
            ApplyError::ActorFailed(_) => BatchError::Actor(e.to_string()),
        }
    }
}

pub(crate) fn boxed(e: impl std::fmt::Display) -> ractor::ActorProcessingErr {
    e.to_string().into()
}

#[cfg(test)]
mod tests {
    use super::{share, TenantActors};

    #[test]
    fn node_wide_bounds_split_evenly_among_tenant_actors() {
        assert_eq!(share(4096, 0), 4096);
        assert_eq!(share(4096, 20), 204);
        assert_eq!(share(10, 20), 1, "every tenant actor keeps at least one");
        assert_eq!(share(0, 20), 0, "0 stays 0 (a disabled cache)");
        let t = TenantActors::default();
        t.started();
        t.started();
        assert_eq!(t.share(100), 50);
        t.stopped();
        t.stopped();
        t.stopped();
        assert_eq!(t.share(100), 100, "never below zero actors");
    }
}

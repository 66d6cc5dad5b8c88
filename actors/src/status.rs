//! Live, lock-light status of the partitions a node owns, shared by the partition
//! actors (writers), the Kafka intake (high watermarks) and the HTTP layer (readers).

use crate::domain::Ts;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PartitionState {
    Restoring = 0,
    Active = 1,
    Standby = 2,
}

impl PartitionState {
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionState::Restoring => "restoring",
            PartitionState::Active => "active",
            PartitionState::Standby => "standby",
        }
    }
}

#[derive(Debug)]
pub struct PartitionStatus {
    pub partition: i32,
    /// Next offset to apply (durable).
    pub next_offset: AtomicI64,
    /// Log end offset as last seen by the consumer (-1 unknown).
    pub high_watermark: AtomicI64,
    state: AtomicU8,
    watermark: Mutex<Option<Ts>>,
    /// The last storage error while the partition retries a failed write (stalled).
    storage_error: Mutex<Option<String>>,
}

impl PartitionStatus {
    pub fn new(partition: i32) -> PartitionStatus {
        PartitionStatus {
            partition,
            next_offset: AtomicI64::new(0),
            high_watermark: AtomicI64::new(-1),
            state: AtomicU8::new(PartitionState::Restoring as u8),
            watermark: Mutex::new(None),
            storage_error: Mutex::new(None),
        }
    }
    pub fn state(&self) -> PartitionState {
        match self.state.load(Ordering::Relaxed) {
            1 => PartitionState::Active,
            2 => PartitionState::Standby,
            _ => PartitionState::Restoring,
        }
    }
    pub fn set_state(&self, s: PartitionState) {
        self.state.store(s as u8, Ordering::Relaxed);
        crate::metrics::partition_state(self.partition, Some(s.as_str()));
    }
    pub fn watermark(&self) -> Option<Ts> {
        *self.watermark.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn set_watermark(&self, w: Option<Ts>) {
        *self.watermark.lock().unwrap_or_else(|e| e.into_inner()) = w;
    }
    /// `Some(error)` while the partition is stalled on a failing storage write.
    pub fn storage_error(&self) -> Option<String> {
        self.storage_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn set_storage_error(&self, e: Option<String>) {
        *self.storage_error.lock().unwrap_or_else(|e| e.into_inner()) = e;
    }
    pub fn lag(&self) -> i64 {
        let hw = self.high_watermark.load(Ordering::Relaxed);
        if hw < 0 {
            return 0;
        }
        (hw - self.next_offset.load(Ordering::Relaxed)).max(0)
    }
}

/// All partitions this node owns.
#[derive(Debug, Default)]
pub struct NodeStatus {
    partitions: RwLock<BTreeMap<i32, Arc<PartitionStatus>>>,
    /// Partition count of the topic (0 until known).
    pub topic_partitions: AtomicI64,
    /// The consumer group has given this node an assignment (possibly empty).
    pub joined: std::sync::atomic::AtomicBool,
}

impl NodeStatus {
    pub fn get_or_insert(&self, partition: i32) -> Arc<PartitionStatus> {
        let mut m = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        m.entry(partition)
            .or_insert_with(|| {
                crate::metrics::partition_state(partition, Some(PartitionState::Restoring.as_str()));
                Arc::new(PartitionStatus::new(partition))
            })
            .clone()
    }
    pub fn get(&self, partition: i32) -> Option<Arc<PartitionStatus>> {
        self.partitions.read().unwrap_or_else(|e| e.into_inner()).get(&partition).cloned()
    }
    pub fn remove(&self, partition: i32) {
        self.partitions.write().unwrap_or_else(|e| e.into_inner()).remove(&partition);
        crate::metrics::partition_state(partition, None);
    }
    pub fn all(&self) -> Vec<Arc<PartitionStatus>> {
        self.partitions.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }
    /// Ready: joined the group and every owned partition is active and not stalled on storage.
    pub fn ready(&self) -> bool {
        self.joined.load(Ordering::Relaxed) && self.all().iter().all(|p| p.state() == PartitionState::Active && p.storage_error().is_none())
    }
    /// `(partition, error)` of every partition stalled on a failing storage write.
    pub fn storage_stalled(&self) -> Vec<(i32, String)> {
        self.all().iter().filter_map(|p| Some((p.partition, p.storage_error()?))).collect()
    }
}

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
    /// When the consumer's statistics last reported the high watermark (epoch
    /// ms; 0 never). Statistics arrive through the intake's poll, so they go
    /// stale while the intake is not polling (its buffers full).
    hw_reported_ms: AtomicI64,
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
            hw_reported_ms: AtomicI64::new(0),
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
    /// The high watermark from the consumer's statistics (the fetch responses).
    pub fn report_high_watermark(&self, hw: i64, now_ms: i64) {
        self.high_watermark.store(hw, Ordering::Relaxed);
        self.hw_reported_ms.store(now_ms, Ordering::Relaxed);
    }

    /// A high watermark asked of the broker directly (ListOffsets), taken only
    /// when the statistics' one is older than `stale_after_ms` (see
    /// [`listed_watermark_applies`]); returns whether it was taken.
    pub fn offer_listed_high_watermark(&self, listed: i64, now_ms: i64, stale_after_ms: i64) -> bool {
        let current = self.high_watermark.load(Ordering::Relaxed);
        let reported = self.hw_reported_ms.load(Ordering::Relaxed);
        let take = listed_watermark_applies(current, reported, listed, now_ms, stale_after_ms);
        if take {
            self.high_watermark.store(listed, Ordering::Relaxed);
        }
        take
    }

    /// Whether the statistics' high watermark is older than `stale_after_ms`.
    pub fn high_watermark_stale(&self, now_ms: i64, stale_after_ms: i64) -> bool {
        now_ms - self.hw_reported_ms.load(Ordering::Relaxed) > stale_after_ms
    }

    pub fn lag(&self) -> i64 {
        let hw = self.high_watermark.load(Ordering::Relaxed);
        if hw < 0 {
            return 0;
        }
        (hw - self.next_offset.load(Ordering::Relaxed)).max(0)
    }
}

/// Whether a listed high watermark replaces `current` (reported at
/// `reported_ms`): only once the fetch statistics went stale, and only
/// upwards. Fresh statistics always win, so a broker that answers ListOffsets
/// wrongly (Tansu answers 1) changes nothing while the node fetches; and a
/// node that stopped fetching (its buffers full) has a backlog far past 1.
pub fn listed_watermark_applies(current: i64, reported_ms: i64, listed: i64, now_ms: i64, stale_after_ms: i64) -> bool {
    now_ms - reported_ms > stale_after_ms && listed > current
}

/// All partitions this node owns.
#[derive(Debug, Default)]
pub struct NodeStatus {
    partitions: RwLock<BTreeMap<i32, Arc<PartitionStatus>>>,
    /// Partition count of the topic (0 until known).
    pub topic_partitions: AtomicI64,
    /// The consumer group has given this node an assignment (possibly empty).
    pub joined: std::sync::atomic::AtomicBool,
    /// Partitions this node tails as a warm standby (not owned): partition →
    /// next offset of the events topic their local state covers.
    standby: RwLock<BTreeMap<i32, i64>>,
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
    pub fn set_standby(&self, partition: i32, next_offset: i64) {
        let new = self.standby.write().unwrap_or_else(|e| e.into_inner()).insert(partition, next_offset).is_none();
        if new {
            crate::metrics::partition_state(partition, Some(PartitionState::Standby.as_str()));
        }
    }
    pub fn remove_standby(&self, partition: i32) {
        if self.standby.write().unwrap_or_else(|e| e.into_inner()).remove(&partition).is_some() && self.get(partition).is_none() {
            crate::metrics::partition_state(partition, None);
        }
    }
    /// Standby partitions with the events offset their local state covers.
    pub fn standby(&self) -> BTreeMap<i32, i64> {
        self.standby.read().unwrap_or_else(|e| e.into_inner()).clone()
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

#[cfg(test)]
mod tests {
    use super::{listed_watermark_applies, PartitionStatus};

    #[test]
    fn a_listed_high_watermark_counts_only_once_the_statistics_are_stale_and_only_upwards() {
        // Fresh statistics win, even over a higher listed value.
        assert!(!listed_watermark_applies(100, 10_000, 500, 12_000, 5_000));
        // Stale: a higher listed value is taken, a lower one (Tansu's 1) is not.
        assert!(listed_watermark_applies(100, 10_000, 500, 16_000, 5_000));
        assert!(!listed_watermark_applies(100, 10_000, 1, 16_000, 5_000));
        // Never reported: stale from the start.
        assert!(listed_watermark_applies(-1, 0, 7, 16_000, 5_000));

        let p = PartitionStatus::new(3);
        p.next_offset.store(40, std::sync::atomic::Ordering::Relaxed);
        p.report_high_watermark(100, 10_000);
        assert_eq!(p.lag(), 60);
        assert!(!p.high_watermark_stale(12_000, 5_000));
        assert!(!p.offer_listed_high_watermark(900, 12_000, 5_000), "fresh statistics win");
        assert!(p.high_watermark_stale(16_000, 5_000));
        assert!(p.offer_listed_high_watermark(900, 16_000, 5_000));
        assert_eq!(p.lag(), 860, "the backlog the starved intake did not fetch");
        assert!(!p.offer_listed_high_watermark(1, 17_000, 5_000), "never downwards");
        p.report_high_watermark(950, 18_000);
        assert_eq!(p.lag(), 910);
        assert!(!p.high_watermark_stale(19_000, 5_000), "a new report is fresh again");
    }
}

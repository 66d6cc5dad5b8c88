//! The `[cluster]` section of the node config: membership (heartbeats on the
//! members topic), request forwarding, the changelog, standbys, snapshot
//! transfer and the placement keys (`config_placement.rs`), validated with
//! messages naming the key.

use crate::config::{invalid, ConfigError, NodeConfig};
use serde::{Deserialize, Serialize};

/// Membership (heartbeats on the members topic) and request forwarding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// Compacted, 1-partition topic of member heartbeats (created when absent).
    pub members_topic: String,
    pub heartbeat_interval_ms: u64,
    /// A member silent for this long is dead (its partitions have no owner).
    pub member_timeout_ms: u64,
    /// Bound on one forwarded request to the owning node.
    pub forward_timeout_ms: u64,
    /// Compacted topic of per-partition state changes (created when absent with
    /// the events topic's partition count): written before every local commit,
    /// read to restore a partition on assignment and by standbys.
    pub changelog_topic: String,
    /// Nodes that tail each partition's changelog without owning it (warm standbys).
    pub standby_replicas: usize,
    /// A restore first fetches a peer's RocksDB snapshot of the partition (SST
    /// files over the internal HTTP routes), then reads only the changelog after it.
    pub snapshot_transfer: bool,
    /// ... when that saves at least this many changelog records.
    pub snapshot_min_records: u64,
    /// Who places partitions on nodes: `load` (by measured load, applied with
    /// `assign()`) or `group` (the consumer group, by count).
    pub placement: crate::config_placement::Placement,
    /// `load`: partitions move for balance only while the busiest node
    /// carries more than this multiple of the mean load ...
    pub placement_threshold: f64,
    /// ... at most this many per recomputation ...
    pub placement_max_moves: usize,
    /// ... once the imbalance has lasted this long.
    pub placement_persist_ms: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            members_topic: "touchline.members".into(),
            heartbeat_interval_ms: 1000,
            member_timeout_ms: 5000,
            forward_timeout_ms: 5000,
            changelog_topic: "touchline.changelog".into(),
            standby_replicas: 1,
            snapshot_transfer: true,
            snapshot_min_records: 20_000,
            placement: Default::default(),
            placement_threshold: 1.15,
            placement_max_moves: 2,
            placement_persist_ms: 30_000,
        }
    }
}

impl NodeConfig {
    pub(crate) fn validate_cluster(&self) -> Result<(), ConfigError> {
        let c = &self.cluster;
        if c.members_topic.is_empty() || c.members_topic == self.topic || c.members_topic == self.dlq_topic {
            return Err(invalid("cluster.members_topic", "must be non-empty and differ from `topic` and `dlq_topic`"));
        }
        if c.changelog_topic.is_empty() || [&self.topic, &self.dlq_topic, &c.members_topic].contains(&&c.changelog_topic) {
            return Err(invalid("cluster.changelog_topic", "must be non-empty and differ from `topic`, `dlq_topic` and `cluster.members_topic`"));
        }
        if c.standby_replicas > 8 {
            return Err(invalid("cluster.standby_replicas", "must be in 0..=8"));
        }
        if c.snapshot_min_records > i64::MAX as u64 / 2 {
            return Err(invalid("cluster.snapshot_min_records", "must be below 2^62"));
        }
        if !(100..=60_000).contains(&c.heartbeat_interval_ms) {
            return Err(invalid("cluster.heartbeat_interval_ms", "must be in 100..=60000"));
        }
        if c.member_timeout_ms < 2 * c.heartbeat_interval_ms {
            return Err(invalid("cluster.member_timeout_ms", "must be at least twice `cluster.heartbeat_interval_ms`"));
        }
        if c.forward_timeout_ms == 0 || c.forward_timeout_ms >= self.limits.request_timeout_ms {
            return Err(invalid("cluster.forward_timeout_ms", "must be at least 1 and below `limits.request_timeout_ms`"));
        }
        c.validate_placement()
    }
}

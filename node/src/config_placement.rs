//! `cluster.placement` and its tuning keys: who decides which node owns each
//! partition — the consumer group (`group`, by count) or the cluster's own
//! placement by measured load (`load`, `touchline_cluster::placer`) —
//! validated with messages naming the key.

use crate::config::{ClusterSection, ConfigError};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use touchline_cluster::placement::Params;

/// `cluster.placement`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// The consumer group assigns partitions (cooperative-sticky, by count).
    #[default]
    Group,
    /// Partitions placed by measured load, applied with `assign()`.
    Load,
}

impl ClusterSection {
    /// The placement parameters for the intake (`None`: the group assigns).
    pub fn placement_params(&self) -> Option<Params> {
        (self.placement == Placement::Load).then(|| Params {
            threshold: self.placement_threshold,
            max_moves: self.placement_max_moves,
            persist_ms: self.placement_persist_ms as i64,
        })
    }

    /// How long after its start a node may lead the placement: a member
    /// timeout (every alive member's heartbeat has been read by then).
    pub fn placement_grace(&self) -> Duration {
        Duration::from_millis(self.member_timeout_ms)
    }

    pub(crate) fn validate_placement(&self) -> Result<(), ConfigError> {
        if !(self.placement_threshold.is_finite() && (1.0..=10.0).contains(&self.placement_threshold)) {
            return Err(ConfigError::Invalid { key: "cluster.placement_threshold", message: "must be a number in 1.0..=10.0".into() });
        }
        if self.placement_max_moves > 10_000 {
            return Err(ConfigError::Invalid { key: "cluster.placement_max_moves", message: "must be in 0..=10000".into() });
        }
        if self.placement_persist_ms > 86_400_000 {
            return Err(ConfigError::Invalid { key: "cluster.placement_persist_ms", message: "must be in 0..=86400000 (one day)".into() });
        }
        Ok(())
    }
}

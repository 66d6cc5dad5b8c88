//! touchline cluster: everything that talks to Kafka — topic admin, the consumer
//! intake with its rebalance-driven partition lifecycle, the dead-letter
//! producer, and membership (heartbeats on the members topic → who owns what).
//!
//! The intake never blocks librdkafka's poll: rebalance callbacks only set start
//! offsets (a local RocksDB read) and post lifecycle events; partition actors are
//! started, drained and stopped by the intake task itself.

pub mod admin;
pub mod apply_runtime;
pub mod batches;
pub mod changelog;
pub mod consumer;
pub mod dlq;
pub mod heartbeat;
pub mod intake;
pub mod lag_watch;
pub mod load;
pub mod producer;
pub mod membership;
pub mod placement;
pub mod placer;
pub mod plan;
mod rebalance;
pub mod reroute;
pub mod restore;
pub mod results;
pub mod snapshot;
pub mod standby;

pub use heartbeat::{Members, Membership, MembershipConfig};
pub use intake::{run_intake, IntakeConfig};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic}: {detail}")]
    Topic { topic: String, detail: String },
    #[error("actor: {0}")]
    Actor(String),
    #[error("storage: {0}")]
    Storage(#[from] touchline_storage::StorageError),
    /// The group consumer failed for good (librdkafka's fatal error): e.g.
    /// fenced because another process joined with the same node id (static
    /// membership). The node steps down.
    #[error("the Kafka consumer failed fatally ({code}): {reason}; this node stops (another process with the same node id took over?)")]
    Fatal { code: String, reason: String },
}

/// Base librdkafka settings plus the user's pass-through properties (which win).
pub fn client_config(brokers: &str, props: &[(String, String)]) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

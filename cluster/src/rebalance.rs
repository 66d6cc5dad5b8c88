//! The consumer context: rebalance callbacks (run inside librdkafka's poll, so
//! they never block) and statistics (cached fetch high watermarks, for lag).
//!
//! On assign, each partition starts at its durable RocksDB checkpoint — the
//! source of truth — rather than at the group's committed offset; with a
//! changelog it is also paused until restored (see `restore.rs`).

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::ClientContext;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use touchline_actors::status::NodeStatus;
use touchline_storage::Store;

#[derive(Debug)]
pub enum Lifecycle {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

pub struct IntakeContext {
    pub store: Store,
    pub topic: String,
    pub status: Arc<NodeStatus>,
    /// Unbounded on purpose: at most one event per rebalance, and the poll thread
    /// must never block on it.
    pub lifecycle: UnboundedSender<Lifecycle>,
    /// Pause newly assigned partitions until the intake restored them.
    pub pause_on_assign: bool,
}

/// Where a newly owned partition starts: its durable RocksDB checkpoint.
pub(crate) fn start_offset(store: &Store, p: i32) -> Offset {
    match store.checkpoint(p as u16) {
        Ok(Some(cp)) if cp.next_offset > 0 => Offset::Offset(cp.next_offset),
        Ok(_) => Offset::Beginning,
        Err(e) => {
            tracing::error!(partition = p, error = %e, "cannot read checkpoint; starting from the beginning (dedup keeps it exact)");
            Offset::Beginning
        }
    }
}

impl ClientContext for IntakeContext {
    /// librdkafka's own log lines go to tracing (target `librdkafka`), not the `log` crate.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn stats(&self, stats: Statistics) {
        if let Some(t) = stats.topics.get(&self.topic) {
            for (p, ps) in &t.partitions {
                if let Some(st) = self.status.get(*p) {
                    if ps.hi_offset >= 0 {
                        st.report_high_watermark(ps.hi_offset, crate::membership::now_ms());
                        // Between commits the lag grows with the high watermark;
                        // a gauge set only at commits would under-report it.
                        touchline_actors::metrics::partition_lag(*p, st.lag());
                    }
                }
            }
        }
    }
}

impl ConsumerContext for IntakeContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let parts: Vec<i32> = tpl.elements().iter().filter(|e| e.topic() == self.topic).map(|e| e.partition()).collect();
        touchline_actors::metrics::rebalanced();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for p in &parts {
                    let _ = tpl.set_partition_offset(&self.topic, *p, start_offset(&self.store, *p));
                }
                // Announce before assigning, so the intake knows the partition
                // before any of its records can be returned by poll.
                let _ = self.lifecycle.send(Lifecycle::Assigned(parts));
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                if let Err(e) = r {
                    tracing::error!(error = %e, "assign failed");
                } else if self.pause_on_assign {
                    // Nothing is fetched before the partition is restored; the
                    // intake seeks it to the restored checkpoint and resumes it.
                    if let Err(e) = consumer.pause(tpl) {
                        tracing::error!(error = %e, "pause on assign failed");
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let _ = self.lifecycle.send(Lifecycle::Revoked(parts));
                let r = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                if let Err(e) = r {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                let _ = consumer.unassign();
            }
        }
    }
}

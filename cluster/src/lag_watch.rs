//! Lag watch: keeps each owned partition's high watermark current while the
//! intake is not polling.
//!
//! The lag (`touchline_partition_lag`, `/v1/cluster`) is the high watermark
//! minus the applied offset, and the high watermark comes from librdkafka's
//! statistics of its fetch responses, delivered through the intake's poll. A
//! node starved of CPU stops polling while its bounded buffers are full, and
//! librdkafka stops fetching a partition whose prefetch queue is full. Its
//! reported lag then trails the real backlog. So every few seconds this task
//! asks the broker (ListOffsets) for the high watermark of each owned
//! partition whose statistics went stale, and takes it when it is higher
//! (`listed_watermark_applies`). While the intake fetches, fresh statistics
//! always win.
//!
//! Broker compatibility: the lag from fetch statistics is what any broker
//! needs (no request per partition while the intake polls). Taking the listed
//! high watermark only when it is higher, and only for stale partitions, is
//! compatibility for brokers like Tansu, whose ListOffsets(latest) answers 1;
//! on Apache Kafka ListOffsets is right and the rule changes nothing.

use crate::membership::now_ms;
use crate::{client_config, ClusterError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use touchline_actors::status::NodeStatus;

/// How often stale partitions are asked for, and when statistics count as stale
/// (they arrive every second while the intake polls).
const PERIOD: Duration = Duration::from_secs(5);
const STALE_AFTER_MS: i64 = 5_000;
const LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs until `shutdown`. A failed ListOffsets is logged once per episode and
/// retried next period: the statistics still report the lag whenever the intake polls.
pub async fn run(brokers: String, props: Vec<(String, String)>, topic: String, status: Arc<NodeStatus>, mut shutdown: watch::Receiver<bool>) -> Result<(), ClusterError> {
    let client: Arc<BaseConsumer> = Arc::new(client_config(&brokers, &props).create()?);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        let now = now_ms();
        let stale: Vec<i32> = status.all().iter().filter(|p| p.high_watermark_stale(now, STALE_AFTER_MS)).map(|p| p.partition).collect();
        if stale.is_empty() {
            continue;
        }
        let (c, t) = (client.clone(), topic.clone());
        let listed = tokio::task::spawn_blocking(move || stale.into_iter().map(|p| (p, c.fetch_watermarks(&t, p, LIST_TIMEOUT))).collect::<Vec<_>>())
            .await
            .map_err(|e| ClusterError::Actor(e.to_string()))?;
        let mut errors = 0;
        for (p, r) in listed {
            match r {
                Ok((_, high)) => {
                    if let Some(st) = status.get(p) {
                        if st.offer_listed_high_watermark(high, now_ms(), STALE_AFTER_MS) {
                            touchline_actors::metrics::partition_lag(p, st.lag());
                        }
                    }
                }
                Err(e) => {
                    errors += 1;
                    if !failing {
                        tracing::warn!(partition = p, error = %e, "lag watch: cannot list the high watermark (retried every 5 s; logged once until it works)");
                    }
                }
            }
        }
        failing = errors > 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use std::sync::atomic::Ordering;

    /// Against librdkafka's mock broker (its ListOffsets is right): a partition
    /// whose statistics never arrived gets the listed high watermark, so its lag
    /// shows the backlog; a partition with fresh statistics keeps them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_partitions_take_the_listed_high_watermark() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("ev", 2, 1).expect("topic");
        let brokers = cluster.bootstrap_servers();
        let producer: ThreadedProducer<DefaultProducerContext> = client_config(&brokers, &[]).create().expect("producer");
        for i in 0..7 {
            for p in [0, 1] {
                producer.send(BaseRecord::<[u8], [u8]>::to("ev").partition(p).payload(&[i][..])).expect("queue");
            }
        }
        producer.flush(Duration::from_secs(10)).expect("flush");

        let status = Arc::new(NodeStatus::default());
        let stale = status.get_or_insert(0);
        stale.next_offset.store(2, Ordering::Relaxed);
        let fresh = status.get_or_insert(1);
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(brokers, Vec::new(), "ev".into(), status.clone(), rx));
        // Keep partition 1's statistics fresh (as a polling intake would), at 3.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while stale.lag() != 5 && std::time::Instant::now() < deadline {
            fresh.report_high_watermark(3, now_ms());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(stale.lag(), 5, "7 records listed, 2 applied");
        assert_eq!(fresh.high_watermark.load(Ordering::Relaxed), 3, "fresh statistics win over the listed 7");
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops on shutdown").unwrap().unwrap();
    }
}

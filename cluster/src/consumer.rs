//! The librdkafka side of the intake: its consumer-group member (settings and
//! why) and the node's prefetch budget, which the changelog readers share.

use crate::rebalance::IntakeContext;
use crate::{client_config, intake::IntakeConfig, ClusterError};
use rdkafka::consumer::StreamConsumer;

/// `fetch.queue.backoff.ms` of every consumer with a bounded prefetch queue.
pub const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// `queued.max.messages.kbytes` for one partition: the node's prefetch budget
/// split evenly over the topic's partitions (at least 1 KiB).
pub fn prefetch_per_partition(budget_kb: usize, partitions: i32) -> usize {
    (budget_kb / partitions.max(1) as usize).max(1)
}

/// The node's consumer-group member of the events topic (`prefetch`: KiB per
/// partition); user `kafka_props` override every setting.
pub(crate) fn group_consumer(cfg: &IntakeConfig, prefetch: &str, ctx: IntakeContext) -> Result<StreamConsumer<IntakeContext>, ClusterError> {
    let mut c = client_config(&cfg.brokers, &[]);
    c.set("group.id", &cfg.group)
        .set("group.instance.id", &cfg.node_id)
        .set("client.id", format!("touchline-{}", cfg.node_id))
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
        // A member learns of a rebalance at its next heartbeat: at a tenth of
        // the session (librdkafka's default is a fixed 3 s), a joining node
        // waits less for the others to rejoin.
        .set("heartbeat.interval.ms", (cfg.session_timeout_ms / 10).max(100).to_string())
        .set("statistics.interval.ms", "1000")
        .set("fetch.wait.max.ms", "50")
        // librdkafka prefetches up to this per partition (default 64 MiB
        // each): the node's budget split over the partitions, so the total
        // stays `prefetch_kb` however many partitions the topic has.
        .set("queued.max.messages.kbytes", prefetch)
        // A partition whose prefetch queue reached that bound is not fetched
        // again for `fetch.queue.backoff.ms` (default 1 s): with a bounded
        // budget the intake starved for most of each second (measured 2.8×
        // slower apply, BENCHMARKS.md). Fetch again soon after it drains.
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS);
    if cfg.placement.is_some() {
        // Placement by load: the consumer is assigned partitions and joins no
        // group (its offset commits go to the group as a simple consumer's).
        c.remove("group.instance.id");
    }
    for (k, v) in &cfg.kafka_props {
        c.set(k, v);
    }
    // `group.instance.id=` (empty) turns static membership off: compatibility
    // for brokers like Tansu, whose coordinator breaks static membership (with
    // `partition.assignment.strategy=roundrobin`, README, Group assignment).
    if c.get("group.instance.id").is_some_and(str::is_empty) {
        c.remove("group.instance.id");
    }
    Ok(c.create_with_context(ctx)?)
}

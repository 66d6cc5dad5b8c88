//! The intake: one consumer-group member per node. It owns the Kafka consumer,
//! turns assignment changes into partition-actor starts and drains, batches
//! records per partition, and hands each batch to its partition actor under a
//! credit (at most `in_flight_batches` per partition), so memory is bounded and a
//! slow partition backpressures the consumer instead of queueing without limit.
//! A partition stalled on a failing storage write is paused in the consumer once
//! its buffer is full, so the other partitions keep flowing, and resumed (from
//! the first record it has not buffered) when its writes succeed again.

use crate::dlq::KafkaDlq;
use crate::rebalance::{IntakeContext, Lifecycle};
use crate::{admin, client_config, ClusterError};
use futures::FutureExt;
use ractor::{Actor, ActorRef};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use touchline_actors::actors::partition::{PartitionMsg, Record};
use touchline_actors::actors::supervisor::{Routes, Supervisor, SupervisorArgs, SupervisorMsg};
use touchline_actors::actors::EngineConfig;
use touchline_actors::dlq::Outbox;
use touchline_actors::status::NodeStatus;
use touchline_storage::Store;

#[derive(Clone, Debug)]
pub struct IntakeConfig {
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub group: String,
    pub node_id: String,
    /// Partitions to create the topics with when absent.
    pub partitions: i32,
    pub create_topics: bool,
    /// librdkafka properties passed through (they override ours).
    pub kafka_props: Vec<(String, String)>,
    pub session_timeout_ms: u32,
    /// Records per batch handed to a partition actor at most.
    pub batch_max: usize,
    /// Batches queued per partition at most.
    pub in_flight_batches: usize,
    /// Interval of group offset commits (for external lag tooling; RocksDB is the truth).
    pub commit_interval: Duration,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            brokers: String::new(),
            topic: "marketing-events".into(),
            dlq_topic: "marketing-events.dlq".into(),
            group: "touchline".into(),
            node_id: "node-1".into(),
            partitions: 12,
            create_topics: true,
            kafka_props: Vec::new(),
            session_timeout_ms: 10_000,
            batch_max: 1000,
            in_flight_batches: 2,
            commit_interval: Duration::from_secs(5),
        }
    }
}

struct Intake {
    cfg: IntakeConfig,
    consumer: StreamConsumer<IntakeContext>,
    supervisor: ActorRef<SupervisorMsg>,
    routes: Routes,
    credits: HashMap<i32, Arc<Semaphore>>,
    status: Arc<NodeStatus>,
}

/// Runs the intake until `shutdown` flips to true, then hands off in order:
/// stop intake, drain partition actors, flush RocksDB, commit, leave the group.
pub async fn run_intake(cfg: IntakeConfig, store: Store, engine: Arc<EngineConfig>, status: Arc<NodeStatus>, mut shutdown: watch::Receiver<bool>) -> Result<(), ClusterError> {
    let props = &cfg.kafka_props;
    let partitions = if cfg.create_topics {
        let n = admin::ensure_topic(&cfg.brokers, props, &cfg.topic, cfg.partitions).await?;
        admin::ensure_topic(&cfg.brokers, props, &cfg.dlq_topic, cfg.partitions).await?;
        n
    } else {
        admin::partition_count(&cfg.brokers, props, &cfg.topic)
            .await?
            .ok_or_else(|| ClusterError::Topic { topic: cfg.topic.clone(), detail: "does not exist".into() })?
    };
    status.topic_partitions.store(partitions as i64, Ordering::Relaxed);
    tracing::info!(topic = %cfg.topic, partitions, "events topic ready");

    let producer: FutureProducer = {
        let mut c = client_config(&cfg.brokers, &[]);
        c.set("enable.idempotence", "true").set("linger.ms", "5");
        for (k, v) in props {
            c.set(k, v);
        }
        c.create()?
    };
    let dlq = Outbox::new(Arc::new(KafkaDlq::new(producer.clone(), cfg.dlq_topic.clone())), store.clone(), 10_000);

    let (life_tx, mut life_rx) = mpsc::unbounded_channel();
    let (rewind_tx, mut rewind_rx) = mpsc::unbounded_channel();
    let ctx = IntakeContext { store: store.clone(), topic: cfg.topic.clone(), status: status.clone(), lifecycle: life_tx };
    let consumer: StreamConsumer<IntakeContext> = {
        let mut c = client_config(&cfg.brokers, &[]);
        c.set("group.id", &cfg.group)
            .set("group.instance.id", &cfg.node_id)
            .set("client.id", format!("touchline-{}", cfg.node_id))
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
            .set("statistics.interval.ms", "1000")
            .set("fetch.wait.max.ms", "50")
            // librdkafka prefetches up to this per partition (default 64 MiB each):
            // bounded lower so RSS stays flat with many partitions.
            .set("queued.max.messages.kbytes", "16384");
        for (k, v) in props {
            c.set(k, v);
        }
        c.create_with_context(ctx)?
    };
    consumer.subscribe(&[&cfg.topic])?;

    let routes: Routes = Arc::new(RwLock::new(HashMap::new()));
    let sup_args = SupervisorArgs {
        store: store.clone(),
        dlq,
        config: engine,
        status: status.clone(),
        topic_partitions: partitions,
        routes: routes.clone(),
        rewind: rewind_tx,
    };
    let (supervisor, sup_handle) = Actor::spawn(Some(format!("supervisor-{}", cfg.node_id)), Supervisor, sup_args)
        .await
        .map_err(|e| ClusterError::Actor(e.to_string()))?;
    let mut intake = Intake { cfg, consumer, supervisor, routes, credits: HashMap::new(), status };
    let mut commit_tick = tokio::time::interval(intake.cfg.commit_interval);
    // Retries handing buffered records to partitions whose credit came back.
    let mut flush_tick = tokio::time::interval(Duration::from_millis(2));
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut pending: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    // Next offset expected per partition; reset on (re)assignment and rewind.
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    // Partitions paused in the consumer while stalled on storage (see `pause_stalled`).
    let mut paused: HashSet<i32> = HashSet::new();
    let mut stall_tick = tokio::time::interval(Duration::from_millis(200));
    stall_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    loop {
        while let Ok(ev) = life_rx.try_recv() {
            forget(&ev, &mut next_offset, &mut pending, &mut paused);
            intake.lifecycle(ev).await;
        }
        while let Ok((p, off)) = rewind_rx.try_recv() {
            next_offset.remove(&p);
            pending.remove(&p);
            if paused.remove(&p) {
                intake.resume(p);
            }
            let offset = if off > 0 { Offset::Offset(off) } else { Offset::Beginning };
            if let Err(e) = intake.consumer.seek(&intake.cfg.topic, p, offset, Duration::from_secs(5)) {
                tracing::error!(partition = p, error = %e, "rewind failed");
            }
        }
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
            }
            Some(ev) = life_rx.recv() => {
                forget(&ev, &mut next_offset, &mut pending, &mut paused);
                intake.lifecycle(ev).await;
            }
            m = intake.consumer.recv(), if !full(&pending, &paused, intake.cfg.batch_max) => {
                match m {
                    Ok(m) => push(&mut pending, &mut next_offset, &paused, &m),
                    Err(e) => {
                        tracing::warn!(error = %e, "consume error");
                        continue;
                    }
                }
                let mut n = 1;
                while n < intake.cfg.batch_max {
                    match intake.consumer.recv().now_or_never() {
                        Some(Ok(m)) => push(&mut pending, &mut next_offset, &paused, &m),
                        _ => break,
                    }
                    n += 1;
                }
                // Lifecycle events raised inside that poll come first.
                while let Ok(ev) = life_rx.try_recv() {
                    forget(&ev, &mut next_offset, &mut pending, &mut paused);
                    intake.lifecycle(ev).await;
                }
                intake.dispatch(&mut pending).await;
                intake.pause_stalled(&pending, &mut paused);
            }
            _ = stall_tick.tick(), if !paused.is_empty() => intake.resume_recovered(&next_offset, &mut paused),
            _ = flush_tick.tick(), if !pending.is_empty() => {
                intake.dispatch(&mut pending).await;
                intake.pause_stalled(&pending, &mut paused);
            }
            _ = commit_tick.tick() => intake.commit(CommitMode::Async),
        }
    }

    // Ordered hand-off.
    tracing::info!("shutdown: stopping intake and draining partitions");
    let owned: Vec<i32> = intake.routes.read().unwrap_or_else(|e| e.into_inner()).keys().copied().collect();
    intake.commit(CommitMode::Sync);
    for p in owned {
        let _ = ractor::call!(intake.supervisor, |reply| SupervisorMsg::Stop { partition: p, reply });
    }
    store.flush()?;
    let _ = producer.flush(Duration::from_secs(10));
    intake.consumer.unsubscribe();
    intake.supervisor.stop(None);
    let _ = sup_handle.await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Buffers `m` unless its offset was already buffered (a resumed partition is
/// re-fetched from its consume position, which may repeat records we hold) or
/// its partition is paused (it is re-read from the expected offset on resume).
fn push(pending: &mut BTreeMap<i32, Vec<Record>>, next: &mut HashMap<i32, i64>, paused: &HashSet<i32>, m: &rdkafka::message::BorrowedMessage<'_>) {
    if paused.contains(&m.partition()) {
        return;
    }
    let expected = next.entry(m.partition()).or_insert(i64::MIN);
    if m.offset() < *expected {
        return;
    }
    *expected = m.offset() + 1;
    pending.entry(m.partition()).or_default().push(Record {
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
    });
}

/// Buffered records per partition at most, in batches: a partition whose actor
/// is busy accumulates this much (its next batch grows) before reading stops.
const BUFFER_BATCHES: usize = 4;

/// Stop reading from Kafka while some partition's buffer is full: memory stays
/// bounded, librdkafka's own bounded prefetch queue holds the rest. A paused
/// partition's full buffer does not count: nothing more arrives for it.
fn full(pending: &BTreeMap<i32, Vec<Record>>, paused: &HashSet<i32>, batch_max: usize) -> bool {
    pending.iter().any(|(p, v)| v.len() >= batch_max * BUFFER_BATCHES && !paused.contains(p))
}

/// A partition (re)assigned or revoked starts over: its buffer, expected offset
/// and pause go (librdkafka forgets the pause of a partition it unassigns).
fn forget(ev: &Lifecycle, next: &mut HashMap<i32, i64>, pending: &mut BTreeMap<i32, Vec<Record>>, paused: &mut HashSet<i32>) {
    let (Lifecycle::Assigned(parts) | Lifecycle::Revoked(parts)) = ev;
    for p in parts {
        next.remove(p);
        pending.remove(p);
        paused.remove(p);
    }
}

/// Whether a partition should be paused in the consumer: its actor is stalled on
/// storage and its buffer is full (pausing any earlier costs a re-fetch for nothing).
fn should_pause(buffered: usize, batch_max: usize, stalled: bool) -> bool {
    stalled && buffered >= batch_max * BUFFER_BATCHES
}

impl Intake {
    async fn lifecycle(&mut self, ev: Lifecycle) {
        match ev {
            Lifecycle::Assigned(parts) => {
                tracing::info!(?parts, "assigned");
                self.status.joined.store(true, Ordering::Relaxed);
                for p in parts {
                    self.status.get_or_insert(p);
                    self.credits.insert(p, Arc::new(Semaphore::new(self.cfg.in_flight_batches)));
                    match ractor::call!(self.supervisor, |reply| SupervisorMsg::Start { partition: p, reply }) {
                        Ok(Ok(())) => {}
                        other => tracing::error!(partition = p, result = ?other.map(|_| ()), "cannot start partition actor"),
                    }
                }
            }
            Lifecycle::Revoked(parts) => {
                tracing::info!(?parts, "revoked");
                for p in parts {
                    self.credits.remove(&p);
                    let _ = ractor::call!(self.supervisor, |reply| SupervisorMsg::Stop { partition: p, reply });
                }
            }
        }
    }

    /// Adaptive batching with backpressure: a partition with a free credit gets
    /// everything buffered for it; a busy partition keeps accumulating (batches
    /// grow under load) up to `BUFFER_BATCHES × batch_max` records, when the
    /// intake stops reading (see `full`). Every buffer is bounded. (Pausing the busy partition in librdkafka
    /// instead was measured slower: a resumed partition re-fetches — see
    /// BENCHMARKS.md.)
    async fn dispatch(&mut self, pending: &mut BTreeMap<i32, Vec<Record>>) {
        let parts: Vec<i32> = pending.keys().copied().collect();
        for p in parts {
            let actor = self.routes.read().unwrap_or_else(|e| e.into_inner()).get(&p).cloned();
            let (Some(actor), Some(sem)) = (actor, self.credits.get(&p).cloned()) else {
                pending.remove(&p); // not ours (revoked meanwhile): the new owner re-reads it
                continue;
            };
            // Never wait here for one partition: the others keep flowing, and
            // the receive loop stops reading while any buffer is full.
            let Ok(credit) = sem.try_acquire_owned() else { continue };
            // At most a full buffer's worth per message: bounded transaction size.
            let Some(buf) = pending.get_mut(&p) else { continue };
            let records: Vec<Record> = if buf.len() > BUFFER_BATCHES * self.cfg.batch_max {
                buf.drain(..BUFFER_BATCHES * self.cfg.batch_max).collect()
            } else {
                pending.remove(&p).unwrap_or_default()
            };
            if let Err(e) = actor.cast(PartitionMsg::Batch { records, credit: Some(credit) }) {
                tracing::warn!(partition = p, error = %e, "partition actor gone; records will be re-read after its restart");
            }
        }
    }

    /// Pauses, in the consumer, every partition stalled on storage with a full
    /// buffer, so the receive loop keeps reading the others.
    fn pause_stalled(&self, pending: &BTreeMap<i32, Vec<Record>>, paused: &mut HashSet<i32>) {
        for (&p, buf) in pending {
            let stalled = self.status.get(p).is_some_and(|st| st.storage_error().is_some());
            if paused.contains(&p) || !should_pause(buf.len(), self.cfg.batch_max, stalled) {
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.cfg.topic, p);
            match self.consumer.pause(&tpl) {
                Ok(()) => {
                    tracing::warn!(partition = p, buffered = buf.len(), "partition stalled on storage: paused its consumption");
                    paused.insert(p);
                }
                Err(e) => tracing::error!(partition = p, error = %e, "cannot pause a stalled partition"),
            }
        }
    }

    /// Resumes each paused partition whose storage recovered, from the first
    /// offset it has not buffered (its buffer drains as its batches commit).
    fn resume_recovered(&self, next: &HashMap<i32, i64>, paused: &mut HashSet<i32>) {
        let ready: Vec<i32> = paused.iter().copied().filter(|p| self.status.get(*p).is_none_or(|st| st.storage_error().is_none())).collect();
        for p in ready {
            if let Some(&off) = next.get(&p).filter(|o| **o >= 0) {
                if let Err(e) = self.consumer.seek(&self.cfg.topic, p, Offset::Offset(off), Duration::from_secs(5)) {
                    tracing::error!(partition = p, offset = off, error = %e, "cannot seek a paused partition; retrying");
                    continue;
                }
            }
            self.resume(p);
            paused.remove(&p);
            tracing::warn!(partition = p, "storage recovered: resumed the partition's consumption");
        }
    }

    fn resume(&self, p: i32) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.cfg.topic, p);
        if let Err(e) = self.consumer.resume(&tpl) {
            tracing::error!(partition = p, error = %e, "cannot resume a partition");
        }
    }

    /// Commits the durable checkpoints to the group (informational: RocksDB is the truth).
    fn commit(&self, mode: CommitMode) {
        let mut tpl = TopicPartitionList::new();
        for st in self.status.all() {
            let off = st.next_offset.load(Ordering::Relaxed);
            if off > 0 {
                let _ = tpl.add_partition_offset(&self.cfg.topic, st.partition, Offset::Offset(off));
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, mode) {
                tracing::debug!(error = %e, "offset commit failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n: usize) -> Vec<Record> {
        (0..n as i64).map(|offset| Record { offset, key: None, payload: None }).collect()
    }

    #[test]
    fn a_stalled_partition_is_paused_only_when_full_and_then_stops_blocking_the_others() {
        let batch = 10;
        assert!(!should_pause(batch * BUFFER_BATCHES - 1, batch, true));
        assert!(should_pause(batch * BUFFER_BATCHES, batch, true));
        assert!(!should_pause(batch * BUFFER_BATCHES, batch, false), "a merely busy partition is never paused");
        let mut pending = BTreeMap::new();
        pending.insert(0, recs(batch * BUFFER_BATCHES));
        pending.insert(1, recs(3));
        let mut paused = HashSet::new();
        assert!(full(&pending, &paused, batch), "a full buffer stops reading");
        paused.insert(0);
        assert!(!full(&pending, &paused, batch), "a paused partition's full buffer does not");
        forget(&Lifecycle::Revoked(vec![0]), &mut HashMap::new(), &mut pending, &mut paused);
        assert!(paused.is_empty() && !pending.contains_key(&0));
    }
}

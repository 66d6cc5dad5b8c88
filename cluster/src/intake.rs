//! The intake: one consumer-group member per node. It owns the Kafka consumer,
//! turns assignment changes into partition-actor starts and drains, batches
//! records per partition, and hands each batch to its partition actor under a
//! credit (at most `in_flight_batches` per partition), so memory is bounded and a
//! slow partition backpressures the consumer instead of queueing without limit.
//! A partition stalled on a failing storage write is paused in the consumer once
//! its buffer is full, so the other partitions keep flowing, and resumed (from
//! the first record it has not buffered) when its writes succeed again.

use crate::changelog::{ChangelogConfig, KafkaChangelog};
use crate::consumer::{group_consumer, prefetch_per_partition};
use crate::dlq::KafkaDlq;
use crate::reroute::KafkaReroute;
use crate::results::KafkaResults;
use crate::heartbeat::Members;
use crate::rebalance::{IntakeContext, Lifecycle};
use crate::restore::{self, Restored};
use crate::snapshot::Snapshots;
use crate::standby::{run_standby, StateGate};
use crate::{admin, client_config, ClusterError};
use futures::FutureExt;
use ractor::{Actor, ActorRef};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
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
use touchline_actors::changelog::SharedSink;
use touchline_actors::dlq::Outbox;
use touchline_actors::results::publisher::Publisher;
use touchline_actors::status::NodeStatus;
use touchline_storage::Store;

#[path = "intake_assign.rs"]
mod assign;
#[path = "intake_buffer.rs"]
mod buffer;
use buffer::{forget, full, push, should_pause, BUFFER_BATCHES};

#[derive(Clone, Debug)]
pub struct IntakeConfig {
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub group: String,
    pub node_id: String,
    /// The attribution results topic and what its records hold (`None`: off).
    pub results: Option<(String, touchline_actors::results::ResultsConfig)>,
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
    /// Changelog topic every batch is published to and restores read (`None`:
    /// none; a newly assigned partition then resumes from local state or replays).
    pub changelog_topic: Option<String>,
    /// Warm standbys per partition (needs the changelog and the member table).
    pub standby_replicas: usize,
    /// Peer snapshots tried before the changelog on restore (`None`: changelog only).
    pub snapshots: Option<Snapshots>,
    /// Re-route misrouted records to their tenant's partition (events.md);
    /// `false` dead-letters them as `misrouted` (`ingest.misrouted = "dlq"`).
    pub reroute_misrouted: bool,
    /// librdkafka prefetch budget of the node, KiB, split evenly over the events
    /// topic's partitions (`queued.max.messages.kbytes` of the intake consumer and
    /// of the changelog readers; a `kafka_props` entry of that name overrides it).
    pub prefetch_kb: usize,
    /// `cluster.placement = "load"`: the partitions are placed by measured
    /// load (`placer.rs`, assigned with `incremental_assign`) under these
    /// parameters; `None`: the consumer group assigns them.
    pub placement: Option<crate::placement::Params>,
    /// Placement by load: how long after its start a node may lead (at least
    /// the member timeout, so it has read every alive member's heartbeat).
    pub placement_grace: Duration,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            brokers: String::new(),
            topic: "marketing-events".into(),
            dlq_topic: "marketing-events.dlq".into(),
            group: "touchline".into(),
            node_id: "node-1".into(),
            partitions: admin::DEFAULT_PARTITIONS,
            create_topics: true,
            reroute_misrouted: true,
            kafka_props: Vec::new(),
            session_timeout_ms: 10_000,
            batch_max: 1000,
            in_flight_batches: 2,
            commit_interval: Duration::from_secs(5),
            changelog_topic: Some("touchline.changelog".into()),
            results: Some(("touchline.attributions".into(), Default::default())),
            standby_replicas: 1,
            snapshots: None,
            prefetch_kb: 16 * 1024,
            placement: None,
            placement_grace: Duration::from_secs(5),
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
    store: Store,
    changelog: Option<(ChangelogConfig, SharedSink)>,
    members: Option<Members>,
    /// Partitions being restored: the generation of their restore and its task.
    restoring: HashMap<i32, (u64, tokio::task::JoinHandle<()>)>,
    generation: u64,
    restored: mpsc::UnboundedSender<RestoreDone>,
    gate: StateGate,
}

/// A finished restore task: partition, generation, outcome.
type RestoreDone = (i32, u64, Result<Restored, String>);

/// Runs the intake until `shutdown` flips to true, then hands off in order:
/// stop intake, drain partition actors, flush RocksDB, commit, leave the group.
/// `members` (the membership table) lets a restore wait for the previous owner
/// to hand a partition off.
pub async fn run_intake(
    cfg: IntakeConfig,
    store: Store,
    engine: Arc<EngineConfig>,
    status: Arc<NodeStatus>,
    members: Option<Members>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
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
    let prefetch = prefetch_per_partition(cfg.prefetch_kb, partitions).to_string();
    let mut changelog_producer = None;
    let changelog = match &cfg.changelog_topic {
        Some(topic) => {
            let cc = ChangelogConfig { brokers: cfg.brokers.clone(), kafka_props: props.clone(), topic: topic.clone(), node_id: cfg.node_id.clone() };
            crate::changelog::ensure_topic(&cc, partitions, cfg.create_topics).await?;
            let kc = Arc::new(KafkaChangelog::new(&cc)?);
            changelog_producer = Some(kc.clone());
            let sink: SharedSink = kc;
            // The changelog readers (restore, standby) prefetch like the intake;
            // user properties still override.
            let cc = ChangelogConfig {
                kafka_props: std::iter::once(("queued.max.messages.kbytes".to_string(), prefetch.clone())).chain(props.iter().cloned()).collect(),
                ..cc
            };
            Some((cc, sink))
        }
        None => None,
    };

    let results = match &cfg.results {
        Some((topic, rc)) => {
            let n = crate::results::ensure_topic(&cfg.brokers, props, topic, partitions, cfg.create_topics).await?;
            let sink = match &changelog_producer {
                Some(kc) => KafkaResults::on(kc, topic.clone(), n),
                None => KafkaResults::new(&cfg.brokers, props, &cfg.node_id, topic.clone(), n)?,
            };
            tracing::info!(topic = %topic, partitions = n, "attribution results topic ready");
            Some(Publisher { sink: Arc::new(sink), config: Arc::new(rc.clone()) })
        }
        None => None,
    };

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
    let ctx = IntakeContext { store: store.clone(), topic: cfg.topic.clone(), status: status.clone(), lifecycle: life_tx, pause_on_assign: changelog.is_some() };
    let consumer = group_consumer(&cfg, &prefetch, ctx)?;
    // Placement by load: the placer hands this node its partitions (`None`
    // until a plan is in force); otherwise the consumer group assigns them.
    let (target_tx, mut target) = watch::channel::<Option<Vec<i32>>>(None);
    let placer = match (&cfg.placement, &members) {
        (Some(params), Some(m)) => Some(tokio::spawn(crate::placer::run(m.clone(), partitions, *params, cfg.placement_grace, target_tx, shutdown.clone()))),
        (Some(_), None) => return Err(ClusterError::Actor("placement by load needs the member table".into())),
        (None, _) => {
            consumer.subscribe(&[&cfg.topic])?;
            None
        }
    };

    let routes: Routes = Arc::new(RwLock::new(HashMap::new()));
    let sup_args = SupervisorArgs {
        store: store.clone(),
        dlq,
        config: engine,
        status: status.clone(),
        topic_partitions: partitions,
        routes: routes.clone(),
        rewind: rewind_tx,
        changelog: changelog.as_ref().map(|(_, s)| s.clone()),
        reroute: cfg
            .reroute_misrouted
            .then(|| Arc::new(KafkaReroute::new(producer.clone(), cfg.topic.clone())) as Arc<dyn touchline_actors::reroute::RerouteSink>),
        results,
    };
    // The actor tree applies on threads of its own (RocksDB reads block).
    let (supervisor, sup_handle) = crate::apply_runtime::spawn(Actor::spawn(Some(format!("supervisor-{}", cfg.node_id)), Supervisor, sup_args))
        .await
        .map_err(|e| ClusterError::Actor(e.to_string()))?
        .map_err(|e| ClusterError::Actor(e.to_string()))?;
    let (restored_tx, mut restored_rx) = mpsc::unbounded_channel::<RestoreDone>();
    let gate = StateGate::default();
    let standby = match (&changelog, &members) {
        (Some((cc, _)), Some(m)) => Some(tokio::spawn(run_standby(cc.clone(), cfg.standby_replicas, store.clone(), status.clone(), m.clone(), gate.clone(), shutdown.clone()))),
        _ => None,
    };
    let lag_watch = tokio::spawn(crate::lag_watch::run(cfg.brokers.clone(), props.clone(), cfg.topic.clone(), status.clone(), shutdown.clone()));
    let mut intake = Intake {
        cfg,
        consumer,
        supervisor,
        routes,
        credits: HashMap::new(),
        status,
        store: store.clone(),
        changelog,
        members,
        restoring: HashMap::new(),
        generation: 0,
        restored: restored_tx,
        gate,
    };
    let mut commit_tick = tokio::time::interval(intake.cfg.commit_interval);
    let mut heal_tick = tokio::time::interval(Duration::from_secs(1));
    heal_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stuck_since: Option<std::time::Instant> = None;
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
            Ok(()) = target.changed(), if placer.is_some() => {
                let now = target.borrow_and_update().clone();
                intake.follow(now.as_deref(), &mut next_offset, &mut pending, &mut paused).await;
            }
            Some(done) = restored_rx.recv() => {
                forget(&Lifecycle::Assigned(vec![done.0]), &mut next_offset, &mut pending, &mut paused);
                intake.restored(done).await;
            }
            m = intake.consumer.recv(), if !full(&pending, &paused, intake.cfg.batch_max) => {
                match m {
                    Ok(m) => push(&mut pending, &mut next_offset, &paused, &m),
                    Err(e) => {
                        // A fatal consumer (fenced static member) never consumes
                        // again: step down rather than live on as a zombie that
                        // serves stale state and claims partitions.
                        if let Some((code, reason)) = intake.consumer.client().fatal_error() {
                            tracing::error!(?code, reason, "fatal consumer error; stepping down");
                            return Err(ClusterError::Fatal { code: format!("{code:?}"), reason });
                        }
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
            _ = heal_tick.tick() => match &placer {
                // A failed (un)assign is retried.
                Some(_) => {
                    let now = target.borrow().clone();
                    intake.follow(now.as_deref(), &mut next_offset, &mut pending, &mut paused).await;
                }
                None => intake.self_heal(&mut stuck_since),
            },
        }
    }

    // Ordered hand-off.
    tracing::info!("shutdown: stopping intake and draining partitions");
    for (_, (_, h)) in intake.restoring.drain() {
        h.abort();
    }
    if let Some(s) = standby {
        let _ = s.await;
    }
    lag_watch.abort();
    if let Some(p) = placer {
        p.abort();
    }
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

impl Intake {
    async fn lifecycle(&mut self, ev: Lifecycle) {
        match ev {
            Lifecycle::Assigned(parts) => {
                tracing::info!(?parts, "assigned");
                self.status.joined.store(true, Ordering::Relaxed);
                for p in parts {
                    self.status.get_or_insert(p).set_state(touchline_actors::status::PartitionState::Restoring);
                    self.status.remove_standby(p);
                    if self.changelog.is_some() {
                        self.spawn_restore(p, Duration::ZERO);
                    } else {
                        self.activate(p).await;
                    }
                }
            }
            Lifecycle::Revoked(parts) => {
                tracing::info!(?parts, "revoked");
                for p in parts {
                    if let Some((_, h)) = self.restoring.remove(&p) {
                        h.abort();
                    }
                    self.credits.remove(&p);
                    let _ = ractor::call!(self.supervisor, |reply| SupervisorMsg::Stop { partition: p, reply });
                }
            }
        }
    }

    /// Group self-heal, compatibility for brokers like Tansu: some coordinators
    /// (Tansu 0.6) occasionally end a rebalance round with partitions assigned
    /// to nobody, or leave a member waiting forever; Apache Kafka's does not
    /// (the multi-node tests run on it without a rejoin). When this node has
    /// not joined, or some partition has had no alive owner in the member
    /// table, for 3 session timeouts (well past any legitimate rebalance), it
    /// leaves and rejoins the group, which starts a fresh round. Exactness is
    /// unaffected: partitions restore on assign.
    fn self_heal(&mut self, since: &mut Option<std::time::Instant>) {
        let Some(members) = &self.members else { return };
        let n = self.status.topic_partitions.load(Ordering::Relaxed) as i32;
        let joined = self.status.joined.load(Ordering::Relaxed);
        let unowned: Vec<i32> = (0..n).filter(|p| members.owner(*p).is_none()).collect();
        if joined && unowned.is_empty() {
            *since = None;
            return;
        }
        let first = *since.get_or_insert_with(std::time::Instant::now);
        if first.elapsed() < Duration::from_millis(3 * u64::from(self.cfg.session_timeout_ms)) {
            return;
        }
        tracing::warn!(joined, ?unowned, "consumer group stuck; rejoining");
        touchline_actors::metrics::group_rejoined();
        self.consumer.unsubscribe();
        if let Err(e) = self.consumer.subscribe(&[&self.cfg.topic]) {
            tracing::error!(error = %e, "re-subscribe failed; retried at the next check");
            return;
        }
        *since = None;
    }

    /// Starts the partition's actor (from its durable checkpoint) and lets records flow to it.
    async fn activate(&mut self, p: i32) {
        self.credits.insert(p, Arc::new(Semaphore::new(self.cfg.in_flight_batches)));
        match ractor::call!(self.supervisor, |reply| SupervisorMsg::Start { partition: p, reply }) {
            Ok(Ok(())) => {}
            other => tracing::error!(partition = p, result = ?other.map(|_| ()), "cannot start partition actor"),
        }
    }

    /// Restores `p` in a task after `delay`; its result comes back as a [`RestoreDone`].
    fn spawn_restore(&mut self, p: i32, delay: Duration) {
        let Some((cc, sink)) = self.changelog.clone() else { return };
        self.generation += 1;
        let generation = self.generation;
        let (store, members, done, gate) = (self.store.clone(), self.members.clone(), self.restored.clone(), self.gate.clone());
        let snapshots = self.cfg.snapshots.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(m) = &members {
                restore::wait_unclaimed(m, p).await;
            }
            // A standby batch being applied to `p` finishes first; later ones see `p` owned.
            drop(gate.lock().await);
            let r = restore::restore(&cc, &store, &sink, snapshots.as_ref(), p).await.map_err(|e| e.to_string());
            let _ = done.send((p, generation, r));
        });
        if let Some((_, old)) = self.restoring.insert(p, (generation, task)) {
            old.abort();
        }
    }

    /// A restore finished: seek the partition to the restored checkpoint, resume
    /// it and start its actor; a failed restore is retried (never given up).
    async fn restored(&mut self, (p, generation, result): RestoreDone) {
        if self.restoring.get(&p).is_none_or(|(g, _)| *g != generation) {
            return; // revoked (or re-assigned) meanwhile
        }
        self.restoring.remove(&p);
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(partition = p, error = %e, "restore failed; retrying in 1 s");
                self.spawn_restore(p, Duration::from_secs(1));
                return;
            }
        };
        let next = r.checkpoint.next_offset;
        let offset = if next > 0 { Offset::Offset(next) } else { Offset::Beginning };
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition(&self.cfg.topic, p);
        let sought = self.consumer.seek(&self.cfg.topic, p, offset, Duration::from_secs(5));
        if let Err(e) = sought.and_then(|_| self.consumer.resume(&tpl)) {
            tracing::error!(partition = p, error = %e, "cannot seek/resume the restored partition; restoring again");
            self.spawn_restore(p, Duration::from_secs(1));
            return;
        }
        tracing::info!(partition = p, source = r.source, next_offset = next, "partition active");
        self.activate(p).await;
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

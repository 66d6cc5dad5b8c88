//! Cluster membership, the I/O edge: a publisher task that writes this node's
//! heartbeat to the members topic (every interval, at once when its assignment or
//! a partition state changes, and a final `left` on clean shutdown), and a reader
//! task — a plain consumer that joins no group, assigned partition 0 from the
//! beginning — that feeds every heartbeat into the shared [`MemberTable`].
//!
//! Neither task touches the intake's consumer, so nothing here can block its poll.

use crate::load::LoadMeter;
use crate::plan::Plan;
use crate::membership::{now_ms, Heartbeat, Identity, MemberTable, MemberView};
use crate::{admin, client_config, ClusterError};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use touchline_actors::status::NodeStatus;

/// How often the publisher compares the live status with what it last published.
const CHANGE_POLL: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct MembershipConfig {
    pub brokers: String,
    /// librdkafka properties passed through (they override ours).
    pub kafka_props: Vec<(String, String)>,
    pub members_topic: String,
    /// Create the members topic (1 partition, compacted) when absent.
    pub create_topic: bool,
    pub identity: Identity,
    pub heartbeat_interval: Duration,
    pub member_timeout: Duration,
}

/// A cheap, cloneable read handle on the membership table, for the HTTP layer.
#[derive(Clone)]
pub struct Members {
    table: Arc<RwLock<MemberTable>>,
    me: Identity,
    status: Arc<NodeStatus>,
    /// The placement this node follows (the leader: the one it leads),
    /// published in its heartbeats so that a new leader starts from it (`plan.rs`).
    plan: Arc<RwLock<Option<Plan>>>,
}

impl Members {
    pub fn new(me: Identity, status: Arc<NodeStatus>, timeout: Duration) -> Members {
        let table = MemberTable::new(&me.group, &me.topic, timeout.as_millis() as i64);
        Members { table: Arc::new(RwLock::new(table)), me, status, plan: Arc::new(RwLock::new(None)) }
    }

    pub fn node_id(&self) -> &str {
        &self.me.node_id
    }

    /// This node's heartbeat as of now (never stale), with the plan it follows.
    pub fn local(&self) -> Heartbeat {
        let plan = self.plan.read().unwrap_or_else(|e| e.into_inner()).clone();
        Heartbeat { plan, ..Heartbeat::from_status(&self.me, &self.status, now_ms()) }
    }

    /// Sets the plan this node follows (or leads) and publishes.
    pub fn follow(&self, plan: Option<Plan>) {
        *self.plan.write().unwrap_or_else(|e| e.into_inner()) = plan;
    }

    /// The alive members' ids (this node included), ascending.
    pub fn alive_ids(&self) -> Vec<String> {
        let mut ids = self.table.read().unwrap_or_else(|e| e.into_inner()).alive_ids(now_ms());
        ids.retain(|id| *id != self.me.node_id);
        ids.push(self.me.node_id.clone());
        ids.sort();
        ids
    }

    /// The plan in force: the highest epoch among the plans the alive
    /// members publish, this node's own included (`plan::in_force`).
    pub fn plan_in_force(&self) -> Option<Plan> {
        let mut plans = self.table.read().unwrap_or_else(|e| e.into_inner()).plans(now_ms());
        plans.extend(self.plan.read().unwrap_or_else(|e| e.into_inner()).clone());
        crate::plan::in_force(&plans).cloned()
    }

    /// The alive member claiming `partition`, per the last heartbeats read.
    pub fn owner(&self, partition: i32) -> Option<Heartbeat> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).owner(partition, now_ms()).cloned()
    }

    /// Every known member; this node's own entry is its live status.
    pub fn members(&self) -> Vec<MemberView> {
        let mut all = self.table.read().unwrap_or_else(|e| e.into_inner()).members(now_ms());
        all.retain(|m| m.heartbeat.node_id != self.me.node_id);
        all.push(MemberView { heartbeat: self.local(), alive: true });
        all.sort_by(|a, b| a.heartbeat.node_id.cmp(&b.heartbeat.node_id));
        all
    }

    /// Another alive member still claiming `partition` (e.g. draining it).
    pub fn claimed_elsewhere(&self, partition: i32) -> Option<String> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).claimed_elsewhere(partition, &self.me.node_id, now_ms()).map(str::to_string)
    }

    pub fn observe(&self, hb: Heartbeat) -> bool {
        self.table.write().unwrap_or_else(|e| e.into_inner()).observe(hb, now_ms())
    }
}

/// The running membership tasks of one node.
pub struct Membership {
    members: Members,
    stop: watch::Sender<bool>,
    publisher: JoinHandle<()>,
    reader: JoinHandle<()>,
}

impl Membership {
    /// Ensures the members topic, then starts publishing and reading heartbeats.
    pub async fn start(cfg: MembershipConfig, status: Arc<NodeStatus>) -> Result<Membership, ClusterError> {
        let props = &cfg.kafka_props;
        let topic = &cfg.members_topic;
        if cfg.create_topic {
            admin::ensure_topic_with_config(&cfg.brokers, props, topic, 1, &[("cleanup.policy", "compact")]).await?;
        } else if admin::partition_count(&cfg.brokers, props, topic).await?.is_none() {
            return Err(ClusterError::Topic { topic: topic.clone(), detail: "members topic does not exist (create_topics is off)".into() });
        }
        let producer: FutureProducer = {
            let mut c = client_config(&cfg.brokers, &[]);
            c.set("linger.ms", "0")
                .set("message.timeout.ms", cfg.member_timeout.as_millis().max(1000).to_string())
                .set("client.id", format!("touchline-members-{}", cfg.identity.node_id));
            for (k, v) in props {
                c.set(k, v);
            }
            c.create()?
        };
        let consumer: StreamConsumer = {
            let mut c = client_config(&cfg.brokers, &[]);
            // librdkafka's assign() needs a group.id; the group is never joined (no subscribe).
            c.set("group.id", format!("touchline-members-{}", cfg.identity.node_id))
                .set("client.id", format!("touchline-members-reader-{}", cfg.identity.node_id))
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "100");
            for (k, v) in props {
                c.set(k, v);
            }
            c.create()?
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
        consumer.assign(&tpl)?;

        let members = Members::new(cfg.identity.clone(), status.clone(), cfg.member_timeout);
        let (stop, stop_rx) = watch::channel(false);
        let publisher = tokio::spawn(publish_loop(producer, cfg, members.clone(), stop_rx.clone()));
        let reader = tokio::spawn(read_loop(consumer, members.clone(), stop_rx));
        Ok(Membership { members, stop, publisher, reader })
    }

    pub fn members(&self) -> Members {
        self.members.clone()
    }

    /// Stops both tasks without a final heartbeat: for a fenced node, whose
    /// node id now belongs to another process.
    pub fn abandon(self) {
        self.publisher.abort();
        self.reader.abort();
    }

    /// Publishes the final `left` heartbeat (bounded wait) and stops both tasks.
    pub async fn leave(self) {
        let _ = self.stop.send(true);
        let _ = self.publisher.await;
        let _ = self.reader.await;
    }
}

async fn publish_loop(producer: FutureProducer, cfg: MembershipConfig, members: Members, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last: Option<(tokio::time::Instant, _)> = None;
    let mut meter = LoadMeter::default();
    loop {
        tokio::select! {
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
            _ = tick.tick() => {
                let mut hb = members.local();
                let sig = (hb.signature(), hb.plan.as_ref().map(|p| (p.epoch, p.leader.clone())));
                let due = match &last {
                    None => true,
                    Some((at, s)) => *s != sig || at.elapsed() >= cfg.heartbeat_interval,
                };
                if due {
                    meter.retain(&hb.owned);
                    let planned = members.plan_in_force();
                    for r in &mut hb.partitions {
                        let seed = planned.as_ref().map_or(0.0, |p| p.load_of(r.partition));
                        // The backlog counts once the partition is active: a
                        // restoring partition's lag is not yet what it will ask.
                        let lag = if r.end_offset.is_some() && r.state == "active" { r.lag } else { -1 };
                        r.load = meter.observe_from(r.partition, hb.ts_ms, r.end_offset.unwrap_or(-1), lag, seed);
                    }
                    send(&producer, &cfg, &hb).await;
                    last = Some((tokio::time::Instant::now(), sig));
                }
            }
        }
    }
    send(&producer, &cfg, &Heartbeat::left(&cfg.identity, now_ms())).await;
    tracing::info!(node = %cfg.identity.node_id, "membership: published left");
}

/// One heartbeat, waiting for its delivery at most one interval (at least 1 s):
/// a late heartbeat is worth little, the next one follows.
async fn send(producer: &FutureProducer, cfg: &MembershipConfig, hb: &Heartbeat) {
    let Ok(payload) = serde_json::to_vec(hb) else { return };
    let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(&cfg.members_topic).key(cfg.identity.node_id.as_str()).payload(payload.as_slice());
    let wait = cfg.heartbeat_interval.max(Duration::from_secs(1));
    match tokio::time::timeout(wait, producer.send(rec, Timeout::After(wait))).await {
        Ok(Ok(_)) => {}
        Ok(Err((e, _))) => tracing::warn!(error = %e, "membership: heartbeat not delivered"),
        Err(_) => tracing::warn!("membership: heartbeat delivery timed out"),
    }
}

async fn read_loop(consumer: StreamConsumer, members: Members, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
            m = consumer.recv() => match m {
                Ok(m) => match m.payload().map(serde_json::from_slice::<Heartbeat>) {
                    Some(Ok(hb)) => { members.observe(hb); }
                    Some(Err(e)) => tracing::debug!(offset = m.offset(), error = %e, "membership: not a heartbeat"),
                    None => {}
                },
                Err(e) => {
                    tracing::warn!(error = %e, "membership: read error");
                    // Errors repeat while the broker is away: do not spin.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => break,
                    }
                }
            },
        }
    }
}

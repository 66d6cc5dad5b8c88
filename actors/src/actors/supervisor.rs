//! Supervisor: the root of a node's actor tree. Starts and stops partition actors
//! as the consumer group assigns and revokes partitions, and restarts a partition
//! actor that fails (it resumes from its durable checkpoint; the intake is asked
//! to rewind the consumer to it so nothing in flight is skipped).

use super::partition::{PartitionActor, PartitionArgs, PartitionMsg};
use super::EngineConfig;
use crate::dlq::Outbox;
use crate::metrics;
use crate::status::NodeStatus;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use touchline_storage::{Checkpoint, Store};

/// partition → its live actor, read by the intake for every batch.
pub type Routes = Arc<RwLock<HashMap<i32, ActorRef<PartitionMsg>>>>;

pub enum SupervisorMsg {
    Start { partition: i32, reply: RpcReplyPort<Result<(), String>> },
    /// Drains (every queued batch committed) and stops the partition's actor.
    Stop { partition: i32, reply: RpcReplyPort<Option<Checkpoint>> },
}

pub struct SupervisorArgs {
    pub store: Store,
    pub dlq: Outbox,
    pub config: Arc<EngineConfig>,
    pub status: Arc<NodeStatus>,
    pub topic_partitions: i32,
    pub routes: Routes,
    /// Where to ask for a consumer rewind after a restart: (partition, offset).
    pub rewind: UnboundedSender<(i32, i64)>,
    /// Changelog every partition publishes its batches to (`None`: none).
    pub changelog: Option<crate::changelog::SharedSink>,
    /// Where misrouted records are re-routed (`None`: dead-lettered).
    pub reroute: Option<Arc<dyn crate::reroute::RerouteSink>>,
    /// Where every partition publishes its attribution results (`None`: off).
    pub results: Option<crate::results::publisher::Publisher>,
}

pub struct Supervisor;

async fn spawn_partition(me: &ActorRef<SupervisorMsg>, s: &SupervisorArgs, partition: i32) -> Result<ActorRef<PartitionMsg>, String> {
    let args = PartitionArgs {
        partition,
        topic_partitions: s.topic_partitions,
        store: s.store.clone(),
        dlq: s.dlq.clone(),
        config: s.config.clone(),
        status: s.status.get_or_insert(partition),
        changelog: s.changelog.clone(),
        reroute: s.reroute.clone(),
        results: s.results.clone(),
    };
    let (a, _) = Actor::spawn_linked(Some(format!("partition-{partition}")), PartitionActor, args, me.get_cell())
        .await
        .map_err(|e| e.to_string())?;
    s.routes.write().unwrap_or_else(|e| e.into_inner()).insert(partition, a.clone());
    metrics::partitions_assigned(s.routes.read().unwrap_or_else(|e| e.into_inner()).len());
    Ok(a)
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorArgs;
    type Arguments = SupervisorArgs;

    async fn pre_start(&self, _me: ActorRef<SupervisorMsg>, args: SupervisorArgs) -> Result<SupervisorArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(&self, me: ActorRef<SupervisorMsg>, msg: SupervisorMsg, s: &mut SupervisorArgs) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Start { partition, reply } => {
                let exists = s.routes.read().unwrap_or_else(|e| e.into_inner()).contains_key(&partition);
                let r = if exists { Ok(()) } else { spawn_partition(&me, s, partition).await.map(|_| ()) };
                let _ = reply.send(r);
            }
            SupervisorMsg::Stop { partition, reply } => {
                let actor = s.routes.write().unwrap_or_else(|e| e.into_inner()).remove(&partition);
                let mut cp = None;
                if let Some(a) = actor {
                    if let Ok(ractor::rpc::CallResult::Success(c)) = a.call(PartitionMsg::Drain, Some(Duration::from_secs(120))).await {
                        cp = Some(c);
                    }
                    a.stop_and_wait(None, Some(Duration::from_secs(30))).await.ok();
                }
                s.status.remove(partition);
                metrics::partitions_assigned(s.routes.read().unwrap_or_else(|e| e.into_inner()).len());
                let _ = reply.send(cp);
            }
        }
        Ok(())
    }

    /// Restart strategy: a failed partition actor is respawned (one-for-one) and
    /// the consumer rewound to its checkpoint. ractor's default would stop us.
    async fn handle_supervisor_evt(&self, me: ActorRef<SupervisorMsg>, evt: SupervisionEvent, s: &mut SupervisorArgs) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = evt {
            let failed = {
                let routes = s.routes.read().unwrap_or_else(|e| e.into_inner());
                routes.iter().find(|(_, a)| a.get_id() == cell.get_id()).map(|(p, _)| *p)
            };
            if let Some(p) = failed {
                tracing::error!(partition = p, error = %err, "partition actor failed; restarting");
                metrics::actor_restarted("partition");
                s.routes.write().unwrap_or_else(|e| e.into_inner()).remove(&p);
                spawn_partition(&me, s, p).await.map_err(super::boxed)?;
                let next = s.store.checkpoint(p as u16).map_err(super::boxed)?.map(|c| c.next_offset).unwrap_or(0);
                let _ = s.rewind.send((p, next));
            }
        }
        Ok(())
    }
}

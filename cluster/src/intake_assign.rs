//! The intake under `cluster.placement = "load"`: the consumer joins no group
//! for the events topic; it is assigned, with `incremental_assign`, the
//! partitions the plan in force gives this node (`placer.rs`), and
//! unassigns those it gives elsewhere. The hand-off is the group mode's: a
//! handed-off partition is unassigned at once and its actor drained (the
//! node stops claiming it once drained), and a taken partition is paused until
//! its restore — which first waits until no other alive member claims it —
//! seeks it to the restored checkpoint and resumes it.

use super::{forget, Intake};
use crate::plan::moves;
use crate::rebalance::{start_offset, Lifecycle};
use rdkafka::consumer::Consumer;
use rdkafka::topic_partition_list::TopicPartitionList;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use touchline_actors::actors::partition::Record;

impl Intake {
    /// The partitions this node's consumer is assigned now, ascending.
    fn assigned(&self) -> Vec<i32> {
        let mut parts: Vec<i32> = match self.consumer.assignment() {
            Ok(tpl) => tpl.elements().iter().filter(|e| e.topic() == self.cfg.topic).map(|e| e.partition()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the consumer's assignment");
                Vec::new()
            }
        };
        parts.sort_unstable();
        parts
    }

    /// Follows the plan in force (`target`: this node's partitions under it;
    /// `None`: no plan yet) and runs the resulting lifecycle events, as the
    /// group mode runs its rebalance callback's.
    pub(super) async fn follow(&mut self, target: Option<&[i32]>, next: &mut HashMap<i32, i64>, pending: &mut BTreeMap<i32, Vec<Record>>, paused: &mut HashSet<i32>) {
        let Some(target) = target else { return };
        self.status.joined.store(true, Ordering::Relaxed);
        for ev in self.assign_to(target) {
            forget(&ev, next, pending, paused);
            self.lifecycle(ev).await;
        }
    }

    /// Brings the consumer's assignment to `target`; returns the lifecycle
    /// events to run (hand-offs first). A failed (un)assign is retried at the
    /// next call.
    fn assign_to(&mut self, target: &[i32]) -> Vec<Lifecycle> {
        let (take, hand_off) = moves(target, &self.assigned());
        let mut events = Vec::new();
        if take.is_empty() && hand_off.is_empty() {
            return events;
        }
        touchline_actors::metrics::rebalanced();
        if !hand_off.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for p in &hand_off {
                tpl.add_partition(&self.cfg.topic, *p);
            }
            match self.consumer.incremental_unassign(&tpl) {
                Ok(()) => events.push(Lifecycle::Revoked(hand_off)),
                Err(e) => tracing::error!(error = %e, partitions = ?hand_off, "unassign failed; retried"),
            }
        }
        if !take.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for p in &take {
                let _ = tpl.add_partition_offset(&self.cfg.topic, *p, start_offset(&self.store, *p));
            }
            match self.consumer.incremental_assign(&tpl) {
                Ok(()) => {
                    // Nothing is fetched before the partition is restored.
                    if self.changelog.is_some() {
                        if let Err(e) = self.consumer.pause(&tpl) {
                            tracing::error!(error = %e, "pause on assign failed");
                        }
                    }
                    events.push(Lifecycle::Assigned(take));
                }
                Err(e) => tracing::error!(error = %e, partitions = ?take, "assign failed; retried"),
            }
        }
        events
    }
}

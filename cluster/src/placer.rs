//! Placement by load, the I/O edge (`cluster.placement = "load"`): a task
//! that, every tick, reads the member table, lets this node lead when it is
//! the leader (`plan::lead`: alive members, each partition's load as its
//! owner reports it, the plan in force), publishes the plan it follows in its
//! heartbeats, and hands the intake the partitions this node is to own under
//! the plan in force (a watch channel; the intake assigns them with
//! `incremental_assign`, `intake_assign.rs`).
//!
//! A node leads only after one member timeout since its start: by then it has
//! read every alive member's heartbeat, so a restarted leader starts from the
//! plan in force instead of placing every partition anew.

use crate::heartbeat::Members;
use crate::placement::{Params, Planner};
use crate::plan::{self, Plan};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// How often the placement is recomputed.
const TICK: Duration = Duration::from_millis(500);

/// Each partition's load: what its owner reports, else what the plan in
/// force was computed with (a partition being handed off has no report).
pub fn loads(members: &Members, partitions: i32, in_force: Option<&Plan>) -> BTreeMap<i32, f64> {
    (0..partitions)
        .map(|p| {
            let reported = members.owner(p).and_then(|h| h.report(p).map(|r| r.load));
            (p, reported.unwrap_or_else(|| in_force.map_or(0.0, |plan| plan.load_of(p))))
        })
        .collect()
}

/// Runs until `stop` flips; sends this node's partitions under the plan in
/// force on `target` whenever they change.
pub async fn run(members: Members, partitions: i32, params: Params, grace: Duration, target: watch::Sender<Option<Vec<i32>>>, mut stop: watch::Receiver<bool>) {
    let started = tokio::time::Instant::now();
    let mut planner = Planner::new(params);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let me = members.node_id().to_string();
    loop {
        tokio::select! {
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
            _ = tick.tick() => {}
        }
        let in_force = members.plan_in_force();
        let mut follow = in_force.clone();
        if started.elapsed() >= grace {
            let alive = members.alive_ids();
            let load = loads(&members, partitions, in_force.as_ref());
            let now = crate::membership::now_ms();
            if let Some(led) = plan::lead(&mut planner, &me, now, partitions, &alive, in_force.as_ref(), &load) {
                if in_force.as_ref().is_none_or(|p| (p.epoch, &p.owners) != (led.epoch, &led.owners)) {
                    tracing::info!(epoch = led.epoch, alive = ?alive, owners = ?led.owners, loads = ?led.loads, "placement: new plan");
                }
                follow = Some(led);
            }
        }
        // Only a plan for this topic's partition count is followed.
        let follow = follow.filter(|p| p.owners.len() == partitions.max(0) as usize);
        members.follow(follow.clone());
        if let Some(plan) = members.plan_in_force().filter(|p| p.owners.len() == partitions.max(0) as usize) {
            let mine = plan.partitions_of(&me);
            target.send_if_modified(|t| {
                let changed = t.as_ref() != Some(&mine);
                if changed {
                    *t = Some(mine);
                }
                changed
            });
        }
    }
}

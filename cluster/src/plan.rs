//! Load-based placement, the coordination (pure; the heartbeats carry the
//! plans): one node — the leader, the alive member with the smallest id —
//! feeds the member table (alive members, each partition's reported load)
//! and the plan in force to its [`Planner`] and publishes the result as a
//! [`Plan`] with an epoch; every node follows the plan in force (the highest
//! epoch among the alive members' plans) by taking the partitions it is given
//! and handing off the others ([`steps`]). A new leader starts from the plan
//! in force (its partitions stay where they are unless their owner is gone or
//! the load is out of balance). The hand-off stays
//! the one of the group mode: a taken partition restores once no other alive
//! member claims it.

use crate::placement::{Input, Planner};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A placement as its leader publishes it (in its heartbeats).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Grows with every change a leader publishes.
    pub epoch: u64,
    pub leader: String,
    /// Owner of each partition (index = partition).
    pub owners: Vec<String>,
    /// The load of each partition the plan was computed from (records/s): a
    /// partition's new owner starts measuring from it, so a moved partition
    /// does not look idle until its new owner has a rate of its own.
    #[serde(default)]
    pub loads: Vec<f64>,
}

impl Plan {
    /// The load the plan was computed with for `partition` (0 when unknown).
    pub fn load_of(&self, partition: i32) -> f64 {
        usize::try_from(partition).ok().and_then(|p| self.loads.get(p)).copied().unwrap_or(0.0)
    }

    /// The partitions `node` owns under this plan, ascending.
    pub fn partitions_of(&self, node: &str) -> Vec<i32> {
        self.owners.iter().enumerate().filter(|(_, o)| *o == node).map(|(p, _)| p as i32).collect()
    }
}

/// The leader among `alive`: the smallest node id.
pub fn leader(alive: &[String]) -> Option<&str> {
    alive.iter().min().map(String::as_str)
}

/// The plan every node follows: the highest epoch among the plans the alive
/// members publish (then the leader's id, so all nodes agree).
pub fn in_force<'a>(published: impl IntoIterator<Item = &'a Plan>) -> Option<&'a Plan> {
    published.into_iter().max_by(|a, b| (a.epoch, &a.leader).cmp(&(b.epoch, &b.leader)))
}

/// The leader's step at `now_ms`: the plan `me` publishes, or `None` when
/// `me` is not the leader. `current` is the plan in force (a plan for another
/// partition count is ignored); the epoch grows only when the owners change
/// or the leader does.
pub fn lead(planner: &mut Planner, me: &str, now_ms: i64, partitions: i32, alive: &[String], current: Option<&Plan>, load: &BTreeMap<i32, f64>) -> Option<Plan> {
    if leader(alive) != Some(me) {
        return None;
    }
    let usable = current.filter(|p| p.owners.len() == partitions.max(0) as usize);
    let owners_now: BTreeMap<i32, String> = usable.map(|p| p.owners.iter().enumerate().map(|(i, o)| (i as i32, o.clone())).collect()).unwrap_or_default();
    let owners = planner.decide(now_ms, &Input { partitions, nodes: alive.to_vec(), current: owners_now, load: load.clone() });
    let loads = (0..partitions.max(0)).map(|p| load.get(&p).copied().unwrap_or(0.0)).collect();
    match current {
        Some(p) if p.owners == owners && p.leader == me => Some(Plan { loads, ..p.clone() }),
        _ => Some(Plan { epoch: current.map_or(1, |p| p.epoch + 1), leader: me.to_string(), owners, loads }),
    }
}

/// What `me`, owning `owned`, does to follow `plan`: the partitions to take
/// and the partitions to hand off, ascending.
pub fn steps(plan: &Plan, me: &str, owned: &[i32]) -> (Vec<i32>, Vec<i32>) {
    moves(&plan.partitions_of(me), owned)
}

/// The partitions to take and to hand off, ascending, to go from owning
/// `owned` to owning `target`.
pub fn moves(target: &[i32], owned: &[i32]) -> (Vec<i32>, Vec<i32>) {
    let mut take: Vec<i32> = target.iter().copied().filter(|p| !owned.contains(p)).collect();
    let mut hand_off: Vec<i32> = owned.iter().copied().filter(|p| !target.contains(p)).collect();
    take.sort_unstable();
    hand_off.sort_unstable();
    (take, hand_off)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Params;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn loads(v: &[f64]) -> BTreeMap<i32, f64> {
        v.iter().enumerate().map(|(p, l)| (p as i32, *l)).collect()
    }

    #[test]
    fn only_the_smallest_alive_id_leads() {
        let alive = ids(&["n2", "n1", "n3"]);
        assert_eq!(leader(&alive), Some("n1"));
        let mut planner = Planner::new(Params::default());
        assert_eq!(lead(&mut planner, "n2", 0, 4, &alive, None, &BTreeMap::new()), None);
        let plan = lead(&mut planner, "n1", 0, 4, &alive, None, &BTreeMap::new()).expect("n1 leads");
        assert_eq!((plan.epoch, plan.leader.as_str(), plan.owners.len()), (1, "n1", 4));
        assert!(leader(&[]).is_none());
    }

    #[test]
    fn an_unchanged_placement_keeps_its_epoch_and_a_new_leader_starts_from_it() {
        let alive = ids(&["n1", "n2", "n3"]);
        let load = loads(&[50.0, 40.0, 30.0, 20.0, 10.0, 5.0]);
        let mut planner = Planner::new(Params::default());
        let first = lead(&mut planner, "n1", 0, 6, &alive, None, &load).unwrap();
        let again = lead(&mut planner, "n1", 1_000, 6, &alive, Some(&first), &load).unwrap();
        assert_eq!(again, first, "same inputs: same plan, same epoch");
        assert_eq!((first.load_of(0), first.load_of(5), first.load_of(6)), (50.0, 5.0, 0.0));
        // n1 dies: n2 leads from n1's plan and places n1's partitions.
        let rest = ids(&["n2", "n3"]);
        let mut other = Planner::new(Params::default());
        let next = lead(&mut other, "n2", 2_000, 6, &rest, Some(&first), &load).unwrap();
        assert_eq!((next.epoch, next.leader.as_str()), (2, "n2"));
        assert!(next.owners.iter().all(|o| o != "n1"));
        let on = |plan: &Plan, n: &str| plan.partitions_of(n).iter().map(|p| load[p]).sum::<f64>();
        assert!((on(&next, "n2") - on(&next, "n3")).abs() <= 30.0, "{next:?}");
        // A leader with the plan in force and nothing changed keeps it.
        assert_eq!(lead(&mut other, "n2", 3_000, 6, &rest, Some(&next), &load).unwrap(), next);
        // A plan for another partition count is not a starting point.
        let fresh = lead(&mut other, "n2", 4_000, 8, &rest, Some(&next), &loads(&[1.0; 8])).unwrap();
        assert_eq!((fresh.epoch, fresh.owners.len()), (3, 8));
    }

    #[test]
    fn the_highest_epoch_is_in_force_and_steps_follow_it() {
        let a = Plan { epoch: 3, leader: "n1".into(), owners: ids(&["n1", "n2", "n1", "n2"]), loads: vec![] };
        let b = Plan { epoch: 4, leader: "n2".into(), owners: ids(&["n2", "n2", "n1", "n1"]), loads: vec![] };
        let c = Plan { epoch: 4, leader: "n1".into(), owners: ids(&["n1"; 4]), loads: vec![] };
        assert_eq!(in_force([&a, &b, &c]), Some(&b), "epoch, then leader id");
        assert_eq!(in_force([]), None);
        assert_eq!(b.partitions_of("n1"), [2, 3]);
        assert_eq!(steps(&b, "n1", &[0, 2]), (vec![3], vec![0]));
        assert_eq!(steps(&b, "n2", &[1, 3]), (vec![0], vec![3]));
        assert_eq!(steps(&b, "n3", &[]), (vec![], vec![]));
    }
}

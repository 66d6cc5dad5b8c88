//! Cluster membership, the pure part: the heartbeat every node publishes to the
//! members topic, and the table of the latest heartbeat per node that answers
//! "who is alive" and "who owns partition p". No I/O here (see `heartbeat.rs`).
//!
//! A member is alive while its last heartbeat is younger than the timeout and
//! not `left`. A heartbeat's age counts from the older of its own timestamp and
//! the moment it was read, so records replayed from the topic's history at start
//! are not mistaken for live members (this assumes node clocks agree to well
//! within the timeout). A partition's owner is the alive member that claims it;
//! while a rebalance moves it, two may claim it: the most recent heartbeat wins.

use crate::plan::Plan;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use touchline_actors::status::{NodeStatus, PartitionState};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Not yet given an assignment by the consumer group.
    Joining,
    /// Some owned partition is still restoring.
    Restoring,
    /// Every owned partition is active.
    Active,
    /// Shut down cleanly; owns nothing.
    Left,
}

/// One owned partition's progress, as its owner reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionReport {
    pub partition: i32,
    pub state: String,
    pub consumed_offset: i64,
    pub end_offset: Option<i64>,
    pub lag: i64,
    #[serde(default)]
    pub watermark: Option<String>,
    /// Records per second the partition asks of its owner, smoothed
    /// (`load.rs`): what a load-based placement balances.
    #[serde(default)]
    pub load: f64,
}

impl PartitionReport {
    pub fn from_status(p: &touchline_actors::status::PartitionStatus) -> PartitionReport {
        let hw = p.high_watermark.load(Ordering::Relaxed);
        PartitionReport {
            partition: p.partition,
            state: p.state().as_str().to_string(),
            consumed_offset: p.next_offset.load(Ordering::Relaxed),
            end_offset: (hw >= 0).then_some(hw),
            lag: p.lag(),
            watermark: p.watermark().map(|w| w.to_string()),
            load: 0.0,
        }
    }
}

/// The record a node publishes (JSON, key = node id) every heartbeat interval
/// and whenever its assignment or a partition state changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node_id: String,
    pub http_addr: String,
    /// Consumer group and events topic: clusters sharing a members topic ignore each other.
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub topic: String,
    pub owned: Vec<i32>,
    #[serde(default)]
    pub standby: Vec<i32>,
    pub state: MemberState,
    pub ts_ms: i64,
    #[serde(default)]
    pub partitions: Vec<PartitionReport>,
    /// The placement this node follows (`cluster.placement = "load"`; the
    /// leader's is the one it computed; `plan.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
}

/// Who this node is, for building its heartbeats.
#[derive(Clone, Debug)]
pub struct Identity {
    pub node_id: String,
    pub http_addr: String,
    pub group: String,
    pub topic: String,
}

impl Heartbeat {
    /// This node's heartbeat now, from its live partition status.
    pub fn from_status(me: &Identity, status: &NodeStatus, ts_ms: i64) -> Heartbeat {
        let parts = status.all();
        let state = if !status.joined.load(Ordering::Relaxed) {
            MemberState::Joining
        } else if parts.iter().all(|p| p.state() == PartitionState::Active) {
            MemberState::Active
        } else {
            MemberState::Restoring
        };
        Heartbeat {
            node_id: me.node_id.clone(),
            http_addr: me.http_addr.clone(),
            group: me.group.clone(),
            topic: me.topic.clone(),
            owned: parts.iter().filter(|p| p.state() != PartitionState::Standby).map(|p| p.partition).collect(),
            standby: status.standby().into_keys().collect(),
            state,
            ts_ms,
            partitions: parts.iter().map(|p| PartitionReport::from_status(p)).collect(),
            plan: None,
        }
    }

    /// The final heartbeat of a clean shutdown.
    pub fn left(me: &Identity, ts_ms: i64) -> Heartbeat {
        Heartbeat {
            node_id: me.node_id.clone(),
            http_addr: me.http_addr.clone(),
            group: me.group.clone(),
            topic: me.topic.clone(),
            owned: Vec::new(),
            standby: Vec::new(),
            state: MemberState::Left,
            ts_ms,
            partitions: Vec::new(),
            plan: None,
        }
    }

    /// What, when it changes, is published at once (offsets move constantly; they wait for the tick).
    pub fn signature(&self) -> (Vec<i32>, Vec<i32>, MemberState, Vec<String>) {
        (self.owned.clone(), self.standby.clone(), self.state, self.partitions.iter().map(|p| p.state.clone()).collect())
    }

    pub fn report(&self, partition: i32) -> Option<&PartitionReport> {
        self.partitions.iter().find(|r| r.partition == partition)
    }
}

#[derive(Clone, Debug)]
struct Entry {
    hb: Heartbeat,
    seen_ms: i64,
}

impl Entry {
    /// Age counted from the older of the sender's timestamp and our read time.
    fn age(&self, now_ms: i64) -> i64 {
        now_ms - self.hb.ts_ms.min(self.seen_ms)
    }
    fn alive(&self, now_ms: i64, timeout_ms: i64) -> bool {
        self.hb.state != MemberState::Left && self.age(now_ms) < timeout_ms
    }
}

/// A member as the table sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberView {
    pub heartbeat: Heartbeat,
    pub alive: bool,
}

/// The latest heartbeat per node of one cluster (group + events topic).
#[derive(Clone, Debug)]
pub struct MemberTable {
    group: String,
    topic: String,
    timeout_ms: i64,
    /// Members silent for longer are forgotten (not just dead).
    forget_after_ms: i64,
    entries: BTreeMap<String, Entry>,
}

impl MemberTable {
    pub fn new(group: &str, topic: &str, timeout_ms: i64) -> MemberTable {
        MemberTable { group: group.into(), topic: topic.into(), timeout_ms, forget_after_ms: timeout_ms.saturating_mul(60), entries: BTreeMap::new() }
    }

    /// Records `hb` read at `now_ms`; `false` when it belongs to another cluster
    /// or is older than what the table holds for that node.
    pub fn observe(&mut self, hb: Heartbeat, now_ms: i64) -> bool {
        if hb.group != self.group || hb.topic != self.topic || hb.node_id.is_empty() {
            return false;
        }
        if self.entries.get(&hb.node_id).is_some_and(|e| e.hb.ts_ms > hb.ts_ms) {
            return false;
        }
        self.entries.insert(hb.node_id.clone(), Entry { hb, seen_ms: now_ms });
        let horizon = self.forget_after_ms;
        self.entries.retain(|_, e| e.age(now_ms) < horizon);
        true
    }

    pub fn is_alive(&self, node_id: &str, now_ms: i64) -> bool {
        self.entries.get(node_id).is_some_and(|e| e.alive(now_ms, self.timeout_ms))
    }

    /// Every known member, by node id.
    pub fn members(&self, now_ms: i64) -> Vec<MemberView> {
        self.entries.values().map(|e| MemberView { heartbeat: e.hb.clone(), alive: e.alive(now_ms, self.timeout_ms) }).collect()
    }

    /// The ids of the alive members, ascending.
    pub fn alive_ids(&self, now_ms: i64) -> Vec<String> {
        self.entries.values().filter(|e| e.alive(now_ms, self.timeout_ms)).map(|e| e.hb.node_id.clone()).collect()
    }

    /// The plans the alive members publish.
    pub fn plans(&self, now_ms: i64) -> Vec<Plan> {
        self.entries.values().filter(|e| e.alive(now_ms, self.timeout_ms)).filter_map(|e| e.hb.plan.clone()).collect()
    }

    /// An alive member other than `me` claiming `partition`, if any.
    pub fn claimed_elsewhere(&self, partition: i32, me: &str, now_ms: i64) -> Option<&str> {
        self.entries
            .values()
            .find(|e| e.hb.node_id != me && e.alive(now_ms, self.timeout_ms) && e.hb.owned.contains(&partition))
            .map(|e| e.hb.node_id.as_str())
    }

    /// The alive member claiming `partition` (most recent heartbeat first, then node id).
    pub fn owner(&self, partition: i32, now_ms: i64) -> Option<&Heartbeat> {
        self.entries
            .values()
            .filter(|e| e.alive(now_ms, self.timeout_ms) && e.hb.owned.contains(&partition))
            .max_by(|a, b| (a.hb.ts_ms, &a.hb.node_id).cmp(&(b.hb.ts_ms, &b.hb.node_id)))
            .map(|e| &e.hb)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(node: &str, owned: &[i32], ts_ms: i64) -> Heartbeat {
        let me = Identity { node_id: node.into(), http_addr: format!("{node}:80"), group: "g".into(), topic: "t".into() };
        Heartbeat { owned: owned.to_vec(), state: MemberState::Active, ..Heartbeat::left(&me, ts_ms) }
    }

    fn owner(t: &MemberTable, p: i32, now: i64) -> Option<&str> {
        t.owner(p, now).map(|h| h.node_id.as_str())
    }

    #[test]
    fn claimed_elsewhere_ignores_me_dead_and_left() {
        let mut t = MemberTable::new("g", "t", 5000);
        t.observe(hb("a", &[0], 1000), 1000);
        t.observe(hb("b", &[0, 1], 1000), 1000);
        assert_eq!(t.claimed_elsewhere(1, "a", 1000), Some("b"));
        assert_eq!(t.claimed_elsewhere(1, "b", 1000), None);
        assert_eq!(t.claimed_elsewhere(2, "a", 1000), None);
        assert_eq!(t.claimed_elsewhere(1, "a", 6000), None, "dead members claim nothing");
    }

    #[test]
    fn alive_until_the_timeout() {
        let mut t = MemberTable::new("g", "t", 5000);
        assert!(t.observe(hb("a", &[0], 1000), 1000));
        assert!(t.is_alive("a", 5999));
        assert!(!t.is_alive("a", 6000));
        assert_eq!(owner(&t, 0, 5999), Some("a"));
        assert_eq!(owner(&t, 0, 6000), None);
        assert!(!t.is_alive("nobody", 1000));
    }

    #[test]
    fn replayed_history_is_not_alive() {
        // A heartbeat written long ago and read now (topic replay at start).
        let mut t = MemberTable::new("g", "t", 5000);
        t.observe(hb("a", &[0], 1000), 60_000);
        assert!(!t.is_alive("a", 60_000));
        assert_eq!(owner(&t, 0, 60_000), None);
        assert_eq!(t.members(60_000).len(), 1);
    }

    #[test]
    fn a_sender_clock_ahead_counts_from_the_read_time() {
        let mut t = MemberTable::new("g", "t", 5000);
        t.observe(hb("a", &[0], 100_000), 1000);
        assert!(t.is_alive("a", 5999));
        assert!(!t.is_alive("a", 6000));
    }

    #[test]
    fn left_is_not_alive_and_owns_nothing() {
        let mut t = MemberTable::new("g", "t", 5000);
        t.observe(hb("a", &[0, 1], 1000), 1000);
        let me = Identity { node_id: "a".into(), http_addr: "a:80".into(), group: "g".into(), topic: "t".into() };
        t.observe(Heartbeat::left(&me, 1500), 1500);
        assert!(!t.is_alive("a", 1600));
        assert_eq!(owner(&t, 0, 1600), None);
        let m = t.members(1600);
        assert_eq!(m.len(), 1);
        assert!(!m[0].alive);
        // A restart after leaving is alive again.
        t.observe(hb("a", &[0], 2000), 2000);
        assert_eq!(owner(&t, 0, 2100), Some("a"));
    }

    #[test]
    fn older_heartbeats_never_replace_newer_ones() {
        let mut t = MemberTable::new("g", "t", 5000);
        assert!(t.observe(hb("a", &[1], 2000), 2000));
        assert!(!t.observe(hb("a", &[0], 1000), 2001));
        assert_eq!(owner(&t, 1, 2002), Some("a"));
        assert_eq!(owner(&t, 0, 2002), None);
    }

    #[test]
    fn on_conflict_the_most_recent_heartbeat_wins() {
        let mut t = MemberTable::new("g", "t", 5000);
        t.observe(hb("a", &[0, 1], 1000), 1000);
        t.observe(hb("b", &[1, 2], 1200), 1200);
        assert_eq!(owner(&t, 0, 1300), Some("a"));
        assert_eq!(owner(&t, 1, 1300), Some("b"));
        assert_eq!(owner(&t, 2, 1300), Some("b"));
        // a heartbeats again still claiming 1: now a is the most recent.
        t.observe(hb("a", &[0, 1], 1400), 1400);
        assert_eq!(owner(&t, 1, 1500), Some("a"));
        // a falls silent while b keeps heartbeating: b's claim stands alone.
        t.observe(hb("b", &[1, 2], 5000), 5000);
        assert_eq!(owner(&t, 1, 6500), Some("b"));
        assert_eq!(owner(&t, 0, 6500), None);
        // Equal timestamps: the node id decides, deterministically.
        let mut t = MemberTable::new("g", "t", 5000);
        t.observe(hb("a", &[3], 1000), 1000);
        t.observe(hb("b", &[3], 1000), 1000);
        assert_eq!(owner(&t, 3, 1000), Some("b"));
    }

    #[test]
    fn alive_ids_and_plans_come_from_alive_members_only() {
        let mut t = MemberTable::new("g", "t", 5000);
        let plan = |epoch| Plan { epoch, leader: "a".into(), owners: vec!["a".into()], loads: vec![1.0] };
        t.observe(Heartbeat { plan: Some(plan(3)), ..hb("a", &[0], 1000) }, 1000);
        t.observe(Heartbeat { plan: Some(plan(2)), ..hb("b", &[], 4000) }, 4000);
        t.observe(hb("c", &[], 4000), 4000);
        assert_eq!(t.alive_ids(4000), ["a", "b", "c"]);
        assert_eq!(t.plans(4000).iter().map(|p| p.epoch).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(t.alive_ids(6500), ["b", "c"], "a timed out");
        assert_eq!(t.plans(6500).iter().map(|p| p.epoch).collect::<Vec<_>>(), [2]);
        let back: Heartbeat = serde_json::from_slice(&serde_json::to_vec(&Heartbeat { plan: Some(plan(7)), ..hb("a", &[0], 1) }).unwrap()).unwrap();
        assert_eq!(back.plan, Some(plan(7)), "the plan travels in the heartbeat");
    }

    #[test]
    fn other_clusters_are_ignored() {
        let mut t = MemberTable::new("g", "t", 5000);
        let mut other = hb("x", &[0], 1000);
        other.group = "other".into();
        assert!(!t.observe(other, 1000));
        let mut other = hb("y", &[0], 1000);
        other.topic = "other".into();
        assert!(!t.observe(other, 1000));
        assert!(t.members(1000).is_empty());
    }

    #[test]
    fn long_silent_members_are_forgotten() {
        let mut t = MemberTable::new("g", "t", 1000);
        t.observe(hb("a", &[0], 0), 0);
        t.observe(hb("b", &[1], 30_000), 30_000);
        assert_eq!(t.members(30_000).len(), 2);
        t.observe(hb("b", &[1], 61_000), 61_000);
        let ids: Vec<String> = t.members(61_000).into_iter().map(|m| m.heartbeat.node_id).collect();
        assert_eq!(ids, ["b"]);
    }

    #[test]
    fn heartbeat_json_round_trips_and_tolerates_missing_optional_fields() {
        let h = hb("a", &[0, 2], 5);
        let back: Heartbeat = serde_json::from_slice(&serde_json::to_vec(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        let minimal: Heartbeat = serde_json::from_str(r#"{"node_id":"n","http_addr":"h:1","owned":[1],"state":"active","ts_ms":9}"#).unwrap();
        assert_eq!(minimal.owned, [1]);
        assert!(minimal.standby.is_empty() && minimal.partitions.is_empty());
        assert_eq!(serde_json::to_value(MemberState::Left).unwrap(), "left");
    }

    #[test]
    fn from_status_reports_owned_partitions_and_state() {
        let me = Identity { node_id: "n".into(), http_addr: "h:1".into(), group: "g".into(), topic: "t".into() };
        let status = NodeStatus::default();
        assert_eq!(Heartbeat::from_status(&me, &status, 1).state, MemberState::Joining);
        status.joined.store(true, Ordering::Relaxed);
        let p = status.get_or_insert(3);
        p.next_offset.store(7, Ordering::Relaxed);
        p.high_watermark.store(10, Ordering::Relaxed);
        let h = Heartbeat::from_status(&me, &status, 1);
        assert_eq!(h.state, MemberState::Restoring);
        assert_eq!(h.owned, [3]);
        assert_eq!(
            h.partitions[0],
            PartitionReport { partition: 3, state: "restoring".into(), consumed_offset: 7, end_offset: Some(10), lag: 3, watermark: None, load: 0.0 }
        );
        p.set_state(PartitionState::Active);
        let h2 = Heartbeat::from_status(&me, &status, 2);
        assert_eq!(h2.state, MemberState::Active);
        assert_ne!(h.signature(), h2.signature());
    }
}

//! `GET /v1/cluster`: the members from the membership table (this node's own
//! entry from its live status), and every partition of the events topic with
//! its owner, state and progress — local partitions from live status (with the
//! storage error of a partition stalled on a failing write), the
//! others from their owner's last heartbeat (at most one interval old); and
//! this node's warm standbys with the source offset each has applied.

use super::AppState;
use serde::Serialize;
use std::sync::atomic::Ordering;
use touchline_cluster::membership::{MemberState, PartitionReport};

/// `GET /v1/cluster`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterAnswer {
    /// The node that answered.
    pub node_id: String,
    /// The events topic's partition count (0 before metadata is loaded).
    pub topic_partitions: i32,
    pub members: Vec<Member>,
    pub partitions: Vec<PartitionView>,
    /// This node's warm standbys.
    pub standby: Vec<Standby>,
    /// `cluster.placement = "load"`: the epoch of the placement in force
    /// (grows with every change its leader makes); null under `group`.
    pub placement_epoch: Option<u64>,
}

/// One member from the membership table.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub node_id: String,
    pub http_addr: String,
    /// Owned partitions.
    pub partitions: Vec<i32>,
    /// Partitions it keeps a warm standby of.
    pub standby: Vec<i32>,
    /// `joining`, `restoring`, `active` or `left`.
    #[schema(value_type = String, pattern = "^(joining|restoring|active|left)$")]
    pub state: MemberState,
    pub alive: bool,
}

/// One partition of the events topic (null fields: no owner reported it).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PartitionView {
    pub partition: i32,
    pub owner: Option<String>,
    pub state: Option<String>,
    pub consumed_offset: Option<i64>,
    pub end_offset: Option<i64>,
    pub lag: Option<i64>,
    pub watermark: Option<String>,
    /// Partitions owned here only: the failing storage write it is stalled on (null: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub storage_error: Option<Option<String>>,
}

/// A warm standby and the source offset it has applied.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Standby {
    pub partition: i32,
    pub consumed_offset: i64,
}

fn partition_view(partition: i32, owner: Option<&str>, r: Option<&PartitionReport>) -> PartitionView {
    PartitionView {
        partition,
        owner: owner.map(str::to_string),
        state: r.map(|r| r.state.clone()),
        consumed_offset: r.map(|r| r.consumed_offset),
        end_offset: r.and_then(|r| r.end_offset),
        lag: r.map(|r| r.lag),
        watermark: r.and_then(|r| r.watermark.clone()),
        storage_error: None,
    }
}

pub fn view(state: &AppState) -> ClusterAnswer {
    let members = state.forward.members.members();
    let n = state.status.topic_partitions.load(Ordering::Relaxed) as i32;
    let local = state.status.all();
    let numbers: Vec<i32> = if n > 0 { (0..n).collect() } else { local.iter().map(|p| p.partition).collect() };
    let partitions = numbers
        .into_iter()
        .map(|p| match state.status.get(p) {
            Some(st) => PartitionView { storage_error: Some(st.storage_error()), ..partition_view(p, Some(&state.node_id), Some(&PartitionReport::from_status(&st))) },
            None => match state.forward.members.owner(p).filter(|h| h.node_id != state.node_id) {
                Some(hb) => partition_view(p, Some(&hb.node_id), hb.report(p)),
                None => partition_view(p, None, None),
            },
        })
        .collect();
    let members = members
        .iter()
        .map(|m| {
            let h = &m.heartbeat;
            Member { node_id: h.node_id.clone(), http_addr: h.http_addr.clone(), partitions: h.owned.clone(), standby: h.standby.clone(), state: h.state, alive: m.alive }
        })
        .collect();
    // This node's warm standbys and how far each has applied its partition's
    // changelog (the source offset of the last batch it holds).
    let standby = state.status.standby().into_iter().map(|(partition, consumed_offset)| Standby { partition, consumed_offset }).collect();
    let placement_epoch = state.forward.members.plan_in_force().map(|p| p.epoch);
    ClusterAnswer { node_id: state.node_id.clone(), topic_partitions: n, members, partitions, standby, placement_epoch }
}

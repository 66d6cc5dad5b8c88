//! `GET /v1/cluster`: the members from the membership table (this node's own
//! entry from its live status), and every partition of the events topic with
//! its owner, state and progress — local partitions from live status (with the
//! storage error of a partition stalled on a failing write), the
//! others from their owner's last heartbeat (at most one interval old); and
//! this node's warm standbys with the source offset each has applied.

use super::AppState;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use touchline_cluster::membership::PartitionReport;

fn partition_json(partition: i32, owner: Option<&str>, r: Option<&PartitionReport>) -> Value {
    json!({
        "partition": partition, "owner": owner, "state": r.map(|r| r.state.as_str()),
        "consumed_offset": r.map(|r| r.consumed_offset), "end_offset": r.and_then(|r| r.end_offset),
        "lag": r.map(|r| r.lag), "watermark": r.and_then(|r| r.watermark.as_deref()),
    })
}

pub fn view(state: &AppState) -> Value {
    let members = state.forward.members.members();
    let n = state.status.topic_partitions.load(Ordering::Relaxed) as i32;
    let local = state.status.all();
    let numbers: Vec<i32> = if n > 0 { (0..n).collect() } else { local.iter().map(|p| p.partition).collect() };
    let partitions: Vec<Value> = numbers
        .into_iter()
        .map(|p| match state.status.get(p) {
            Some(st) => {
                let mut v = partition_json(p, Some(&state.node_id), Some(&PartitionReport::from_status(&st)));
                v["storage_error"] = json!(st.storage_error());
                v
            }
            None => match state.forward.members.owner(p).filter(|h| h.node_id != state.node_id) {
                Some(hb) => partition_json(p, Some(&hb.node_id), hb.report(p)),
                None => partition_json(p, None, None),
            },
        })
        .collect();
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            let h = &m.heartbeat;
            json!({"node_id": h.node_id, "http_addr": h.http_addr, "partitions": h.owned, "standby": h.standby, "state": h.state, "alive": m.alive})
        })
        .collect();
    // This node's warm standbys and how far each has applied its partition's
    // changelog (the source offset of the last batch it holds).
    let standby: Vec<Value> = state.status.standby().into_iter().map(|(p, next)| json!({"partition": p, "consumed_offset": next})).collect();
    json!({"node_id": state.node_id, "topic_partitions": n, "members": members, "partitions": partitions, "standby": standby})
}

//! Warm standbys: each node tails, with one group-less consumer, the changelog
//! partitions it is a standby for — the `cluster.standby_replicas` alive
//! members that win [`standbys`] for the partition, its owner excluded — and
//! applies their complete batches to local RocksDB (checkpoint included). When
//! the node is later assigned such a partition, its restore starts at the local
//! changelog position: only the last records are read (a warm failover).
//!
//! The standby and a restore never write one partition concurrently: both
//! take the node's state gate, and the standby applies a batch only while the
//! partition is not owned here (the intake registers ownership before its
//! restore takes the gate).

use crate::batches::{standbys, Assembler};
use crate::changelog::{assign, fetched_end, reader, ChangelogConfig};
use crate::heartbeat::Members;
use crate::ClusterError;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use touchline_actors::metrics;
use touchline_actors::status::NodeStatus;
use touchline_storage::Store;

/// Serializes standby writes with restores (see the module doc).
pub type StateGate = Arc<Mutex<()>>;

/// Tailed partitions: reassembly buffer and next changelog offset.
type Tailing = BTreeMap<i32, (Assembler, i64)>;

/// Partitions this node should tail now.
fn desired(members: &Members, status: &NodeStatus, replicas: usize) -> BTreeSet<i32> {
    let n = status.topic_partitions.load(std::sync::atomic::Ordering::Relaxed) as i32;
    let alive: Vec<String> = members.members().into_iter().filter(|m| m.alive).map(|m| m.heartbeat.node_id).collect();
    (0..n)
        .filter(|p| status.get(*p).is_none())
        .filter(|p| {
            let owner = members.owner(*p).map(|h| h.node_id);
            standbys(*p, owner.as_deref(), &alive, replicas).contains(&members.node_id())
        })
        .collect()
}

/// Runs until `stop` flips; a no-op with `replicas == 0`.
pub async fn run_standby(cfg: ChangelogConfig, replicas: usize, store: Store, status: Arc<NodeStatus>, members: Members, gate: StateGate, mut stop: watch::Receiver<bool>) {
    if replicas == 0 {
        return;
    }
    let consumer = match reader(&cfg, "standby") {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "standby: cannot create the changelog reader; no warm standbys on this node");
            return;
        }
    };
    let mut tailing = Tailing::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
            _ = tick.tick() => {
                let want = desired(&members, &status, replicas);
                if want.iter().ne(tailing.keys()) {
                    if let Err(e) = retarget(&cfg, &consumer, &store, &status, &gate, &mut tailing, want).await {
                        metrics::changelog_error();
                        tracing::error!(error = %e, "standby: re-assignment failed; retried next second");
                        tailing.clear();
                    }
                }
                for (p, (_, pos)) in &tailing {
                    if let Some(end) = fetched_end(&consumer, &cfg.topic, *p) {
                        metrics::standby_lag(*p, (end - pos).max(0));
                    }
                }
            }
            m = consumer.recv(), if !tailing.is_empty() => match m {
                Ok(m) => {
                    let p = m.partition();
                    if let Err(e) = apply(&store, &status, &gate, &mut tailing, p, m.offset(), m.key().unwrap_or_default(), m.payload()).await {
                        metrics::changelog_error();
                        tracing::error!(partition = p, error = %e, "standby: stopped tailing the partition; restarted from its local position next second");
                        tailing.remove(&p);
                        stop_tailing(&status, p);
                    }
                }
                Err(e) => {
                    metrics::changelog_error();
                    tracing::warn!(error = %e, "standby: changelog read error");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => break,
                    }
                }
            },
        }
    }
    for p in std::mem::take(&mut tailing).into_keys() {
        stop_tailing(&status, p);
    }
    tokio::task::spawn_blocking(move || drop(consumer));
}

/// `p` is no longer tailed here: its standby state and lag gauge go (a stale
/// lag would keep a "standby lagging" alert firing for a partition now owned).
fn stop_tailing(status: &NodeStatus, p: i32) {
    status.remove_standby(p);
    metrics::standby_lag(p, 0);
}

/// Feeds one record; a completed batch is applied unless the partition became owned here.
#[allow(clippy::too_many_arguments)]
async fn apply(store: &Store, status: &NodeStatus, gate: &StateGate, tailing: &mut Tailing, p: i32, offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<(), ClusterError> {
    let Some((asm, pos)) = tailing.get_mut(&p) else { return Ok(()) };
    *pos = offset + 1;
    let batch = asm.push(offset, key, value).map_err(|e| ClusterError::Topic { topic: "changelog".into(), detail: e.to_string() })?;
    let Some(batch) = batch else { return Ok(()) };
    let _g = gate.lock().await;
    if status.get(p).is_some() {
        tailing.remove(&p);
        stop_tailing(status, p);
        return Ok(());
    }
    store.apply_entries(&batch.entries, Some((p as u16, batch.checkpoint)))?;
    metrics::restored_records(batch.entries.len() as u64 + 1, batch.bytes);
    status.set_standby(p, batch.checkpoint.next_offset);
    Ok(())
}

/// Re-assigns the consumer to `want`, each partition from its local changelog position.
async fn retarget(cfg: &ChangelogConfig, consumer: &StreamConsumer, store: &Store, status: &NodeStatus, gate: &StateGate, tailing: &mut Tailing, want: BTreeSet<i32>) -> Result<(), ClusterError> {
    for p in tailing.keys().filter(|p| !want.contains(p)) {
        stop_tailing(status, *p);
    }
    tailing.clear();
    let mut starts = Vec::new();
    for p in want {
        let _g = gate.lock().await;
        if status.get(p).is_some() {
            continue;
        }
        let cp = store.checkpoint(p as u16)?;
        let mut start = cp.map_or(0, |c| c.changelog_next);
        if cp.is_some_and(|c| c.next_offset > 0 && c.changelog_next == 0) {
            // Local state from before the changelog: replaced by the changelog's.
            store.drop_partition(p as u16)?;
            start = 0;
        }
        status.set_standby(p, cp.map_or(0, |c| c.next_offset));
        tailing.insert(p, (Assembler::new(p as u16), start));
        starts.push((p, start));
    }
    if starts.is_empty() {
        consumer.unassign()?;
    } else {
        assign(consumer, &cfg.topic, &starts)?;
    }
    tracing::info!(partitions = ?tailing.keys().collect::<Vec<_>>(), "standby: tailing");
    Ok(())
}

//! Restore on assign, the I/O part. A newly assigned partition is paused in the
//! rebalance callback and restored here, in a task (never inside librdkafka's
//! poll): first wait until no other alive member still claims it (its previous
//! owner drains its last batch — two writers must never interleave in one
//! changelog partition), then read its changelog partition from the local
//! changelog position to the end reported by the fetch response, applying each
//! complete batch atomically with its checkpoint, and compensate an incomplete
//! tail (see `touchline_actors::changelog`). The intake then seeks the events
//! partition to the restored checkpoint and resumes it.
//!
//! A peer's snapshot goes first when it saves enough changelog records (see
//! [`crate::snapshot`]): a failed transfer only costs the time it took, the
//! changelog is read from wherever the local state then stands.
//!
//! Sources: `local` (local state current, nothing to read), `snapshot` (a peer's
//! snapshot ingested, then the changelog after it), `changelog`
//! (records applied), `replay` (no state anywhere: the events topic is read
//! from the beginning, which assumes its retention still holds everything —
//! only true for a partition that never had a changelog). Local state written
//! before the changelog existed is published as one snapshot batch first, so
//! the changelog always starts from an empty state.

use crate::batches::{AssembleError, Assembler};
use crate::changelog::{assign, fetched_end, reader, ChangelogConfig};
use crate::heartbeat::Members;
use crate::snapshot::Snapshots;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};
use touchline_actors::changelog::{compensate, marker_value, Entries, SharedSink};
use touchline_actors::metrics;
use touchline_storage::{keys, Checkpoint, Store};

/// Longest wait for the first fetch response of a changelog partition.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for another member to stop claiming the partition.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Cluster(#[from] crate::ClusterError),
    #[error("storage: {0}")]
    Storage(#[from] touchline_storage::StorageError),
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    #[error("changelog partition {0}: no fetch response within {FETCH_TIMEOUT:?}")]
    NoFetch(i32),
    #[error("changelog: {0}")]
    Publish(String),
}

/// The outcome of one partition's restore.
#[derive(Clone, Copy, Debug)]
pub struct Restored {
    pub checkpoint: Checkpoint,
    pub source: &'static str,
    pub records: u64,
    pub bytes: u64,
}

/// Waits (bounded) until no other alive member claims `partition`.
pub async fn wait_unclaimed(members: &Members, partition: i32) {
    let until = Instant::now() + CLAIM_TIMEOUT;
    let mut logged = false;
    while let Some(other) = members.claimed_elsewhere(partition) {
        if Instant::now() >= until {
            tracing::warn!(partition, other, "still claimed by another member after {CLAIM_TIMEOUT:?}; restoring anyway");
            return;
        }
        if !logged {
            tracing::info!(partition, other, "waiting for the previous owner to hand the partition off");
            logged = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Restores `partition` into `store` from its changelog (see the module doc).
pub async fn restore(cfg: &ChangelogConfig, store: &Store, sink: &SharedSink, snapshots: Option<&Snapshots>, partition: i32) -> Result<Restored, RestoreError> {
    let started = Instant::now();
    let p16 = partition as u16;
    let mut local = store.checkpoint(p16)?;
    let mut from_snapshot = 0u64;
    if let Some(s) = snapshots {
        if let Some((cp, bytes)) = ingest_peer_snapshot(s, store, partition, local).await {
            (local, from_snapshot) = (Some(cp), bytes);
        }
    }
    let had_state = local.is_some_and(|c| c.next_offset > 0);
    let mut start = local.map_or(0, |c| c.changelog_next);
    let consumer = reader(cfg, "restore")?;
    assign(&consumer, &cfg.topic, &[(partition, start)])?;
    let mut asm = Assembler::new(p16);
    let (mut records, mut bytes, mut pos) = (0u64, 0u64, start);
    // Local state not reflected in the changelog cannot be extended by it.
    let mut pre_changelog = had_state && start == 0;
    loop {
        let end = fetched_end(&consumer, &cfg.topic, partition);
        if let Some(end) = end {
            metrics::restore_remaining(partition, (end - pos).max(0) as u64);
            if pos >= end {
                break;
            }
        }
        let m = match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
            Err(_) if end.is_none() && started.elapsed() > FETCH_TIMEOUT => return Err(RestoreError::NoFetch(partition)),
            Err(_) => continue,
            Ok(Err(KafkaError::PartitionEOF(_))) => continue,
            Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange))) if start > 0 => {
                // The changelog is shorter than our position (recreated topic):
                // our local state belongs to another history.
                tracing::warn!(partition, start, "local changelog position is past the changelog's end; restoring from the beginning");
                store.drop_partition(p16)?;
                (start, pos, pre_changelog) = (0, 0, false);
                asm = Assembler::new(p16);
                assign(&consumer, &cfg.topic, &[(partition, 0)])?;
                continue;
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(m)) => m,
        };
        if pre_changelog {
            tracing::warn!(partition, "local state predates the changelog; dropping it and restoring from the changelog");
            store.drop_partition(p16)?;
            pre_changelog = false;
        }
        pos = m.offset() + 1;
        if let Some(batch) = asm.push(m.offset(), m.key().unwrap_or_default(), m.payload())? {
            records += batch.entries.len() as u64 + 1;
            bytes += batch.bytes;
            metrics::restored_records(batch.entries.len() as u64 + 1, batch.bytes);
            store.apply_entries(&batch.entries, Some((p16, batch.checkpoint)))?;
        }
    }
    metrics::restore_remaining(partition, 0);
    let tail = asm.tail_keys();
    if !tail.is_empty() {
        tracing::warn!(partition, keys = tail.len(), "changelog ends with an incomplete batch (a crashed owner); compensating it");
        compensate(sink, store, p16, tail).await;
    }
    if pre_changelog {
        snapshot(store, sink, p16).await?;
    }
    let checkpoint = store.checkpoint(p16)?.unwrap_or_default();
    let source = if from_snapshot > 0 {
        "snapshot"
    } else if records > 0 {
        "changelog"
    } else if checkpoint.next_offset > 0 {
        "local"
    } else {
        "replay"
    };
    let secs = started.elapsed().as_secs_f64();
    metrics::restore_rate(partition, if secs > 0.0 { records as f64 / secs } else { 0.0 });
    metrics::restore_done(source, started.elapsed());
    tracing::info!(partition, source, records, bytes, secs, next_offset = checkpoint.next_offset, "partition restored");
    drop_consumer(consumer);
    Ok(Restored { checkpoint, source, records, bytes })
}

/// Fetches and ingests the best peer snapshot of `partition` when it is at
/// least `min_records` changelog records ahead of `local`; its checkpoint and
/// size on success. Failures are counted and logged: the changelog takes over.
async fn ingest_peer_snapshot(s: &Snapshots, store: &Store, partition: i32, local: Option<Checkpoint>) -> Option<(Checkpoint, u64)> {
    let have = local.map_or(0, |c| c.changelog_next);
    let result = async {
        let Some(fetched) = s.source.fetch(partition, have + s.min_records.max(1)).await? else { return Ok(None) };
        let (store2, path) = (store.clone(), fetched.path.clone());
        let ingested = tokio::task::spawn_blocking(move || store2.ingest_partition(partition as u16, &path)).await;
        let _ = std::fs::remove_file(&fetched.path);
        let cp = ingested.map_err(|e| format!("ingestion task: {e}"))?.map_err(|e| format!("ingestion: {e}"))?;
        Ok::<_, String>(Some((cp, fetched)))
    };
    match result.await {
        Ok(Some((cp, fetched))) => {
            metrics::snapshot_bytes("received", fetched.bytes);
            tracing::info!(partition, from = %fetched.from_node, bytes = fetched.bytes, changelog_next = cp.changelog_next, "ingested a peer snapshot");
            Some((cp, fetched.bytes))
        }
        Ok(None) => None,
        Err(e) => {
            metrics::snapshot_error();
            tracing::warn!(partition, error = %e, "peer snapshot failed; restoring from the changelog");
            None
        }
    }
}

/// Publishes the partition's whole local state as one batch (the changelog of a
/// partition whose state predates it would otherwise start mid-history).
async fn snapshot(store: &Store, sink: &SharedSink, p: u16) -> Result<(), RestoreError> {
    let (s, e) = keys::partition_range(p);
    let mark = Store::checkpoint_key(p);
    let mut entries = Entries::new();
    store.scan(&s, &e, |k, v| {
        if k != mark.as_slice() {
            entries.push((k.to_vec(), Some(v.to_vec())));
        }
        true
    })?;
    let cp = store.checkpoint(p)?.unwrap_or_default();
    let n = entries.len();
    let off = sink.write(p, Arc::new(entries), marker_value(&cp).map_err(RestoreError::Publish)?).await.map_err(RestoreError::Publish)?;
    store.apply_entries(&[], Some((p, Checkpoint { changelog_next: off + 1, ..cp })))?;
    tracing::info!(partition = p, keys = n, "published a snapshot of pre-changelog local state");
    Ok(())
}

/// librdkafka's destructor can block briefly (closing connections): off the runtime.
fn drop_consumer(c: StreamConsumer) {
    tokio::task::spawn_blocking(move || drop(c));
}

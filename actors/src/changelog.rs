//! The changelog seam: every committed batch is first published to the
//! partition's changelog (its RocksDB writes in key order, `None` = delete,
//! then ONE marker record — the partition checkpoint under its own key) and only
//! then committed locally, so local state is never ahead of the changelog. The
//! Kafka producer behind [`ChangelogSink`] lives in `cluster`.
//!
//! Abandoned batches: when publishing or the local commit fails after records may
//! have reached the changelog, [`compensate`] re-publishes the committed value
//! of every key the batch touched, then a marker of the current checkpoint. A
//! restore applies records in order up to the last marker, so abandoned writes
//! are always overwritten before the next marker (a new owner compensates a
//! crashed owner's tail the same way, see `cluster::restore`).
//! Because every local commit follows its changelog acknowledgement, the
//! commit skips RocksDB's write-ahead log by default (as Kafka Streams does):
//! a crash only loses state the changelog holds (`StoreOptions::replicated_wal`).
//! The dead-letter outbox stays local (see [`replicated`] and `crate::dlq`).

use crate::metrics;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use touchline_storage::{codec, Checkpoint, Store, Txn};

/// A batch's writes in key order; `None` deletes.
pub use touchline_storage::Entries;

pub type ChangelogFuture = Pin<Box<dyn Future<Output = Result<i64, String>> + Send>>;

pub trait ChangelogSink: Send + Sync + 'static {
    /// Produces `entries` and then `marker` (value of the partition's checkpoint
    /// key) to changelog partition `partition`, in order; resolves to the
    /// marker's offset once every record is acknowledged.
    fn write(&self, partition: u16, entries: Arc<Entries>, marker: Vec<u8>) -> ChangelogFuture;
}

pub type SharedSink = Arc<dyn ChangelogSink>;

/// The marker's value: the checkpoint without its changelog position (which is
/// only known once the marker is written; a restore sets it).
pub fn marker_value(cp: &Checkpoint) -> Result<Vec<u8>, String> {
    codec::encode(&Checkpoint { changelog_next: 0, ..*cp }).map_err(|e| e.to_string())
}

/// Publishes `txn`'s writes with the marker `cp`, then commits them locally with
/// `cp.changelog_next` set past the marker. Without a sink it only commits.
pub async fn commit_batch(sink: Option<&SharedSink>, txn: Txn, partition: u16, cp: Checkpoint) -> Result<Checkpoint, String> {
    let Some(sink) = sink else {
        txn.commit_replicated(Some((partition, cp))).map_err(|e| e.to_string())?;
        return Ok(cp);
    };
    // The batch is built once; its entries move to the producer, not copied.
    let prepared = txn.prepare();
    let entries = if prepared.entries().iter().all(|(k, _)| replicated(k)) {
        prepared.entries().clone()
    } else {
        Arc::new(prepared.entries().iter().filter(|(k, _)| replicated(k)).cloned().collect())
    };
    let n = entries.len() as u64 + 1;
    let marker_offset = match sink.write(partition, entries.clone(), marker_value(&cp)?).await {
        Ok(o) => o,
        Err(e) => {
            metrics::changelog_error();
            let store = prepared.store().clone();
            drop(prepared);
            compensate(sink, &store, partition, keys_of(&entries)).await;
            return Err(format!("changelog: {e}"));
        }
    };
    metrics::changelog_written(n);
    let cp = Checkpoint { changelog_next: marker_offset + 1, ..cp };
    let store = prepared.store().clone();
    if let Err(e) = prepared.commit_replicated(Some((partition, cp))) {
        compensate(sink, &store, partition, keys_of(&entries)).await;
        return Err(e.to_string());
    }
    Ok(cp)
}

fn keys_of(entries: &Entries) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

/// Whether a key travels through the changelog: everything but the dead-letter
/// outbox, whose entries are deleted locally once the DLQ acknowledged them (a
/// restored outbox would re-send every dead letter ever written on each
/// failover). An entry not yet acknowledged when its node crashed is re-sent
/// when that node's data directory comes back, not by the new owner.
pub fn replicated(key: &[u8]) -> bool {
    key.get(2) != Some(&(touchline_storage::keys::Space::Outbox as u8))
}

/// Re-publishes the committed value (or a delete) of each of `keys`, then the
/// current checkpoint as a marker; retries with backoff until acknowledged (the
/// partition cannot make progress without its changelog anyway).
pub async fn compensate(sink: &SharedSink, store: &Store, partition: u16, keys: Vec<Vec<u8>>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut entries = Entries::with_capacity(keys.len());
            for k in &keys {
                entries.push((k.clone(), store.get(k).map_err(|e| e.to_string())?));
            }
            let cp = store.checkpoint(partition).map_err(|e| e.to_string())?.unwrap_or_default();
            sink.write(partition, Arc::new(entries), marker_value(&cp)?).await
        };
        match attempt.await {
            Ok(_) => {
                tracing::info!(partition, keys = keys.len(), "changelog: abandoned writes compensated");
                return;
            }
            Err(e) => {
                metrics::changelog_error();
                tracing::error!(partition, error = %e, "changelog: compensation failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

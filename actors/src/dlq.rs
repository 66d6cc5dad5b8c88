//! The dead-letter seam and its transactional outbox.
//!
//! A rejected record is written to the partition's outbox in the same RocksDB
//! `WriteBatch` as the checkpoint that moves past it, then delivered to the
//! [`DlqSink`] in the background and deleted from the outbox once acknowledged.
//! So a rejected record is never lost (a crash re-sends the outbox on restart)
//! and never slows the partition (no broker round trip on the apply path). The
//! Kafka producer implementation of the sink lives in `cluster`.

use crate::domain::Reason;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use touchline_storage::keys::{KeyBuf, Space};
use touchline_storage::Store;
use std::pin::Pin;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqRecord {
    pub key: Option<Vec<u8>>,
    /// The original bytes, untouched.
    pub payload: Vec<u8>,
    pub reason: Reason,
    pub detail: String,
    pub source_partition: i32,
    pub source_offset: i64,
}

pub type DlqFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

pub trait DlqSink: Send + Sync + 'static {
    /// Starts the delivery; the future resolves once the broker acknowledged it.
    fn send(&self, record: DlqRecord) -> DlqFuture;
}

pub fn outbox_key(partition: u16, offset: i64) -> Vec<u8> {
    KeyBuf::space(partition, Space::Outbox).u64(offset as u64).into_vec()
}

/// Background delivery of committed outbox entries, bounded in flight.
#[derive(Clone)]
pub struct Outbox {
    sink: Arc<dyn DlqSink>,
    store: Store,
    permits: Arc<Semaphore>,
    /// Deleting delivered entries fails (storage down): logged once per episode.
    delete_failing: Arc<AtomicBool>,
}

impl Outbox {
    pub fn new(sink: Arc<dyn DlqSink>, store: Store, max_in_flight: usize) -> Outbox {
        Outbox { sink, store, permits: Arc::new(Semaphore::new(max_in_flight)), delete_failing: Arc::default() }
    }

    /// Delivers one committed entry; retries with backoff until acknowledged,
    /// then deletes it. Waits for a permit first (backpressure when the DLQ is slow).
    pub async fn deliver(&self, partition: u16, record: DlqRecord) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else { return };
        let (sink, store, delete_failing) = (self.sink.clone(), self.store.clone(), self.delete_failing.clone());
        tokio::spawn(async move {
            let key = outbox_key(partition, record.source_offset);
            let mut backoff = Duration::from_millis(100);
            loop {
                match sink.send(record.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(partition, offset = record.source_offset, error = %e, "DLQ delivery failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
            let mut t = store.txn();
            t.delete(key);
            match t.commit(None) {
                // The entry stays and is re-sent after a restart: at-least-once.
                Err(e) if !delete_failing.swap(true, Ordering::Relaxed) => {
                    tracing::warn!(partition, error = %e, "cannot delete delivered outbox entries (logged once until deletes succeed again)");
                }
                Err(_) => {}
                Ok(()) if delete_failing.swap(false, Ordering::Relaxed) => tracing::info!("deleting delivered outbox entries works again"),
                Ok(()) => {}
            }
            drop(permit);
        });
    }

    /// Re-sends every entry a previous run committed but did not see acknowledged.
    pub async fn resend_pending(&self, partition: u16) -> Result<usize, touchline_storage::StorageError> {
        let prefix = KeyBuf::space(partition, Space::Outbox).into_vec();
        let pending: Vec<DlqRecord> = self.store.prefix_as(&prefix)?;
        let n = pending.len();
        for r in pending {
            self.deliver(partition, r).await;
        }
        Ok(n)
    }
}

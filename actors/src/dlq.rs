//! The dead-letter seam and its transactional outbox.
//!
//! A rejected record is written to the partition's outbox, through RocksDB's
//! write-ahead log, just before the `WriteBatch` that moves the checkpoint past
//! it ([`Outbox::stage`]), then delivered to the [`DlqSink`] in the background
//! once that batch committed, and deleted from the outbox once acknowledged.
//! So a rejected record is never lost — a crash re-sends the outbox on restart,
//! also when the batch's state itself comes back from the changelog, which
//! never carries the outbox — and never slows the partition (no broker round
//! trip on the apply path). Staged entries of a batch that then failed are
//! staged again (same key) when it is retried. The Kafka producer
//! implementation of the sink lives in `cluster`.

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
    /// The original bytes, untouched (stored as one MessagePack `bin`, not an
    /// array of integers: encoding dead letters byte by byte, `too_large` ones
    /// included, cost 7 % of the apply path's instructions).
    #[serde(with = "bytes_or_seq")]
    pub payload: Vec<u8>,
    pub reason: Reason,
    pub detail: String,
    pub source_partition: i32,
    pub source_offset: i64,
}

/// `Vec<u8>` written as bytes; read from bytes or from the integer array that
/// outbox entries written before this encoding used.
mod bytes_or_seq {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    struct V;

    impl<'de> Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(b) = a.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(V)
    }
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

    /// Writes `records` to `partition`'s outbox durably (WAL), before the
    /// batch that rejected them commits.
    pub fn stage(&self, partition: u16, records: &[DlqRecord]) -> Result<(), touchline_storage::StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut t = self.store.txn();
        for d in records {
            t.put_as(outbox_key(partition, d.source_offset), d)?;
        }
        t.commit(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> DlqRecord {
        DlqRecord {
            key: Some(b"acme".to_vec()),
            payload: vec![0, 1, 0xff, b'{'],
            reason: Reason::TooLarge,
            detail: "too large".into(),
            source_partition: 3,
            source_offset: 42,
        }
    }

    #[test]
    fn payload_is_stored_as_bytes_and_old_integer_arrays_still_decode() {
        let r = rec();
        let b = touchline_storage::codec::encode(&r).unwrap();
        // One `bin 8` of 4 bytes, not an array of 4 integers.
        assert!(b.windows(6).any(|w| w == [0xc4, 4, 0, 1, 0xff, b'{']));
        assert_eq!(touchline_storage::codec::decode::<DlqRecord>(b"k", &b).unwrap(), r);

        /// The encoding before payloads were bytes.
        #[derive(Serialize)]
        struct Old<'a> {
            key: &'a Option<Vec<u8>>,
            payload: &'a Vec<u8>,
            reason: Reason,
            detail: &'a str,
            source_partition: i32,
            source_offset: i64,
        }
        let old = Old { key: &r.key, payload: &r.payload, reason: r.reason, detail: &r.detail, source_partition: 3, source_offset: 42 };
        let b = touchline_storage::codec::encode(&old).unwrap();
        assert!(!b.windows(2).any(|w| w == [0xc4, 4]));
        assert_eq!(touchline_storage::codec::decode::<DlqRecord>(b"k", &b).unwrap(), r);
    }
}

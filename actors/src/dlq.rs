//! The dead-letter seam: the partition actor hands every rejected record to a
//! [`DlqSink`] and waits for its delivery before committing past it, so a rejected
//! record is never lost. The Kafka producer implementation lives in `cluster`.

use crate::domain::Reason;
use std::future::Future;
use std::pin::Pin;

#[derive(Clone, Debug, PartialEq, Eq)]
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

//! The changelog topic (`touchline.changelog` by default): one partition per
//! events-topic partition, key = the RocksDB key (already partition-prefixed),
//! value = the value bytes, null = delete, and after each batch ONE marker
//! record under the partition's checkpoint key (see `touchline_actors::changelog`).
//!
//! Produced with the idempotent producer (ordering across retries; Tansu accepts
//! it) and acks=all. The topic is created compacted with `min.compaction.lag.ms`
//! of one hour: a restore needs every record after the last marker it applies
//! uncompacted, and an incomplete tail (a crashed batch) must not be compacted
//! into the records before it before a new owner compensated it (seconds). This
//! is for real, compacting brokers (Apache Kafka compacts within the tests:
//! tests/tests/changelog_restore.rs restores a compacted changelog exactly);
//! Tansu never compacts, and nothing here relies on compaction happening.

use crate::{admin, client_config, ClusterError};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use touchline_actors::changelog::{ChangelogFuture, ChangelogSink, Entries};
use touchline_storage::Store;

#[derive(Clone, Debug)]
pub struct ChangelogConfig {
    pub brokers: String,
    pub kafka_props: Vec<(String, String)>,
    pub topic: String,
    pub node_id: String,
}

/// Topic configs of a new changelog topic.
pub const TOPIC_CONFIG: [(&str, &str); 3] = [("cleanup.policy", "compact"), ("min.compaction.lag.ms", "3600000"), ("delete.retention.ms", "604800000")];

/// Creates the changelog topic with `partitions` unless it exists; its partition
/// count must equal the events topic's.
pub async fn ensure_topic(cfg: &ChangelogConfig, partitions: i32, create: bool) -> Result<(), ClusterError> {
    let n = if create {
        admin::ensure_topic_with_config(&cfg.brokers, &cfg.kafka_props, &cfg.topic, partitions, &TOPIC_CONFIG).await?
    } else {
        admin::partition_count(&cfg.brokers, &cfg.kafka_props, &cfg.topic).await?.unwrap_or(0)
    };
    if n != partitions {
        return Err(ClusterError::Topic { topic: cfg.topic.clone(), detail: format!("changelog topic has {n} partitions, the events topic {partitions}: they must be equal") });
    }
    Ok(())
}

/// The Kafka implementation of the changelog sink.
///
/// One delivery tracker per batch instead of a future per record: a batch is
/// ~4.6 records per event, and `FutureProducer` allocated a oneshot channel and
/// a boxed sender for each of them, then woke the batch once per record.
pub struct KafkaChangelog {
    producer: Arc<AckedProducer>,
    topic: String,
}

/// A producer whose deliveries report to their batch's [`BatchAck`].
pub(crate) type AckedProducer = ThreadedProducer<BatchDeliveries>;

/// Counts a batch's acknowledgements; the last one wakes the batch.
#[derive(Default)]
pub(crate) struct BatchAck {
    state: Mutex<AckState>,
    done: Notify,
}

#[derive(Default)]
struct AckState {
    remaining: usize,
    /// Highest acknowledged offset: the marker's, as it is produced last to the
    /// same partition by the idempotent (ordered) producer.
    last: i64,
    error: Option<String>,
}

impl BatchAck {
    fn delivered(&self, result: Result<i64, String>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(o) => s.last = s.last.max(o),
            Err(e) => {
                s.error.get_or_insert(e);
            }
        }
        s.remaining -= 1;
        if s.remaining == 0 {
            // A permit is kept if the batch is not waiting yet: no lost wake-up.
            self.done.notify_one();
        }
    }
}

/// The producer context: routes every delivery report to its batch.
pub(crate) struct BatchDeliveries;

impl ClientContext for BatchDeliveries {}

impl ProducerContext for BatchDeliveries {
    type DeliveryOpaque = Arc<BatchAck>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Arc<BatchAck>) {
        ack.delivered(match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.to_string()),
        });
    }
}

impl KafkaChangelog {
    pub fn new(cfg: &ChangelogConfig) -> Result<KafkaChangelog, ClusterError> {
        Ok(KafkaChangelog { producer: Arc::new(acked_producer(&cfg.brokers, &cfg.kafka_props, &format!("touchline-changelog-{}", cfg.node_id))?), topic: cfg.topic.clone() })
    }

    /// The producer (the results topic shares it: one ordered producer per node).
    pub(crate) fn producer(&self) -> Arc<AckedProducer> {
        self.producer.clone()
    }
}

/// The idempotent, acks=all producer of the changelog (and results) records.
pub(crate) fn acked_producer(brokers: &str, props: &[(String, String)], client_id: &str) -> Result<AckedProducer, ClusterError> {
    let mut c = client_config(brokers, &[]);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("queue.buffering.max.messages", "1000000")
        .set("client.id", client_id);
    for (k, v) in props {
        c.set(k, v);
    }
    Ok(c.create_with_context(BatchDeliveries)?)
}

/// Produces `records` (`count` of them) in order to `topic`/`partition` and
/// resolves, once every one is acknowledged, to the highest offset.
pub(crate) async fn produce_acked<'a>(producer: &AckedProducer, topic: &str, partition: i32, count: usize, records: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> Result<i64, String> {
    if count == 0 {
        return Ok(-1);
    }
    let ack = Arc::new(BatchAck::default());
    ack.state.lock().unwrap_or_else(|e| e.into_inner()).remaining = count;
    for (k, v) in records {
        loop {
            let mut rec: BaseRecord<'_, [u8], [u8], Arc<BatchAck>> = BaseRecord::with_opaque_to(topic, ack.clone()).partition(partition).key(k);
            if let Some(v) = v {
                rec = rec.payload(v);
            }
            match producer.send(rec) {
                Ok(()) => break,
                // Bounded producer queue: wait for deliveries to free room.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => tokio::time::sleep(Duration::from_millis(2)).await,
                // Records already queued still report to `ack`; the
                // caller compensates the abandoned batch.
                Err((e, _)) => return Err(e.to_string()),
            }
        }
    }
    ack.done.notified().await;
    let s = ack.state.lock().unwrap_or_else(|e| e.into_inner());
    match &s.error {
        Some(e) => Err(e.clone()),
        None => Ok(s.last),
    }
}

impl ChangelogSink for KafkaChangelog {
    fn write(&self, partition: u16, entries: Arc<Entries>, marker: Vec<u8>) -> ChangelogFuture {
        let (producer, topic) = (self.producer.clone(), self.topic.clone());
        Box::pin(async move {
            let marker_key = Store::checkpoint_key(partition);
            let records = entries.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).chain(std::iter::once((marker_key.as_slice(), Some(marker.as_slice()))));
            produce_acked(&producer, &topic, i32::from(partition), entries.len() + 1, records).await
        })
    }
}

/// A plain (group-less) consumer of changelog partitions, assigned manually.
pub fn reader(cfg: &ChangelogConfig, purpose: &str) -> Result<StreamConsumer, ClusterError> {
    let mut c = client_config(&cfg.brokers, &[]);
    // assign() needs a group.id; the group is never joined (no subscribe).
    c.set("group.id", format!("touchline-{purpose}-{}", cfg.node_id))
        .set("client.id", format!("touchline-{purpose}-{}", cfg.node_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A position past the log end must surface as an error, never as a silent jump.
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100")
        .set("queued.max.messages.kbytes", "65536")
        .set("fetch.queue.backoff.ms", crate::consumer::FETCH_QUEUE_BACKOFF_MS);
    for (k, v) in &cfg.kafka_props {
        c.set(k, v);
    }
    Ok(c.create()?)
}

/// Assigns `partitions` at their offsets (0 = the beginning).
pub fn assign(consumer: &StreamConsumer, topic: &str, partitions: &[(i32, i64)]) -> Result<(), ClusterError> {
    let mut tpl = TopicPartitionList::new();
    for (p, off) in partitions {
        tpl.add_partition_offset(topic, *p, if *off > 0 { Offset::Offset(*off) } else { Offset::Beginning })?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}

/// The partition's end offset as last reported by a fetch response; `None`
/// before the first fetch. Compatibility for brokers like Tansu, whose
/// ListOffsets answers wrongly: on Apache Kafka both agree, and the fetch
/// response costs no extra request.
pub fn fetched_end(consumer: &StreamConsumer, topic: &str, partition: i32) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut lo, mut hi) = (-1i64, -1i64);
    // SAFETY: rd_kafka_get_watermark_offsets only reads librdkafka's cached
    // offsets of the live client handle and writes the two out-parameters; the
    // rdkafka crate exposes only the ListOffsets variant (`fetch_watermarks`).
    let err = unsafe { rdkafka::bindings::rd_kafka_get_watermark_offsets(consumer.client().native_ptr(), topic.as_ptr(), partition, &mut lo, &mut hi) };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && hi >= 0).then_some(hi)
}

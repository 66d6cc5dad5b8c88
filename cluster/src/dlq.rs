//! The Kafka dead-letter producer: the original bytes, the original key, and the
//! headers `dlq.reason`, `dlq.detail`, `dlq.source.partition`, `dlq.source.offset`.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use touchline_actors::dlq::{DlqFuture, DlqRecord, DlqSink};

pub struct KafkaDlq {
    producer: FutureProducer,
    topic: String,
}

impl KafkaDlq {
    pub fn new(producer: FutureProducer, topic: String) -> KafkaDlq {
        KafkaDlq { producer, topic }
    }
}

impl DlqSink for KafkaDlq {
    fn send(&self, r: DlqRecord) -> DlqFuture {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        Box::pin(async move {
            let part = r.source_partition.to_string();
            let off = r.source_offset.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header { key: "dlq.reason", value: Some(r.reason.as_str()) })
                .insert(Header { key: "dlq.detail", value: Some(r.detail.as_str()) })
                .insert(Header { key: "dlq.source.partition", value: Some(part.as_str()) })
                .insert(Header { key: "dlq.source.offset", value: Some(off.as_str()) });
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).payload(r.payload.as_slice()).headers(headers);
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            producer.send(rec, Timeout::Never).await.map(|_| ()).map_err(|(e, _)| e.to_string())
        })
    }
}

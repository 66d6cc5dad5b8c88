//! The Kafka re-route producer (events.md, Transport): a misrouted record's
//! original key, bytes and headers (plus `touchline.rerouted-from`) produced to
//! its tenant's partition of the events topic, with the node's idempotent
//! producer; the partition actor awaits the acknowledgement before it commits.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use touchline_actors::dlq::DlqFuture;
use touchline_actors::reroute::{RerouteSink, Rerouted};

pub struct KafkaReroute {
    producer: FutureProducer,
    topic: String,
}

impl KafkaReroute {
    pub fn new(producer: FutureProducer, topic: String) -> KafkaReroute {
        KafkaReroute { producer, topic }
    }
}

impl RerouteSink for KafkaReroute {
    fn send(&self, r: Rerouted) -> DlqFuture {
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        Box::pin(async move {
            let headers = r.headers.iter().fold(OwnedHeaders::new_with_capacity(r.headers.len()), |h, (key, value)| {
                h.insert(Header { key: key.as_str(), value: value.as_deref() })
            });
            let mut rec: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&topic).partition(r.partition).payload(r.payload.as_slice()).headers(headers);
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            producer.send(rec, Timeout::Never).await.map(|_| ()).map_err(|(e, _)| e.to_string())
        })
    }
}

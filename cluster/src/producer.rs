//! Produces events into the events topic from the node itself (the HTTP erasure
//! request): keyed by tenant and partitioned with murmur2 like every producer of
//! events.md, so the record lands in the tenant's partition and is applied, and
//! survives rebalances, exactly like any other event.

use crate::{client_config, ClusterError};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::time::Duration;

#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
    topic: String,
}

impl EventProducer {
    pub fn new(brokers: &str, props: &[(String, String)], topic: &str) -> Result<EventProducer, ClusterError> {
        let mut c = client_config(brokers, props);
        c.set("partitioner", "murmur2_random").set("acks", "all");
        Ok(EventProducer { producer: c.create()?, topic: topic.to_string() })
    }

    /// Sends one event and waits for the broker's acknowledgement.
    pub async fn send(&self, tenant: &str, payload: &[u8], timeout: Duration) -> Result<(), ClusterError> {
        let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic).key(tenant).payload(payload);
        self.producer.send(rec, Timeout::After(timeout)).await.map(|_| ()).map_err(|(e, _)| ClusterError::Kafka(e))
    }
}

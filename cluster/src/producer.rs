//! Produces events into the events topic from the node itself (the HTTP erasure
//! request, the collector): keyed by tenant and partitioned with murmur2 like every producer of
//! events.md, so the record lands in the tenant's partition and is applied, and
//! survives rebalances, exactly like any other event.

use crate::{client_config, ClusterError};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::time::Duration;

/// murmur2 like every events.md producer; `acks=all` and idempotent, so a
/// record the collector acknowledged is on every in-sync replica exactly once
/// (librdkafka's internal retries cannot duplicate it).
fn config(brokers: &str, props: &[(String, String)]) -> rdkafka::ClientConfig {
    let mut c = client_config(brokers, props);
    c.set("partitioner", "murmur2_random").set("acks", "all").set("enable.idempotence", "true");
    c
}

#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
    topic: String,
}

impl EventProducer {
    pub fn new(brokers: &str, props: &[(String, String)], topic: &str) -> Result<EventProducer, ClusterError> {
        Ok(EventProducer { producer: config(brokers, props).create()?, topic: topic.to_string() })
    }

    /// Sends one event and waits for the broker's acknowledgement.
    pub async fn send(&self, tenant: &str, payload: &[u8], timeout: Duration) -> Result<(), ClusterError> {
        let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic).key(tenant).payload(payload);
        self.producer.send(rec, Timeout::After(timeout)).await.map(|_| ()).map_err(|(e, _)| ClusterError::Kafka(e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn acks_all_idempotent_murmur2() {
        let c = super::config("127.0.0.1:9", &[("linger.ms".into(), "2".into())]);
        assert_eq!((c.get("acks"), c.get("enable.idempotence"), c.get("partitioner"), c.get("linger.ms")), (Some("all"), Some("true"), Some("murmur2_random"), Some("2")));
    }
}

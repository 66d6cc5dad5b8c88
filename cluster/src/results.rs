//! The attribution results topic's Kafka side (`touchline_actors::results`):
//! the topic, created compacted like the changelog (a consumer keeping the
//! last value per key needs only the latest record of each conversion), and
//! the sink that produces a batch's records on the changelog's producer — one
//! idempotent, ordered producer per node — to the results partition of the
//! batch's events partition (`p mod` the results topic's partitions, so every
//! record of one conversion lands, in order, in one partition).

use crate::changelog::{acked_producer, produce_acked, AckedProducer, KafkaChangelog};
use crate::{admin, ClusterError};
use std::sync::Arc;
use touchline_actors::dlq::DlqFuture;
use touchline_actors::results::{ResultRecord, ResultsSink};

/// Topic configs of a new results topic: compacted, tombstones kept a week
/// (an upsert sink must see a delete before it is compacted away).
pub const TOPIC_CONFIG: [(&str, &str); 2] = [("cleanup.policy", "compact"), ("delete.retention.ms", "604800000")];

/// Creates the results topic with `partitions` unless it exists (`create`),
/// and returns its partition count.
pub async fn ensure_topic(brokers: &str, props: &[(String, String)], topic: &str, partitions: i32, create: bool) -> Result<i32, ClusterError> {
    let n = if create {
        admin::ensure_topic_with_config(brokers, props, topic, partitions, &TOPIC_CONFIG).await?
    } else {
        admin::partition_count(brokers, props, topic).await?.unwrap_or(0)
    };
    if n < 1 {
        return Err(ClusterError::Topic { topic: topic.to_string(), detail: "the results topic does not exist (results.topic; create it or turn create_topics on)".into() });
    }
    Ok(n)
}

pub struct KafkaResults {
    producer: Arc<AckedProducer>,
    topic: String,
    partitions: i32,
}

impl KafkaResults {
    /// On the changelog's producer.
    pub fn on(changelog: &KafkaChangelog, topic: String, partitions: i32) -> KafkaResults {
        KafkaResults { producer: changelog.producer(), topic, partitions }
    }

    /// With a producer of its own (no changelog).
    pub fn new(brokers: &str, props: &[(String, String)], node_id: &str, topic: String, partitions: i32) -> Result<KafkaResults, ClusterError> {
        Ok(KafkaResults { producer: Arc::new(acked_producer(brokers, props, &format!("touchline-results-{node_id}"))?), topic, partitions })
    }
}

impl ResultsSink for KafkaResults {
    fn publish(&self, partition: u16, records: Vec<ResultRecord>) -> DlqFuture {
        let (producer, topic) = (self.producer.clone(), self.topic.clone());
        let target = i32::from(partition) % self.partitions.max(1);
        Box::pin(async move {
            let it = records.iter().map(|(k, v)| (k.as_slice(), v.as_deref()));
            produce_acked(&producer, &topic, target, records.len(), it).await.map(|_| ())
        })
    }
}

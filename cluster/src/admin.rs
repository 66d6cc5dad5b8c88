//! Topic administration: create the events, dead-letter and members topics when
//! absent and read the events topic's partition count (the tenant routing modulus).

use crate::{client_config, ClusterError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

/// Creates `topic` with `partitions` unless it exists; returns its partition count.
pub async fn ensure_topic(brokers: &str, props: &[(String, String)], topic: &str, partitions: i32) -> Result<i32, ClusterError> {
    ensure_topic_with_config(brokers, props, topic, partitions, &[]).await
}

/// [`ensure_topic`] with topic configs (e.g. `cleanup.policy=compact`) for a new topic.
pub async fn ensure_topic_with_config(brokers: &str, props: &[(String, String)], topic: &str, partitions: i32, config: &[(&str, &str)]) -> Result<i32, ClusterError> {
    if let Some(n) = partition_count(brokers, props, topic).await? {
        return Ok(n);
    }
    let admin: AdminClient<DefaultClientContext> = client_config(brokers, props).create()?;
    let mut nt = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in config {
        nt = nt.set(k, v);
    }
    let res = admin.create_topics([&nt], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))).await?;
    for r in res {
        if let Err((t, code)) = r {
            if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                return Err(ClusterError::Topic { topic: t, detail: code.to_string() });
            }
        }
    }
    // Metadata can lag creation briefly.
    for _ in 0..50 {
        if let Some(n) = partition_count(brokers, props, topic).await? {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ClusterError::Topic { topic: topic.into(), detail: "not visible in metadata after creation".into() })
}

/// The topic's partition count, `None` when the topic does not exist.
pub async fn partition_count(brokers: &str, props: &[(String, String)], topic: &str) -> Result<Option<i32>, ClusterError> {
    let cfg = client_config(brokers, props);
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || -> Result<Option<i32>, ClusterError> {
        let c: BaseConsumer = cfg.create()?;
        let md = c.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
        Ok(md.topics().iter().find(|t| t.name() == topic).and_then(|t| {
            if t.error().is_some() || t.partitions().is_empty() {
                None
            } else {
                Some(t.partitions().len() as i32)
            }
        }))
    })
    .await
    .map_err(|e| ClusterError::Actor(e.to_string()))?
}

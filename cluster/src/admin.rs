//! Topic administration: create the events, dead-letter and members topics when
//! absent and read the events topic's partition count (the tenant routing modulus).

use crate::{client_config, ClusterError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Partitions touchline creates the events topic (and its dead-letter,
/// changelog and results topics) with by default. A tenant lives in one
/// partition and the count is fixed once records exist (it is the tenant
/// routing modulus), so it is chosen for spreading tenants over the largest
/// cluster expected: 48 spreads a skewed tenant mix over 3, 4, 6, 8, 12, 16 or
/// 24 nodes, at the price of smaller batches per partition and more restores
/// per rebalance (docs/operations.md, Scaling).
pub const DEFAULT_PARTITIONS: i32 = 48;

/// Creates `topic` with `partitions` unless it exists; returns its partition count.
pub async fn ensure_topic(brokers: &str, props: &[(String, String)], topic: &str, partitions: i32) -> Result<i32, ClusterError> {
    ensure_topic_with_config(brokers, props, topic, partitions, &[]).await
}

/// [`ensure_topic`] with topic configs (e.g. `cleanup.policy=compact`) for a new topic.
pub async fn ensure_topic_with_config(brokers: &str, props: &[(String, String)], topic: &str, partitions: i32, config: &[(&str, &str)]) -> Result<i32, ClusterError> {
    let spec = TopicSpec { partitions, replication: 1, config, timeout: Duration::from_secs(10) };
    ensure_topic_spec(brokers, props, topic, &spec).await
}

/// How to create a topic that is absent.
#[derive(Clone, Debug)]
pub struct TopicSpec<'a> {
    pub partitions: i32,
    pub replication: i32,
    /// Topic configs of a new topic (e.g. `cleanup.policy=compact`).
    pub config: &'a [(&'a str, &'a str)],
    /// For the CreateTopics answer, and again for the new topic to show in the metadata.
    pub timeout: Duration,
}

/// Returns `topic`'s partition count, creating it by `spec` when absent. An
/// existing topic is found in the metadata first, without CreateTopics: a
/// node's embedded broker (librdkafka's mock cluster) does not serve that request.
pub async fn ensure_topic_spec(brokers: &str, props: &[(String, String)], topic: &str, spec: &TopicSpec<'_>) -> Result<i32, ClusterError> {
    if let Some(n) = partition_count(brokers, props, topic).await? {
        return Ok(n);
    }
    if is_mock_cluster(brokers, props).await? {
        return Err(ClusterError::Topic {
            topic: topic.into(),
            detail: "the broker is a node's embedded broker (librdkafka's mock cluster), which creates no topics: produce to the node's own topic (`touchline node --topic`, default marketing-events)".into(),
        });
    }
    let admin: AdminClient<DefaultClientContext> = client_config(brokers, props).create()?;
    let mut nt = NewTopic::new(topic, spec.partitions, TopicReplication::Fixed(spec.replication));
    for (k, v) in spec.config {
        nt = nt.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(spec.timeout)).request_timeout(Some(spec.timeout));
    let res = admin.create_topics([&nt], &opts).await.map_err(|e| match e {
        KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut) => ClusterError::Topic {
            topic: topic.into(),
            detail: format!("no answer to CreateTopics within {} s (a node's embedded broker serves none: produce to the node's own topic)", spec.timeout.as_secs()),
        },
        e => e.into(),
    })?;
    for r in res {
        if let Err((t, code)) = r {
            if code != RDKafkaErrorCode::TopicAlreadyExists {
                return Err(ClusterError::Topic { topic: t, detail: code.to_string() });
            }
        }
    }
    // Metadata can lag creation briefly.
    let until = std::time::Instant::now() + spec.timeout;
    while std::time::Instant::now() < until {
        if let Some(n) = partition_count(brokers, props, topic).await? {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ClusterError::Topic { topic: topic.into(), detail: format!("no partitions visible {} s after its creation", spec.timeout.as_secs()) })
}

/// `true` when `brokers` is librdkafka's mock cluster (a node's embedded broker),
/// known by the cluster id it reports (`mockCluster…`): it never answers
/// CreateTopics, so asking would only wait for the timeout.
pub async fn is_mock_cluster(brokers: &str, props: &[(String, String)]) -> Result<bool, ClusterError> {
    let cfg = client_config(brokers, props);
    tokio::task::spawn_blocking(move || -> Result<bool, ClusterError> {
        let c: BaseConsumer = cfg.create()?;
        Ok(c.client().fetch_cluster_id(Duration::from_secs(10)).is_some_and(|id| id.starts_with("mockCluster")))
    })
    .await
    .map_err(|e| ClusterError::Actor(e.to_string()))?
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

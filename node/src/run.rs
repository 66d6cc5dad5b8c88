//! `run(config, shutdown)`: wires one node — RocksDB, the actor tree behind the
//! Kafka intake, membership, the HTTP surface — and tears it down in order on
//! shutdown: stop intake, drain actors, flush, commit, leave the group, publish
//! `left`, stop HTTP.

use crate::config::NodeConfig;
use crate::http::{self, AppState};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use touchline_actors::status::NodeStatus;
use touchline_cluster::membership::Identity;
use touchline_cluster::{run_intake, IntakeConfig, Membership, MembershipConfig};
use touchline_storage::{Store, StoreOptions};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("storage at {path}: {source}")]
    Storage { path: String, source: touchline_storage::StorageError },
    #[error("http listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("embedded broker: {0}")]
    Embedded(rdkafka::error::KafkaError),
    #[error("kafka intake: {0}")]
    Intake(#[from] touchline_cluster::ClusterError),
    /// The first contact with the brokers: names them.
    #[error("kafka at {brokers} (membership): {source}")]
    Membership { brokers: String, source: touchline_cluster::ClusterError },
}

/// An in-process Kafka-protocol broker (librdkafka's mock cluster) for the
/// no-install default. Keep it alive as long as clients use it.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedBroker {
    pub fn start() -> Result<EmbeddedBroker, NodeError> {
        let cluster = MockCluster::new(1).map_err(NodeError::Embedded)?;
        Ok(EmbeddedBroker { cluster })
    }
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
    /// The mock broker does not serve CreateTopics: create topics directly.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), NodeError> {
        self.cluster.create_topic(topic, partitions, 1).map_err(NodeError::Embedded)
    }
    /// The events, dead-letter and members topics of `c`.
    pub fn create_node_topics(&self, c: &NodeConfig) -> Result<(), NodeError> {
        self.create_topic(&c.topic, c.partitions)?;
        self.create_topic(&c.dlq_topic, c.partitions)?;
        self.create_topic(&c.cluster.members_topic, 1)?;
        self.create_topic(&c.cluster.changelog_topic, c.partitions)?;
        if c.results.enabled {
            self.create_topic(&c.results.topic, c.partitions)?;
        }
        Ok(())
    }
}

fn kafka_props(c: &NodeConfig) -> Vec<(String, String)> {
    c.kafka.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn intake_config(c: &NodeConfig, brokers: String) -> IntakeConfig {
    IntakeConfig {
        brokers,
        topic: c.topic.clone(),
        dlq_topic: c.dlq_topic.clone(),
        group: c.group.clone(),
        node_id: c.node_id.clone(),
        partitions: c.partitions,
        create_topics: c.create_topics,
        reroute_misrouted: c.ingest.misrouted == crate::config::Misrouted::Reroute,
        kafka_props: kafka_props(c),
        session_timeout_ms: c.engine.session_timeout_ms,
        batch_max: c.engine.batch_max_records,
        in_flight_batches: c.engine.in_flight_batches,
        commit_interval: Duration::from_secs(5),
        changelog_topic: Some(c.cluster.changelog_topic.clone()),
        results: c.results.intake(c.engine.default_lookback_days),
        standby_replicas: c.cluster.standby_replicas,
        snapshots: None,
        prefetch_kb: c.engine.prefetch_mb << 10,
        placement: c.cluster.placement_params(),
        placement_grace: c.cluster.placement_grace(),
    }
}

pub fn membership_config(c: &NodeConfig, brokers: String, http_addr: String) -> MembershipConfig {
    MembershipConfig {
        brokers,
        kafka_props: c.kafka.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        members_topic: c.cluster.members_topic.clone(),
        create_topic: c.create_topics,
        identity: Identity { node_id: c.node_id.clone(), http_addr, group: c.group.clone(), topic: c.topic.clone() },
        heartbeat_interval: Duration::from_millis(c.cluster.heartbeat_interval_ms),
        member_timeout: Duration::from_millis(c.cluster.member_timeout_ms),
    }
}

/// Runs one node until `shutdown` becomes true; without `brokers` it first
/// starts the embedded broker (not `Send`: run it on the main task) in a data
/// dir fit for it (`crate::data_dir`).
pub async fn run(mut config: NodeConfig, shutdown: watch::Receiver<bool>) -> Result<(), NodeError> {
    config.validate()?;
    crate::tls::load(&config.tls)?; // bad PEM files fail before any broker starts
    match config.brokers.clone() {
        Some(b) => {
            crate::data_dir::check_for_brokers(&config, &b)?;
            run_with_brokers(config, b, shutdown).await
        }
        None => {
            let dir = crate::data_dir::for_embedded(config.data_dir.as_deref())?;
            config.data_dir = Some(dir.path().to_path_buf());
            let embedded = EmbeddedBroker::start()?;
            let b = embedded.bootstrap_servers();
            embedded.create_node_topics(&config)?;
            println!("touchline: embedded broker (rdkafka MockCluster) at {b}");
            let r = run_with_brokers(config, b, shutdown).await;
            drop(embedded);
            drop(dir);
            r
        }
    }
}

/// Runs one node against `brokers` until `shutdown` becomes true.
pub async fn run_with_brokers(config: NodeConfig, brokers: String, shutdown: watch::Receiver<bool>) -> Result<(), NodeError> {
    config.validate()?;
    let prometheus = crate::telemetry::metrics();
    let data_dir = crate::data_dir::path(&config);
    std::fs::create_dir_all(&data_dir).map_err(|e| NodeError::Storage {
        path: data_dir.display().to_string(),
        source: touchline_storage::StorageError::Encode(e.to_string()),
    })?;
    let store_opts = StoreOptions {
        block_cache_bytes: config.storage.block_cache_mb << 20,
        write_buffer_bytes: config.storage.write_buffer_mb << 20,
        sync: config.storage.sync_writes,
        replicated_wal: config.storage.replicated_wal,
    };
    let store = Store::open(&data_dir, &store_opts).map_err(|source| NodeError::Storage { path: data_dir.display().to_string(), source })?;
    let status = Arc::new(NodeStatus::default());

    let tls = crate::tls::load(&config.tls)?;
    let listener = tokio::net::TcpListener::bind(config.http).await.map_err(|source| NodeError::Listen { addr: config.http.to_string(), source })?;
    let bound = listener.local_addr().map_err(|source| NodeError::Listen { addr: config.http.to_string(), source })?;
    println!("touchline: node {} http listening on {bound}", config.node_id);
    // What the other nodes reach this one at: in heartbeats, so forwarding and snapshot transfer use it.
    let http_addr = crate::advertise::advertised(&config, bound);
    if http_addr != bound.to_string() {
        println!("touchline: node {} advertises http address {http_addr}", config.node_id);
    }
    if tls.is_some() {
        println!("touchline: TLS on: the HTTP surface (including /metrics and /health) is https only");
    }
    let membership = Membership::start(membership_config(&config, brokers.clone(), http_addr.clone()), status.clone()).await.map_err(|source| NodeError::Membership { brokers: brokers.clone(), source })?;
    let forward = Arc::new(http::forward::Forwarder::new(membership.members(), Duration::from_millis(config.cluster.forward_timeout_ms), tls.as_ref().map(|t| t.client.clone())));
    let paths = touchline_actors::query::paths_cache::PathsCache::new(config.storage.paths_cache_mb << 20);
    let snapshot_dir = http::snapshots::snapshot_dir(&data_dir);
    let shelf = http::snapshots::SnapshotShelf::new(snapshot_dir.clone()).map_err(|e| NodeError::Storage {
        path: snapshot_dir.display().to_string(),
        source: touchline_storage::StorageError::Encode(e.to_string()),
    })?;
    let snapshots = config.cluster.snapshot_transfer.then(|| touchline_cluster::snapshot::Snapshots {
        source: Arc::new(http::snapshots::PeerSnapshots {
            client: forward.clone(),
            admin_token: config.auth.admin_token.as_ref().map(|t| t.expose().to_string()),
            dir: snapshot_dir.clone(),
            received: Default::default(),
        }),
        min_records: config.cluster.snapshot_min_records as i64,
    });
    paths.observe(&store);
    crate::collect::register_metrics();
    let state = Arc::new(AppState {
        node_id: config.node_id.clone(),
        http_addr: http_addr.clone(),
        store: store.clone(),
        status: status.clone(),
        metrics: prometheus,
        limits: config.limits.clone(),
        default_lookback_days: config.engine.default_lookback_days,
        retention: config.retention(),
        inflight: Semaphore::new(config.limits.max_concurrent_requests),
        auth: crate::http::auth::Authorizer::new(&config.auth),
        events: Some(touchline_cluster::producer::EventProducer::new(&brokers, &kafka_props(&config), &config.topic)?),
        forward,
        paths: paths.clone(),
        snapshots: Arc::new(shelf),
        linking: config.linking(),
        link_cache: touchline_actors::query::linking::LinkCache::new(64),
        collect: crate::collect::Collector::new(&config),
        registry: crate::http::registry_cmd::Settings::new(&config),
    });
    let (http_stop_tx, http_stop_rx) = watch::channel(false);
    let http_task = tokio::spawn(http::serve(listener, state, tls.map(|t| tokio_rustls::TlsAcceptor::from(t.server)), http_stop_rx));
    tokio::task::spawn_blocking(http::ui::prepare);
    let gauges = tokio::spawn(storage_gauges(store.clone()));
    // (The retention sweep runs in each partition actor, between its batches.)
    let prewarm_cfg = crate::prewarm::PrewarmConfig {
        interval: Duration::from_millis(config.storage.paths_prewarm_interval_ms),
        default_lookback_days: config.engine.default_lookback_days,
        default_range_days: crate::http::params::DEFAULT_RANGE_DAYS,
        policy: config.retention(),
    };
    let prewarm = tokio::spawn(crate::prewarm::run(store.clone(), status.clone(), paths.clone(), prewarm_cfg, shutdown.clone()));

    let engine = Arc::new(config.engine_config());
    let intake = IntakeConfig { snapshots, ..intake_config(&config, brokers) };
    let result = run_intake(intake, store.clone(), engine, status, Some(membership.members()), shutdown).await;
    gauges.abort();
    prewarm.abort();
    // A fenced node must not announce "left" under its node id: the process
    // that fenced it has the same id.
    if matches!(result, Err(touchline_cluster::ClusterError::Fatal { .. })) {
        membership.abandon();
    } else {
        membership.leave().await;
    }
    let _ = http_stop_tx.send(true);
    let _ = http_task.await;
    result.map_err(NodeError::from)
}

async fn storage_gauges(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        metrics::gauge!(touchline_actors::metrics::ROCKSDB_LIVE_BYTES).set(store.estimated_live_bytes() as f64);
        metrics::gauge!(touchline_actors::metrics::ROCKSDB_KEYS).set(store.estimated_keys() as f64);
        for (kind, bytes) in store.memory_usage() {
            metrics::gauge!(touchline_actors::metrics::ROCKSDB_MEMORY, "kind" => kind).set(bytes as f64);
        }
        metrics::gauge!(touchline_actors::metrics::PROCESS_RESIDENT).set(resident_bytes() as f64);
    }
}

/// This process's resident set size (Linux `/proc/self/statm`; 0 elsewhere).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).map_or(0, |pages| pages * 4096)
}

/// A shutdown channel flipped by SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        let _ = tx.send(true);
    });
    rx
}

//! Command-line flags of `touchline node` and their layering over the config file
//! and `TOUCHLINE_*` environment variables (flags win, then env, then file).

use crate::config::{ConfigError, NodeConfig};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct NodeArgs {
    /// TOML config file (see README, "Configuration").
    #[arg(long, env = "TOUCHLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers; omit to start an embedded in-process broker.
    #[arg(long, env = "TOUCHLINE_BROKERS")]
    pub brokers: Option<String>,
    #[arg(long, env = "TOUCHLINE_TOPIC")]
    pub topic: Option<String>,
    #[arg(long, env = "TOUCHLINE_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// Consumer group id.
    #[arg(long, env = "TOUCHLINE_GROUP")]
    pub group: Option<String>,
    /// HTTP listen address (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "TOUCHLINE_HTTP")]
    pub http: Option<SocketAddr>,
    #[arg(long, env = "TOUCHLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Stable node id (also the Kafka static member id).
    #[arg(long, env = "TOUCHLINE_NODE_ID")]
    pub node_id: Option<String>,
    /// Partitions of the events topic when touchline creates it.
    #[arg(long, env = "TOUCHLINE_PARTITIONS")]
    pub partitions: Option<i32>,
    /// Topic of member heartbeats (config key `cluster.members_topic`).
    #[arg(long, env = "TOUCHLINE_MEMBERS_TOPIC")]
    pub members_topic: Option<String>,
    /// Changelog topic of partition state (config key `cluster.changelog_topic`).
    #[arg(long, env = "TOUCHLINE_CHANGELOG_TOPIC")]
    pub changelog_topic: Option<String>,
    /// Warm standbys per partition (config key `cluster.standby_replicas`, default 1).
    #[arg(long, env = "TOUCHLINE_STANDBY_REPLICAS")]
    pub standby_replicas: Option<usize>,
    /// Restore from a peer's snapshot before the changelog (config key `cluster.snapshot_transfer`, default true).
    #[arg(long, env = "TOUCHLINE_SNAPSHOT_TRANSFER")]
    pub snapshot_transfer: Option<bool>,
    /// Changelog records a snapshot must save (config key `cluster.snapshot_min_records`, default 20000).
    #[arg(long, env = "TOUCHLINE_SNAPSHOT_MIN_RECORDS")]
    pub snapshot_min_records: Option<u64>,
    /// librdkafka property passed through, KEY=VALUE (repeatable; e.g. security.protocol=SASL_SSL).
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_property: Vec<String>,
    #[arg(long, env = "TOUCHLINE_MAX_IDS_PER_PERSON")]
    pub max_ids_per_person: Option<usize>,
    #[arg(long, env = "TOUCHLINE_SESSION_TIMEOUT_MS")]
    pub session_timeout_ms: Option<u32>,
    /// Admin bearer token: reaches every tenant and /v1/cluster.
    #[arg(long, env = "TOUCHLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<crate::config::Secret>,
    /// Tenant bearer token, TENANT=TOKEN (repeatable; env: comma-separated).
    #[arg(long = "tenant-token", value_name = "TENANT=TOKEN", env = "TOUCHLINE_TENANT_TOKENS", value_delimiter = ',', hide_env_values = true)]
    pub tenant_token: Vec<crate::config::Secret>,
    /// Event-time retention of timelines in days (config key `engine.retention_days`; 0 keeps forever).
    #[arg(long, env = "TOUCHLINE_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// PEM certificate chain: serve HTTPS (config key `tls.cert`; needs --tls-key).
    #[arg(long, env = "TOUCHLINE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (config key `tls.key`).
    #[arg(long, env = "TOUCHLINE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle trusted when forwarding to other nodes (config key `tls.ca`; default: the node's own certificate).
    #[arg(long, env = "TOUCHLINE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Records found on a partition other than their tenant's: re-route them there, or dead-letter them (config key `ingest.misrouted`).
    #[arg(long, env = "TOUCHLINE_INGEST_MISROUTED", value_enum)]
    pub ingest_misrouted: Option<crate::config::Misrouted>,
    /// Testing hook: customer actors panic on events of this customer_id.
    #[arg(long, env = "TOUCHLINE_FAULT_PANIC_CUSTOMER", hide = true)]
    pub fault_panic_customer: Option<String>,
}

impl NodeArgs {
    /// file → env/flags (clap already resolved env vs flag precedence).
    pub fn resolve(&self) -> Result<NodeConfig, ConfigError> {
        let mut c = match &self.config {
            Some(p) => NodeConfig::from_file(p)?,
            None => NodeConfig::default(),
        };
        if let Some(v) = &self.brokers {
            c.brokers = Some(v.clone());
        }
        if let Some(v) = &self.topic {
            c.topic = v.clone();
        }
        if let Some(v) = &self.dlq_topic {
            c.dlq_topic = v.clone();
        }
        if let Some(v) = &self.group {
            c.group = v.clone();
        }
        if let Some(v) = self.http {
            c.http = v;
        }
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &self.node_id {
            c.node_id = v.clone();
        }
        if let Some(v) = self.partitions {
            c.partitions = v;
        }
        if let Some(v) = &self.members_topic {
            c.cluster.members_topic = v.clone();
        }
        if let Some(v) = &self.changelog_topic {
            c.cluster.changelog_topic = v.clone();
        }
        if let Some(v) = self.standby_replicas {
            c.cluster.standby_replicas = v;
        }
        if let Some(v) = self.snapshot_transfer {
            c.cluster.snapshot_transfer = v;
        }
        if let Some(v) = self.snapshot_min_records {
            c.cluster.snapshot_min_records = v;
        }
        if let Some(v) = self.max_ids_per_person {
            c.engine.max_ids_per_person = v;
        }
        if let Some(v) = self.session_timeout_ms {
            c.engine.session_timeout_ms = v;
        }
        if let Some(v) = &self.fault_panic_customer {
            c.engine.fault_panic_customer = Some(v.clone());
        }
        if let Some(v) = self.ingest_misrouted {
            c.ingest.misrouted = v;
        }
        if let Some(v) = self.retention_days {
            c.engine.retention_days = v;
        }
        if let Some(v) = &self.tls_cert {
            c.tls.cert = Some(v.clone());
        }
        if let Some(v) = &self.tls_key {
            c.tls.key = Some(v.clone());
        }
        if let Some(v) = &self.tls_ca {
            c.tls.ca = Some(v.clone());
        }
        if let Some(v) = &self.admin_token {
            c.auth.admin_token = Some(v.clone());
        }
        for kv in &self.tenant_token {
            let (t, tok) = kv
                .expose()
                .split_once('=')
                .ok_or_else(|| ConfigError::Invalid { key: "auth.tenant_tokens", message: "--tenant-token must be TENANT=TOKEN".into() })?;
            c.auth.tenant_tokens.insert(t.trim().to_string(), crate::config::Secret::new(tok));
        }
        for kv in &self.kafka_property {
            let (k, v) = kv.split_once('=').ok_or_else(|| ConfigError::Invalid { key: "kafka", message: format!("--kafka-property {kv:?} is not KEY=VALUE") })?;
            c.kafka.insert(k.trim().to_string(), v.to_string());
        }
        c.validate()?;
        Ok(c)
    }
}

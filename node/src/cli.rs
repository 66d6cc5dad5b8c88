//! Command-line flags of `touchline node` and their layering over the config file
//! and `TOUCHLINE_*` environment variables (flags win, then env, then file).

use crate::config::{ConfigError, NodeConfig};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Every flag's help names its config key and default (`touchline node --help`;
/// tested), which [`env_behind_config_key`] relies on to name an environment variable.
#[derive(Args, Debug, Clone, Default)]
pub struct NodeArgs {
    /// TOML config file (see README, "Configuration"); flags and TOUCHLINE_* variables win over it (default: none).
    #[arg(long, env = "TOUCHLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers, HOST:PORT[,...] (config key `brokers`; default: none = an embedded in-process broker, empty on every start, for trying touchline).
    #[arg(long, env = "TOUCHLINE_BROKERS")]
    pub brokers: Option<String>,
    /// Topic of the marketing events, key = tenant_id (config key `topic`; default: marketing-events).
    #[arg(long, env = "TOUCHLINE_TOPIC")]
    pub topic: Option<String>,
    /// Dead-letter topic of rejected records (config key `dlq_topic`; default: marketing-events.dlq).
    #[arg(long, env = "TOUCHLINE_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// Consumer group id, the same on every node of a cluster (config key `group`; default: touchline).
    #[arg(long, env = "TOUCHLINE_GROUP")]
    pub group: Option<String>,
    /// HTTP listen address; port 0 picks a free port, the bound address is printed (config key `http`; default: 127.0.0.1:8080).
    #[arg(long, env = "TOUCHLINE_HTTP")]
    pub http: Option<SocketAddr>,
    /// HOST:PORT the other nodes reach this node's HTTP at (heartbeats, forwarding, snapshots); required with --brokers when --http is 0.0.0.0 or [::] (config key `advertise_http`; default: the bound --http address).
    #[arg(long, env = "TOUCHLINE_ADVERTISE_HTTP")]
    pub advertise_http: Option<String>,
    /// RocksDB directory (config key `data_dir`; default: ./touchline-data, or with the embedded broker a temporary directory removed on exit).
    #[arg(long, env = "TOUCHLINE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Stable node id, also the Kafka static member id (config key `node_id`; default: node-1).
    #[arg(long, env = "TOUCHLINE_NODE_ID")]
    pub node_id: Option<String>,
    /// Partitions of the events, dead-letter and changelog topics when touchline creates them (config key `partitions`; default: 48).
    #[arg(long, env = "TOUCHLINE_PARTITIONS")]
    pub partitions: Option<i32>,
    /// Topic of member heartbeats (config key `cluster.members_topic`; default: touchline.members).
    #[arg(long, env = "TOUCHLINE_MEMBERS_TOPIC")]
    pub members_topic: Option<String>,
    /// Changelog topic of partition state (config key `cluster.changelog_topic`; default: touchline.changelog).
    #[arg(long, env = "TOUCHLINE_CHANGELOG_TOPIC")]
    pub changelog_topic: Option<String>,
    /// Publish every conversion's credits to the attribution results topic (config key `results.enabled`; default: true).
    #[arg(long, env = "TOUCHLINE_RESULTS_ENABLED")]
    pub results_enabled: Option<bool>,
    /// Attribution results topic for warehouses, key = {tenant}/{conversion event_id} (config key `results.topic`; default: touchline.attributions).
    #[arg(long, env = "TOUCHLINE_RESULTS_TOPIC")]
    pub results_topic: Option<String>,
    /// Who places partitions on nodes: `group` (the consumer group, by count) or `load` (by measured load) (config key `cluster.placement`; default: group).
    #[arg(long, env = "TOUCHLINE_PLACEMENT", value_enum)]
    pub placement: Option<crate::config_placement::Placement>,
    /// Warm standbys per partition, 0..=8 (config key `cluster.standby_replicas`; default: 1).
    #[arg(long, env = "TOUCHLINE_STANDBY_REPLICAS")]
    pub standby_replicas: Option<usize>,
    /// Restore from a peer's snapshot before the changelog (config key `cluster.snapshot_transfer`; default: true).
    #[arg(long, env = "TOUCHLINE_SNAPSHOT_TRANSFER")]
    pub snapshot_transfer: Option<bool>,
    /// Changelog records a snapshot must save to be fetched (config key `cluster.snapshot_min_records`; default: 20000).
    #[arg(long, env = "TOUCHLINE_SNAPSHOT_MIN_RECORDS")]
    pub snapshot_min_records: Option<u64>,
    /// librdkafka property passed through, KEY=VALUE, repeatable, e.g. security.protocol=SASL_SSL (config section `[kafka]`; default: none).
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_property: Vec<String>,
    /// Identity merge guard: most identifiers one person may hold (config key `engine.max_ids_per_person`; default: 64).
    #[arg(long, env = "TOUCHLINE_MAX_IDS_PER_PERSON")]
    pub max_ids_per_person: Option<usize>,
    /// Consumer group session timeout, ms (config key `engine.session_timeout_ms`; default: 10000).
    #[arg(long, env = "TOUCHLINE_SESSION_TIMEOUT_MS")]
    pub session_timeout_ms: Option<u32>,
    /// Admin bearer token: reaches every tenant, /v1/tenants and /v1/cluster (config key `auth.admin_token`; default: none).
    #[arg(long, env = "TOUCHLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<crate::config::Secret>,
    /// Tenant bearer token, TENANT=TOKEN, repeatable; env: comma-separated (config key `auth.tenant_tokens`; default: none; no token at all = open surface).
    #[arg(long = "tenant-token", value_name = "TENANT=TOKEN", env = "TOUCHLINE_TENANT_TOKENS", value_delimiter = ',', hide_env_values = true)]
    pub tenant_token: Vec<crate::config::Secret>,
    /// Collector write key, TENANT=KEY, repeatable; env: comma-separated (config key `tenants.<t>.write_keys`; default: none, collector closed).
    #[arg(long = "write-key", value_name = "TENANT=KEY", env = "TOUCHLINE_WRITE_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub write_key: Vec<crate::config::Secret>,
    /// Event-time retention of timelines in days, 0 keeps forever (config key `engine.retention_days`; default: 90).
    #[arg(long, env = "TOUCHLINE_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// PEM certificate chain: serve HTTPS only; needs --tls-key (config key `tls.cert`; default: none, plain HTTP).
    #[arg(long, env = "TOUCHLINE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (config key `tls.key`; default: none).
    #[arg(long, env = "TOUCHLINE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle trusted when forwarding to other nodes (config key `tls.ca`; default: the node's own certificate).
    #[arg(long, env = "TOUCHLINE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Records found on a partition other than their tenant's: re-route them there, or dead-letter them (config key `ingest.misrouted`; default: reroute).
    #[arg(long, env = "TOUCHLINE_INGEST_MISROUTED", value_enum)]
    pub ingest_misrouted: Option<crate::config::Misrouted>,
    /// UNSAFE fault injection, for tests only: customer actors panic on events of
    /// this customer_id. Hidden, and no config key.
    #[arg(long, env = "TOUCHLINE_UNSAFE_FAULT_PANIC_CUSTOMER", hide = true)]
    pub unsafe_fault_panic_customer: Option<String>,
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
        if let Some(v) = &self.advertise_http {
            c.advertise_http = Some(v.clone());
        }
        if let Some(v) = &self.data_dir {
            c.data_dir = Some(v.clone());
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
        if let Some(v) = self.results_enabled {
            c.results.enabled = v;
        }
        if let Some(v) = &self.results_topic {
            c.results.topic = v.clone();
        }
        if let Some(v) = self.placement {
            c.cluster.placement = v;
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
        if let Some(v) = &self.unsafe_fault_panic_customer {
            c.engine.unsafe_fault_panic_customer = Some(v.clone());
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
        for kv in &self.write_key {
            let (t, key) = kv.expose().split_once('=').ok_or_else(|| ConfigError::Invalid { key: "tenants.write_keys", message: "--write-key must be TENANT=KEY".into() })?;
            c.tenants.entry(t.trim().to_string()).or_default().write_keys.push(crate::config::Secret::new(key));
        }
        for kv in &self.kafka_property {
            let (k, v) = kv.split_once('=').ok_or_else(|| ConfigError::Invalid { key: "kafka", message: format!("--kafka-property {kv:?} is not KEY=VALUE") })?;
            c.kafka.insert(k.trim().to_string(), v.to_string());
        }
        c.validate()?;
        Ok(c)
    }
}

/// The `TOUCHLINE_*` variable that supplied the value of an argument of `cmd`
/// (or of the subcommand named on `argv`) matching `pred`: one with an env name
/// that is set while its flag is not on the command line (flags win over env).
fn env_source(cmd: &clap::Command, argv: &[String], pred: impl Fn(&clap::Arg) -> bool) -> Option<String> {
    let sub = argv.iter().skip(1).find_map(|a| cmd.find_subcommand(a));
    let args = cmd.get_arguments().chain(sub.into_iter().flat_map(|s| s.get_arguments()));
    args.filter(|a| pred(a)).find_map(|a| {
        let (env, long) = (a.get_env()?.to_str()?, a.get_long()?);
        let flag = format!("--{long}");
        let on_cli = argv.iter().any(|x| *x == flag || x.starts_with(&format!("{flag}=")));
        (!on_cli && std::env::var_os(env).is_some()).then(|| env.to_string())
    })
}

/// The environment variable behind a clap error about a value (e.g.
/// `TOUCHLINE_PARTITIONS=abc`), so the message can name it; `None` when the
/// value came from the command line or the error is of another kind.
pub fn env_behind_clap_error(cmd: &clap::Command, argv: &[String], e: &clap::Error) -> Option<String> {
    let Some(clap::error::ContextValue::String(arg)) = e.get(clap::error::ContextKind::InvalidArg) else { return None };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?.to_string();
    env_source(cmd, argv, |a| a.get_long() == Some(long.as_str()))
}

/// The environment variable behind an invalid config `key`: the flag whose help
/// names ``config key `key` `` (every node flag's does), when its variable gave the value.
pub fn env_behind_config_key(cmd: &clap::Command, argv: &[String], key: &str) -> Option<String> {
    let needle = format!("config key `{key}`");
    env_source(cmd, argv, |a| a.get_help().is_some_and(|h| h.to_string().contains(&needle)))
}

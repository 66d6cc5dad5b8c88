//! Node configuration: serde structs with defaults and `deny_unknown_fields`,
//! layered TOML file → `TOUCHLINE_*` environment → command-line flags, and
//! validated with messages that name the offending key. Passed explicitly.

pub use crate::config_cluster::ClusterSection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Stable node id: also the Kafka static member id (`group.instance.id`).
    pub node_id: String,
    /// Kafka bootstrap servers; absent = start an embedded in-process broker.
    pub brokers: Option<String>,
    pub topic: String,
    pub dlq_topic: String,
    pub group: String,
    /// Partitions of the events topic when touchline creates it.
    pub partitions: i32,
    pub create_topics: bool,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// The address other nodes reach this one at (heartbeats, forwarding,
    /// snapshot transfer); default: the bound `http` address (`crate::advertise`).
    pub advertise_http: Option<String>,
    /// RocksDB directory; default `./touchline-data`, or a temporary directory
    /// on the embedded broker (`crate::data_dir`).
    pub data_dir: Option<PathBuf>,
    /// Log lines on stderr: `text` (colour only on a terminal) or `json`.
    pub log_format: crate::telemetry::LogFormat,
    /// librdkafka properties passed through verbatim (e.g. SASL/SSL settings).
    pub kafka: BTreeMap<String, String>,
    pub engine: EngineSection,
    pub ingest: IngestSection,
    pub storage: StorageSection,
    pub limits: LimitsSection,
    pub cluster: ClusterSection,
    pub auth: AuthSection,
    pub tls: TlsSection,
    /// The attribution results topic (`[results]`, docs/warehouse.md).
    pub results: crate::config_results::ResultsSection,
    /// Per-tenant settings, `[tenants.<tenant>]`.
    pub tenants: BTreeMap<String, TenantSection>,
}

/// Settings of one tenant; absent keys fall back to the node-wide ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSection {
    /// Overrides `engine.retention_days` for this tenant (0 keeps forever).
    pub retention_days: Option<u32>,
    /// Probabilistic cross-device links (attribution.md), off by default.
    pub probabilistic: bool,
    /// Link threshold in (0, 1] (default 0.7).
    pub probabilistic_threshold: Option<f64>,
    /// An ip seen with more distinct persons than this scores nothing (default 10).
    pub probabilistic_max_ip_persons: Option<usize>,
    /// Collector write keys of this tenant (`/v1/collect/*`; they only write).
    pub write_keys: Vec<Secret>,
    /// `track` event names counted as conversions (default: `collect::DEFAULT_CONVERSIONS`).
    pub conversions: Option<BTreeMap<String, crate::collect::ConversionSpec>>,
    /// Ordered channel rules tried before the collector's defaults (docs/collector.md).
    pub channel_rules: Vec<crate::collect::channel::Rule>,
    /// Id patterns of the registry by type (`campaign`, `content`, `journey`,
    /// `variant`; docs/registry.md); absent types keep their default.
    pub id_patterns: BTreeMap<String, String>,
}

/// TLS for the HTTP listener (and for forwarding between nodes). Both `cert`
/// and `key` or neither; `http` itself stays the listen address, hence a
/// section of its own.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain served by the listener (leaf first).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM bundle trusted when forwarding to other nodes over https; default:
    /// `cert` itself (enough when the cluster shares one certificate).
    pub ca: Option<PathBuf>,
}

/// HTTP bearer tokens (http-api.md, Auth). No token configured = open surface.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// Reaches every tenant and `/v1/cluster`.
    pub admin_token: Option<Secret>,
    /// tenant → token; a tenant token reaches only its tenant.
    pub tenant_tokens: BTreeMap<String, Secret>,
}

/// A secret string: serde-transparent, but never shown by `Debug`/`Display`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    pub max_ids_per_person: usize,
    pub allowed_lateness_secs: i64,
    pub default_lookback_days: i64,
    /// Live customer actors of the node, split evenly among its tenant actors.
    pub customer_actor_cap: usize,
    pub customer_idle_batches: u64,
    /// Live journey actors of the node, split evenly among its tenant actors
    /// (idle ones passivate after `customer_idle_batches` too).
    pub journey_actor_cap: usize,
    /// Entries of the node's state caches, split evenly among its tenant actors
    /// (identity nodes and persons, each; a journey actor keeps an eighth of its
    /// tenant's share of window counters); 0 disables them.
    pub state_cache_entries: usize,
    /// librdkafka prefetch budget of the node, MiB, split evenly over the events
    /// topic's partitions (intake consumer and changelog readers).
    pub prefetch_mb: usize,
    pub batch_max_records: usize,
    pub in_flight_batches: usize,
    pub session_timeout_ms: u32,
    /// Fault injection for tests only (`--unsafe-fault-panic-customer`): customer
    /// actors panic on this customer_id. Not a config key (skipped by serde).
    #[serde(skip)]
    pub unsafe_fault_panic_customer: Option<String>,
    /// Event-time retention of timelines, days behind the tenant's newest
    /// event (0 keeps forever); see README, "Retention".
    pub retention_days: u32,
    /// How often the retention sweep runs one bounded step.
    pub retention_sweep_interval_ms: u64,
    /// Keys the sweep visits per step at most.
    pub retention_sweep_batch: usize,
    /// Days of the tenant's event time a dedup marker is kept after its event
    /// was applied (0 keeps forever); README, "Retention".
    pub dedup_horizon_days: u32,
    /// Hours behind the tenant's newest event time 5-second window buckets
    /// are kept (0 keeps forever); README, "Windows".
    pub window_5s_retention_hours: u32,
}

/// How records come in (events.md, Transport).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSection {
    /// A record on a partition other than its tenant's: `reroute` (default)
    /// produces it to the tenant's partition, `dlq` dead-letters it as `misrouted`.
    pub misrouted: Misrouted,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Misrouted {
    #[default]
    Reroute,
    Dlq,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    pub block_cache_mb: usize,
    pub write_buffer_mb: usize,
    pub sync_writes: bool,
    /// Also write changelog-replicated partition state through RocksDB's WAL
    /// (off: a crash loses only memtable state the restore re-reads from the
    /// changelog; `sync_writes` turns it on).
    pub replicated_wal: bool,
    /// Memory budget of the report cache: attribution entries, activity
    /// indexes, cohorts and journeys entries (0: no entry is kept; every
    /// query computes afresh).
    pub paths_cache_mb: usize,
    /// How often the default attribution report and the report page's first
    /// shapes of every owned tenant are refreshed in that cache, so they are
    /// answered warm (default 10 s; 0: never — the cache then fills, within
    /// `paths_cache_mb`, only as queries come).
    pub paths_prewarm_interval_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub max_body_bytes: usize,
    pub max_concurrent_requests: usize,
    pub request_timeout_ms: u64,
    /// Longest `[from, to)` a query may span, days.
    pub max_query_range_days: i64,
    /// Most buckets of one `attribution/series` answer.
    pub max_series_buckets: usize,
    /// Most rows of one `POST /v1/collect/costs` (a file is all-or-nothing).
    pub cost_import_max_rows: usize,
    /// Most bytes of one `POST /v1/collect/costs` body (after gzip too).
    pub cost_import_max_bytes: usize,
    /// Most ids in one tenant's registry (docs/registry.md).
    pub registry_max_ids: u64,
    /// Most built URLs kept per tenant for the vendor export.
    pub registry_max_urls: u64,
    /// Most taxonomy versions per tenant.
    pub registry_max_taxonomy_versions: u32,
    /// How long a registry write waits for the partition owner to apply it
    /// before answering 503 (at most 4/5 of `cluster.forward_timeout_ms` and
    /// of `request_timeout_ms` are used, so the answer beats both).
    pub registry_wait_ms: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: "node-1".into(),
            brokers: None,
            topic: "marketing-events".into(),
            dlq_topic: "marketing-events.dlq".into(),
            group: "touchline".into(),
            partitions: touchline_cluster::admin::DEFAULT_PARTITIONS,
            create_topics: true,
            http: "127.0.0.1:8080".parse().expect("static address"),
            advertise_http: None,
            data_dir: None,
            log_format: Default::default(),
            kafka: BTreeMap::new(),
            engine: EngineSection::default(),
            ingest: IngestSection::default(),
            storage: StorageSection::default(),
            limits: LimitsSection::default(),
            auth: AuthSection::default(),
            tls: TlsSection::default(),
            results: Default::default(),
            tenants: BTreeMap::new(),
            cluster: ClusterSection::default(),
        }
    }
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            max_ids_per_person: 64,
            allowed_lateness_secs: 3600,
            default_lookback_days: 30,
            customer_actor_cap: 4096,
            customer_idle_batches: 8,
            journey_actor_cap: 1024,
            state_cache_entries: 65_536,
            prefetch_mb: 16,
            batch_max_records: 1000,
            in_flight_batches: 2,
            session_timeout_ms: 10_000,
            unsafe_fault_panic_customer: None,
            retention_days: 90,
            retention_sweep_interval_ms: 10_000,
            retention_sweep_batch: 10_000,
            dedup_horizon_days: touchline_actors::domain::retention::DEFAULT_DEDUP_HORIZON_DAYS,
            window_5s_retention_hours: touchline_actors::domain::retention::DEFAULT_WINDOW_5S_RETENTION_HOURS,
        }
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection { block_cache_mb: 64, write_buffer_mb: 64, sync_writes: false, replicated_wal: false, paths_cache_mb: 128, paths_prewarm_interval_ms: 10_000 }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_body_bytes: 64 * 1024,
            max_concurrent_requests: 256,
            request_timeout_ms: 10_000,
            max_query_range_days: 3660,
            max_series_buckets: 400,
            cost_import_max_rows: 10_000,
            cost_import_max_bytes: 2 << 20,
            registry_max_ids: 100_000,
            registry_max_urls: 100_000,
            registry_max_taxonomy_versions: 1_000,
            registry_wait_ms: 4_000,
        }
    }
}

/// A configuration error that names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

pub(crate) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, message: message.into() }
}

impl NodeConfig {
    /// Reads a TOML file (unknown keys are errors naming the key).
    pub fn from_file(path: &std::path::Path) -> Result<NodeConfig, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: p.clone(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: p, message: e.to_string() })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let id_ok = !self.node_id.is_empty()
            && self.node_id.len() <= 64
            && self.node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !id_ok {
            return Err(invalid("node_id", "must be 1..64 characters of [A-Za-z0-9._-]"));
        }
        if self.topic.is_empty() {
            return Err(invalid("topic", "must not be empty"));
        }
        if self.dlq_topic.is_empty() || self.dlq_topic == self.topic {
            return Err(invalid("dlq_topic", "must be non-empty and differ from `topic`"));
        }
        if self.group.is_empty() {
            return Err(invalid("group", "must not be empty"));
        }
        if !(1..=4096).contains(&self.partitions) {
            return Err(invalid("partitions", format!("must be in 1..=4096, got {}", self.partitions)));
        }
        if matches!(&self.brokers, Some(b) if b.trim().is_empty()) {
            return Err(invalid("brokers", "must not be empty (omit it for the embedded broker)"));
        }
        let e = &self.engine;
        if e.max_ids_per_person < 2 {
            return Err(invalid("engine.max_ids_per_person", "must be at least 2"));
        }
        if e.allowed_lateness_secs < 0 {
            return Err(invalid("engine.allowed_lateness_secs", "must be >= 0"));
        }
        if !(1..=3650).contains(&e.default_lookback_days) {
            return Err(invalid("engine.default_lookback_days", "must be in 1..=3650"));
        }
        if e.customer_actor_cap == 0 {
            return Err(invalid("engine.customer_actor_cap", "must be at least 1"));
        }
        if !(1..=1 << 20).contains(&e.journey_actor_cap) {
            return Err(invalid("engine.journey_actor_cap", "must be in 1..=1048576"));
        }
        if e.customer_idle_batches == 0 {
            return Err(invalid("engine.customer_idle_batches", "must be at least 1"));
        }
        if e.state_cache_entries > 1 << 24 {
            return Err(invalid("engine.state_cache_entries", "must be at most 16777216"));
        }
        if !(1..=16_384).contains(&e.prefetch_mb) {
            return Err(invalid("engine.prefetch_mb", format!("must be in 1..=16384, got {}", e.prefetch_mb)));
        }
        if e.customer_actor_cap > 1 << 22 {
            return Err(invalid("engine.customer_actor_cap", "must be at most 4194304"));
        }
        if !(1..=100_000).contains(&e.batch_max_records) {
            return Err(invalid("engine.batch_max_records", "must be in 1..=100000"));
        }
        if !(1..=64).contains(&e.in_flight_batches) {
            return Err(invalid("engine.in_flight_batches", "must be in 1..=64"));
        }
        if e.session_timeout_ms < 1000 {
            return Err(invalid("engine.session_timeout_ms", "must be at least 1000"));
        }
        self.validate_retention()?;
        if self.storage.block_cache_mb == 0 {
            return Err(invalid("storage.block_cache_mb", "must be at least 1"));
        }
        if self.storage.write_buffer_mb < 4 {
            return Err(invalid("storage.write_buffer_mb", "must be at least 4"));
        }
        if self.storage.paths_prewarm_interval_ms > 86_400_000 {
            return Err(invalid("storage.paths_prewarm_interval_ms", "must be at most 86400000 (a day); 0 turns prewarming off"));
        }
        if self.storage.paths_cache_mb > 1 << 20 {
            return Err(invalid("storage.paths_cache_mb", "must be at most 1048576 (1 TiB)"));
        }
        let l = &self.limits;
        if l.max_body_bytes == 0 {
            return Err(invalid("limits.max_body_bytes", "must be at least 1"));
        }
        if l.max_concurrent_requests == 0 {
            return Err(invalid("limits.max_concurrent_requests", "must be at least 1"));
        }
        if l.request_timeout_ms == 0 {
            return Err(invalid("limits.request_timeout_ms", "must be at least 1"));
        }
        if l.max_query_range_days < 1 {
            return Err(invalid("limits.max_query_range_days", "must be at least 1"));
        }
        if !(1..=100_000).contains(&l.max_series_buckets) {
            return Err(invalid("limits.max_series_buckets", "must be 1..=100000"));
        }
        if !(1..=1_000_000).contains(&l.cost_import_max_rows) {
            return Err(invalid("limits.cost_import_max_rows", "must be 1..=1000000"));
        }
        if !(1..=64 << 20).contains(&l.cost_import_max_bytes) {
            return Err(invalid("limits.cost_import_max_bytes", "must be 1..=67108864 (64 MiB)"));
        }
        let registry = [
            ("limits.registry_max_ids", l.registry_max_ids, 10_000_000),
            ("limits.registry_max_urls", l.registry_max_urls, 10_000_000),
            ("limits.registry_max_taxonomy_versions", u64::from(l.registry_max_taxonomy_versions), 100_000),
            ("limits.registry_wait_ms", l.registry_wait_ms, 60_000),
        ];
        if let Some((key, _, max)) = registry.into_iter().find(|(_, v, max)| !(1..=*max).contains(v)) {
            return Err(invalid(key, format!("must be 1..={max}")));
        }
        if matches!(&self.auth.admin_token, Some(t) if t.expose().trim().is_empty()) {
            return Err(invalid("auth.admin_token", "must not be empty"));
        }
        for (tenant, token) in &self.auth.tenant_tokens {
            if !touchline_actors::domain::decode::valid_tenant(tenant) {
                return Err(invalid("auth.tenant_tokens", format!("{tenant:?} is not a valid tenant id")));
            }
            if token.expose().trim().is_empty() {
                return Err(invalid("auth.tenant_tokens", format!("the token of tenant {tenant:?} is empty")));
            }
        }
        self.validate_cluster()?;
        self.results.validate(&[&self.topic, &self.dlq_topic, &self.cluster.members_topic, &self.cluster.changelog_topic])?;
        crate::advertise::validate(self)?;
        self.validate_tls()?;
        for k in self.kafka.keys() {
            if k.trim().is_empty() {
                return Err(invalid("kafka", "property names must not be empty"));
            }
        }
        Ok(())
    }

    fn validate_retention(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if e.retention_days > 36_500 {
            return Err(invalid("engine.retention_days", "must be in 0..=36500 (0 keeps forever)"));
        }
        if !(100..=86_400_000).contains(&e.retention_sweep_interval_ms) {
            return Err(invalid("engine.retention_sweep_interval_ms", "must be in 100..=86400000"));
        }
        if !(1..=1_000_000).contains(&e.retention_sweep_batch) {
            return Err(invalid("engine.retention_sweep_batch", "must be in 1..=1000000"));
        }
        if e.dedup_horizon_days > 36_500 {
            return Err(invalid("engine.dedup_horizon_days", "must be in 0..=36500 (0 keeps forever)"));
        }
        // A 5-second window still open (allowed lateness) is never expired.
        let min_5s_hours = (e.allowed_lateness_secs.max(0) + 5 + 3_599) / 3_600;
        if e.window_5s_retention_hours != 0 && !(i64::from(e.window_5s_retention_hours) >= min_5s_hours && e.window_5s_retention_hours <= 876_000) {
            return Err(invalid("engine.window_5s_retention_hours", format!("must be 0 (keep forever) or in {min_5s_hours}..=876000 (cover engine.allowed_lateness_secs)")));
        }
        // A repeat past the dedup horizon then never reaches a kept 5-second bucket.
        if e.dedup_horizon_days != 0 && u64::from(e.dedup_horizon_days) * 24 < u64::from(e.window_5s_retention_hours) {
            return Err(invalid("engine.dedup_horizon_days", "must be 0 (keep forever) or cover engine.window_5s_retention_hours"));
        }
        for (tenant, t) in &self.tenants {
            if !touchline_actors::domain::decode::valid_tenant(tenant) {
                return Err(invalid("tenants", format!("{tenant:?} is not a valid tenant id")));
            }
            if t.retention_days.is_some_and(|d| d > 36_500) {
                return Err(invalid("tenants.<tenant>.retention_days", format!("tenant {tenant:?}: must be in 0..=36500 (0 keeps forever)")));
            }
            if let Some(th) = t.probabilistic_threshold {
                touchline_actors::domain::probabilistic::threshold_points(th)
                    .map_err(|_| invalid("tenants.<tenant>.probabilistic_threshold", format!("tenant {tenant:?}: must be in (0, 1], got {th}")))?;
            }
            if t.probabilistic_max_ip_persons.is_some_and(|n| !(1..=1_000_000).contains(&n)) {
                return Err(invalid("tenants.<tenant>.probabilistic_max_ip_persons", format!("tenant {tenant:?}: must be in 1..=1000000")));
            }
            use touchline_actors::domain::governance::registry::{parse_type, IdPattern};
            for (kind, pattern) in &t.id_patterns {
                if parse_type(kind).is_none() {
                    return Err(invalid("tenants.<tenant>.id_patterns", format!("tenant {tenant:?}: {kind:?} is not one of campaign, content, journey, variant")));
                }
                IdPattern::parse(pattern).map_err(|e| invalid("tenants.<tenant>.id_patterns", format!("tenant {tenant:?}, {kind}: {e}")))?;
            }
        }
        Ok(())
    }

    /// The tenants with `probabilistic = true` and their settings (validated).
    pub fn linking(&self) -> touchline_actors::query::linking::LinkingPolicy {
        use touchline_actors::domain::probabilistic::{threshold_points, DEFAULT_MAX_IP_PERSONS, DEFAULT_THRESHOLD_POINTS};
        let per_tenant = self
            .tenants
            .iter()
            .filter(|(_, s)| s.probabilistic)
            .map(|(t, s)| {
                let threshold = s.probabilistic_threshold.and_then(|x| threshold_points(x).ok()).unwrap_or(DEFAULT_THRESHOLD_POINTS);
                let max_ip_persons = s.probabilistic_max_ip_persons.unwrap_or(DEFAULT_MAX_IP_PERSONS);
                (t.clone(), touchline_actors::query::linking::Linking { threshold, max_ip_persons })
            })
            .collect();
        touchline_actors::query::linking::LinkingPolicy { per_tenant }
    }

    /// The retention policy: `engine.retention_days` with `[tenants.*]` overrides.
    pub fn retention(&self) -> touchline_actors::domain::retention::RetentionPolicy {
        let mut p = touchline_actors::domain::retention::RetentionPolicy::new(self.engine.retention_days);
        p.per_tenant = self.tenants.iter().filter_map(|(t, s)| s.retention_days.map(|d| (t.clone(), d))).collect();
        (p.dedup_days, p.window_5s_hours) = (self.engine.dedup_horizon_days, self.engine.window_5s_retention_hours);
        p
    }

    /// Presence only; the files are read (and their errors named) by `tls::load`.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let t = &self.tls;
        match (&t.cert, &t.key) {
            (Some(_), None) => return Err(invalid("tls.key", "must be set when `tls.cert` is (both or neither)")),
            (None, Some(_)) => return Err(invalid("tls.cert", "must be set when `tls.key` is (both or neither)")),
            _ => {}
        }
        if t.ca.is_some() && t.cert.is_none() {
            return Err(invalid("tls.ca", "only applies when `tls.cert` and `tls.key` are set"));
        }
        for (key, p) in [("tls.cert", &t.cert), ("tls.key", &t.key), ("tls.ca", &t.ca)] {
            if p.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(invalid(key, "must not be empty"));
            }
        }
        Ok(())
    }

    pub fn engine_config(&self) -> touchline_actors::actors::EngineConfig {
        touchline_actors::actors::EngineConfig {
            max_ids_per_person: self.engine.max_ids_per_person,
            allowed_lateness_secs: self.engine.allowed_lateness_secs,
            customer_actor_cap: self.engine.customer_actor_cap,
            customer_idle_batches: self.engine.customer_idle_batches,
            journey_actor_cap: self.engine.journey_actor_cap,
            state_cache_entries: self.engine.state_cache_entries,
            tenant_actors: Default::default(),
            live_customers: Default::default(),
            live_journeys: Default::default(),
            fault_panic_customer: self.engine.unsafe_fault_panic_customer.clone(),
            retention: self.retention(),
            retention_sweep_interval: std::time::Duration::from_millis(self.engine.retention_sweep_interval_ms),
            retention_sweep_batch: self.engine.retention_sweep_batch,
            linking: self.linking(),
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

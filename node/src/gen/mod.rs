//! `touchline gen`: the load generator command.
//!
//! Generates a deterministic dataset ([`dataset::generate`]), creates the topic if
//! absent (rdkafka `AdminClient`), and produces the records with a `FutureProducer`
//! whose `partitioner=murmur2_random` routes each tenant key like Kafka's Java
//! client; deliberately misrouted records carry an explicit partition. Sends are
//! paced by a token bucket on tokio time and bounded to [`MAX_IN_FLIGHT`]
//! outstanding delivery futures. The caller prints the returned [`GenSummary`].

pub mod dataset;
#[cfg(test)]
mod dataset_tests;
pub mod payload;
pub mod signals;

pub use dataset::{count_duplicates, generate, shuffled, DatasetSpec, GenRecord};

use futures::{FutureExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use touchline_cluster::admin::TopicSpec;
use touchline_cluster::ClusterError;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::fmt;
use touchline_actors::domain::routing::partition_for;
use std::time::Duration;
use tokio::time::Instant;

/// At most this many delivery futures are outstanding at once.
pub const MAX_IN_FLIGHT: usize = 10_000;

/// Value encoding of the generated records.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GenFormat {
    Json,
    Msgpack,
    /// JSON with ~20 % MessagePack.
    #[default]
    Mixed,
}

/// Arguments of `touchline gen`.
#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    /// Kafka bootstrap servers (`host:port[,host:port...]`).
    #[arg(long)]
    pub brokers: String,
    /// Topic to produce to.
    #[arg(long, default_value = "marketing-events")]
    pub topic: String,
    /// Number of tenants (`acme`, `globex`, `initech`, ...).
    #[arg(long, default_value_t = 3)]
    pub tenants: usize,
    /// Number of persons, spread over the tenants.
    #[arg(long, default_value_t = 200)]
    pub persons: usize,
    /// Tenant size skew: tenant `i` gets persons in proportion to
    /// `(i + 1)^-skew` (0 = equal; 1 = Zipf, the largest of 24 tenants ~27 %).
    #[arg(long, default_value_t = 0.5)]
    pub tenant_skew: f64,
    /// Seed of the dataset (same seed, same bytes).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Records per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Produce in a random order instead of arrival (event-time) order.
    #[arg(long)]
    pub shuffle: bool,
    /// Value encoding.
    #[arg(long, value_enum, default_value_t = GenFormat::Mixed)]
    pub format: GenFormat,
    /// Partitions of the topic (created with this many if absent; the node's default).
    #[arg(long, default_value_t = touchline_cluster::admin::DEFAULT_PARTITIONS)]
    pub partitions: i32,
    /// Replication factor used when the topic is created.
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i32,
    /// Probability per valid record of an exact duplicate re-sent later.
    #[arg(long, default_value_t = 0.05)]
    pub duplicate_rate: f64,
    /// Probability per valid record of an additional invalid record.
    #[arg(long, default_value_t = 0.03)]
    pub invalid_rate: f64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Extra librdkafka property `KEY=VALUE` (repeatable).
    #[arg(long = "producer-property", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub producer_property: Vec<(String, String)>,
}

/// Parses `KEY=VALUE` (the value may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("kafka client: {0}")]
    Client(#[source] KafkaError),
    #[error("creating topic `{topic}`: {detail}")]
    CreateTopic { topic: String, detail: String },
    #[error("delivery failed: {0}")]
    Delivery(#[source] KafkaError),
    #[error("delivery canceled: the producer was dropped")]
    Canceled,
}

/// What `touchline gen` did.
#[derive(Clone, Debug, PartialEq)]
pub struct GenSummary {
    pub topic: String,
    pub partitions: i32,
    /// Records delivered.
    pub sent: usize,
    /// Records expected to be accepted (duplicates included).
    pub valid: usize,
    /// Records expected to be rejected.
    pub invalid: usize,
    /// Valid records that repeat an earlier one byte for byte.
    pub duplicates: usize,
    /// Time spent producing (first send to last acknowledgement).
    pub elapsed: Duration,
    /// `sent / elapsed`, records per second.
    pub rate: f64,
}

impl fmt::Display for GenSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {} records to `{}` ({} partitions): {} valid (incl. {} duplicates), {} invalid, in {:.2}s ({:.0} records/s)",
            self.sent,
            self.topic,
            self.partitions,
            self.valid,
            self.duplicates,
            self.invalid,
            self.elapsed.as_secs_f64(),
            self.rate
        )
    }
}

/// The dataset spec `args` describe, for a topic with `partitions` partitions.
pub fn spec_for(args: &GenArgs, partitions: i32) -> DatasetSpec {
    let d = DatasetSpec::default();
    DatasetSpec {
        seed: args.seed,
        tenants: args.tenants,
        persons: args.persons,
        tenant_skew: args.tenant_skew,
        duplicate_rate: args.duplicate_rate,
        invalid_rate: args.invalid_rate,
        msgpack_rate: match args.format {
            GenFormat::Json => 0.0,
            GenFormat::Msgpack => 1.0,
            GenFormat::Mixed => d.msgpack_rate,
        },
        partitions,
        ..d
    }
}

fn check_args(args: &GenArgs) -> Result<(), GenError> {
    let bad = |m: String| Err(GenError::InvalidArgument(m));
    if args.brokers.trim().is_empty() {
        return bad("--brokers must not be empty".into());
    }
    if args.partitions < 1 {
        return bad(format!("--partitions must be at least 1, got {}", args.partitions));
    }
    if args.tenants < 1 {
        return bad("--tenants must be at least 1".into());
    }
    if !(0.0..=4.0).contains(&args.tenant_skew) {
        return bad(format!("--tenant-skew must be in [0, 4], got {}", args.tenant_skew));
    }
    for (name, r) in [
        ("--duplicate-rate", args.duplicate_rate),
        ("--invalid-rate", args.invalid_rate),
    ] {
        if !(0.0..=1.0).contains(&r) {
            return bad(format!("{name} must be in [0, 1], got {r}"));
        }
    }
    Ok(())
}

/// Runs `touchline gen`: ensure the topic, generate, produce, summarize.
pub async fn run(args: GenArgs) -> Result<GenSummary, GenError> {
    check_args(&args)?;
    let props = args.producer_property.clone();
    let partitions = ensure_topic(
        &args.brokers,
        &args.topic,
        args.partitions,
        args.replication_factor,
        &props,
    )
    .await?;
    if partitions != args.partitions {
        tracing::warn!(topic = %args.topic, partitions, requested = args.partitions, "topic exists with another partition count; using it");
    }
    let spec = spec_for(&args, partitions);
    let mut records = generate(&spec);
    if args.shuffle {
        records = shuffled(records, args.seed);
    }
    let valid = records.iter().filter(|r| r.valid).count();
    let duplicates = count_duplicates(&records);
    let pb = if args.quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(records.len() as u64);
        let style =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        pb.set_style(style);
        pb
    };
    let started = Instant::now();
    let sent = produce_with(&args.brokers, &args.topic, &records, args.rate, &props, &pb).await;
    pb.finish_and_clear();
    let sent = sent?;
    let elapsed = started.elapsed();
    Ok(GenSummary {
        topic: args.topic,
        partitions,
        sent,
        valid,
        invalid: records.len() - valid,
        duplicates,
        elapsed,
        rate: sent as f64 / elapsed.as_secs_f64().max(1e-9),
    })
}

fn client_config(brokers: &str, props: &[(String, String)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers);
    for (k, v) in props {
        cfg.set(k, v);
    }
    cfg
}

/// Creates `topic` with `partitions` partitions unless it exists; returns its actual partition count.
/// An existing topic is found in the metadata first, without CreateTopics: a
/// node's embedded broker (librdkafka's mock cluster) does not serve that request.
pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    props: &[(String, String)],
) -> Result<i32, GenError> {
    let spec = TopicSpec { partitions, replication, config: &[], timeout: Duration::from_secs(30) };
    touchline_cluster::admin::ensure_topic_spec(brokers, props, topic, &spec).await.map_err(|e| match e {
        ClusterError::Topic { topic, detail } => GenError::CreateTopic { topic, detail },
        e => GenError::CreateTopic { topic: topic.to_string(), detail: e.to_string() },
    })
}

/// Produces `records` to an existing `topic` at `rate` records/s (0 = unlimited);
/// returns the number delivered. Fails on the first failed delivery.
/// Records the events topic holds once `records` are consumed: each one, plus
/// the re-routed copy of each record produced to a partition other than its
/// tenant's (events.md, Transport) — the `min_total` to wait for.
pub fn offsets_after(records: &[GenRecord], partitions: i32) -> i64 {
    let misrouted = records.iter().filter(|r| r.partition.is_some_and(|p| p != partition_for(&r.key, partitions))).count();
    (records.len() + misrouted) as i64
}

pub async fn produce(
    brokers: &str,
    topic: &str,
    records: &[GenRecord],
    rate: u64,
    props: &[(String, String)],
) -> Result<usize, GenError> {
    produce_with(brokers, topic, records, rate, props, &ProgressBar::hidden()).await
}

/// A token bucket on tokio time: `rate` tokens per second, bursts of 50 ms worth.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u64) -> TokenBucket {
        let rate = rate as f64;
        let burst = (rate / 20.0).max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: 1.0,
            last: Instant::now(),
        }
    }

    async fn take(&mut self) {
        if self.rate <= 0.0 {
            return;
        }
        loop {
            let now = Instant::now();
            self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            let wait = ((1.0 - self.tokens) / self.rate).max(0.001);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

type Delivered = <DeliveryFuture as std::future::Future>::Output;

fn settle(r: Delivered, pb: &ProgressBar) -> Result<(), GenError> {
    match r {
        Ok(Ok(_)) => {
            pb.inc(1);
            Ok(())
        }
        Ok(Err((e, _))) => Err(GenError::Delivery(e)),
        Err(_) => Err(GenError::Canceled),
    }
}

async fn produce_with(
    brokers: &str,
    topic: &str,
    records: &[GenRecord],
    rate: u64,
    props: &[(String, String)],
    pb: &ProgressBar,
) -> Result<usize, GenError> {
    let mut cfg = client_config(brokers, &[]);
    cfg.set("partitioner", "murmur2_random").set("linger.ms", "5");
    for (k, v) in props {
        cfg.set(k, v);
    }
    let producer: FutureProducer = cfg.create().map_err(GenError::Client)?;
    let mut inflight = futures::stream::FuturesUnordered::new();
    let mut bucket = TokenBucket::new(rate);
    for rec in records {
        bucket.take().await;
        let mut fr = FutureRecord::to(topic)
            .key(rec.key.as_bytes())
            .payload(rec.value.as_slice());
        if let Some(p) = rec.partition {
            fr = fr.partition(p);
        }
        loop {
            match producer.send_result(fr) {
                Ok(fut) => {
                    inflight.push(fut);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    fr = back;
                    match inflight.next().await {
                        Some(r) => settle(r, pb)?,
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => return Err(GenError::Delivery(e)),
            }
        }
        while inflight.len() >= MAX_IN_FLIGHT {
            if let Some(r) = inflight.next().await {
                settle(r, pb)?;
            }
        }
        while let Some(Some(r)) = inflight.next().now_or_never() {
            settle(r, pb)?;
        }
    }
    while let Some(r) = inflight.next().await {
        settle(r, pb)?;
    }
    let _ = producer.flush(Duration::from_secs(10));
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        gen: GenArgs,
    }

    #[test]
    fn gen_args_parse_with_defaults_and_properties() {
        let cli = Cli::try_parse_from([
            "gen",
            "--brokers",
            "localhost:9092",
            "--producer-property",
            "acks=all",
            "--producer-property",
            "sasl.jaas=a=b",
            "--format",
            "json",
            "--shuffle",
        ])
        .expect("parses");
        let a = cli.gen;
        assert_eq!(a.topic, "marketing-events");
        assert_eq!(a.partitions, 48);
        assert_eq!(a.format, GenFormat::Json);
        assert!(a.shuffle && !a.quiet);
        assert_eq!(
            a.producer_property,
            vec![("acks".into(), "all".into()), ("sasl.jaas".into(), "a=b".into())]
        );
        let spec = spec_for(&a, 12);
        assert_eq!(spec.msgpack_rate, 0.0);
        assert_eq!((spec.tenants, spec.persons, spec.seed), (3, 200, 42));
        assert!(Cli::try_parse_from(["gen", "--brokers", "x", "--producer-property", "novalue"]).is_err());
        assert!(Cli::try_parse_from(["gen"]).is_err());
    }

    #[tokio::test]
    async fn token_bucket_paces_sends() {
        let mut b = TokenBucket::new(10_000);
        let t0 = Instant::now();
        for _ in 0..5_000 {
            b.take().await;
        }
        let secs = t0.elapsed().as_secs_f64();
        assert!((0.45..=1.5).contains(&secs), "5000 tokens at 10000/s took {secs}s");
    }
}

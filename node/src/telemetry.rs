//! Process-wide telemetry: the Prometheus recorder (installed once) and tracing.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder on first use and registers every touchline metric.
pub fn metrics() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .expect("static buckets are valid");
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is already global (embedding): keep a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            touchline_actors::metrics::register();
            handle
        })
        .clone()
}

/// `RUST_LOG`-style filtering, default `info`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

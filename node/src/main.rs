//! The `touchline` binary: parses the command line and calls into the library.

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;
/// mimalloc: the apply path allocates many small, short-lived buffers; glibc's
/// allocator spent a quarter of the CPU there and fragmented (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use touchline_node::telemetry::LogFormat;
use touchline_node::{bench::BenchArgs, bench_collect::CollectBenchArgs, bench_rebalance::RebalanceBenchArgs, bench_scale::ScaleBenchArgs, cli, cli::NodeArgs, config::ConfigError, demo::DemoArgs, gen::GenArgs, run, telemetry};

#[derive(Parser)]
#[command(name = "touchline", version, about = "Real-time multi-touch marketing attribution on Kafka")]
struct Cli {
    /// Log lines on stderr: text (coloured only on a terminal) or json, one object per line; filter with RUST_LOG (config key `log_format`; default: text).
    #[arg(long, env = "TOUCHLINE_LOG_FORMAT", value_enum, global = true)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once at start-up: the size of the node's arguments costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run a cluster node: consume, stitch, attribute, serve HTTP.
    Node(NodeArgs),
    /// Produce a generated marketing dataset into a Kafka topic.
    Gen(GenArgs),
    /// Embedded broker + node + generated data; prints every model side by side.
    Demo(DemoArgs),
    /// End-to-end benchmark against a broker: raw consume vs apply rate, latency, RSS.
    Bench(BenchArgs),
    /// Rebalance benchmark: settle time of a node join and changelog restore rate.
    BenchRebalance(RebalanceBenchArgs),
    /// Scale-out benchmark: apply rate of 1, 3, ... nodes, each under the same CPU quota (cgroup).
    BenchScale(ScaleBenchArgs),
    /// Collector benchmark: /v1/collect/batch throughput and latency vs the node's apply rate.
    BenchCollect(CollectBenchArgs),
}

fn main() -> ExitCode {
    tune_glibc_malloc();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run_cli()),
        Err(e) => {
            eprintln!("touchline: cannot start the tokio runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// glibc malloc still serves RocksDB and librdkafka (C/C++). Its defaults let
/// the process grow by fragmentation: a dynamic mmap threshold that rises up to
/// 32 MiB, so librdkafka's large decompression buffers and RocksDB's blocks land
/// in per-thread 64 MiB arenas that are never returned (measured: ~300 MiB of
/// arenas for ~130 MiB of RocksDB and prefetch budgets). A fixed 128 KiB mmap and
/// trim threshold and two arenas cut the node's RSS by ~100 MiB (BENCHMARKS.md,
/// "Memory at 1 M persons"). Set before any thread starts; `GLIBC_TUNABLES` in the
/// environment wins (nothing is changed then).
fn tune_glibc_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        for (param, value) in [(libc::M_MMAP_THRESHOLD, 128 << 10), (libc::M_TRIM_THRESHOLD, 128 << 10), (libc::M_ARENA_MAX, 2)] {
            // SAFETY: mallopt only adjusts allocator parameters; called before other threads exist.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}

async fn run_cli() -> ExitCode {
    let argv: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let cli = match Cli::try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => match cli::env_behind_clap_error(&Cli::command(), &argv, &e) {
            Some(env) => {
                eprintln!("error: environment variable {env}: {}", e.to_string().trim_start_matches("error: ").trim_end());
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    // A config error names its key and, when the value came from one, the variable.
    let config_error = |e: &ConfigError| match e {
        ConfigError::Invalid { key, .. } => match cli::env_behind_config_key(&Cli::command(), &argv, key) {
            Some(env) => format!("{e} (from the environment variable {env})"),
            None => e.to_string(),
        },
        _ => e.to_string(),
    };
    // A node's log format may come from its config file: it starts tracing itself.
    if !matches!(cli.cmd, Cmd::Node(_)) {
        telemetry::init_tracing(cli.log_format.unwrap_or_default());
    }
    let result: Result<(), String> = match cli.cmd {
        Cmd::Node(args) => match args.resolve() {
            Err(e) => Err(config_error(&e)),
            Ok(mut config) => {
                config.log_format = cli.log_format.unwrap_or(config.log_format);
                telemetry::init_tracing(config.log_format);
                let shutdown = run::shutdown_on_signals();
                run::run(config, shutdown).await.map_err(|e| match &e {
                    run::NodeError::Config(c) => config_error(c),
                    _ => e.to_string(),
                })
            }
        },
        Cmd::Gen(args) => match touchline_node::gen::run(args).await {
            Ok(summary) => {
                println!("{summary}");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
        Cmd::Demo(args) => touchline_node::demo::run(args).await.map_err(|e| e.to_string()),
        Cmd::Bench(args) => touchline_node::bench::run(args).await,
        Cmd::BenchRebalance(args) => touchline_node::bench_rebalance::run(args).await,
        Cmd::BenchScale(args) => touchline_node::bench_scale::run(args).await,
        Cmd::BenchCollect(args) => touchline_node::bench_collect::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("touchline: error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The `touchline` binary: parses the command line and calls into the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
/// mimalloc: the apply path allocates many small, short-lived buffers; glibc's
/// allocator spent a quarter of the CPU there and fragmented (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use touchline_node::{bench::BenchArgs, bench_rebalance::RebalanceBenchArgs, cli::NodeArgs, demo::DemoArgs, gen::GenArgs, run, telemetry};

#[derive(Parser)]
#[command(name = "touchline", version, about = "Real-time multi-touch marketing attribution on Kafka")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

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
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_tracing();
    let cli = Cli::parse();
    let result: Result<(), String> = match cli.cmd {
        Cmd::Node(args) => match args.resolve() {
            Err(e) => Err(e.to_string()),
            Ok(config) => {
                let shutdown = run::shutdown_on_signals();
                run::run(config, shutdown).await.map_err(|e| e.to_string())
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("touchline: error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! touchline node: configuration, wiring, the HTTP query surface, metrics, the
//! load generator and the demo. The binary (`main.rs`) only parses flags.

pub mod advertise;
pub mod bench;
pub mod bench_collect;
pub mod bench_floor;
pub mod bench_prob;
pub mod bench_rebalance;
pub mod bench_scale;
pub mod cli;
pub mod client;
pub mod collect;
pub mod config;
pub mod config_cluster;
pub mod config_placement;
pub mod config_results;
pub mod cpu_quota;
pub mod data_dir;
pub mod demo;
pub mod gen;
pub mod http;
pub mod prewarm;
pub mod run;
pub mod telemetry;
pub mod tls;

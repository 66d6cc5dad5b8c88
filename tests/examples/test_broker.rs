//! Starts the test sandbox's broker (Apache Kafka by default, or Tansu with
//! `TOUCHLINE_TEST_BROKER=tansu`) on a free loopback port, prints its address,
//! and keeps it up until stdin closes (Ctrl-D) or the process is stopped — for
//! `touchline bench` / `bench-rebalance --brokers <address>` by hand. The broker
//! and its directory are removed when this process ends.
//!
//! Run: `cargo run -p touchline-tests --example test_broker`

use std::io::Read;
use touchline_tests::sandbox::{Broker, BrokerKind};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let broker = Broker::start_kind(BrokerKind::from_env_or(BrokerKind::Kafka)).await;
    println!("{:?} broker at {}", broker.kind, broker.addr);
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await.expect("join").ok();
    drop(broker);
}

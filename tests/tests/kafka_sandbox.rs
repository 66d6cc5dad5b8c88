//! The Apache Kafka broker of the test sandbox (tests/src/broker.rs): it comes
//! up from the Maven-resolved jars, its log cleaner really compacts a compacted
//! topic within a test (what Tansu never does), and dropping the broker kills
//! the JVM and removes its directory.

use std::collections::BTreeMap;
use std::time::Duration;
use touchline_node::gen::GenRecord;
use touchline_tests::fixtures::read_partition;
use touchline_tests::sandbox::{wait_for, Broker, BrokerKind};

/// Every record of partition 0 of `topic`, as text.
fn read_all(addr: &str, topic: &str) -> Vec<(String, String)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    read_partition(addr, topic, 0).into_iter().map(|(k, v)| (text(&k), text(&v.unwrap_or_default()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_kafka_starts_compacts_and_stops() {
    let broker = Broker::start_kind(BrokerKind::Kafka).await;
    let topic = "compacted";
    let config = [("cleanup.policy", "compact"), ("segment.ms", "200"), ("min.cleanable.dirty.ratio", "0.01"), ("min.compaction.lag.ms", "0")];
    touchline_cluster::admin::ensure_topic_with_config(&broker.addr, &[], topic, 1, &config).await.expect("compacted topic");

    // 3000 records over 10 keys at 1000/s: a new segment every 200 ms (1 MiB
    // is the smallest `segment.bytes`), so many closed segments to clean.
    let records: Vec<GenRecord> = (0..3000)
        .map(|i| GenRecord { key: format!("k{}", i % 10), value: format!("{i:0>90}").into_bytes(), partition: Some(0), valid: true })
        .collect();
    let sent = touchline_node::gen::produce(&broker.addr, topic, &records, 1000, &[]).await.expect("produce");
    assert_eq!(sent, records.len());
    let last: BTreeMap<String, String> = records.iter().map(|r| (r.key.clone(), String::from_utf8(r.value.clone()).unwrap())).collect();
    let addr = broker.addr.clone();
    let compacted = wait_for(Duration::from_secs(90), || {
        let addr = addr.clone();
        async move { tokio::task::spawn_blocking(move || read_all(&addr, topic).len() < 1000).await.unwrap() }
    })
    .await;
    assert!(compacted, "the log cleaner did not compact {topic} in 90 s");
    // Compaction keeps the latest value of every key.
    let addr = broker.addr.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&addr, topic)).await.unwrap();
    let latest: BTreeMap<String, String> = records.into_iter().collect();
    assert_eq!(latest, last);

    // Dropping the broker stops the JVM: its port closes.
    let addr = broker.addr.clone();
    drop(broker);
    let closed = wait_for(Duration::from_secs(10), || {
        let addr = addr.clone();
        async move { tokio::net::TcpStream::connect(&addr).await.is_err() }
    })
    .await;
    assert!(closed, "{addr} still accepts connections after the broker was dropped");
}

//! The no-install path the README gives: `touchline node` without `--brokers`
//! runs on its embedded broker (librdkafka's mock cluster) and prints its
//! address, and `touchline gen --brokers <that address>` feeds it. The node's
//! answers then equal the batch reference of the same generated dataset.

use std::process::Command;
use std::time::Duration;
use touchline_node::gen::{generate, DatasetSpec};
use touchline_tests::fixtures::{as_partitioned, offsets_after, assert_matches_reference, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{touchline_bin, Node, NodeSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gen_feeds_a_node_on_its_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "marketing-events";
    let partitions = 4;
    let mut spec = NodeSpec::new("embedded-1", "", topic, &dir.path().join("data"));
    spec.extra = vec!["--partitions".into(), partitions.to_string()];
    let node = Node::start(spec).await;
    let broker = node.embedded.clone().expect("the node printed its embedded broker's address");

    // The dataset the generator's defaults give for this seed and size.
    let data = DatasetSpec { seed: 17, tenants: 3, persons: 60, partitions, ..DatasetSpec::default() };
    let (dup, inv) = (data.duplicate_rate.to_string(), data.invalid_rate.to_string());
    let out = Command::new(touchline_bin())
        .args(["gen", "--brokers", &broker, "--topic", topic, "--tenants", "3", "--persons", "60", "--seed", "17", "--quiet"])
        .args(["--duplicate-rate", &dup, "--invalid-rate", &inv])
        .output()
        .expect("run touchline gen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "touchline gen failed: {}{}", stdout, String::from_utf8_lossy(&out.stderr));

    let records = generate(&data);
    assert!(stdout.contains(&format!("sent {} records", records.len())), "gen sent another dataset than the reference's: {stdout}");
    assert!(node.wait_consumed(offsets_after(&records, partitions), Duration::from_secs(120)).await, "the node did not consume what gen sent");

    let reference = reference::build(&as_partitioned(&records, partitions), partitions);
    let from = touchline_actors::domain::Ts::from_millis(data.start_ms);
    let to = from.plus_secs((data.span_days + 31) * 86_400);
    let rows = assert_matches_reference(&node, &reference, &standard_queries(&reference.tenants(), from, to)).await;
    assert!(rows > 0, "no report rows compared");
}

/// The demo on a dataset larger than the embedded broker keeps per partition
/// (librdkafka's mock cluster drops the oldest records past 100 000 or 5 MiB,
/// consumed or not): one tenant, so every record lands on one partition
/// (~8 MiB). The demo feeds it in steps the node has consumed, and its table
/// counts every conversion of the batch reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loses_nothing_past_the_embedded_brokers_retention() {
    let (persons, partitions) = (3000, 4);
    let data = DatasetSpec { seed: 7, tenants: 1, persons, partitions, ..DatasetSpec::default() };
    let records = generate(&data);
    let bytes: usize = records.iter().map(|r| r.value.len()).sum();
    assert!(bytes > 5 << 20, "the dataset ({bytes} bytes) fits the mock's 5 MiB per partition: it proves nothing");
    let out = Command::new(touchline_bin())
        .args(["demo", "--persons", &persons.to_string(), "--tenants", "1", "--seed", "7", "--partitions", &partitions.to_string()])
        .output()
        .expect("run touchline demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "touchline demo failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));

    let reference = reference::build(&as_partitioned(&records, partitions), partitions);
    let tenant = reference.tenants().into_iter().next().expect("a tenant");
    let from = touchline_actors::domain::Ts::from_millis(data.start_ms);
    let to = from.plus_secs((data.span_days + 31) * 86_400);
    let want = reference.attribution(&reference::RefQuery::new(&tenant, "linear", from, to))["conversions"].as_u64().expect("reference conversions");
    let line = stdout.lines().find(|l| l.starts_with(&format!("tenant {tenant}: "))).unwrap_or_else(|| panic!("no table for {tenant}: {stdout}"));
    let got: u64 = line.split_whitespace().nth(2).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no conversion count in {line:?}"));
    assert!(want > 100, "too few conversions to compare ({want})");
    assert_eq!(got, want, "the demo counted {got} conversions, the batch reference {want}: {line}");
}

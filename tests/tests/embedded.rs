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

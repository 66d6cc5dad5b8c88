//! The report cache end to end: a node consumes most of a generated dataset and
//! answers every standard report (filling the cache), then consumes the rest —
//! the latest events, with the late logins that merge persons — and every report
//! must equal the batch reference of the whole dataset, with at least some
//! entries brought up to date incrementally rather than rebuilt (so the test
//! fails if incremental answers drift, and cannot pass by rebuilding alone).

use std::time::Duration;
use touchline_node::gen::{generate, DatasetSpec};
use touchline_tests::fixtures::{as_partitioned, assert_matches_reference, create_topics, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{Broker, Node, NodeSpec};

async fn counter(node: &Node, name: &str) -> f64 {
    let body = node.get("/metrics").await.body;
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_reports_stay_exact_as_data_arrives() {
    let broker = Broker::start().await;
    let partitions = 2;
    let spec = DatasetSpec { seed: 23, tenants: 2, persons: 200, partitions, ..DatasetSpec::default() };
    let all = generate(&spec);
    // The last few percent of the stream (in production order: time order,
    // late logins last) arrive after the cache is warm.
    let cut = all.len() * 96 / 100;
    let (first, rest) = all.split_at(cut);
    create_topics(&broker.addr, "ev", partitions).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeSpec::new("inc", &broker.addr, "ev", &dir.path().join("n"))).await;

    let from = touchline_actors::domain::Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    let ref_first = reference::build(&as_partitioned(first, partitions), partitions);
    let tenants = ref_first.tenants();
    let queries = standard_queries(&tenants, from, to);

    assert_eq!(touchline_node::gen::produce(&broker.addr, "ev", first, 0, &[]).await.expect("produce"), first.len());
    assert!(node.wait_consumed(first.len() as i64, Duration::from_secs(180)).await, "first part not consumed");
    assert_matches_reference(&node, &ref_first, &queries).await;
    let builds = counter(&node, "touchline_report_cache_builds_total").await;
    let updates = counter(&node, "touchline_report_cache_updates_total").await;
    let persons = counter(&node, "touchline_report_cache_persons_recomputed_total").await;
    assert!(builds > 0.0, "the first round fills the cache");

    assert_eq!(touchline_node::gen::produce(&broker.addr, "ev", rest, 0, &[]).await.expect("produce"), rest.len());
    assert!(node.wait_consumed(all.len() as i64, Duration::from_secs(180)).await, "rest not consumed");
    let ref_all = reference::build(&as_partitioned(&all, partitions), partitions);
    assert_matches_reference(&node, &ref_all, &queries).await;
    let rebuilt = counter(&node, "touchline_report_cache_builds_total").await - builds;
    let updated = counter(&node, "touchline_report_cache_updates_total").await - updates;
    let recomputed = counter(&node, "touchline_report_cache_persons_recomputed_total").await - persons;
    eprintln!("second round: {rebuilt} rebuilds, {updated} incremental updates recomputing {recomputed} persons");
    assert!(updated > 0.0 && recomputed > 0.0, "no entry was updated incrementally ({rebuilt} rebuilds)");
}

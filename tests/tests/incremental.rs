//! The report cache end to end: a node consumes most of a generated dataset and
//! answers every standard report and the data-driven ones (filling the cache),
//! then consumes the rest —
//! the latest events, with the late logins that merge persons — and every report
//! must equal the batch reference of the whole dataset, with at least some
//! entries brought up to date incrementally rather than rebuilt (so the test
//! fails if incremental answers drift, and cannot pass by rebuilding alone).

use std::time::Duration;
use touchline_node::gen::{generate, DatasetSpec};
use touchline_tests::fixtures::{as_partitioned, offsets_after, assert_matches_reference, create_topics, standard_queries};
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
    let mut queries = standard_queries(&tenants, from, to);
    queries.extend(reference::RefQuery::data_driven(&tenants, from, to));

    assert_eq!(touchline_node::gen::produce(&broker.addr, "ev", first, 0, &[]).await.expect("produce"), first.len());
    assert!(node.wait_consumed(offsets_after(first, partitions), Duration::from_secs(180)).await, "first part not consumed");
    assert_matches_reference(&node, &ref_first, &queries).await;
    let builds = counter(&node, "touchline_report_cache_builds_total").await;
    let updates = counter(&node, "touchline_report_cache_updates_total").await;
    let persons = counter(&node, "touchline_report_cache_persons_recomputed_total").await;
    assert!(builds > 0.0, "the first round fills the cache");

    assert_eq!(touchline_node::gen::produce(&broker.addr, "ev", rest, 0, &[]).await.expect("produce"), rest.len());
    assert!(node.wait_consumed(offsets_after(&all, partitions), Duration::from_secs(180)).await, "rest not consumed");
    let ref_all = reference::build(&as_partitioned(&all, partitions), partitions);
    assert_matches_reference(&node, &ref_all, &queries).await;
    let rebuilt = counter(&node, "touchline_report_cache_builds_total").await - builds;
    let updated = counter(&node, "touchline_report_cache_updates_total").await - updates;
    let recomputed = counter(&node, "touchline_report_cache_persons_recomputed_total").await - persons;
    eprintln!("second round: {rebuilt} rebuilds, {updated} incremental updates recomputing {recomputed} persons");
    assert!(updated > 0.0 && recomputed > 0.0, "no entry was updated incrementally ({rebuilt} rebuilds)");
}

/// Prewarm (`storage.paths_prewarm_interval_ms`): with a dataset inside the
/// default window (the last 30 days before now), the node builds every
/// tenant's default report without being asked; default queries afterwards —
/// any model — need no build, slide that entry to their own `now`, and still
/// equal the batch reference over the range the node reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_reports_are_prewarmed_and_stay_exact() {
    use touchline_actors::domain::timestamp::parse_rfc3339;
    use touchline_actors::domain::Ts;
    let broker = Broker::start().await;
    let partitions = 2;
    let day = 86_400_000;
    let start_ms = Ts::now().as_millis() - 20 * day;
    let spec = DatasetSpec { seed: 29, tenants: 2, persons: 150, partitions, start_ms, span_days: 10, ..DatasetSpec::default() };
    let all = generate(&spec);
    create_topics(&broker.addr, "ev", partitions).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("node.toml");
    std::fs::write(&cfg, "[storage]\npaths_prewarm_interval_ms = 200\n").unwrap();
    let mut ns = NodeSpec::new("warm", &broker.addr, "ev", &dir.path().join("n"));
    ns.extra = vec!["--config".into(), cfg.display().to_string()];
    let node = Node::start(ns).await;
    assert_eq!(touchline_node::gen::produce(&broker.addr, "ev", &all, 0, &[]).await.expect("produce"), all.len());
    assert!(node.wait_consumed(offsets_after(&all, partitions), Duration::from_secs(180)).await, "not consumed");
    let reference = reference::build(&as_partitioned(&all, partitions), partitions);
    let tenants = reference.tenants();

    let warm = touchline_tests::sandbox::wait_for(Duration::from_secs(30), || async { counter(&node, "touchline_report_cache_builds_total").await >= tenants.len() as f64 }).await;
    assert!(warm, "no default report was prewarmed:\n{}", node.get("/metrics").await.body);
    // Let a round run after the last record, then no query may build.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let builds = counter(&node, "touchline_report_cache_builds_total").await;
    let mut rows = 0;
    for t in &tenants {
        for model in ["linear", "first_touch", "time_decay", "markov", "shapley"] {
            let r = node.get(&format!("/v1/tenants/{t}/attribution?model={model}")).await;
            assert_eq!(r.status, 200, "{t} {model}: {}", r.body);
            let v = r.json().expect("json");
            let from = parse_rfc3339(v["from"].as_str().unwrap()).unwrap();
            let to = parse_rfc3339(v["to"].as_str().unwrap()).unwrap();
            let want = touchline_tests::fixtures::comparable(&reference.attribution(&reference::RefQuery::new(t, model, from, to)));
            let got = touchline_tests::fixtures::comparable(&v);
            assert!(touchline_tests::sandbox::json_close(&got, &want, 1e-9), "{t} {model}\n node: {got}\n  ref: {want}");
            rows += got["rows"].as_object().map_or(0, serde_json::Map::len);
        }
    }
    assert!(rows > 10, "too few rows compared ({rows})");
    assert_eq!(counter(&node, "touchline_report_cache_builds_total").await, builds, "a default query built an entry: the prewarmed one was not used");
}

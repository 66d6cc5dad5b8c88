//! One generated dataset produced in time order to one topic and shuffled to
//! another, consumed by two nodes from a real Kafka-protocol broker (Tansu):
//! every report of both nodes must equal the batch reference (and so each other).
//! One tenant has a 2-day retention over 30 days of data: its answers equal the
//! reference with retention applied whatever the order, and once the sweep has
//! passed, no timeline key behind its horizon is left in RocksDB.

use std::collections::BTreeMap;
use std::time::Duration;
use touchline_actors::domain::Ts;
use touchline_storage::keys::{KeyBuf, Space};
use touchline_node::gen::{generate, shuffled, DatasetSpec};
use touchline_tests::fixtures::{as_partitioned, offsets_after, assert_journeys_match_reference, assert_matches_reference, create_topics, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

/// The tenant with a short retention, and its retention in days.
const SHORT: &str = "globex";
const SHORT_DAYS: u32 = 2;

fn counter(metrics: &str, name: &str) -> f64 {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

async fn metric(node: &Node, name: &str) -> f64 {
    counter(&node.get("/metrics").await.body, name)
}

/// Timeline keys (touchpoints, conversions, conversion index) of `tenant` in
/// the stopped node's RocksDB at `dir`: (how many, the oldest time).
fn timeline_keys(dir: &std::path::Path, partition: u16, tenant: &str) -> (usize, Option<Ts>) {
    let store = touchline_storage::Store::open(dir, &Default::default()).expect("reopen store");
    let (mut n, mut oldest) = (0, None::<Ts>);
    for space in [Space::Touch, Space::Conversion, Space::ConversionByTime] {
        let prefix = KeyBuf::space(partition, space).tenant(tenant).into_vec();
        let off = if space == Space::ConversionByTime { prefix.len() } else { prefix.len() + 8 };
        store
            .scan_prefix(&prefix, |k, _| {
                let ts = Ts::from_key_bytes(&k[off..off + 12]).expect("timestamp in key");
                n += 1;
                oldest = Some(oldest.map_or(ts, |o| o.min(ts)));
                true
            })
            .unwrap();
    }
    (n, oldest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shuffled_and_ordered_ingest_equal_the_batch_reference() {
    let broker = Broker::start().await;
    let partitions = 4;
    let spec = DatasetSpec { seed: 11, tenants: 3, persons: 120, partitions, ..DatasetSpec::default() };
    let ordered = generate(&spec);
    let mixed = shuffled(ordered.clone(), 99);
    assert!(ordered.len() > 500, "dataset too small: {}", ordered.len());
    for (topic, recs) in [("ev-ordered", &ordered), ("ev-shuffled", &mixed)] {
        create_topics(&broker.addr, topic, partitions).await;
        let sent = touchline_node::gen::produce(&broker.addr, topic, recs, 0, &[]).await.expect("produce");
        assert_eq!(sent, recs.len());
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    let toml = format!("[engine]\nretention_sweep_interval_ms = 200\nretention_sweep_batch = 300\n[tenants.{SHORT}]\nretention_days = {SHORT_DAYS}\n");
    std::fs::write(&config, toml).unwrap();
    let node_spec = |id: &str, topic: &str, sub: &str| {
        let mut s = NodeSpec::new(id, &broker.addr, topic, &dir.path().join(sub));
        s.extra = vec!["--config".into(), config.display().to_string()];
        s
    };
    let mut a = Node::start(node_spec("ordered", "ev-ordered", "a")).await;
    let mut b = Node::start(node_spec("shuffled", "ev-shuffled", "b")).await;
    let total = offsets_after(&ordered, partitions);
    assert!(a.wait_consumed(total, Duration::from_secs(180)).await, "ordered node did not consume everything");
    assert!(b.wait_consumed(total, Duration::from_secs(180)).await, "shuffled node did not consume everything");

    let retention = reference::Retention { per_tenant: BTreeMap::from([(SHORT.to_string(), SHORT_DAYS)]), ..Default::default() };
    let ref_ordered = reference::build_with_retention(&as_partitioned(&ordered, partitions), partitions, &retention);
    let ref_mixed = reference::build_with_retention(&as_partitioned(&mixed, partitions), partitions, &retention);
    let horizon = ref_ordered.horizon(SHORT).expect("the short-retention tenant has a horizon");
    assert_eq!(Some(horizon), ref_mixed.horizon(SHORT));
    assert!(ref_ordered.retention_excluded(SHORT) > 100, "retention removes little: {}", ref_ordered.retention_excluded(SHORT));
    assert_eq!(ref_ordered.retention_excluded("acme"), 0, "the default 90 days keep all 30 days of data");
    assert!(ref_ordered.consent_excluded() > 0, "the dataset has no consent withdrawal that matters");
    let tenants = ref_ordered.tenants();
    assert!(tenants.len() >= 3, "tenants: {tenants:?}");
    let from = touchline_actors::domain::Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    let mut queries = standard_queries(&tenants, from, to);
    queries.extend(reference::RefQuery::data_driven(&tenants, from, to));
    // A window that cuts through the data, too.
    let (cut_from, cut_to) = (from.plus_secs(10 * 86_400), from.plus_secs(20 * 86_400));
    queries.extend(standard_queries(&tenants[..1], cut_from, cut_to));
    queries.extend(reference::RefQuery::data_driven(&tenants[..1], cut_from, cut_to));
    let rows_a = assert_matches_reference(&a, &ref_ordered, &queries).await;
    let rows_b = assert_matches_reference(&b, &ref_mixed, &queries).await;
    assert_eq!(rows_a, rows_b);
    let kept = ref_ordered.attribution(&reference::RefQuery::new(SHORT, "linear", from, to));
    assert!(kept["conversions"].as_u64().unwrap_or(0) > 0, "nothing of {SHORT} is retained to compare: {kept}");
    assert!(rows_a > 100, "too few rows compared ({rows_a}): the dataset does not exercise the models");
    // Journey roll-ups (hour, day, week) whatever the arrival order.
    for (node, r) in [(&a, &ref_ordered), (&b, &ref_mixed)] {
        let buckets = assert_journeys_match_reference(node, r, &tenants, from, to).await;
        assert!(buckets > 50, "too few journey buckets compared: {buckets}");
    }

    // The same person answers under every linked identifier, with the reference's identifiers.
    let mut checked = 0;
    for t in &tenants {
        for (i, id) in ref_ordered.sample_identifiers(t, 5).into_iter().enumerate() {
            let want = ref_ordered.person(t, &id).expect("reference person");
            for node in [&a, &b] {
                let r = node.get(&format!("/v1/tenants/{t}/customers/{id}")).await;
                assert_eq!(r.status, 200, "{t}/{id}: {}", r.body);
                let v = r.json().unwrap();
                let mut ids: Vec<(String, String)> = v["identifiers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| (x["kind"].as_str().unwrap().to_string(), x["id"].as_str().unwrap().to_string()))
                    .collect();
                ids.sort();
                let mut want_ids: Vec<(String, String)> = want.identifiers.iter().map(|x| (x.kind.as_str().to_string(), x.id.clone())).collect();
                want_ids.sort();
                assert_eq!(ids, want_ids, "{t}/{id} ({i})");
                let mut tps: Vec<String> = v["touchpoints"].as_array().unwrap().iter().map(|x| x["event_id"].as_str().unwrap().to_string()).collect();
                tps.sort();
                assert_eq!(tps, want.touchpoints, "{t}/{id} touchpoints");
                checked += 1;
            }
        }
    }
    assert!(checked >= 10);
    let r = a.get("/v1/tenants/acme/customers/nobody-has-this-id").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json().unwrap()["error"]["code"], "not_found");

    // The sweep: once two passes ran after everything was consumed, no timeline
    // key of the short-retention tenant is older than its horizon.
    for node in [&a, &b] {
        let p0 = metric(node, "touchline_retention_sweep_passes_total").await;
        let swept = wait_for(Duration::from_secs(120), || async { metric(node, "touchline_retention_sweep_passes_total").await >= p0 + 2.0 }).await;
        assert!(swept, "{}: the retention sweep did not complete two passes", node.spec.node_id);
        let removed = metric(node, "touchline_retention_swept_records_total").await + metric(node, "touchline_retention_dropped_events_total").await;
        assert!(removed > 0.0, "{}: nothing swept or dropped", node.spec.node_id);
    }
    assert!(metric(&a, "touchline_retention_swept_records_total").await > 0.0, "ordered ingest stores then sweeps");
    assert!(metric(&b, "touchline_retention_dropped_events_total").await > 0.0, "shuffled ingest brings events already behind the horizon");
    let partition = touchline_actors::domain::routing::partition_for(SHORT, partitions) as u16;
    for node in [&mut a, &mut b] {
        assert!(node.terminate(Duration::from_secs(30)).await, "node did not stop");
        let (n, oldest) = timeline_keys(&node.spec.data_dir, partition, SHORT);
        assert!(n > 0, "{}: no timeline key of {SHORT} left at all", node.spec.node_id);
        assert!(oldest.is_some_and(|o| o >= horizon), "{}: a key at {oldest:?} is behind the horizon {horizon:?}", node.spec.node_id);
        let (n_acme, _) = timeline_keys(&node.spec.data_dir, touchline_actors::domain::routing::partition_for("acme", partitions) as u16, "acme");
        assert!(n_acme > 0, "the default retention swept acme");
    }
}

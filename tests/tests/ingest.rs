//! One generated dataset produced in time order to one topic and shuffled to
//! another, consumed by two nodes from a real Kafka-protocol broker (Tansu):
//! every report of both nodes must equal the batch reference (and so each other).

use std::time::Duration;
use touchline_node::gen::{generate, shuffled, DatasetSpec};
use touchline_tests::fixtures::{as_partitioned, assert_matches_reference, create_topics, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{Broker, Node, NodeSpec};

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
    let a = Node::start(NodeSpec::new("ordered", &broker.addr, "ev-ordered", &dir.path().join("a"))).await;
    let b = Node::start(NodeSpec::new("shuffled", &broker.addr, "ev-shuffled", &dir.path().join("b"))).await;
    let total = ordered.len() as i64;
    assert!(a.wait_consumed(total, Duration::from_secs(180)).await, "ordered node did not consume everything");
    assert!(b.wait_consumed(total, Duration::from_secs(180)).await, "shuffled node did not consume everything");

    let ref_ordered = reference::build(&as_partitioned(&ordered, partitions), partitions);
    let ref_mixed = reference::build(&as_partitioned(&mixed, partitions), partitions);
    assert!(ref_ordered.consent_excluded() > 0, "the dataset has no consent withdrawal that matters");
    let tenants = ref_ordered.tenants();
    assert!(tenants.len() >= 3, "tenants: {tenants:?}");
    let from = touchline_actors::domain::Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    let mut queries = standard_queries(&tenants, from, to);
    // A window that cuts through the data, too.
    queries.extend(standard_queries(&tenants[..1], from.plus_secs(10 * 86_400), from.plus_secs(20 * 86_400)));
    let rows_a = assert_matches_reference(&a, &ref_ordered, &queries).await;
    let rows_b = assert_matches_reference(&b, &ref_mixed, &queries).await;
    assert_eq!(rows_a, rows_b);
    assert!(rows_a > 100, "too few rows compared ({rows_a}): the dataset does not exercise the models");

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
}

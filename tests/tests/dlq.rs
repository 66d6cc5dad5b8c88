//! One record per rejection reason: each lands in the dead-letter topic with its
//! original bytes and the `dlq.*` headers, is counted by reason, and the partition
//! keeps flowing (a valid event after all of them is applied) — including a
//! `poison` record whose handler panics three times.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use touchline_actors::domain::routing::partition_for;
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

fn ev(id: &str, tenant: &str, customer: &str) -> serde_json::Value {
    json!({"event_id": id, "tenant_id": tenant, "event_type": "touchpoint_interaction", "timestamp": "2026-10-05T10:00:00Z",
           "customer_id": customer, "touchpoints": {"channel": "email", "interaction_type": "click"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_reason_is_dead_lettered_and_the_partition_keeps_flowing() {
    let broker = Broker::start().await;
    let partitions = 2;
    let topic = "ev-dlq";
    create_topics(&broker.addr, topic, partitions).await;
    let tenant = "acme";
    let p = partition_for(tenant, partitions);
    let other = (p + 1) % partitions;
    let big = json!({"event_id": "big", "tenant_id": tenant, "pad": "x".repeat(70_000)});
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("decode", b"{not json".to_vec(), p),
        ("schema", serde_json::to_vec(&json!({"event_id": "s1", "tenant_id": tenant, "event_type": "touchpoint_interaction", "timestamp": "2026-10-05T10:00:00Z"})).unwrap(), p),
        ("tenant", serde_json::to_vec(&json!({"event_id": "t1", "tenant_id": "Bad Tenant!", "event_type": "identify", "timestamp": 1})).unwrap(), p),
        ("timestamp", serde_json::to_vec(&json!({"event_id": "ts1", "tenant_id": tenant, "event_type": "identify", "timestamp": "yesterday"})).unwrap(), p),
        ("misrouted", serde_json::to_vec(&ev("m1", tenant, "c1")).unwrap(), other),
        ("too_large", serde_json::to_vec(&big).unwrap(), p),
        ("unknown_type", serde_json::to_vec(&json!({"event_id": "u1", "tenant_id": tenant, "event_type": "teleport", "timestamp": 1})).unwrap(), p),
        ("poison", serde_json::to_vec(&ev("p1", tenant, "poison-me")).unwrap(), p),
    ];
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &broker.addr).create().unwrap();
    for (_, bytes, part) in &cases {
        let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(tenant).payload(bytes.as_slice()).partition(*part);
        producer.send(rec, Duration::from_secs(10)).await.expect("produce");
    }
    let ok = serde_json::to_vec(&ev("ok-after", tenant, "fine")).unwrap();
    let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(tenant).payload(ok.as_slice()).partition(p);
    producer.send(rec, Duration::from_secs(10)).await.expect("produce");

    let dir = tempfile::tempdir().unwrap();
    let mut spec = NodeSpec::new("dlq-1", &broker.addr, topic, dir.path());
    // `misrouted` is a dead-letter reason only when re-routing is off.
    spec.extra = vec!["--unsafe-fault-panic-customer".into(), "poison-me".into(), "--ingest-misrouted".into(), "dlq".into()];
    let node = Node::start(spec).await;
    assert!(node.wait_consumed(cases.len() as i64 + 1, Duration::from_secs(120)).await, "node did not consume");
    // The valid event after the poison one was applied.
    let r = node.get(&format!("/v1/tenants/{tenant}/customers/fine")).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Read the DLQ back.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[&format!("{topic}.dlq")]).unwrap();
    let mut got: BTreeMap<String, (Vec<u8>, BTreeMap<String, String>)> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got.len() < cases.len() && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let mut h = BTreeMap::new();
            if let Some(hs) = m.headers() {
                for x in hs.iter() {
                    h.insert(x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned());
                }
            }
            got.insert(h.get("dlq.reason").cloned().unwrap_or_default(), (m.payload().unwrap_or_default().to_vec(), h));
        }
    }
    for (reason, bytes, part) in &cases {
        let (payload, headers) = got.get(*reason).unwrap_or_else(|| panic!("no DLQ record for {reason}; got {:?}", got.keys()));
        assert_eq!(payload, bytes, "{reason}: original bytes");
        assert_eq!(headers.get("dlq.source.partition"), Some(&part.to_string()), "{reason}");
        assert!(headers.get("dlq.source.offset").is_some_and(|o| o.parse::<i64>().is_ok()), "{reason}");
        assert!(headers.get("dlq.detail").is_some_and(|d| !d.is_empty()), "{reason}");
    }
    let metrics_ok = wait_for(Duration::from_secs(10), || async {
        let m = node.get("/metrics").await.body;
        cases.iter().all(|(reason, _, _)| m.contains(&format!("touchline_events_rejected_total{{reason=\"{reason}\"}} 1")))
    })
    .await;
    assert!(metrics_ok, "rejected counters: {}", node.get("/metrics").await.body.lines().filter(|l| l.contains("rejected")).collect::<Vec<_>>().join("\n"));
    let m = node.get("/metrics").await.body;
    assert!(m.contains("touchline_actor_restarts_total{kind=\"customer\"}"), "restart metric exported");
}

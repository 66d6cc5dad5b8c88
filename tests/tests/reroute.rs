//! Any producer's partitioner works (events.md, Transport): a shuffled dataset
//! produced with librdkafka's default partitioner (`consistent_random`, CRC32 —
//! not the contract's murmur2) lands mostly on the wrong partitions. The node
//! re-routes every such record to its tenant's partition (original key, bytes
//! and headers plus `touchline.rerouted-from`), acknowledged before it commits
//! past it; a `kill -9` mid-way and a restart lose and double nothing; every
//! report equals the batch reference, and nothing is dead-lettered as
//! `misrouted`.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;
use touchline_actors::domain::decode::{decode, ValidateCtx};
use touchline_actors::domain::Reason;
use touchline_node::gen::{generate, shuffled, DatasetSpec};
use touchline_tests::fixtures::{assert_matches_reference, create_topics, end_offsets as ends, read_topic, standard_queries, Read};
use touchline_tests::reference;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_partitioner_shuffled_kill_and_restart_equals_reference() {
    let broker = Broker::start().await;
    let (topic, partitions) = ("ev-reroute", 4);
    let spec = DatasetSpec { seed: 41, tenants: 4, persons: 1200, partitions, ..DatasetSpec::default() };
    let records = shuffled(generate(&spec), 7);
    create_topics(&broker.addr, topic, partitions).await;

    // librdkafka's default partitioner, and a header of the producer's own.
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &broker.addr).set("linger.ms", "5").create().unwrap();
    let sends = records.iter().map(|r| {
        let headers = OwnedHeaders::new().insert(Header { key: "origin", value: Some("sdk") });
        let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(r.key.as_str()).payload(r.value.as_slice()).headers(headers);
        producer.send(rec, Duration::from_secs(30))
    });
    let mut produced: Vec<Read> = Vec::new();
    for (r, sent) in records.iter().zip(futures::future::join_all(sends).await) {
        let d = sent.expect("produce");
        let (p, o) = (d.partition, d.offset);
        produced.push((p, o, r.key.clone(), r.value.clone(), BTreeMap::from([("origin".to_string(), "sdk".to_string())])));
    }
    // Records that fail an earlier check (decode, tenant, ...) are
    // dead-lettered where they are; the others on a wrong partition move.
    let now = touchline_actors::domain::Ts::now();
    let misrouted: Vec<&Read> = produced
        .iter()
        .filter(|r| matches!(decode(&r.3, &ValidateCtx { now, partition: Some(r.0), partitions }), Err(e) if e.reason == Reason::Misrouted))
        .collect();
    assert!(misrouted.len() * 3 > produced.len(), "the default partitioner should misroute most records ({} of {})", misrouted.len(), produced.len());

    let dir = tempfile::tempdir().unwrap();
    let node_spec = NodeSpec::new("reroute-1", &broker.addr, topic, &dir.path().join("n"));
    let mut node = Node::start(node_spec.clone()).await;
    let total = (produced.len() + misrouted.len()) as i64;
    let progressed = wait_for(Duration::from_secs(120), || {
        let n = &node;
        async move { touchline_tests::cluster::metric(&n.get("/metrics").await.body, "touchline_events_rerouted_total", "") > 0.0 }
    })
    .await;
    assert!(progressed, "nothing was re-routed");
    node.kill();
    let node = Node::start(node_spec).await;
    assert!(
        node.wait_consumed(total, Duration::from_secs(240)).await,
        "the restarted node did not consume the {total} records and re-routed copies: {}",
        node.get("/v1/cluster").await.body
    );

    // Every misrouted record has a copy on its tenant's partition: same key,
    // bytes and headers, plus where it was read (a repeat after the kill is allowed).
    let after = read_topic(&broker.addr, topic, &ends(&node).await);
    let mut copies: BTreeMap<String, Vec<&Read>> = BTreeMap::new();
    for r in after.iter().filter(|r| r.4.contains_key("touchline.rerouted-from")) {
        let from: i32 = r.4["touchline.rerouted-from"].split('/').next().unwrap().parse().unwrap();
        let to = decode(&r.3, &ValidateCtx { now, partition: Some(from), partitions }).err().and_then(|e| e.reroute_to);
        assert_eq!(Some(r.0), to, "a copy lands on its tenant's partition");
        copies.entry(r.4["touchline.rerouted-from"].clone()).or_default().push(r);
    }
    for m in &misrouted {
        let from = format!("{}/{}", m.0, m.1);
        let cs = copies.get(&from).unwrap_or_else(|| panic!("no re-routed copy of {from}"));
        for c in cs {
            assert_eq!((&c.2, &c.3, c.4.get("origin").map(String::as_str)), (&m.2, &m.3, Some("sdk")), "copy of {from}");
        }
    }
    assert_eq!(copies.len(), misrouted.len(), "copies only of misrouted records");

    // The reference applies every record wherever it was produced.
    let reference = reference::build(&produced.iter().map(|r| (r.0, r.3.clone())).collect::<Vec<_>>(), partitions);
    assert_eq!(reference.rejected_by_reason().get("misrouted"), None);
    let from = touchline_actors::domain::Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    let rows = assert_matches_reference(&node, &reference, &standard_queries(&reference.tenants(), from, to)).await;
    assert!(rows > 50, "{rows} rows compared");
    let m = node.get("/metrics").await.body;
    assert_eq!(touchline_tests::cluster::metric(&m, "touchline_events_rejected_total", "reason=\"misrouted\""), 0.0);
}

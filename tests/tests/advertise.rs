//! `advertise_http`: two nodes that listen on the wildcard address (`0.0.0.0`,
//! as in a container) and advertise distinct reachable addresses publish those
//! in their heartbeats, and a query sent to the node that does not own the
//! tenant is forwarded to the owner's advertised address and answered exactly
//! as the owner answers it.

use std::time::Duration;
use touchline_actors::domain::routing::partition_for;
use touchline_node::gen::{generate, DatasetSpec};
use touchline_tests::cluster::{multi_node_spec, settled, view};
use touchline_tests::fixtures::{create_topics, enc};
use touchline_tests::sandbox::{wait_for, Broker, Node};

/// A port free on every interface right now (bound on the wildcard, then released).
fn free_wildcard_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_on_the_wildcard_address_forward_to_the_advertised_one() {
    let broker = Broker::start_multi_node().await;
    let (topic, partitions) = ("ev-advertise", 4);
    create_topics(&broker.addr, topic, partitions).await;
    let data = DatasetSpec { seed: 5, tenants: 4, persons: 40, partitions, ..DatasetSpec::default() };
    let records = generate(&data);
    let sent = touchline_node::gen::produce(&broker.addr, topic, &records, 0, &[]).await.expect("produce");
    assert_eq!(sent, records.len());

    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    let mut advertised = std::collections::BTreeMap::new();
    for id in ["a", "b"] {
        let port = free_wildcard_port();
        let addr = format!("127.0.0.1:{port}");
        let mut spec = multi_node_spec(&broker, topic, dir.path(), id, &["--advertise-http", &addr]);
        spec.http = format!("0.0.0.0:{port}");
        advertised.insert(id.to_string(), addr);
        nodes.push(Node::start(spec).await);
    }
    let total = records.len() as i64;
    let ok = wait_for(Duration::from_secs(90), || async {
        let mut all = true;
        for n in &nodes {
            all &= view(n).await.is_some_and(|v| settled(&v, &["a", "b"], partitions as usize, total));
        }
        all
    })
    .await;
    assert!(ok, "the two nodes did not settle: {:?}", view(&nodes[0]).await);

    // Heartbeats carry the advertised addresses, never the wildcard.
    let v = view(&nodes[0]).await.expect("cluster view");
    for m in v["members"].as_array().expect("members") {
        let id = m["node_id"].as_str().unwrap();
        assert_eq!(m["http_addr"].as_str(), Some(advertised[id].as_str()), "{v}");
    }

    // Every tenant from both nodes: the non-owner forwards, the answer is the owner's.
    let owner_of = |t: &str| -> String {
        let p = partition_for(t, partitions) as i64;
        let part = v["partitions"].as_array().unwrap().iter().find(|x| x["partition"].as_i64() == Some(p)).expect("partition listed");
        part["owner"].as_str().expect("owned").to_string()
    };
    let from = touchline_actors::domain::Ts::from_millis(data.start_ms);
    let to = from.plus_secs((data.span_days + 31) * 86_400);
    let mut tenants: Vec<String> = records.iter().map(|r| r.key.clone()).filter(|t| touchline_actors::domain::decode::valid_tenant(t)).collect();
    tenants.sort();
    tenants.dedup();
    let mut forwarded = 0;
    for t in &tenants {
        let owner = owner_of(t);
        let path = format!("/v1/tenants/{t}/attribution?model=linear&from={}&to={}", enc(from), enc(to));
        let direct = nodes.iter().find(|n| n.spec.node_id == owner).unwrap().get(&path).await;
        assert_eq!(direct.status, 200, "{t} at its owner: {}", direct.body);
        for n in &nodes {
            let r = n.get(&path).await;
            assert_eq!(r.status, 200, "{t} via {}: {}", n.spec.node_id, r.body);
            assert_eq!(r.header("x-touchline-served-by"), Some(owner.as_str()), "{t} via {}", n.spec.node_id);
            assert_eq!(r.json(), direct.json(), "{t} via {}", n.spec.node_id);
            forwarded += usize::from(n.spec.node_id != owner);
        }
    }
    assert!(forwarded > 0, "no query was forwarded");
}

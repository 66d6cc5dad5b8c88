//! Membership and forwarding: three nodes in one consumer group on a real
//! Kafka-protocol broker (Apache Kafka by default) split the partitions. Once everything is
//! consumed, every node answers every standard query exactly like the batch
//! reference — a non-owner by forwarding, naming the owner in
//! `x-touchline-served-by` — and every node's `/v1/cluster` lists three alive
//! members and an owner for every partition.

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use touchline_actors::domain::routing::partition_for;
use touchline_node::gen::{generate, DatasetSpec};
use touchline_tests::fixtures::{as_partitioned, assert_matches_reference_with, create_topics, standard_queries};
use touchline_tests::reference;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

const SERVED_BY: &str = "x-touchline-served-by";

async fn cluster_view(node: &Node) -> Option<Value> {
    touchline_node::client::get(&node.http, "/v1/cluster").await.ok().and_then(|r| r.json())
}

/// Partition → owner when `v` shows a settled cluster: `members` alive members,
/// each owning something, every one of `n` partitions owned by the member
/// claiming it, active and consumed to its end, `total` records consumed overall.
fn settled(v: &Value, members: usize, n: usize, total: i64) -> Option<BTreeMap<i64, String>> {
    let alive: Vec<&Value> = v["members"].as_array()?.iter().filter(|m| m["alive"] == true).collect();
    if alive.len() != members || alive.iter().any(|m| !matches!(m["partitions"].as_array(), Some(ps) if !ps.is_empty())) {
        return None;
    }
    let parts = v["partitions"].as_array()?;
    if parts.len() != n {
        return None;
    }
    let mut owners = BTreeMap::new();
    let mut consumed = 0;
    for p in parts {
        let (num, owner) = (p["partition"].as_i64()?, p["owner"].as_str()?);
        let claims = alive.iter().any(|m| m["node_id"] == owner && m["partitions"].as_array().is_some_and(|ps| ps.iter().any(|x| x.as_i64() == Some(num))));
        let done = p["state"] == "active" && p["end_offset"].as_i64().is_some() && p["end_offset"] == p["consumed_offset"];
        if !claims || !done {
            return None;
        }
        consumed += p["consumed_offset"].as_i64()?;
        owners.insert(num, owner.to_string());
    }
    (consumed >= total).then_some(owners)
}

fn forwarded_total(metrics: &str) -> f64 {
    metrics.lines().find_map(|l| l.strip_prefix("touchline_forwarded_requests_total ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}

/// Three node specs of one group on `topic`.
fn specs(broker: &Broker, topic: &str, group: &str, dir: &std::path::Path) -> Vec<NodeSpec> {
    let spec = |id: &str| NodeSpec { group: group.to_string(), ..NodeSpec::new(id, &broker.addr, topic, &dir.join(group).join(id)) };
    ["n1", "n2", "n3"].into_iter().map(spec).collect()
}

/// Produces a generated dataset to a fresh `topic`; returns it with its spec.
async fn dataset(broker: &Broker, topic: &str, partitions: i32) -> (DatasetSpec, Vec<touchline_node::gen::GenRecord>) {
    let spec = DatasetSpec { seed: 31, tenants: 4, persons: 100, partitions, ..DatasetSpec::default() };
    let records = generate(&spec);
    create_topics(&broker.addr, topic, partitions).await;
    let sent = touchline_node::gen::produce(&broker.addr, topic, &records, 0, &[]).await.expect("produce");
    assert_eq!(sent, records.len());
    (spec, records)
}

/// Waits until every node shows the same settled cluster; partition → owner,
/// or every node's `/v1/cluster` when `deadline` passes first.
async fn wait_settled(nodes: &[Node], partitions: i32, total: i64, deadline: Duration) -> Result<BTreeMap<i64, String>, String> {
    let settled_all = || async {
        let views = all_views(nodes).await;
        let owners: Vec<Option<BTreeMap<i64, String>>> =
            views.iter().map(|v| v.as_ref().and_then(|v| settled(v, nodes.len(), partitions as usize, total))).collect();
        (views, owners)
    };
    let ok = wait_for(deadline, || async {
        let (_, owners) = settled_all().await;
        owners.iter().all(|o| o.is_some() && *o == owners[0])
    })
    .await;
    let (views, owners) = settled_all().await;
    match owners.into_iter().next().flatten() {
        Some(o) if ok => Ok(o),
        _ => Err(format!("cluster did not settle; /v1/cluster of each node: {views:#?}")),
    }
}

/// Starts three nodes of a fresh group together and waits until they settle.
/// Tansu's group coordinator sometimes restarts a rebalance round on its own
/// and then leaves partitions unassigned for good (see the ignored test), so a
/// start that does not settle in 40 s is retried with a fresh group, three times at most.
async fn start_settled(broker: &Broker, topic: &str, dir: &std::path::Path, partitions: i32, total: i64) -> (Vec<Node>, BTreeMap<i64, String>) {
    let mut last = String::new();
    for attempt in 1..=3 {
        let [a, b, c]: [NodeSpec; 3] = specs(broker, topic, &format!("g-{topic}-{attempt}"), dir).try_into().expect("three specs");
        let (a, b, c) = tokio::join!(Node::start(a), Node::start(b), Node::start(c));
        let nodes = vec![a, b, c];
        match wait_settled(&nodes, partitions, total, Duration::from_secs(40)).await {
            Ok(owners) => return (nodes, owners),
            Err(views) => {
                eprintln!("attempt {attempt}: the group did not settle (Tansu rebalance); retrying with a fresh group\n{views}");
                last = views;
            }
        }
    }
    panic!("{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_node_answers_any_query_like_the_reference() {
    let broker = Broker::shared_multi_node().await;
    let (partitions, topic) = (6, "ev-cluster");
    let (spec, records) = dataset(&broker, topic, partitions).await;
    let total = touchline_tests::fixtures::offsets_after(&records, partitions);
    let dir = tempfile::tempdir().unwrap();
    let (nodes, owners) = start_settled(&broker, topic, dir.path(), partitions, total).await;
    for v in all_views(&nodes).await.iter().flatten() {
        let members = v["members"].as_array().unwrap();
        assert_eq!(members.len(), 3, "{v}");
        assert!(members.iter().all(|m| m["alive"] == true && m["http_addr"].as_str().is_some_and(|a| !a.is_empty())), "{v}");
    }

    let reference = reference::build(&as_partitioned(&records, partitions), partitions);
    let tenants = reference.tenants();
    assert!(tenants.len() >= 3, "tenants: {tenants:?}");
    let owner_of = |t: &str| owners[&(partition_for(t, partitions) as i64)].clone();
    let from = touchline_actors::domain::Ts::from_millis(spec.start_ms);
    let to = from.plus_secs((spec.span_days + 31) * 86_400);
    let queries = standard_queries(&tenants, from, to);

    let mut forwarded_answers = 0;
    for node in &nodes {
        let me = node.spec.node_id.clone();
        let rows = assert_matches_reference_with(node, &reference, &queries, |q, r| {
            let owner = owner_of(&q.tenant);
            assert_eq!(r.header(SERVED_BY), Some(owner.as_str()), "{me}: {} served by", q.tenant);
            forwarded_answers += usize::from(owner != me);
        })
        .await;
        assert!(rows > 50, "{me}: too few rows compared ({rows})");

        // Customers (and a 404) come back unchanged through a forward, too.
        for t in &tenants {
            let owner = owner_of(t);
            for id in reference.sample_identifiers(t, 2) {
                let r = node.get(&format!("/v1/tenants/{t}/customers/{id}")).await;
                assert_eq!(r.status, 200, "{me} {t}/{id}: {}", r.body);
                assert_eq!(r.header(SERVED_BY), Some(owner.as_str()));
                let mut tps: Vec<String> =
                    r.json().unwrap()["touchpoints"].as_array().unwrap().iter().map(|x| x["event_id"].as_str().unwrap().to_string()).collect();
                tps.sort();
                assert_eq!(tps, reference.person(t, &id).expect("reference person").touchpoints, "{me} {t}/{id}");
            }
            let r = node.get(&format!("/v1/tenants/{t}/customers/nobody-has-this-id")).await;
            assert_eq!((r.status, r.header(SERVED_BY)), (404, Some(owner.as_str())), "{me} {t}: {}", r.body);
            assert_eq!(r.json().unwrap()["error"]["code"], "not_found");
        }
    }
    assert!(forwarded_answers > 0, "no query needed forwarding: owners {owners:?}");

    // Every node lists every tenant, gathered from the partitions' owners, and
    // pages a tenant's customers through a forward like its owner does.
    let mut listings = Vec::new();
    for node in &nodes {
        let r = node.get("/v1/tenants").await;
        assert_eq!(r.status, 200, "{}: {}", node.spec.node_id, r.body);
        let v = r.json().unwrap();
        let listed: Vec<String> = v["tenants"].as_array().unwrap().iter().map(|t| t["tenant"].as_str().unwrap().to_string()).collect();
        assert_eq!(listed, tenants, "{}: {v}", node.spec.node_id);
        for t in v["tenants"].as_array().unwrap() {
            assert_eq!(t["partition"].as_i64(), Some(partition_for(t["tenant"].as_str().unwrap(), partitions) as i64), "{t}");
            assert!(t["events"].as_u64().is_some_and(|n| n > 0) && t["persons"].as_u64().is_some_and(|n| n > 0), "{t}");
        }
        let page = node.get(&format!("/v1/tenants/{}/customers?limit=5", tenants[0])).await;
        assert_eq!((page.status, page.header(SERVED_BY)), (200, Some(owner_of(&tenants[0]).as_str())), "{}", page.body);
        listings.push((v, page.json()));
    }
    assert!(listings.windows(2).all(|w| w[0] == w[1]), "the nodes list differently: {listings:#?}");

    // A request that was already forwarded once is not forwarded again: 503 with Retry-After.
    let t = &tenants[0];
    let stranger = nodes.iter().find(|n| n.spec.node_id != owner_of(t)).expect("a non-owner");
    let path = format!("/v1/tenants/{t}/attribution?model=linear");
    let r = touchline_node::client::request_with(&stranger.http, "GET", &path, &[("x-touchline-forwarded", "1")], Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json().unwrap()["error"]["code"], "unavailable");

    let mut forwarded = 0.0;
    for n in &nodes {
        forwarded += forwarded_total(&n.get("/metrics").await.body);
    }
    assert!(forwarded >= forwarded_answers as f64, "touchline_forwarded_requests_total {forwarded} < {forwarded_answers}");
}

/// Scale-out one node at a time with the default cooperative-sticky assignment
/// and static membership, on Apache Kafka whatever `TOUCHLINE_TEST_BROKER`
/// says: on Tansu 0.6 the second phase of a cooperative rebalance never
/// happens — the leader re-joins to hand out the partitions it revoked, but
/// Tansu answers with the same generation and never tells the other (static)
/// members to re-sync, so they keep an empty assignment (librdkafka
/// `debug=cgrp` shows "JoinGroup response: GenerationId 1" twice). The same
/// coordinator behaviour, after a round Tansu restarts by itself, is what
/// `start_settled` retries around.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_out_one_node_at_a_time_settles() {
    let broker = Broker::shared_kafka().await;
    let (partitions, topic) = (6, "ev-scale-out");
    let (_, records) = dataset(&broker, topic, partitions).await;
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for spec in specs(&broker, topic, "g-scale-out", dir.path()) {
        nodes.push(Node::start(spec).await);
        let n = nodes.last().unwrap();
        let owns = |v: Value| v["partitions"].as_array().is_some_and(|ps| ps.iter().any(|p| p["owner"] == n.spec.node_id.as_str()));
        let up = wait_for(Duration::from_secs(60), || async { cluster_view(n).await.is_some_and(owns) }).await;
        assert!(up, "{} never owned a partition", n.spec.node_id);
    }
    wait_settled(&nodes, partitions, touchline_tests::fixtures::offsets_after(&records, partitions), Duration::from_secs(60)).await.unwrap();
}

async fn all_views(nodes: &[Node]) -> Vec<Option<Value>> {
    let mut out = Vec::new();
    for n in nodes {
        out.push(cluster_view(n).await);
    }
    out
}

//! Erasure reaches every copy of the state (issue 15, 4): after
//! `DELETE .../customers/{id}` on the owners, a warm standby that tailed the
//! changelog and a node that restored a partition from a peer's RocksDB
//! snapshot each hold no byte of the erased persons' identifiers (the DB files
//! are scanned, as `tenant_endpoints.rs` does for the owner and for a restore
//! from the changelog), while the other persons of the same partitions are
//! there. Two nodes A and B, two partitions, one standby each; then B leaves
//! and C joins with an empty directory and no standbys, so the partition it
//! takes comes from A's snapshot.

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use touchline_node::client::request;
use touchline_node::gen::GenRecord;
use touchline_tests::cluster::{multi_node_spec, metric, view};
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{wait_for, Broker, Node};

const PARTITIONS: i32 = 2;
const TENANTS: [&str; 6] = ["t0", "t1", "t2", "t3", "t4", "t5"];
/// 2026-11-02 10:00 UTC.
const T0: i64 = 1_793_613_600_000;
const HOUR: i64 = 3_600_000;

fn ev(tenant: &str, n: &mut u32, ty: &str, ts: i64, extra: Value) -> GenRecord {
    *n += 1;
    let mut m = json!({"event_id": format!("e{n}"), "tenant_id": tenant, "event_type": ty, "timestamp": ts});
    m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    GenRecord { key: tenant.into(), value: serde_json::to_vec(&m).unwrap(), partition: None, valid: true }
}

/// Per tenant: a kept person `keep-{t}` and a person `gone-{t}-c` / `gone-{t}-u`
/// (two devices linked by a login) to be erased. No other id or event id
/// contains `gone-`.
fn dataset() -> Vec<GenRecord> {
    let mut out = Vec::new();
    let mut n = 0;
    for t in TENANTS {
        let touch = |cid: &str| json!({"customer_id": cid, "touchpoints": {"channel": "email", "interaction_type": "click", "metadata": {"url": "https://x.test/?utm_campaign=spring"}}, "context": {"ip_address": "10.0.0.1", "user_agent": "UA"}});
        out.push(ev(t, &mut n, "touchpoint_interaction", T0, touch(&format!("keep-{t}"))));
        out.push(ev(t, &mut n, "conversion_event", T0 + HOUR, json!({"customer_id": format!("keep-{t}"), "conversion_data": {"value": 10.0, "currency": "USD"}})));
        out.push(ev(t, &mut n, "touchpoint_interaction", T0, touch(&format!("gone-{t}-c"))));
        out.push(ev(t, &mut n, "identify", T0 + HOUR, json!({"customer_id": format!("gone-{t}-c"), "user_id": format!("gone-{t}-u")})));
        out.push(ev(t, &mut n, "conversion_event", T0 + 2 * HOUR, json!({"customer_id": format!("gone-{t}-d2"), "user_id": format!("gone-{t}-u"), "conversion_data": {"value": 99.0, "currency": "USD"}})));
    }
    out
}

/// `(erased-identifier hits, kept-identifier hits)` over every key and value of
/// the store at `path`, for the tenants in `tenants`.
fn scan(path: &Path, tenants: &[&str]) -> (Vec<String>, usize) {
    let store = touchline_storage::Store::open(path, &Default::default()).expect("reopen store");
    let (mut leaks, mut kept) = (Vec::new(), 0);
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    store
        .scan(&[], &[0xff; 4], |k, v| {
            if has(k, b"gone-") || has(v, b"gone-") {
                leaks.push(String::from_utf8_lossy(k).into_owned());
            }
            kept += tenants.iter().filter(|t| has(k, format!("keep-{t}").as_bytes())).count();
            true
        })
        .unwrap();
    (leaks, kept)
}

fn tenants_on(p: i64) -> Vec<&'static str> {
    TENANTS.iter().copied().filter(|t| i64::from(touchline_actors::domain::routing::partition_for(t, PARTITIONS)) == p).collect()
}

/// The partitions `v`'s node owns.
fn owned(v: &Value, node: &str) -> Vec<i64> {
    v["partitions"].as_array().into_iter().flatten().filter(|p| p["owner"] == node && p["state"] == "active").filter_map(|p| p["partition"].as_i64()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standbys_and_snapshot_restores_hold_no_byte_of_an_erased_person() {
    for p in 0..i64::from(PARTITIONS) {
        assert!(!tenants_on(p).is_empty(), "no tenant on partition {p}: pick other tenant names");
    }
    let broker = Broker::shared_multi_node().await;
    let topic = "ev-erasure-copies";
    create_topics(&broker.addr, topic, PARTITIONS).await;
    let data = dataset();
    touchline_node::gen::produce(&broker.addr, topic, &data, 0, &[]).await.expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let spec = |id: &str, extra: &[&str]| multi_node_spec(broker, topic, dir.path(), id, extra);
    let a = Node::start(spec("a", &["--standby-replicas", "1", "--snapshot-min-records", "1"])).await;
    let mut b = Node::start(spec("b", &["--standby-replicas", "1", "--snapshot-min-records", "1"])).await;

    // A and B each own one partition, active at its end, and stand by for the other.
    let split = wait_for(Duration::from_secs(120), || async {
        let (Some(va), Some(vb)) = (view(&a).await, view(&b).await) else { return false };
        let (oa, ob) = (owned(&va, "a"), owned(&vb, "b"));
        let standby = |v: &Value, p: i64| v["standby"].as_array().is_some_and(|s| s.iter().any(|x| x["partition"] == p));
        oa.len() == 1 && ob.len() == 1 && standby(&vb, oa[0]) && standby(&va, ob[0]) && touchline_tests::cluster::consumed(&[&a, &b]).await >= data.len() as i64
    })
    .await;
    assert!(split, "A and B did not split the partitions with warm standbys: {:#?} {:#?}", view(&a).await, view(&b).await);
    let a_part = owned(&view(&a).await.unwrap(), "a")[0];

    // Erase every tenant's person, by any of its identifiers, through either node.
    for (i, t) in TENANTS.iter().enumerate() {
        let (node, id) = if i % 2 == 0 { (&a, format!("gone-{t}-c")) } else { (&b, format!("gone-{t}-u")) };
        let r = request(&node.http, "DELETE", &format!("/v1/tenants/{t}/customers/{id}"), Duration::from_secs(30)).await.unwrap();
        assert_eq!(r.status, 202, "{t}: {}", r.body);
    }
    for t in TENANTS {
        let gone = wait_for(Duration::from_secs(60), || async { a.get(&format!("/v1/tenants/{t}/customers/gone-{t}-d2")).await.status == 404 }).await;
        assert!(gone, "{t}: the erased person still answers");
        assert_eq!(a.get(&format!("/v1/tenants/{t}/customers/keep-{t}")).await.status, 200, "{t}: the kept person went too");
    }

    // B's standby of A's partition applies the changelog up to A's position after the erasures.
    let owner_at = view(&a).await.unwrap()["partitions"].as_array().unwrap().iter().find(|p| p["partition"] == a_part).and_then(|p| p["consumed_offset"].as_i64()).unwrap();
    let caught_up = wait_for(Duration::from_secs(60), || async {
        view(&b).await.is_some_and(|v| v["standby"].as_array().into_iter().flatten().any(|s| s["partition"] == a_part && s["consumed_offset"].as_i64() >= Some(owner_at)))
    })
    .await;
    assert!(caught_up, "B's standby of partition {a_part} did not reach offset {owner_at}: {:#?}", view(&b).await);
    assert!(b.terminate(Duration::from_secs(30)).await, "B did not stop");
    let (leaks, kept) = scan(&dir.path().join("b"), &tenants_on(a_part));
    assert!(leaks.is_empty(), "the warm standby holds erased identifiers under keys {leaks:?}");
    assert!(kept > 0, "B's store holds nothing of the standby partition {a_part}: the scan proves nothing");

    // C joins with an empty directory and no standbys: its partition comes from A's snapshot.
    let mut c = Node::start(spec("c", &["--standby-replicas", "0", "--snapshot-min-records", "1"])).await;
    let joined = wait_for(Duration::from_secs(120), || async { view(&c).await.is_some_and(|v| owned(&v, "c").len() == 1) }).await;
    assert!(joined, "C took no partition: {:#?}", view(&c).await);
    let c_part = owned(&view(&c).await.unwrap(), "c")[0];
    let m = c.get("/metrics").await.body;
    assert_eq!(metric(&m, "touchline_restores_total", "source=\"snapshot\""), 1.0, "C restored from a snapshot:\n{m}");
    for t in tenants_on(c_part) {
        assert_eq!(c.get(&format!("/v1/tenants/{t}/customers/gone-{t}-u")).await.status, 404, "{t}: the erased person came back on C");
    }
    assert!(c.terminate(Duration::from_secs(30)).await, "C did not stop");
    let (leaks, kept) = scan(&dir.path().join("c"), &tenants_on(c_part));
    assert!(leaks.is_empty(), "the snapshot-restored copy holds erased identifiers under keys {leaks:?}");
    assert!(kept > 0, "C's store holds nothing of partition {c_part}: the scan proves nothing");
}

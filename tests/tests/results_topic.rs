//! The attribution results topic (issue 21, 3): a shuffled generated dataset
//! (late logins merge persons after their conversions) is consumed by two
//! nodes, one of them killed with SIGKILL mid-ingest (the other takes all
//! partitions over, then the killed one comes back on its data directory and
//! takes its share again); then a person is erased through `DELETE customers/{id}`. The
//! results topic, read from the beginning into a table keeping the last value
//! per key (a tombstone deletes), holds exactly one row per conversion of the
//! batch reference (built without the erased person's events), each equal to
//! the reference's per-conversion credits under every default model for
//! `channel` and `campaign`; and summing the rows of the report currency
//! gives every node's `/v1` attribution answer for each default model and
//! grouping. One tenant has probabilistic links on (the generator's signals:
//! shared browsers, households, carrier NAT): its rows follow the final
//! persons of the batch reference with links, as its `/v1` reports do.
//!
//! Apache Kafka by default (`TOUCHLINE_TEST_BROKER`): its log cleaner may
//! compact the results topic meanwhile, which an upsert consumer must not
//! notice.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use touchline_actors::domain::decode::{decode, ValidateCtx};
use touchline_actors::domain::timestamp::format_rfc3339;
use touchline_actors::domain::{Body, GroupBy, Ts};
use touchline_node::client::request;
use touchline_node::gen::{generate, produce, shuffled, DatasetSpec, GenRecord};
use touchline_tests::cluster::{consumed, metric, multi_node_spec, view, wait_settled};
use touchline_tests::fixtures::{as_partitioned, create_topics, offsets_after};
use touchline_tests::reference::{self, RefConversion};
use touchline_tests::sandbox::{wait_for, Broker, Node};

const MODELS: [&str; 5] = ["first_touch", "last_touch", "linear", "position_based", "time_decay"];
const GROUPINGS: [GroupBy; 2] = [GroupBy::Channel, GroupBy::Campaign];
/// The tenant with `probabilistic = true` (the generator's first).
const LINKED: &str = "acme";

/// The batch reference with `LINKED`'s probabilistic links (default settings).
fn reference_of(records: &[(i32, Vec<u8>)], partitions: i32) -> reference::Reference {
    let linking = BTreeMap::from([(LINKED.to_string(), (7_000u32, 10usize))]);
    reference::build_with_linking(records, partitions, &reference::Retention::default(), true, &linking)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The results topic read from the beginning into an upsert table, up to the
/// end each partition's fetch response reports (`enable.partition.eof`; Tansu's
/// ListOffsets answers wrongly, so not `fetch_watermarks`).
fn table(broker: &str, topic: &str, partitions: i32) -> BTreeMap<String, Value> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::message::Message;
    let c: BaseConsumer = touchline_cluster::client_config(broker, &[]).set("group.id", "results-topic-reader").set("enable.partition.eof", "true").create().expect("reader");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).expect("offset");
    }
    c.assign(&tpl).expect("assign");
    let (mut out, mut ended) = (BTreeMap::new(), BTreeSet::new());
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while ended.len() < partitions as usize {
        assert!(std::time::Instant::now() < until, "{topic}: partitions {ended:?} of {partitions} read to their end in 60 s");
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let k = String::from_utf8(m.key().unwrap_or_default().to_vec()).expect("utf-8 key");
                match m.payload() {
                    Some(v) => out.insert(k, serde_json::from_slice(v).expect("a JSON record")),
                    None => out.remove(&k),
                };
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => panic!("read {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// A stitched, converting person of a tenant without blocked links nor
/// probabilistic ones (so its erasure is exactly "its customer_ids' events
/// never happened"): (tenant, id, customer_ids).
fn erasable(r: &reference::Reference) -> (String, String, BTreeSet<String>) {
    for t in r.tenants() {
        if r.blocked_links(&t) > 0 || t == LINKED {
            continue;
        }
        for id in r.sample_identifiers(&t, 50) {
            let p = r.person(&t, &id).unwrap();
            if p.identifiers.len() > 1 && !p.conversions.is_empty() {
                let customers = p.identifiers.iter().filter(|i| i.kind == reference::IdKind::CustomerId).map(|i| i.id.clone()).collect();
                return (t, id, customers);
            }
        }
    }
    panic!("no stitched converting person to erase");
}

/// `records` without the journey and consent events of `customers` in `tenant`.
fn without(records: &[(i32, Vec<u8>)], tenant: &str, customers: &BTreeSet<String>, partitions: i32) -> Vec<(i32, Vec<u8>)> {
    let ctx = ValidateCtx { now: Ts::now(), partition: None, partitions };
    records
        .iter()
        .filter(|(_, v)| match decode(v, &ctx) {
            Ok(ev) if ev.tenant_id == tenant => match &ev.body {
                Body::Journey(j) => !customers.contains(&j.customer_id),
                Body::ConsentUpdate { customer_id, .. } => !customers.contains(customer_id),
                _ => true,
            },
            _ => true,
        })
        .cloned()
        .collect()
}

fn assert_row(key: &str, row: &Value, want: &RefConversion) {
    assert_eq!(row["timestamp"], format_rfc3339(want.ts), "{key}: timestamp");
    assert!(close(row["value"].as_f64().unwrap(), want.value), "{key}: value {} vs {}", row["value"], want.value);
    assert_eq!(row["currency"], want.currency.as_str(), "{key}: currency");
    assert_eq!(row["lookback_days"], 30, "{key}");
    let person = row["person_id"].as_str().unwrap_or_default();
    assert!(person.starts_with("customer_id:") || person.starts_with("user_id:"), "{key}: person_id {person:?}");
    for m in MODELS {
        for g in GROUPINGS {
            let got: BTreeMap<String, f64> = row["credits"][m][g.as_str()].as_array().unwrap_or_else(|| panic!("{key}: no {m}/{}", g.as_str())).iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["weight"].as_f64().unwrap())).collect();
            let exp = &want.credits[m][g.as_str()];
            let same = got.len() == exp.len() && got.iter().all(|(k, w)| exp.get(k).is_some_and(|e| close(*w, *e)));
            assert!(same, "{key}: {m} by {}: topic {got:?}, reference {exp:?}", g.as_str());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_results_topic_holds_the_reference_credits_per_conversion_after_late_merges_a_kill_and_an_erasure() {
    let broker = Broker::shared_multi_node().await;
    let (partitions, topic) = (4, "ev-results-topic");
    let results_topic = format!("{topic}.attributions");
    let ds = DatasetSpec { seed: 61, tenants: 6, persons: 800, partitions, ..DatasetSpec::default() };
    let records: Vec<GenRecord> = shuffled(generate(&ds), 17);
    let total = offsets_after(&records, partitions);
    create_topics(&broker.addr, topic, partitions).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, format!("[tenants.{LINKED}]\nprobabilistic = true\n")).unwrap();
    let config = config.display().to_string();
    let extra = ["--config", config.as_str()];
    let half = records.len() / 2;
    produce(&broker.addr, topic, &records[..half], 0, &[]).await.expect("produce");
    let (a, b) = tokio::join!(Node::start(multi_node_spec(broker, topic, dir.path(), "a", &extra)), Node::start(multi_node_spec(broker, topic, dir.path(), "b", &extra)));
    let mut b = b;
    let started = wait_for(Duration::from_secs(120), || async { consumed(&[&a, &b]).await >= (half / 2) as i64 }).await;
    assert!(started, "the first records were not consumed: {:?}", view(&a).await);

    // SIGKILL of b while the rest is produced and consumed; b comes back on its directory.
    let producing = {
        let (addr, rest) = (broker.addr.clone(), records[half..].to_vec());
        tokio::spawn(async move { produce(&addr, topic, &rest, 400, &[]).await })
    };
    let midway = wait_for(Duration::from_secs(120), || async { consumed(&[&a, &b]).await >= (half + half / 3) as i64 }).await;
    assert!(midway, "ingest did not get past the middle: {:?}", view(&a).await);
    assert!(!producing.is_finished(), "the kill must come while records are still produced");
    b.kill();
    // a takes b's partitions over (after the session timeout) from the
    // changelog or its standbys, digests included; then b comes back and
    // takes its share again.
    let took_over = wait_for(Duration::from_secs(120), || async {
        view(&a).await.is_some_and(|v| v["partitions"].as_array().is_some_and(|ps| ps.len() == partitions as usize && ps.iter().all(|p| p["owner"] == "a" && p["state"] == "active")))
    })
    .await;
    assert!(took_over, "a did not take every partition over: {:#?}", view(&a).await);
    let b = Node::start(b.spec.clone()).await;
    assert_eq!(producing.await.unwrap().expect("produce"), records.len() - half);
    let settled = wait_settled(&[&a, &b], &["a", "b"], partitions as usize, total, Duration::from_secs(240)).await;
    assert!(settled, "the cluster did not settle: {:#?} {:#?}", view(&a).await, view(&b).await);

    // Erase a stitched converting person through one node.
    let partitioned = as_partitioned(&records, partitions);
    let (tenant, id, customers) = erasable(&reference_of(&partitioned, partitions));
    let r = request(&a.http, "DELETE", &format!("/v1/tenants/{tenant}/customers/{id}"), Duration::from_secs(30)).await.unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    let gone = wait_for(Duration::from_secs(60), || async { a.get(&format!("/v1/tenants/{tenant}/customers/{id}")).await.status == 404 }).await;
    assert!(gone, "the erased person still answers");
    let reference = reference_of(&without(&partitioned, &tenant, &customers, partitions), partitions);

    // The table: exactly the reference's conversions, each with its credits.
    let want = reference.conversion_credits(&MODELS, &GROUPINGS, 30);
    let plain = reference::build(&without(&partitioned, &tenant, &customers, partitions), partitions).conversion_credits(&MODELS, &GROUPINGS, 30);
    let relinked = want.iter().filter(|(k, w)| k.0 == LINKED && plain.get(*k) != Some(*w)).count();
    assert!(relinked > 0, "no conversion of {LINKED} is changed by a probabilistic link: the data proves nothing for it");
    let got = {
        let (b, t) = (broker.addr.clone(), results_topic.clone());
        tokio::task::spawn_blocking(move || table(&b, &t, partitions)).await.unwrap()
    };
    let want_keys: BTreeSet<String> = want.keys().map(|(t, e)| format!("{t}/{e}")).collect();
    let got_keys: BTreeSet<String> = got.keys().cloned().collect();
    assert!(want_keys.len() > 100, "too few conversions to prove anything ({})", want_keys.len());
    assert_eq!(got_keys.difference(&want_keys).collect::<Vec<_>>(), Vec::<&String>::new(), "rows the reference does not have (the erased person's among them?)");
    assert_eq!(want_keys.difference(&got_keys).collect::<Vec<_>>(), Vec::<&String>::new(), "conversions missing from the table");
    for ((t, e), w) in &want {
        let key = format!("{t}/{e}");
        assert_eq!(got[&key]["tenant"], t.as_str());
        assert_eq!(got[&key]["event_id"], e.as_str());
        assert_row(&key, &got[&key], w);
    }

    // Summing the table gives the /v1 reports, on both nodes.
    let ts_of: BTreeMap<String, Ts> = want.iter().map(|((t, e), w)| (format!("{t}/{e}"), w.ts)).collect();
    let from = Ts::from_millis(ds.start_ms);
    let to = from.plus_secs((ds.span_days + 31) * 86_400);
    let mut compared = 0;
    for node in [&a, &b] {
        for t in reference.tenants() {
            for m in MODELS {
                for g in GROUPINGS {
                    let path = format!("/v1/tenants/{t}/attribution?model={m}&group_by={}&from={}&to={}", g.as_str(), format_rfc3339(from), format_rfc3339(to));
                    let v = node.get(&path).await.json().unwrap_or_else(|| panic!("{path}: no JSON"));
                    let cur = v["currency"].as_str().unwrap_or_else(|| panic!("{path}: no currency in {v}"));
                    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
                    for (key, row) in got.iter().filter(|(_, r)| r["tenant"] == t.as_str() && r["currency"] == cur) {
                        // Every row equals the reference's (checked above): its time from there.
                        let ts = ts_of[key];
                        if ts < from || ts >= to {
                            continue;
                        }
                        let value = row["value"].as_f64().unwrap();
                        for k in row["credits"][m][g.as_str()].as_array().unwrap() {
                            let (key, w) = (k["key"].as_str().unwrap().to_string(), k["weight"].as_f64().unwrap());
                            let s = sums.entry(key).or_default();
                            s.0 += w;
                            s.1 += w * value;
                        }
                    }
                    sums.retain(|_, s| s.0.abs() > 1e-12);
                    let rows: BTreeMap<String, (f64, f64)> = v["rows"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap().to_string(), (r["credit"].as_f64().unwrap(), r["value"].as_f64().unwrap()))).collect();
                    let same = rows.len() == sums.len() && rows.iter().all(|(k, (c, val))| sums.get(k).is_some_and(|s| close(s.0, *c) && close(s.1, *val)));
                    assert!(same, "{} {path}: /v1 {rows:?}, table sums {sums:?}", node.spec.node_id);
                    compared += rows.len();
                }
            }
        }
    }
    assert!(compared > 200, "too few report rows compared ({compared})");
    let m = format!("{}\n{}", a.get("/metrics").await.body, b.get("/metrics").await.body);
    assert!(metric(&m, "touchline_results_records_total", "kind=\"tombstone\"") >= 1.0, "the erasure published no tombstone:\n{m}");
}

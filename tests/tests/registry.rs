//! Campaign governance (issue 20) against real nodes on a real broker.
//!
//! - Two nodes mint ids for one tenant at once, half the requests through
//!   each: the ids are unique and gap-free (`001..=N` exactly); a retried
//!   `Idempotency-Key` answers the same id on either node, another body with
//!   that key is refused; the owner is killed with SIGKILL, the survivor
//!   takes the partition over (a rebalance and a restore) and answers every
//!   id and mints the next number; the killed node comes back and both agree.
//! - One node: taxonomy versions, each validation code through the URL
//!   endpoint, a bulk of mixed rows (JSON and CSV), the vendor export, reports
//!   enriched with the registry's labels (and otherwise equal to the batch
//!   reference), bad input as JSON errors naming the field, and the tokens a
//!   registry write needs.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use touchline_actors::domain::routing::partition_for;
use touchline_actors::domain::{GroupBy, TouchInfo, Ts};
use touchline_tests::cluster::{multi_node_spec, view, wait_settled};
use touchline_tests::fixtures::{comparable, create_topics, query_path, read_topic, request};
use touchline_tests::reference::{self, RefQuery};
use touchline_tests::sandbox::{json_close, wait_for, Broker, Node, NodeSpec};

const IDS: &str = "/v1/tenants/acme/registry/ids";

async fn call(node: &Node, method: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let bytes = if body.is_null() { Vec::new() } else { serde_json::to_vec(body).unwrap() };
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    let (s, b) = request(node, method, path, &h, &bytes).await;
    (s, serde_json::from_str(&b).unwrap_or_else(|_| json!({"raw": b})))
}

fn mint_body(title: &str) -> Value {
    json!({"type": "campaign", "brand": "eyl", "year": 2024, "attributes": {"title": title, "mlr_case_id": "MLR-7"}})
}

/// The node owning `tenant`'s partition, per `node`'s cluster view.
async fn owner_of(node: &Node, partitions: i32) -> Option<String> {
    let p = partition_for("acme", partitions);
    let v = view(node).await?;
    v["partitions"].as_array()?.iter().find(|x| x["partition"] == p)?["owner"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mints_on_two_nodes_are_unique_gap_free_and_survive_kill_9() {
    let broker = Broker::start_multi_node().await;
    let (topic, partitions) = ("ev-registry", 2);
    create_topics(&broker.addr, topic, partitions).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = |id: &str| multi_node_spec(&broker, topic, dir.path(), id, &["--snapshot-min-records", "1"]);
    let (n1, n2) = tokio::join!(Node::start(spec("r1")), Node::start(spec("r2")));
    let mut nodes = [n1, n2];
    assert!(wait_settled(&[&nodes[0], &nodes[1]], &["r1", "r2"], partitions as usize, 0, Duration::from_secs(120)).await, "{:?}", view(&nodes[0]).await);

    // 24 mints at once, alternating nodes, each with its own idempotency key.
    let n = 24;
    let mints = (0..n).map(|i| {
        let node = &nodes[i % 2];
        async move {
            let key = format!("k{i}");
            call(node, "POST", IDS, &[("Idempotency-Key", &key)], &mint_body(&format!("Campaign {i}"))).await
        }
    });
    let answers = futures::future::join_all(mints).await;
    let mut ids = BTreeSet::new();
    for (i, (s, b)) in answers.iter().enumerate() {
        assert_eq!(*s, 201, "mint {i}: {b}");
        assert_eq!((b["type"].as_str(), b["brand"].as_str(), b["status"].as_str(), b["attributes"]["title"].as_str()), (Some("campaign"), Some("EYL"), Some("draft"), Some(format!("Campaign {i}").as_str())));
        ids.insert(b["id"].as_str().unwrap().to_owned());
    }
    let want: BTreeSet<String> = (1..=n).map(|k| format!("CMP-EYL-2024-{k:03}")).collect();
    assert_eq!(ids, want, "unique and gap-free");

    // A retry (through the other node) answers the same id; another body with the key is refused.
    let (s, b) = call(&nodes[1], "POST", IDS, &[("Idempotency-Key", "k0")], &mint_body("Campaign 0")).await;
    assert_eq!((s, &b["id"]), (200, &answers[0].1["id"]), "{b}");
    let (s, b) = call(&nodes[0], "POST", IDS, &[("Idempotency-Key", "k0")], &mint_body("another")).await;
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("conflict")), "{b}");

    // SIGKILL the owner; the survivor answers every id and mints the next number.
    let owner = owner_of(&nodes[0], partitions).await.expect("an owner");
    let (dead, alive) = if owner == "r1" { (0, 1) } else { (1, 0) };
    nodes[dead].kill();
    let last = format!("{IDS}/CMP-EYL-2024-{n:03}");
    let took_over = wait_for(Duration::from_secs(120), || async { nodes[alive].get(&last).await.status == 200 }).await;
    assert!(took_over, "the survivor never served the registry: {:?}", view(&nodes[alive]).await);
    let (s, b) = call(&nodes[alive], "POST", IDS, &[("Idempotency-Key", "after-kill")], &mint_body("After")).await;
    assert_eq!((s, b["id"].as_str()), (201, Some(format!("CMP-EYL-2024-{:03}", n + 1).as_str())), "{b}");
    let (s, b) = call(&nodes[alive], "POST", IDS, &[("Idempotency-Key", "k5")], &mint_body("Campaign 5")).await;
    assert_eq!((s, &b["id"]), (200, &answers[5].1["id"]), "a retry across the failover: {b}");

    // The killed node comes back on its data directory; both list the same ids.
    let id = if dead == 0 { "r1" } else { "r2" };
    nodes[dead] = Node::start(spec(id)).await;
    assert!(wait_settled(&[&nodes[0], &nodes[1]], &["r1", "r2"], partitions as usize, 0, Duration::from_secs(120)).await, "{:?}", view(&nodes[0]).await);
    let mut lists = Vec::new();
    for node in &nodes {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = node.get(&format!("{IDS}?type=campaign&limit=10{cursor}")).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json().unwrap();
            all.extend(v["ids"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()));
            match v["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        lists.push(all);
    }
    let want: Vec<String> = (1..=n + 1).map(|k| format!("CMP-EYL-2024-{k:03}")).collect();
    assert_eq!(lists, vec![want.clone(), want]);
}

/// The hand-made template (validate_tests.rs has its twin).
fn template(version: u32) -> Value {
    json!({"version": version, "fields": {
        "utm_source": {"required": true, "case": "lower", "pick_list": ["google", "newsletter", "medscape", "test"], "prohibited": ["TEST"]},
        "utm_medium": {"required": true, "case": "lower", "depends_on": {"field": "utm_source", "lists": {"google": ["cpc", "display"], "newsletter": ["email"]}}},
        "utm_content": {"registry": "content", "pattern": "CNT-[0-9]{4}-[0-9]{4}"},
        "utm_term": {"spaces": "underscore", "min_length": 2, "max_length": 6},
        "cm_campaign_id": {"registry": "campaign"},
        "cm_journey_id": {},
        "cm_node_seq": {"pattern": "[0-9]+"},
        "cm_variant": {"spaces": "hyphen"}
    }})
}

const BEARER: &str = "Bearer t-acme";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxonomy_urls_export_and_enriched_reports() {
    let broker = Broker::start().await;
    let (topic, partitions) = ("ev-registry-urls", 2);
    create_topics(&broker.addr, topic, partitions).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = NodeSpec::new("reg-1", &broker.addr, topic, &dir.path().join("n"));
    spec.extra.extend(["--tenant-token", "acme=t-acme", "--admin-token", "root", "--write-key", "acme=wk-acme"].map(String::from));
    let node = Node::start(spec).await;
    assert!(wait_for(Duration::from_secs(60), || async { node.get("/health/ready").await.status == 200 }).await, "node not ready");
    let auth = [("Authorization", BEARER)];
    let tax = "/v1/tenants/acme/registry/taxonomy";

    // Tokens: a write key, another tenant's or no token cannot write the registry.
    for (h, code) in [(None, 401), (Some("Basic d2stYWNtZTo="), 401), (Some("Bearer wk-acme"), 401)] {
        let headers: Vec<(&str, &str)> = h.map(|h| ("Authorization", h)).into_iter().collect();
        let (s, b) = call(&node, "PUT", tax, &headers, &template(1)).await;
        assert_eq!(s, code, "{h:?}: {b}");
    }

    // Taxonomy: a bad template is 422 naming its field; versions follow each other.
    let mut bad = template(1);
    bad["fields"]["utm_term"]["pattern"] = json!("(");
    bad["fields"]["utm_bogus"] = json!({});
    let (s, b) = call(&node, "PUT", tax, &auth, &bad).await;
    let fields: BTreeSet<&str> = b["error"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!((s, fields), (422, BTreeSet::from(["fields.utm_term", "fields.utm_bogus"])), "{b}");
    let (s, b) = call(&node, "PUT", tax, &auth, &template(2)).await;
    assert!(s == 409 && b["error"]["message"].as_str().unwrap().starts_with("version"), "{b}");
    let (s, b) = call(&node, "PUT", tax, &auth, &template(1)).await;
    assert_eq!((s, &b["version"]), (201, &json!(1)), "{b}");
    let (s, b) = call(&node, "PUT", tax, &[("Authorization", "Bearer root")], &template(1)).await;
    assert_eq!(s, 409, "version 1 again: {b}");
    let mut v2 = template(2);
    v2["fields"]["utm_term"]["max_length"] = json!(8);
    assert_eq!(call(&node, "PUT", tax, &auth, &v2).await.0, 201);
    let (s, b) = call(&node, "GET", tax, &auth, &Value::Null).await;
    assert_eq!((s, &b["version"], &b["template"]["fields"]["utm_term"]["max_length"]), (200, &json!(2), &json!(8)));
    let (s, b) = call(&node, "GET", &format!("{tax}?version=1"), &auth, &Value::Null).await;
    assert_eq!((s, &b["template"]["fields"]["utm_term"]["max_length"]), (200, &json!(6)));

    // Ids: a live content and campaign, a draft content.
    let mint = |kind: &str, brand: Option<&str>, title: &str, status: &str| json!({"type": kind, "brand": brand, "year": 2024, "attributes": {"title": title, "status": status}});
    let content = call(&node, "POST", IDS, &auth, &mint("content", None, "Eylea Medscape Banner", "live")).await.1["id"].as_str().unwrap().to_owned();
    let campaign = call(&node, "POST", IDS, &auth, &mint("campaign", Some("EYL"), "Eylea HCP Launch", "live")).await.1["id"].as_str().unwrap().to_owned();
    let draft = call(&node, "POST", IDS, &auth, &mint("content", None, "Draft", "draft")).await.1["id"].as_str().unwrap().to_owned();
    let journey = call(&node, "POST", IDS, &auth, &mint("journey", Some("EYL"), "HCP onboarding", "live")).await.1["id"].as_str().unwrap().to_owned();
    assert_eq!((content.as_str(), campaign.as_str(), draft.as_str()), ("CNT-2024-0001", "CMP-EYL-2024-001", "CNT-2024-0002"));

    // One URL: transforms as warnings, the final URL, key, dimensions, version.
    let urls = "/v1/tenants/acme/registry/urls";
    let good = json!({"destination": "https://eylea.example/hcp?ref=x&utm_source=old", "vendor": "medscape",
                      "fields": {"utm_source": "Google", "utm_medium": "cpc", "utm_content": content, "utm_term": "a b",
                                 "cm_campaign_id": campaign, "cm_journey_id": journey, "cm_node_seq": "2", "cm_variant": "A"}});
    let (s, b) = call(&node, "POST", urls, &auth, &good).await;
    assert_eq!(s, 201, "{b}");
    let want_url = format!("https://eylea.example/hcp?ref=x&utm_source=google&utm_medium=cpc&utm_content={content}&utm_term=a_b&cm_campaign_id={campaign}&cm_journey_id={journey}&cm_node_seq=2&cm_variant=A");
    assert_eq!(b["url"].as_str(), Some(want_url.as_str()));
    assert_eq!(b["composite_key"].as_str(), Some(format!("{journey}/SEQ-2/{content}/A").as_str()));
    assert_eq!(b["dimensions"], json!({"campaign": campaign, "journey": journey, "sequence": "2", "content": content, "variant": "A", "source_medium": "google / cpc"}));
    assert_eq!(b["template_version"], 2);
    let transforms: Vec<(&str, &str)> = b["warnings"].as_array().unwrap().iter().map(|w| (w["field"].as_str().unwrap(), w["transform"].as_str().unwrap())).collect();
    assert_eq!(transforms, [("utm_source", "case"), ("utm_term", "spaces"), ("utm_source", "destination_parameter")]);

    // Each validation code through the endpoint: 422 with the field and code.
    let cases: [(&str, Value, &str, &str); 9] = [
        ("utm_source", json!(null), "utm_source", "required"),
        ("utm_source", json!("bing"), "utm_source", "not_in_list"),
        ("utm_medium", json!("email"), "utm_medium", "not_in_list"),
        ("cm_node_seq", json!("x2"), "cm_node_seq", "pattern"),
        ("utm_term", json!("abcdefghij"), "utm_term", "too_long"),
        ("utm_term", json!("a"), "utm_term", "too_short"),
        ("utm_source", json!("test"), "utm_source", "prohibited"),
        ("utm_content", json!(draft), "utm_content", "unknown_id"),
        ("cm_campaign_id", json!("CMP-EYL-2024-999"), "cm_campaign_id", "unknown_id"),
    ];
    for (field, value, want_field, want_code) in cases {
        let mut body = good.clone();
        match &value {
            Value::Null => drop(body["fields"].as_object_mut().unwrap().remove(field)),
            v => body["fields"][field] = v.clone(),
        }
        let (s, b) = call(&node, "POST", urls, &auth, &body).await;
        let got: Vec<(&str, &str)> = b["error"]["fields"].as_array().map(|a| a.iter().map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap())).collect()).unwrap_or_default();
        assert!(s == 422 && b["error"]["code"] == "invalid" && got.contains(&(want_field, want_code)), "{field}={value:?}: {s} {b}");
    }
    let mut body = good.clone();
    body["destination"] = json!("ftp://eylea.example/");
    let (s, b) = call(&node, "POST", urls, &auth, &body).await;
    assert_eq!((s, &b["error"]["fields"][0]["field"], &b["error"]["fields"][0]["code"]), (422, &json!("destination"), &json!("invalid_url")), "{b}");

    // Bulk, mixed rows: built, refused, and one minting its content id.
    let mut minting = good.clone();
    minting["fields"].as_object_mut().unwrap().remove("utm_content");
    minting["vendor"] = json!("dsp");
    minting["mint"] = json!({"year": 2024, "attributes": {"title": "Minted banner"}});
    let mut refused = good.clone();
    refused["fields"]["utm_source"] = json!("bing");
    let (s, b) = call(&node, "POST", &format!("{urls}:bulk"), &auth, &json!({"rows": [good, refused, minting]})).await;
    assert_eq!((s, &b["rows"], &b["built"], &b["failed"]), (200, &json!(3), &json!(2), &json!(1)), "{b}");
    let r = &b["results"];
    assert_eq!((&r[0]["ok"], &r[1]["ok"], &r[1]["errors"][0]["code"], &r[2]["ok"]), (&json!(true), &json!(false), &json!("not_in_list"), &json!(true)), "{b}");
    assert_eq!(r[2]["minted"], json!([{"field": "utm_content", "id": "CNT-2024-0003"}]), "{b}");
    let (s, minted) = call(&node, "GET", &format!("{IDS}/CNT-2024-0003"), &auth, &Value::Null).await;
    assert_eq!((s, minted["status"].as_str(), minted["attributes"]["title"].as_str()), (200, Some("live"), Some("Minted banner")));
    // CSV bulk: per-row results by line.
    let csv = format!("destination,vendor,utm_source,utm_medium,utm_content,cm_campaign_id\nhttps://a.example/,cmi,newsletter,email,{content},{campaign}\nnot a url,cmi,newsletter,email,,\n");
    let (s, b) = request(&node, "POST", &format!("{urls}:bulk"), &[("Authorization", BEARER), ("Content-Type", "text/csv")], csv.as_bytes()).await;
    let b: Value = serde_json::from_str(&b).unwrap();
    assert_eq!((s, &b["results"][0]["row"], &b["results"][0]["ok"], &b["results"][1]["row"], &b["results"][1]["errors"][0]["code"]), (200, &json!(2), &json!(true), &json!(3), &json!("invalid_url")), "{b}");

    // Export: every stored URL, by vendor, JSON and CSV.
    let (s, b) = call(&node, "GET", &format!("{urls}?vendor=medscape"), &auth, &Value::Null).await;
    assert_eq!((s, b["urls"].as_array().map(Vec::len), b["urls"][0]["url"].as_str()), (200, Some(1), Some(want_url.as_str())), "{b}");
    let (s, csv) = request(&node, "GET", &format!("{urls}?format=csv"), &[("Authorization", BEARER)], b"").await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!((s, lines.len(), lines[0]), (200, 4, "url,vendor,composite_key,campaign,journey,sequence,content,variant,source_medium,template_version,destination,created_at"), "{csv}");

    // Live traffic through the built URL: attribution by content carries the label.
    let page = |id: &str, who: &str, at: &str, url: &str| json!({"type": "page", "messageId": id, "anonymousId": who, "timestamp": at, "context": {"page": {"url": url}}});
    let buy = |id: &str, who: &str, at: &str| json!({"type": "track", "messageId": id, "anonymousId": who, "event": "Order Completed", "timestamp": at, "properties": {"revenue": 100.0, "currency": "USD"}});
    // Consumed to the end (the cluster view needs the admin token here).
    let partitions_view = || async { call(&node, "GET", "/v1/cluster", &[("Authorization", "Bearer root")], &Value::Null).await.1["partitions"].as_array().cloned().unwrap_or_default() };
    // The view's end offsets come from fetch statistics, refreshed now and
    // then, so they can lag a batch just acknowledged; the consumed offsets
    // are the node's own. A batch is in once they passed what was consumed
    // before it (everything acknowledged then) by its size.
    let consumed_past = |min_total: i64| {
        let partitions_view = &partitions_view;
        async move {
            let consumed = |view: &[Value]| -> std::collections::BTreeMap<i32, i64> { view.iter().map(|p| (p["partition"].as_i64().unwrap_or(-1) as i32, p["consumed_offset"].as_i64().unwrap_or(-1))).collect() };
            let done = wait_for(Duration::from_secs(60), || async {
                let view = partitions_view().await;
                !view.is_empty() && consumed(&view).values().sum::<i64>() >= min_total && view.iter().all(|p| p["end_offset"].as_i64().is_some() && p["end_offset"] == p["consumed_offset"])
            })
            .await;
            assert!(done, "never consumed past {min_total}: {:?}", partitions_view().await);
            consumed(&partitions_view().await)
        }
    };
    let before: i64 = consumed_past(0).await.values().sum();
    let batch = json!({"batch": [
        page("p1", "a1", "2026-12-01T10:00:00Z", &want_url), buy("o1", "a1", "2026-12-01T12:00:00Z"),
        page("p2", "a2", "2026-12-01T10:00:00Z", "https://eylea.example/?utm_source=newsletter&utm_medium=email&utm_content=plain"), buy("o2", "a2", "2026-12-01T12:00:00Z"),
        page("p3", "a3", "2026-12-01T11:00:00Z", "https://eylea.example/?utm_source=Google&utm_medium=cpc"),
    ]});
    let (s, b) = request(&node, "POST", "/v1/collect/batch", &[("Authorization", "Basic d2stYWNtZTo="), ("Content-Type", "application/json")], &serde_json::to_vec(&batch).unwrap()).await;
    assert_eq!(s, 200, "{b}");
    let ends = consumed_past(before + 5).await;
    let records: Vec<(i32, Vec<u8>)> = read_topic(&broker.addr, topic, &ends).into_iter().map(|r| (r.0, r.3)).collect();
    let mut q = RefQuery::new("acme", "linear", Ts::new(1_796_083_200, 0), Ts::new(1_796_083_200 + 86_400, 0));
    q.group_by = "content".into();
    let (s, got) = call(&node, "GET", &query_path(&q), &auth, &Value::Null).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(comparable(&got), comparable(&reference::build(&records, partitions).attribution(&q)), "labels aside, the reference's answer");
    let row = |key: &str| got["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).cloned().unwrap();
    assert_eq!(row(&content)["label"], "Eylea Medscape Banner");
    assert_eq!(row(&content)["registry"], json!({"id": content, "type": "content", "status": "live", "brand": null}));
    assert_eq!(row("plain").as_object().unwrap().keys().collect::<Vec<_>>(), ["credit", "key", "value"], "an unknown key is unchanged");
    let (_, camps) = call(&node, "GET", "/v1/tenants/acme/campaigns?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", &auth, &Value::Null).await;
    let c = camps["campaigns"].as_array().unwrap().iter().find(|c| c["campaign_id"] == campaign.as_str()).cloned().unwrap();
    assert_eq!(c["label"], "Eylea HCP Launch", "{camps}");
    let (_, perf) = call(&node, "GET", &format!("/v1/tenants/acme/journeys/{journey}/performance?granularity=day&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"), &auth, &Value::Null).await;
    assert_eq!((&perf["buckets"][0]["label"], &perf["journey_label"]), (&json!("Eylea Medscape Banner"), &json!("HCP onboarding")), "{perf}");

    // Compliance of that traffic: p1 (the built URL) compliant, p2 names an
    // unknown content id, p3 has a value the taxonomy would lower-case.
    let (s, c) = call(&node, "GET", "/v1/tenants/acme/registry/compliance?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", &auth, &Value::Null).await;
    assert_eq!(s, 200, "{c}");
    let t = &c["totals"];
    assert_eq!((&c["taxonomy_version"], &t["touchpoints"], &t["compliant"], &t["unknown_id"], &t["off_taxonomy"]), (&json!(2), &json!(3), &json!(1), &json!(1), &json!(1)), "{c}");
    let by_sm: Vec<(&str, u64, u64)> = c["by_source_medium"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap(), r["compliant"].as_u64().unwrap(), r["touchpoints"].as_u64().unwrap())).collect();
    assert_eq!(by_sm, [("Google / cpc", 0, 1), ("google / cpc", 1, 1), ("newsletter / email", 0, 1)]);
    assert_eq!(c["top_offenders"], json!([{"field": "utm_content", "value": "plain", "reason": "unknown_id", "count": 1}, {"field": "utm_source", "value": "Google", "reason": "off_taxonomy", "count": 1}]), "{c}");
    let metrics = node.get("/metrics").await.body;
    let counted = |reason: &str| touchline_tests::cluster::metric(&metrics, "touchline_tracking_noncompliant_total", &format!("reason=\"{reason}\""));
    assert_eq!((counted("unknown_id"), counted("off_taxonomy")), (1.0, 1.0), "counted as applied");

    // Credit under a model: a4's path goes through every verdict (and an
    // untracked page), a5 converts without a touchpoint (`(direct)`).
    let before: i64 = consumed_past(0).await.values().sum();
    let batch = json!({"batch": [
        page("p4", "a4", "2026-12-01T13:00:00Z", "https://eylea.example/?utm_source=Google&utm_medium=cpc"),
        page("p5", "a4", "2026-12-01T14:00:00Z", &want_url),
        page("p6", "a4", "2026-12-01T15:00:00Z", "https://eylea.example/?utm_source=newsletter&utm_medium=email&utm_content=plain"),
        page("p7", "a4", "2026-12-01T15:30:00Z", "https://eylea.example/"),
        buy("o4", "a4", "2026-12-01T16:00:00Z"), buy("o5", "a5", "2026-12-01T16:00:00Z"),
    ]});
    let (s, b) = request(&node, "POST", "/v1/collect/batch", &[("Authorization", "Basic d2stYWNtZTo="), ("Content-Type", "application/json")], &serde_json::to_vec(&batch).unwrap()).await;
    assert_eq!(s, 200, "{b}");
    let ends = consumed_past(before + 6).await;
    let records: Vec<(i32, Vec<u8>)> = read_topic(&broker.addr, topic, &ends).into_iter().map(|r| (r.0, r.3)).collect();
    let batch_ref = reference::build(&records, partitions);
    for model in ["linear", "time_decay", "position_based", "first_touch", "participation"] {
        let path = format!("/v1/tenants/acme/registry/compliance?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z&model={model}");
        let (s, c) = call(&node, "GET", &path, &auth, &Value::Null).await;
        assert_eq!(s, 200, "{c}");
        let q = RefQuery::new("acme", model, Ts::new(1_796_083_200, 0), Ts::new(1_796_083_200 + 86_400, 0));
        // Equal to the reference up to summation order (1e-9 relative).
        let (got, want) = (compliance_credit(&c, None), reference_credit(&batch_ref.attribution_keyed(&q, "verdict", &|t| verdict_of(t).into())));
        assert!(json_close(&got, &want, 1e-9), "{model}: {c}\n node: {got}\n  ref: {want}");
        let by_sm = batch_ref.attribution_keyed(&q, "verdict/source_medium", &|t| format!("{}\u{1f}{}", verdict_of(t), t.key(GroupBy::SourceMedium)));
        let (got, want) = (compliance_credit(&c, Some("by_source_medium")), reference_credit(&by_sm));
        assert!(json_close(&got, &want, 1e-9), "{model} by source / medium: {c}\n node: {got}\n  ref: {want}");
        let t = &c["totals"]["credit"];
        let judged: f64 = ["compliant", "unknown_id", "off_taxonomy"].iter().map(|v| t[v]["credit"].as_f64().unwrap()).sum();
        let share = t["compliant_share"].as_f64().unwrap();
        assert!((share - t["compliant"]["credit"].as_f64().unwrap() / judged).abs() < 1e-12, "{model}: {c}");
    }
    let (_, c) = call(&node, "GET", "/v1/tenants/acme/registry/compliance", &auth, &Value::Null).await;
    let metrics = node.get("/metrics").await.body;
    let counted = |reason: &str| touchline_tests::cluster::metric(&metrics, "touchline_tracking_noncompliant_total", &format!("reason=\"{reason}\""));
    assert_eq!((counted("unknown_id"), counted("off_taxonomy")), (c["totals"]["unknown_id"].as_f64().unwrap(), c["totals"]["off_taxonomy"].as_f64().unwrap()), "the counter is the committed state's: {c}");
    for (query, names) in [("model=markov", "`model`"), ("model=custom", "`weights`"), ("lookback_days=-1", "`lookback_days`"), ("group_by=channel", "group_by")] {
        let (s, b) = call(&node, "GET", &format!("/v1/tenants/acme/registry/compliance?{query}"), &auth, &Value::Null).await;
        assert!(s == 400 && b["error"]["message"].as_str().is_some_and(|m| m.contains(names)), "{query}: {s} {b}");
    }

    // PATCH: attributes merge, status changes, the id never does.
    let one = format!("{IDS}/{content}");
    let (s, b) = call(&node, "PATCH", &one, &auth, &json!({"attributes": {"status": "retired", "mlr_case_id": "MLR-9", "title": null}})).await;
    assert_eq!((s, b["status"].as_str(), &b["attributes"]), (200, Some("retired"), &json!({"mlr_case_id": "MLR-9"})), "{b}");
    let (s, b) = call(&node, "PATCH", &one, &auth, &json!({"id": "X", "attributes": {}})).await;
    assert!(s == 400 && b["error"]["message"].as_str().unwrap().contains("`id`"), "{b}");

    // Bad input: JSON errors naming the field or parameter, never a 500.
    let bad: [(&str, &str, Value, u16, &str); 9] = [
        ("POST", IDS, json!({"type": "promo"}), 400, "`type`"),
        ("POST", IDS, json!({"type": "campaign"}), 400, "`brand`"),
        ("POST", IDS, json!({"type": "content", "year": 20245}), 400, "`year`"),
        ("POST", IDS, json!({"type": "content", "attributes": {"status": "gone"}}), 400, "`attributes.status`"),
        ("POST", IDS, json!({"type": "content", "colour": 1}), 400, "colour"),
        ("GET", "/v1/tenants/acme/registry/ids?type=promo", Value::Null, 400, "`type`"),
        ("GET", "/v1/tenants/acme/registry/ids/NOPE", Value::Null, 404, "NOPE"),
        ("POST", urls, json!({"fields": {}}), 400, "destination"),
        ("GET", "/v1/tenants/acme/registry/urls?format=xml", Value::Null, 400, "`format`"),
    ];
    for (method, path, body, status, names) in bad {
        let (s, b) = call(&node, method, path, &auth, &body).await;
        assert!(s == status && b["error"]["message"].as_str().is_some_and(|m| m.contains(names)), "{method} {path} {body}: {s} {b}");
    }
    let (s, b) = request(&node, "POST", IDS, &[("Authorization", BEARER)], b"{not json").await;
    assert!(s == 400 && b.contains("\"bad_request\""), "{b}");
}

/// The verdict the test gives its own pages: their URLs are hand-made, so it
/// knows which one is which (`plain` is no registry id, `Google` is not
/// lower case, the built URL is compliant, a URL without parameters is
/// untracked).
fn verdict_of(t: &TouchInfo) -> &'static str {
    let param = |name: &str| t.dims.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match (t.dims.params.is_empty(), param("utm_content"), param("utm_source")) {
        (true, ..) => "untracked",
        (_, Some("plain"), _) => "unknown_id",
        (_, _, Some("Google")) => "off_taxonomy",
        _ => "compliant",
    }
}

/// A reference report keyed by verdict (and maybe more): conversions, value
/// and every key's credit and value.
fn reference_credit(r: &Value) -> Value {
    let rows: serde_json::Map<String, Value> = r["rows"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap().to_owned(), json!([r["credit"], r["value"]]))).collect();
    json!({"conversions": r["conversions"], "conversion_value": r["conversion_value"], "rows": rows})
}

/// The same of a compliance answer: its totals' credit (`rows` None), or
/// the credit of each row of `rows` keyed `verdict\u{1f}key`; zeros left out
/// as the reference leaves them out.
fn compliance_credit(c: &Value, rows: Option<&str>) -> Value {
    let mut out = serde_json::Map::new();
    let mut put = |key: String, credit: &Value| {
        if credit["credit"].as_f64() != Some(0.0) {
            out.insert(key, json!([credit["credit"], credit["value"]]));
        }
    };
    let verdicts = ["compliant", "unknown_id", "off_taxonomy"];
    match rows {
        None => {
            for v in verdicts {
                put(v.to_owned(), &c["totals"]["credit"][v]);
            }
            put("untracked".into(), &c["attribution"]["untracked"]);
            put("(direct)".into(), &c["attribution"]["direct"]);
        }
        Some(rows) => {
            for row in c[rows].as_array().unwrap() {
                for v in verdicts {
                    put(format!("{v}\u{1f}{}", row["key"].as_str().unwrap()), &row["credit"][v]);
                }
            }
            // The reference keys untracked touchpoints and direct conversions too.
            put(format!("untracked\u{1f}{}", touchline_actors::domain::NONE_KEY), &c["attribution"]["untracked"]);
            put("(direct)".into(), &c["attribution"]["direct"]);
        }
    }
    json!({"conversions": c["attribution"]["conversions"], "conversion_value": c["attribution"]["conversion_value"], "rows": out})
}

//! The index routes and the "never seen" answer on one node (embedded broker):
//! `GET /v1/tenants` lists each tenant with its accepted events, persons and
//! event-time range; `GET /v1/tenants/{t}/customers` pages every person once in
//! a stable order; every tenant query about a tenant without events is 404
//! `not_found` ("no events for tenant"), not a report of zeros; a date alone in
//! `from`/`to` is midnight UTC.

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use touchline_node::gen::GenRecord;
use touchline_tests::sandbox::{wait_for, Node, NodeSpec};

fn ev(tenant: &str, id: &str, ty: &str, ts: &str, extra: Value) -> GenRecord {
    let mut m = json!({"event_id": id, "tenant_id": tenant, "event_type": ty, "timestamp": ts});
    m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    GenRecord { key: tenant.into(), value: serde_json::to_vec(&m).unwrap(), partition: None, valid: true }
}

fn touch(tenant: &str, id: &str, ts: &str, cid: &str, channel: &str) -> GenRecord {
    ev(tenant, id, "touchpoint_interaction", ts, json!({"customer_id": cid, "touchpoints": {"channel": channel, "interaction_type": "click"}}))
}

/// acme: 5 accepted events (one more is a duplicate) of 4 persons, from
/// 2026-10-01T09:00 to 2026-10-20T10:00; globex: one event.
fn dataset() -> Vec<GenRecord> {
    vec![
        ev("acme", "a4", "identify", "2026-10-01T09:00:00Z", json!({"customer_id": "c-3", "user_id": "u-3"})),
        touch("acme", "a1", "2026-10-02T10:00:00Z", "c-1", "email"),
        touch("acme", "a2", "2026-10-05T10:00:00Z", "c-2", "search"),
        ev("acme", "a3", "conversion_event", "2026-10-06T10:00:00Z", json!({"customer_id": "c-1", "conversion_data": {"value": 100.0, "currency": "USD"}})),
        touch("acme", "a5", "2026-10-20T10:00:00Z", "c-4", "social"),
        touch("acme", "a5", "2026-10-20T10:00:00Z", "c-4", "social"),
        touch("globex", "g1", "2026-10-10T00:00:00Z", "c-9", "email"),
    ]
}

/// Every GET route of a tenant, with the parameters each needs.
fn tenant_routes(t: &str) -> Vec<String> {
    ["attribution", "attribution/compare", "customers", "customers/c-1", "journeys/J1/performance", "campaigns", "cohorts", "variants"]
        .iter()
        .map(|r| format!("/v1/tenants/{t}/{r}"))
        .collect()
}

async fn assert_never_seen(node: &Node, t: &str) {
    for path in tenant_routes(t) {
        let r = node.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        let v = r.json().unwrap_or_default();
        assert_eq!(v["error"]["code"], "not_found", "{path}: {}", r.body);
        assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("no events for tenant")), "{path}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_customers_never_seen_tenants_and_dates() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = NodeSpec::new("listing-1", "", "marketing-events", &dir.path().join("data"));
    spec.extra = vec!["--partitions".into(), "4".into()];
    let node = Node::start(spec).await;
    assert!(wait_for(Duration::from_secs(60), || async { node.get("/health/ready").await.status == 200 }).await, "never ready");

    // Nothing yet: no tenant listed, every tenant route 404.
    let r = node.get("/v1/tenants").await;
    assert_eq!((r.status, r.json().map(|v| v["tenants"].clone())), (200, Some(json!([]))), "{}", r.body);
    assert_never_seen(&node, "acme").await;

    let records = dataset();
    let broker = node.embedded.clone().expect("embedded broker");
    touchline_node::gen::produce(&broker, "marketing-events", &records, 0, &[]).await.expect("produce");
    assert!(node.wait_consumed(records.len() as i64, Duration::from_secs(60)).await, "not consumed");

    // The tenants, their counts and event-time ranges.
    let r = node.get("/v1/tenants").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json().unwrap();
    let rows = v["tenants"].as_array().expect("tenants");
    let names: Vec<&str> = rows.iter().filter_map(|t| t["tenant"].as_str()).collect();
    assert_eq!(names, ["acme", "globex"], "{v}");
    let acme = &rows[0];
    assert_eq!((&acme["events"], &acme["persons"]), (&json!(5), &json!(4)), "{v}");
    assert_eq!((&acme["first_event"], &acme["last_event"]), (&json!("2026-10-01T09:00:00Z"), &json!("2026-10-20T10:00:00Z")), "{v}");
    assert_eq!((&rows[1]["events"], &rows[1]["first_event"]), (&json!(1), &json!("2026-10-10T00:00:00Z")), "{v}");
    let r = node.get("/v1/tenants?scope=planet").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("`scope`"), "{}", r.body);

    // Customers, two pages of limit 3 = one page of limit 100, each person once.
    let all = node.get("/v1/tenants/acme/customers").await.json().unwrap();
    assert_eq!(all["next_cursor"], Value::Null, "{all}");
    let everyone: Vec<Value> = all["customers"].as_array().unwrap().clone();
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants/acme/customers?limit=3&cursor={c}"),
            None => "/v1/tenants/acme/customers?limit=3".to_string(),
        };
        let r = node.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let page = r.json().unwrap();
        assert!(page["customers"].as_array().unwrap().len() <= 3, "{page}");
        paged.extend(page["customers"].as_array().unwrap().clone());
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, everyone, "pages differ from the full listing");
    let ids: BTreeSet<&str> = everyone.iter().flat_map(|c| c["identifiers"].as_array().unwrap()).filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["c-1", "c-2", "c-3", "u-3", "c-4"]), "{all}");
    assert_eq!(everyone.len(), 4, "{all}");
    for id in &ids {
        assert_eq!(node.get(&format!("/v1/tenants/acme/customers/{id}")).await.status, 200, "{id} listed but not found");
    }
    for (path, param) in [("/v1/tenants/acme/customers?limit=0", "`limit`"), ("/v1/tenants/acme/customers?cursor=zz", "`cursor`")] {
        let r = node.get(path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains(param), "{path}: {}", r.body);
    }

    // A tenant never seen is still 404 on every route once others have data.
    assert_never_seen(&node, "initech").await;

    // Dates alone are midnight UTC.
    let by_date = node.get("/v1/tenants/acme/attribution?model=linear&from=2026-10-01&to=2026-11-01").await;
    let by_time = node.get("/v1/tenants/acme/attribution?model=linear&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z").await;
    assert_eq!(by_date.status, 200, "{}", by_date.body);
    assert_eq!(by_date.json(), by_time.json());
    assert_eq!(by_date.json().unwrap()["conversions"], 1, "{}", by_date.body);
    let r = node.get("/v1/tenants/acme/attribution?from=2026-10-32").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("`from`"), "{}", r.body);
}

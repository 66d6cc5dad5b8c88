//! Auth per http-api.md: with tokens configured every `/v1` request needs a
//! bearer token; a tenant token reaches only its tenant (403 elsewhere, also
//! `/v1/cluster` and `/v1/tenants`), the admin token reaches everything;
//! `/metrics` and `/health/*` stay open. Runs one node on its embedded broker,
//! with one event of each tenant (a tenant without events is 404).

use std::time::Duration;
use touchline_node::client::request_with;
use touchline_tests::sandbox::{wait_for, Node, NodeSpec};

async fn status(node: &Node, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = request_with(&node.http, method, path, &headers, Duration::from_secs(30)).await.expect("HTTP reply");
    let code = r.json().and_then(|v| v["error"]["code"].as_str().map(str::to_string)).unwrap_or_default();
    (r.status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_gate_tenants_and_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = NodeSpec::new("auth-1", "", "marketing-events", dir.path());
    spec.extra = ["--partitions", "2", "--admin-token", "adm1n", "--tenant-token", "acme=tok-acme", "--tenant-token", "beta=tok-beta"]
        .map(String::from)
        .to_vec();
    let node = Node::start(spec).await;
    let ready = wait_for(Duration::from_secs(60), || async { node.get("/health/ready").await.status == 200 }).await;
    assert!(ready, "node never became ready");
    let records: Vec<touchline_node::gen::GenRecord> = ["acme", "beta"]
        .iter()
        .map(|t| {
            let e = serde_json::json!({"event_id": format!("{t}-1"), "tenant_id": t, "event_type": "touchpoint_interaction",
                "timestamp": "2026-10-05T10:00:00Z", "customer_id": "c0", "touchpoints": {"channel": "email", "interaction_type": "click"}});
            touchline_node::gen::GenRecord { key: t.to_string(), value: serde_json::to_vec(&e).unwrap(), partition: None, valid: true }
        })
        .collect();
    touchline_node::gen::produce(node.embedded.as_deref().expect("embedded broker"), "marketing-events", &records, 0, &[]).await.expect("produce");
    let applied = wait_for(Duration::from_secs(60), || async {
        status(&node, "GET", "/v1/tenants/acme/variants", Some("adm1n")).await.0 == 200 && status(&node, "GET", "/v1/tenants/beta/variants", Some("adm1n")).await.0 == 200
    })
    .await;
    assert!(applied, "the two events were not applied");

    let acme = "/v1/tenants/acme/attribution";
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        ("GET", acme, None, 401, "unauthorized"),
        ("GET", acme, Some("wrong"), 401, "unauthorized"),
        ("GET", acme, Some("tok-acme"), 200, ""),
        ("GET", acme, Some("adm1n"), 200, ""),
        ("GET", acme, Some("tok-beta"), 403, "forbidden"),
        ("GET", "/v1/tenants/beta/attribution/compare", Some("tok-beta"), 200, ""),
        ("GET", "/v1/tenants/beta/customers/c1", Some("tok-acme"), 403, "forbidden"),
        ("GET", "/v1/tenants/acme/customers/c1", Some("tok-acme"), 404, "not_found"),
        ("GET", "/v1/cluster", None, 401, "unauthorized"),
        ("GET", "/v1/cluster", Some("tok-acme"), 403, "forbidden"),
        ("GET", "/v1/cluster", Some("adm1n"), 200, ""),
        ("GET", "/v1/tenants", None, 401, "unauthorized"),
        ("GET", "/v1/tenants", Some("tok-acme"), 403, "forbidden"),
        ("GET", "/v1/tenants", Some("adm1n"), 200, ""),
        ("GET", "/metrics", None, 200, ""),
        ("GET", "/health/live", None, 200, ""),
        ("GET", "/health/ready", None, 200, ""),
    ];
    for (method, path, token, want, code) in cases {
        let (got, got_code) = status(&node, method, path, *token).await;
        assert_eq!((got, got_code.as_str()), (*want, *code), "{method} {path} with {token:?}");
    }
}

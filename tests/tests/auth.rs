//! Auth per http-api.md: with tokens configured every `/v1` request needs a
//! bearer token; a tenant token reaches only its tenant (403 elsewhere, also
//! `/v1/cluster`), the admin token reaches everything; `/metrics` and
//! `/health/*` stay open. Runs one node on its embedded broker.

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
        ("GET", "/metrics", None, 200, ""),
        ("GET", "/health/live", None, 200, ""),
        ("GET", "/health/ready", None, 200, ""),
    ];
    for (method, path, token, want, code) in cases {
        let (got, got_code) = status(&node, method, path, *token).await;
        assert_eq!((got, got_code.as_str()), (*want, *code), "{method} {path} with {token:?}");
    }
}

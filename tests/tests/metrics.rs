//! The metrics contract: every family http-api.md lists is exported from start-up
//! (before any event), and the exposition passes `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use touchline_tests::sandbox::{touchline_bin, wait_for};

const REQUIRED: &[&str] = &[
    "touchline_events_consumed_total",
    "touchline_events_applied_total",
    "touchline_events_rejected_total",
    "touchline_events_late_total",
    "touchline_events_duplicate_total",
    "touchline_actors_active",
    "touchline_actor_restarts_total",
    "touchline_actors_passivated_total",
    "touchline_http_request_duration_seconds",
    "touchline_partition_lag",
    "touchline_partition_applied_offset",
    "touchline_storage_errors_total",
    "touchline_partition_storage_stalled",
];

/// Whether `GET path` answers 200 within `deadline`.
async fn answers_ok(addr: &str, path: &str, deadline: Duration) -> bool {
    wait_for(deadline, || async move { touchline_node::client::get(addr, path).await.is_ok_and(|r| r.status == 200) }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_complete_at_startup_and_pass_promtool_and_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    // No --brokers: the node starts its embedded broker.
    let mut child = Command::new(touchline_bin())
        .args(["node", "--node-id", "metrics-1", "--http", "127.0.0.1:0", "--partitions", "2", "--session-timeout-ms", "6000"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().unwrap();
    let addr = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).find_map(|l| l.split("http listening on ").nth(1).map(|a| a.trim().to_string()))
    })
    .await
    .unwrap()
    .expect("node printed its address");
    // Every family is there from start-up, before any partition is assigned.
    assert!(answers_ok(&addr, "/metrics", Duration::from_secs(30)).await, "/metrics never answered");
    let body = touchline_node::client::get(&addr, "/metrics").await.unwrap().body;
    for name in REQUIRED {
        assert!(body.lines().any(|l| l.starts_with(name)), "{name} missing from /metrics at start-up:\n{body}");
    }
    // Real partition series appear once partitions are assigned.
    assert!(answers_ok(&addr, "/health/ready", Duration::from_secs(60)).await, "node never became ready");
    let body = touchline_node::client::get(&addr, "/metrics").await.unwrap().body;
    for name in REQUIRED {
        assert!(body.lines().any(|l| l.starts_with(name)), "{name} missing from /metrics:\n{body}");
        assert!(body.contains(&format!("# HELP {name} ")), "{name} has no HELP");
    }
    for reason in ["decode", "schema", "tenant", "timestamp", "misrouted", "too_large", "unknown_type", "poison"] {
        assert!(body.contains(&format!("touchline_events_rejected_total{{reason=\"{reason}\"}} 0")), "reason {reason} not exported at zero");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`) on PATH");
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Bad input gets a JSON error naming the parameter, never a panic or HTML.
    for (path, status, code, needle) in [
        ("/v1/tenants/acme/attribution?model=nope", 400, "bad_request", "model"),
        ("/v1/tenants/acme/attribution?model=custom", 400, "bad_request", "weights"),
        ("/v1/tenants/acme/attribution?from=yesterday", 400, "bad_request", "from"),
        ("/v1/tenants/acme/attribution?group_by=planet", 400, "bad_request", "group_by"),
        ("/v1/tenants/acme/attribution?lookback_days=-1", 400, "bad_request", "lookback_days"),
        ("/v1/tenants/acme/attribution?bogus=1", 400, "bad_request", "bogus"),
        ("/v1/tenants/Not%20A%20Tenant/attribution", 400, "bad_request", "tenant"),
        ("/v1/tenants/acme/customers/nobody", 404, "not_found", "no events for tenant"),
        ("/v1/nothing-here", 404, "not_found", "nothing-here"),
    ] {
        let r = touchline_node::client::get(&addr, path).await.unwrap();
        assert_eq!(r.status, status, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        let v = r.json().unwrap_or_else(|| panic!("{path}: not JSON: {}", r.body));
        assert_eq!(v["error"]["code"], code, "{path}");
        assert!(v["error"]["message"].as_str().unwrap_or("").contains(needle), "{path}: {}", r.body);
    }
    // A valid query on a tenant without events says so (404), not a report of zeros.
    let r = touchline_node::client::get(&addr, "/v1/tenants/acme/attribution?model=linear").await.unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.json().unwrap()["error"]["message"].as_str().unwrap_or("").contains("no events for tenant"), "{}", r.body);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

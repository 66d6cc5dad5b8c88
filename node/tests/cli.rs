//! The `touchline` binary's configuration errors, from the outside: each bad
//! setting exits non-zero with a message naming the key, whether it came from the
//! file, the environment or a flag. (Being an integration test of this package also
//! makes `cargo test --workspace` build the current binary, which the multi-node
//! tests in `tests/` start as a process.)

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn touchline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_touchline"));
    cmd.args(args);
    // A clean environment for TOUCHLINE_* so the caller's settings cannot leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("TOUCHLINE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run touchline")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `touchline node --config <file with toml>` fails; returns its stderr.
fn node_with_file_fails(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, toml).unwrap();
    let o = touchline(&["node", "--config", path.to_str().unwrap()], &[]);
    assert!(!o.status.success(), "accepted: {toml}");
    stderr(&o)
}

#[test]
fn unknown_file_key_is_named() {
    let e = node_with_file_fails("topic = \"t\"\n[engine]\nmax_ids_per_persn = 10\n");
    assert!(e.contains("max_ids_per_persn"), "stderr: {e}");
}

#[test]
fn invalid_file_value_is_named_with_its_key() {
    let e = node_with_file_fails("[engine]\ndefault_lookback_days = 0\n");
    assert!(e.contains("engine.default_lookback_days"), "stderr: {e}");
}

#[test]
fn env_value_is_validated_and_named() {
    let o = touchline(&["node"], &[("TOUCHLINE_PARTITIONS", "0")]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("partitions"), "stderr: {e}");
}

#[test]
fn flag_wins_over_env_and_is_validated() {
    // The env value is valid; the flag overrides it with an invalid one.
    let o = touchline(&["node", "--node-id", "bad id!"], &[("TOUCHLINE_NODE_ID", "n1")]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("node_id"), "stderr: {e}");
}

#[test]
fn malformed_tenant_token_names_the_auth_key() {
    let o = touchline(&["node", "--tenant-token", "no-equals-sign"], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("auth.tenant_tokens"), "stderr: {e}");
    assert!(!e.contains("no-equals-sign"), "a token must never be echoed: {e}");
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["node", "gen", "demo", "bench"] {
        let o = touchline(&[sub, "--help"], &[]);
        assert!(o.status.success(), "{sub} --help: {}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage"), "{sub} --help");
    }
}

#[test]
fn tls_cert_without_key_names_the_missing_key() {
    let o = touchline(&["node", "--tls-cert", "/nonexistent/cert.pem"], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("tls.key"), "stderr: {e}");
    let o = touchline(&["node"], &[("TOUCHLINE_TLS_KEY", "/nonexistent/key.pem")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("tls.cert"), "stderr: {}", stderr(&o));
}

#[test]
fn unreadable_or_invalid_tls_files_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(&junk, "-----BEGIN NOTHING-----\n").unwrap();
    let (cert, key, junk) = (cert.to_str().unwrap(), key.to_str().unwrap(), junk.to_str().unwrap());
    let missing = dir.path().join("missing.pem");
    // Flags: an unreadable certificate.
    let o = touchline(&["node", "--tls-cert", missing.to_str().unwrap(), "--tls-key", key], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("tls.cert") && e.contains("cannot read"), "stderr: {e}");
    // Environment: a key file without a key.
    let o = touchline(&["node"], &[("TOUCHLINE_TLS_CERT", cert), ("TOUCHLINE_TLS_KEY", junk)]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("tls.key"), "stderr: {e}");
    // File: a CA bundle without a certificate.
    let e = node_with_file_fails(&format!("[tls]\ncert = {cert:?}\nkey = {key:?}\nca = {junk:?}\n"));
    assert!(e.contains("tls.ca"), "stderr: {e}");
}

#[test]
fn unreachable_brokers_exit_with_their_address() {
    // A port nothing listens on (bound, then released).
    let addr = touchline_node::client::free_local_addr().expect("free port").to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_touchline"))
        .args(["node", "--brokers", &addr, "--http", "127.0.0.1:0", "--data-dir", dir.path().to_str().unwrap()])
        // Few log lines, so the unread stderr pipe never fills.
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run touchline");
    // It gives up on its own (librdkafka's 10 s metadata timeout); bounded here.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 60 s after its brokers were unreachable");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "started without its brokers");
    let mut e = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut e).expect("read stderr");
    assert!(e.contains(&format!("kafka at {addr}")), "stderr does not name the brokers: {e}");
}

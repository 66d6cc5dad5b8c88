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

#[test]
fn a_clustered_wildcard_bind_needs_an_advertised_address() {
    // Refused before any broker is contacted (nothing listens on port 1).
    let o = touchline(&["node", "--brokers", "127.0.0.1:1", "--http", "0.0.0.0:0"], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("`advertise_http`") && e.contains("0.0.0.0"), "stderr: {e}");
    // A wildcard advertised address from the environment names the key and the variable.
    let o = touchline(&["node", "--brokers", "127.0.0.1:1", "--http", "0.0.0.0:0"], &[("TOUCHLINE_ADVERTISE_HTTP", "0.0.0.0:8080")]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("`advertise_http`") && e.contains("TOUCHLINE_ADVERTISE_HTTP"), "stderr: {e}");
}

#[test]
fn the_fault_hook_is_no_config_key_and_not_in_the_help() {
    let e = node_with_file_fails("[engine]\nfault_panic_customer = \"poison-me\"\n");
    assert!(e.contains("fault_panic_customer"), "stderr: {e}");
    let o = touchline(&["node", "--help"], &[]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(!help.contains("panic"), "the fault hook shows in the help:\n{help}");
    // The test flag is still accepted, under its unsafe name only.
    let o = touchline(&["node", "--fault-panic-customer", "x", "--help"], &[]);
    assert!(!o.status.success(), "the old flag name is still accepted");
    let o = touchline(&["node", "--unsafe-fault-panic-customer", "x", "--help"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn environment_errors_name_the_variable() {
    for (var, value, key) in [
        ("TOUCHLINE_PARTITIONS", "abc", "--partitions"),
        ("TOUCHLINE_LOG_FORMAT", "xml", "--log-format"),
        ("TOUCHLINE_HTTP", "nowhere", "--http"),
        ("TOUCHLINE_PARTITIONS", "0", "`partitions`"),
        ("TOUCHLINE_STANDBY_REPLICAS", "9", "`cluster.standby_replicas`"),
    ] {
        let o = touchline(&["node"], &[(var, value)]);
        assert!(!o.status.success(), "{var}={value} accepted");
        let e = stderr(&o);
        assert!(e.contains(var) && e.contains(key), "{var}={value}: stderr: {e}");
    }
    // A flag that wins over the variable is the one named.
    let o = touchline(&["node", "--partitions", "abc"], &[("TOUCHLINE_PARTITIONS", "4")]);
    let e = stderr(&o);
    assert!(!o.status.success() && !e.contains("TOUCHLINE_PARTITIONS"), "stderr: {e}");
}

#[test]
fn node_help_gives_every_flag_a_meaning_and_a_default() {
    let o = touchline(&["node", "--help"], &[]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    // `--help` lists each option as a line `  [-x, ]--name <V>` followed by its text.
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if line.starts_with("  ") && (t.starts_with("--") || (t.starts_with('-') && t.get(2..4) == Some(", "))) {
            let flag = t.split_whitespace().find(|w| w.starts_with("--")).unwrap_or(t).trim_end_matches(',').to_string();
            blocks.push((flag, String::new()));
        } else if let Some((_, text)) = blocks.last_mut() {
            text.push_str(t);
            text.push(' ');
        }
    }
    assert!(blocks.len() > 25, "too few options parsed from the help:\n{help}");
    for (flag, text) in blocks.iter().filter(|(f, _)| f != "--help" && f != "--version") {
        let meaning = text.split(['[', '(']).next().unwrap_or("").trim();
        assert!(meaning.len() > 10, "{flag} has no meaning in the help: {text:?}");
        assert!(text.contains("default:") || text.contains("[default:"), "{flag} shows no default: {text:?}");
    }
}

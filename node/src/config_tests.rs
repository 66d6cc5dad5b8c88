//! Tests of the node configuration: defaults, unknown keys and the
//! validation messages that name their key.

use super::*;

#[test]
fn defaults_are_valid() {
    NodeConfig::default().validate().unwrap();
}

#[test]
fn unknown_keys_are_named() {
    let e = toml::from_str::<NodeConfig>("nodeid = \"x\"").unwrap_err().to_string();
    assert!(e.contains("nodeid"), "{e}");
    let e = toml::from_str::<NodeConfig>("[engine]\nmax_ids = 3").unwrap_err().to_string();
    assert!(e.contains("max_ids"), "{e}");
}

#[test]
fn invalid_values_name_the_key() {
    let mut c = NodeConfig::default();
    c.engine.max_ids_per_person = 1;
    assert!(c.validate().unwrap_err().to_string().contains("engine.max_ids_per_person"));
    let c = NodeConfig { partitions: 0, ..Default::default() };
    assert!(c.validate().unwrap_err().to_string().contains("`partitions`"));
    let c = NodeConfig { node_id: "a b".into(), ..Default::default() };
    assert!(c.validate().unwrap_err().to_string().contains("node_id"));
    let mut c = NodeConfig::default();
    c.cluster.members_topic = c.topic.clone();
    assert!(c.validate().unwrap_err().to_string().contains("cluster.members_topic"));
    let mut c = NodeConfig::default();
    c.cluster.changelog_topic = c.cluster.members_topic.clone();
    assert!(c.validate().unwrap_err().to_string().contains("cluster.changelog_topic"));
    let mut c = NodeConfig::default();
    c.cluster.standby_replicas = 9;
    assert!(c.validate().unwrap_err().to_string().contains("cluster.standby_replicas"));
    let mut c = NodeConfig::default();
    c.cluster.placement_threshold = 0.9;
    assert!(c.validate().unwrap_err().to_string().contains("cluster.placement_threshold"));
    let mut c = NodeConfig::default();
    c.cluster.placement_threshold = f64::NAN;
    assert!(c.validate().unwrap_err().to_string().contains("cluster.placement_threshold"));
    let mut c = NodeConfig::default();
    c.cluster.placement_persist_ms = 86_400_001;
    assert!(c.validate().unwrap_err().to_string().contains("cluster.placement_persist_ms"));
    let c: NodeConfig = toml::from_str("[cluster]\nplacement = \"load\"\nplacement_max_moves = 4\n").unwrap();
    c.validate().unwrap();
    assert_eq!(c.cluster.placement_params().map(|p| p.max_moves), Some(4));
    assert!(NodeConfig::default().cluster.placement_params().is_none(), "the group assigns by default");
    let e = toml::from_str::<NodeConfig>("[cluster]\nplacement = \"random\"\n").unwrap_err().to_string();
    assert!(e.contains("placement") && e.contains("load"), "{e}");
    let mut c = NodeConfig::default();
    c.cluster.snapshot_min_records = u64::MAX;
    assert!(c.validate().unwrap_err().to_string().contains("cluster.snapshot_min_records"));
    let mut c = NodeConfig::default();
    c.limits.cost_import_max_rows = 0;
    assert!(c.validate().unwrap_err().to_string().contains("limits.cost_import_max_rows"));
    let mut c = NodeConfig::default();
    c.limits.cost_import_max_bytes = 65 << 20;
    assert!(c.validate().unwrap_err().to_string().contains("limits.cost_import_max_bytes"));
    let mut c = NodeConfig::default();
    c.limits.registry_max_ids = 0;
    assert!(c.validate().unwrap_err().to_string().contains("limits.registry_max_ids"));
    let mut c = NodeConfig::default();
    c.limits.registry_wait_ms = 0;
    assert!(c.validate().unwrap_err().to_string().contains("limits.registry_wait_ms"));
    let c: NodeConfig = toml::from_str("[tenants.acme]\nid_patterns = { campaign = \"C-{YYYY}\" }\n").unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("tenants.<tenant>.id_patterns") && e.contains("sequence"), "{e}");
    let c: NodeConfig = toml::from_str("[tenants.acme]\nid_patterns = { promo = \"P-{NNN}\" }\n").unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("\"promo\" is not one of"));
    let c: NodeConfig = toml::from_str("[tenants.acme]\nid_patterns = { campaign = \"C-{BRAND}-{NNNNN}\" }\n").unwrap();
    c.validate().unwrap();
    let mut c = NodeConfig::default();
    c.storage.paths_prewarm_interval_ms = 86_400_001;
    assert!(c.validate().unwrap_err().to_string().contains("storage.paths_prewarm_interval_ms"));
    let mut c = NodeConfig::default();
    c.cluster.member_timeout_ms = c.cluster.heartbeat_interval_ms;
    assert!(c.validate().unwrap_err().to_string().contains("cluster.member_timeout_ms"));
    let mut c = NodeConfig::default();
    c.cluster.forward_timeout_ms = c.limits.request_timeout_ms;
    assert!(c.validate().unwrap_err().to_string().contains("cluster.forward_timeout_ms"));
}

#[test]
fn memory_bounds_parse_and_are_validated_by_name() {
    let c: NodeConfig = toml::from_str("[engine]\nprefetch_mb = 8\ncustomer_actor_cap = 1024\nstate_cache_entries = 0\n").unwrap();
    c.validate().unwrap();
    assert_eq!((c.engine.prefetch_mb, c.engine.customer_actor_cap, c.engine.state_cache_entries), (8, 1024, 0));
    let d = NodeConfig::default();
    assert_eq!((d.engine.prefetch_mb, d.engine.customer_actor_cap, d.engine.state_cache_entries), (16, 4096, 65_536));
    for (toml, key) in [
        ("[engine]\nprefetch_mb = 0\n", "engine.prefetch_mb"),
        ("[engine]\nprefetch_mb = 16385\n", "engine.prefetch_mb"),
        ("[engine]\ncustomer_actor_cap = 0\n", "engine.customer_actor_cap"),
        ("[engine]\ncustomer_actor_cap = 4194305\n", "engine.customer_actor_cap"),
        ("[engine]\nstate_cache_entries = 16777217\n", "engine.state_cache_entries"),
    ] {
        let c: NodeConfig = toml::from_str(toml).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(key), "{toml}: {e}");
    }
    let e = toml::from_str::<NodeConfig>("[engine]\nprefetch = 8\n").unwrap_err().to_string();
    assert!(e.contains("prefetch"), "{e}");
}

#[test]
fn auth_tokens_parse_validate_and_never_print() {
    let c: NodeConfig = toml::from_str("[auth]\nadmin_token = \"s3cret\"\n[auth.tenant_tokens]\nacme = \"tok-a\"\n").unwrap();
    assert_eq!(c.auth.admin_token.as_ref().map(Secret::expose), Some("s3cret"));
    assert_eq!(c.auth.tenant_tokens.get("acme").map(Secret::expose), Some("tok-a"));
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cret") && !shown.contains("tok-a"), "{shown}");
    c.validate().unwrap();
    let bad: NodeConfig = toml::from_str("[auth.tenant_tokens]\nACME = \"x\"\n").unwrap();
    assert!(bad.validate().unwrap_err().to_string().contains("auth.tenant_tokens"));
}

#[test]
fn retention_defaults_overrides_and_errors() {
    let c: NodeConfig = toml::from_str("[engine]\nretention_days = 30\n[tenants.acme]\nretention_days = 2\n[tenants.keep]\nretention_days = 0\n").unwrap();
    c.validate().unwrap();
    let p = c.retention();
    assert_eq!((p.days_for("acme"), p.days_for("keep"), p.days_for("other")), (2, 0, 30));
    assert_eq!(NodeConfig::default().retention().days_for("x"), 90);
    let bad: NodeConfig = toml::from_str("[tenants.ACME]\nretention_days = 2\n").unwrap();
    assert!(bad.validate().unwrap_err().to_string().contains("`tenants`"));
    let bad: NodeConfig = toml::from_str("[tenants.acme]\nretention_days = 99999\n").unwrap();
    assert!(bad.validate().unwrap_err().to_string().contains("tenants.<tenant>.retention_days"));
    let bad: NodeConfig = toml::from_str("[engine]\nretention_sweep_interval_ms = 1\n").unwrap();
    assert!(bad.validate().unwrap_err().to_string().contains("engine.retention_sweep_interval_ms"));
    let e = toml::from_str::<NodeConfig>("[tenants.acme]\nretention = 2\n").unwrap_err().to_string();
    assert!(e.contains("retention"), "{e}");
    let p = NodeConfig::default().retention();
    assert_eq!((p.dedup_days, p.window_5s_hours), (180, 48));
    let c: NodeConfig = toml::from_str("[engine]\ndedup_horizon_days = 0\nwindow_5s_retention_hours = 0\n").unwrap();
    c.validate().unwrap();
    assert_eq!((c.retention().dedup_days, c.retention().window_5s_hours), (0, 0), "0 keeps forever");
    for (toml, key) in [
        ("dedup_horizon_days = 40000", "engine.dedup_horizon_days"),
        ("window_5s_retention_hours = 1", "engine.window_5s_retention_hours"),
        ("allowed_lateness_secs = 86400\nwindow_5s_retention_hours = 24", "engine.window_5s_retention_hours"),
        ("dedup_horizon_days = 1\nwindow_5s_retention_hours = 48", "engine.dedup_horizon_days"),
    ] {
        let bad: NodeConfig = toml::from_str(&format!("[engine]\n{toml}\n")).unwrap();
        assert!(bad.validate().unwrap_err().to_string().contains(key), "{toml}");
    }
}

#[test]
fn probabilistic_settings_parse_validate_and_default() {
    let c: NodeConfig = toml::from_str("[tenants.acme]\nprobabilistic = true\nprobabilistic_threshold = 0.57\n[tenants.b]\nprobabilistic = true\n[tenants.off]\nprobabilistic_threshold = 0.9\n").unwrap();
    c.validate().unwrap();
    let l = c.linking();
    assert_eq!(l.of("acme").map(|x| (x.threshold, x.max_ip_persons)), Some((5700, 10)));
    assert_eq!(l.of("b").map(|x| x.threshold), Some(7000));
    assert_eq!((l.of("off"), l.of("other")), (None, None), "off by default");
    for bad in ["probabilistic_threshold = 0", "probabilistic_threshold = 1.5", "probabilistic_max_ip_persons = 0"] {
        let c: NodeConfig = toml::from_str(&format!("[tenants.acme]\n{bad}\n")).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(bad.split(' ').next().unwrap()), "{bad}: {e}");
    }
}

#[test]
fn tls_is_both_or_neither_and_named() {
    let c: NodeConfig = toml::from_str("[tls]\ncert = \"c.pem\"\n").unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("`tls.key`"));
    let c: NodeConfig = toml::from_str("[tls]\nkey = \"k.pem\"\n").unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("`tls.cert`"));
    let c: NodeConfig = toml::from_str("[tls]\nca = \"ca.pem\"\n").unwrap();
    assert!(c.validate().unwrap_err().to_string().contains("`tls.ca`"));
    let c: NodeConfig = toml::from_str("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").unwrap();
    c.validate().unwrap();
    let e = toml::from_str::<NodeConfig>("[tls]\ncertificate = \"c.pem\"\n").unwrap_err().to_string();
    assert!(e.contains("certificate"), "{e}");
}

#[test]
fn file_layer_parses_sections() {
    let c: NodeConfig = toml::from_str(
        "node_id = \"n2\"\nbrokers = \"k:9092\"\n[kafka]\n\"security.protocol\" = \"SASL_SSL\"\n[engine]\nmax_ids_per_person = 10\n",
    )
    .unwrap();
    assert_eq!(c.node_id, "n2");
    assert_eq!(c.kafka.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
    assert_eq!(c.engine.max_ids_per_person, 10);
    assert_eq!(c.topic, "marketing-events");
    let c: NodeConfig = toml::from_str("[cluster]\nmembers_topic = \"m\"\nforward_timeout_ms = 2000\n").unwrap();
    assert_eq!((c.cluster.members_topic.as_str(), c.cluster.forward_timeout_ms, c.cluster.member_timeout_ms), ("m", 2000, 5000));
    assert_eq!(c.ingest.misrouted, Misrouted::Reroute);
    let c: NodeConfig = toml::from_str("[ingest]\nmisrouted = \"dlq\"\n").unwrap();
    assert_eq!(c.ingest.misrouted, Misrouted::Dlq);
    let e = toml::from_str::<NodeConfig>("[ingest]\nmisrouted = \"drop\"\n").unwrap_err().to_string();
    assert!(e.contains("misrouted") && e.contains("reroute"), "{e}");
}

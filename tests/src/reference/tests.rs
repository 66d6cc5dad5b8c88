//! Unit tests of the batch reference on small hand-made event sets.

use super::*;
use touchline_actors::domain::routing::partition_for;
use touchline_actors::domain::timestamp::format_rfc3339;

const P: i32 = 4;
const BASE: i64 = 1_790_812_800_000; // 2026-10-01T00:00:00Z
const H: i64 = 3_600_000;
const D: i64 = 24 * H;

fn rec(v: Value) -> (i32, Vec<u8>) {
    let t = v["tenant_id"].as_str().unwrap().to_string();
    (partition_for(&t, P), serde_json::to_vec(&v).unwrap())
}

fn touch(id: &str, cid: &str, ms: i64, channel: &str) -> Value {
    json!({"event_id": id, "tenant_id": "acme", "event_type": "touchpoint_interaction", "timestamp": ms,
           "customer_id": cid, "touchpoints": {"channel": channel, "interaction_type": "click",
           "metadata": {"url": format!("https://x.example/?utm_campaign=c-{channel}")}}})
}

fn conv(id: &str, cid: &str, ms: i64, value: f64, currency: &str) -> Value {
    json!({"event_id": id, "tenant_id": "acme", "event_type": "conversion_event", "timestamp": ms,
           "customer_id": cid, "conversion_data": {"value": value, "currency": currency}})
}

fn identify(id: &str, cid: &str, uid: &str, ms: i64) -> Value {
    json!({"event_id": id, "tenant_id": "acme", "event_type": "identify", "timestamp": ms,
           "customer_id": cid, "user_id": uid})
}

fn query(model: &str) -> RefQuery {
    RefQuery::new(
        "acme",
        model,
        Ts::from_millis(BASE - 90 * D),
        Ts::from_millis(BASE + 90 * D),
    )
}

/// `(key, credit, value)` of a report's rows.
fn rows(report: &Value) -> Vec<(String, f64, f64)> {
    report["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows in {report}"))
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["credit"].as_f64().unwrap(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn assert_rows(report: &Value, expected: &[(&str, f64, f64)]) {
    let got = rows(report);
    assert_eq!(got.len(), expected.len(), "rows {got:?} != {expected:?}");
    for ((k, c, v), (ek, ec, ev)) in got.iter().zip(expected) {
        assert_eq!(k, ek, "rows {got:?} != {expected:?}");
        assert!(
            (c - ec).abs() < 1e-9 && (v - ev).abs() < 1e-9,
            "rows {got:?} != {expected:?}"
        );
    }
}

fn journey() -> Vec<(i32, Vec<u8>)> {
    vec![
        rec(touch("e1", "dev-a", BASE + H, "email")),
        rec(touch("e2", "dev-b", BASE + 2 * H, "search")),
        rec(conv("e3", "dev-b", BASE + 3 * H, 100.0, "USD")),
    ]
}

#[test]
fn late_login_merges_two_devices_and_changes_linear() {
    let before = build(&journey(), P);
    let r = before.attribution(&query("linear"));
    assert_eq!(r["conversions"], json!(1));
    assert_eq!(r["currency"], json!("USD"));
    assert_rows(&r, &[("search", 1.0, 100.0)]);
    assert_eq!(before.person("acme", "dev-a").unwrap().identifiers.len(), 1);

    // The logins carry early timestamps but arrive after everything else.
    let mut recs = journey();
    recs.push(rec(identify("e4", "dev-a", "u-1", BASE + H / 2)));
    recs.push(rec(identify("e5", "dev-b", "u-1", BASE + H / 2)));
    let after = build(&recs, P);
    assert_rows(
        &after.attribution(&query("linear")),
        &[("email", 0.5, 50.0), ("search", 0.5, 50.0)],
    );
    assert_rows(&after.attribution(&query("first_touch")), &[("email", 1.0, 100.0)]);
    let p = after.person("acme", "u-1").unwrap();
    assert_eq!(Some(&p), after.person("acme", "dev-a").as_ref());
    let ids: Vec<(&str, &str)> = p.identifiers.iter().map(|i| (i.kind.as_str(), i.id.as_str())).collect();
    assert_eq!(
        ids,
        [("customer_id", "dev-a"), ("customer_id", "dev-b"), ("user_id", "u-1")]
    );
    assert_eq!(p.touchpoints, ["e1", "e2"]);
    assert_eq!(p.conversions, ["e3"]);
    assert_eq!(after.accepted_count(), 5);
}

#[test]
fn duplicate_counts_once_and_rejections_do_not_claim_ids() {
    let mut recs = journey();
    recs.push(rec(conv("e3", "dev-b", BASE + 3 * H, 100.0, "USD")));
    // A misrouted copy of a new conversion, then the same event correctly routed.
    let (p, bytes) = rec(conv("e6", "dev-b", BASE + 4 * H, 10.0, "USD"));
    recs.push(((p + 1) % P, bytes.clone()));
    recs.push((p, bytes));
    recs.push((p, b"\xc1garbage".to_vec()));
    // ingest.misrouted = "dlq": the misrouted copy is rejected and claims no id.
    let r = build_with_options(&recs, P, &Retention::default(), false);
    assert_eq!(r.duplicate_count(), 1);
    assert_eq!(r.accepted_count(), 4);
    let reasons = r.rejected_by_reason();
    assert_eq!(reasons.get("misrouted"), Some(&1));
    assert_eq!(reasons.get("decode"), Some(&1));
    let report = r.attribution(&query("last_touch"));
    assert_eq!(report["conversions"], json!(2));
    assert!((report["conversion_value"].as_f64().unwrap() - 110.0).abs() < 1e-9);
    assert_rows(&report, &[("search", 2.0, 110.0)]);
    assert_eq!(r.tenants(), ["acme"]);
    // The default re-routes it: applied, and the correctly routed one repeats it.
    let r = build(&recs, P);
    assert_eq!((r.duplicate_count(), r.accepted_count()), (2, 4));
    assert_eq!(r.rejected_by_reason().get("misrouted"), None);
    assert_eq!(r.attribution(&query("last_touch")), report);
}

#[test]
fn lookback_excludes_older_touches_and_includes_the_boundary() {
    let c = BASE + 50 * D;
    let recs = vec![
        rec(touch("t1", "p", c - 40 * D, "display")),
        rec(touch("t2", "p", c - 30 * D, "social")), // exactly C.ts − lookback: included
        rec(touch("t3", "p", c - D, "email")),
        rec(touch("t4", "p", c + 1, "video")), // after the conversion: never in its path
        rec(conv("c1", "p", c, 60.0, "USD")),
    ];
    let r = build(&recs, P);
    assert_rows(
        &r.attribution(&query("linear")),
        &[("email", 0.5, 30.0), ("social", 0.5, 30.0)],
    );
    let mut q = query("linear");
    q.lookback_days = 60;
    assert_rows(
        &r.attribution(&q),
        &[
            ("display", 1.0 / 3.0, 20.0),
            ("email", 1.0 / 3.0, 20.0),
            ("social", 1.0 / 3.0, 20.0),
        ],
    );
    q.lookback_days = 10;
    assert_rows(&r.attribution(&q), &[("email", 1.0, 60.0)]);
}

#[test]
fn empty_path_gives_direct_key_apart_from_direct_channel() {
    let recs = vec![
        rec(conv("c1", "lonely", BASE, 40.0, "USD")),
        rec(touch("t1", "walker", BASE - H, "direct")),
        rec(conv("c2", "walker", BASE, 10.0, "USD")),
    ];
    let r = build(&recs, P);
    let report = r.attribution(&query("last_non_direct"));
    assert_rows(&report, &[("(direct)", 1.0, 40.0), ("direct", 1.0, 10.0)]);
    assert_eq!(report["model"], json!("last_non_direct"));
    assert_eq!(report["group_by"], json!("channel"));
    assert_eq!(report["lookback_days"], json!(30));
    assert_eq!(report["from"], json!(format_rfc3339(Ts::from_millis(BASE - 90 * D))));
    // Out of the [from, to) range: nothing.
    let mut q = query("linear");
    q.to = Ts::from_millis(BASE);
    let empty = r.attribution(&q);
    assert_eq!(empty["conversions"], json!(0));
    assert_rows(&empty, &[]);
}

#[test]
fn no_consent_neither_links_nor_counts() {
    let mut login = identify("l1", "dev-a", "u-1", BASE);
    login["consent"] = json!({"analytics": false});
    let mut hidden = conv("c9", "dev-b", BASE + 5 * H, 500.0, "USD");
    hidden["consent"] = json!({"analytics": false});
    let mut recs = journey();
    recs.push(rec(login));
    recs.push(rec(identify("l2", "dev-b", "u-1", BASE)));
    recs.push(rec(hidden));
    let r = build(&recs, P);
    assert_eq!(r.person("acme", "dev-a").unwrap().identifiers.len(), 1);
    assert_eq!(r.person("acme", "u-1").unwrap().conversions, ["e3"]);
    let report = r.attribution(&query("linear"));
    assert_eq!(report["conversions"], json!(1));
    assert_rows(&report, &[("search", 1.0, 100.0)]);
}

#[test]
fn merge_guard_caps_a_person_at_64_identifiers() {
    let recs: Vec<_> = (0..70)
        .map(|i| rec(identify(&format!("i{i:02}"), &format!("c{i:02}"), "hub", BASE + i * H)))
        .collect();
    let r = build(&recs, P);
    let p = r.person("acme", "hub").unwrap();
    assert_eq!(p.identifiers.len(), MAX_IDS_PER_PERSON);
    assert_eq!(r.blocked_links("acme"), 70 - 63);
    // Links are applied in time order: the latest customer ids are the ones left out.
    assert!(p.identifiers.iter().any(|i| i.id == "c62"));
    assert_eq!(r.person("acme", "c63").unwrap().identifiers.len(), 1);
}

#[test]
fn default_currency_ties_alphabetical_and_filters() {
    let mut recs = vec![rec(touch("t", "p", BASE - H, "email"))];
    for (i, cur) in ["USD", "EUR", "USD", "EUR"].iter().enumerate() {
        recs.push(rec(conv(
            &format!("c{i}"),
            "p",
            BASE + i as i64,
            10.0 * (i + 1) as f64,
            cur,
        )));
    }
    let r = build(&recs, P);
    assert_eq!(r.default_currency("acme").as_deref(), Some("EUR"));
    let report = r.attribution(&query("linear"));
    assert_eq!(report["currency"], json!("EUR"));
    assert_rows(&report, &[("email", 2.0, 60.0)]);
    let mut q = query("linear");
    q.currency = Some("USD".into());
    assert_rows(&r.attribution(&q), &[("email", 2.0, 40.0)]);
}

#[test]
fn participation_sorting_grouping_and_errors() {
    let recs = vec![
        rec(touch("t1", "p", BASE - 3 * H, "email")),
        rec(touch("t2", "p", BASE - 2 * H, "search")),
        rec(touch("t3", "p", BASE - H, "email")),
        rec(conv("c1", "p", BASE, 100.0, "USD")),
    ];
    let r = build(&recs, P);
    assert_rows(
        &r.attribution(&query("participation")),
        &[("email", 1.0, 100.0), ("search", 1.0, 100.0)],
    );
    assert_rows(
        &r.attribution(&query("position_based")),
        &[("email", 0.8, 80.0), ("search", 0.2, 20.0)],
    );
    let mut q = query("linear");
    q.group_by = "campaign".into();
    assert_rows(
        &r.attribution(&q),
        &[
            ("c-email", 2.0 / 3.0, 200.0 / 3.0),
            ("c-search", 1.0 / 3.0, 100.0 / 3.0),
        ],
    );
    q.group_by = "variant".into();
    assert_rows(&r.attribution(&q), &[("(none)", 1.0, 100.0)]);
    let mut q = query("custom");
    assert_eq!(r.attribution(&q)["error"]["code"], json!("bad_request"));
    q.weights = Some([0.0, 1.0, 0.0]);
    assert_rows(&r.attribution(&q), &[("search", 1.0, 100.0)]);
    // One converting path email > search > email. Markov: email goes on to
    // search or converts (½ each) and search leads back to email, so removing
    // email loses the conversion (RE 1) and removing search half of it (RE ½).
    // Shapley: neither key converts alone: halves.
    for (model, email) in [("markov", 2.0 / 3.0), ("shapley", 0.5)] {
        let m = r.attribution(&query(model));
        assert!(m.get("unsupported").is_none());
        assert_eq!(m["conversions"], json!(1));
        assert_rows(&m, &[("email", email, 100.0 * email), ("search", 1.0 - email, 100.0 * (1.0 - email))]);
    }
}

#[test]
fn data_driven_values_follow_each_conversions_value() {
    // p1: email, then 10 and 2; p2: a conversion without touchpoint, 7; p3:
    // search, then 30; p4: search and no conversion (a `(null)` path); p5
    // converts in EUR, ignored entirely: its display touch is a `(null)` path.
    let recs = vec![
        rec(touch("t1", "p1", BASE - H, "email")),
        rec(conv("c1", "p1", BASE, 10.0, "USD")),
        rec(conv("c2", "p2", BASE, 7.0, "USD")),
        rec(touch("t3", "p3", BASE - H, "search")),
        rec(conv("c3", "p3", BASE, 30.0, "USD")),
        rec(touch("t4", "p4", BASE - H, "search")),
        rec(touch("t5", "p5", BASE - H, "display")),
        rec(conv("c5", "p5", BASE, 1000.0, "EUR")),
        rec(conv("c6", "p1", BASE + H, 2.0, "USD")),
    ];
    let r = build(&recs, P);
    // Paths: email (10), email (2), search (30), search and display → (null);
    // (direct) 7. Markov: P = 3/5; without email 1/5, without search 2/5, so
    // RE email 2/3, search 1/3, display 0 (it never leads to a conversion):
    // the modelled 42 splits 28 / 14 and the 3 conversions 2 / 1.
    let m = r.attribution(&query("markov"));
    assert_eq!((m["conversions"].clone(), m["conversion_value"].clone()), (json!(4), json!(49.0)));
    assert_rows(&m, &[("email", 2.0, 28.0), ("(direct)", 1.0, 7.0), ("search", 1.0, 14.0)]);
    // Shapley: {email} keeps its 2 conversions worth 12, {search} its 1 worth 30.
    let s = r.attribution(&query("shapley"));
    assert_rows(&s, &[("email", 2.0, 12.0), ("(direct)", 1.0, 7.0), ("search", 1.0, 30.0)]);
}

#[test]
fn generated_dataset_is_consistent_with_the_reference() {
    use touchline_node::gen::dataset::{count_duplicates, generate, DatasetSpec};
    let spec = DatasetSpec {
        persons: 300,
        ..DatasetSpec::default()
    };
    let gen = generate(&spec);
    let recs: Vec<(i32, Vec<u8>)> = gen
        .iter()
        .map(|r| {
            (
                r.partition.unwrap_or_else(|| partition_for(&r.key, spec.partitions)),
                r.value.clone(),
            )
        })
        .collect();
    let r = build(&recs, spec.partitions);
    let valid = gen.iter().filter(|g| g.valid).count();
    // Deliberately misrouted records are re-routed and applied (the default).
    let misrouted = gen.iter().filter(|g| g.partition.is_some_and(|p| p != partition_for(&g.key, spec.partitions))).count();
    assert!(misrouted > 0);
    assert_eq!(r.accepted_count() + r.duplicate_count(), valid + misrouted);
    assert_eq!(r.duplicate_count(), count_duplicates(&gen));
    assert_eq!(r.rejected_by_reason().values().sum::<usize>(), gen.len() - valid - misrouted);
    assert_eq!(r.tenants(), ["acme", "globex", "initech"]);
    let (from, to) = (
        Ts::from_millis(spec.start_ms - 90 * D),
        Ts::from_millis(spec.start_ms + 90 * D),
    );
    for tenant in r.tenants() {
        for model in [
            "first_touch",
            "last_touch",
            "linear",
            "time_decay",
            "position_based",
            "j_curve",
            "inverse_j",
            "last_non_direct",
        ] {
            for group_by in [
                "channel",
                "campaign",
                "journey",
                "sequence",
                "content",
                "variant",
                "source_medium",
            ] {
                let mut q = RefQuery::new(&tenant, model, from, to);
                q.group_by = group_by.to_string();
                let rep = r.attribution(&q);
                let n = rep["conversions"].as_f64().unwrap();
                assert!(n > 0.0, "{rep}");
                let credit: f64 = rows(&rep).iter().map(|x| x.1).sum();
                let value: f64 = rows(&rep).iter().map(|x| x.2).sum();
                assert!((credit - n).abs() < 1e-9 * n, "{model}/{group_by}: {credit} != {n}");
                let total = rep["conversion_value"].as_f64().unwrap();
                assert!(
                    (value - total).abs() < 1e-9 * total.max(1.0),
                    "{model}/{group_by}: {value} != {total}"
                );
            }
        }
    }
}

#[test]
fn retention_cuts_at_the_newest_event_time_minus_the_retention() {
    let erasure = json!({"event_id": "x", "tenant_id": "acme", "event_type": "erasure_request", "timestamp": BASE + 100 * D, "customer_id": "other"});
    let recs: Vec<(i32, Vec<u8>)> = vec![
        rec(touch("t1", "c1", BASE, "email")),
        rec(touch("t2", "c1", BASE + 3 * D, "search")),
        rec(conv("v1", "c1", BASE + 4 * D, 100.0, "USD")),
        rec(erasure),
    ];
    let short = Retention { per_tenant: BTreeMap::from([("acme".to_string(), 2)]), ..Default::default() };
    let r = build_with_retention(&recs, P, &short);
    // The erasure request's wall-clock time does not move the horizon.
    assert_eq!(r.horizon("acme"), Some(Ts::from_millis(BASE + 2 * D)));
    assert_eq!(r.retention_excluded("acme"), 1);
    assert_rows(&r.attribution(&query("linear")), &[("search", 1.0, 100.0)]);
    assert_eq!(r.person("acme", "c1").unwrap().touchpoints, vec!["t2".to_string()]);
    let forever = Retention { default_days: 0, ..Default::default() };
    let r = build_with_retention(&recs, P, &forever);
    assert_eq!(r.horizon("acme"), None);
    assert_rows(&r.attribution(&query("linear")), &[("email", 0.5, 50.0), ("search", 0.5, 50.0)]);
    assert_eq!(build(&recs, P).retention_excluded("acme"), 0, "90 days keep 4 days of data");
}

//! `GET /v1/tenants/{t}/attribution/series` (issue 21.4, the report page's
//! "one model over time"): every bucket of a rule model's series equals the
//! attribution route asked for that bucket's range — the same rows, numbers
//! and order, bit for bit — and the batch reference for that range; the
//! series' totals equal the route over the whole range; its CSV is its JSON
//! rows; a data-driven model, an unknown bucket, too many buckets and a
//! custom model without weights are 400s naming the parameter.

use serde_json::Value;
use std::time::Duration;
use touchline_actors::domain::timestamp::parse_rfc3339;
use touchline_node::gen::{generate, offsets_after, produce, DatasetSpec};
use touchline_tests::fixtures::{as_partitioned, comparable, create_topics, enc};
use touchline_tests::reference::{self, RefQuery};
use touchline_tests::sandbox::{json_close, Broker, Node, NodeSpec};

/// Days before the data starts (empty buckets) to days after it ends.
const RANGE: (&str, &str) = ("2026-09-28", "2026-11-06");

/// One series query: model, grouping, bucket, the credit parameters (as
/// query text) and the reference's.
struct Case {
    model: &'static str,
    group_by: &'static str,
    bucket: &'static str,
    lookback_days: i64,
    half_life_hours: f64,
    weights: Option<[f64; 3]>,
}

impl Case {
    fn params(&self, from: &str, to: &str) -> String {
        let mut q = format!("model={}&group_by={}&from={from}&to={to}&lookback_days={}&half_life_hours={}", self.model, self.group_by, self.lookback_days, self.half_life_hours);
        if let Some([f, m, l]) = self.weights {
            q.push_str(&format!("&weights={f},{m},{l}"));
        }
        q
    }
}

const CASES: &[Case] = &[
    Case { model: "linear", group_by: "channel", bucket: "day", lookback_days: 30, half_life_hours: 168.0, weights: None },
    Case { model: "time_decay", group_by: "campaign", bucket: "week", lookback_days: 30, half_life_hours: 12.0, weights: None },
    Case { model: "position_based", group_by: "source_medium", bucket: "day", lookback_days: 3, half_life_hours: 168.0, weights: None },
    Case { model: "custom", group_by: "channel", bucket: "week", lookback_days: 30, half_life_hours: 168.0, weights: Some([30.0, 40.0, 30.0]) },
    Case { model: "first_touch", group_by: "journey", bucket: "day", lookback_days: 14, half_life_hours: 168.0, weights: None },
];

async fn ok(node: &Node, path: &str) -> Value {
    let r = node.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json().expect("JSON body")
}

/// `(key, credit, value)` of a report's rows, in order.
fn rows(v: &Value) -> Vec<(String, f64, f64)> {
    v["rows"].as_array().unwrap().iter().map(|r| (r["key"].as_str().unwrap().to_string(), r["credit"].as_f64().unwrap(), r["value"].as_f64().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bucket_equals_the_attribution_of_its_range_and_the_reference() {
    let broker = Broker::start().await;
    let (topic, partitions) = ("ev-series", 2);
    let spec = DatasetSpec { seed: 41, tenants: 2, persons: 200, partitions, ..DatasetSpec::default() };
    let records = generate(&spec);
    create_topics(&broker.addr, topic, partitions).await;
    assert_eq!(produce(&broker.addr, topic, &records, 0, &[]).await.expect("produce"), records.len());
    let dir = tempfile::tempdir().unwrap();
    let mut ns = NodeSpec::new("series", &broker.addr, topic, &dir.path().join("n"));
    ns.extra = vec!["--partitions".into(), partitions.to_string()];
    let node = Node::start(ns).await;
    assert!(node.wait_consumed(offsets_after(&records, partitions), Duration::from_secs(120)).await, "the node did not consume the dataset");
    let reference = reference::build(&as_partitioned(&records, partitions), partitions);

    let (from, to) = RANGE;
    let mut compared = 0;
    for tenant in reference.tenants() {
        let base = format!("/v1/tenants/{tenant}");
        for case in CASES {
            let what = format!("{tenant} {} {} {}", case.model, case.group_by, case.bucket);
            let series = ok(&node, &format!("{base}/attribution/series?{}&bucket={}", case.params(from, to), case.bucket)).await;
            let buckets = series["buckets"].as_array().unwrap();
            let days = if case.bucket == "week" { 7 } else { 1 };
            assert_eq!(buckets.len(), (39 + days - 1) / days, "{what}: buckets of {from}..{to}");
            assert_eq!((buckets[0]["from"].as_str(), buckets.last().unwrap()["to"].as_str()), (Some("2026-09-28T00:00:00Z"), Some("2026-11-06T00:00:00Z")), "{what}");
            for b in buckets {
                let (a, z) = (b["from"].as_str().unwrap(), b["to"].as_str().unwrap());
                // The attribution route over the bucket's range: the same answer, bit for bit.
                let route = ok(&node, &format!("{base}/attribution?{}", case.params(&enc(parse_rfc3339(a).unwrap()), &enc(parse_rfc3339(z).unwrap())))).await;
                assert_eq!(rows(b), rows(&route), "{what} {a}: rows");
                assert_eq!((&b["conversions"], &b["conversion_value"]), (&route["conversions"], &route["conversion_value"]), "{what} {a}");
                // The batch reference over the bucket's range.
                let mut q = RefQuery::new(&tenant, case.model, parse_rfc3339(a).unwrap(), parse_rfc3339(z).unwrap());
                (q.group_by, q.lookback_days, q.half_life_hours, q.weights) = (case.group_by.into(), case.lookback_days, case.half_life_hours, case.weights);
                let mut got = b.clone();
                got["currency"] = route["currency"].clone();
                let (got, want) = (comparable(&got), comparable(&reference.attribution(&q)));
                assert!(json_close(&got, &want, 1e-9), "{what} {a}\n node: {got}\n  ref: {want}");
                compared += usize::from(b["conversions"].as_u64().unwrap() > 0);
            }
            // The totals are the whole range's.
            let whole = ok(&node, &format!("{base}/attribution?{}", case.params(from, to))).await;
            assert_eq!((&series["conversions"], &series["conversion_value"], &series["currency"]), (&whole["conversions"], &whole["conversion_value"], &whole["currency"]), "{what}: totals");
            let bucketed: u64 = buckets.iter().map(|b| b["conversions"].as_u64().unwrap()).sum();
            assert_eq!(Some(bucketed), whole["conversions"].as_u64(), "{what}: every conversion in one bucket");

            // CSV: one row per bucket and key, the JSON's numbers.
            let csv = node.get(&format!("{base}/attribution/series?{}&bucket={}&format=csv", case.params(from, to), case.bucket)).await;
            assert_eq!(csv.status, 200, "{}", csv.body);
            let mut r = csv::Reader::from_reader(csv.body.as_bytes());
            assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), ["bucket_from", "bucket_to", "model", "key", "credit", "value"]);
            let got: Vec<Vec<String>> = r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect();
            let want: Vec<(Vec<String>, [f64; 2])> = buckets
                .iter()
                .flat_map(|b| b["rows"].as_array().unwrap().iter().map(move |x| (b, x)))
                .map(|(b, x)| (vec![b["from"].as_str().unwrap().into(), b["to"].as_str().unwrap().into(), case.model.into(), x["key"].as_str().unwrap().into()], [x["credit"].as_f64().unwrap(), x["value"].as_f64().unwrap()]))
                .collect();
            assert_eq!(got.len(), want.len(), "{what}: CSV rows");
            // Text cells as they are; numbers as written (serde_json's parse of the JSON may be 1 ulp off).
            for (g, (w, n)) in got.iter().zip(&want) {
                assert_eq!(&g[..4], &w[..], "{what}: CSV");
                for (cell, x) in g[4..].iter().zip(n) {
                    let c: f64 = cell.parse().unwrap();
                    assert!((c - x).abs() <= 4.0 * f64::EPSILON * x.abs(), "{what}: CSV {cell} against {x}");
                }
            }
        }
    }
    assert!(compared >= 20, "only {compared} buckets with conversions compared");

    // Bad input: 400s naming the parameter.
    let tenant = &reference.tenants()[0];
    for (query, param) in [
        ("model=markov&from=2026-10-01&to=2026-10-08", "model"),
        ("model=shapley&from=2026-10-01&to=2026-10-08", "model"),
        ("bucket=month&from=2026-10-01&to=2026-10-08", "bucket"),
        ("bucket=day&from=2025-01-01&to=2026-03-01", "bucket"),
        ("model=custom&from=2026-10-01&to=2026-10-08", "weights"),
    ] {
        let r = node.get(&format!("/v1/tenants/{tenant}/attribution/series?{query}")).await;
        let body: Value = r.json().unwrap_or_else(|| panic!("{query}: {}", r.body));
        assert_eq!((r.status, body["error"]["code"].as_str()), (400, Some("bad_request")), "{query}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(&format!("`{param}`")), "{query}: {body}");
    }
}

//! CSV export (issue 21.5): every report (attribution, compare, campaigns,
//! cohorts, journey performance) asked as CSV — `format=csv` or
//! `Accept: text/csv` — parses back with the `csv` crate into exactly the rows
//! of the JSON answer of the same query (numbers as the JSON writes them, text
//! behind the formula guard), on a hand-made dataset whose campaign, content
//! and journey names need RFC 4180 quoting or start like a formula. Two nodes:
//! the one that does not own the tenant forwards, and its CSV is the owner's,
//! byte for byte (on the multi-node broker: Apache Kafka unless
//! `TOUCHLINE_TEST_BROKER` says otherwise). `format=xml` is a 400 JSON error
//! naming `format`, and errors stay JSON when CSV was asked.

use serde_json::{json, Value};
use std::time::Duration;
use touchline_actors::domain::routing::partition_for;
use touchline_node::client::{request_with, HttpReply};
use touchline_node::gen::GenRecord;
use touchline_tests::cluster::{multi_node_spec, view, wait_settled};
use touchline_tests::fixtures::create_topics;
use touchline_tests::sandbox::{Broker, Node};

const T: &str = "acme";
/// Monday 2026-11-02 10:00 UTC.
const T0: i64 = 1_793_613_600_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const RANGE: &str = "from=2026-11-01&to=2026-12-01";
/// A journey id that needs quoting and starts like a formula; `%2C%22` in the path.
const JOURNEY: &str = "-J,\"1\"";
const JOURNEY_PATH: &str = "-J%2C%221%22";

fn ev(id: &str, ty: &str, ts: i64, extra: Value) -> GenRecord {
    let mut m = json!({"event_id": id, "tenant_id": T, "event_type": ty, "timestamp": ts});
    m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    GenRecord { key: T.into(), value: serde_json::to_vec(&m).unwrap(), partition: None, valid: true }
}

/// Every byte but ASCII alphanumerics percent-encoded (a URL query value).
fn pct(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A click on `channel` landing with these tracking parameters.
fn touch(id: &str, ts: i64, cid: &str, channel: &str, params: &[(&str, &str)], journey: Option<&str>) -> GenRecord {
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", pct(v))).collect();
    let url = format!("https://example.com/landing?{}", query.join("&"));
    let mut extra = json!({"customer_id": cid, "touchpoints": {"channel": channel, "interaction_type": "click", "metadata": {"url": url}}});
    if let Some(j) = journey {
        extra["journey_id"] = json!(j);
    }
    ev(id, "touchpoint_interaction", ts, extra)
}

fn conversion(id: &str, ts: i64, cid: &str, value: f64) -> GenRecord {
    ev(id, "conversion_event", ts, json!({"customer_id": cid, "conversion_data": {"value": value, "currency": "USD"}}))
}

fn dataset() -> Vec<GenRecord> {
    vec![
        ev("k1", "campaign_launch", T0 - DAY, json!({"campaign_id": "spring, 2026", "campaign_name": "=HYPERLINK(\"http://x\")", "channel": "email", "performance_metrics": {"cost": 100.5, "impressions": 1000}})),
        ev("k2", "campaign_launch", T0 - DAY, json!({"campaign_id": "@launch", "campaign_name": "Launch\nnight", "performance_metrics": {"cost": 30.0, "clicks": 7}})),
        touch("a1", T0, "c-a", "email", &[("utm_campaign", "spring, 2026")], None),
        touch("a2", T0 + HOUR, "c-a", "search", &[("utm_campaign", "say \"hi\"")], None),
        conversion("a3", T0 + 2 * HOUR, "c-a", 100.0),
        touch("b1", T0 + DAY, "c-b", "display", &[("utm_campaign", "-minus")], None),
        touch("b2", T0 + DAY + HOUR, "c-b", "social", &[("utm_campaign", "line\nbreak")], None),
        touch("b3", T0 + DAY + 2 * HOUR, "c-b", "video", &[("utm_campaign", "+plus")], None),
        conversion("b4", T0 + DAY + 3 * HOUR, "c-b", 200.5),
        touch("c1", T0 + 2 * DAY, "c-c", "email", &[("utm_campaign", "@launch"), ("cm_node_seq", "1"), ("utm_content", "cta, big"), ("cm_variant", "A")], Some(JOURNEY)),
        touch("c2", T0 + 2 * DAY + HOUR, "c-c", "native", &[("cm_node_seq", "2"), ("utm_content", "=1+1"), ("cm_variant", "B")], Some(JOURNEY)),
        conversion("c3", T0 + 2 * DAY + 2 * HOUR, "c-c", 33.3),
        touch("d1", T0 + 8 * DAY, "c-d", "referral", &[("utm_campaign", "@launch"), ("cm_node_seq", "1"), ("utm_content", "cta, big"), ("cm_variant", "A")], Some(JOURNEY)),
        touch("e1", T0 + 3 * DAY, "c-e", "other", &[], None),
        conversion("e2", T0 + 3 * DAY + HOUR, "c-e", 7.0),
    ]
}

/// The reports: path (with `?`) and the stable CSV header.
fn reports() -> Vec<(String, &'static [&'static str])> {
    const ATTR: &[&str] = &["model", "key", "credit", "value"];
    const CAMPAIGNS: &[&str] = &[
        "campaign_id", "name", "channel", "status", "status_at", "spend", "reported_impressions", "reported_clicks", "reported_conversions", "reported_cost", "reported_revenue",
        "imported_cost", "imported_impressions", "imported_clicks", "imported_days", "imported_other_currency_days", "attributed_conversions", "attributed_revenue", "roas",
    ];
    const COHORTS: &[&str] = &["cohort_start", "key", "persons", "converted_persons", "conversions", "revenue"];
    const JOURNEY_COLS: &[&str] = &["start", "key", "touches", "impressions", "clicks", "conversions", "revenue"];
    vec![
        (format!("/v1/tenants/{T}/attribution?model=linear&group_by=campaign&{RANGE}"), ATTR),
        (format!("/v1/tenants/{T}/attribution?model=time_decay&half_life_hours=5&group_by=content&{RANGE}"), ATTR),
        (format!("/v1/tenants/{T}/attribution/compare?group_by=campaign&weights=20,50,30&{RANGE}"), ATTR),
        (format!("/v1/tenants/{T}/campaigns?model=position_based"), CAMPAIGNS),
        (format!("/v1/tenants/{T}/cohorts?by=campaign&cohort=day"), COHORTS),
        (format!("/v1/tenants/{T}/journeys/{JOURNEY_PATH}/performance?granularity=day&{RANGE}"), JOURNEY_COLS),
    ]
}

/// The JSON of `body` with every number replaced by its text as written
/// (a string starting with NUL): serde_json's default float parsing can land
/// one ULP off, and the CSV must hold the JSON's own digits. Numbers come in
/// text order, which is the parsed map order (both sorted by key).
fn with_number_texts(body: &str) -> Value {
    let mut tokens = Vec::new();
    let (mut in_string, mut escaped, mut number) = (false, false, String::new());
    for c in body.chars() {
        if in_string {
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
        } else if c.is_ascii_digit() || (!number.is_empty() && "+-.eE".contains(c)) || (number.is_empty() && c == '-') {
            number.push(c);
        } else {
            if !number.is_empty() {
                tokens.push(std::mem::take(&mut number));
            }
            in_string = c == '"';
        }
    }
    fn substitute(v: &mut Value, tokens: &mut std::vec::IntoIter<String>) {
        match v {
            Value::Number(n) => {
                let text = tokens.next().expect("a number token per number");
                let (parsed, exact) = (n.as_f64().unwrap(), text.parse::<f64>().unwrap());
                assert!(parsed == exact || (parsed.to_bits() as i64 - exact.to_bits() as i64).abs() <= 1, "{text} is not {n}");
                *v = Value::String(format!("\0{text}"));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, tokens)),
            Value::Object(m) => m.values_mut().for_each(|x| substitute(x, tokens)),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(body).expect("JSON");
    let mut it = tokens.into_iter();
    substitute(&mut v, &mut it);
    assert!(it.next().is_none(), "every number token used");
    v
}

/// The rows a report's JSON answer holds, as CSV cells, written out here from
/// the http-api.md shapes (independently of the node's renderer).
fn expected_rows(path: &str, v: &Value) -> Vec<Vec<String>> {
    let cell = |x: &Value| match x {
        Value::Null => String::new(),
        Value::String(s) if s.starts_with('\0') => s[1..].to_string(),
        Value::String(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let pick = |row: &Value, fields: &[&str]| fields.iter().map(|f| cell(row.pointer(f).unwrap_or(&Value::Null))).collect::<Vec<_>>();
    let rows = |k: &str| v[k].as_array().unwrap_or_else(|| panic!("{path}: no {k} in {v}")).clone();
    if path.contains("/attribution/compare") {
        let mut out = Vec::new();
        for (model, rs) in v["models"].as_object().expect("models") {
            for r in rs.as_array().expect("rows") {
                out.push([vec![model.clone()], pick(r, &["/key", "/credit", "/value"])].concat());
            }
        }
        out
    } else if path.contains("/attribution") {
        rows("rows").iter().map(|r| [vec![cell(&v["model"])], pick(r, &["/key", "/credit", "/value"])].concat()).collect()
    } else if path.contains("/campaigns") {
        let f = [
            "/campaign_id", "/name", "/channel", "/status", "/status_at", "/spend", "/reported/impressions", "/reported/clicks", "/reported/conversions", "/reported/cost",
            "/reported/revenue", "/imported/cost", "/imported/impressions", "/imported/clicks", "/imported/days", "/imported/other_currency_days", "/attributed_conversions",
            "/attributed_revenue", "/roas",
        ];
        rows("campaigns").iter().map(|r| pick(r, &f)).collect()
    } else if path.contains("/cohorts") {
        rows("rows").iter().map(|r| pick(r, &["/cohort_start", "/key", "/persons", "/converted_persons", "/conversions", "/revenue"])).collect()
    } else {
        rows("buckets").iter().map(|r| pick(r, &["/start", "/key", "/touches", "/impressions", "/clicks", "/conversions", "/revenue"])).collect()
    }
}

async fn ask(node: &Node, path: &str, headers: &[(&str, &str)]) -> HttpReply {
    request_with(&node.http, "GET", path, headers, Duration::from_secs(30)).await.expect("HTTP reply")
}

fn with(path: &str, extra: &str) -> String {
    format!("{path}&{extra}")
}

/// A CSV reply: its header row and records.
fn parse(r: &HttpReply) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rd = csv::Reader::from_reader(r.body.as_bytes());
    let header = rd.headers().expect("header row").iter().map(str::to_string).collect();
    let rows = rd.records().map(|rec| rec.expect("RFC 4180 record").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn assert_json_error(r: &HttpReply, status: u16, needle: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    let v = r.json().unwrap_or_else(|| panic!("{what}: not JSON: {}", r.body));
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains(needle)), "{what}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_report_as_csv_equals_its_json_through_either_node() {
    let broker = Broker::start_multi_node().await;
    let (topic, partitions) = ("ev-csv", 2);
    create_topics(&broker.addr, topic, partitions).await;
    let data = dataset();
    touchline_node::gen::produce(&broker.addr, topic, &data, 0, &[]).await.expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for id in ["a", "b"] {
        nodes.push(Node::start(multi_node_spec(&broker, topic, dir.path(), id, &[])).await);
    }
    let total = data.len() as i64;
    let ok = wait_settled(&nodes.iter().collect::<Vec<_>>(), &["a", "b"], partitions as usize, total, Duration::from_secs(120)).await;
    assert!(ok, "the two nodes did not settle: {:?}", view(&nodes[0]).await);
    let v = view(&nodes[0]).await.expect("cluster view");
    let p = partition_for(T, partitions) as i64;
    let owner_id = v["partitions"].as_array().unwrap().iter().find(|x| x["partition"].as_i64() == Some(p)).and_then(|x| x["owner"].as_str()).expect("owned").to_string();
    let owner = nodes.iter().find(|n| n.spec.node_id == owner_id).unwrap();
    let other = nodes.iter().find(|n| n.spec.node_id != owner_id).unwrap();

    let (mut quoted, mut guarded) = (0, 0);
    for (path, header) in reports() {
        let json_reply = ask(owner, &path, &[]).await;
        assert_eq!(json_reply.status, 200, "{path}: {}", json_reply.body);
        let body = json_reply.json().expect("JSON");
        let want = expected_rows(&path, &with_number_texts(&json_reply.body));
        assert!(!want.is_empty(), "{path}: the dataset gives this report rows: {body}");

        let csv_reply = ask(owner, &with(&path, "format=csv"), &[]).await;
        assert_eq!(csv_reply.status, 200, "{path}: {}", csv_reply.body);
        assert_eq!(csv_reply.header("content-type"), Some("text/csv; charset=utf-8"), "{path}");
        let disposition = csv_reply.header("content-disposition").unwrap_or_default();
        assert!(disposition.starts_with(&format!("attachment; filename=\"{T}-")) && disposition.ends_with(".csv\""), "{path}: {disposition}");
        let (got_header, got) = parse(&csv_reply);
        assert_eq!(got_header, header, "{path}: stable column names");
        assert_eq!(got, want, "{path}: the CSV rows are the JSON rows\n{}\n{body}", csv_reply.body);
        assert!(csv_reply.body.starts_with(&format!("{}\r\n", header.join(","))) && csv_reply.body.ends_with("\r\n"), "{path}: CRLF records");
        quoted += want.iter().flatten().filter(|c| c.contains([',', '"', '\n'])).count();
        guarded += want.iter().flatten().filter(|c| c.starts_with('\'')).count();

        // Accept: text/csv is the same CSV; format=json wins over it.
        let by_accept = ask(owner, &path, &[("Accept", "text/csv")]).await;
        assert_eq!((by_accept.status, &by_accept.body), (200, &csv_reply.body), "{path}: Accept: text/csv");
        let json_wins = ask(owner, &with(&path, "format=json"), &[("Accept", "text/csv")]).await;
        assert_eq!(json_wins.header("content-type"), Some("application/json"), "{path}");
        assert_eq!(json_wins.json(), Some(body.clone()), "{path}: format=json over Accept");

        // Through the node that does not own the tenant: the owner's CSV, unchanged.
        for (q, h) in [(with(&path, "format=csv"), vec![]), (path.clone(), vec![("Accept", "text/csv")])] {
            let fwd = ask(other, &q, &h).await;
            assert_eq!(fwd.status, 200, "{q} via {}: {}", other.spec.node_id, fwd.body);
            assert_eq!(fwd.header("x-touchline-served-by"), Some(owner_id.as_str()), "{q}: forwarded");
            assert_eq!(fwd.header("content-type"), csv_reply.header("content-type"), "{q}");
            assert_eq!(fwd.header("content-disposition"), csv_reply.header("content-disposition"), "{q}");
            assert_eq!(fwd.body, csv_reply.body, "{q}: forwarded CSV");
        }

        // An unknown format is a JSON 400 naming `format`, on either node.
        for n in [owner, other] {
            assert_json_error(&ask(n, &with(&path, "format=xml"), &[]).await, 400, "`format`", &format!("{path} format=xml via {}", n.spec.node_id));
        }
    }
    assert!(quoted >= 5 && guarded >= 5, "the dataset exercises quoting ({quoted}) and the formula guard ({guarded})");

    // The file name names the report.
    let r = ask(owner, &format!("/v1/tenants/{T}/attribution/compare?{RANGE}&format=csv"), &[]).await;
    assert_eq!(r.header("content-disposition"), Some("attachment; filename=\"acme-attribution-compare.csv\""));
    let r = ask(owner, &format!("/v1/tenants/{T}/journeys/{JOURNEY_PATH}/performance?{RANGE}"), &[("Accept", "text/csv")]).await;
    assert_eq!(r.header("content-disposition"), Some("attachment; filename=\"acme-journey--J__1_.csv\""));

    // Errors stay JSON when CSV is asked; `format` is no parameter of other routes.
    for n in [owner, other] {
        assert_json_error(&ask(n, &format!("/v1/tenants/{T}/attribution?model=nope&format=csv"), &[]).await, 400, "`model`", "bad model");
        assert_json_error(&ask(n, &format!("/v1/tenants/{T}/cohorts?by=planet"), &[("Accept", "text/csv")]).await, 400, "`by`", "bad by");
        assert_json_error(&ask(n, "/v1/tenants/nobody/campaigns?format=csv", &[]).await, 404, "nobody", "unknown tenant");
        assert_json_error(&ask(n, &format!("/v1/tenants/{T}/customers?format=csv"), &[]).await, 400, "`format`", "customers");
    }
}

//! CSV export of the reports (attribution, compare, series, campaigns, cohorts,
//! journey performance): content negotiation (`format=csv|json`, which wins over
//! `Accept: text/csv`) and the rendering of the JSON answer a handler built, so
//! JSON and CSV are one answer (same query, same report cache) in two shapes.
//! RFC 4180 via the `csv` crate (CRLF, fields quoted when needed); numbers are
//! written as the JSON writes them; a text cell that a spreadsheet would read
//! as a formula gets a leading `'`. Errors stay JSON.

use super::error::{ApiError, ErrorCode};
use super::json_response;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::Value;
use touchline_actors::domain::tracking::form_decode;

/// The reports that have a CSV rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    Attribution,
    Compare,
    /// `attribution/series`: one row per bucket and key.
    Series,
    Campaigns,
    Cohorts,
    /// Journey performance of this journey id.
    Journey(String),
}

impl Report {
    /// The report a tenant route (the path after `/v1/tenants/{t}/`, decoded) answers, if any.
    pub fn of(rest: &[&str]) -> Option<Report> {
        match rest {
            ["attribution"] => Some(Report::Attribution),
            ["attribution", "compare"] => Some(Report::Compare),
            ["attribution", "series"] => Some(Report::Series),
            ["campaigns"] => Some(Report::Campaigns),
            ["cohorts"] => Some(Report::Cohorts),
            ["journeys", j] | ["journeys", j, "performance"] => Some(Report::Journey(j.to_string())),
            _ => None,
        }
    }

    /// The report's part of the download's file name.
    fn file_part(&self) -> String {
        match self {
            Report::Attribution => "attribution".into(),
            Report::Compare => "attribution-compare".into(),
            Report::Series => "attribution-series".into(),
            Report::Campaigns => "campaigns".into(),
            Report::Cohorts => "cohorts".into(),
            // A journey id is free text: only a safe subset reaches the header.
            Report::Journey(j) => format!("journey-{}", j.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect::<String>()),
        }
    }

    /// The header row and one cell source per column.
    fn columns(&self) -> &'static [(&'static str, Source)] {
        use Source::{Bucket, Model, Row};
        match self {
            Report::Attribution | Report::Compare => &[("model", Model), ("key", Row("/key")), ("credit", Row("/credit")), ("value", Row("/value"))],
            Report::Series => &[
                ("bucket_from", Bucket("/from")),
                ("bucket_to", Bucket("/to")),
                ("model", Model),
                ("key", Row("/key")),
                ("credit", Row("/credit")),
                ("value", Row("/value")),
            ],
            Report::Campaigns => &[
                ("campaign_id", Row("/campaign_id")),
                ("name", Row("/name")),
                ("channel", Row("/channel")),
                ("status", Row("/status")),
                ("status_at", Row("/status_at")),
                ("spend", Row("/spend")),
                ("reported_impressions", Row("/reported/impressions")),
                ("reported_clicks", Row("/reported/clicks")),
                ("reported_conversions", Row("/reported/conversions")),
                ("reported_cost", Row("/reported/cost")),
                ("reported_revenue", Row("/reported/revenue")),
                ("imported_cost", Row("/imported/cost")),
                ("imported_impressions", Row("/imported/impressions")),
                ("imported_clicks", Row("/imported/clicks")),
                ("imported_days", Row("/imported/days")),
                ("imported_other_currency_days", Row("/imported/other_currency_days")),
                ("attributed_conversions", Row("/attributed_conversions")),
                ("attributed_revenue", Row("/attributed_revenue")),
                ("roas", Row("/roas")),
            ],
            Report::Cohorts => &[
                ("cohort_start", Row("/cohort_start")),
                ("key", Row("/key")),
                ("persons", Row("/persons")),
                ("converted_persons", Row("/converted_persons")),
                ("conversions", Row("/conversions")),
                ("revenue", Row("/revenue")),
            ],
            Report::Journey(_) => &[
                ("start", Row("/start")),
                ("key", Row("/key")),
                ("touches", Row("/touches")),
                ("impressions", Row("/impressions")),
                ("clicks", Row("/clicks")),
                ("conversions", Row("/conversions")),
                ("revenue", Row("/revenue")),
            ],
        }
    }

    /// The JSON rows of `body`, each with the model it belongs to (compare: the
    /// `models` entry; attribution, series: the answer's `model`) and its
    /// bucket (series).
    fn rows<'a>(&self, body: &'a Value) -> Vec<(Option<&'a str>, Option<&'a Value>, &'a Value)> {
        let list = |k: &str| body[k].as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_default();
        if *self == Report::Series {
            let model = body["model"].as_str();
            return list("buckets").into_iter().flat_map(|b| b["rows"].as_array().into_iter().flatten().map(move |r| (model, Some(b), r))).collect();
        }
        let rows: Vec<(Option<&str>, &Value)> = match self {
            Report::Attribution => list("rows").into_iter().map(|r| (body["model"].as_str(), r)).collect(),
            Report::Compare => body["models"].as_object().into_iter().flatten().flat_map(|(m, rows)| rows.as_array().into_iter().flatten().map(move |r| (Some(m.as_str()), r))).collect(),
            Report::Campaigns => list("campaigns").into_iter().map(|r| (None, r)).collect(),
            Report::Cohorts => list("rows").into_iter().map(|r| (None, r)).collect(),
            Report::Journey(_) => list("buckets").into_iter().map(|r| (None, r)).collect(),
            Report::Series => Vec::new(),
        };
        rows.into_iter().map(|(m, r)| (m, None, r)).collect()
    }
}

/// Where a column's cell comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// The model the row belongs to.
    Model,
    /// A JSON pointer into the row.
    Row(&'static str),
    /// A JSON pointer into the row's bucket.
    Bucket(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

/// How one report request is answered: negotiated before the handler runs.
#[derive(Debug)]
pub struct Output {
    format: Format,
    report: Option<Report>,
    tenant: String,
}

impl Output {
    /// JSON, the answer of every route that is not a report.
    pub fn json() -> Output {
        Output { format: Format::Json, report: None, tenant: String::new() }
    }

    /// For a report route: takes `format` out of `query` (so the handler's
    /// parameter check never sees it) and decides the format — `format=csv|json`
    /// wins, else `Accept` naming `text/csv`, else JSON. Other routes answer
    /// JSON and keep `format` in the query (their check names it unknown).
    pub fn negotiate(headers: &HeaderMap, query: &mut Option<String>, tenant: &str, rest: &[&str]) -> Result<Output, ApiError> {
        let Some(report) = Report::of(rest) else { return Ok(Output { format: Format::Json, report: None, tenant: tenant.into() }) };
        let (param, kept) = take_format(query.as_deref())?;
        *query = kept;
        let format = match param.as_deref() {
            Some("csv") => Format::Csv,
            Some("json") => Format::Json,
            Some(v) => return Err(ApiError::param("format", format!("unknown format {v:?} (one of json, csv)"))),
            None if accepts_csv(headers) => Format::Csv,
            None => Format::Json,
        };
        Ok(Output { format, report: Some(report), tenant: tenant.into() })
    }

    /// The 200 answer of `body` in the negotiated format.
    pub fn reply<T: serde::Serialize>(&self, body: &T) -> Result<Response<Full<Bytes>>, ApiError> {
        let (Format::Csv, Some(report)) = (self.format, &self.report) else { return Ok(json_response(StatusCode::OK, body)) };
        let body = serde_json::to_value(body).map_err(|e| ApiError::new(ErrorCode::Internal, format!("answer: {e}")))?;
        let bytes = render(report, &body).map_err(|e| ApiError::new(ErrorCode::Internal, format!("CSV rendering: {e}")))?;
        download(bytes, &format!("{}-{}.csv", self.tenant, report.file_part()))
    }
}

/// A 200 CSV download of `bytes` named `file` (a safe name: no quote).
pub fn download(bytes: Vec<u8>, file: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let disposition = format!("attachment; filename=\"{file}\"");
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?)
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

/// The `format` parameter of `query` (decoded) and the query without it; a
/// repeated `format` is a 400 like any repeated parameter.
fn take_format(query: Option<&str>) -> Result<(Option<String>, Option<String>), ApiError> {
    let mut format = None;
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(k) != "format" {
            kept.push(pair);
        } else if format.replace(form_decode(v).into_owned()).is_some() {
            return Err(ApiError::param("format", "given more than once"));
        }
    }
    Ok((format, (!kept.is_empty()).then(|| kept.join("&"))))
}

/// `Accept` names `text/csv` with a non-zero quality not below an explicit
/// `application/json`'s. Wildcards (`*/*`, `text/*`) keep JSON, the default.
fn accepts_csv(headers: &HeaderMap) -> bool {
    let (mut csv, mut json) = (None, None);
    for v in headers.get_all(ACCEPT).iter().filter_map(|v| v.to_str().ok()) {
        for range in v.split(',') {
            let mut it = range.split(';');
            let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f64>().unwrap_or(0.0));
            match media.as_str() {
                "text/csv" => csv = Some(q),
                "application/json" => json = Some(q),
                _ => {}
            }
        }
    }
    match (csv, json) {
        (Some(c), Some(j)) => c > 0.0 && c > j,
        (Some(c), None) => c > 0.0,
        (None, _) => false,
    }
}

/// The CSV text of a report's JSON answer: a header row, then one row per JSON row.
pub fn render(report: &Report, body: &Value) -> Result<Vec<u8>, csv::Error> {
    let columns = report.columns();
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record(columns.iter().map(|(name, _)| *name))?;
    for (model, bucket, row) in report.rows(body) {
        w.write_record(columns.iter().map(|(_, source)| match source {
            Source::Model => model.map(guard).unwrap_or_default(),
            Source::Row(pointer) => cell(row.pointer(pointer).unwrap_or(&Value::Null)),
            Source::Bucket(pointer) => cell(bucket.and_then(|b| b.pointer(pointer)).unwrap_or(&Value::Null)),
        }))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// One JSON value as a cell: `null` empty, numbers and booleans as JSON writes
/// them, text through the formula guard.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => guard(s),
        other => other.to_string(),
    }
}

/// Text a spreadsheet would evaluate (starting with `=`, `+`, `-`, `@`, tab or
/// carriage return) gets a leading `'` (OWASP, CSV injection).
pub fn guard(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(report: Report, body: Value) -> String {
        String::from_utf8(render(&report, &body).unwrap()).unwrap()
    }

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn attribution_quotes_rfc4180_and_guards_formulas() {
        let body = json!({"model": "linear", "rows": [
            {"key": "a,b", "credit": 1.5, "value": 10.0},
            {"key": "say \"hi\"", "credit": 0.1, "value": 0.30000000000000004},
            {"key": "two\nlines", "credit": 2, "value": 0},
            {"key": "=HYPERLINK(\"x\")", "credit": -0.25, "value": -1e-7},
            {"key": "+1", "credit": 1, "value": 1}, {"key": "-x", "credit": 1, "value": 1}, {"key": "@sum", "credit": 1, "value": 1},
            {"key": "ünï 🙂", "credit": 1, "value": 1},
        ]});
        let t = text(Report::Attribution, body);
        let want = "model,key,credit,value\r\n\
            linear,\"a,b\",1.5,10.0\r\n\
            linear,\"say \"\"hi\"\"\",0.1,0.30000000000000004\r\n\
            linear,\"two\nlines\",2,0\r\n\
            linear,\"'=HYPERLINK(\"\"x\"\")\",-0.25,-1e-7\r\n\
            linear,'+1,1,1\r\nlinear,'-x,1,1\r\nlinear,'@sum,1,1\r\n\
            linear,ünï 🙂,1,1\r\n";
        assert_eq!(t, want);
    }

    #[test]
    fn numbers_are_written_as_the_json_writes_them() {
        for n in [json!(0.1), json!(1e300), json!(-0.0), json!(123456789012345678u64), json!(2.5e-12), json!(1.0 / 3.0)] {
            let body = json!({"model": "m", "rows": [{"key": "k", "credit": n, "value": n}]});
            let t = text(Report::Attribution, body);
            let row = t.lines().nth(1).unwrap();
            assert_eq!(row, format!("m,k,{},{}", serde_json::to_string(&n).unwrap(), serde_json::to_string(&n).unwrap()));
        }
    }

    #[test]
    fn compare_is_one_row_per_model_and_key() {
        let body = json!({"models": {"first_touch": [{"key": "email", "credit": 2, "value": 20.0}], "linear": [{"key": "email", "credit": 1, "value": 10.0}, {"key": "search", "credit": 1, "value": 10.0}], "markov": []}});
        let t = text(Report::Compare, body);
        assert_eq!(t, "model,key,credit,value\r\nfirst_touch,email,2,20.0\r\nlinear,email,1,10.0\r\nlinear,search,1,10.0\r\n");
    }

    #[test]
    fn series_is_one_row_per_bucket_and_key() {
        let body = json!({"model": "linear", "buckets": [
            {"from": "2026-10-01T00:00:00Z", "to": "2026-10-02T00:00:00Z", "rows": [{"key": "email", "credit": 1.5, "value": 30.0}, {"key": "=x", "credit": 0.5, "value": 10.0}]},
            {"from": "2026-10-02T00:00:00Z", "to": "2026-10-03T00:00:00Z", "rows": []},
            {"from": "2026-10-03T00:00:00Z", "to": "2026-10-04T00:00:00Z", "rows": [{"key": "search", "credit": 1, "value": 5.0}]}]});
        assert_eq!(
            text(Report::Series, body),
            "bucket_from,bucket_to,model,key,credit,value\r\n\
             2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,linear,email,1.5,30.0\r\n\
             2026-10-01T00:00:00Z,2026-10-02T00:00:00Z,linear,'=x,0.5,10.0\r\n\
             2026-10-03T00:00:00Z,2026-10-04T00:00:00Z,linear,search,1,5.0\r\n"
        );
        assert_eq!(Report::of(&["attribution", "series"]), Some(Report::Series));
    }

    #[test]
    fn campaigns_flatten_the_reported_metrics_and_nulls_are_empty() {
        let body = json!({"campaigns": [{"campaign_id": "spring, 2026", "name": null, "channel": "email", "status": "launched", "status_at": "2026-11-01T10:00:00Z",
            "spend": 150.0, "reported": {"impressions": 1500, "clicks": null, "conversions": 3, "cost": 150.0, "revenue": 0.0},
            "imported": {"cost": 0.0, "impressions": 0.0, "clicks": 0.0, "days": 0, "other_currency_days": 1},
            "attributed_conversions": 2.5, "attributed_revenue": 320.0, "roas": null}]});
        let t = text(Report::Campaigns, body);
        assert_eq!(
            t,
            "campaign_id,name,channel,status,status_at,spend,reported_impressions,reported_clicks,reported_conversions,reported_cost,reported_revenue,imported_cost,imported_impressions,imported_clicks,imported_days,imported_other_currency_days,attributed_conversions,attributed_revenue,roas\r\n\
             \"spring, 2026\",,email,launched,2026-11-01T10:00:00Z,150.0,1500,,3,150.0,0.0,0.0,0.0,0.0,0,1,2.5,320.0,\r\n"
        );
    }

    #[test]
    fn cohorts_and_journeys_are_one_row_per_json_row() {
        let body = json!({"rows": [{"cohort_start": "2026-11-02T00:00:00Z", "key": "email", "persons": 2, "converted_persons": 1, "conversions": 1, "revenue": 100.0}]});
        assert_eq!(text(Report::Cohorts, body), "cohort_start,key,persons,converted_persons,conversions,revenue\r\n2026-11-02T00:00:00Z,email,2,1,1,100.0\r\n");
        let body = json!({"buckets": [{"start": "2026-11-02T00:00:00Z", "key": "-J/SEQ-1/a;b/A", "touches": 4, "impressions": 1, "clicks": 0, "conversions": 0, "revenue": 0.0}]});
        assert_eq!(text(Report::Journey("-J".into()), body), "start,key,touches,impressions,clicks,conversions,revenue\r\n2026-11-02T00:00:00Z,'-J/SEQ-1/a;b/A,4,1,0,0,0.0\r\n");
        // An empty report is its header row.
        assert_eq!(text(Report::Cohorts, json!({"rows": []})), "cohort_start,key,persons,converted_persons,conversions,revenue\r\n");
    }

    #[test]
    fn the_parsed_csv_gives_back_every_text() {
        let keys = ["a,b", "\"", "x\r\ny", "=1+1", " lead", "", "trail "];
        let body = json!({"model": "linear", "rows": keys.iter().map(|k| json!({"key": k, "credit": 1, "value": 1})).collect::<Vec<_>>()});
        let bytes = render(&Report::Attribution, &body).unwrap();
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        let got: Vec<String> = r.records().map(|rec| rec.unwrap()[1].to_string()).collect();
        let want: Vec<String> = keys.iter().map(|k| guard(k)).collect();
        assert_eq!(got, want);
    }

    proptest::proptest! {
        /// Any text and any number survive the round trip through a CSV
        /// reader: text as written (behind the formula guard), numbers as JSON.
        #[test]
        fn any_row_parses_back(rows in proptest::collection::vec(("\\PC*|[=+@,\"\r\n -]{0,6}", proptest::num::f64::NORMAL | proptest::num::f64::ZERO, proptest::num::i64::ANY), 0..8)) {
            let body = json!({"model": "linear", "rows": rows.iter().map(|(k, c, v)| json!({"key": k, "credit": c, "value": v})).collect::<Vec<_>>()});
            let bytes = render(&Report::Attribution, &body).unwrap();
            let got: Vec<Vec<String>> = csv::Reader::from_reader(bytes.as_slice()).records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
            let want: Vec<Vec<String>> = rows.iter().map(|(k, c, v)| vec!["linear".into(), guard(k), json!(c).to_string(), v.to_string()]).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn format_wins_over_accept_and_is_taken_out_of_the_query() {
        let mut q = Some("model=linear&format=json&from=2026-01-01".to_string());
        let o = Output::negotiate(&headers("text/csv"), &mut q, "acme", &["attribution"]).unwrap();
        assert_eq!((o.format, q.as_deref()), (Format::Json, Some("model=linear&from=2026-01-01")));
        let mut q = Some("format=csv".to_string());
        let o = Output::negotiate(&HeaderMap::new(), &mut q, "acme", &["journeys", "J", "performance"]).unwrap();
        assert_eq!((o.format, q, o.report), (Format::Csv, None, Some(Report::Journey("J".into()))));
        let mut q = Some("format=xml".to_string());
        let e = Output::negotiate(&HeaderMap::new(), &mut q, "acme", &["cohorts"]).unwrap_err();
        assert!(e.code == ErrorCode::BadRequest && e.message.contains("`format`") && e.message.contains("xml"), "{e:?}");
        let mut q = Some("format=csv&format=csv".to_string());
        assert!(Output::negotiate(&HeaderMap::new(), &mut q, "acme", &["cohorts"]).unwrap_err().message.contains("more than once"));
        // Not a report: `format` stays for the route's own check.
        let mut q = Some("format=csv".to_string());
        let o = Output::negotiate(&headers("text/csv"), &mut q, "acme", &["customers"]).unwrap();
        assert_eq!((o.format, q.as_deref()), (Format::Json, Some("format=csv")));
    }

    #[test]
    fn accept_names_csv_explicitly() {
        for (accept, csv) in [
            ("text/csv", true),
            ("Text/CSV; charset=utf-8", true),
            ("application/json, text/csv", false),
            ("text/csv;q=0.9, application/json;q=0.5", true),
            ("application/json;q=0.9, text/csv;q=0.5", false),
            ("text/csv;q=0", false),
            ("*/*", false),
            ("text/*", false),
            ("text/html,application/xhtml+xml,*/*;q=0.8", false),
            ("text/csv, */*;q=0.1", true),
        ] {
            assert_eq!(accepts_csv(&headers(accept)), csv, "{accept}");
        }
    }

    #[test]
    fn the_file_name_is_tenant_and_report() {
        let o = Output { format: Format::Csv, report: Some(Report::Journey("CJ 1/\"x\"".into())), tenant: "acme".into() };
        let r = o.reply(&json!({"buckets": []})).unwrap();
        assert_eq!(r.headers()[CONTENT_DISPOSITION], "attachment; filename=\"acme-journey-CJ_1__x_.csv\"");
        assert_eq!(r.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
        let o = Output { format: Format::Csv, report: Some(Report::Compare), tenant: "acme".into() };
        assert_eq!(o.reply(&json!({"models": {}})).unwrap().headers()[CONTENT_DISPOSITION], "attachment; filename=\"acme-attribution-compare.csv\"");
    }
}

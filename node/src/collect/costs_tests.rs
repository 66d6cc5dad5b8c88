//! Unit tests of the cost import parsing (`super`): CSV and JSON rows, every
//! error naming its line and column (or row and field), limits, and the event
//! each row becomes (decoded by the node's own validation).

use super::*;
use touchline_actors::domain::decode::{decode, ValidateCtx};
use touchline_actors::domain::Body;

const CSV: &str = "date,campaign_id,source,medium,cost,currency,impressions,clicks\n\
                   2026-03-01,spring,google,cpc,120.50,usd,10000,250\n\
                   2026-03-02, spring ,google,cpc,99,USD,,\n\
                   2026-03-01,fall,,,7.25,EUR,,\n";

fn csv_err(body: &str) -> String {
    parse_csv(body.as_bytes(), 100).unwrap_err().to_string()
}

#[test]
fn csv_rows_are_parsed_trimmed_and_upper_cased() {
    let rows = parse_csv(CSV.as_bytes(), 100).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        CostImport { campaign_id: "spring".into(), date: "2026-03-01".into(), cost: 120.5, currency: "USD".into(), source: Some("google".into()), medium: Some("cpc".into()), impressions: Some(10000.0), clicks: Some(250.0) }
    );
    assert_eq!((rows[1].campaign_id.as_str(), rows[1].impressions, rows[1].clicks), ("spring", None, None));
    assert_eq!((rows[2].source.as_deref(), rows[2].currency.as_str()), (None, "EUR"));
    // Columns in any order, header names case-insensitive, a BOM and CRLF.
    let other = "\u{feff}Currency,COST,Campaign_ID,Date\r\nUSD,1,c,2026-01-01\r\n";
    assert_eq!(parse_csv(other.as_bytes(), 1).unwrap()[0].cost, 1.0);
    assert_eq!(parse_csv(b"date,campaign_id,cost,currency\n", 1).unwrap(), vec![], "a header alone imports nothing");
}

#[test]
fn csv_errors_name_the_line_and_column() {
    let bad = |line: &str| csv_err(&format!("date,campaign_id,cost,currency\n2026-01-01,ok,1,USD\n{line}\n"));
    assert_eq!(bad("2026-01-02,c,-1,USD"), "line 3, column 3 (`cost`): must be a finite number ≥ 0");
    assert_eq!(bad("2026-01-02,c,1.2.3,USD"), "line 3, column 3 (`cost`): \"1.2.3\" is not a number");
    assert_eq!(bad("2026-01-02,c,,USD"), "line 3, column 3 (`cost`): is required");
    assert_eq!(bad("2026-02-30,c,1,USD"), "line 3, column 1 (`date`): \"2026-02-30\" is not a YYYY-MM-DD calendar date");
    assert_eq!(bad("2026-01-02,,1,USD"), "line 3, column 2 (`campaign_id`): is required");
    assert_eq!(bad("2026-01-02,c,1,dollars"), "line 3, column 4 (`currency`): must be at most 3 bytes");
    assert_eq!(bad("2026-01-02,c,1,U$D"), "line 3, column 4 (`currency`): \"U$D\" is not a 3-letter currency code");
    assert_eq!(bad("2026-01-02,c,1"), "line 3: has 3 fields, the header 4");
    assert_eq!(bad("2026-01-01,ok,2,USD"), "line 3: repeats campaign \"ok\" on 2026-01-01 of line 2 (one daily total per campaign and date)");
    assert_eq!(csv_err("date,campaign_id,cost\n"), "line 1: the header lacks the required column `currency` (required: date, campaign_id, cost, currency)");
    assert!(csv_err("date,campaign_id,cost,currency,spend\n").starts_with("line 1, column 5 (`spend`): unknown column"));
    assert_eq!(csv_err("date,campaign_id,cost,currency,cost\n"), "line 1, column 5 (`cost`): repeated column");
    assert_eq!(parse_csv(b"date,campaign_id,cost,currency\n2026-01-01,c,1,USD\n\xff,c,1,USD\n", 9).unwrap_err().to_string(), "line 3: is not valid UTF-8");
}

#[test]
fn row_limits() {
    assert_eq!(parse_csv(CSV.as_bytes(), 2), Err(ImportError::TooManyRows(2)));
    assert_eq!(parse_csv(CSV.as_bytes(), 3).unwrap().len(), 3);
    let rows = vec![json!({"date": "2026-01-01", "campaign_id": "a", "cost": 1, "currency": "USD"}); 2];
    assert_eq!(parse_json(&rows, 1), Err(ImportError::TooManyRows(1)));
}

#[test]
fn json_rows_and_their_errors() {
    let ok = json!({"date": "2026-03-01", "campaign_id": "spring", "cost": 12.5, "currency": "eur", "clicks": "40", "source": null});
    let rows = parse_json(std::slice::from_ref(&ok), 10).unwrap();
    assert_eq!((rows[0].cost, rows[0].currency.as_str(), rows[0].clicks, rows[0].source.as_deref()), (12.5, "EUR", Some(40.0), None));
    let err = |patch: Value| {
        let mut row = ok.clone();
        row.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        parse_json(&[json!({"date": "2026-01-01", "campaign_id": "x", "cost": 0, "currency": "USD"}), row], 10).unwrap_err().to_string()
    };
    assert_eq!(err(json!({"cost": "free"})), "rows[1].cost: \"free\" is not a number");
    assert_eq!(err(json!({"cost": true})), "rows[1].cost: must be a number");
    assert_eq!(err(json!({"campaign_id": 7})), "rows[1].campaign_id: must be a string");
    assert_eq!(err(json!({"date": "01/03/2026"})), "rows[1].date: \"01/03/2026\" is not a YYYY-MM-DD calendar date");
    assert_eq!(err(json!({"impressions": -5})), "rows[1].impressions: must be a finite number ≥ 0");
    assert!(err(json!({"spend": 3})).starts_with("rows[1].spend: unknown field"));
    assert_eq!(err(json!({"campaign_id": "x", "date": "2026-01-01"})), "rows[1]: repeats campaign \"x\" on 2026-01-01 of rows[0] (one daily total per campaign and date)");
    assert_eq!(parse_json(&[json!(3)], 10).unwrap_err().to_string(), "rows[0]: must be an object");
}

#[test]
fn each_row_becomes_a_valid_cost_import_with_a_deterministic_id() {
    let rows = parse_csv(CSV.as_bytes(), 100).unwrap();
    let at = Ts::new(1_764_583_200, 123_456_789);
    let ctx = ValidateCtx { now: at, partition: None, partitions: 12 };
    for row in &rows {
        let ev = event("acme", at, row);
        assert_eq!(ev, event("acme", at, row), "same import, same id");
        assert_ne!(ev["event_id"], event("acme", Ts::new(1_764_583_200, 123_456_790), row)["event_id"], "another import time, another id");
        assert_ne!(ev["event_id"], event("beta", at, row)["event_id"]);
        let decoded = decode(&serde_json::to_vec(&ev).unwrap(), &ctx).unwrap();
        assert_eq!((decoded.ts, decoded.body, decoded.tenant_id.as_str()), (at, Body::CostImport(row.clone()), "acme"));
    }
    let ids: std::collections::HashSet<String> = rows.iter().map(|r| event("acme", at, r)["event_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), rows.len());
}

//! Cost import (`POST /v1/collect/costs`): an ad-platform export — CSV with
//! a header row, or JSON rows — parsed into daily totals per (campaign, date),
//! each then one `cost_import` event stamped with the import time and a
//! deterministic event id (docs/collector.md). Pure: a bad cell is an error
//! naming its line and column (CSV) or row and field (JSON); a file is
//! all-or-nothing, so the first error rejects it whole.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use touchline_actors::domain::costs::{valid_date, CostImport};
use touchline_actors::domain::Ts;

/// The columns (CSV header names, JSON keys): the first four are required.
pub const COLUMNS: [&str; 8] = ["date", "campaign_id", "cost", "currency", "source", "medium", "impressions", "clicks"];
const REQUIRED: usize = 4;

/// Where a bad value is: a CSV line and column, or a JSON row and field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// 1-based line of the file, 1-based column number and its header name (if any).
    Csv { line: u64, column: Option<(usize, String)> },
    /// 0-based index of the row in the JSON array, and the field.
    Json { row: usize, field: Option<String> },
}

/// Why an import was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportError {
    /// A bad file, row or cell.
    Invalid { at: At, message: String },
    /// More rows than `limits.cost_import_max_rows`.
    TooManyRows(usize),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::TooManyRows(max) => write!(f, "more than {max} rows (limits.cost_import_max_rows): split the file"),
            ImportError::Invalid { at: At::Csv { line, column: Some((i, name)) }, message } => write!(f, "line {line}, column {i} (`{name}`): {message}"),
            ImportError::Invalid { at: At::Csv { line, column: None }, message } => write!(f, "line {line}: {message}"),
            ImportError::Invalid { at: At::Json { row, field: Some(k) }, message } => write!(f, "rows[{row}].{k}: {message}"),
            ImportError::Invalid { at: At::Json { row, field: None }, message } => write!(f, "rows[{row}]: {message}"),
        }
    }
}

/// One cell before validation.
enum Cell<'a> {
    Absent,
    Text(&'a str),
    Num(f64),
    Other,
}

/// Sets the field `name` of `row` from `cell`; the message says what is wrong.
fn set(row: &mut CostImport, name: &str, cell: Cell<'_>) -> Result<(), String> {
    let text = match &cell {
        Cell::Text(t) if !t.is_empty() => Some(*t),
        _ => None,
    };
    let number = || -> Result<Option<f64>, String> {
        let x = match cell {
            Cell::Absent => return Ok(None),
            Cell::Text("") => return Ok(None),
            Cell::Num(x) => x,
            Cell::Text(t) => t.parse::<f64>().map_err(|_| format!("{t:?} is not a number"))?,
            Cell::Other => return Err("must be a number".into()),
        };
        (x.is_finite() && x >= 0.0).then_some(Some(x)).ok_or_else(|| "must be a finite number ≥ 0".to_string())
    };
    let string = |max: usize| -> Result<Option<String>, String> {
        match (&cell, text) {
            (Cell::Num(_) | Cell::Other, _) => Err("must be a string".into()),
            (_, Some(t)) if t.len() > max => Err(format!("must be at most {max} bytes")),
            (_, t) => Ok(t.map(str::to_string)),
        }
    };
    match name {
        "date" => {
            let d = string(10).map_err(|_| "must be a YYYY-MM-DD date".to_string())?.unwrap_or_default();
            if !valid_date(&d) {
                return Err(format!("{d:?} is not a YYYY-MM-DD calendar date"));
            }
            row.date = d;
        }
        "campaign_id" => row.campaign_id = string(256)?.ok_or("is required")?,
        "cost" => row.cost = number()?.ok_or("is required")?,
        "currency" => {
            let c = string(3)?.ok_or("is required")?;
            if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!("{c:?} is not a 3-letter currency code"));
            }
            row.currency = c.to_ascii_uppercase();
        }
        "source" => row.source = string(256)?,
        "medium" => row.medium = string(256)?,
        "impressions" => row.impressions = number()?,
        "clicks" => row.clicks = number()?,
        _ => return Err(format!("unknown column (one of {})", COLUMNS.join(", "))),
    }
    Ok(())
}

/// Rows of a CSV export with a header row (`COLUMNS`, any order, names
/// case-insensitive and trimmed; cells trimmed; a UTF-8 BOM is skipped).
pub fn parse_csv(body: &[u8], max_rows: usize) -> Result<Vec<CostImport>, ImportError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(body);
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(1, csv::Position::line);
        let message = match e.kind() {
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!("has {len} fields, the header {expected_len}"),
            csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
            _ => e.to_string(),
        };
        ImportError::Invalid { at: At::Csv { line, column: None }, message }
    };
    let header: Vec<String> = reader.headers().map_err(csv_error)?.iter().map(|h| h.to_ascii_lowercase()).collect();
    let header_at = |i: usize, message: String| ImportError::Invalid { at: At::Csv { line: 1, column: Some((i + 1, header[i].clone())) }, message };
    for (i, h) in header.iter().enumerate() {
        if !COLUMNS.contains(&h.as_str()) {
            return Err(header_at(i, format!("unknown column (one of {})", COLUMNS.join(", "))));
        }
        if header[..i].contains(h) {
            return Err(header_at(i, "repeated column".into()));
        }
    }
    if let Some(missing) = COLUMNS[..REQUIRED].iter().find(|c| !header.iter().any(|h| h == *c)) {
        return Err(ImportError::Invalid { at: At::Csv { line: 1, column: None }, message: format!("the header lacks the required column `{missing}` (required: {})", COLUMNS[..REQUIRED].join(", ")) });
    }
    let mut rows = Vec::new();
    let mut seen = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        if rows.len() == max_rows {
            return Err(ImportError::TooManyRows(max_rows));
        }
        let mut row = CostImport::default();
        for (i, name) in header.iter().enumerate() {
            let cell = record.get(i).map_or(Cell::Absent, Cell::Text);
            set(&mut row, name, cell).map_err(|message| ImportError::Invalid { at: At::Csv { line, column: Some((i + 1, name.clone())) }, message })?;
        }
        if let Some(first) = seen.insert((row.campaign_id.clone(), row.date.clone()), line) {
            return Err(ImportError::Invalid { at: At::Csv { line, column: None }, message: format!("repeats campaign {:?} on {} of line {first} (one daily total per campaign and date)", row.campaign_id, row.date) });
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Rows of a JSON import: an array of row objects (`COLUMNS` as keys; `null`
/// counts as absent).
pub fn parse_json(rows_in: &[Value], max_rows: usize) -> Result<Vec<CostImport>, ImportError> {
    if rows_in.len() > max_rows {
        return Err(ImportError::TooManyRows(max_rows));
    }
    let mut rows = Vec::with_capacity(rows_in.len());
    let mut seen = HashMap::new();
    for (i, v) in rows_in.iter().enumerate() {
        let at = |field: Option<&str>, message: String| ImportError::Invalid { at: At::Json { row: i, field: field.map(str::to_string) }, message };
        let obj = v.as_object().ok_or_else(|| at(None, "must be an object".into()))?;
        if let Some(k) = obj.keys().find(|k| !COLUMNS.contains(&k.as_str())) {
            return Err(at(Some(k), format!("unknown field (one of {})", COLUMNS.join(", "))));
        }
        let mut row = CostImport::default();
        for name in COLUMNS {
            let cell = match obj.get(name) {
                None | Some(Value::Null) => Cell::Absent,
                Some(Value::String(s)) => Cell::Text(s),
                Some(Value::Number(n)) => n.as_f64().map_or(Cell::Other, Cell::Num),
                Some(_) => Cell::Other,
            };
            set(&mut row, name, cell).map_err(|m| at(Some(name), m))?;
        }
        if let Some(first) = seen.insert((row.campaign_id.clone(), row.date.clone()), i) {
            return Err(at(None, format!("repeats campaign {:?} on {} of rows[{first}] (one daily total per campaign and date)", row.campaign_id, row.date)));
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The `cost_import` event of `row`, imported into `tenant` at `imported_at`.
/// Its id is a hash of the tenant, the import time and the row, so two
/// imports at the same instant still order by id, the same way everywhere.
pub fn event(tenant: &str, imported_at: Ts, row: &CostImport) -> Value {
    let mut out = Map::new();
    out.insert("tenant_id".into(), json!(tenant));
    out.insert("event_type".into(), json!("cost_import"));
    out.insert("timestamp".into(), json!(imported_at.to_string()));
    out.insert("campaign_id".into(), json!(row.campaign_id));
    out.insert("date".into(), json!(row.date));
    out.insert("cost".into(), json!(row.cost));
    out.insert("currency".into(), json!(row.currency));
    for (k, v) in [("source", &row.source), ("medium", &row.medium)] {
        if let Some(v) = v {
            out.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [("impressions", row.impressions), ("clicks", row.clicks)] {
        if let Some(v) = v {
            out.insert(k.into(), json!(v));
        }
    }
    // The keys are inserted in a fixed order: the hashed text is canonical.
    let digest = Sha256::digest(serde_json::to_vec(&out).unwrap_or_default());
    let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    out.insert("event_id".into(), json!(format!("cost-{id}")));
    Value::Object(out)
}

#[cfg(test)]
#[path = "costs_tests.rs"]
mod tests;

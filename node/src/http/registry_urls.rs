//! The URL builder and the vendor export (docs/registry.md):
//! `POST .../registry/urls` (one URL), `POST .../registry/urls:bulk` (up to
//! [`MAX_ROWS`] rows, JSON or CSV, per-row results) and
//! `GET .../registry/urls?vendor=&format=csv|json`. Rows are validated
//! against the tenant's current taxonomy (registry references resolved in
//! committed state); missing registry ids are minted when a row asks; built
//! URLs are stored through the partition for the export.

use super::error::{ApiError, ErrorCode};
use super::params::Params;
use super::registry::{full, mint_spec, MintRequest};
use super::registry_cmd::{digest, event_id, parse_body, send_and_wait, MAX_COMMAND_BYTES};
use super::reports::{blocking, owner_partition};
use super::{json_response, AppState};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use touchline_actors::domain::governance::registry::{request_key, IdPattern, MintSpec, RegistryCommand, Status, UrlRecord};
use touchline_actors::domain::governance::{build, is_field_name, BuiltUrl, CompiledTaxonomy, FieldError, IdType, Warning};
use touchline_actors::domain::Dims;
use touchline_actors::state::registry::RegistryView;

/// Most rows of one bulk request.
pub const MAX_ROWS: usize = 1_000;

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// Ids to mint for a row's missing registry references.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintDefaults {
    pub brand: Option<String>,
    pub year: Option<i64>,
    /// The minted ids' attributes; `status` defaults to `live` (a reference must be live).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// One URL to build (the body of `POST .../registry/urls`, a row of a bulk).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlRequest {
    pub destination: String,
    /// Tracking parameter → value.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// The platform the URL is for (the export filters on it).
    pub vendor: Option<String>,
    /// Mint the ids the template's registry references need and `fields` lack.
    pub mint: Option<MintDefaults>,
}

/// The body of `POST .../registry/urls:bulk` as JSON.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub rows: Vec<UrlRequest>,
}

/// The dimensions the ingest path will derive from a built URL.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Dimensions {
    pub campaign: Option<String>,
    pub journey: Option<String>,
    pub sequence: Option<String>,
    pub content: Option<String>,
    pub variant: Option<String>,
    pub source_medium: Option<String>,
}

/// An id minted for a row.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Minted {
    pub field: String,
    pub id: String,
}

/// A built URL.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UrlResult {
    pub url: String,
    /// The destination it was built from, as given.
    pub destination: String,
    pub composite_key: String,
    pub dimensions: Dimensions,
    pub template_version: u32,
    pub vendor: Option<String>,
    pub warnings: Vec<Warning>,
    pub minted: Vec<Minted>,
    /// The dimensions with every tracking parameter (kept in the record).
    #[serde(skip)]
    #[schema(ignore)]
    pub dims: Dims,
}

/// One row's outcome in a bulk answer; a built row (`ok`) also carries the
/// fields of a `UrlResult` (`url`, `destination`, `composite_key`, ...).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RowResult {
    /// 0-based index of the row (JSON) or its CSV line.
    pub row: usize,
    pub ok: bool,
    #[serde(flatten)]
    #[schema(ignore)]
    pub result: Option<UrlResult>,
    pub errors: Vec<FieldError>,
}

/// The answer of `POST .../registry/urls:bulk`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BulkResult {
    pub template_version: u32,
    pub rows: usize,
    pub built: usize,
    pub failed: usize,
    pub results: Vec<RowResult>,
}

/// `POST .../registry/urls`: 201 with the URL, or 422 listing every field error.
pub async fn build_url(state: Arc<AppState>, tenant: String, parts: &Parts, query: Option<String>, body: Bytes) -> Reply {
    Params::parse(query.as_deref(), &[])?;
    let req: UrlRequest = parse_body(&body)?;
    let (base, _) = event_id(parts, &tenant, &format!("urls\0{}", digest(&[&body])))?;
    let out = process(&state, &tenant, &base, vec![(0, req)], &body).await?;
    let row = out.results.into_iter().next().ok_or_else(|| ApiError::new(ErrorCode::Internal, "no result"))?;
    match row.result {
        Some(r) => Ok(json_response(StatusCode::CREATED, &serde_json::to_value(&r).unwrap_or_default())),
        None => {
            let n = row.errors.len();
            Err(ApiError::invalid(format!("{n} field error(s) against taxonomy version {}", out.template_version), serde_json::to_value(&row.errors).unwrap_or_default()))
        }
    }
}

/// `POST .../registry/urls:bulk`: JSON `{rows: [...]}` or CSV (`Content-Type:
/// text/csv`: a header with `destination`, optional `vendor`, and one column per
/// tracking field; `?mint=true&brand=&year=` mints for every row).
pub async fn build_bulk(state: Arc<AppState>, tenant: String, parts: &Parts, query: Option<String>, body: Bytes) -> Reply {
    let p = Params::parse(query.as_deref(), &["mint", "brand", "year"])?;
    let csv = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    let rows = if csv {
        let mint = match p.str("mint") {
            None | Some("false") => None,
            Some("true") => Some(MintDefaults { brand: p.str("brand").map(str::to_owned), year: p.int("year", 1970, 9999)?, attributes: Map::new() }),
            Some(v) => return Err(ApiError::param("mint", format!("{v:?} is not true or false"))),
        };
        parse_csv(&body, mint)?
    } else {
        if let Some(k) = ["mint", "brand", "year"].into_iter().find(|k| p.str(k).is_some()) {
            return Err(ApiError::param(k, "only for a CSV body (JSON rows carry `mint`)"));
        }
        let req: BulkRequest = parse_body(&body)?;
        if req.rows.len() > MAX_ROWS {
            return Err(ApiError::new(ErrorCode::TooLarge, format!("field `rows`: {} rows, more than {MAX_ROWS}: split the request", req.rows.len())));
        }
        req.rows.into_iter().enumerate().collect()
    };
    let (base, _) = event_id(parts, &tenant, &format!("bulk\0{}", digest(&[&body])))?;
    let out = process(&state, &tenant, &base, rows, &body).await?;
    Ok(json_response(StatusCode::OK, &serde_json::to_value(&out).unwrap_or_default()))
}

/// CSV rows (header: `destination`, `vendor`, tracking fields), each numbered by its line.
fn parse_csv(body: &[u8], mint: Option<MintDefaults>) -> Result<Vec<(usize, UrlRequest)>, ApiError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(body);
    let bad = |line: u64, m: String| ApiError::new(ErrorCode::BadRequest, format!("line {line}: {m}"));
    let csv_error = |e: csv::Error| bad(e.position().map_or(1, csv::Position::line), e.to_string());
    let header: Vec<String> = reader.headers().map_err(csv_error)?.iter().map(str::to_owned).collect();
    for (i, h) in header.iter().enumerate() {
        if h != "destination" && h != "vendor" && !is_field_name(h) {
            return Err(bad(1, format!("column {} `{h}`: not destination, vendor or a tracking parameter (utm_*, cm_*)", i + 1)));
        }
        if header[..i].contains(h) {
            return Err(bad(1, format!("column {} `{h}`: repeated", i + 1)));
        }
    }
    if !header.iter().any(|h| h == "destination") {
        return Err(bad(1, "the header lacks the column `destination`".into()));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line) as usize;
        if rows.len() == MAX_ROWS {
            return Err(ApiError::new(ErrorCode::TooLarge, format!("more than {MAX_ROWS} rows: split the file")));
        }
        let mut req = UrlRequest { destination: String::new(), fields: BTreeMap::new(), vendor: None, mint: mint.clone() };
        for (h, v) in header.iter().zip(record.iter()).filter(|(_, v)| !v.is_empty()) {
            match h.as_str() {
                "destination" => req.destination = v.to_owned(),
                "vendor" => req.vendor = Some(v.to_owned()),
                _ => drop(req.fields.insert(h.clone(), v.to_owned())),
            }
        }
        rows.push((line, req));
    }
    Ok(rows)
}

/// A row between the steps: its number, request, mints asked, and its outcome so far.
struct Row {
    n: usize,
    req: UrlRequest,
    /// (field, spec, index in the mint list).
    mints: Vec<(String, MintSpec, usize)>,
    errors: Vec<FieldError>,
}

/// Validates every row, mints what valid rows ask, builds and stores them.
async fn process(state: &Arc<AppState>, tenant: &str, base: &str, rows: Vec<(usize, UrlRequest)>, body: &[u8]) -> Result<BulkResult, ApiError> {
    let (partition, _) = owner_partition(state, tenant)?;
    let (store, t) = (state.store.clone(), tenant.to_owned());
    let template = blocking(move || {
        let rec = RegistryView::new(&store, partition, &t).current_taxonomy()?;
        let template = rec.and_then(|r| r.template()).ok_or_else(|| ApiError::new(ErrorCode::Conflict, format!("tenant {t} has no taxonomy yet: PUT .../registry/taxonomy first")))?;
        template.compile().map_err(|_| ApiError::new(ErrorCode::Internal, "the stored taxonomy does not compile"))
    })
    .await?;
    // 1. Mint specs of the rows that ask, then a check with placeholders in their place.
    let body_hash = digest(&[body]);
    let mut work = Vec::with_capacity(rows.len());
    let mut all_mints: Vec<MintSpec> = Vec::new();
    for (n, req) in rows {
        let mut row = Row { n, req, mints: Vec::new(), errors: Vec::new() };
        if let Some(m) = row.req.mint.clone() {
            for (field, kind) in missing_references(&template, &row.req.fields) {
                let mr = MintRequest { kind: kind.as_str().to_owned(), brand: m.brand.clone(), year: m.year, attributes: m.attributes.clone() };
                let hash = digest(&[body_hash.as_bytes(), n.to_string().as_bytes(), field.as_bytes()]);
                match mint_spec(state, tenant, mr, Status::Live, hash, "mint.") {
                    Ok(spec) => row.mints.push((field, spec, 0)),
                    Err(e) => {
                        let message = format!("{field}: required, and no {} id could be minted: {}", kind.as_str(), e.message);
                        row.errors.push(FieldError { field, code: touchline_actors::domain::governance::ErrorCode::Required, message });
                    }
                }
            }
        }
        work.push(row);
    }
    let (store, t, tpl) = (state.store.clone(), tenant.to_owned(), template.clone());
    let mut work = blocking(move || {
        let view = RegistryView::new(&store, partition, &t);
        for row in work.iter_mut().filter(|r| r.errors.is_empty()) {
            let mut fields = row.req.fields.clone();
            let mut placeholders = Vec::new();
            for (field, spec, _) in &row.mints {
                let p = IdPattern::parse(&spec.pattern).map_err(|e| ApiError::new(ErrorCode::Internal, e))?;
                let id = p.format(spec.brand.as_deref(), spec.year, 1);
                placeholders.push((spec.kind, id.clone()));
                fields.insert(field.clone(), id);
            }
            let lookup = |kind: IdType, id: &str| placeholders.iter().any(|(k, p)| *k == kind && p == id) || is_live(&view, kind, id);
            if let Err(errors) = build(&tpl, &row.req.destination, &fields, &lookup) {
                row.errors = errors;
            }
        }
        Ok(work)
    })
    .await?;
    for row in work.iter_mut().filter(|r| r.errors.is_empty()) {
        for m in row.mints.iter_mut() {
            m.2 = all_mints.len();
            all_mints.push(m.1.clone());
        }
    }
    // 2. Mint, in commands that each fit an event.
    let ids = mint_all(state, tenant, base, all_mints).await?;
    // 3. Build with the minted ids, in committed state now.
    let (store, t, tpl) = (state.store.clone(), tenant.to_owned(), template.clone());
    let results = blocking(move || {
        let view = RegistryView::new(&store, partition, &t);
        let lookup = |kind: IdType, id: &str| is_live(&view, kind, id);
        Ok(work
            .into_iter()
            .map(|row| {
                if !row.errors.is_empty() {
                    return RowResult { row: row.n, ok: false, result: None, errors: row.errors };
                }
                let mut fields = row.req.fields.clone();
                let minted: Vec<Minted> = row.mints.iter().map(|(f, _, i)| Minted { field: f.clone(), id: ids[*i].clone() }).collect();
                for m in &minted {
                    fields.insert(m.field.clone(), m.id.clone());
                }
                match build(&tpl, &row.req.destination, &fields, &lookup) {
                    Ok(b) => RowResult { row: row.n, ok: true, result: Some(result(b, row.req.destination, row.req.vendor, minted)), errors: Vec::new() },
                    Err(errors) => RowResult { row: row.n, ok: false, result: None, errors },
                }
            })
            .collect::<Vec<_>>())
    })
    .await?;
    // 4. Keep the built URLs for the export.
    let records: Vec<UrlRecord> = results.iter().filter_map(|r| r.result.as_ref().map(record)).collect();
    store_all(state, tenant, base, records).await?;
    let built = results.iter().filter(|r| r.ok).count();
    Ok(BulkResult { template_version: template.version(), rows: results.len(), built, failed: results.len() - built, results })
}

fn is_live(view: &RegistryView<'_>, kind: IdType, id: &str) -> bool {
    matches!(view.entry(id), Ok(Some(e)) if e.kind == kind && e.status == Status::Live)
}

/// The template's registry-reference fields that `fields` leave empty and
/// the template does not compute (constant, concatenation).
fn missing_references(t: &CompiledTaxonomy, fields: &BTreeMap<String, String>) -> Vec<(String, IdType)> {
    t.template()
        .fields
        .iter()
        .filter(|(name, rule)| rule.constant.is_none() && rule.concat.is_none() && fields.get(*name).is_none_or(|v| v.trim().is_empty()))
        .filter_map(|(name, rule)| Some((name.clone(), rule.registry?)))
        .collect()
}

impl From<&Dims> for Dimensions {
    fn from(d: &Dims) -> Dimensions {
        let d = d.clone();
        Dimensions { campaign: d.campaign, journey: d.journey, sequence: d.sequence, content: d.content, variant: d.variant, source_medium: d.source_medium }
    }
}

fn result(b: BuiltUrl, destination: String, vendor: Option<String>, minted: Vec<Minted>) -> UrlResult {
    UrlResult {
        url: b.url,
        destination,
        composite_key: b.composite_key,
        dimensions: Dimensions::from(&b.dims),
        dims: b.dims,
        template_version: b.template_version,
        vendor,
        warnings: b.warnings,
        minted,
    }
}

fn record(u: &UrlResult) -> UrlRecord {
    UrlRecord {
        url: u.url.clone(),
        destination: u.destination.clone(),
        composite_key: u.composite_key.clone(),
        template_version: u.template_version,
        vendor: u.vendor.clone(),
        dims: u.dims.clone(),
    }
}

/// `items` in runs whose JSON fits one command.
fn chunks<T: Serialize>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut size = 0;
    for it in items {
        let n = serde_json::to_vec(&it).map_or(0, |b| b.len()) + 1;
        if out.is_empty() || size + n > MAX_COMMAND_BYTES {
            out.push(Vec::new());
            size = 0;
        }
        size += n;
        out.last_mut().expect("pushed").push(it);
    }
    out
}

/// Mints `mints` and answers their ids in order.
async fn mint_all(state: &Arc<AppState>, tenant: &str, base: &str, mints: Vec<MintSpec>) -> Result<Vec<String>, ApiError> {
    let max_ids = state.limits.registry_max_ids;
    let mut keys = Vec::with_capacity(mints.len());
    for (c, chunk) in chunks(mints).into_iter().enumerate() {
        let event_id = format!("{base}-m{c}");
        keys.extend((0..chunk.len()).map(|i| request_key(&event_id, i)));
        send_and_wait(state, tenant, &event_id, &RegistryCommand::Mint { mints: chunk, max_ids }).await?;
    }
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (partition, _) = owner_partition(state, tenant)?;
    let (store, t) = (state.store.clone(), tenant.to_owned());
    let ids = blocking(move || {
        let view = RegistryView::new(&store, partition, &t);
        keys.iter().map(|k| Ok(view.request(k)?.map(|r| r.id))).collect::<Result<Vec<Option<String>>, ApiError>>()
    })
    .await?;
    ids.into_iter().collect::<Option<Vec<String>>>().ok_or_else(|| full(max_ids))
}

async fn store_all(state: &Arc<AppState>, tenant: &str, base: &str, records: Vec<UrlRecord>) -> Result<(), ApiError> {
    let max_urls = state.limits.registry_max_urls;
    for (c, chunk) in chunks(records).into_iter().enumerate() {
        send_and_wait(state, tenant, &format!("{base}-s{c}"), &RegistryCommand::StoreUrls { urls: chunk, max_urls }).await?;
    }
    Ok(())
}

/// One stored URL in the export (its columns, in `EXPORT_COLUMNS` order).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ExportRow {
    pub url: String,
    pub vendor: Option<String>,
    pub composite_key: String,
    #[serde(flatten)]
    pub dimensions: Dimensions,
    pub template_version: u32,
    pub destination: String,
    pub created_at: String,
}

/// The JSON answer of `GET .../registry/urls`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ExportAnswer {
    pub tenant: String,
    pub urls: Vec<ExportRow>,
}

/// The columns of the export, in order.
const EXPORT_COLUMNS: [&str; 12] = ["url", "vendor", "composite_key", "campaign", "journey", "sequence", "content", "variant", "source_medium", "template_version", "destination", "created_at"];

/// `GET .../registry/urls?vendor=&format=csv|json`: the stored URLs (of one
/// vendor when given), in URL order.
pub async fn export(state: Arc<AppState>, tenant: String, query: Option<String>) -> Reply {
    let p = Params::parse(query.as_deref(), &["vendor", "format"])?;
    let vendor = p.str("vendor").map(str::to_owned);
    let csv = match p.str("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(v) => return Err(ApiError::param("format", format!("unknown format {v:?} (one of json, csv)"))),
    };
    let (partition, _) = owner_partition(&state, &tenant)?;
    let (store, t) = (state.store.clone(), tenant.clone());
    let urls = blocking(move || Ok(RegistryView::new(&store, partition, &t).urls(|u| vendor.as_ref().is_none_or(|v| u.record.vendor.as_ref() == Some(v)))?)).await?;
    let rows: Vec<ExportRow> = urls
        .iter()
        .map(|s| {
            let r = &s.record;
            ExportRow {
                url: r.url.clone(),
                vendor: r.vendor.clone(),
                composite_key: r.composite_key.clone(),
                dimensions: Dimensions::from(&r.dims),
                template_version: r.template_version,
                destination: r.destination.clone(),
                created_at: s.created_at.to_string(),
            }
        })
        .collect();
    if !csv {
        return Ok(json_response(StatusCode::OK, &ExportAnswer { tenant, urls: rows }));
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::new(ErrorCode::Internal, format!("CSV rendering: {e}"));
    w.write_record(EXPORT_COLUMNS).map_err(internal)?;
    for r in &rows {
        let r = serde_json::to_value(r).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        w.write_record(EXPORT_COLUMNS.iter().map(|c| match &r[*c] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }))
        .map_err(internal)?;
    }
    let bytes = w.into_inner().map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    super::csv::download(bytes, &format!("{tenant}-registry-urls.csv"))
}

//! Registry endpoints for ids and taxonomy templates (docs/registry.md):
//! `POST|GET .../registry/ids`, `GET|PATCH .../registry/ids/{id}`,
//! `PUT|GET .../registry/taxonomy`, `GET .../registry/compliance` (URLs and
//! their export are in `registry_urls`; the routes in `routes::ROUTES`, their
//! descriptions in `registry_ops`). Writes go through
//! the tenant's partition (`registry_cmd`); reads come from committed state.
//! Each route is one handler with typed request and response bodies.

use super::error::{ApiError, ErrorCode};
use super::params::{require_weights, Params};
use super::registry_cmd::{current_year, digest, event_id, field_error, parse_body, send_and_wait};
use super::reports::{blocking, owner_partition};
use super::{json_response, AppState};
use bytes::Bytes;
use http_body_util::Full;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use touchline_actors::domain::governance::registry::{merge_patch, normalize_brand, parse_type, request_key, split_attributes, split_patch, valid_year, IdPattern, MintSpec, RegistryCommand, Status};
use touchline_actors::domain::governance::{check_version, Taxonomy};
use touchline_actors::domain::models::Model;
use touchline_actors::domain::GroupBy;
use touchline_actors::query::compliance::CreditQuery;
use touchline_actors::state::registry::{RegistryEntry, RegistryView, TaxonomyRec};

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// The body of `POST .../registry/ids`.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// `campaign`, `content`, `journey` or `variant`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(campaign|content|journey|variant)$", example = "campaign")]
    pub kind: String,
    /// Required when the type's pattern holds `{BRAND}`.
    pub brand: Option<String>,
    /// Default: the current year (UTC).
    pub year: Option<i64>,
    /// `title`, `status` (default `draft`), `mlr_case_id`, … any JSON values.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// One registry id, as every registry route answers it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IdView {
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(campaign|content|journey|variant)$")]
    pub kind: &'static str,
    pub brand: Option<String>,
    pub year: u16,
    pub sequence: u64,
    #[schema(value_type = String, pattern = "^(draft|approved|live|retired)$")]
    pub status: &'static str,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&RegistryEntry> for IdView {
    fn from(e: &RegistryEntry) -> IdView {
        IdView {
            id: e.id.clone(),
            kind: e.kind.as_str(),
            brand: e.brand.clone(),
            year: e.year,
            sequence: e.sequence,
            status: e.status.as_str(),
            attributes: e.attributes(),
            created_at: e.created_at.to_string(),
            updated_at: e.updated_at.to_string(),
        }
    }
}

/// The answer of `GET .../registry/ids`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IdList {
    pub ids: Vec<IdView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

fn view_json<T: Serialize>(status: StatusCode, v: &T) -> Reply {
    let body = serde_json::to_value(v).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    Ok(json_response(status, &body))
}

/// A [`MintRequest`] resolved into what the command carries (`status`: the
/// default when the attributes name none).
pub fn mint_spec(state: &AppState, tenant: &str, req: MintRequest, default_status: Status, request_hash: String, at: &str) -> Result<MintSpec, ApiError> {
    let f = |name: &str| format!("{at}{name}");
    let kind = parse_type(&req.kind).ok_or_else(|| field_error(&f("type"), format!("{:?} is not one of campaign, content, journey, variant", req.kind)))?;
    let pattern_text = state.registry.pattern(tenant, kind);
    let pattern = IdPattern::parse(&pattern_text).map_err(|e| ApiError::new(ErrorCode::Internal, format!("id pattern: {e}")))?;
    let brand = match req.brand.as_deref() {
        Some(b) => Some(normalize_brand(b).map_err(|e| field_error(&f("brand"), e))?),
        None if pattern.has_brand() => return Err(field_error(&f("brand"), format!("required: the {} pattern {pattern_text:?} holds {{BRAND}}", kind.as_str()))),
        None => None,
    };
    let year = match req.year {
        Some(y) if valid_year(y) => y as u16,
        Some(y) => return Err(field_error(&f("year"), format!("{y} is not in 1970..=9999"))),
        None => current_year(),
    };
    let (attributes, status) = split_attributes(req.attributes).map_err(|(field, m)| field_error(&f(&field), m))?;
    Ok(MintSpec { kind, brand, year, pattern: pattern_text, status: status.unwrap_or(default_status), attributes, request_hash })
}

/// `POST .../registry/ids`: mints one id (201), or answers the id an earlier
/// request with the same `Idempotency-Key` minted (200).
pub async fn mint_id(state: Arc<AppState>, tenant: String, parts: &Parts, query: Option<String>, body: Bytes) -> Reply {
    Params::parse(query.as_deref(), &[])?;
    let req: MintRequest = parse_body(&body)?;
    let spec = mint_spec(&state, &tenant, req, Status::Draft, digest(&[&body]), "")?;
    let (event_id, _) = event_id(parts, &tenant, "mint")?;
    let rk = request_key(&event_id, 0);
    let (partition, _) = owner_partition(&state, &tenant)?;
    let max_ids = state.limits.registry_max_ids;
    let (store, t, k) = (state.store.clone(), tenant.clone(), rk.clone());
    let known = blocking(move || {
        let view = RegistryView::new(&store, partition, &t);
        let Some(r) = view.request(&k)? else { return Ok(Err(view.meta()?.ids)) };
        Ok(Ok((r.request_hash, view.entry(&r.id)?)))
    })
    .await?;
    match known {
        Ok((hash, _)) if hash != spec.request_hash => return Err(reused_key()),
        Ok((_, Some(e))) => return view_json(StatusCode::OK, &IdView::from(&e)),
        Ok((_, None)) => return Err(ApiError::new(ErrorCode::Internal, "a minted id has no record")),
        Err(ids) if ids >= max_ids => return Err(full(max_ids)),
        Err(_) => {}
    }
    send_and_wait(&state, &tenant, &event_id, &RegistryCommand::Mint { mints: vec![spec], max_ids }).await?;
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let entry = blocking(move || {
        let view = RegistryView::new(&store, partition, &tenant);
        Ok(match view.request(&rk)? {
            Some(r) => view.entry(&r.id)?,
            None => None,
        })
    })
    .await?;
    match entry {
        Some(e) => view_json(StatusCode::CREATED, &IdView::from(&e)),
        None => Err(full(max_ids)),
    }
}

pub fn reused_key() -> ApiError {
    ApiError::new(ErrorCode::Conflict, "header `Idempotency-Key`: already used for a request with another body")
}

pub fn full(max: u64) -> ApiError {
    ApiError::new(ErrorCode::Conflict, format!("the registry holds limits.registry_max_ids = {max} ids: no more can be minted"))
}

/// `GET .../registry/ids/{id}`.
pub async fn get_id(state: Arc<AppState>, tenant: String, id: String, query: Option<String>) -> Reply {
    Params::parse(query.as_deref(), &[])?;
    let e = read_entry(&state, &tenant, &id).await?;
    view_json(StatusCode::OK, &IdView::from(&e))
}

async fn read_entry(state: &Arc<AppState>, tenant: &str, id: &str) -> Result<RegistryEntry, ApiError> {
    let (partition, _) = owner_partition(state, tenant)?;
    let (store, t, i) = (state.store.clone(), tenant.to_owned(), id.to_owned());
    blocking(move || Ok(RegistryView::new(&store, partition, &t).entry(&i)?))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("id {id:?} is not in the registry of tenant {tenant}")))
}

/// The body of `PATCH .../registry/ids/{id}`: a merge patch of the
/// attributes (`null` removes a key; `status` sets the status). The id never changes.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// `PATCH .../registry/ids/{id}`.
pub async fn patch_id(state: Arc<AppState>, tenant: String, id: String, parts: &Parts, query: Option<String>, body: Bytes) -> Reply {
    Params::parse(query.as_deref(), &[])?;
    let req: PatchRequest = parse_body(&body)?;
    let current = read_entry(&state, &tenant, &id).await?;
    let (attributes, status) = split_attributes_patch(req.attributes)?;
    let (set, remove) = split_patch(attributes);
    merge_patch(&current.attributes(), &set, &remove).map_err(|(field, m)| field_error(&field, m))?;
    let (event_id, _) = event_id(parts, &tenant, &format!("patch\0{id}\0{}", digest(&[&body])))?;
    send_and_wait(&state, &tenant, &event_id, &RegistryCommand::Update { id: id.clone(), status, set, remove }).await?;
    let e = read_entry(&state, &tenant, &id).await?;
    view_json(StatusCode::OK, &IdView::from(&e))
}

/// A patch's `status` taken out (a `null` status is refused: every id has one).
fn split_attributes_patch(mut attributes: Map<String, Value>) -> Result<(Map<String, Value>, Option<Status>), ApiError> {
    if attributes.get("status").is_some_and(Value::is_null) {
        return Err(field_error("attributes.status", "cannot be removed (one of draft, approved, live, retired)"));
    }
    let status = attributes.remove("status");
    let mut probe = Map::new();
    if let Some(s) = status {
        probe.insert("status".into(), s);
    }
    let (_, status) = split_attributes(probe).map_err(|(field, m)| field_error(&field, m))?;
    Ok((attributes, status))
}

/// `GET .../registry/ids`: `type`, `brand`, `year`, `status`, `q` (a
/// case-insensitive part of the title or id) filter; `limit` (1..=1000,
/// default 100) and `cursor` page, in id order.
pub async fn list_ids(state: Arc<AppState>, tenant: String, query: Option<String>) -> Reply {
    let p = Params::parse(query.as_deref(), &["type", "brand", "year", "status", "q", "limit", "cursor"])?;
    let kind = p.str("type").map(|t| parse_type(t).ok_or_else(|| ApiError::param("type", format!("{t:?} is not one of campaign, content, journey, variant")))).transpose()?;
    let status = p.str("status").map(|s| Status::parse(s).ok_or_else(|| ApiError::param("status", format!("{s:?} is not one of draft, approved, live, retired")))).transpose()?;
    let brand = p.str("brand").map(|b| normalize_brand(b).map_err(|e| ApiError::param("brand", e))).transpose()?;
    let year = p.int("year", 1970, 9999)?.map(|y| y as u16);
    let q = p.str("q").map(str::to_lowercase);
    let limit = p.int("limit", 1, 1000)?.unwrap_or(100) as usize;
    let cursor = p.str("cursor").map(str::to_owned);
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let list = blocking(move || {
        let keep = |e: &RegistryEntry| {
            kind.is_none_or(|k| e.kind == k)
                && status.is_none_or(|s| e.status == s)
                && brand.as_ref().is_none_or(|b| e.brand.as_ref() == Some(b))
                && year.is_none_or(|y| e.year == y)
                && q.as_ref().is_none_or(|q| e.id.to_lowercase().contains(q) || e.title().is_some_and(|t| t.to_lowercase().contains(q)))
        };
        let (page, more) = RegistryView::new(&store, partition, &tenant).entries(cursor.as_deref(), limit, keep)?;
        let next_cursor = if more { page.last().map(|e| e.id.clone()) } else { None };
        Ok(IdList { ids: page.iter().map(IdView::from).collect(), next_cursor })
    })
    .await?;
    view_json(StatusCode::OK, &list)
}

/// One taxonomy version, as the taxonomy routes answer it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaxonomyView {
    pub version: u32,
    pub created_at: String,
    pub template: Taxonomy,
}

fn taxonomy_view(r: &TaxonomyRec) -> Result<TaxonomyView, ApiError> {
    let template = r.template().ok_or_else(|| ApiError::new(ErrorCode::Internal, format!("taxonomy version {} does not read back", r.version)))?;
    Ok(TaxonomyView { version: r.version, created_at: r.created_at.to_string(), template })
}

/// `PUT .../registry/taxonomy`: the body is the new template; its `version`
/// must be the current + 1 (1 for the first), else 409.
pub async fn put_taxonomy(state: Arc<AppState>, tenant: String, parts: &Parts, query: Option<String>, body: Bytes) -> Reply {
    Params::parse(query.as_deref(), &[])?;
    let template: Taxonomy = parse_body(&body)?;
    if let Err(errors) = template.compile() {
        let fields: Vec<Value> = errors.iter().map(|e| json!({"field": e.field(), "code": "template", "message": e.to_string()})).collect();
        return Err(ApiError::invalid(format!("the template has {} error(s)", fields.len()), Value::Array(fields)));
    }
    let max_versions = state.limits.registry_max_taxonomy_versions;
    if template.version > max_versions {
        return Err(ApiError::new(ErrorCode::Conflict, format!("version {}: above limits.registry_max_taxonomy_versions = {max_versions}", template.version)));
    }
    let (partition, _) = owner_partition(&state, &tenant)?;
    let (store, t) = (state.store.clone(), tenant.clone());
    let current = blocking(move || Ok(RegistryView::new(&store, partition, &t).meta()?.taxonomy_version)).await?;
    let version = template.version;
    check_version(Some(current).filter(|v| *v > 0), version).map_err(|e| ApiError::new(ErrorCode::Conflict, e.to_string()))?;
    let (event_id, _) = event_id(parts, &tenant, &format!("taxonomy\0{}", digest(&[&body])))?;
    send_and_wait(&state, &tenant, &event_id, &RegistryCommand::Taxonomy { template, max_versions }).await?;
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let rec = blocking(move || Ok(RegistryView::new(&store, partition, &tenant).taxonomy(version)?)).await?;
    match rec {
        Some(r) if r.event_id == event_id => view_json(StatusCode::CREATED, &taxonomy_view(&r)?),
        _ => Err(ApiError::new(ErrorCode::Conflict, format!("version: another change stored version {version} first; read the current one and retry"))),
    }
}

/// `GET .../registry/taxonomy[?version=N]`: the current template, or version N.
pub async fn get_taxonomy(state: Arc<AppState>, tenant: String, query: Option<String>) -> Reply {
    let p = Params::parse(query.as_deref(), &["version"])?;
    let version = p.int("version", 1, i64::from(u32::MAX))?.map(|v| v as u32);
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let t = tenant.clone();
    let rec = blocking(move || {
        let view = RegistryView::new(&store, partition, &t);
        Ok(match version {
            Some(v) => view.taxonomy(v)?,
            None => view.current_taxonomy()?,
        })
    })
    .await?;
    match rec {
        Some(r) => view_json(StatusCode::OK, &taxonomy_view(&r)?),
        None => Err(ApiError::new(ErrorCode::NotFound, match version {
            Some(v) => format!("tenant {tenant} has no taxonomy version {v}"),
            None => format!("tenant {tenant} has no taxonomy yet (PUT .../registry/taxonomy)"),
        })),
    }
}

/// `GET .../registry/compliance?from&to&model&…` (default: all time, the
/// linear model): the tenant's touchpoints against the current taxonomy and
/// the registry, and the conversions' credit under a rule-based model by
/// the verdict of the touchpoints it went through (the attribution's
/// `lookback_days`, `half_life_hours`, `weights`, `currency`, `identity`).
pub async fn compliance(state: Arc<AppState>, tenant: String, query: Option<String>) -> Reply {
    let p = Params::parse(query.as_deref(), &["from", "to", "model", "lookback_days", "half_life_hours", "weights", "currency", "identity"])?;
    let (from, to) = p.range_all()?;
    let model = p.model(Model::Linear)?;
    if model.is_data_driven() {
        return Err(ApiError::param("model", format!("{model} credits grouping keys over whole path sets, not touchpoints: use a rule-based model")));
    }
    let mut q = p.attribution_query(from, to, Some(GroupBy::Channel), state.default_lookback_days)?;
    require_weights(model, &q.params)?;
    let identity = p.identity()?;
    let (partition, _) = owner_partition(&state, &tenant)?;
    let store = state.store.clone();
    let body = blocking(move || {
        q.horizon = state.horizon(partition, &tenant)?;
        let from = touchline_actors::domain::retention::clamp_from(from, q.horizon);
        let rec = RegistryView::new(&store, partition, &tenant).current_taxonomy()?;
        let template = rec.and_then(|r| r.template()).and_then(|t| t.compile().ok());
        let view = state.final_persons(partition, &tenant, identity, q.horizon)?;
        let credit = CreditQuery { model, query: &q, view: view.as_deref() };
        Ok(touchline_actors::query::compliance::compliance(&store, partition, &tenant, from, to, template.as_ref(), &credit)?)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &body))
}

//! The registry operations (issue 20, docs/registry.md) the route table
//! dispatches to, each with its `#[utoipa::path]` annotation: ids (mint, list,
//! read, patch), the taxonomy (put, read), the URL builder (one, bulk), the
//! vendor export and the compliance report. The handlers are in `registry`
//! and `registry_urls`; writes answer 409 and 422 besides the common errors.

#![allow(dead_code)] // the parameter structs below only describe; the handlers parse

use super::error::{ClientErrors, RegistryErrors, ServerErrors};
use super::openapi::RuleModelName;
use super::operations::{CreditQuery, RangeQuery, TenantPath};
use super::registry::{self, IdList, IdView, MintRequest, PatchRequest, TaxonomyView};
use super::registry_urls::{self, BulkRequest, BulkResult, ExportAnswer, UrlRequest, UrlResult};
use super::routes::{Call, Reply};
use super::AppState;
use std::sync::Arc;
use touchline_actors::domain::governance::Taxonomy;
use touchline_actors::query::compliance::ComplianceAnswer;

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct RegistryIdPath {
    /// A registry id (as minted, e.g. `CMP-EYL-2026-001`).
    #[param(example = "CMP-EYL-2026-001")]
    id: String,
}

/// Makes a retry of a write a no-op (the same key with another body is a 409).
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
struct IdempotencyHeader {
    #[serde(rename = "Idempotency-Key")]
    #[param(min_length = 1, max_length = 256, pattern = "^[!-~]+$")]
    idempotency_key: Option<String>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only ids of this type.
    #[param(pattern = "^(campaign|content|journey|variant)$")]
    r#type: Option<String>,
    /// Only ids of this brand.
    brand: Option<String>,
    #[param(minimum = 1970, maximum = 9999)]
    year: Option<i64>,
    #[param(pattern = "^(draft|approved|live|retired)$")]
    status: Option<String>,
    /// A case-insensitive part of the id or its title.
    q: Option<String>,
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct VersionQuery {
    /// A past version (default: the current one).
    #[param(minimum = 1, maximum = 4294967295_i64)]
    version: Option<i64>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// Only URLs built for this vendor.
    vendor: Option<String>,
    /// Default `json`.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct BulkQuery {
    /// CSV body only: mint the ids each row's registry references lack.
    #[param(pattern = "^(true|false)$")]
    mint: Option<String>,
    /// CSV body only, with `mint`: the minted ids' brand.
    brand: Option<String>,
    /// CSV body only, with `mint`: the minted ids' year.
    #[param(minimum = 1970, maximum = 9999)]
    year: Option<i64>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ComplianceQuery {
    /// The model whose credit is split by verdict (default `linear`; the data-driven ones credit no touchpoint).
    #[param(inline)]
    model: Option<RuleModelName>,
    /// Only conversions in this currency (`[A-Z]{3}`; default: the tenant's first).
    #[param(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/registry/ids", tag = "registry", security(("bearer" = [])), params(TenantPath, IdempotencyHeader),
    request_body(content = MintRequest, content_type = "application/json", example = json!({"type": "campaign", "brand": "EYL", "attributes": {"title": "Spring launch"}})),
    responses((status = 201, description = "The minted id.", body = IdView), (status = 200, description = "The id an earlier request with this `Idempotency-Key` minted.", body = IdView), ClientErrors, RegistryErrors, ServerErrors))]
pub async fn registry_mint(state: Arc<AppState>, c: Call) -> Reply {
    registry::mint_id(state, c.param("tenant"), &c.parts, c.query, c.body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/registry/ids", tag = "registry", security(("bearer" = [])), params(TenantPath, ListQuery),
    responses((status = 200, description = "The tenant's ids, filtered, paged in id order.", body = IdList), ClientErrors, ServerErrors))]
pub async fn registry_list(state: Arc<AppState>, c: Call) -> Reply {
    registry::list_ids(state, c.param("tenant"), c.query).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/registry/ids/{id}", tag = "registry", security(("bearer" = [])), params(TenantPath, RegistryIdPath),
    responses((status = 200, description = "One id.", body = IdView), ClientErrors, ServerErrors))]
pub async fn registry_get(state: Arc<AppState>, c: Call) -> Reply {
    registry::get_id(state, c.param("tenant"), c.param("id"), c.query).await
}

#[utoipa::path(patch, path = "/v1/tenants/{tenant}/registry/ids/{id}", tag = "registry", security(("bearer" = [])), params(TenantPath, RegistryIdPath, IdempotencyHeader),
    request_body(content = PatchRequest, content_type = "application/json", description = "A merge patch of the attributes (`null` removes a key, `status` sets the status).", example = json!({"attributes": {"title": "Spring launch (EU)", "status": "approved"}})),
    responses((status = 200, description = "The id after the patch.", body = IdView), ClientErrors, RegistryErrors, ServerErrors))]
pub async fn registry_patch(state: Arc<AppState>, c: Call) -> Reply {
    registry::patch_id(state, c.param("tenant"), c.param("id"), &c.parts, c.query, c.body).await
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}/registry/taxonomy", tag = "registry", security(("bearer" = [])), params(TenantPath, IdempotencyHeader),
    request_body(content = Taxonomy, content_type = "application/json", description = "The new template; `version` is the current one + 1 (1 for the first), else 409.",
        example = json!({"version": 2, "fields": {"utm_source": {"required": true, "pick_list": ["google", "meta", "newsletter"]}, "utm_medium": {"required": true, "case": "lower"}, "utm_campaign": {"required": true, "spaces": "underscore", "max_length": 64}}})),
    responses((status = 201, description = "The stored version.", body = TaxonomyView), ClientErrors, RegistryErrors, ServerErrors))]
pub async fn registry_put_taxonomy(state: Arc<AppState>, c: Call) -> Reply {
    registry::put_taxonomy(state, c.param("tenant"), &c.parts, c.query, c.body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/registry/taxonomy", tag = "registry", security(("bearer" = [])), params(TenantPath, VersionQuery),
    responses((status = 200, description = "The current template (or version `version`).", body = TaxonomyView), ClientErrors, ServerErrors))]
pub async fn registry_get_taxonomy(state: Arc<AppState>, c: Call) -> Reply {
    registry::get_taxonomy(state, c.param("tenant"), c.query).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/registry/urls", tag = "registry", security(("bearer" = [])), params(TenantPath, IdempotencyHeader),
    request_body(content = UrlRequest, content_type = "application/json",
        example = json!({"destination": "https://example.com/spring", "fields": {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring_launch"}, "vendor": "google_ads"})),
    responses((status = 201, description = "The built URL (stored for the export).", body = UrlResult), ClientErrors, RegistryErrors, ServerErrors))]
pub async fn registry_url(state: Arc<AppState>, c: Call) -> Reply {
    registry_urls::build_url(state, c.param("tenant"), &c.parts, c.query, c.body).await
}

#[utoipa::path(post, path = "/v1/tenants/{tenant}/registry/urls:bulk", tag = "registry", security(("bearer" = [])), params(TenantPath, BulkQuery, IdempotencyHeader),
    request_body(description = "JSON rows, or CSV (a header with `destination`, optional `vendor`, one column per tracking field).",
        content((BulkRequest = "application/json", example = json!({"rows": [{"destination": "https://example.com/spring", "fields": {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring_launch"}}]})), (String = "text/csv"))),
    responses((status = 200, description = "Each row's URL or field errors.", body = BulkResult), ClientErrors, RegistryErrors, ServerErrors))]
pub async fn registry_bulk(state: Arc<AppState>, c: Call) -> Reply {
    registry_urls::build_bulk(state, c.param("tenant"), &c.parts, c.query, c.body).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/registry/urls", tag = "registry", security(("bearer" = [])), params(TenantPath, ExportQuery),
    responses((status = 200, description = "The stored URLs, in URL order (the vendor export).", content((ExportAnswer = "application/json"), (String = "text/csv"))), ClientErrors, ServerErrors))]
pub async fn registry_export(state: Arc<AppState>, c: Call) -> Reply {
    registry_urls::export(state, c.param("tenant"), c.query).await
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/registry/compliance", tag = "registry", security(("bearer" = [])), params(TenantPath, RangeQuery, ComplianceQuery, CreditQuery),
    responses((status = 200, description = "Retained touchpoints judged against the current taxonomy and the registry (default range: all retained time), and the credit of the conversions in range under `model` split by the verdict of the touchpoints it went through.", body = ComplianceAnswer), ClientErrors, ServerErrors))]
pub async fn registry_compliance(state: Arc<AppState>, c: Call) -> Reply {
    registry::compliance(state, c.param("tenant"), c.query).await
}

//! The OpenAPI 3.1 description of the HTTP surface, served at `GET
//! /openapi.json`: built from the route table (`routes::ROUTES`), each
//! described entry adding its operation's `#[utoipa::path]` annotation and the
//! answer types it names; plus the security schemes, the `ErrorBody` schema
//! and the parameter value enums, taken from the domain's own lists (models,
//! groupings, granularities). The report page (`/ui`), `/internal/v1` and the
//! collector's CORS preflights are served but not described.

use super::error::ErrorBody;
use std::sync::LazyLock;
use touchline_actors::domain::models::Model;
use touchline_actors::domain::window::Granularity;
use touchline_actors::domain::GroupBy;
use utoipa::openapi::path::Paths;
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, RefOr};

/// Adds the operation of `P` (a `#[utoipa::path]`) and the schemas it names.
pub fn described<P: utoipa::Path + utoipa::__dev::SchemaReferences>(paths: &mut Paths, schemas: &mut Vec<(String, RefOr<Schema>)>) {
    paths.add_path_operation(P::path(), P::methods(), P::operation());
    P::schemas(schemas);
}

/// The description, from the route table.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    let mut schemas = Vec::new();
    for doc in super::routes::ROUTES.iter().filter_map(|r| r.doc) {
        doc(&mut paths, &mut schemas);
    }
    <ErrorBody as utoipa::ToSchema>::schemas(&mut schemas);
    schemas.push(("ErrorBody".into(), <ErrorBody as utoipa::PartialSchema>::schema()));
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)))
        .security_scheme("writeKey", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)))
        .build();
    let info = InfoBuilder::new()
        .title("touchline")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Real-time multi-touch marketing attribution: the query API (`/v1/tenants/...`, bearer tokens), the \
             Segment-style collector (`/v1/collect/...`, a write key as HTTP Basic user), the cluster view and the \
             health probes. Every error is `{\"error\": {\"code\", \"message\"}}`. Not described: the report page \
             (`/ui`), node-to-node `/internal/v1` routes and the collector's CORS preflights (`OPTIONS`).",
        ))
        .build();
    OpenApiBuilder::new().info(info).paths(paths).components(Some(components)).build()
}

/// The served description (built once).
pub static JSON: LazyLock<serde_json::Value> = LazyLock::new(|| serde_json::to_value(document()).unwrap_or_default());

/// A string schema enumerating `values`.
fn names(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    let mut o = Object::with_type(Type::String);
    o.enum_values = Some(values.into_iter().map(serde_json::Value::from).collect());
    o.description = Some(description.to_string());
    RefOr::T(Schema::Object(o))
}

/// Declares a string-enum schema whose values come from the domain.
macro_rules! name_schema {
    ($ty:ident, $description:literal, $values:expr) => {
        pub struct $ty;
        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                names($description, $values)
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}

name_schema!(ModelName, "An attribution model (`custom` needs `weights`).", Model::ALL.iter().map(|m| m.as_str()));
name_schema!(RuleModelName, "A rule-based attribution model (`custom` needs `weights`).", Model::ALL.iter().filter(|m| !m.is_data_driven()).map(|m| m.as_str()));
name_schema!(GroupByName, "A grouping dimension of touchpoints.", GroupBy::ALL.iter().map(|g| g.as_str()));
name_schema!(GranularityName, "A window granularity.", Granularity::ALL.iter().map(|g| g.as_str()));
name_schema!(IdentityName, "Which persons: joined by probabilistic links too (`all`) or deterministic links only.", ["all", "deterministic"]);
name_schema!(BucketName, "A series bucket: one day or one week.", ["day", "week"]);
name_schema!(FormatName, "The answer's format (wins over `Accept: text/csv`).", ["json", "csv"]);
name_schema!(CohortName, "The cohort width: first-touch day or ISO week.", ["week", "day"]);
name_schema!(ScopeName, "Every partition of the cluster, or this node's only.", ["cluster", "local"]);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use utoipa::openapi::path::ParameterIn;

    /// Every (method, path) of the description.
    fn described_routes(doc: &OpenApi) -> BTreeSet<(String, String)> {
        let v = serde_json::to_value(doc).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in v["paths"].as_object().unwrap() {
            for (m, _) in item.as_object().unwrap().iter().filter(|(k, _)| ["get", "post", "put", "delete", "options", "head", "patch", "trace"].contains(&k.as_str())) {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
        out
    }

    #[test]
    fn the_router_serves_exactly_the_described_routes() {
        let served: BTreeSet<(String, String)> = super::super::routes::ROUTES.iter().filter(|r| r.doc.is_some()).map(|r| (r.method.to_string(), r.path.to_string())).collect();
        let described = described_routes(&document());
        let undescribed: Vec<_> = served.difference(&described).collect();
        let unserved: Vec<_> = described.difference(&served).collect();
        assert!(undescribed.is_empty() && unserved.is_empty(), "served, not described: {undescribed:?}; described, not served: {unserved:?}");
        assert_eq!(served.len(), super::super::routes::ROUTES.iter().filter(|r| r.doc.is_some()).count(), "one entry per (method, path)");
        // What is served but not described is only the report page, the internal routes and CORS preflights.
        for r in super::super::routes::ROUTES.iter().filter(|r| r.doc.is_none()) {
            assert!(r.path.starts_with("/ui") || r.path.starts_with("/internal/") || r.method == hyper::Method::OPTIONS, "{} {} is not described", r.method, r.path);
        }
    }

    #[test]
    fn every_entry_matches_its_annotation_and_its_query_parameters() {
        for r in super::super::routes::ROUTES {
            let Some(doc) = r.doc else { continue };
            let mut paths = Paths::new();
            doc(&mut paths, &mut Vec::new());
            let (path, item) = paths.paths.iter().next().unwrap();
            assert_eq!(path, r.path, "the entry's path is its annotation's");
            let op = match r.method {
                hyper::Method::GET => item.get.as_ref(),
                hyper::Method::POST => item.post.as_ref(),
                hyper::Method::DELETE => item.delete.as_ref(),
                hyper::Method::PUT => item.put.as_ref(),
                hyper::Method::PATCH => item.patch.as_ref(),
                _ => None,
            };
            let op = op.unwrap_or_else(|| panic!("{} {}: the annotation has another method", r.method, r.path));
            let params = op.parameters.clone().unwrap_or_default();
            let query: BTreeSet<&str> = params.iter().filter(|p| p.parameter_in == ParameterIn::Query).map(|p| p.name.as_str()).collect();
            assert_eq!(query, r.query.iter().copied().collect(), "{} {}: documented query parameters = accepted ones", r.method, r.path);
            let path_params: BTreeSet<&str> = params.iter().filter(|p| p.parameter_in == ParameterIn::Path).map(|p| p.name.as_str()).collect();
            let in_template: BTreeSet<&str> = r.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            assert_eq!(path_params, in_template, "{} {}: path parameters", r.method, r.path);
            let statuses: Vec<&String> = op.responses.responses.keys().collect();
            assert!(statuses.iter().any(|s| s.starts_with('2')), "{} {}: a success answer", r.method, r.path);
        }
    }

    #[test]
    fn the_description_is_openapi_3_1_with_one_error_shape() {
        let v = JSON.clone();
        assert!(v["openapi"].as_str().unwrap().starts_with("3.1"), "{}", v["openapi"]);
        let codes = &v["components"]["schemas"]["ErrorCode"]["enum"];
        assert_eq!(codes.as_array().unwrap().len(), 10, "{codes}");
        assert_eq!(v["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(v["components"]["securitySchemes"]["writeKey"]["scheme"], "basic");
        // Every 4xx/5xx of every operation is the one error body.
        for (path, item) in v["paths"].as_object().unwrap() {
            for (m, op) in item.as_object().unwrap() {
                for (status, resp) in op["responses"].as_object().unwrap().iter().filter(|(s, _)| !s.starts_with('2')) {
                    assert_eq!(resp["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody", "{m} {path} {status}");
                }
            }
        }
        // The registry writes describe their 409 and 422; a 422 carries `fields`.
        let put = &v["paths"]["/v1/tenants/{tenant}/registry/taxonomy"]["put"]["responses"];
        assert!(put.get("409").is_some() && put.get("422").is_some(), "{put}");
        assert!(v["components"]["schemas"]["ErrorDetail"]["properties"].get("fields").is_some());
        // The 422's field list and a bulk row's field errors are two schemas (one name each).
        assert_eq!(v["components"]["schemas"]["FieldError"]["properties"]["code"]["$ref"], "#/components/schemas/FieldErrorCode");
        assert_eq!(v["components"]["schemas"]["ErrorField"]["properties"]["code"]["type"], "string");
        // Report rows describe the registry's optional labels.
        let labels = &v["components"]["schemas"]["RegistryLabels"];
        assert!(labels["properties"].get("label").is_some() && labels["properties"].get("registry").is_some(), "{labels}");
        assert!(labels.get("required").is_none(), "{labels}");
        let attribution = &v["paths"]["/v1/tenants/{tenant}/attribution"]["get"]["parameters"];
        let models = &attribution.as_array().unwrap().iter().find(|p| p["name"] == "model").unwrap()["schema"]["enum"];
        assert_eq!(models.as_array().unwrap().len(), Model::ALL.len());
        // Every reference resolves.
        fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match v {
                serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| if k == "$ref" { out.extend(v.as_str()) } else { refs(v, out) }),
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&v, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
            assert!(v["components"]["schemas"].get(name).is_some(), "{r} is not a component");
        }
    }
}

//! The tracking URL built from a destination and validated fields (issue 20,
//! item 3, second half), with the composite key and the dimensions the ingest
//! path's parser (`domain::tracking::dims_from`) will derive from it.
//!
//! Readings made here:
//! - The destination must be an absolute `http`/`https` URL (WHATWG parsing by
//!   the `url` crate, which also normalizes it: lowercase scheme and host,
//!   IDNA, percent-encoding, tab/newline removed); anything else is
//!   `invalid_url` on the field `destination`.
//! - The template wins: every `utm_*`/`cm_*` parameter of the destination's
//!   query (named as the ingest parser names them, after form-decoding) is
//!   removed, whether or not the fields set it, each reported as a
//!   `destination_parameter` warning (`to` is `""` when the fields do not set
//!   it). Ungoverned tracking values would otherwise reach the dimensions.
//!   The destination's other parameters stay, in their order, as the `url`
//!   crate normalized them.
//! - The fields follow, `application/x-www-form-urlencoded` (space → `+`, every
//!   byte but `[A-Za-z0-9*._-]` as `%XX`): `utm_source`, `utm_medium`,
//!   `utm_campaign`, `utm_content`, `utm_term`, `utm_id`, then the `cm_*`
//!   sorted by name. An absent or empty field is not written (the parser skips
//!   empty values). The fragment stays after the query.
//! - The dimensions are derived here from the fields alone, independently of
//!   the parser, following events.md's table (no `journey_id` and no channel:
//!   neither is in a URL); the round-trip property test checks they agree.

use super::taxonomy::{CompiledTaxonomy, IdLookup, UTM_FIELDS};
use super::validate::{validate, ErrorCode, FieldError, ValidFields, Warning, Transform};
use crate::domain::event::{Channel, Dims, TouchInfo};
use crate::domain::tracking::{form_decode, normalize_sequence};
use serde::Serialize;
use std::collections::BTreeMap;
use url::Url;

/// The field name a destination error is reported on.
pub const DESTINATION: &str = "destination";

/// A built tracking URL and what it implies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BuiltUrl {
    pub url: String,
    /// `{journey}/SEQ-{sequence}/{content}/{variant}`, missing parts as `-`.
    pub composite_key: String,
    /// What the ingest parser derives from `url` (channel aside).
    pub dims: Dims,
    pub template_version: u32,
    /// The transforms of the validation, then the destination parameters replaced.
    pub warnings: Vec<Warning>,
}

/// The destination as a parsed absolute `http`/`https` URL, else `invalid_url`.
pub fn check_destination(destination: &str) -> Result<Url, FieldError> {
    let invalid = |why: String| FieldError::new(DESTINATION, ErrorCode::InvalidUrl, format!("destination: {why}"));
    let url = Url::parse(destination).map_err(|e| invalid(format!("{destination:?} is not an absolute URL ({e})")))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(url),
        "http" | "https" => Err(invalid(format!("{destination:?} has no host"))),
        other => Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
}

/// The fields in URL order: the `utm_*` in [`UTM_FIELDS`] order, then the
/// `cm_*` sorted by name; empty values left out.
pub fn url_order(values: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let utm = UTM_FIELDS.iter().filter_map(|n| values.get_key_value(*n));
    let cm = values.iter().filter(|(n, _)| n.starts_with("cm_"));
    utm.chain(cm).filter(|(_, v)| !v.is_empty()).map(|(n, v)| (n.clone(), v.clone())).collect()
}

/// The dimensions of a URL whose only tracking parameters are `params`
/// (events.md, "Tracking parameters", without `journey_id`).
pub fn dims_of(params: Vec<(String, String)>) -> Dims {
    let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    Dims {
        campaign: get("cm_campaign_id").or_else(|| get("utm_campaign")),
        journey: get("cm_journey_id"),
        sequence: get("cm_node_seq").as_deref().and_then(normalize_sequence),
        content: get("utm_content"),
        variant: get("cm_variant"),
        source_medium: get("utm_source").zip(get("utm_medium")).map(|(s, m)| format!("{s} / {m}")),
        params,
    }
}

/// The composite key of `dims`, written as the ingest path writes it.
pub fn composite_key(dims: &Dims) -> String {
    TouchInfo { channel: Channel::Other, interaction_type: String::new(), dims: dims.clone() }.composite_key()
}

fn is_tracking_name(name: &str) -> bool {
    name.starts_with("utm_") || name.starts_with("cm_")
}

/// The tracking URL for `destination` carrying `fields`.
pub fn build_url(destination: &str, fields: &ValidFields) -> Result<BuiltUrl, FieldError> {
    let mut url = check_destination(destination)?;
    let ordered = url_order(fields.values());
    let mut kept: Vec<String> = Vec::new();
    let mut warnings = Vec::new();
    for pair in url.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = form_decode(raw_name);
        if is_tracking_name(&name) {
            let to = fields.values().get(name.as_ref()).cloned().unwrap_or_default();
            let from = form_decode(raw_value).into_owned();
            warnings.push(Warning { field: name.into_owned(), transform: Transform::DestinationParameter, from, to });
        } else {
            kept.push(pair.to_owned());
        }
    }
    if !warnings.is_empty() || !ordered.is_empty() {
        url.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
        if !ordered.is_empty() {
            let mut query = url.query_pairs_mut();
            for (name, value) in &ordered {
                query.append_pair(name, value);
            }
        }
    }
    let dims = dims_of(ordered);
    Ok(BuiltUrl { url: url.into(), composite_key: composite_key(&dims), dims, template_version: fields.version(), warnings })
}

/// Validate `fields` against `template` and build the URL for `destination`:
/// the built URL with every warning, or every error (the destination's first).
pub fn build(
    template: &CompiledTaxonomy,
    destination: &str,
    fields: &BTreeMap<String, String>,
    ids: &dyn IdLookup,
) -> Result<BuiltUrl, Vec<FieldError>> {
    let validation = validate(template, fields, ids);
    let transforms = validation.warnings.clone();
    let destination_error = check_destination(destination).err();
    let valid = match (validation.into_valid(), destination_error) {
        (Ok(valid), None) => valid,
        (Ok(_), Some(e)) => return Err(vec![e]),
        (Err(errors), e) => return Err(e.into_iter().chain(errors).collect()),
    };
    let mut built = build_url(destination, &valid).map_err(|e| vec![e])?;
    built.warnings.splice(0..0, transforms);
    Ok(built)
}

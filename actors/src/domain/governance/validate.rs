//! Validation of a set of field values against a compiled taxonomy template
//! (issue 20, item 3, first half): the auto-transforms, reported as warnings,
//! then the per-field errors.
//!
//! Order, per field, parts of a concatenation before it: the supplied value;
//! `constant` replaces it, or `concat` computes it from the parts' final
//! values; then the case rule; then the space rule. Each transform that changes
//! the value is one [`Warning`] (`from` is `""` for an absent value), unless
//! the supplied value already is the final one (a computed field typed right
//! is no change). The
//! checks run on the final values, every failed rule reported:
//! `required`, `prohibited`, `not_in_list` (pick list, dependent list, or a
//! field the template does not define), `pattern`, `too_long`, `too_short`,
//! `unknown_id`. An empty final value counts as absent (the ingest parser skips
//! empty parameters) and is only checked by `required`.

use super::taxonomy::{CaseRule, CompiledTaxonomy, FieldRule, IdLookup, SpaceRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An auto-transform that changed a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    Constant,
    Concatenation,
    Case,
    Spaces,
    /// A `utm_*`/`cm_*` parameter of the destination URL replaced or removed by
    /// the template's fields (url_builder.rs).
    DestinationParameter,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Warning {
    pub field: String,
    pub transform: Transform,
    pub from: String,
    pub to: String,
}

/// The error codes of issue 20's 422 answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = FieldErrorCode)]
pub enum ErrorCode {
    Required,
    NotInList,
    Pattern,
    TooLong,
    TooShort,
    Prohibited,
    InvalidUrl,
    UnknownId,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Required => "required",
            ErrorCode::NotInList => "not_in_list",
            ErrorCode::Pattern => "pattern",
            ErrorCode::TooLong => "too_long",
            ErrorCode::TooShort => "too_short",
            ErrorCode::Prohibited => "prohibited",
            ErrorCode::InvalidUrl => "invalid_url",
            ErrorCode::UnknownId => "unknown_id",
        }
    }
}

/// One failed rule: `{field, code, message}`, the message naming the field and the rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: ErrorCode,
    pub message: String,
}

impl FieldError {
    pub(super) fn new(field: &str, code: ErrorCode, message: String) -> FieldError {
        FieldError { field: field.to_owned(), code, message }
    }
}

/// The outcome of [`validate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Validation {
    /// The template version validated against.
    pub version: u32,
    /// The final non-empty value of every field, by name.
    pub values: BTreeMap<String, String>,
    pub warnings: Vec<Warning>,
    /// Ordered by field name, then rule.
    pub errors: Vec<FieldError>,
}

/// Field values that passed every rule of template `version`: the only input
/// [`super::url_builder::build_url`] takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidFields {
    pub(super) version: u32,
    pub(super) values: BTreeMap<String, String>,
}

impl ValidFields {
    pub fn version(&self) -> u32 {
        self.version
    }
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }
}

impl Validation {
    /// The values when nothing failed, else the errors.
    pub fn into_valid(self) -> Result<ValidFields, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(ValidFields { version: self.version, values: self.values })
        } else {
            Err(self.errors)
        }
    }
}

/// `s` with the case rule applied.
pub fn apply_case(rule: CaseRule, s: &str) -> String {
    match rule {
        CaseRule::Lower => s.to_lowercase(),
        CaseRule::Upper => s.to_uppercase(),
        CaseRule::Keep => s.to_owned(),
    }
}

/// `s` with the space rule applied to each whitespace char.
pub fn apply_spaces(rule: SpaceRule, s: &str) -> String {
    let with = |r: Option<char>| s.chars().filter_map(|c| if c.is_whitespace() { r } else { Some(c) }).collect();
    match rule {
        SpaceRule::Underscore => with(Some('_')),
        SpaceRule::Hyphen => with(Some('-')),
        SpaceRule::Remove => with(None),
        SpaceRule::Keep => s.to_owned(),
    }
}

/// Validate `fields` (parameter name → supplied value) against `template`;
/// `ids` answers the registry references.
pub fn validate(template: &CompiledTaxonomy, fields: &BTreeMap<String, String>, ids: &dyn IdLookup) -> Validation {
    let t = template.template();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for name in fields.keys().filter(|n| !t.fields.contains_key(n.as_str())) {
        let known: Vec<&str> = t.fields.keys().map(String::as_str).collect();
        let message = format!("{name} is not a field of taxonomy version {} (its fields: {})", t.version, list(&known));
        errors.push(FieldError::new(name, ErrorCode::NotInList, message));
    }
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for name in &template.order {
        let rule = &t.fields[name];
        let supplied = fields.get(name).map_or("", String::as_str);
        let mut steps = Vec::new();
        let mut warn = |transform: Transform, from: &str, to: &str| {
            if from != to {
                steps.push(Warning { field: name.clone(), transform, from: from.to_owned(), to: to.to_owned() });
            }
        };
        let mut v = supplied.to_owned();
        if let Some(c) = &rule.constant {
            warn(Transform::Constant, &v, c);
            v = c.clone();
        } else if let Some(c) = &rule.concat {
            let parts: Vec<&str> = c.fields.iter().filter_map(|p| values.get(p).map(String::as_str)).collect();
            let joined = parts.join(&c.separator);
            warn(Transform::Concatenation, &v, &joined);
            v = joined;
        }
        let cased = apply_case(rule.case, &v);
        warn(Transform::Case, &v, &cased);
        let spaced = apply_spaces(rule.spaces, &cased);
        warn(Transform::Spaces, &cased, &spaced);
        if spaced != supplied {
            warnings.append(&mut steps);
        }
        if !spaced.is_empty() {
            values.insert(name.clone(), spaced);
        }
    }
    for (name, rule) in &t.fields {
        check(template, name, rule, &values, ids, &mut errors);
    }
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    Validation { version: t.version, values, warnings, errors }
}

/// Up to 10 values, quoted, then `…`.
fn list<S: AsRef<str>>(values: &[S]) -> String {
    let mut s: Vec<String> = values.iter().take(10).map(|v| format!("{:?}", v.as_ref())).collect();
    if values.len() > 10 {
        s.push("…".to_owned());
    }
    s.join(", ")
}

fn check(
    template: &CompiledTaxonomy,
    name: &str,
    rule: &FieldRule,
    values: &BTreeMap<String, String>,
    ids: &dyn IdLookup,
    errors: &mut Vec<FieldError>,
) {
    let mut fail = |code: ErrorCode, message: String| errors.push(FieldError::new(name, code, message));
    let Some(v) = values.get(name) else {
        if rule.required {
            fail(ErrorCode::Required, format!("{name} is required by the taxonomy (version {})", template.version()));
        }
        return;
    };
    let lower = v.to_lowercase();
    if rule.prohibited.iter().any(|p| p.to_lowercase() == lower) {
        fail(ErrorCode::Prohibited, format!("{name}: {v:?} is a prohibited value"));
    }
    if let Some(pick) = &rule.pick_list {
        if !pick.contains(v) {
            fail(ErrorCode::NotInList, format!("{name}: {v:?} is not in its pick list ({})", list(pick)));
        }
    }
    if let Some(dep) = &rule.depends_on {
        let parent = values.get(&dep.field);
        if let Some(allowed) = parent.and_then(|p| dep.lists.get(p)) {
            if !allowed.contains(v) {
                let p = parent.map_or("", String::as_str);
                fail(ErrorCode::NotInList, format!("{name}: {v:?} is not allowed when {} is {p:?} (allowed: {})", dep.field, list(allowed)));
            }
        }
    }
    if let Some(re) = template.patterns.get(name) {
        if !re.is_match(v) {
            fail(ErrorCode::Pattern, format!("{name}: {v:?} does not match the pattern {:?}", rule.pattern.as_deref().unwrap_or("")));
        }
    }
    let chars = v.chars().count();
    if let Some(max) = rule.max_length.filter(|m| chars > *m) {
        fail(ErrorCode::TooLong, format!("{name}: {chars} chars, above max_length {max}"));
    }
    if let Some(min) = rule.min_length.filter(|m| chars < *m) {
        fail(ErrorCode::TooShort, format!("{name}: {chars} chars, below min_length {min}"));
    }
    if let Some(kind) = rule.registry {
        if !ids.is_live(kind, v) {
            fail(ErrorCode::UnknownId, format!("{name}: {v:?} is not a live {} id in the registry", kind.as_str()));
        }
    }
}

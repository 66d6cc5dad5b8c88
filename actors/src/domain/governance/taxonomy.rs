//! Taxonomy templates (issue 20, item 2): the serde body of
//! `PUT /v1/tenants/{t}/registry/taxonomy` and its compiled, checked form.
//!
//! Readings made here (the rules are applied by `validate.rs`):
//! - A template names the fields a tracking URL may carry: `utm_source`,
//!   `utm_medium`, `utm_campaign`, `utm_content`, `utm_term`, `utm_id` and any
//!   `cm_` + `[a-z0-9_]+`. A field not in the template may not be set.
//! - Lengths count Unicode scalar values (chars), not UTF-8 bytes, of the value
//!   after its transforms.
//! - A `pattern` must match the whole value (it is compiled as `^(?:pattern)$`),
//!   with the `regex` crate's syntax and a compiled-size bound of
//!   [`PATTERN_SIZE_LIMIT`] bytes (the patterns are tenant input).
//! - A dependent list (`depends_on`) names another field; when that field's
//!   final value has an entry in `lists`, this field's value must be in it; when
//!   it has none (or is absent), only `pick_list` applies.
//! - `prohibited` compares case-insensitively (Unicode lowercase); pick lists
//!   compare exactly, after the transforms.
//! - `version` is the template's version: the first is 1 and every change is
//!   the previous version + 1 ([`check_version`]).

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The compiled-size bound of one `pattern` (the regex crate's `size_limit`).
pub const PATTERN_SIZE_LIMIT: usize = 256 * 1024;

/// The six `utm_*` parameters, in the order a built URL writes them.
pub const UTM_FIELDS: [&str; 6] = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "utm_id"];

/// Whether `name` is a parameter a template may define: one of [`UTM_FIELDS`] or
/// `cm_` followed by one or more of `[a-z0-9_]`.
pub fn is_field_name(name: &str) -> bool {
    UTM_FIELDS.contains(&name)
        || name
            .strip_prefix("cm_")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
}

/// A taxonomy template: the body of `PUT .../registry/taxonomy`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    /// 1 for a tenant's first template, then previous + 1.
    pub version: u32,
    /// The rules of each field, keyed by parameter name.
    pub fields: BTreeMap<String, FieldRule>,
}

/// The rules of one field. Every rule is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The value must be present and non-empty (after the transforms).
    #[serde(default)]
    pub required: bool,
    /// The value must be one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick_list: Option<Vec<String>>,
    /// The allowed values depend on another field's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<DependentList>,
    /// A regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Fewest chars allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Most chars allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub case: CaseRule,
    #[serde(default)]
    pub spaces: SpaceRule,
    /// Values refused (compared case-insensitively).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prohibited: Vec<String>,
    /// The value is always this (a supplied value is replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<String>,
    /// The value is the join of other fields' final values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concat: Option<Concat>,
    /// The value must be a live registry id of this type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<IdType>,
}

/// Allowed values of a field keyed by another field's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DependentList {
    /// The field whose final value selects the list.
    pub field: String,
    /// That field's value → the values allowed here.
    pub lists: BTreeMap<String, Vec<String>>,
}

/// A field computed from others: their final values (absent or empty ones
/// left out) joined with `separator`; absent when every part is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Concat {
    pub fields: Vec<String>,
    #[serde(default)]
    pub separator: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseRule {
    Lower,
    Upper,
    #[default]
    Keep,
}

/// What happens to each whitespace char (`char::is_whitespace`) of a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpaceRule {
    /// Each becomes `_`.
    Underscore,
    /// Each becomes `-`.
    Hyphen,
    /// Each is removed.
    Remove,
    #[default]
    Keep,
}

/// The id types of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    Campaign,
    Content,
    Journey,
    Variant,
}

impl IdType {
    pub fn as_str(self) -> &'static str {
        match self {
            IdType::Campaign => "campaign",
            IdType::Content => "content",
            IdType::Journey => "journey",
            IdType::Variant => "variant",
        }
    }
}

/// Whether an id is live in the tenant's registry: supplied by the caller so
/// the validation stays pure. Any `Fn(IdType, &str) -> bool` is one.
pub trait IdLookup {
    fn is_live(&self, kind: IdType, id: &str) -> bool;
}

impl<F: Fn(IdType, &str) -> bool> IdLookup for F {
    fn is_live(&self, kind: IdType, id: &str) -> bool {
        self(kind, id)
    }
}

/// A template that cannot be used; each names the field (`fields.<name>`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("fields.{field}: not a tracking parameter (utm_source, utm_medium, utm_campaign, utm_content, utm_term, utm_id or cm_[a-z0-9_]+)")]
    NotAParameter { field: String },
    #[error("fields.{field}.pattern: {reason}")]
    BadPattern { field: String, reason: String },
    #[error("fields.{field}.{rule}: refers to {referenced:?}, which is not a field of the template")]
    UnknownField { field: String, rule: &'static str, referenced: String },
    #[error("fields.{field}.concat: concatenation cycle {}", cycle.join(" -> "))]
    ConcatCycle { field: String, cycle: Vec<String> },
    #[error("fields.{field}: {reason}")]
    Conflict { field: String, reason: String },
    #[error("version: {got} does not follow the current version ({expected} expected)")]
    Version { got: u32, expected: u32 },
}

impl TemplateError {
    /// The offending path, `fields.<name>` or `version`.
    pub fn field(&self) -> String {
        match self {
            TemplateError::NotAParameter { field }
            | TemplateError::BadPattern { field, .. }
            | TemplateError::UnknownField { field, .. }
            | TemplateError::ConcatCycle { field, .. }
            | TemplateError::Conflict { field, .. } => format!("fields.{field}"),
            TemplateError::Version { .. } => "version".to_owned(),
        }
    }
}

/// A new template's version must be the current one + 1 (1 when there is none).
pub fn check_version(current: Option<u32>, new: u32) -> Result<(), TemplateError> {
    let expected = current.map_or(1, |c| c.saturating_add(1));
    if new == expected {
        Ok(())
    } else {
        Err(TemplateError::Version { got: new, expected })
    }
}

/// A checked template: patterns compiled and the fields in an order where each
/// concatenation comes after its parts.
#[derive(Clone, Debug)]
pub struct CompiledTaxonomy {
    pub(super) template: Taxonomy,
    pub(super) patterns: BTreeMap<String, Regex>,
    /// Every field, parts before the concatenations that use them.
    pub(super) order: Vec<String>,
}

impl CompiledTaxonomy {
    pub fn version(&self) -> u32 {
        self.template.version
    }
    pub fn template(&self) -> &Taxonomy {
        &self.template
    }
}

impl Taxonomy {
    /// Check and compile the template; every problem found, each naming its field.
    pub fn compile(&self) -> Result<CompiledTaxonomy, Vec<TemplateError>> {
        let mut errors = Vec::new();
        let mut patterns = BTreeMap::new();
        for (name, rule) in &self.fields {
            check_rule(self, name, rule, &mut errors);
            if let Some(p) = &rule.pattern {
                match RegexBuilder::new(&format!("^(?:{p})$")).size_limit(PATTERN_SIZE_LIMIT).build() {
                    Ok(re) => drop(patterns.insert(name.clone(), re)),
                    Err(e) => errors.push(TemplateError::BadPattern { field: name.clone(), reason: e.to_string() }),
                }
            }
        }
        let order = concat_order(self, &mut errors);
        if errors.is_empty() {
            Ok(CompiledTaxonomy { template: self.clone(), patterns, order })
        } else {
            Err(errors)
        }
    }
}

fn check_rule(t: &Taxonomy, name: &str, rule: &FieldRule, errors: &mut Vec<TemplateError>) {
    let field = || name.to_owned();
    let conflict = |reason: &str| TemplateError::Conflict { field: name.to_owned(), reason: reason.to_owned() };
    if !is_field_name(name) {
        errors.push(TemplateError::NotAParameter { field: field() });
    }
    if let (Some(min), Some(max)) = (rule.min_length, rule.max_length) {
        if min > max {
            errors.push(conflict(&format!("min_length {min} is above max_length {max}")));
        }
    }
    if rule.constant.is_some() && rule.concat.is_some() {
        errors.push(conflict("constant and concat are exclusive"));
    }
    if rule.pick_list.as_ref().is_some_and(Vec::is_empty) {
        errors.push(conflict("pick_list is empty: no value could be allowed"));
    }
    if let Some(dep) = &rule.depends_on {
        if dep.field == name {
            errors.push(conflict("depends_on names the field itself"));
        } else if !t.fields.contains_key(&dep.field) {
            errors.push(TemplateError::UnknownField { field: field(), rule: "depends_on", referenced: dep.field.clone() });
        }
    }
    if let Some(c) = &rule.concat {
        if c.fields.is_empty() {
            errors.push(conflict("concat lists no fields"));
        }
        for part in c.fields.iter().filter(|p| !t.fields.contains_key(p.as_str())) {
            errors.push(TemplateError::UnknownField { field: field(), rule: "concat", referenced: part.clone() });
        }
    }
}

/// Every field, each concatenation after its parts (a depth-first topological
/// order); a cycle is reported once, on the field where it was found.
fn concat_order(t: &Taxonomy, errors: &mut Vec<TemplateError>) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit<'a>(
        t: &'a Taxonomy,
        name: &'a str,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
        order: &mut Vec<String>,
        cycles: &mut BTreeSet<Vec<String>>,
    ) {
        match marks.get(name) {
            Some(Mark::Done) => return,
            Some(Mark::Active) => {
                let start = path.iter().position(|p| *p == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(name.to_owned());
                cycles.insert(cycle);
                return;
            }
            None => {}
        }
        marks.insert(name, Mark::Active);
        path.push(name);
        let parts = t.fields.get(name).and_then(|r| r.concat.as_ref()).map_or(&[][..], |c| &c.fields[..]);
        for part in parts.iter().filter(|p| t.fields.contains_key(p.as_str())) {
            visit(t, part, marks, path, order, cycles);
        }
        path.pop();
        marks.insert(name, Mark::Done);
        order.push(name.to_owned());
    }
    let mut marks = BTreeMap::new();
    let mut order = Vec::with_capacity(t.fields.len());
    let mut cycles = BTreeSet::new();
    for name in t.fields.keys() {
        visit(t, name, &mut marks, &mut Vec::new(), &mut order, &mut cycles);
    }
    for cycle in cycles {
        errors.push(TemplateError::ConcatCycle { field: cycle[0].clone(), cycle });
    }
    order
}

//! The ID registry's pure rules (issue 20, item 1): id patterns and their
//! placeholders, brands and years, statuses, attributes and their merge patch,
//! and the `registry_command` event body that carries every registry write
//! through the tenant's partition (docs/registry.md). No I/O: the apply path
//! (`state::registry`) and the HTTP handlers call into this.
//!
//! Readings made here:
//! - A pattern is literal text (`[A-Za-z0-9_-]`) with the placeholders
//!   `{BRAND}`, `{YYYY}` and one sequence `{N…}` (1 to 9 `N`s: the sequence,
//!   zero-padded to that width, wider when it outgrows it). The sequence
//!   counts per (type, brand, year) — brand and year only when the pattern
//!   holds them, so `CNT-{YYYY}-{NNNN}` counts per (content, year) and every
//!   id it yields is unique.
//! - A brand is 1 to 16 of `[A-Za-z0-9]`, stored uppercase; a year is 1970..=9999.
//! - Statuses: `draft` (default), `approved`, `live`, `retired`; any change
//!   between them is allowed. A taxonomy registry reference accepts only `live` ids.
//! - Attributes are a JSON object of at most [`MAX_ATTRIBUTES`] keys and
//!   [`MAX_ATTRIBUTES_BYTES`] bytes; `title`, when present, is a string of at
//!   most 256 chars; `status` is taken out of them into the status. A patch is a
//!   JSON merge patch of one level: a `null` removes the key (carried in the
//!   command as a list of names: the event's canonical text drops nulls).

use super::taxonomy::{IdType, Taxonomy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most attribute keys of one id.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most bytes of one id's attributes, as JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 8192;
/// Longest pattern.
const MAX_PATTERN: usize = 64;

/// The default pattern of each type.
pub fn default_pattern(kind: IdType) -> &'static str {
    match kind {
        IdType::Campaign => "CMP-{BRAND}-{YYYY}-{NNN}",
        IdType::Content => "CNT-{YYYY}-{NNNN}",
        IdType::Journey => "CJ-{BRAND}-{YYYY}-{NNN}",
        IdType::Variant => "VAR-{YYYY}-{NNNN}",
    }
}

/// The id types, in order.
pub const ID_TYPES: [IdType; 4] = [IdType::Campaign, IdType::Content, IdType::Journey, IdType::Variant];

/// `s` as an id type.
pub fn parse_type(s: &str) -> Option<IdType> {
    ID_TYPES.into_iter().find(|t| t.as_str() == s)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Draft,
    Approved,
    Live,
    Retired,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Draft, Status::Approved, Status::Live, Status::Retired];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Approved => "approved",
            Status::Live => "live",
            Status::Retired => "retired",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Brand,
    Year,
    Seq(usize),
}

/// A checked id pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPattern {
    parts: Vec<Part>,
}

impl IdPattern {
    /// The pattern of `text`, or why it is not one.
    pub fn parse(text: &str) -> Result<IdPattern, String> {
        if text.is_empty() || text.len() > MAX_PATTERN {
            return Err(format!("{text:?}: must be 1..={MAX_PATTERN} bytes"));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let end = after.find('}').ok_or_else(|| format!("{text:?}: an unclosed `{{`"))?;
                let name = &after[..end];
                parts.push(match name {
                    "BRAND" => Part::Brand,
                    "YYYY" => Part::Year,
                    n if !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b == b'N') => Part::Seq(n.len()),
                    other => return Err(format!("{text:?}: unknown placeholder {{{other}}} (one of {{BRAND}}, {{YYYY}}, {{N…}})")),
                });
                rest = &after[end + 1..];
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let lit = &rest[..end];
                if let Some(c) = lit.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
                    return Err(format!("{text:?}: {c:?} is not allowed outside placeholders ([A-Za-z0-9_-])"));
                }
                parts.push(Part::Lit(lit.to_owned()));
                rest = &rest[end..];
            }
        }
        let seqs = parts.iter().filter(|p| matches!(p, Part::Seq(_))).count();
        if seqs != 1 {
            return Err(format!("{text:?}: needs exactly one sequence placeholder {{N…}}, has {seqs}"));
        }
        for (i, p) in parts.iter().enumerate() {
            if matches!(p, Part::Brand | Part::Year) && parts[..i].contains(p) {
                return Err(format!("{text:?}: a placeholder appears twice"));
            }
        }
        Ok(IdPattern { parts })
    }

    pub fn has_brand(&self) -> bool {
        self.parts.contains(&Part::Brand)
    }

    pub fn has_year(&self) -> bool {
        self.parts.contains(&Part::Year)
    }

    /// The id of sequence number `n`.
    pub fn format(&self, brand: Option<&str>, year: u16, n: u64) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Brand => out.push_str(brand.unwrap_or("")),
                Part::Year => out.push_str(&format!("{year:04}")),
                Part::Seq(w) => out.push_str(&format!("{n:0w$}")),
            }
        }
        out
    }

    /// What the sequence counts per: the brand and year the pattern holds.
    pub fn scope<'a>(&self, brand: Option<&'a str>, year: u16) -> (Option<&'a str>, Option<u16>) {
        (brand.filter(|_| self.has_brand()), self.has_year().then_some(year))
    }
}

/// `brand` checked and uppercased.
pub fn normalize_brand(brand: &str) -> Result<String, String> {
    if brand.is_empty() || brand.len() > 16 || !brand.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("{brand:?} is not 1 to 16 of [A-Za-z0-9]"));
    }
    Ok(brand.to_ascii_uppercase())
}

/// Whether `year` may appear in an id.
pub fn valid_year(year: i64) -> bool {
    (1970..=9999).contains(&year)
}

/// An id's attributes: a JSON object.
pub type Attributes = Map<String, Value>;
/// A bad field: its path (`attributes.title`) and what is wrong.
pub type BadField = (String, String);

/// Attributes checked, with their `status` taken out (`None`: not given).
pub fn split_attributes(mut attributes: Attributes) -> Result<(Attributes, Option<Status>), BadField> {
    let status = match attributes.remove("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Status::parse(&s).ok_or_else(|| ("attributes.status".to_owned(), format!("{s:?} is not one of draft, approved, live, retired")))?),
        Some(_) => return Err(("attributes.status".into(), "must be a string: draft, approved, live or retired".into())),
    };
    check_attributes(&attributes)?;
    Ok((attributes, status))
}

/// The bounds of attributes (with nulls allowed: a patch's removals).
fn check_attributes(attributes: &Attributes) -> Result<(), BadField> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(("attributes".into(), format!("more than {MAX_ATTRIBUTES} keys")));
    }
    if let Some(k) = attributes.keys().find(|k| k.is_empty() || k.len() > 64) {
        return Err(("attributes".into(), format!("key {k:?} must be 1..=64 bytes")));
    }
    match attributes.get("title") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.chars().count() <= 256 => {}
        Some(_) => return Err(("attributes.title".into(), "must be a string of at most 256 chars".into())),
    }
    let bytes = serde_json::to_vec(attributes).map_or(usize::MAX, |b| b.len());
    if bytes > MAX_ATTRIBUTES_BYTES {
        return Err(("attributes".into(), format!("{bytes} bytes as JSON, above {MAX_ATTRIBUTES_BYTES}")));
    }
    Ok(())
}

/// A merge patch split into the keys it sets and those it removes (`null`):
/// the event text leaves null members out, so removals travel as names.
pub fn split_patch(patch: Attributes) -> (Attributes, Vec<String>) {
    let (mut set, mut remove) = (Attributes::new(), Vec::new());
    for (k, v) in patch {
        if v.is_null() {
            remove.push(k);
        } else {
            set.insert(k, v);
        }
    }
    (set, remove)
}

/// `current` with `set` merged in and `remove` taken out; the result checked
/// again, so a patch cannot grow attributes past their bounds.
pub fn merge_patch(current: &Attributes, set: &Attributes, remove: &[String]) -> Result<Attributes, BadField> {
    let mut out = current.clone();
    for k in remove {
        out.remove(k);
    }
    for (k, v) in set {
        out.insert(k.clone(), v.clone());
    }
    check_attributes(&out)?;
    Ok(out)
}

/// One id to mint, as the HTTP handler resolved it (pattern included, so
/// replaying the command gives the same id whatever the node's config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintSpec {
    #[serde(rename = "type")]
    pub kind: IdType,
    pub brand: Option<String>,
    pub year: u16,
    pub pattern: String,
    pub status: Status,
    pub attributes: Map<String, Value>,
    /// A hash of the request, so a reused `Idempotency-Key` with another body is told apart.
    pub request_hash: String,
}

/// A built URL kept for the vendor export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlRecord {
    pub url: String,
    pub destination: String,
    pub composite_key: String,
    pub template_version: u32,
    pub vendor: Option<String>,
    /// What the ingest parser derives from `url` (channel aside).
    pub dims: crate::domain::Dims,
}

/// The body of a `registry_command` event (docs/registry.md): one registry
/// write, applied by the tenant's partition owner in partition order. Bounds
/// travel with the command so its effect does not depend on the applying
/// node's config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RegistryCommand {
    /// Mint these ids, in order; the i-th is recorded under request key
    /// `<event_id>#<i>`.
    Mint { mints: Vec<MintSpec>, max_ids: u64 },
    /// Set the keys of `set` in id `id`'s attributes, remove those of
    /// `remove`, and set its status when given.
    Update {
        id: String,
        status: Option<Status>,
        #[serde(default)]
        set: Map<String, Value>,
        #[serde(default)]
        remove: Vec<String>,
    },
    /// Store a new taxonomy version (it must be the current + 1).
    Taxonomy { template: Taxonomy, max_versions: u32 },
    /// Keep built URLs for the export (one record per URL: the latest wins).
    StoreUrls { urls: Vec<UrlRecord>, max_urls: u64 },
}

/// The request key of the `i`-th mint of command `event_id`.
pub fn request_key(event_id: &str, i: usize) -> String {
    format!("{event_id}#{i}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn default_patterns_parse_and_format() {
        let p = IdPattern::parse(default_pattern(IdType::Campaign)).unwrap();
        assert!(p.has_brand() && p.has_year());
        assert_eq!(p.format(Some("EYL"), 2024, 1), "CMP-EYL-2024-001");
        assert_eq!(p.format(Some("EYL"), 2024, 1234), "CMP-EYL-2024-1234", "wider once it outgrows the width");
        let c = IdPattern::parse(default_pattern(IdType::Content)).unwrap();
        assert_eq!(c.format(None, 2024, 30), "CNT-2024-0030");
        assert_eq!(c.scope(Some("EYL"), 2024), (None, Some(2024)), "no brand in the pattern, no brand in the scope");
        assert_eq!(IdPattern::parse(default_pattern(IdType::Journey)).unwrap().format(Some("X1"), 2026, 7), "CJ-X1-2026-007");
    }

    #[test]
    fn bad_patterns_say_why() {
        for (p, why) in [("", "1..="), ("CMP-{YYYY}", "exactly one sequence"), ("A{NNN}{NN}", "exactly one"), ("A {NNN}", "not allowed"),
                         ("{X}{NNN}", "unknown placeholder"), ("{NNN", "unclosed"), ("{YYYY}{YYYY}{N}", "twice"), ("{NNNNNNNNNN}", "unknown")] {
            let e = IdPattern::parse(p).unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
    }

    #[test]
    fn attributes_take_status_out_and_merge() {
        let a = json!({"title": "Eylea banner", "status": "live", "audience": "hcp"}).as_object().cloned().unwrap();
        let (rest, status) = split_attributes(a).unwrap();
        assert_eq!(status, Some(Status::Live));
        assert!(!rest.contains_key("status"));
        let patch = json!({"audience": null, "mlr_case_id": "MLR-1"}).as_object().cloned().unwrap();
        let (set, remove) = split_patch(patch);
        assert_eq!(remove, vec!["audience".to_string()]);
        let merged = merge_patch(&rest, &set, &remove).unwrap();
        assert_eq!(Value::Object(merged), json!({"title": "Eylea banner", "mlr_case_id": "MLR-1"}));
        let bad = json!({"status": "gone"}).as_object().cloned().unwrap();
        assert_eq!(split_attributes(bad).unwrap_err().0, "attributes.status");
        let long = json!({"title": "x".repeat(257)}).as_object().cloned().unwrap();
        assert_eq!(split_attributes(long).unwrap_err().0, "attributes.title");
        let big = json!({"blob": "x".repeat(MAX_ATTRIBUTES_BYTES)}).as_object().cloned().unwrap();
        assert_eq!(merge_patch(&Map::new(), &big, &[]).unwrap_err().0, "attributes");
    }

    #[test]
    fn commands_round_trip_as_json() {
        let c = RegistryCommand::Update { id: "CMP-EYL-2024-001".into(), status: Some(Status::Retired), set: Map::new(), remove: vec!["audience".into()] };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<RegistryCommand>(&text).unwrap(), c);
    }

    proptest! {
        /// Distinct (brand, year, n) in one scope give distinct ids, each
        /// readable back: the sequence is the digits where `{N…}` stands.
        #[test]
        fn ids_are_unique_per_scope(brand in "[A-Z0-9]{1,16}", year in 1970u16..=9999, a in 1u64..100_000, b in 1u64..100_000) {
            for kind in ID_TYPES {
                let p = IdPattern::parse(default_pattern(kind)).unwrap();
                let (x, y) = (p.format(Some(&brand), year, a), p.format(Some(&brand), year, b));
                prop_assert_eq!(x == y, a == b);
                let digits: String = x.chars().rev().take_while(char::is_ascii_digit).collect::<Vec<_>>().into_iter().rev().collect();
                prop_assert_eq!(digits.parse::<u64>().unwrap(), a);
            }
        }
    }
}

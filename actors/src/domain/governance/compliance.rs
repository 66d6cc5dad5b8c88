//! Compliance of live traffic (issue 20, item 5), the pure part: the verdict
//! on one touchpoint's tracking parameters, given the tenant's current
//! taxonomy and the registry (both supplied by the caller).
//!
//! Readings made here:
//! - A touchpoint without any `utm_*`/`cm_*` parameter is `untracked`, not judged.
//! - `unknown_id`: one of `cm_campaign_id`, `utm_content`, `cm_journey_id`
//!   is present and is no registry id of its type (any status); it wins over
//!   `off_taxonomy`.
//! - `off_taxonomy`: the parameters break the taxonomy — a failed rule, or a
//!   value an auto-transform would have changed (live traffic is not
//!   transformed: `Google` where the rule says lower case is off-taxonomy).
//!   Without a taxonomy nothing is off-taxonomy.
//! - The offending values are those of the fields named by the failures.

use super::taxonomy::{CompiledTaxonomy, IdLookup, IdType};
use super::validate::validate;
use std::collections::BTreeMap;

/// The parameters checked against the registry, with their id type.
pub const ID_FIELDS: [(&str, IdType); 3] = [("cm_campaign_id", IdType::Campaign), ("utm_content", IdType::Content), ("cm_journey_id", IdType::Journey)];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Untracked,
    Compliant,
    UnknownId,
    OffTaxonomy,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Untracked => "untracked",
            Verdict::Compliant => "compliant",
            Verdict::UnknownId => "unknown_id",
            Verdict::OffTaxonomy => "off_taxonomy",
        }
    }
}

/// A verdict and the (field, value) pairs that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub offending: Vec<(String, String)>,
}

/// The verdict on a touchpoint's `params` (first occurrence of each name, in
/// URL order, as the ingest parser keeps them). `exists` answers whether an
/// id of a type is in the registry; `live` whether it is a live one (the
/// taxonomy's registry references).
pub fn classify(template: Option<&CompiledTaxonomy>, params: &[(String, String)], exists: &dyn Fn(IdType, &str) -> bool, live: &dyn IdLookup) -> Finding {
    if params.is_empty() {
        return Finding { verdict: Verdict::Untracked, offending: Vec::new() };
    }
    let values: BTreeMap<String, String> = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let unknown: Vec<(String, String)> = ID_FIELDS
        .iter()
        .filter_map(|(f, kind)| values.get(*f).filter(|v| !exists(*kind, v)).map(|v| (f.to_string(), v.clone())))
        .collect();
    if !unknown.is_empty() {
        return Finding { verdict: Verdict::UnknownId, offending: unknown };
    }
    let Some(t) = template else { return Finding { verdict: Verdict::Compliant, offending: Vec::new() } };
    let v = validate(t, &values, live);
    let mut fields: Vec<&str> = v.errors.iter().map(|e| e.field.as_str()).chain(v.warnings.iter().map(|w| w.field.as_str())).collect();
    fields.sort_unstable();
    fields.dedup();
    if fields.is_empty() {
        return Finding { verdict: Verdict::Compliant, offending: Vec::new() };
    }
    let offending = fields.into_iter().map(|f| (f.to_owned(), values.get(f).cloned().unwrap_or_default())).collect();
    Finding { verdict: Verdict::OffTaxonomy, offending }
}

#[cfg(test)]
mod tests {
    use super::super::validate_tests::{live, template};
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn exists(kind: IdType, id: &str) -> bool {
        live(kind, id) || (kind == IdType::Content && id == "CNT-2024-0099")
    }

    #[test]
    fn verdicts_on_a_hand_made_template() {
        let t = template();
        let good = p(&[("utm_source", "google"), ("utm_medium", "cpc"), ("utm_campaign", "eyl_cmp-eyl-2024-001"), ("utm_content", "CNT-2024-0030"), ("utm_id", "tl"), ("cm_brand", "EYL"), ("cm_campaign_id", "CMP-EYL-2024-001")]);
        let c = |params: &[(String, String)]| classify(Some(&t), params, &exists, &live);
        assert_eq!(c(&good).verdict, Verdict::Compliant, "{:?}", c(&good));
        assert_eq!(c(&[]).verdict, Verdict::Untracked);
        let mut unknown = good.clone();
        unknown[3].1 = "CNT-1999-0001".into();
        assert_eq!(c(&unknown), Finding { verdict: Verdict::UnknownId, offending: p(&[("utm_content", "CNT-1999-0001")]) });
        let mut cased = good.clone();
        cased[0].1 = "Google".into();
        assert_eq!(c(&cased), Finding { verdict: Verdict::OffTaxonomy, offending: p(&[("utm_source", "Google")]) }, "a value a transform would change");
        let mut draft = good.clone();
        draft[3].1 = "CNT-2024-0099".into();
        assert_eq!(c(&draft).verdict, Verdict::OffTaxonomy, "known but not live: a registry reference fails");
        assert_eq!(classify(None, &cased, &exists, &live).verdict, Verdict::Compliant, "no taxonomy, nothing off it");
    }
}

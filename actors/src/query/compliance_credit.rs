//! The attributed-credit side of `GET .../registry/compliance` (issue 20,
//! item 5), the pure part: how much of the conversions' credit under a
//! rule-based model came through compliant, unknown-id and off-taxonomy
//! touchpoints, in total and per source / medium and campaign.
//!
//! It is the attribution report itself (`attribution::rule_report`, the same
//! conversions, lookback paths, consent, horizon and model) with each
//! touchpoint keyed by what it is judged rather than by a grouping: the
//! caller loads the paths with each touchpoint's key being an index into a
//! table of [`TouchClass`]es, and each breakdown re-keys the paths and runs
//! the report once. So a conversion's credit splits over verdicts exactly as
//! it splits over keys in the attribution report; under `participation`
//! each distinct verdict (or verdict and source / medium, or verdict and
//! campaign) of a path gets 1.

use super::attribution::{rule_report, ConversionPath};
use crate::domain::governance::compliance::Verdict;
use crate::domain::models::{Model, ModelParams};
use crate::domain::report::Row;
use crate::domain::DIRECT_KEY;
use serde::Serialize;
use std::collections::BTreeMap;

/// What the compliance report needs of a touchpoint on a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TouchClass {
    pub verdict: Verdict,
    pub source_medium: String,
    pub campaign: String,
}

/// Attributed conversions (`credit`) and their value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Credit {
    pub credit: f64,
    pub value: f64,
}

/// Attributed credit by verdict (of all conversions, or of the touchpoints
/// of one source / medium or campaign).
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CreditByVerdict {
    pub compliant: Credit,
    pub unknown_id: Credit,
    pub off_taxonomy: Credit,
    /// Shares of the judged credit (the three above; null when there is none).
    pub compliant_share: Option<f64>,
    pub unknown_id_share: Option<f64>,
    pub off_taxonomy_share: Option<f64>,
}

impl CreditByVerdict {
    fn set(&mut self, verdict: &str, c: Credit) {
        match verdict {
            "compliant" => self.compliant = c,
            "unknown_id" => self.unknown_id = c,
            "off_taxonomy" => self.off_taxonomy = c,
            _ => {}
        }
    }

    fn with_shares(mut self) -> CreditByVerdict {
        let judged = self.compliant.credit + self.unknown_id.credit + self.off_taxonomy.credit;
        let share = |c: f64| (judged > 0.0).then(|| c / judged);
        (self.compliant_share, self.unknown_id_share, self.off_taxonomy_share) = (share(self.compliant.credit), share(self.unknown_id.credit), share(self.off_taxonomy.credit));
        self
    }
}

/// The credit of a report's conversions, split by what their touchpoints are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreditSplit {
    pub conversions: u64,
    pub conversion_value: f64,
    pub totals: CreditByVerdict,
    /// Through touchpoints without tracking parameters.
    pub untracked: Credit,
    /// Conversions without a touchpoint in their lookback (`(direct)`).
    pub direct: Credit,
    pub by_source_medium: BTreeMap<String, CreditByVerdict>,
    pub by_campaign: BTreeMap<String, CreditByVerdict>,
}

/// Splits the credit of `convs` (their touchpoints' keys are indices into
/// `classes`) under the rule-based `model`.
pub fn split(model: Model, params: &ModelParams, convs: &[ConversionPath], classes: &[TouchClass]) -> CreditSplit {
    debug_assert!(!model.is_data_driven(), "data-driven models credit keys of whole path sets, not touchpoints");
    let class = |key: &str| key.parse::<usize>().ok().and_then(|i| classes.get(i));
    let report = |key_of: &dyn Fn(&TouchClass) -> String| -> (u64, f64, Vec<Row>) {
        let rekeyed: Vec<ConversionPath> = convs
            .iter()
            .map(|c| ConversionPath {
                person: c.person,
                ts: c.ts,
                value: c.value,
                late: c.late,
                touches: c.touches.iter().map(|(ts, ch, k, e)| (*ts, *ch, class(k.as_str()).map_or_else(|| k.clone(), key_of), e.clone())).collect(),
            })
            .collect();
        let r = rule_report(model, params, &rekeyed);
        (r.conversions, r.conversion_value, r.rows)
    };
    let (conversions, conversion_value, rows) = report(&|c| c.verdict.as_str().to_owned());
    let mut out = CreditSplit { conversions, conversion_value, ..CreditSplit::default() };
    for r in rows {
        let c = Credit { credit: r.credit, value: r.value };
        match r.key.as_str() {
            DIRECT_KEY => out.direct = c,
            "untracked" => out.untracked = c,
            v => out.totals.set(v, c),
        }
    }
    out.totals = out.totals.with_shares();
    // The verdict first: it never holds the separator, so the split is unambiguous.
    let by = |part: fn(&TouchClass) -> &str| -> BTreeMap<String, CreditByVerdict> {
        let (_, _, rows) = report(&|c| format!("{}\u{1f}{}", c.verdict.as_str(), part(c)));
        let mut m: BTreeMap<String, CreditByVerdict> = BTreeMap::new();
        for r in rows {
            if let Some((verdict, key)) = r.key.split_once('\u{1f}') {
                m.entry(key.to_owned()).or_default().set(verdict, Credit { credit: r.credit, value: r.value });
            }
        }
        m.into_iter().filter(|(_, c)| *c != CreditByVerdict::default()).map(|(k, c)| (k, c.with_shares())).collect()
    };
    out.by_source_medium = by(|c| c.source_medium.as_str());
    out.by_campaign = by(|c| c.campaign.as_str());
    out
}

#[cfg(test)]
#[path = "compliance_credit_tests.rs"]
mod tests;

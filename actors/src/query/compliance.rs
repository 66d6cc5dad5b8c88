//! `GET .../registry/compliance` (issue 20, item 5): every retained
//! touchpoint of the tenant in `[from, to)` classified against the current
//! taxonomy and the registry (`domain::governance::compliance`), counted per
//! source / medium and per campaign, with the most frequent offending values;
//! and the attributed credit of the conversions in `[from, to)` under a
//! rule-based model split by the verdict of the touchpoints it went through
//! (`compliance_credit`, over the attribution report's own paths). One scan
//! of the tenant's timelines and one attribution pass, so its cost grows with
//! the retained touchpoints and conversions (registry lookups are cached per
//! request).

use super::attribution::{conversions_with_paths_keyed, AttributionQuery};
use super::compliance_credit::{split, Credit, CreditByVerdict, TouchClass};
use super::linking::FinalPersons;
use super::QueryError;
use crate::domain::governance::compliance::{classify, Finding, Verdict};
use crate::domain::governance::{CompiledTaxonomy, IdType};
use crate::domain::models::Model;
use crate::domain::{GroupBy, Ts};
use crate::domain::governance::registry::Status;
use crate::state::registry::{RegistryEntry, RegistryView};
use crate::state::TouchRec;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use touchline_storage::keys::{prefix_end, KeyBuf, Space};
use touchline_storage::{codec, Store};

/// Most offending values listed.
const TOP: usize = 20;

#[derive(Default)]
struct Counts {
    touchpoints: u64,
    compliant: u64,
    unknown_id: u64,
    off_taxonomy: u64,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        self.touchpoints += 1;
        match v {
            Verdict::Compliant => self.compliant += 1,
            Verdict::UnknownId => self.unknown_id += 1,
            Verdict::OffTaxonomy => self.off_taxonomy += 1,
            Verdict::Untracked => {}
        }
    }
    fn answer(&self, key: Option<&str>, credit: Option<&CreditByVerdict>) -> ComplianceCounts {
        let share = |n: u64| (self.touchpoints > 0).then(|| n as f64 / self.touchpoints as f64);
        ComplianceCounts {
            credit: credit.cloned().unwrap_or_default(),
            key: key.map(str::to_owned),
            touchpoints: self.touchpoints,
            compliant: self.compliant,
            unknown_id: self.unknown_id,
            off_taxonomy: self.off_taxonomy,
            compliant_share: share(self.compliant),
            unknown_id_share: share(self.unknown_id),
            off_taxonomy_share: share(self.off_taxonomy),
        }
    }
}

/// Touchpoints by verdict (of all, of one source / medium or one campaign).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ComplianceCounts {
    /// The source / medium or campaign (`(none)` when absent); not in `totals`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub key: Option<String>,
    pub touchpoints: u64,
    pub compliant: u64,
    pub unknown_id: u64,
    pub off_taxonomy: u64,
    /// Shares of `touchpoints` (null when there is none).
    pub compliant_share: Option<f64>,
    pub unknown_id_share: Option<f64>,
    pub off_taxonomy_share: Option<f64>,
    /// The attributed credit that went through these touchpoints, by verdict
    /// (through touchpoints of this source / medium or campaign in a row;
    /// the touchpoints may be before `from`, within a conversion's lookback).
    pub credit: CreditByVerdict,
}

/// The attribution the credit shares are of.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CreditHead {
    #[schema(value_type = String, example = "linear")]
    pub model: &'static str,
    pub lookback_days: i64,
    /// Conversions in `[from, to)` of the report currency (null: none yet).
    pub currency: Option<String>,
    pub conversions: u64,
    pub conversion_value: f64,
    /// Credit through touchpoints without tracking parameters (not judged).
    pub untracked: Credit,
    /// Credit of conversions with no touchpoint in their lookback (`(direct)`).
    pub direct: Credit,
}

/// An offending value and how many touchpoints carried it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Offender {
    pub field: String,
    pub value: String,
    #[schema(value_type = String, pattern = "^(unknown_id|off_taxonomy)$")]
    pub reason: &'static str,
    pub count: u64,
}

/// The answer of `GET .../registry/compliance`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ComplianceAnswer {
    pub tenant: String,
    pub from: String,
    pub to: String,
    /// The current taxonomy's version (null: none, every tracked touchpoint is judged by the registry alone).
    pub taxonomy_version: Option<u32>,
    pub attribution: CreditHead,
    /// Touchpoints without tracking parameters (not judged).
    pub untracked: u64,
    pub totals: ComplianceCounts,
    pub by_source_medium: Vec<ComplianceCounts>,
    pub by_campaign: Vec<ComplianceCounts>,
    pub top_offenders: Vec<Offender>,
}

/// The attribution whose credit the report splits: a rule-based model (the
/// caller refuses the data-driven ones) over `query` (its `group_by` unused),
/// over the final persons of `view` when given.
pub struct CreditQuery<'a> {
    pub model: Model,
    pub query: &'a AttributionQuery,
    pub view: Option<&'a FinalPersons>,
}

/// Verdicts on tracking parameters against one tenant's registry, each id
/// read once.
struct Judge<'a> {
    view: RegistryView<'a>,
    template: Option<&'a CompiledTaxonomy>,
    cache: RefCell<HashMap<String, Option<RegistryEntry>>>,
}

impl Judge<'_> {
    fn entry(&self, id: &str) -> Option<RegistryEntry> {
        if let Some(e) = self.cache.borrow().get(id) {
            return e.clone();
        }
        let e = self.view.entry(id).ok().flatten();
        self.cache.borrow_mut().insert(id.to_owned(), e.clone());
        e
    }

    fn judge(&self, params: &[(String, String)]) -> Finding {
        let exists = |kind: IdType, id: &str| self.entry(id).is_some_and(|e| e.kind == kind);
        let live = |kind: IdType, id: &str| self.entry(id).is_some_and(|e| e.kind == kind && e.status == Status::Live);
        classify(self.template, params, &exists, &live)
    }
}

/// The report of `tenant` over touchpoints at `[from, to)` (`from` already
/// clamped to the retention horizon by the caller) and the credit of `credit`.
pub fn compliance(store: &Store, p: u16, tenant: &str, from: Ts, to: Ts, template: Option<&CompiledTaxonomy>, credit: &CreditQuery<'_>) -> Result<ComplianceAnswer, QueryError> {
    let judge = Judge { view: RegistryView::new(store, p, tenant), template, cache: RefCell::new(HashMap::new()) };
    let (mut total, mut untracked) = (Counts::default(), 0u64);
    let mut by_sm: BTreeMap<String, Counts> = BTreeMap::new();
    let mut by_campaign: BTreeMap<String, Counts> = BTreeMap::new();
    let mut offenders: BTreeMap<(String, String, Verdict), u64> = BTreeMap::new();
    let prefix = KeyBuf::space(p, Space::Touch).tenant(tenant).into_vec();
    let mut err = None;
    store.scan(&prefix, &prefix_end(&prefix), |k, v| {
        let rec: TouchRec = match codec::decode(k, v) {
            Ok(r) => r,
            Err(e) => {
                err = Some(e);
                return false;
            }
        };
        if rec.ts < from || rec.ts >= to {
            return true;
        }
        let f = judge.judge(&rec.touch.dims.params);
        if f.verdict == Verdict::Untracked {
            untracked += 1;
            return true;
        }
        total.add(f.verdict);
        by_sm.entry(rec.touch.key(GroupBy::SourceMedium).to_owned()).or_default().add(f.verdict);
        by_campaign.entry(rec.touch.key(GroupBy::Campaign).to_owned()).or_default().add(f.verdict);
        for (field, value) in f.offending {
            *offenders.entry((field, value, f.verdict)).or_default() += 1;
        }
        true
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    // The attribution's own paths, each touchpoint keyed by its class.
    let mut classes: Vec<TouchClass> = Vec::new();
    let mut index: HashMap<TouchClass, usize> = HashMap::new();
    let mut key = |t: &TouchRec| {
        let class = TouchClass { verdict: judge.judge(&t.touch.dims.params).verdict, source_medium: t.touch.key(GroupBy::SourceMedium).to_owned(), campaign: t.touch.key(GroupBy::Campaign).to_owned() };
        let n = classes.len();
        let i = *index.entry(class.clone()).or_insert_with(|| {
            classes.push(class);
            n
        });
        i.to_string()
    };
    let (currency, convs) = conversions_with_paths_keyed(store, p, tenant, credit.query, credit.view, &mut key)?;
    let c = split(credit.model, &credit.query.params, &convs, &classes);
    let mut top: Vec<((String, String, Verdict), u64)> = offenders.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rows = |mut m: BTreeMap<String, Counts>, credit: &BTreeMap<String, CreditByVerdict>| -> Vec<ComplianceCounts> {
        for k in credit.keys() {
            m.entry(k.clone()).or_default();
        }
        let mut rows: Vec<(String, Counts)> = m.into_iter().collect();
        rows.sort_by(|a, b| b.1.touchpoints.cmp(&a.1.touchpoints).then_with(|| a.0.cmp(&b.0)));
        rows.iter().map(|(k, n)| n.answer(Some(k), credit.get(k))).collect()
    };
    Ok(ComplianceAnswer {
        tenant: tenant.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        taxonomy_version: template.map(CompiledTaxonomy::version),
        attribution: CreditHead {
            model: credit.model.as_str(),
            lookback_days: credit.query.lookback_days,
            currency,
            conversions: c.conversions,
            conversion_value: c.conversion_value,
            untracked: c.untracked,
            direct: c.direct,
        },
        untracked,
        totals: total.answer(None, Some(&c.totals)),
        by_source_medium: rows(by_sm, &c.by_source_medium),
        by_campaign: rows(by_campaign, &c.by_campaign),
        top_offenders: top.into_iter().take(TOP).map(|((field, value, v), count)| Offender { field, value, reason: v.as_str(), count }).collect(),
    })
}

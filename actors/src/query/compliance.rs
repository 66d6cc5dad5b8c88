//! `GET .../registry/compliance` (issue 20, item 5): every retained
//! touchpoint of the tenant in `[from, to)` classified against the current
//! taxonomy and the registry (`domain::governance::compliance`), counted per
//! source / medium and per campaign, with the most frequent offending values.
//! One scan of the tenant's timelines, so its cost grows with the retained
//! touchpoints (registry lookups are cached per request).

use super::QueryError;
use crate::domain::governance::compliance::{classify, Verdict};
use crate::domain::governance::{CompiledTaxonomy, IdType};
use crate::domain::Ts;
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
    fn answer(&self, key: Option<&str>) -> ComplianceCounts {
        let share = |n: u64| (self.touchpoints > 0).then(|| n as f64 / self.touchpoints as f64);
        ComplianceCounts {
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
    /// Touchpoints without tracking parameters (not judged).
    pub untracked: u64,
    pub totals: ComplianceCounts,
    pub by_source_medium: Vec<ComplianceCounts>,
    pub by_campaign: Vec<ComplianceCounts>,
    pub top_offenders: Vec<Offender>,
}

/// The report of `tenant` over touchpoints at `[from, to)` (`from` already
/// clamped to the retention horizon by the caller).
pub fn compliance(store: &Store, p: u16, tenant: &str, from: Ts, to: Ts, template: Option<&CompiledTaxonomy>) -> Result<ComplianceAnswer, QueryError> {
    let view = RegistryView::new(store, p, tenant);
    let cache: RefCell<HashMap<String, Option<RegistryEntry>>> = RefCell::new(HashMap::new());
    let entry = |id: &str| -> Option<RegistryEntry> {
        if let Some(e) = cache.borrow().get(id) {
            return e.clone();
        }
        let e = view.entry(id).ok().flatten();
        cache.borrow_mut().insert(id.to_owned(), e.clone());
        e
    };
    let exists = |kind: IdType, id: &str| entry(id).is_some_and(|e| e.kind == kind);
    let live = |kind: IdType, id: &str| entry(id).is_some_and(|e| e.kind == kind && e.status == crate::domain::governance::registry::Status::Live);
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
        let d = &rec.touch.dims;
        let f = classify(template, &d.params, &exists, &live);
        if f.verdict == Verdict::Untracked {
            untracked += 1;
            return true;
        }
        total.add(f.verdict);
        by_sm.entry(d.source_medium.clone().unwrap_or_else(|| "(none)".into())).or_default().add(f.verdict);
        by_campaign.entry(d.campaign.clone().unwrap_or_else(|| "(none)".into())).or_default().add(f.verdict);
        for (field, value) in f.offending {
            *offenders.entry((field, value, f.verdict)).or_default() += 1;
        }
        true
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    let mut top: Vec<((String, String, Verdict), u64)> = offenders.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let rows = |m: BTreeMap<String, Counts>| -> Vec<ComplianceCounts> {
        let mut rows: Vec<(String, Counts)> = m.into_iter().collect();
        rows.sort_by(|a, b| b.1.touchpoints.cmp(&a.1.touchpoints).then_with(|| a.0.cmp(&b.0)));
        rows.iter().map(|(k, c)| c.answer(Some(k))).collect()
    };
    Ok(ComplianceAnswer {
        tenant: tenant.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        taxonomy_version: template.map(CompiledTaxonomy::version),
        untracked,
        totals: total.answer(None),
        by_source_medium: rows(by_sm),
        by_campaign: rows(by_campaign),
        top_offenders: top.into_iter().take(TOP).map(|((field, value, v), count)| Offender { field, value, reason: v.as_str(), count }).collect(),
    })
}

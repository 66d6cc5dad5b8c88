//! `GET /v1/tenants/{t}/attribution` (and `/compare`): credits per grouping key
//! over the conversions in `[from, to)` in one currency, exactly per
//! attribution.md, computed from the stored timelines (touchpoints and
//! conversions behind the tenant's retention horizon ignored).

use super::consent::ConsentCache;
use super::linking::{members, FinalPersons};
use super::paths::lookback_touches_of;
use super::{tenant_meta, QueryError};
use crate::domain::models::{credit_by_key, Model, ModelParams, PathTouch};
use crate::domain::report::{Accumulator, Row};
use crate::domain::retention::clamp_from;
use crate::domain::{GroupBy, Ts};
use crate::state::{key, ConvIndexRec, TouchRec};
use touchline_storage::Store;

#[derive(Clone, Debug)]
pub struct AttributionQuery {
    pub from: Ts,
    pub to: Ts,
    pub group_by: GroupBy,
    pub lookback_days: i64,
    pub params: ModelParams,
    pub currency: Option<String>,
    /// Retention horizon: touchpoints and conversions before it are ignored.
    pub horizon: Option<Ts>,
}

#[derive(Clone, Debug, Default)]
pub struct AttributionResult {
    pub conversions: u64,
    pub conversion_value: f64,
    pub currency: Option<String>,
    pub rows: Vec<Row>,
}

/// One conversion in range with its path, ready for any model.
pub struct ConversionPath {
    pub person: u64,
    pub ts: Ts,
    pub value: f64,
    pub touches: Vec<(Ts, crate::domain::Channel, String, String)>,
    /// Late at arrival (see [`crate::state::ConvRec::late`]).
    pub late: bool,
}

/// Loads every conversion of the report currency in `[from, to)` with its path.
pub fn conversions_with_paths(store: &Store, p: u16, tenant: &str, q: &AttributionQuery) -> Result<(Option<String>, Vec<ConversionPath>), QueryError> {
    conversions_with_paths_in(store, p, tenant, q, None)
}

/// [`conversions_with_paths`] over the final persons of `view`: a
/// conversion's person is its final person, its path is read from every
/// member's timeline, and its consent is that of all members.
pub fn conversions_with_paths_in(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, view: Option<&FinalPersons>) -> Result<(Option<String>, Vec<ConversionPath>), QueryError> {
    conversions_with_paths_keyed(store, p, tenant, q, view, &mut |t| t.touch.key(q.group_by).to_string())
}

/// [`conversions_with_paths_in`] with each touchpoint's path key given by
/// `key` instead of `q.group_by` (the compliance report keys them by verdict).
pub fn conversions_with_paths_keyed(
    store: &Store,
    p: u16,
    tenant: &str,
    q: &AttributionQuery,
    view: Option<&FinalPersons>,
    key: &mut dyn FnMut(&TouchRec) -> String,
) -> Result<(Option<String>, Vec<ConversionPath>), QueryError> {
    let meta = tenant_meta(store, p, tenant)?.unwrap_or_default();
    let currency = q.currency.clone().or_else(|| meta.default_currency());
    let Some(cur) = currency.clone() else { return Ok((None, Vec::new())) };
    let index = conversions_in_range(store, p, tenant, q, &cur)?;
    let lookback = q.lookback_days.saturating_mul(86_400);
    let mut consent = ConsentCache::new(store, p, tenant, &meta).with_view(view);
    let mut out = Vec::with_capacity(index.len());
    for (ts, mut rec) in index {
        rec.person = view.map_or(rec.person, |v| v.group_of(rec.person));
        if !consent.allows(rec.person, ts)? {
            continue;
        }
        let mut touches_in = lookback_touches_of(store, p, tenant, &members(view, rec.person), ts, lookback, q.horizon)?;
        consent.retain(rec.person, &mut touches_in, |t| t.ts)?;
        let touches = touches_in
            .into_iter()
            .map(|t| (t.ts, t.touch.channel, key(&t), t.event_id))
            .collect();
        out.push(ConversionPath { person: rec.person, ts, value: rec.value, touches, late: rec.late });
    }
    Ok((currency, out))
}

/// The tenant's conversions in currency `cur` in `q`'s range (cut at the
/// retention horizon), from the time index, in (ts, event_id) order.
pub fn conversions_in_range(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, cur: &str) -> Result<Vec<(Ts, ConvIndexRec)>, QueryError> {
    let start = key::conv_by_time_at(p, tenant, clamp_from(q.from, q.horizon));
    let end = key::conv_by_time_at(p, tenant, q.to.max(clamp_from(q.from, q.horizon)));
    let prefix_len = key::conv_by_time_prefix(p, tenant).len();
    let mut index: Vec<(Ts, ConvIndexRec)> = Vec::new();
    store.scan_as::<ConvIndexRec>(&start, &end, |k, rec| {
        if let Some(ts) = crate::state::tenant::ts_in_key(k, prefix_len) {
            if rec.currency == cur {
                index.push((ts, rec));
            }
        }
        true
    })?;
    Ok(index)
}

/// Credits of a rule-based model over prepared conversion paths.
pub fn rule_report(model: Model, params: &ModelParams, convs: &[ConversionPath]) -> AttributionResult {
    let mut acc = Accumulator::new();
    let mut value = crate::domain::report::ExactSum::new();
    for c in convs {
        let path: Vec<PathTouch> = c
            .touches
            .iter()
            .map(|(ts, ch, key, eid)| PathTouch { ts: *ts, channel: *ch, key: key.as_str(), event_id: eid.as_str() })
            .collect();
        for (key, credit) in credit_by_key(model, &path, c.ts, params) {
            acc.add(key, credit, credit * c.value);
        }
        value.add(c.value);
    }
    AttributionResult { conversions: convs.len() as u64, conversion_value: value.value(), currency: None, rows: acc.into_rows() }
}

/// The attribution report of one rule-based model.
pub fn attribution(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery) -> Result<AttributionResult, QueryError> {
    attribution_in(store, p, tenant, model, q, None)
}

/// [`attribution`] over the final persons of `view` (computed afresh, not
/// from the report cache).
pub fn attribution_in(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, view: Option<&FinalPersons>) -> Result<AttributionResult, QueryError> {
    if model == Model::Custom && q.params.custom_weights.is_none() {
        return Err(QueryError::BadRequest { param: "weights", message: "the custom model needs weights=F,M,L".into() });
    }
    let (currency, convs) = conversions_with_paths_in(store, p, tenant, q, view)?;
    if model.is_data_driven() {
        let mut r = super::datadriven::data_driven_report_in(store, p, tenant, model, q, &convs, view)?;
        r.currency = currency;
        return Ok(r);
    }
    let mut r = rule_report(model, &q.params, &convs);
    r.currency = currency;
    Ok(r)
}

//! Paths for the data-driven models (markov, shapley) over a query range, per
//! attribution.md: one path per conversion (its lookback path, repeats kept,
//! ending in `(conversion)`), plus one `(null)` path per person from its
//! touchpoints in range strictly after its last conversion in range (all of them
//! if it did not convert). Empty-path conversions credit `(direct)` with their
//! own value and stay out; the others' values follow the model
//! ([`crate::domain::datadriven`]).
//!
//! The input is gathered per person ([`PersonPaths`]), either for the whole
//! tenant in one pass ([`all_persons`]) or for listed persons
//! ([`super::sweep::persons_parts`]); both
//! give the same parts, which is what lets [`super::paths_cache`] keep the
//! aggregate up to date by recomputing only the persons that changed.

use super::attribution::{conversions_with_paths, AttributionQuery, AttributionResult, ConversionPath};
use super::linking::FinalPersons;
use super::consent::ConsentCache;
use super::QueryError;
use crate::domain::datadriven::{markov_counted, shapley_counted, CountedPath, DataDrivenResult};
use crate::domain::models::Model;
use crate::domain::report::{Accumulator, ExactSum};
use crate::domain::{Channel, Ts, DIRECT_KEY};
use crate::state::TouchRec;
use std::collections::{BTreeMap, HashMap};
use touchline_storage::{codec, keys::KeyBuf, keys::Space, Store};

/// A grouping key on a path: borrowed when it is a channel or `(none)` (no
/// allocation per touchpoint under the default grouping).
pub type PathKey = std::borrow::Cow<'static, str>;

/// One conversion of a person's part: its time, value and lookback path
/// (touchpoint time, channel, grouping key), empty for a `(direct)` conversion.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonConv {
    pub ts: Ts,
    pub value: f64,
    pub touches: Vec<(Ts, Channel, PathKey)>,
}

impl PersonConv {
    /// The path's grouping keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.touches.iter().map(|t| t.2.to_string()).collect()
    }
}

/// One person's part of a report over a query: every model's input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PersonPaths {
    /// The person's conversions in range (report currency, consent applied).
    pub convs: Vec<PersonConv>,
    /// Touchpoint keys in range after the last conversion in range, if any.
    pub null: Option<Vec<PathKey>>,
    /// The earliest time of any touchpoint or conversion in this part: a
    /// retention horizon at or before it leaves the part as it is.
    pub min_ts: Option<Ts>,
}

impl PersonPaths {
    pub fn is_empty(&self) -> bool {
        self.convs.is_empty() && self.null.is_none()
    }

    pub(super) fn saw(&mut self, ts: Ts) {
        self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
    }

    pub(super) fn push_conv(&mut self, ts: Ts, value: f64, touches: Vec<(Ts, Channel, PathKey)>) {
        self.saw(ts);
        if let Some(first) = touches.first() {
            self.saw(first.0);
        }
        self.convs.push(PersonConv { ts, value, touches });
    }
}

/// The report of `model` (markov or shapley) over the tenant's paths.
pub fn data_driven_report(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, convs: &[ConversionPath]) -> Result<AttributionResult, QueryError> {
    data_driven_report_in(store, p, tenant, model, q, convs, None)
}

/// [`data_driven_report`] over the final persons of `view` (`convs` loaded
/// over the same view).
pub fn data_driven_report_in(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, convs: &[ConversionPath], view: Option<&FinalPersons>) -> Result<AttributionResult, QueryError> {
    let persons = all_persons_in(store, p, tenant, q, convs, view)?;
    // Per distinct path: conversions, nulls, the conversions' value.
    let mut paths: HashMap<Vec<String>, (u64, u64, ExactSum)> = HashMap::new();
    let mut totals = Totals::default();
    for pp in persons.values() {
        for c in &pp.convs {
            if c.touches.is_empty() {
                totals.direct += 1;
                totals.direct_value.add(c.value);
            } else {
                let e = paths.entry(c.keys()).or_default();
                e.0 += 1;
                e.2.add(c.value);
            }
            totals.conversions += 1;
            totals.value.add(c.value);
        }
        if let Some(path) = &pp.null {
            paths.entry(path.iter().map(|k| k.to_string()).collect()).or_default().1 += 1;
        }
    }
    let counted: Vec<CountedPath> = paths.iter().map(|(k, (c, n, v))| (k.as_slice(), *c, *n, v.value())).collect();
    Ok(report_of(model, &counted, &totals))
}

/// What a data-driven report counts besides its paths: every conversion and
/// their value, and the conversions with an empty path (for `(direct)`) and
/// their value. Exact sums, so that a cache can retract a person's share.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub conversions: u64,
    pub value: ExactSum,
    pub direct: u64,
    pub direct_value: ExactSum,
}

/// Runs the model on aggregated paths and turns its credits into report rows.
pub fn report_of(model: Model, paths: &[CountedPath], totals: &Totals) -> AttributionResult {
    let result = if model == Model::Markov { markov_counted(paths) } else { shapley_counted(paths) };
    rows_of(&result, totals)
}

/// The report of a model's result: its credits and values (which follow the
/// modelled conversions' own values), and `(direct)` for conversions without
/// a path, with their own value.
pub fn rows_of(result: &DataDrivenResult, totals: &Totals) -> AttributionResult {
    debug_assert!(result.credits.len() == result.values.len() && result.credits.iter().zip(&result.values).all(|(c, v)| c.0 == v.0), "a value per credit");
    let mut acc = Accumulator::new();
    for ((k, credit), (_, value)) in result.credits.iter().zip(&result.values) {
        acc.add(k, *credit, *value);
    }
    if totals.direct > 0 {
        acc.add(DIRECT_KEY, totals.direct as f64, totals.direct_value.value());
    }
    AttributionResult { conversions: totals.conversions, conversion_value: totals.value.value(), currency: None, rows: acc.into_rows() }
}

/// Every person's part, from the query's conversions (as
/// [`conversions_with_paths`] loads them) and one scan of the tenant's touchpoints.
pub fn all_persons(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, convs: &[ConversionPath]) -> Result<BTreeMap<u64, PersonPaths>, QueryError> {
    all_persons_in(store, p, tenant, q, convs, None)
}

/// [`all_persons`] per final person of `view` (`convs` loaded over the same
/// view): a final person's non-converting tail merges its members' touches in
/// (ts, event_id) order.
pub fn all_persons_in(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, convs: &[ConversionPath], view: Option<&FinalPersons>) -> Result<BTreeMap<u64, PersonPaths>, QueryError> {
    let mut out: BTreeMap<u64, PersonPaths> = BTreeMap::new();
    let mut last_conv: HashMap<u64, Ts> = HashMap::new();
    for c in convs {
        let e = last_conv.entry(c.person).or_insert(c.ts);
        if c.ts > *e {
            *e = c.ts;
        }
        let touches = c.touches.iter().map(|t| (t.0, t.1, PathKey::Owned(t.2.clone()))).collect();
        out.entry(c.person).or_default().push_conv(c.ts, c.value, touches);
    }
    // Non-converting tails: every person's touches in [from, to), in key order
    // (person, ts, event_id).
    let prefix = KeyBuf::space(p, Space::Touch).tenant(tenant).into_vec();
    let meta = super::tenant_meta(store, p, tenant)?.unwrap_or_default();
    let mut consent = ConsentCache::new(store, p, tenant, &meta).with_view(view);
    let mut err: Option<QueryError> = None;
    // Tails of final persons with several members, merged after the scan.
    let mut merged: BTreeMap<u64, Vec<(Ts, String, PathKey)>> = BTreeMap::new();
    store.scan_prefix(&prefix, |k, v| {
        let Some(person) = crate::state::tenant::person_in_key(k, prefix.len()) else { return true };
        let person = view.map_or(person, |v| v.group_of(person));
        let Some(ts) = crate::state::tenant::ts_in_key(k, prefix.len() + 8) else { return true };
        if ts < q.from || ts >= q.to || !crate::domain::retention::retained(ts, q.horizon) || last_conv.get(&person).is_some_and(|lc| ts <= *lc) {
            return true;
        }
        match consent.allows_in_scan(person, ts, &mut err) {
            Some(true) => {}
            Some(false) => return true,
            None => return false,
        }
        match codec::decode::<TouchRec>(k, v) {
            Ok(t) => {
                let key = PathKey::Owned(t.touch.key(q.group_by).to_string());
                if view.is_some_and(|v| v.linked.contains_key(&person)) {
                    merged.entry(person).or_default().push((t.ts, t.event_id, key));
                    return true;
                }
                let pp = out.entry(person).or_default();
                pp.saw(t.ts);
                pp.null.get_or_insert_with(Vec::new).push(key);
            }
            Err(e) => {
                err = Some(e.into());
                return false;
            }
        }
        true
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    for (person, mut tail) in merged {
        tail.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let pp = out.entry(person).or_default();
        for (ts, _, key) in tail {
            pp.saw(ts);
            pp.null.get_or_insert_with(Vec::new).push(key);
        }
    }
    Ok(out)
}

/// Loads the query's conversions and every person's part (for callers without a
/// [`super::paths_cache::PathsCache`]).
pub fn all_persons_of_query(store: &Store, p: u16, tenant: &str, q: &AttributionQuery) -> Result<(Option<String>, BTreeMap<u64, PersonPaths>), QueryError> {
    let (currency, convs) = conversions_with_paths(store, p, tenant, q)?;
    let persons = all_persons(store, p, tenant, q, &convs)?;
    Ok((currency, persons))
}

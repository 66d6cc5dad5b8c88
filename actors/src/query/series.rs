//! One model over time (`GET .../attribution/series`): a rule model's credit
//! per key in each bucket of a range, by conversion time, in one pass over the
//! range's conversions. A rule model credits a conversion from its own
//! lookback path alone, so the bucket `[a, b)` of the series equals the
//! attribution report over `[a, b)` (exact sums: the same bits in any order).
//! Data-driven models fit over the whole range's paths (and its `(null)`
//! tails), which a bucket of a larger range does not have: they are refused.

use super::attribution::{conversions_with_paths_in, AttributionQuery, AttributionResult, ConversionPath};
use super::linking::FinalPersons;
use super::QueryError;
use crate::domain::models::{credit_by_key, Model, ModelParams, PathTouch};
use crate::domain::report::{Accumulator, ExactSum};
use crate::domain::Ts;
use touchline_storage::Store;

/// The `[start, end)` buckets of `[from, to)`, each `len_secs` long from
/// `from`, the last one cut at `to`; `Err(n)` when there would be `n > max`.
pub fn bucket_edges(from: Ts, to: Ts, len_secs: i64, max: usize) -> Result<Vec<(Ts, Ts)>, usize> {
    assert!(len_secs > 0, "a bucket is at least one second long");
    let span = (to.as_nanos() - from.as_nanos()).max(0);
    let len = i128::from(len_secs) * 1_000_000_000;
    let n = usize::try_from((span + len - 1) / len).unwrap_or(usize::MAX);
    if n > max {
        return Err(n);
    }
    Ok((0..n as i64).map(|i| (from.plus_secs(i * len_secs), from.plus_secs((i + 1) * len_secs).min(to))).collect())
}

/// Whether `model` can be answered as a series (a rule model).
pub fn check_model(model: Model, params: &ModelParams) -> Result<(), QueryError> {
    if model.is_data_driven() {
        return Err(QueryError::BadRequest { param: "model", message: format!("{} is fitted over the whole range, so it has no per-bucket series; use a rule model", model.as_str()) });
    }
    if model == Model::Custom && params.custom_weights.is_none() {
        return Err(QueryError::BadRequest { param: "weights", message: "the custom model needs weights=F,M,L".into() });
    }
    Ok(())
}

/// Per-bucket sums of one rule model: the credits per key, the conversions
/// and their value.
pub struct Series<'e> {
    model: Model,
    params: ModelParams,
    /// The buckets' starts, ascending, and the end of the last.
    starts: Vec<Ts>,
    end: Ts,
    edges: &'e [(Ts, Ts)],
    accs: Vec<(Accumulator, u64, ExactSum)>,
}

/// A series: each bucket's report, and the totals over all of them.
#[derive(Clone, Debug, Default)]
pub struct SeriesResult {
    pub buckets: Vec<((Ts, Ts), AttributionResult)>,
    pub conversions: u64,
    pub conversion_value: f64,
    /// The report currency (`None`: no conversion yet).
    pub currency: Option<String>,
}

impl SeriesResult {
    /// A series of empty buckets.
    pub fn empty(edges: &[(Ts, Ts)]) -> SeriesResult {
        SeriesResult { buckets: edges.iter().map(|e| (*e, AttributionResult::default())).collect(), ..SeriesResult::default() }
    }
}

impl<'e> Series<'e> {
    pub fn new(model: Model, params: &ModelParams, edges: &'e [(Ts, Ts)]) -> Series<'e> {
        Series {
            model,
            params: *params,
            starts: edges.iter().map(|e| e.0).collect(),
            end: edges.last().map_or(Ts::new(0, 0), |e| e.1),
            edges,
            accs: edges.iter().map(|_| (Accumulator::new(), 0, ExactSum::new())).collect(),
        }
    }

    /// Adds one conversion at `ts` worth `value` with its lookback `path`
    /// (one outside every bucket is skipped).
    pub fn add(&mut self, ts: Ts, value: f64, path: &[PathTouch]) {
        if ts >= self.end {
            return;
        }
        let Some(i) = self.starts.partition_point(|s| *s <= ts).checked_sub(1) else { return };
        let (acc, n, sum) = &mut self.accs[i];
        for (key, credit) in credit_by_key(self.model, path, ts, &self.params) {
            acc.add(key, credit, credit * value);
        }
        *n += 1;
        sum.add(value);
    }

    /// Adds every sum of `other` (the same buckets, another set of conversions).
    pub fn merge(&mut self, other: Series) {
        for (a, b) in self.accs.iter_mut().zip(other.accs) {
            a.0.merge(&b.0);
            a.1 += b.1;
            a.2.merge(&b.2);
        }
    }

    /// Each bucket with its report (rows, conversions, value) and the totals.
    pub fn finish(self, currency: Option<String>) -> SeriesResult {
        let (mut conversions, mut value) = (0, ExactSum::new());
        let buckets = self
            .edges
            .iter()
            .zip(self.accs)
            .map(|(e, (acc, n, sum))| {
                conversions += n;
                value.merge(&sum);
                (*e, AttributionResult { conversions: n, conversion_value: sum.value(), currency: currency.clone(), rows: acc.into_rows() })
            })
            .collect();
        SeriesResult { buckets, conversions, conversion_value: value.value(), currency }
    }
}

/// The series of prepared conversion paths (the uncached path: final persons).
pub fn series_of(model: Model, params: &ModelParams, edges: &[(Ts, Ts)], currency: Option<String>, convs: &[ConversionPath]) -> SeriesResult {
    let mut s = Series::new(model, params, edges);
    for c in convs {
        let path: Vec<PathTouch> = c.touches.iter().map(|(ts, ch, key, eid)| PathTouch { ts: *ts, channel: *ch, key: key.as_str(), event_id: eid.as_str() }).collect();
        s.add(c.ts, c.value, &path);
    }
    s.finish(currency)
}

/// The series over the final persons of `view`, computed afresh (the report
/// cache holds deterministic persons only), like [`super::attribution::attribution_in`].
pub fn series_in(store: &Store, p: u16, tenant: &str, model: Model, q: &AttributionQuery, edges: &[(Ts, Ts)], view: Option<&FinalPersons>) -> Result<SeriesResult, QueryError> {
    check_model(model, &q.params)?;
    let (currency, convs) = conversions_with_paths_in(store, p, tenant, q, view)?;
    Ok(series_of(model, &q.params, edges, currency, &convs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::attribution::rule_report;
    use crate::domain::Channel;
    use proptest::prelude::*;

    #[test]
    fn buckets_tile_the_range_and_are_bounded() {
        let day = 86_400;
        let e = bucket_edges(Ts::new(0, 0), Ts::new(10 * day, 0), 7 * day, 10).unwrap();
        assert_eq!(e, vec![(Ts::new(0, 0), Ts::new(7 * day, 0)), (Ts::new(7 * day, 0), Ts::new(10 * day, 0))]);
        assert_eq!(bucket_edges(Ts::new(0, 0), Ts::new(0, 0), day, 10).unwrap(), vec![]);
        assert_eq!(bucket_edges(Ts::new(0, 0), Ts::new(11 * day, 1), day, 10), Err(12));
        assert_eq!(bucket_edges(Ts::new(0, 0), Ts::new(10 * day, 0), day, 10).unwrap().len(), 10);
    }

    #[test]
    fn data_driven_models_are_refused_naming_model() {
        let e = check_model(Model::Markov, &ModelParams::default()).unwrap_err();
        assert!(matches!(e, QueryError::BadRequest { param: "model", .. }), "{e:?}");
        assert!(matches!(check_model(Model::Custom, &ModelParams::default()), Err(QueryError::BadRequest { param: "weights", .. })));
        check_model(Model::Linear, &ModelParams::default()).unwrap();
    }

    fn conv(ts: i64, value: f64, touches: &[(i64, usize)]) -> ConversionPath {
        let touches = touches.iter().map(|&(t, k)| (Ts::new(t, 0), Channel::ALL[k % 10], format!("k{k}"), format!("e{t}"))).collect();
        ConversionPath { person: 1, ts: Ts::new(ts, 0), value, touches, late: false }
    }

    proptest! {
        /// Each bucket of a series equals the rule report over the
        /// conversions in that bucket alone (what the attribution route
        /// answers for the bucket's range), bit for bit.
        #[test]
        fn each_bucket_is_the_report_of_its_conversions(
            raw in proptest::collection::vec((0i64..1000, 0.0f64..500.0, proptest::collection::vec((0i64..1000, 0usize..6), 0..5)), 0..40),
            len in 1i64..400,
            m in 0usize..5,
        ) {
            let model = [Model::FirstTouch, Model::LastTouch, Model::Linear, Model::PositionBased, Model::TimeDecay][m];
            let params = ModelParams::default();
            let mk = |raw: &[&(i64, f64, Vec<(i64, usize)>)]| -> Vec<ConversionPath> {
                raw.iter().map(|(ts, v, t)| {
                    let mut t: Vec<(i64, usize)> = t.iter().map(|(d, k)| (ts - d.min(ts), *k)).collect();
                    t.sort();
                    conv(*ts, *v, &t)
                }).collect()
            };
            let convs = mk(&raw.iter().collect::<Vec<_>>());
            let edges = bucket_edges(Ts::new(0, 0), Ts::new(1000, 0), len, 10_000).unwrap();
            let got = series_of(model, &params, &edges, None, &convs);
            prop_assert_eq!(got.buckets.len(), edges.len());
            let all = rule_report(model, &params, &convs);
            prop_assert_eq!((got.conversions, got.conversion_value.to_bits()), (all.conversions, all.conversion_value.to_bits()));
            for ((a, b), r) in got.buckets {
                let inside = mk(&raw.iter().filter(|c| c.0 >= a.secs && c.0 < b.secs).collect::<Vec<_>>());
                let want = rule_report(model, &params, &inside);
                prop_assert_eq!(r.rows, want.rows);
                prop_assert_eq!(r.conversions, want.conversions);
                prop_assert_eq!(r.conversion_value.to_bits(), want.conversion_value.to_bits());
            }
        }
    }
}

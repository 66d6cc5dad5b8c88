//! Exact data-driven attribution (attribution.md, "Data-driven models"): Markov
//! removal effects by an absorbing-chain linear solve, and Shapley values over key
//! sets as `marketing-attribution-models` 2.1.1 `run_shapley` computes them.
//!
//! Input is the query's path set, built by the caller: one converted path per
//! conversion, with its value (non-empty: a conversion with an empty path goes
//! to `(direct)` with its own value and stays out of both models) and one
//! `(null)` path per person's trailing non-converting stretch. Output credits are
//! in conversions (they sum to the number of converted paths); output values
//! follow the conversions' own values (they sum to the converted paths' total
//! value): under Markov in proportion to the removal effects, under Shapley per
//! converting key set in proportion to that set's Shapley values.
//!
//! Keys are interned to indices, so a key spelled like a chain state (`(null)`,
//! `(conversion)`, `(start)`) or containing MAM's path separator `" > "` is just a
//! key here. Results list keys in ascending code-point order.

use crate::domain::report::ExactSum;
use std::collections::{BTreeSet, HashMap};

/// One path of the data-driven models: grouping keys in time order (consecutive
/// repeats kept; the Markov chain collapses them), ending in `(conversion)` when
/// `converted`, else in `(null)`. `value` is the conversion's value (ignored for
/// a `(null)` path).
#[derive(Clone, Debug, PartialEq)]
pub struct JourneyPath {
    pub keys: Vec<String>,
    pub converted: bool,
    pub value: f64,
}

/// One distinct path with how often it ended in `(conversion)` and in `(null)`,
/// and the total value of the conversions it ended in.
/// [`markov_counted`] / [`shapley_counted`] over such counts equal [`markov`] /
/// [`shapley`] over the expanded list (both models only count paths and sum
/// their values; the sums are exact, so the grouping does not matter as long as
/// each path's total is exactly rounded), for callers that keep paths
/// aggregated (the query cache).
pub type CountedPath<'p> = (&'p [String], u64, u64, f64);

fn counted(paths: &[JourneyPath]) -> Vec<CountedPath<'_>> {
    paths.iter().map(|p| (p.keys.as_slice(), p.converted as u64, (!p.converted) as u64, if p.converted { p.value } else { 0.0 })).collect()
}

/// Drops zero-count entries (a cache may keep a path whose count fell to zero):
/// they are no path, and their keys must not become chain states.
fn nonzero<'p>(paths: &[CountedPath<'p>]) -> Vec<CountedPath<'p>> {
    paths.iter().filter(|p| p.1 + p.2 > 0).copied().collect()
}

/// A counted path over interned keys: indices into a `names` list that is
/// ascending, distinct, and holds only keys of paths with a non-zero count;
/// then conversions, nulls and the conversions' total value as in
/// [`CountedPath`]. Callers that keep keys interned (the query cache) skip
/// string hashing.
pub type IdPath<'p> = (&'p [u32], u64, u64, f64);

/// `paths` interned: the sorted key names and each path's key indices.
fn interned<'p>(paths: &[CountedPath<'p>]) -> (Vec<&'p str>, Vec<Vec<u32>>) {
    let (names, index) = intern(paths);
    let ids = paths.iter().map(|p| p.0.iter().map(|k| index[k.as_str()] as u32).collect()).collect();
    (names, ids)
}

fn run_interned(paths: &[CountedPath<'_>], f: impl Fn(&[&str], &[IdPath<'_>]) -> DataDrivenResult) -> DataDrivenResult {
    let paths = nonzero(paths);
    let (names, ids) = interned(&paths);
    let id_paths: Vec<IdPath> = ids.iter().zip(&paths).map(|(i, p)| (i.as_slice(), p.1, p.2, p.3)).collect();
    f(&names, &id_paths)
}

/// Credit per key (conversions), value per key and, for Markov, the removal
/// effect per key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataDrivenResult {
    pub credits: Vec<(String, f64)>,
    /// The keys of `credits`, in the same order, with their value (in the
    /// conversions' currency).
    pub values: Vec<(String, f64)>,
    /// Markov only (empty for Shapley): `RE_k` for every key of the chain.
    pub removal_effects: Vec<(String, f64)>,
}

/// Largest key set whose Shapley values are computed exactly; a larger converting
/// key set splits its conversions equally over its keys.
pub const SHAPLEY_EXACT_MAX_KEYS: usize = 15;

/// The distinct keys of `paths`, sorted, and each key's index in that order.
fn intern<'p>(paths: &[CountedPath<'p>]) -> (Vec<&'p str>, HashMap<&'p str, usize>) {
    let set: BTreeSet<&str> = paths.iter().flat_map(|p| p.0.iter().map(String::as_str)).collect();
    let names: Vec<&str> = set.into_iter().collect();
    let index = names.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    (names, index)
}

/// LU factorization with partial pivoting of a dense `n × n` row-major matrix.
pub(crate) struct Lu {
    n: usize,
    lu: Vec<f64>,
    perm: Vec<usize>,
}

impl Lu {
    /// `None` when the matrix is (numerically) singular.
    pub(crate) fn factor(n: usize, mut a: Vec<f64>) -> Option<Lu> {
        assert_eq!(a.len(), n * n);
        let mut perm: Vec<usize> = (0..n).collect();
        for col in 0..n {
            let (piv, max) = (col..n)
                .map(|r| (r, a[r * n + col].abs()))
                .fold((col, -1.0), |best, c| if c.1 > best.1 { c } else { best });
            if max <= 0.0 || !max.is_finite() {
                return None;
            }
            if piv != col {
                for j in 0..n {
                    a.swap(col * n + j, piv * n + j);
                }
                perm.swap(col, piv);
            }
            let d = a[col * n + col];
            for r in col + 1..n {
                let f = a[r * n + col] / d;
                if f == 0.0 {
                    continue;
                }
                a[r * n + col] = f;
                for j in col + 1..n {
                    a[r * n + j] -= f * a[col * n + j];
                }
            }
        }
        Some(Lu { n, lu: a, perm })
    }

    /// Solves `A x = b`.
    pub(crate) fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x: Vec<f64> = self.perm.iter().map(|&p| b[p]).collect();
        for i in 0..n {
            let row = &self.lu[i * n..i * n + i];
            let s: f64 = row.iter().zip(&x[..i]).fold(x[i], |s, (l, xj)| s - l * xj);
            x[i] = s;
        }
        for i in (0..n).rev() {
            let row = &self.lu[i * n + i + 1..(i + 1) * n];
            let s: f64 = row.iter().zip(&x[i + 1..]).fold(x[i], |s, (u, xj)| s - u * xj);
            x[i] = s / self.lu[i * n + i];
        }
        x
    }
}

/// The first-order chain of `paths` as transition counts. States: `0` = `(start)`,
/// `1..=k` = keys (sorted), then the absorbing `(conversion)` (column `k + 1`) and
/// `(null)` (column `k + 2`). Row-major `(k + 1) × (k + 3)`.
pub(crate) struct Chain<'p> {
    pub(crate) names: Vec<&'p str>,
    pub(crate) counts: Vec<f64>,
    pub(crate) conversions: u64,
}

impl<'p> Chain<'p> {
    fn build(names: &[&'p str], paths: &[IdPath<'_>]) -> Chain<'p> {
        let t = names.len() + 1;
        let width = t + 2;
        let mut counts = vec![0.0; t * width];
        let mut conversions = 0u64;
        for &(ids, conv, null, _) in paths {
            let n = (conv + null) as f64;
            let mut prev = 0usize;
            for &id in ids {
                let s = id as usize + 1;
                if s == prev {
                    continue; // consecutive repeats collapse: no self-transitions
                }
                counts[prev * width + s] += n;
                prev = s;
            }
            counts[prev * width + t] += conv as f64;
            counts[prev * width + t + 1] += null as f64;
            conversions += conv;
        }
        Chain { names: names.to_vec(), counts, conversions }
    }

    /// Number of transient states (`(start)` and the keys).
    pub(crate) fn transient(&self) -> usize {
        self.names.len() + 1
    }

    /// `(A, b)` with `A = D − C` over the transient states (`C` the counts, `D` the
    /// row totals) and `b` the counts into `(conversion)`: `A x = b` is the
    /// row-scaled `(I − Q) x = R_conv`, with exact integer entries. A state without
    /// outgoing transitions (never happens for a built chain) is made to absorb
    /// nowhere (`x = 0`), as MAM's zero-row normalization does.
    pub(crate) fn system(&self) -> (Vec<f64>, Vec<f64>) {
        let t = self.transient();
        let width = t + 2;
        let mut a = vec![0.0; t * t];
        let mut b = vec![0.0; t];
        for i in 0..t {
            let row = &self.counts[i * width..(i + 1) * width];
            let d: f64 = row.iter().sum();
            for j in 0..t {
                a[i * t + j] = -row[j];
            }
            a[i * t + i] += if d > 0.0 { d } else { 1.0 };
            b[i] = row[t];
        }
        (a, b)
    }
}

/// Markov removal-effect attribution, computed exactly.
///
/// The chain is built from `paths` (consecutive repeats of a key collapsed;
/// maximum-likelihood transition probabilities, every transition occurrence
/// counting once). `P(conversion)` is the absorption probability `x_s` from
/// `(start)`, from one LU solve. Removing `k` (every transition into `k` goes to
/// `(null)`) leaves exactly the conversions that avoid `k`:
/// `P₋ₖ = x_s − f_sk·x_k`, where `f_sk = N_sk / N_kk` is the probability of ever
/// reaching `k` from `(start)` (`N = (I − Q)⁻¹`). So
/// `RE_k = 1 − P₋ₖ/P = f_sk·x_k / x_s`, obtained from the same factorization with
/// one solve per key, free of the cancellation in `1 − P₋ₖ/P` (and equal to
/// re-solving the modified chain for each key, as the tests check).
///
/// `credit_k = conversions × RE_k / Σ RE` and `value_k = V × RE_k / Σ RE`, where
/// `V` is the total value of the modelled conversions: those of the converted
/// paths given, all non-empty (a conversion with an empty path is the caller's,
/// for `(direct)` with its own value, and is not modelled). When there is no
/// conversion (`P = 0`) every removal effect is reported as `0` (as MAM does)
/// and there are no credits nor values; likewise none when `Σ RE = 0`.
pub fn markov(paths: &[JourneyPath]) -> DataDrivenResult {
    markov_counted(&counted(paths))
}

/// [`markov`] over aggregated paths.
pub fn markov_counted(paths: &[CountedPath<'_>]) -> DataDrivenResult {
    run_interned(paths, markov_ids)
}

/// [`markov`] over aggregated paths of interned keys (see [`IdPath`]).
pub fn markov_ids(names: &[&str], paths: &[IdPath<'_>]) -> DataDrivenResult {
    let chain = Chain::build(names, paths);
    let k = chain.names.len();
    let zero_effects = || chain.names.iter().map(|n| (n.to_string(), 0.0)).collect();
    if chain.conversions == 0 || k == 0 {
        return DataDrivenResult { removal_effects: zero_effects(), ..Default::default() };
    }
    let t = chain.transient();
    let (a, b) = chain.system();
    let Some(lu) = Lu::factor(t, a) else {
        // Unreachable: every state of a built chain reaches absorption.
        return DataDrivenResult { removal_effects: zero_effects(), ..Default::default() };
    };
    let x = lu.solve(&b);
    let p = x[0];
    if p.is_nan() || p <= 0.0 {
        return DataDrivenResult { removal_effects: zero_effects(), ..Default::default() };
    }
    let mut e = vec![0.0; t];
    let mut effects = Vec::with_capacity(k);
    let mut sum = ExactSum::new();
    for s in 1..t {
        e[s] = 1.0;
        let col = lu.solve(&e); // column s of A⁻¹ = N D⁻¹: col[i] = N_is / d_s
        e[s] = 0.0;
        let reach = col[0] / col[s];
        let re = reach * x[s] / p;
        sum.add(re);
        effects.push(re);
    }
    let total_re = sum.value();
    let removal_effects: Vec<(String, f64)> =
        chain.names.iter().zip(&effects).map(|(n, re)| (n.to_string(), *re)).collect();
    if total_re.is_nan() || total_re <= 0.0 {
        return DataDrivenResult { removal_effects, ..Default::default() };
    }
    let conv = chain.conversions as f64;
    let value = exact_total(paths.iter().filter(|p| p.1 > 0).map(|p| p.3));
    let share = |amount: f64| -> Vec<(String, f64)> { chain.names.iter().zip(&effects).map(|(n, re)| (n.to_string(), amount * re / total_re)).collect() };
    DataDrivenResult { credits: share(conv), values: share(value), removal_effects }
}

/// The exactly rounded sum of `xs`, whatever their order.
fn exact_total(xs: impl Iterator<Item = f64>) -> f64 {
    let mut sum = ExactSum::new();
    xs.for_each(|x| sum.add(x));
    sum.value()
}

/// `(conversions, paths, the conversions' value)` of one key set.
#[derive(Clone, Default)]
struct SetStats {
    conv: u64,
    total: u64,
    value: ExactSum,
}

impl SetStats {
    fn rate(&self) -> f64 {
        self.conv as f64 / self.total as f64
    }

    /// Adds a counted path.
    fn add(&mut self, conv: u64, null: u64, value: f64) {
        self.conv += conv;
        self.total += conv + null;
        self.value.add(value);
    }

    /// Adds another group's counts.
    fn merge(&mut self, other: &SetStats) {
        self.conv += other.conv;
        self.total += other.total;
        self.value.merge(&other.value);
    }
}

/// The non-zero coalitions of converting set `t`: `(mask over t's positions, v)`,
/// by enumerating the subsets of `t` and looking each up.
fn coalitions_by_subsets(t: &[u32], groups: &HashMap<Vec<u32>, SetStats>) -> Vec<(u32, f64)> {
    let n = t.len();
    let mut buf: Vec<u32> = Vec::with_capacity(n);
    let mut out = Vec::new();
    for mask in 1u32..(1u32 << n) {
        buf.clear();
        buf.extend((0..n).filter(|i| mask >> i & 1 == 1).map(|i| t[i]));
        if let Some(s) = groups.get(buf.as_slice()) {
            if s.conv > 0 {
                out.push((mask, s.rate()));
            }
        }
    }
    out
}

/// The same, by scanning the converting sets for subsets of `t` (cheaper when
/// there are fewer converting sets than subsets). `pos` is scratch of one entry
/// per key, all `u32::MAX` on entry and exit.
fn coalitions_by_scan(t: &[u32], converting: &[(&Vec<u32>, &SetStats)], pos: &mut [u32]) -> Vec<(u32, f64)> {
    for (i, &id) in t.iter().enumerate() {
        pos[id as usize] = i as u32;
    }
    let mut out = Vec::new();
    'sets: for (set, stats) in converting {
        if set.len() > t.len() {
            continue;
        }
        let mut mask = 0u32;
        for &id in set.iter() {
            let p = pos[id as usize];
            if p == u32::MAX {
                continue 'sets;
            }
            mask |= 1 << p;
        }
        out.push((mask, stats.rate()));
    }
    for &id in t {
        pos[id as usize] = u32::MAX;
    }
    out.sort_by_key(|c| c.0);
    out
}

/// Shapley values of the game on `n` players whose non-zero values are
/// `coalitions` (v(∅) = 0): `φ_i = Σ_S v(S)·(w⁺(|S|) if i ∈ S else −w⁻(|S|))`
/// with `w⁺(s) = (s−1)!(n−s)!/n!`, `w⁻(s) = s!(n−s−1)!/n!` (MAM's `V @ W`).
fn shapley_values(n: usize, coalitions: &[(u32, f64)]) -> Vec<f64> {
    debug_assert!(n <= SHAPLEY_EXACT_MAX_KEYS);
    let mut fact = [1u64; SHAPLEY_EXACT_MAX_KEYS + 1];
    for i in 1..fact.len() {
        fact[i] = fact[i - 1] * i as u64;
    }
    let nf = fact[n] as f64;
    let w_in: Vec<f64> = (0..=n).map(|s| if s == 0 { 0.0 } else { (fact[s - 1] * fact[n - s]) as f64 / nf }).collect();
    let w_out: Vec<f64> = (0..=n).map(|s| if s == n { 0.0 } else { (fact[s] * fact[n - s - 1]) as f64 / nf }).collect();
    let mut phi = vec![0.0; n];
    for &(mask, v) in coalitions {
        let s = mask.count_ones() as usize;
        for (i, f) in phi.iter_mut().enumerate() {
            if mask >> i & 1 == 1 {
                *f += w_in[s] * v;
            } else {
                *f -= w_out[s] * v;
            }
        }
    }
    phi
}

/// Shapley attribution as `marketing-attribution-models` 2.1.1 `run_shapley`
/// (with no `max_size` truncation).
///
/// Paths are grouped by key set; `v(S)` = conversions / paths of the paths whose
/// key set is exactly `S` (0 when none; `v(∅) = 0`). For every converting key set
/// `T` of at most [`SHAPLEY_EXACT_MAX_KEYS`] keys, `φᵀ` are the Shapley values of
/// `v` restricted to the subsets of `T`, `credit_k += conv(T) × φᵀ_k / Σφᵀ` and
/// `value_k += value(T) × φᵀ_k / Σφᵀ` with `value(T)` the total value of `T`'s
/// conversions (a credit or value can be negative). A larger `T` gives
/// `conv(T) / |T|` and `value(T) / |T|` to each key. (`Σφᵀ = v(T) > 0` in exact
/// arithmetic; should rounding ever make it zero, `T` also splits equally.)
/// Credits sum to the number of converted paths, values to their total value.
pub fn shapley(paths: &[JourneyPath]) -> DataDrivenResult {
    shapley_counted(&counted(paths))
}

/// [`shapley`] over aggregated paths.
pub fn shapley_counted(paths: &[CountedPath<'_>]) -> DataDrivenResult {
    run_interned(paths, shapley_ids)
}

/// [`shapley`] over aggregated paths of interned keys (see [`IdPath`]).
pub fn shapley_ids(names: &[&str], paths: &[IdPath<'_>]) -> DataDrivenResult {
    let mut groups: HashMap<Vec<u32>, SetStats> = HashMap::new();
    if names.len() <= 128 {
        // Key sets as bit masks first: no allocation per path (there are few
        // distinct sets, many paths).
        let mut masks: HashMap<u128, SetStats> = HashMap::new();
        for &(keys, conv, null, value) in paths {
            let mask = keys.iter().fold(0u128, |m, &id| m | 1 << id);
            masks.entry(mask).or_default().add(conv, null, value);
        }
        for (mask, s) in masks {
            groups.entry((0..128u32).filter(|i| mask >> i & 1 == 1).collect()).or_default().merge(&s);
        }
    } else {
        for &(keys, conv, null, value) in paths {
            let mut ids: Vec<u32> = keys.to_vec();
            ids.sort_unstable();
            ids.dedup();
            groups.entry(ids).or_default().add(conv, null, value);
        }
    }
    let mut converting: Vec<(&Vec<u32>, &SetStats)> = groups.iter().filter(|(set, s)| s.conv > 0 && !set.is_empty()).collect();
    converting.sort_by(|a, b| a.0.cmp(b.0));

    let mut sums: Vec<Option<(ExactSum, ExactSum)>> = vec![None; names.len()];
    let mut give = |id: u32, credit: f64, value: f64| {
        let s = sums[id as usize].get_or_insert_with(Default::default);
        s.0.add(credit);
        s.1.add(value);
    };
    let mut pos = vec![u32::MAX; names.len()];
    for (t, stats) in &converting {
        let n = t.len();
        let (conv, value) = (stats.conv as f64, stats.value.value());
        let phi = if n <= SHAPLEY_EXACT_MAX_KEYS {
            let coalitions = if (1usize << n) <= converting.len() {
                coalitions_by_subsets(t, &groups)
            } else {
                coalitions_by_scan(t, &converting, &mut pos)
            };
            Some(shapley_values(n, &coalitions))
        } else {
            None
        };
        let total: f64 = phi.as_ref().map(|p| p.iter().sum()).unwrap_or(0.0);
        match phi {
            Some(phi) if total != 0.0 && total.is_finite() => {
                for (&id, f) in t.iter().zip(phi) {
                    give(id, conv * f / total, value * f / total);
                }
            }
            _ => {
                for &id in t.iter() {
                    give(id, conv / n as f64, value / n as f64);
                }
            }
        }
    }
    let given: Vec<(&str, (ExactSum, ExactSum))> = names.iter().zip(sums).filter_map(|(name, s)| s.map(|s| (*name, s))).collect();
    let credits = given.iter().map(|(name, s)| (name.to_string(), s.0.value())).collect();
    let values = given.iter().map(|(name, s)| (name.to_string(), s.1.value())).collect();
    DataDrivenResult { credits, values, removal_effects: Vec::new() }
}

#[cfg(test)]
#[path = "datadriven_tests.rs"]
mod tests;

//! The data-driven models of the batch reference (attribution.md, "Data-driven
//! models"), written from the spec alone and never from
//! `touchline_actors::domain::datadriven`, so that the two cross-check each other:
//! Markov by solving the absorbing chain anew with each key removed (dense
//! Gaussian elimination over transition probabilities), Shapley by the
//! marginal-contribution formula over the subsets of each converting key set.
//!
//! Input: the query's paths, each its keys in time order (consecutive repeats
//! kept) and `Some(value)` for a conversion's path, `None` for a person's
//! `(null)` path. Conversions with an empty path are the caller's (`(direct)`).
//! Output: `key → (credit, value)`; values follow the conversions' own values.

use super::RefQuery;
use std::collections::{BTreeMap, BTreeSet};
use touchline_actors::domain::Ts;

/// One path: keys, and the conversion's value (`None`: ends in `(null)`).
pub type DdPath = (Vec<String>, Option<f64>);

/// Largest converting key set whose Shapley values are exact; larger ones split linearly.
const EXACT_MAX: usize = 15;

impl RefQuery {
    /// The data-driven queries the equivalence tests compare besides the
    /// standard ones: `markov` and `shapley` over each grouping, and with a
    /// short lookback (more `(direct)` conversions).
    pub fn data_driven(tenants: &[String], from: Ts, to: Ts) -> Vec<RefQuery> {
        let mut out = Vec::new();
        for t in tenants {
            for model in ["markov", "shapley"] {
                for group_by in ["channel", "campaign", "source_medium"] {
                    let mut q = RefQuery::new(t, model, from, to);
                    q.group_by = group_by.into();
                    out.push(q);
                }
                let mut q = RefQuery::new(t, model, from, to);
                q.lookback_days = 3;
                out.push(q);
            }
        }
        out
    }
}

/// Solves `a x = b` (dense, `n × n`) by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs())).expect("a non-empty system");
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot = &top[col];
        for (i, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot[col];
            if f != 0.0 {
                row.iter_mut().zip(pivot).skip(col).for_each(|(x, p)| *x -= f * p);
                b[col + 1 + i] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    x
}

/// The first-order chain: states `(start)` = 0, the keys 1..=k (sorted), then
/// `(conversion)` = k + 1 and `(null)` = k + 2; row-normalized probabilities.
struct Chain {
    keys: Vec<String>,
    prob: Vec<Vec<f64>>,
}

impl Chain {
    fn new(paths: &[DdPath]) -> Chain {
        let keys: Vec<String> = paths.iter().flat_map(|p| p.0.iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
        let k = keys.len();
        let mut counts = vec![vec![0.0; k + 3]; k + 3];
        for (path, value) in paths {
            let mut states = vec![0];
            for key in path {
                let s = keys.binary_search(key).expect("a key of the paths") + 1;
                if states.last() != Some(&s) {
                    states.push(s); // repeats collapse: no self-transitions
                }
            }
            states.push(if value.is_some() { k + 1 } else { k + 2 });
            for w in states.windows(2) {
                counts[w[0]][w[1]] += 1.0;
            }
        }
        let prob = counts
            .into_iter()
            .map(|row| {
                let total: f64 = row.iter().sum();
                row.into_iter().map(|c| if total > 0.0 { c / total } else { 0.0 }).collect()
            })
            .collect();
        Chain { keys, prob }
    }

    /// P(conversion) from `(start)` with `removed` (a state) taken out: every
    /// transition into it goes to `(null)` instead.
    fn p_conversion(&self, removed: Option<usize>) -> f64 {
        let k = self.keys.len();
        let t = k + 1; // transient states: (start) and the keys
        let mut prob = self.prob.clone();
        if let Some(r) = removed {
            for row in prob.iter_mut() {
                row[k + 2] += row[r];
                row[r] = 0.0;
            }
        }
        // (I − Q) x = R_conversion; a state without transitions absorbs nowhere.
        let a = (0..t).map(|i| (0..t).map(|j| if i == j { 1.0 } else { 0.0 } - prob[i][j]).collect()).collect();
        let b = (0..t).map(|i| prob[i][k + 1]).collect();
        solve(a, b)[0]
    }

    /// Whether `(conversion)` can be reached from state `from`.
    fn leads_to_conversion(&self, from: usize) -> bool {
        let conversion = self.keys.len() + 1;
        let (mut seen, mut todo) = (vec![false; conversion + 2], vec![from]);
        while let Some(s) = todo.pop() {
            if s == conversion {
                return true;
            }
            if !std::mem::replace(&mut seen[s], true) {
                todo.extend((0..conversion + 2).filter(|&j| self.prob[s][j] > 0.0));
            }
        }
        false
    }
}

/// Markov removal effects `RE_k = 1 − P₋ₖ / P` (all 0 when `P = 0`); exactly 0
/// for a key from which no conversion can be reached (removing it changes
/// nothing), whatever the rounding of the two solves.
pub fn removal_effects(paths: &[DdPath]) -> BTreeMap<String, f64> {
    let chain = Chain::new(paths);
    let p = if chain.keys.is_empty() { 0.0 } else { chain.p_conversion(None) };
    let effect = |s: usize| if p > 0.0 && chain.leads_to_conversion(s) { 1.0 - chain.p_conversion(Some(s)) / p } else { 0.0 };
    chain.keys.iter().enumerate().map(|(i, key)| (key.clone(), effect(i + 1))).collect()
}

/// Markov credits and values: `conversions × RE_k / Σ RE` and `V × RE_k / Σ RE`,
/// `V` the total value of the modelled conversions (those with a path). None
/// when there is no conversion or `Σ RE` is not positive.
pub fn markov(paths: &[DdPath]) -> BTreeMap<String, (f64, f64)> {
    let conversions = paths.iter().filter(|p| p.1.is_some()).count() as f64;
    let value: f64 = paths.iter().filter_map(|p| p.1).sum();
    let re = removal_effects(paths);
    let sum: f64 = re.values().sum();
    if conversions == 0.0 || sum.is_nan() || sum <= 0.0 {
        return BTreeMap::new();
    }
    re.into_iter().map(|(k, r)| (k, (conversions * r / sum, value * r / sum))).collect()
}

/// Shapley credits and values (as `marketing-attribution-models` 2.1.1
/// `run_shapley`): paths grouped by key set, `v(S)` = conversions / paths of
/// the paths whose key set is exactly `S`; each converting set `T` gives its
/// conversions and their value to its keys in proportion to the Shapley values
/// of `v` on the subsets of `T`, `φ_i = Σ_{S ⊆ T∖i} |S|!(n−|S|−1)!/n! ·
/// (v(S ∪ i) − v(S))`. A set over [`EXACT_MAX`] keys (or with `Σφ = 0`) splits
/// equally.
pub fn shapley(paths: &[DdPath]) -> BTreeMap<String, (f64, f64)> {
    // key set → (conversions, paths, the conversions' value)
    let mut sets: BTreeMap<BTreeSet<&str>, (f64, f64, f64)> = BTreeMap::new();
    for (keys, value) in paths {
        let s = sets.entry(keys.iter().map(String::as_str).collect()).or_default();
        s.1 += 1.0;
        if let Some(v) = value {
            s.0 += 1.0;
            s.2 += v;
        }
    }
    let worth = |s: &BTreeSet<&str>| sets.get(s).map_or(0.0, |g| g.0 / g.1);
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (t, &(conv, _, value)) in sets.iter().filter(|(t, g)| g.0 > 0.0 && !t.is_empty()) {
        let players: Vec<&str> = t.iter().copied().collect();
        let n = players.len();
        let phi = if n <= EXACT_MAX { shapley_values(&players, &worth) } else { vec![0.0; n] };
        let total: f64 = phi.iter().sum();
        for (i, key) in players.iter().enumerate() {
            let share = if total != 0.0 && total.is_finite() { phi[i] / total } else { 1.0 / n as f64 };
            let e = out.entry(key.to_string()).or_default();
            e.0 += conv * share;
            e.1 += value * share;
        }
    }
    out
}

/// The Shapley values of the game `worth` restricted to the subsets of `players`.
fn shapley_values(players: &[&str], worth: &dyn Fn(&BTreeSet<&str>) -> f64) -> Vec<f64> {
    let n = players.len();
    let subset = |mask: usize| -> BTreeSet<&str> { (0..n).filter(|i| mask >> i & 1 == 1).map(|i| players[i]).collect() };
    let v: Vec<f64> = (0..1usize << n).map(|m| if m == 0 { 0.0 } else { worth(&subset(m)) }).collect();
    let fact = |m: usize| (1..=m).map(|x| x as f64).product::<f64>();
    let weight: Vec<f64> = (0..n).map(|s| fact(s) * fact(n - s - 1) / fact(n)).collect();
    (0..n)
        .map(|i| {
            (0..1usize << n)
                .filter(|m| m >> i & 1 == 0)
                .map(|m| weight[m.count_ones() as usize] * (v[m | 1 << i] - v[m]))
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// attribution.md's worked example, every conversion worth `value`.
    fn worked(value: f64) -> Vec<DdPath> {
        let mut out = Vec::new();
        for (p, conv, null) in [("A>B>C", 10, 20), ("A>C", 5, 15), ("B", 3, 27), ("C>A", 4, 6), ("B>A>B>C", 6, 4), ("A", 2, 38)] {
            let keys: Vec<String> = p.split('>').map(str::to_string).collect();
            out.extend((0..conv).map(|_| (keys.clone(), Some(value))));
            out.extend((0..null).map(|_| (keys.clone(), None)));
        }
        out
    }

    #[test]
    fn worked_example_shapley() {
        let s = shapley(&worked(2.0));
        for (k, credit) in [("A", 14.5833), ("B", 5.3333), ("C", 10.0833)] {
            assert!((s[k].0 - credit).abs() < 5e-5, "{k}: {:?}", s[k]);
            assert!((s[k].1 - 2.0 * s[k].0).abs() < 1e-9, "{k}: {:?}", s[k]);
        }
        // Exactly 175/12, 16/3, 121/12.
        assert!((s["A"].0 - 175.0 / 12.0).abs() < 1e-12 && (s["B"].0 - 16.0 / 3.0).abs() < 1e-12 && (s["C"].0 - 121.0 / 12.0).abs() < 1e-12);
    }

    #[test]
    fn worked_example_markov() {
        let paths = worked(3.0);
        let re = removal_effects(&paths);
        for (k, r) in [("A", 0.650000), ("B", 0.558667), ("C", 0.723810)] {
            assert!((re[k] - r).abs() < 1e-6, "{k}: {re:?}");
        }
        let m = markov(&paths);
        for (k, credit) in [("A", 10.0907), ("B", 8.6728), ("C", 11.2365)] {
            assert!((m[k].0 - credit).abs() < 5e-5, "{k}: {:?}", m[k]);
            assert!((m[k].1 - 3.0 * m[k].0).abs() < 1e-9, "{k}: {:?}", m[k]);
        }
        assert!((m.values().map(|c| c.0).sum::<f64>() - 30.0).abs() < 1e-9);
    }

    #[test]
    fn values_follow_each_conversions_value() {
        // {A}: 1 of 2 converts, worth 10; {B}: 1 of 4, worth 30; {A, B}: 2 of
        // 4, worth 4 + 6. In {A, B}, φ_A = 3/8 and φ_B = 1/8 split both its
        // conversions and its value 3:1.
        let p = |k: &str, v: Option<f64>| (k.split('>').map(str::to_string).collect::<Vec<_>>(), v);
        let paths = vec![
            p("A", Some(10.0)), p("A", None),
            p("B", Some(30.0)), p("B", None), p("B", None), p("B", None),
            p("A>B", Some(4.0)), p("A>B", Some(6.0)), p("A>B", None), p("A>B", None),
        ];
        let s = shapley(&paths);
        assert!((s["A"].0 - 2.5).abs() < 1e-12 && (s["A"].1 - 17.5).abs() < 1e-12, "{s:?}");
        assert!((s["B"].0 - 1.5).abs() < 1e-12 && (s["B"].1 - 32.5).abs() < 1e-12, "{s:?}");
        // Markov: RE_A = 5/8, RE_B = 3/4 (by hand), the total 50 shared 5:6.
        let m = markov(&paths);
        assert!((m["A"].0 - 20.0 / 11.0).abs() < 1e-12 && (m["A"].1 - 250.0 / 11.0).abs() < 1e-12, "{m:?}");
        assert!((m["B"].0 - 24.0 / 11.0).abs() < 1e-12 && (m["B"].1 - 300.0 / 11.0).abs() < 1e-12, "{m:?}");
        // No conversion: no credit.
        assert!(markov(&[p("A", None)]).is_empty() && shapley(&[p("A", None)]).is_empty());
    }

    #[test]
    fn large_key_sets_split_linearly() {
        let big: Vec<String> = (0..16).map(|i| format!("k{i:02}")).collect();
        let s = shapley(&[(big, Some(32.0))]);
        assert_eq!(s.len(), 16);
        assert!(s.values().all(|c| c.0 == 1.0 / 16.0 && c.1 == 2.0));
    }
}

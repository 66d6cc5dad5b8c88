//! Tests of the data-driven models: attribution.md's worked example, independent
//! brute-force references (Markov by re-solving each removed chain, Shapley by
//! permutations), and conservation properties.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// `(path "A>B>C", conversions, nulls)` rows expanded into journeys.
fn journeys(spec: &[(&str, usize, usize)]) -> Vec<JourneyPath> {
    let mut out = Vec::new();
    for &(p, conv, null) in spec {
        let keys: Vec<String> = p.split('>').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
        for i in 0..conv + null {
            out.push(JourneyPath { keys: keys.clone(), converted: i < conv });
        }
    }
    out
}

fn worked() -> Vec<JourneyPath> {
    journeys(&[("A>B>C", 10, 20), ("A>C", 5, 15), ("B", 3, 27), ("C>A", 4, 6), ("B>A>B>C", 6, 4), ("A", 2, 38)])
}

fn get(v: &[(String, f64)], k: &str) -> f64 {
    v.iter().find(|e| e.0 == k).unwrap_or_else(|| panic!("no {k} in {v:?}")).1
}

fn total(v: &[(String, f64)]) -> f64 {
    v.iter().map(|e| e.1).sum()
}

#[test]
fn worked_example_shapley() {
    let r = shapley(&worked());
    assert!(r.removal_effects.is_empty());
    assert_eq!(r.credits.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), vec!["A", "B", "C"]);
    // To the printed precision ...
    for (k, printed) in [("A", 14.5833), ("B", 5.3333), ("C", 10.0833)] {
        assert!((get(&r.credits, k) - printed).abs() < 5e-5, "{k}: {:?}", r.credits);
    }
    // ... and exactly: 175/12, 16/3, 121/12.
    for (k, exact) in [("A", 175.0 / 12.0), ("B", 16.0 / 3.0), ("C", 121.0 / 12.0)] {
        assert!((get(&r.credits, k) - exact).abs() < 1e-12, "{k}: {:?}", r.credits);
    }
    assert!((total(&r.credits) - 30.0).abs() < 1e-12);
}

#[test]
fn worked_example_markov() {
    let r = markov(&worked());
    for (k, printed) in [("A", 0.650000), ("B", 0.558667), ("C", 0.723810)] {
        assert!((get(&r.removal_effects, k) - printed).abs() < 1e-6, "{k}: {:?}", r.removal_effects);
    }
    for (k, printed) in [("A", 10.0907), ("B", 8.6728), ("C", 11.2365)] {
        assert!((get(&r.credits, k) - printed).abs() < 5e-5, "{k}: {:?}", r.credits);
    }
    assert!((total(&r.credits) - 30.0).abs() < 1e-12);
}

#[test]
fn markov_collapses_repeats() {
    let a = markov(&journeys(&[("A>A>B>B>B", 2, 1), ("B>A", 1, 3), ("C", 1, 1)]));
    let b = markov(&journeys(&[("A>B", 2, 1), ("B>A", 1, 3), ("C", 1, 1)]));
    assert_eq!(a, b);
}

#[test]
fn markov_edge_cases() {
    assert_eq!(markov(&[]), DataDrivenResult::default());
    // No conversion: zero removal effects, no credits.
    let r = markov(&journeys(&[("A>B", 0, 3)]));
    assert!(r.credits.is_empty());
    assert_eq!(r.removal_effects, vec![("A".to_string(), 0.0), ("B".to_string(), 0.0)]);
    // One key: it carries every conversion.
    let r = markov(&journeys(&[("A", 3, 5), ("A>A", 1, 0)]));
    assert_eq!(r.removal_effects, vec![("A".to_string(), 1.0)]);
    assert_eq!(r.credits, vec![("A".to_string(), 4.0)]);
    // Keys spelled like chain states are plain keys.
    let r = markov(&journeys(&[("(null)>(conversion)", 1, 1), ("(start)", 1, 2)]));
    assert_eq!(r.credits.len(), 3);
    assert!((total(&r.credits) - 2.0).abs() < 1e-12);
    // A key seen only on non-converting paths may still earn credit (it leads on).
    let r = markov(&journeys(&[("X>B", 0, 4), ("B", 2, 2)]));
    assert!(get(&r.credits, "X") > 0.0);
}

/// MAM's computation, literally: row-normalized transition matrix over
/// `[(start), keys…, (null), (conversion)]`, removal by moving column k into
/// `(null)`, absorption by solving `(I − Q) x = R_conv` anew for each removal.
fn markov_reference(paths: &[JourneyPath]) -> BTreeMap<String, f64> {
    let names: Vec<String> = paths.iter().flat_map(|p| p.keys.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let k = names.len();
    let size = k + 3;
    let (null, conv) = (k + 1, k + 2);
    let idx = |s: &str| names.iter().position(|n| n == s).unwrap() + 1;
    let mut m = vec![vec![0.0; size]; size];
    for p in paths {
        let mut states = vec![0];
        states.extend(p.keys.iter().map(|s| idx(s)));
        states.push(if p.converted { conv } else { null });
        for w in states.windows(2) {
            if w[0] != w[1] {
                m[w[0]][w[1]] += 1.0;
            }
        }
    }
    let p_conv = |m: &Vec<Vec<f64>>| -> f64 {
        // Gauss-Jordan on (I − Q) | R_conv over the transient states 0..=k.
        let t = k + 1;
        let mut a: Vec<Vec<f64>> = (0..t)
            .map(|i| {
                let s: f64 = m[i].iter().sum();
                let s = if s == 0.0 { 1.0 } else { s };
                let mut row: Vec<f64> = (0..t).map(|j| if i == j { 1.0 } else { 0.0 } - m[i][j] / s).collect();
                row.push(m[i][conv] / s);
                row
            })
            .collect();
        for c in 0..t {
            let piv = (c..t).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs())).unwrap();
            a.swap(c, piv);
            let d = a[c][c];
            a[c].iter_mut().for_each(|x| *x /= d);
            let pivot_row = a[c].clone();
            for (r, row) in a.iter_mut().enumerate() {
                if r != c {
                    let f = row[c];
                    row.iter_mut().zip(&pivot_row).for_each(|(x, p)| *x -= f * p);
                }
            }
        }
        a[0][t]
    };
    let base = p_conv(&m);
    let mut out = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let col = i + 1;
        let mut t = m.clone();
        for row in t.iter_mut() {
            row[null] += row[col];
            row[col] = 0.0;
        }
        out.insert(name.clone(), 1.0 - p_conv(&t) / base);
    }
    out
}

/// Shapley by definition: marginal contributions averaged over all orders.
fn shapley_reference(paths: &[JourneyPath]) -> BTreeMap<String, f64> {
    let mut groups: BTreeMap<BTreeSet<String>, (f64, f64)> = BTreeMap::new();
    for p in paths {
        let g = groups.entry(p.keys.iter().cloned().collect()).or_default();
        g.0 += p.converted as u8 as f64;
        g.1 += 1.0;
    }
    let v = |s: &BTreeSet<String>| groups.get(s).map(|g| g.0 / g.1).unwrap_or(0.0);
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (t, (conv, _)) in &groups {
        if *conv == 0.0 || t.is_empty() {
            continue;
        }
        let players: Vec<&String> = t.iter().collect();
        let n = players.len();
        let mut phi = vec![0.0; n];
        let mut order: Vec<usize> = (0..n).collect();
        let mut count = 0.0;
        permute(&mut order, 0, &mut |ord| {
            count += 1.0;
            let mut s = BTreeSet::new();
            let mut before = 0.0;
            for &i in ord {
                s.insert(players[i].clone());
                let after = v(&s);
                phi[i] += after - before;
                before = after;
            }
        });
        let sum: f64 = phi.iter().sum();
        for (i, p) in players.iter().enumerate() {
            *out.entry((*p).clone()).or_default() += conv * (phi[i] / count) / (sum / count);
        }
    }
    out
}

fn permute(v: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize])) {
    if k == v.len() {
        f(v);
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permute(v, k + 1, f);
        v.swap(k, i);
    }
}

#[test]
fn worked_example_matches_references() {
    let r = markov(&worked());
    let reference = markov_reference(&worked());
    for (k, re) in &r.removal_effects {
        assert!((re - reference[k]).abs() < 1e-12);
    }
    let s = shapley(&worked());
    let reference = shapley_reference(&worked());
    for (k, c) in &s.credits {
        assert!((c - reference[k]).abs() < 1e-10);
    }
}

#[test]
fn shapley_single_key_world() {
    let r = shapley(&journeys(&[("A", 3, 7), ("A>A>A", 2, 0)]));
    assert_eq!(r.credits, vec![("A".to_string(), 5.0)]);
    assert_eq!(shapley(&journeys(&[("A", 0, 7)])), DataDrivenResult::default());
    assert_eq!(shapley(&[]), DataDrivenResult::default());
}

#[test]
fn shapley_can_be_negative() {
    // B alone converts well, A+B converts badly: A's marginal value is negative.
    let r = shapley(&journeys(&[("B", 9, 1), ("A>B", 1, 9), ("A", 1, 9)]));
    assert!(get(&r.credits, "A") < 0.0, "{:?}", r.credits);
    assert!((total(&r.credits) - 11.0).abs() < 1e-12);
}

#[test]
fn shapley_large_sets_split_linearly() {
    let big: Vec<String> = (0..16).map(|i| format!("k{i:02}")).collect();
    let mut paths = vec![JourneyPath { keys: big.clone(), converted: true }; 3];
    paths.push(JourneyPath { keys: vec!["k00".into()], converted: true });
    paths.push(JourneyPath { keys: vec!["k00".into()], converted: false });
    let r = shapley(&paths);
    assert!((get(&r.credits, "k00") - (3.0 / 16.0 + 1.0)).abs() < 1e-12);
    assert!((get(&r.credits, "k15") - 3.0 / 16.0).abs() < 1e-12);
    // 15 keys is still exact: k00 converting alone earns more than the others.
    let mut paths: Vec<JourneyPath> = vec![JourneyPath { keys: big[..15].to_vec(), converted: true }; 3];
    paths.push(JourneyPath { keys: vec!["k00".into()], converted: true });
    let r = shapley(&paths);
    assert!(get(&r.credits, "k00") > 1.0 + 3.0 / 15.0);
    assert!((total(&r.credits) - 4.0).abs() < 1e-12);
}

#[test]
fn shapley_both_coalition_strategies_agree() {
    let paths = journeys(&[
        ("A>B>C>D", 3, 2),
        ("A>B", 2, 5),
        ("C", 1, 1),
        ("D>A", 4, 4),
        ("B>D>C", 1, 0),
        ("E", 0, 3),
        ("A>E", 1, 1),
    ]);
    let (_, index) = intern(&counted(&paths));
    let mut groups: HashMap<Vec<u32>, SetStats> = HashMap::new();
    for p in &paths {
        let mut ids: Vec<u32> = p.keys.iter().map(|k| index[k.as_str()] as u32).collect();
        ids.sort_unstable();
        ids.dedup();
        let s = groups.entry(ids).or_default();
        s.total += 1;
        s.conv += p.converted as u64;
    }
    let converting: Vec<(&Vec<u32>, SetStats)> = groups.iter().filter(|g| g.1.conv > 0).map(|(k, s)| (k, *s)).collect();
    let mut pos = vec![u32::MAX; index.len()];
    for (t, _) in &converting {
        let a = coalitions_by_subsets(t, &groups);
        let b = coalitions_by_scan(t, &converting, &mut pos);
        assert_eq!(a, b);
        assert!(pos.iter().all(|p| *p == u32::MAX));
    }
}

/// Random journeys over up to 7 keys (names chosen to sort differently from
/// their creation order).
fn arb_journeys(max_keys: usize) -> impl Strategy<Value = Vec<JourneyPath>> {
    let names = ["search", "email", "(none)", "Social", "vidéo", "a > b", "display"];
    prop::collection::vec((prop::collection::vec(0..max_keys, 1..7), any::<bool>()), 1..120).prop_map(move |v| {
        v.into_iter()
            .map(|(ks, converted)| JourneyPath { keys: ks.into_iter().map(|i| names[i].to_string()).collect(), converted })
            .collect()
    })
}

#[test]
fn shapley_with_more_keys_than_a_mask_holds_matches_reference() {
    // 200 keys: the per-path set grouping takes its vector branch.
    let paths: Vec<JourneyPath> = (0..600)
        .map(|i| JourneyPath { keys: vec![format!("k{:03}", i % 200), format!("k{:03}", (i * 7 + 1) % 200)], converted: i % 3 == 0 })
        .collect();
    let r = shapley(&paths);
    let reference = shapley_reference(&paths);
    assert_eq!(r.credits.len(), reference.len());
    for (k, c) in &r.credits {
        assert!((c - reference[k]).abs() < 1e-9, "{k}: {c} vs {}", reference[k]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn markov_matches_reference_and_conserves(paths in arb_journeys(7)) {
        let conversions = paths.iter().filter(|p| p.converted).count() as f64;
        let r = markov(&paths);
        let reference = markov_reference(&paths);
        prop_assert_eq!(r.removal_effects.len(), reference.len());
        if conversions > 0.0 {
            for (k, re) in &r.removal_effects {
                prop_assert!((re - reference[k]).abs() < 1e-12, "{}: {} vs {}", k, re, reference[k]);
                prop_assert!(*re >= 0.0 && *re <= 1.0 + 1e-12);
            }
            prop_assert!((total(&r.credits) - conversions).abs() < 1e-9 * conversions.max(1.0));
        } else {
            prop_assert!(r.credits.is_empty());
        }
    }

    #[test]
    fn shapley_matches_reference_and_conserves(paths in arb_journeys(6)) {
        let conversions = paths.iter().filter(|p| p.converted).count() as f64;
        let r = shapley(&paths);
        let reference = shapley_reference(&paths);
        let mut keys: Vec<&String> = reference.keys().collect();
        keys.sort();
        prop_assert_eq!(r.credits.iter().map(|e| &e.0).collect::<Vec<_>>(), keys);
        for (k, c) in &r.credits {
            prop_assert!((c - reference[k]).abs() < 1e-9, "{}: {} vs {}", k, c, reference[k]);
        }
        prop_assert!((total(&r.credits) - conversions).abs() < 1e-9 * conversions.max(1.0));
    }

    #[test]
    fn counted_paths_give_identical_results(paths in arb_journeys(7)) {
        let mut counts: HashMap<Vec<String>, (u64, u64)> = HashMap::new();
        for p in &paths {
            let c = counts.entry(p.keys.clone()).or_default();
            if p.converted { c.0 += 1 } else { c.1 += 1 }
        }
        // A zero-count entry (left behind by a cache that subtracted it) is no path.
        counts.entry(vec!["unused".to_string()]).or_default();
        let counted: Vec<CountedPath> = counts.iter().map(|(k, c)| (k.as_slice(), c.0, c.1)).collect();
        prop_assert_eq!(markov_counted(&counted), markov(&paths));
        prop_assert_eq!(shapley_counted(&counted), shapley(&paths));
    }
}

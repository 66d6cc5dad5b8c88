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
            out.push(JourneyPath { keys: keys.clone(), converted: i < conv, value: 1.0 });
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

/// A converted path of value `value`, or (`None`) a `(null)` path.
fn path(keys: &str, value: Option<f64>) -> JourneyPath {
    JourneyPath { keys: keys.split('>').map(str::to_string).collect(), converted: value.is_some(), value: value.unwrap_or(0.0) }
}

/// The total value of the converted paths.
fn converted_value(paths: &[JourneyPath]) -> f64 {
    paths.iter().filter(|p| p.converted).map(|p| p.value).sum()
}

/// Equal to 1e-9 relative.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Two converting key sets of different values, by hand: `A` (1 conversion
/// worth 10, 1 null), `B` (1 worth 30, 3 null), `A>B` (2 worth 4 and 6, 2 null).
fn two_sets() -> Vec<JourneyPath> {
    vec![
        path("A", Some(10.0)),
        path("A", None),
        path("B", Some(30.0)),
        path("B", None),
        path("B", None),
        path("B", None),
        path("A>B", Some(4.0)),
        path("A>B", Some(6.0)),
        path("A>B", None),
        path("A>B", None),
    ]
}

#[test]
fn shapley_values_follow_each_key_sets_own_value() {
    // v(A) = 1/2, v(B) = 1/4, v(AB) = 1/2. {A} gives its 10 to A, {B} its 30
    // to B; in {A, B}: φ_A = ½·v(A) + ½·(v(AB) − v(B)) = 3/8, φ_B = ½·v(B) +
    // ½·(v(AB) − v(A)) = 1/8, so its 2 conversions split 3:1 (1.5, 0.5) and
    // so does its own value 10 (7.5, 2.5) — not the average value 12.5 per
    // conversion of all four.
    let r = shapley(&two_sets());
    let want = [("A", 2.5, 17.5), ("B", 1.5, 32.5)];
    assert_eq!(r.credits.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    assert_eq!(r.values.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    for (k, credit, value) in want {
        assert!(close(get(&r.credits, k), credit), "{k}: {:?}", r.credits);
        assert!(close(get(&r.values, k), value), "{k}: {:?}", r.values);
    }
    assert!(close(total(&r.values), 50.0), "values sum to the conversions' value");
    // Counted paths carry the value sums: the same.
    let keys = |k: &str| k.split('>').map(str::to_string).collect::<Vec<_>>();
    let (a, b, ab) = (keys("A"), keys("B"), keys("A>B"));
    let counted: Vec<CountedPath> = vec![(&a, 1, 1, 10.0), (&b, 1, 3, 30.0), (&ab, 2, 2, 10.0)];
    assert_eq!(shapley_counted(&counted), r);
}

#[test]
fn markov_values_share_the_modelled_value_by_removal_effects() {
    // Chain: (start)→A 6, →B 4; A→B 4, A→conv 1, A→null 1; B→conv 3,
    // B→null 5. P = 0.4; without A 0.15 (RE 5/8), without B 0.1 (RE 3/4):
    // credits 4·(5/11, 6/11), values 50·(5/11, 6/11).
    let r = markov(&two_sets());
    for (k, re) in [("A", 0.625), ("B", 0.75)] {
        assert!(close(get(&r.removal_effects, k), re), "{k}: {:?}", r.removal_effects);
    }
    for (k, credit, value) in [("A", 20.0 / 11.0, 250.0 / 11.0), ("B", 24.0 / 11.0, 300.0 / 11.0)] {
        assert!(close(get(&r.credits, k), credit), "{k}: {:?}", r.credits);
        assert!(close(get(&r.values, k), value), "{k}: {:?}", r.values);
    }
    assert!(close(total(&r.values), 50.0));
    // Only the converted paths' values count (a stray value on a path that
    // never converted is none).
    let mut stray = two_sets();
    stray[1].value = 1000.0;
    assert_eq!(markov(&stray), r);
    assert_eq!(shapley(&stray), shapley(&two_sets()));
}

#[test]
fn worked_example_values_follow_the_conversions() {
    // The worked example with each path's conversions worth a different
    // amount: Markov shares the total by removal effect; Shapley gives each
    // key set's own total in proportion to its φ.
    let worth = [("A>B>C", 10, 20, 7.0), ("A>C", 5, 15, 100.0), ("B", 3, 27, 1.5), ("C>A", 4, 6, 20.0), ("B>A>B>C", 6, 4, 3.0), ("A", 2, 38, 50.0)];
    let mut paths = Vec::new();
    for (p, conv, null, value) in worth {
        paths.extend((0..conv).map(|_| path(p, Some(value))));
        paths.extend((0..null).map(|_| path(p, None)));
    }
    let total_value: f64 = worth.iter().map(|w| w.1 as f64 * w.3).sum();
    let m = markov(&paths);
    let sum_re = total(&m.removal_effects);
    for (k, re) in [("A", 0.650000), ("B", 0.558667), ("C", 0.723810)] {
        assert!((get(&m.removal_effects, k) - re).abs() < 1e-6);
        assert!(close(get(&m.values, k), total_value * get(&m.removal_effects, k) / sum_re));
    }
    assert!(close(total(&m.values), total_value));
    let s = shapley(&paths);
    let reference = shapley_reference_valued(&paths);
    for (k, v) in &s.values {
        assert!(close(*v, reference[k].1), "{k}: {v} vs {:?}", reference[k]);
    }
    assert!(close(total(&s.values), total_value));
    // Credits are as without values.
    assert_eq!(s.credits, shapley(&worked()).credits);
    assert_eq!(m.credits, markov(&worked()).credits);
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
/// Values likewise: each converting set's conversion value in proportion to its φ.
fn shapley_reference(paths: &[JourneyPath]) -> BTreeMap<String, f64> {
    shapley_reference_valued(paths).into_iter().map(|(k, (c, _))| (k, c)).collect()
}

/// `(credit, value)` per key.
fn shapley_reference_valued(paths: &[JourneyPath]) -> BTreeMap<String, (f64, f64)> {
    let mut groups: BTreeMap<BTreeSet<String>, (f64, f64, f64)> = BTreeMap::new();
    for p in paths {
        let g = groups.entry(p.keys.iter().cloned().collect()).or_default();
        g.0 += p.converted as u8 as f64;
        g.1 += 1.0;
        g.2 += if p.converted { p.value } else { 0.0 };
    }
    let v = |s: &BTreeSet<String>| groups.get(s).map(|g| g.0 / g.1).unwrap_or(0.0);
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (t, (conv, _, value)) in &groups {
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
            let e = out.entry((*p).clone()).or_default();
            e.0 += conv * (phi[i] / count) / (sum / count);
            e.1 += value * (phi[i] / count) / (sum / count);
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
    let mut paths = vec![JourneyPath { keys: big.clone(), converted: true, value: 4.0 }; 3];
    paths.push(JourneyPath { keys: vec!["k00".into()], converted: true, value: 10.0 });
    paths.push(JourneyPath { keys: vec!["k00".into()], converted: false, value: 0.0 });
    let r = shapley(&paths);
    assert!((get(&r.credits, "k00") - (3.0 / 16.0 + 1.0)).abs() < 1e-12);
    assert!((get(&r.credits, "k15") - 3.0 / 16.0).abs() < 1e-12);
    // Its value splits linearly too: 12 / 16 each, k00 also has its own 10.
    assert!((get(&r.values, "k00") - (12.0 / 16.0 + 10.0)).abs() < 1e-12);
    assert!((get(&r.values, "k15") - 12.0 / 16.0).abs() < 1e-12);
    // 15 keys is still exact: k00 converting alone earns more than the others.
    let mut paths: Vec<JourneyPath> = vec![JourneyPath { keys: big[..15].to_vec(), converted: true, value: 1.0 }; 3];
    paths.push(JourneyPath { keys: vec!["k00".into()], converted: true, value: 1.0 });
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
        groups.entry(ids).or_default().add(p.converted as u64, !p.converted as u64, 0.0);
    }
    let converting: Vec<(&Vec<u32>, &SetStats)> = groups.iter().filter(|g| g.1.conv > 0).collect();
    let mut pos = vec![u32::MAX; index.len()];
    for (t, _) in &converting {
        let a = coalitions_by_subsets(t, &groups);
        let b = coalitions_by_scan(t, &converting, &mut pos);
        assert_eq!(a, b);
        assert!(pos.iter().all(|p| *p == u32::MAX));
    }
}

/// Random journeys over up to 7 keys (names chosen to sort differently from
/// their creation order), conversions of varied values (quarters, so that any
/// grouping sums them exactly).
fn arb_journeys(max_keys: usize) -> impl Strategy<Value = Vec<JourneyPath>> {
    let names = ["search", "email", "(none)", "Social", "vidéo", "a > b", "display"];
    prop::collection::vec((prop::collection::vec(0..max_keys, 1..7), any::<bool>(), 1..2000u32), 1..120).prop_map(move |v| {
        v.into_iter()
            .map(|(ks, converted, q)| JourneyPath { keys: ks.into_iter().map(|i| names[i].to_string()).collect(), converted, value: q as f64 / 4.0 })
            .collect()
    })
}

#[test]
fn shapley_with_more_keys_than_a_mask_holds_matches_reference() {
    // 200 keys: the per-path set grouping takes its vector branch.
    let paths: Vec<JourneyPath> = (0..600)
        .map(|i| JourneyPath { keys: vec![format!("k{:03}", i % 200), format!("k{:03}", (i * 7 + 1) % 200)], converted: i % 3 == 0, value: (i % 7) as f64 })
        .collect();
    let r = shapley(&paths);
    let reference = shapley_reference_valued(&paths);
    assert_eq!(r.credits.len(), reference.len());
    for ((k, c), (_, v)) in r.credits.iter().zip(&r.values) {
        assert!((c - reference[k].0).abs() < 1e-9, "{k}: {c} vs {:?}", reference[k]);
        assert!((v - reference[k].1).abs() < 1e-9, "{k}: {v} vs {:?}", reference[k]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn markov_matches_reference_and_conserves(paths in arb_journeys(7)) {
        let conversions = paths.iter().filter(|p| p.converted).count() as f64;
        let value = converted_value(&paths);
        let r = markov(&paths);
        let reference = markov_reference(&paths);
        prop_assert_eq!(r.removal_effects.len(), reference.len());
        if conversions > 0.0 {
            for (k, re) in &r.removal_effects {
                prop_assert!((re - reference[k]).abs() < 1e-12, "{}: {} vs {}", k, re, reference[k]);
                prop_assert!(*re >= 0.0 && *re <= 1.0 + 1e-12);
            }
            prop_assert!((total(&r.credits) - conversions).abs() < 1e-9 * conversions.max(1.0));
            // Values: the conversions' total value in proportion to the removal effects.
            let sum_re = total(&r.removal_effects);
            prop_assert_eq!(r.values.len(), r.credits.len());
            for ((k, c), (vk, v)) in r.credits.iter().zip(&r.values) {
                prop_assert_eq!(k, vk);
                prop_assert!(close(*v, value * reference[k] / sum_re), "{}: {} vs {}", k, v, value * reference[k] / sum_re);
                prop_assert!(close(*v, value * c / conversions), "{}: value {} credit {}", k, v, c);
            }
            prop_assert!((total(&r.values) - value).abs() < 1e-9 * value);
        } else {
            prop_assert!(r.credits.is_empty() && r.values.is_empty());
        }
    }

    #[test]
    fn shapley_matches_reference_and_conserves(paths in arb_journeys(6)) {
        let conversions = paths.iter().filter(|p| p.converted).count() as f64;
        let value = converted_value(&paths);
        let r = shapley(&paths);
        let reference = shapley_reference_valued(&paths);
        let mut keys: Vec<&String> = reference.keys().collect();
        keys.sort();
        prop_assert_eq!(r.credits.iter().map(|e| &e.0).collect::<Vec<_>>(), keys.clone());
        prop_assert_eq!(r.values.iter().map(|e| &e.0).collect::<Vec<_>>(), keys);
        for ((k, c), (_, v)) in r.credits.iter().zip(&r.values) {
            prop_assert!((c - reference[k].0).abs() < 1e-9, "{}: {} vs {:?}", k, c, reference[k]);
            prop_assert!((v - reference[k].1).abs() < 1e-9 * value.max(1.0), "{}: {} vs {:?}", k, v, reference[k]);
        }
        prop_assert!((total(&r.credits) - conversions).abs() < 1e-9 * conversions.max(1.0));
        prop_assert!((total(&r.values) - value).abs() < 1e-9 * value.max(1.0));
    }

    #[test]
    fn counted_paths_give_identical_results(paths in arb_journeys(7)) {
        let mut counts: HashMap<Vec<String>, (u64, u64, f64)> = HashMap::new();
        for p in &paths {
            let c = counts.entry(p.keys.clone()).or_default();
            if p.converted { c.0 += 1; c.2 += p.value } else { c.1 += 1 }
        }
        // A zero-count entry (left behind by a cache that subtracted it) is no path.
        counts.entry(vec!["unused".to_string()]).or_default();
        let counted: Vec<CountedPath> = counts.iter().map(|(k, c)| (k.as_slice(), c.0, c.1, c.2)).collect();
        prop_assert_eq!(markov_counted(&counted), markov(&paths));
        prop_assert_eq!(shapley_counted(&counted), shapley(&paths));
    }
}

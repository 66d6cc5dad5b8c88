//! Tests of report rows: ordering, zero-drop and order-independent exact sums.

use super::*;
use proptest::prelude::*;

fn keys(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.key.as_str()).collect()
}

#[test]
fn rows_sort_by_credit_then_code_point() {
    let mut acc = Accumulator::new();
    acc.add("search", 1.0, 10.0);
    acc.add("email", 2.0, 5.0);
    acc.add("social", 1.0, 1.0);
    acc.add("Zeta", 1.0, 0.0);
    acc.add("élan", 1.0, 0.0);
    acc.add("(direct)", 1.0, 0.0);
    acc.add("email", 0.5, 1.0);
    let rows = acc.into_rows();
    assert_eq!(keys(&rows), vec!["email", "(direct)", "Zeta", "search", "social", "élan"]);
    assert_eq!(rows[0], Row { key: "email".into(), credit: 2.5, value: 6.0 });
    assert_eq!(
        serde_json::to_value(&rows[0]).unwrap(),
        serde_json::json!({"key": "email", "credit": 2.5, "value": 6.0})
    );
}

#[test]
fn zero_credit_rows_are_dropped() {
    let mut acc = Accumulator::new();
    acc.add("zero", 0.0, 0.0);
    acc.add("negzero", -0.0, 0.0);
    acc.add("zero_credit_with_value", 0.0, 3.0);
    acc.add("retracted", 0.1, 7.0);
    acc.add("retracted", 0.2, 7.0);
    acc.add("retracted", -0.1, -7.0);
    acc.add("retracted", -0.2, -7.0);
    acc.add("negative", -0.5, -1.0);
    acc.add("kept", 1e-300, 0.0);
    assert_eq!(acc.len(), 6);
    let rows = acc.into_rows();
    assert_eq!(keys(&rows), vec!["kept", "negative"]);
}

#[test]
fn exact_sum_basics() {
    let mut s = ExactSum::new();
    assert_eq!(s.value(), 0.0);
    for x in [0.1; 10] {
        s.add(x);
    }
    assert_eq!(s.value(), 1.0); // plain summation gives 0.9999999999999999
    let mut big = ExactSum::new();
    for x in [1e100, 1.0, -1e100, 1e-100] {
        big.add(x);
    }
    assert_eq!(big.value(), 1.0);
    // 1 + 2^-53 + 1e-16 is past the half-way point: rounds up (plain summation gives 1.0).
    let mut h = ExactSum::new();
    for x in [1.0, 1e-16, 1.1102230246251565e-16] {
        h.add(x);
    }
    assert_eq!(h.value(), 1.0 + 2.220446049250313e-16);
    // Exact ties round half to even; a tiny third partial breaks the tie upwards.
    let half = 1.1102230246251565e-16; // 2^-53
    let sum = |xs: &[f64]| {
        let mut s = ExactSum::new();
        xs.iter().for_each(|x| s.add(*x));
        s.value()
    };
    assert_eq!(sum(&[1.0, half]), 1.0);
    assert_eq!(sum(&[1.0 + 2.0 * half, half]), 1.0 + 4.0 * half);
    assert_eq!(sum(&[1.0, half, 1e-300]), 1.0 + 2.0 * half);
    assert_eq!(sum(&[1.0, half, -1e-300]), 1.0);
    let mut inf = ExactSum::new();
    inf.add(1.0);
    inf.add(f64::INFINITY);
    assert_eq!(inf.value(), f64::INFINITY);
    inf.add(f64::NEG_INFINITY);
    assert!(inf.value().is_nan());
    let mut m = ExactSum::new();
    m.add(0.3);
    let mut other = ExactSum::new();
    other.add(-0.1);
    other.add(-0.2);
    m.merge(&other);
    assert_eq!(m.value(), -2.7755575615628914e-17); // the exact residue 0.3 - 0.1 - 0.2 = -2^-55
}

/// Exact reference: the test values are multiples of 2^-49 below 2^40 in
/// magnitude, so scaled by 2^49 they sum exactly in i128.
fn reference_sum(xs: &[f64]) -> f64 {
    let scale = (1u64 << 49) as f64;
    let total: i128 = xs.iter().map(|x| (x * scale) as i128).sum();
    total as f64 / scale
}

proptest! {
    #[test]
    fn exact_sum_is_order_independent(
        xs in prop::collection::vec((-(1i64 << 50)..(1i64 << 50), 0u32..40), 0..60),
        seed in any::<u64>(),
    ) {
        let xs: Vec<f64> = xs.iter().map(|&(m, e)| m as f64 / (1u64 << (e + 10)) as f64).collect();
        let mut a = ExactSum::new();
        for &x in &xs {
            a.add(x);
        }
        let mut shuffled = xs.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut b = ExactSum::new();
        for &x in &shuffled {
            b.add(x);
        }
        prop_assert_eq!(a.value().to_bits(), b.value().to_bits());
        prop_assert_eq!(a.value(), reference_sum(&xs));
        // Retracting everything leaves exactly zero.
        for &x in &xs {
            b.add(-x);
        }
        prop_assert_eq!(b.value().to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn rows_are_sorted_and_nonzero(
        adds in prop::collection::vec((0usize..8, -5i32..5, 0u32..100), 0..80),
    ) {
        let names = ["a", "b", "B", "é", "(direct)", "(none)", "ab", "a b"];
        let mut acc = Accumulator::new();
        for &(k, c, v) in &adds {
            acc.add(names[k], c as f64 / 4.0, v as f64);
        }
        let rows = acc.into_rows();
        for r in &rows {
            prop_assert!(r.credit != 0.0);
        }
        for w in rows.windows(2) {
            prop_assert!(w[0].credit > w[1].credit || (w[0].credit == w[1].credit && w[0].key < w[1].key));
        }
        let mut expect: std::collections::HashMap<&str, i32> = Default::default();
        for &(k, c, _) in &adds {
            *expect.entry(names[k]).or_default() += c;
        }
        prop_assert_eq!(rows.len(), expect.values().filter(|c| **c != 0).count());
    }
}

#[test]
fn float_noise_ties_sort_by_key() {
    let mut rows = vec![
        Row { key: "video".into(), credit: 0.8, value: 1.0 },
        Row { key: "display".into(), credit: 0.7999999999999999, value: 1.0 },
        Row { key: "email".into(), credit: 0.81, value: 1.0 },
    ];
    sort_rows(&mut rows);
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["email", "display", "video"]);
}

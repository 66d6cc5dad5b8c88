//! Tests of the rule-based models: the table of attribution.md on hand-made paths
//! (n = 1, 2, 3, 5) and the sum-to-one properties on random paths.

use super::*;
use proptest::prelude::*;

const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];
const IDS: [&str; 8] = ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7"];

/// A path of `(secs, channel, key)` touches with event ids `e0, e1, ...`.
fn path(spec: &[(i64, Channel, &'static str)]) -> Vec<PathTouch<'static>> {
    spec.iter()
        .enumerate()
        .map(|(i, &(s, channel, key))| PathTouch { ts: Ts::new(s, 0), channel, key, event_id: IDS[i] })
        .collect()
}

/// `n` email touches one hour apart with keys a, b, c, ...
fn simple(n: usize) -> Vec<PathTouch<'static>> {
    path(&(0..n).map(|i| (i as i64 * 3600, Channel::Email, KEYS[i % 5])).collect::<Vec<_>>())
}

fn conv() -> Ts {
    Ts::new(10 * 86400, 0)
}

fn w(model: Model, p: &[PathTouch]) -> Vec<f64> {
    weights(model, p, conv(), &ModelParams::default())
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, e) in got.iter().zip(want) {
        assert!((g - e).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

#[test]
fn names_round_trip() {
    for m in Model::ALL {
        assert_eq!(Model::parse(m.as_str()), Some(m));
        assert_eq!(m.to_string(), m.as_str());
    }
    assert_eq!(Model::parse("J_curve"), None);
    assert_eq!(Model::parse("u_shaped"), None);
    let dd: Vec<Model> = Model::ALL.into_iter().filter(|m| m.is_data_driven()).collect();
    assert_eq!(dd, vec![Model::Markov, Model::Shapley]);
    assert_eq!(ModelParams::default().half_life_secs, 604_800.0);
    assert_eq!(ModelParams::default().custom_weights, None);
}

#[test]
fn first_last_linear() {
    for n in [1, 2, 3, 5] {
        let p = simple(n);
        let mut first = vec![0.0; n];
        first[0] = 1.0;
        let mut last = vec![0.0; n];
        last[n - 1] = 1.0;
        assert_eq!(w(Model::FirstTouch, &p), first);
        assert_eq!(w(Model::LastTouch, &p), last);
        assert_close(&w(Model::Linear, &p), &vec![1.0 / n as f64; n]);
    }
}

#[test]
fn shaped_models_table() {
    type Case = (Model, [f64; 2], [f64; 3], [f64; 5]);
    let cases: [Case; 3] = [
        (Model::PositionBased, [0.5, 0.5], [0.4, 0.2, 0.4], [0.4, 0.2 / 3.0, 0.2 / 3.0, 0.2 / 3.0, 0.4]),
        (Model::JCurve, [0.25, 0.75], [0.2, 0.2, 0.6], [0.2, 0.2 / 3.0, 0.2 / 3.0, 0.2 / 3.0, 0.6]),
        (Model::InverseJ, [0.75, 0.25], [0.6, 0.2, 0.2], [0.6, 0.2 / 3.0, 0.2 / 3.0, 0.2 / 3.0, 0.2]),
    ];
    for (m, two, three, five) in cases {
        assert_eq!(w(m, &simple(1)), vec![1.0], "{m}");
        assert_close(&w(m, &simple(2)), &two);
        assert_close(&w(m, &simple(3)), &three);
        assert_close(&w(m, &simple(5)), &five);
    }
}

#[test]
fn time_decay_halves_per_half_life() {
    let day = 86400;
    // Touches 14, 7 and 0 days before the conversion: raw 1/4, 1/2, 1.
    let c = Ts::new(100 * day, 0);
    let p = path(&[(86 * day, Channel::Email, "a"), (93 * day, Channel::Social, "b"), (100 * day, Channel::Search, "c")]);
    let got = weights(Model::TimeDecay, &p, c, &ModelParams::default());
    assert_close(&got, &[0.25 / 1.75, 0.5 / 1.75, 1.0 / 1.75]);
    // n = 1 and a custom half-life (1 hour).
    assert_eq!(weights(Model::TimeDecay, &p[..1], c, &ModelParams::default()), vec![1.0]);
    let hour = ModelParams { half_life_secs: 3600.0, ..ModelParams::default() };
    let p2 = path(&[(0, Channel::Email, "a"), (3600, Channel::Email, "b")]);
    assert_close(&weights(Model::TimeDecay, &p2, Ts::new(7200, 0), &hour), &[1.0 / 3.0, 2.0 / 3.0]);
}

#[test]
fn time_decay_ties_share_equally() {
    let p = path(&[
        (0, Channel::Email, "a"),
        (0, Channel::Social, "b"),
        (3600, Channel::Search, "c"),
        (3600, Channel::Search, "d"),
        (3600, Channel::Video, "e"),
    ]);
    let hour = ModelParams { half_life_secs: 3600.0, ..ModelParams::default() };
    let got = weights(Model::TimeDecay, &p, Ts::new(3600, 0), &hour);
    // raw 0.5, 0.5, 1, 1, 1 → sum 4
    assert_close(&got, &[0.125, 0.125, 0.25, 0.25, 0.25]);
}

#[test]
fn time_decay_never_underflows() {
    // Touches years before the conversion with a one-second half-life: the raw
    // 2^-x underflows, the latest-relative form does not.
    let p = path(&[(0, Channel::Email, "a"), (1, Channel::Email, "b"), (2, Channel::Email, "c")]);
    let tiny = ModelParams { half_life_secs: 1.0, ..ModelParams::default() };
    let got = weights(Model::TimeDecay, &p, Ts::new(100_000_000, 0), &tiny);
    assert_close(&got, &[1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0]);
    // Sub-second precision.
    let p = vec![
        PathTouch { ts: Ts::new(5, 0), channel: Channel::Email, key: "a", event_id: "x" },
        PathTouch { ts: Ts::new(5, 500_000_000), channel: Channel::Email, key: "b", event_id: "y" },
    ];
    let half = ModelParams { half_life_secs: 0.5, ..ModelParams::default() };
    assert_close(&weights(Model::TimeDecay, &p, Ts::new(6, 0), &half), &[1.0 / 3.0, 2.0 / 3.0]);
    // Limits: h = 0 → latest touches only; h = ∞ → linear.
    let zero = ModelParams { half_life_secs: 0.0, ..ModelParams::default() };
    let p = path(&[(0, Channel::Email, "a"), (9, Channel::Email, "b"), (9, Channel::Email, "c")]);
    assert_close(&weights(Model::TimeDecay, &p, Ts::new(9, 0), &zero), &[0.0, 0.5, 0.5]);
    let inf = ModelParams { half_life_secs: f64::INFINITY, ..ModelParams::default() };
    assert_close(&weights(Model::TimeDecay, &p, Ts::new(9, 0), &inf), &[1.0 / 3.0; 3]);
}

#[test]
fn last_non_direct() {
    let p = path(&[
        (0, Channel::Email, "email"),
        (1, Channel::Search, "search"),
        (2, Channel::Direct, "direct"),
        (3, Channel::Direct, "direct"),
    ]);
    assert_eq!(w(Model::LastNonDirect, &p), vec![0.0, 1.0, 0.0, 0.0]);
    let all_direct = path(&[(0, Channel::Direct, "x"), (1, Channel::Direct, "y"), (2, Channel::Direct, "z")]);
    assert_eq!(w(Model::LastNonDirect, &all_direct), vec![0.0, 0.0, 1.0]);
    assert_eq!(w(Model::LastNonDirect, &all_direct[..1]), vec![1.0]);
    let ends_non_direct = path(&[(0, Channel::Direct, "d"), (1, Channel::Social, "s")]);
    assert_eq!(w(Model::LastNonDirect, &ends_non_direct), vec![0.0, 1.0]);
}

fn custom_params(f: f64, m: f64, l: f64) -> ModelParams {
    ModelParams { custom_weights: Some([f, m, l]), ..ModelParams::default() }
}

#[test]
fn custom_weights_table() {
    let p = custom_params(30.0, 40.0, 30.0);
    let cw = |n: usize, p: &ModelParams| weights(Model::Custom, &simple(n), conv(), p);
    assert_eq!(cw(1, &p), vec![1.0]);
    assert_close(&cw(2, &p), &[0.5, 0.5]);
    assert_close(&cw(3, &p), &[0.3, 0.4, 0.3]);
    assert_close(&cw(5, &p), &[0.3, 0.4 / 3.0, 0.4 / 3.0, 0.4 / 3.0, 0.3]);
    let skew = custom_params(1.0, 2.0, 3.0);
    assert_close(&cw(2, &skew), &[0.25, 0.75]);
    assert_close(&cw(3, &skew), &[1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0]);
    // Only M: n = 2 splits evenly (F + L = 0), n ≥ 3 puts all on the middle.
    let only_m = custom_params(0.0, 5.0, 0.0);
    assert_close(&cw(2, &only_m), &[0.5, 0.5]);
    assert_close(&cw(3, &only_m), &[0.0, 1.0, 0.0]);
    // M = 0: the middle gets nothing.
    let no_m = custom_params(1.0, 0.0, 1.0);
    assert_close(&cw(5, &no_m), &[0.5, 0.0, 0.0, 0.0, 0.5]);
    // No (or unusable) weights: no weights at all — the query layer rejects first.
    assert!(cw(3, &ModelParams::default()).is_empty());
    assert!(cw(3, &custom_params(-1.0, 1.0, 1.0)).is_empty());
    assert!(cw(3, &custom_params(0.0, 0.0, 0.0)).is_empty());
    assert!(cw(3, &custom_params(f64::NAN, 1.0, 1.0)).is_empty());
    assert!(credit_by_key(Model::Custom, &simple(3), conv(), &ModelParams::default()).is_empty());
    // ... but an empty path is still `(direct)`.
    assert_eq!(credit_by_key(Model::Custom, &[], conv(), &ModelParams::default()), vec![(DIRECT_KEY, 1.0)]);
}

#[test]
fn parse_custom_weights_accepts_and_rejects() {
    assert_eq!(parse_custom_weights("30,40,30"), Ok([30.0, 40.0, 30.0]));
    assert_eq!(parse_custom_weights(" 0.2, 0.6 ,0.2 "), Ok([0.2, 0.6, 0.2]));
    assert_eq!(parse_custom_weights("weights=1,0,1"), Ok([1.0, 0.0, 1.0]));
    assert_eq!(parse_custom_weights("1e1,0,-0"), Ok([10.0, 0.0, 0.0]));
    assert!(parse_custom_weights("-0,0,1").unwrap()[0].is_sign_positive());
    let err = |s: &str| parse_custom_weights(s).unwrap_err();
    assert!(err("30,40").contains("three"), "{}", err("30,40"));
    assert!(err("1,2,3,4").contains("three"));
    assert!(err("").contains("three"));
    assert!(err("1,x,3").contains("middle") && err("1,x,3").contains("not a number"));
    assert!(err("1,,3").contains("not a number"));
    assert!(err("inf,1,1").contains("not finite"));
    assert!(err("1,1,NaN").contains("last") && err("1,1,NaN").contains("not finite"));
    assert!(err("-1,1,1").contains("first") && err("-1,1,1").contains("negative"));
    assert!(err("0,0,0").contains("sum to 0"));
    assert!(err("1e308,1e308,1e308").contains("not finite"));
}

#[test]
fn data_driven_and_participation_have_no_weights() {
    for m in [Model::Participation, Model::Markov, Model::Shapley] {
        assert!(w(m, &simple(3)).is_empty(), "{m}");
    }
    assert!(credit_by_key(Model::Markov, &simple(2), conv(), &ModelParams::default()).is_empty());
}

#[test]
fn empty_path_is_direct_for_every_model() {
    let p = custom_params(1.0, 1.0, 1.0);
    for m in Model::ALL {
        assert!(weights(m, &[], conv(), &p).is_empty());
        assert_eq!(credit_by_key(m, &[], conv(), &p), vec![(DIRECT_KEY, 1.0)], "{m}");
    }
}

#[test]
fn credit_merges_keys_in_first_appearance_order() {
    let p = path(&[
        (0, Channel::Email, "email"),
        (1, Channel::Search, "search"),
        (2, Channel::Email, "email"),
        (3, Channel::Social, "social"),
        (4, Channel::Search, "search"),
    ]);
    let d = ModelParams::default();
    let lin = credit_by_key(Model::Linear, &p, conv(), &d);
    assert_eq!(lin.iter().map(|e| e.0).collect::<Vec<_>>(), vec!["email", "search", "social"]);
    assert_close(&lin.iter().map(|e| e.1).collect::<Vec<_>>(), &[0.4, 0.4, 0.2]);
    let pos = credit_by_key(Model::PositionBased, &p, conv(), &d);
    assert_close(&pos.iter().map(|e| e.1).collect::<Vec<_>>(), &[0.4 + 0.2 / 3.0, 0.4 + 0.2 / 3.0, 0.2 / 3.0]);
    // Zero-weight keys stay in with 0 (the report drops them).
    assert_eq!(credit_by_key(Model::FirstTouch, &p, conv(), &d), vec![("email", 1.0), ("search", 0.0), ("social", 0.0)]);
    assert_eq!(
        credit_by_key(Model::Participation, &p, conv(), &d),
        vec![("email", 1.0), ("search", 1.0), ("social", 1.0)]
    );
}

#[test]
fn long_paths_merge_through_the_index() {
    let keys: Vec<String> = (0..100).map(|i| format!("k{}", i % 40)).collect();
    let p: Vec<PathTouch> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| PathTouch { ts: Ts::new(i as i64, 0), channel: Channel::Other, key: k, event_id: "e" })
        .collect();
    let lin = credit_by_key(Model::Linear, &p, Ts::new(100, 0), &ModelParams::default());
    assert_eq!(lin.len(), 40);
    assert_eq!(lin[0].0, "k0");
    assert_eq!(lin[39].0, "k39");
    assert!((lin[0].1 - 0.03).abs() < 1e-12 && (lin[39].1 - 0.02).abs() < 1e-12);
    assert_eq!(credit_by_key(Model::Participation, &p, Ts::new(100, 0), &ModelParams::default()).len(), 40);
}

fn arb_channel() -> impl Strategy<Value = Channel> {
    prop::sample::select(Channel::ALL.to_vec())
}

/// Random sorted paths of up to 40 touches over a few keys, with ties in time.
fn arb_path() -> impl Strategy<Value = Vec<(i64, u32, Channel, usize)>> {
    prop::collection::vec((0i64..40 * 86400, 0u32..3, arb_channel(), 0usize..5), 1..40).prop_map(|mut v| {
        v.sort();
        v
    })
}

fn arb_params() -> impl Strategy<Value = ModelParams> {
    (
        prop_oneof![Just(604_800.0), 1.0f64..1e7, Just(1e-3)],
        (0.0f64..100.0, 0.0f64..100.0, 0.0f64..100.0),
    )
        .prop_filter("custom weights must have a positive sum", |(_, (f, m, l))| f + m + l > 0.0)
        .prop_map(|(h, (f, m, l))| ModelParams { half_life_secs: h, custom_weights: Some([f, m, l]) })
}

fn to_touches(v: &[(i64, u32, Channel, usize)]) -> Vec<PathTouch<'static>> {
    v.iter()
        .map(|&(s, ns, channel, k)| PathTouch { ts: Ts::new(s, ns * 100_000_000), channel, key: KEYS[k], event_id: "e" })
        .collect()
}

proptest! {
    #[test]
    fn weights_are_a_distribution(v in arb_path(), params in arb_params(), lag in 0i64..86400 * 30) {
        let p = to_touches(&v);
        let c = Ts::new(v.last().unwrap().0 + lag, 0);
        for m in Model::ALL {
            if m == Model::Participation || m.is_data_driven() {
                continue;
            }
            let w = weights(m, &p, c, &params);
            prop_assert_eq!(w.len(), p.len());
            prop_assert!(w.iter().all(|x| *x >= 0.0 && x.is_finite()), "{} {:?}", m, w);
            let s: f64 = w.iter().sum();
            prop_assert!((s - 1.0).abs() < 1e-12, "{} sums to {}", m, s);
            let by_key = credit_by_key(m, &p, c, &params);
            let s: f64 = by_key.iter().map(|e| e.1).sum();
            prop_assert!((s - 1.0).abs() < 1e-12, "{} credit sums to {}", m, s);
            let mut keys: Vec<&str> = by_key.iter().map(|e| e.0).collect();
            keys.dedup();
            prop_assert_eq!(keys.len(), by_key.len());
        }
    }

    #[test]
    fn participation_counts_distinct_keys(v in arb_path()) {
        let p = to_touches(&v);
        let mut distinct: Vec<&str> = p.iter().map(|t| t.key).collect();
        distinct.sort();
        distinct.dedup();
        let got = credit_by_key(Model::Participation, &p, Ts::new(50 * 86400, 0), &ModelParams::default());
        prop_assert_eq!(got.len(), distinct.len());
        prop_assert!(got.iter().all(|e| e.1 == 1.0));
        prop_assert_eq!(got.iter().map(|e| e.1).sum::<f64>(), distinct.len() as f64);
    }

    #[test]
    fn time_decay_is_monotone_in_time(v in arb_path(), h in 1.0f64..1e7) {
        let p = to_touches(&v);
        let params = ModelParams { half_life_secs: h, custom_weights: None };
        let w = weights(Model::TimeDecay, &p, Ts::new(50 * 86400, 0), &params);
        for i in 1..p.len() {
            prop_assert!(w[i - 1] <= w[i]);
            if p[i - 1].ts == p[i].ts {
                prop_assert_eq!(w[i - 1], w[i]);
            }
        }
    }
}

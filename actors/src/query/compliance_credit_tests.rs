//! The credit split: a hand-made path, and properties over random paths and
//! rule models (every conversion's credit is in exactly one verdict, and the
//! breakdowns add up to the totals).

use super::*;
use crate::domain::{Channel, Ts};
use proptest::prelude::*;

const VERDICTS: [Verdict; 4] = [Verdict::Untracked, Verdict::Compliant, Verdict::UnknownId, Verdict::OffTaxonomy];

fn classes() -> Vec<TouchClass> {
    let mut out = Vec::new();
    for v in VERDICTS {
        for sm in ["google / cpc", "newsletter / email"] {
            for campaign in ["CMP-1", "(none)"] {
                out.push(TouchClass { verdict: v, source_medium: sm.into(), campaign: campaign.into() });
            }
        }
    }
    out
}

fn conv(value: f64, touches: &[(usize, i64)]) -> ConversionPath {
    ConversionPath {
        person: 1,
        ts: Ts::new(10_000, 0),
        value,
        touches: touches.iter().enumerate().map(|(i, (class, at))| (Ts::new(*at, 0), Channel::Email, class.to_string(), format!("e{i}"))).collect(),
        late: false,
    }
}

fn index(classes: &[TouchClass], v: Verdict, sm: &str) -> usize {
    classes.iter().position(|c| c.verdict == v && c.source_medium == sm && c.campaign == "CMP-1").unwrap()
}

#[test]
fn a_linear_path_of_three_verdicts_and_a_direct_conversion() {
    let cl = classes();
    let (ok, unknown, off) = (index(&cl, Verdict::Compliant, "google / cpc"), index(&cl, Verdict::UnknownId, "newsletter / email"), index(&cl, Verdict::OffTaxonomy, "google / cpc"));
    let s = split(Model::Linear, &ModelParams::default(), &[conv(30.0, &[(ok, 1), (unknown, 2), (off, 3)]), conv(5.0, &[])], &cl);
    assert_eq!((s.conversions, s.conversion_value), (2, 35.0));
    assert_eq!(s.direct, Credit { credit: 1.0, value: 5.0 });
    assert_eq!(s.untracked, Credit::default());
    let third = Credit { credit: 1.0 / 3.0, value: 10.0 };
    assert_eq!((s.totals.compliant, s.totals.unknown_id, s.totals.off_taxonomy), (third, third, third));
    assert_eq!(s.totals.compliant_share, Some(1.0 / 3.0));
    let google = &s.by_source_medium["google / cpc"];
    assert_eq!((google.compliant, google.unknown_id, google.off_taxonomy, google.compliant_share), (third, Credit::default(), third, Some(0.5)));
    assert_eq!(s.by_source_medium["newsletter / email"].unknown_id_share, Some(1.0));
    assert_eq!(s.by_campaign.keys().collect::<Vec<_>>(), ["CMP-1"]);
}

#[test]
fn no_conversion_no_share() {
    let s = split(Model::Linear, &ModelParams::default(), &[], &classes());
    assert_eq!((s.conversions, s.totals.compliant_share, s.by_source_medium.len()), (0, None, 0));
}

fn rule_model() -> impl Strategy<Value = Model> {
    prop::sample::select(vec![Model::FirstTouch, Model::LastTouch, Model::Linear, Model::TimeDecay, Model::PositionBased, Model::JCurve, Model::InverseJ, Model::LastNonDirect, Model::Custom])
}

proptest! {
    #[test]
    fn every_credit_is_in_one_verdict_and_the_breakdowns_add_up(
        model in rule_model(),
        paths in prop::collection::vec((0.0f64..1000.0, prop::collection::vec((0usize..16, 0i64..9_000), 0..6)), 0..12),
    ) {
        let cl = classes();
        let convs: Vec<ConversionPath> = paths.iter().map(|(v, t)| {
            let mut t = t.clone();
            t.sort_by_key(|x| x.1);
            conv(*v, &t)
        }).collect();
        let params = ModelParams { custom_weights: Some([3.0, 1.0, 2.0]), ..ModelParams::default() };
        let s = split(model, &params, &convs, &cl);
        let t = &s.totals;
        let credit = t.compliant.credit + t.unknown_id.credit + t.off_taxonomy.credit + s.untracked.credit + s.direct.credit;
        let value = t.compliant.value + t.unknown_id.value + t.off_taxonomy.value + s.untracked.value + s.direct.value;
        prop_assert!((credit - convs.len() as f64).abs() < 1e-9, "credit {credit} of {} conversions", convs.len());
        prop_assert!((value - s.conversion_value).abs() < 1e-6 * s.conversion_value.max(1.0));
        for by in [&s.by_source_medium, &s.by_campaign] {
            let sum = |f: fn(&CreditByVerdict) -> Credit| by.values().map(|c| f(c).credit).sum::<f64>();
            prop_assert!((sum(|c| c.compliant) - t.compliant.credit).abs() < 1e-9);
            prop_assert!((sum(|c| c.unknown_id) - t.unknown_id.credit).abs() < 1e-9);
            prop_assert!((sum(|c| c.off_taxonomy) - t.off_taxonomy.credit).abs() < 1e-9);
        }
        if let Some(share) = t.compliant_share {
            prop_assert!((share + t.unknown_id_share.unwrap() + t.off_taxonomy_share.unwrap() - 1.0).abs() < 1e-9);
        }
    }
}

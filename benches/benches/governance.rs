//! Criterion benchmarks of campaign governance (issue 20), the pure parts of
//! its endpoints (no I/O):
//!
//! - `taxonomy/validate`: one row of tracking fields checked against a
//!   template of eleven fields (`validate::validate`);
//! - `tracking_url/single`: one row validated and built into a URL
//!   (`url_builder::build`, what `POST .../registry/urls` computes);
//! - `tracking_url/bulk_1000`: 1 000 distinct rows built one after the other,
//!   one in ten refused (what `POST .../registry/urls:bulk` computes);
//! - `compliance/classify_1000`: 1 000 live touchpoints' parameters judged
//!   (`compliance::classify`, the report's per-touchpoint work);
//! - `compliance/credit_split_10000`: the credit of 10 000 conversions with
//!   paths of 1 to 8 touchpoints split by verdict under `linear`
//!   (`query::compliance_credit::split`).
//!
//! Inputs are deterministic and built outside the timed loops; throughput is
//! in elements (rows, touchpoints or conversions). Run (see BENCHMARKS.md,
//! "Campaign registry"):
//! `cargo bench -p touchline-benches --bench governance -- --warm-up-time 1 --measurement-time 3`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::collections::BTreeMap;
use touchline_actors::domain::governance::compliance::{classify, Verdict};
use touchline_actors::domain::governance::{build, validate, CompiledTaxonomy, IdType, Taxonomy};
use touchline_actors::domain::models::{Model, ModelParams};
use touchline_actors::domain::{Channel, Ts};
use touchline_actors::query::attribution::ConversionPath;
use touchline_actors::query::compliance_credit::{split, TouchClass};

/// The template of docs/registry.md (eleven fields, every kind of rule).
const TEMPLATE: &str = r#"{"version": 1, "fields": {
  "utm_source":     {"required": true, "case": "lower", "pick_list": ["google", "newsletter", "medscape"], "prohibited": ["test"]},
  "utm_medium":     {"required": true, "case": "lower", "depends_on": {"field": "utm_source", "lists": {"google": ["cpc", "display"], "newsletter": ["email"], "medscape": ["banner"]}}},
  "utm_campaign":   {"concat": {"fields": ["cm_brand", "cm_campaign_id"], "separator": "_"}},
  "utm_content":    {"registry": "content", "pattern": "CNT-[0-9]{4}-[0-9]{4}"},
  "utm_term":       {"spaces": "underscore", "min_length": 2, "max_length": 30},
  "utm_id":         {"constant": "tl"},
  "cm_brand":       {"case": "upper", "spaces": "remove"},
  "cm_campaign_id": {"registry": "campaign"},
  "cm_journey_id":  {"registry": "journey"},
  "cm_node_seq":    {"pattern": "[0-9]+"},
  "cm_variant":     {"spaces": "hyphen"}
}}"#;

fn template() -> CompiledTaxonomy {
    serde_json::from_str::<Taxonomy>(TEMPLATE).expect("template").compile().expect("compiles")
}

/// Ids `…-0000` to `…-0499` of each type are live.
fn live(kind: IdType, id: &str) -> bool {
    let n = id.rsplit('-').next().and_then(|n| n.parse::<u32>().ok()).unwrap_or(u32::MAX);
    n < 500 && matches!(kind, IdType::Content | IdType::Campaign | IdType::Journey)
}

/// Row `i`: a valid row, except every tenth (a source off the pick list).
fn row(i: usize) -> BTreeMap<String, String> {
    let (source, medium) = [("google", "cpc"), ("Newsletter", "email"), ("medscape", "banner")][i % 3];
    let source = if i % 10 == 9 { "bing" } else { source };
    [
        ("utm_source", source.to_string()),
        ("utm_medium", medium.to_string()),
        ("utm_content", format!("CNT-2024-{:04}", i % 500)),
        ("utm_term", format!("term {}", i % 7)),
        ("cm_brand", "eyl".to_string()),
        ("cm_campaign_id", format!("CMP-EYL-2024-{:03}", i % 50)),
        ("cm_journey_id", format!("CJ-EYL-2024-{:03}", i % 20)),
        ("cm_node_seq", (i % 5 + 1).to_string()),
        ("cm_variant", ["A", "B", "control arm"][i % 3].to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn bench_urls(c: &mut Criterion) {
    let t = template();
    let one = row(0);
    let destination = "https://eylea.example/hcp?ref=x";
    assert!(validate(&t, &one, &live).errors.is_empty(), "row 0 is valid");
    let mut g = c.benchmark_group("taxonomy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("validate", |b| b.iter(|| validate(&t, black_box(&one), &live)));
    g.finish();

    let mut g = c.benchmark_group("tracking_url");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single", |b| b.iter(|| build(&t, destination, black_box(&one), &live).expect("built")));
    let rows: Vec<BTreeMap<String, String>> = (0..1000).map(row).collect();
    let built = rows.iter().filter(|r| build(&t, destination, r, &live).is_ok()).count();
    assert_eq!(built, 900, "one row in ten is refused");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("bulk_1000", |b| b.iter(|| rows.iter().map(|r| build(&t, destination, black_box(r), &live).is_ok() as usize).sum::<usize>()));
    g.finish();
}

fn bench_compliance(c: &mut Criterion) {
    let t = template();
    let exists = |kind: IdType, id: &str| live(kind, id) || id.ends_with("-0999");
    // Live traffic: built URLs' values, some with an unknown id, some off-taxonomy.
    let params: Vec<Vec<(String, String)>> = (0..1000)
        .map(|i| {
            let mut r = row(i);
            match i % 4 {
                0 => drop(r.insert("utm_content".into(), "CNT-2024-7777".into())),
                1 => drop(r.insert("utm_source".into(), "Google".into())),
                _ => {}
            }
            r.into_iter().collect()
        })
        .collect();
    let verdicts: Vec<Verdict> = params.iter().map(|p| classify(Some(&t), p, &exists, &live).verdict).collect();
    assert!(verdicts.contains(&Verdict::UnknownId) && verdicts.contains(&Verdict::OffTaxonomy), "mixed verdicts");
    let mut g = c.benchmark_group("compliance");
    g.throughput(Throughput::Elements(params.len() as u64));
    g.bench_function("classify_1000", |b| b.iter(|| params.iter().filter(|p| classify(Some(&t), black_box(p), &exists, &live).verdict == Verdict::Compliant).count()));

    let verdict_kinds = [Verdict::Compliant, Verdict::UnknownId, Verdict::OffTaxonomy, Verdict::Untracked];
    let classes: Vec<TouchClass> = (0..200)
        .map(|i| TouchClass { verdict: verdict_kinds[i % 4], source_medium: format!("source{} / medium{}", i % 10, i % 3), campaign: format!("CMP-EYL-2024-{:03}", i % 50) })
        .collect();
    let convs: Vec<ConversionPath> = (0..10_000)
        .map(|i| ConversionPath {
            person: i as u64,
            ts: Ts::new(1_800_000_000, 0),
            value: (i % 97) as f64,
            touches: (0..i % 8 + 1).map(|j| (Ts::new(1_799_000_000 + j as i64 * 3600, 0), Channel::Email, ((i * 7 + j * 13) % classes.len()).to_string(), format!("e{i}-{j}"))).collect(),
            late: false,
        })
        .collect();
    let params = ModelParams::default();
    assert_eq!(split(Model::Linear, &params, &convs, &classes).conversions, 10_000);
    g.throughput(Throughput::Elements(convs.len() as u64));
    g.sample_size(10);
    g.bench_function("credit_split_10000", |b| b.iter(|| split(Model::Linear, &params, black_box(&convs), &classes).totals.compliant.credit));
    g.finish();
}

criterion_group!(benches, bench_urls, bench_compliance);
criterion_main!(benches);

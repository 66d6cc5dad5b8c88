//! Criterion benchmarks of the pure domain (no I/O, no actors):
//!
//! - `decode`: one record's bytes → a validated event, JSON and MessagePack;
//! - `attribution_per_conversion`: `models::credit_by_key` for every rule model
//!   on paths of 1, 5 and 20 touchpoints (one element = one conversion);
//! - `identity_union`: 10 000 links through `identity::apply_link` over a fresh
//!   `MemIdentity`, and the batch `identity::stitch` of the same links (one
//!   element = one link);
//! - `data_driven`: `datadriven::markov` and `datadriven::shapley` over 100 000
//!   journey paths (one element = one path).
//!
//! Every group reports `Throughput::Elements`, so results read as elements/s.
//! Inputs come from the seeded builders of `touchline_benches` and are built
//! outside the timed loops. Run (see BENCHMARKS.md):
//! `cargo bench -p touchline-benches -- --warm-up-time 1 --measurement-time 3`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use touchline_actors::domain::datadriven;
use touchline_actors::domain::decode::decode;
use touchline_actors::domain::identity::{apply_link, stitch, MemIdentity};
use touchline_actors::domain::models::{credit_by_key, Model, ModelParams};
use touchline_benches as data;

fn bench_decode(c: &mut Criterion) {
    let ctx = data::decode_ctx();
    let inputs = [
        ("touchpoint_json", serde_json::to_vec(&data::touchpoint_event()).expect("json")),
        ("touchpoint_msgpack", rmp_serde::to_vec_named(&data::touchpoint_event()).expect("msgpack")),
        ("conversion_json", serde_json::to_vec(&data::conversion_event()).expect("json")),
        ("conversion_msgpack", rmp_serde::to_vec_named(&data::conversion_event()).expect("msgpack")),
    ];
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in &inputs {
        decode(bytes, &ctx).unwrap_or_else(|r| panic!("{name} rejected: {r}"));
        g.bench_with_input(BenchmarkId::new(*name, format!("{}B", bytes.len())), bytes, |b, bytes| {
            b.iter(|| decode(black_box(bytes), &ctx))
        });
    }
    g.finish();
}

fn bench_attribution(c: &mut Criterion) {
    let params = ModelParams { custom_weights: Some([30.0, 40.0, 30.0]), ..ModelParams::default() };
    let models: Vec<Model> = Model::ALL.into_iter().filter(|m| !m.is_data_driven()).collect();
    let mut g = c.benchmark_group("attribution_per_conversion");
    g.throughput(Throughput::Elements(1));
    for len in [1usize, 5, 20] {
        let path = data::ConversionPath::new(len);
        let touches = path.touches();
        for &m in &models {
            assert!(!credit_by_key(m, &touches, path.conv_ts, &params).is_empty(), "{m} gave no credit");
            g.bench_with_input(BenchmarkId::new(m.as_str(), len), &touches, |b, touches| {
                b.iter(|| credit_by_key(black_box(m), black_box(touches), path.conv_ts, &params))
            });
        }
    }
    g.finish();
}

const LINKS: usize = 10_000;

fn bench_identity(c: &mut Criterion) {
    let links = data::identity_links(LINKS);
    let nodes = data::link_nodes(&links);
    let max_ids = data::MAX_IDS_PER_PERSON;
    let mut g = c.benchmark_group("identity_union");
    g.throughput(Throughput::Elements(LINKS as u64));
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function(BenchmarkId::new("apply_link_mem", LINKS), |b| {
        b.iter_batched(
            MemIdentity::default,
            |mut store| {
                for l in &links {
                    apply_link(&mut store, l, max_ids).expect("infallible");
                }
                store // dropped outside the timing
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function(BenchmarkId::new("stitch_batch", LINKS), |b| {
        b.iter(|| stitch(black_box(&nodes), black_box(&links), max_ids))
    });
    g.finish();
}

const PATHS: usize = 100_000;

fn bench_data_driven(c: &mut Criterion) {
    let paths = data::journey_paths(PATHS);
    let mut g = c.benchmark_group("data_driven");
    g.throughput(Throughput::Elements(PATHS as u64));
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function(BenchmarkId::new("markov", PATHS), |b| b.iter(|| datadriven::markov(black_box(&paths))));
    g.bench_function(BenchmarkId::new("shapley", PATHS), |b| b.iter(|| datadriven::shapley(black_box(&paths))));
    g.finish();
}

criterion_group!(benches, bench_decode, bench_attribution, bench_identity, bench_data_driven);
criterion_main!(benches);

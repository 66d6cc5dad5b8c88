//! Criterion benchmark of the collector's request mapping (issue 17.5): one
//! `/v1/collect/batch` body of 100 Segment messages (the load of `touchline
//! bench-collect`: 60 % `page` with UTM URLs, 20 % `track`, 10 % `identify`,
//! 10 % `Order Completed`) → the events' bytes, all or nothing.
//!
//! - `raw_fields`: what the node does (`collect::request::Request`: fields
//!   read from the body's raw JSON, events serialized from borrowed parts);
//! - `value_tree`: the mapping it replaced (`collect::reference`: the body
//!   parsed into a `serde_json::Value` tree, each event built as a tree, then
//!   serialized), run in the same process for the ratio.
//!
//! One element = one message. Run (see BENCHMARKS.md):
//! `cargo bench -p touchline-benches --bench collect -- --warm-up-time 1 --measurement-time 3`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use touchline_actors::domain::Ts;
use touchline_node::bench_collect::message;
use touchline_node::collect::mapping::MapContext;
use touchline_node::collect::request::Request;
use touchline_node::collect::{reference, ConversionSpec, DEFAULT_CONVERSIONS};

const MESSAGES: usize = 100;

fn bench_batch(c: &mut Criterion) {
    let body = serde_json::to_vec(&serde_json::json!({ "batch": (0..MESSAGES).map(message).collect::<Vec<_>>() })).expect("json");
    let conversion = |e: &str| DEFAULT_CONVERSIONS.contains(&e).then(ConversionSpec::default);
    let cx = MapContext { tenant: "t0", received_at: Ts::now(), conversion: &conversion, channel_rules: &[] };
    let new = Request::parse(&body).and_then(|r| r.map("batch", &cx)).expect("maps");
    let old = reference::map_request("batch", &body, &cx).expect("maps");
    assert_eq!(new.len(), MESSAGES);
    assert!(new.iter().zip(&old).all(|(n, o)| n.bytes == serde_json::to_vec(o).expect("json")), "the two mappings differ");

    let mut g = c.benchmark_group("collect_batch_100");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.bench_function("raw_fields", |b| b.iter(|| Request::parse(black_box(&body)).and_then(|r| r.map("batch", &cx)).map(|v| v.len())));
    g.bench_function("value_tree", |b| {
        b.iter(|| reference::map_request("batch", black_box(&body), &cx).map(|v| v.iter().map(|e| serde_json::to_vec(e).map_or(0, |b| b.len())).sum::<usize>()))
    });
    g.finish();
}

criterion_group!(benches, bench_batch);
criterion_main!(benches);

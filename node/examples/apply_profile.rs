//! Apply-path profile harness: the `touchline bench` dataset (seed 5, 20 tenants,
//! 4 partitions) applied through the real partition actors over a temporary
//! RocksDB, without Kafka, so instruction counts are repeatable on a busy machine:
//!
//! ```sh
//! cargo build --release -p touchline-node --example apply_profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!   $CARGO_TARGET_DIR/release/examples/apply_profile 5000
//! valgrind --tool=callgrind ... apply_profile 5000 --generate-only
//! $CARGO_TARGET_DIR/release/examples/apply_profile 5000 --digest
//! ```
//!
//! Instructions per event = (full − generate-only) ÷ records. The argument is the
//! number of persons; batches are 1000 records per partition, as in the intake.
//! With `--digest` it also prints a digest of every stored key and value but the dead-letter
//! outbox (emptied in the background): a change of the apply path that keeps
//! every answer keeps the digest.

use std::sync::Arc;
use std::time::{Duration, Instant};
use touchline_actors::actors::partition::{PartitionActor, PartitionArgs, PartitionMsg, Record};
use touchline_actors::actors::EngineConfig;
use touchline_actors::dlq::{DlqFuture, DlqRecord, DlqSink, Outbox};
use touchline_actors::domain::routing::partition_for;
use touchline_actors::status::PartitionStatus;
use touchline_node::gen::{self, DatasetSpec};
use touchline_actors::state::summary::{self, Summary};
use touchline_storage::keys::Space;
use touchline_storage::{Store, StoreOptions};

/// The node binary's allocator, so the profile matches it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Accepts every dead letter at once.
struct NullSink;

impl DlqSink for NullSink {
    fn send(&self, _record: DlqRecord) -> DlqFuture {
        Box::pin(async { Ok(()) })
    }
}

const PARTITIONS: i32 = 4;
const BATCH: usize = 1000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let persons: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let generate_only = args.iter().any(|a| a == "--generate-only");
    let spec = DatasetSpec { seed: 5, tenants: 20, persons, partitions: PARTITIONS, ..DatasetSpec::default() };
    let records = gen::generate(&spec);
    let mut per: Vec<Vec<Record>> = vec![Vec::new(); PARTITIONS as usize];
    for r in records {
        let p = r.partition.unwrap_or_else(|| partition_for(&r.key, PARTITIONS)) as usize;
        let offset = per[p].len() as i64;
        per[p].push(Record { offset, key: Some(r.key.into_bytes()), payload: Some(r.value), headers: Vec::new() });
    }
    let total: usize = per.iter().map(Vec::len).sum();
    if generate_only {
        println!("generated {total} records");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The node's default: changelog-replicated state skips the WAL (storage.replicated_wal).
    let store = Store::open(dir.path(), &StoreOptions { replicated_wal: false, ..StoreOptions::default() }).expect("open store");
    let dlq = Outbox::new(Arc::new(NullSink), store.clone(), 10_000);
    let config = Arc::new(EngineConfig::default());
    let mut actors = Vec::new();
    for p in 0..PARTITIONS {
        let args = PartitionArgs {
            partition: p,
            topic_partitions: PARTITIONS,
            store: store.clone(),
            dlq: dlq.clone(),
            config: config.clone(),
            status: Arc::new(PartitionStatus::new(p)),
            // Local state only: the harness measures the apply path itself.
            changelog: None,
            // Deliberately misrouted records are dead-lettered, as before.
            reroute: None,
            // No results topic: the apply path alone.
            results: None,
        };
        let (a, h) = ractor::Actor::spawn(None, PartitionActor, args).await.expect("spawn partition");
        actors.push((a, h));
    }
    let started = Instant::now();
    // Interleave partitions batch by batch, as the intake does.
    let mut chunks: Vec<std::vec::IntoIter<Vec<Record>>> = per
        .into_iter()
        .map(|v| v.chunks(BATCH).map(<[Record]>::to_vec).collect::<Vec<_>>().into_iter())
        .collect();
    loop {
        let mut any = false;
        for (i, c) in chunks.iter_mut().enumerate() {
            if let Some(records) = c.next() {
                any = true;
                actors[i].0.cast(PartitionMsg::Batch { records, credit: None }).expect("send batch");
            }
        }
        if !any {
            break;
        }
    }
    let mut applied = 0i64;
    for (a, _) in &actors {
        let cp = ractor::call_t!(a, PartitionMsg::Drain, 600_000).expect("drain");
        applied += cp.next_offset;
    }
    let el = started.elapsed();
    println!(
        "applied {applied} of {total} records in {:.2} s = {:.0} rec/s",
        el.as_secs_f64(),
        total as f64 / el.as_secs_f64()
    );
    if args.iter().any(|a| a == "--digest") {
        let (keys, digest) = state_digest(&store);
        println!("state: {keys} keys, digest {digest:016x}");
    }
    for (a, h) in actors {
        a.stop(None);
        let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
    }
}

/// Order-sensitive hash of every key and value outside the outbox keyspace
/// (path summaries by their content).
fn state_digest(store: &Store) -> (u64, u64) {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut n = 0u64;
    store
        .scan(&[], &[0xff, 0xff, 0xff], |k, v| {
            if k.get(2) == Some(&(Space::Summary as u8)) && !summary::is_overflow(v) {
                // A summary by what it says: its strings' numbering depends on
                // the order records arrived in, not on what they are.
                n += 1;
                h.write(k);
                let (touches, convs) = Summary::decode(v).expect("summary").content();
                for (ts, channel, keys) in touches {
                    h.write(format!("{ts:?}{channel:?}").as_bytes());
                    for key in keys {
                        h.write(key.as_bytes());
                    }
                }
                for (ts, value_bits, currency) in convs {
                    h.write(format!("{ts:?}{value_bits}{currency}").as_bytes());
                }
            } else if k.get(2) != Some(&(Space::Outbox as u8)) {
                n += 1;
                h.write(k);
                h.write(v);
            }
            true
        })
        .expect("scan");
    (n, h.finish())
}

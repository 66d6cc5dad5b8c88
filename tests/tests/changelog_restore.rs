//! Restore from the changelog against a real broker (each test body on Apache
//! Kafka and on Tansu): a changelog
//! partition holding two complete batches and an incomplete tail (a crashed
//! owner) restores to exactly the state at the last marker, the tail is
//! compensated (its keys re-published with their restored values, then a
//! marker), and a second restore — as the next owner would do — yields the same.

use std::sync::Arc;
use touchline_actors::changelog::{marker_value, SharedSink};
use touchline_cluster::changelog::{ensure_topic, ChangelogConfig, KafkaChangelog};
use touchline_cluster::restore::restore;
use touchline_storage::{Checkpoint, Store, StoreOptions};
use touchline_tests::sandbox::{Broker, BrokerKind};

fn k(p: u16, s: &str) -> Vec<u8> {
    let mut v = p.to_be_bytes().to_vec();
    v.push(b'P');
    v.extend_from_slice(s.as_bytes());
    v
}

fn cp(next: i64) -> Checkpoint {
    Checkpoint { next_offset: next, watermark_nanos: Some(1), applied_events: next as u64, changelog_next: 0 }
}

/// Every key of partition `p` with its value, checkpoint excluded.
fn state(store: &Store, p: u16) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let (s, e) = touchline_storage::keys::partition_range(p);
    store
        .scan(&s, &e, |k, v| {
            if k != Store::checkpoint_key(p).as_slice() {
                out.push((k.to_vec(), v.to_vec()));
            }
            true
        })
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_applies_complete_batches_only_and_compensates_the_tail_on_kafka() {
    restore_applies_complete_batches_only_and_compensates_the_tail(BrokerKind::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_applies_complete_batches_only_and_compensates_the_tail_on_tansu() {
    restore_applies_complete_batches_only_and_compensates_the_tail(BrokerKind::Tansu).await;
}

async fn restore_applies_complete_batches_only_and_compensates_the_tail(kind: BrokerKind) {
    // Kafka: the JVM shared with the compaction test below (other topic).
    let own;
    let broker: &Broker = match kind {
        BrokerKind::Kafka => Broker::shared_kafka().await,
        BrokerKind::Tansu => {
            own = Broker::start_kind(kind).await;
            &own
        }
    };
    let cfg = ChangelogConfig { brokers: broker.addr.clone(), kafka_props: vec![], topic: "cl-restore".into(), node_id: "t".into() };
    ensure_topic(&cfg, 2, true).await.expect("changelog topic");
    let sink: SharedSink = Arc::new(KafkaChangelog::new(&cfg).unwrap());
    let p = 1u16;
    // Batch 1: a, b. Batch 2: a changed, b deleted, c.
    sink.write(p, vec![(k(p, "a"), Some(b"1".to_vec())), (k(p, "b"), Some(b"2".to_vec()))].into(), marker_value(&cp(10)).unwrap()).await.unwrap();
    let m2 = sink.write(p, vec![(k(p, "a"), Some(b"3".to_vec())), (k(p, "b"), None), (k(p, "c"), Some(b"4".to_vec()))].into(), marker_value(&cp(20)).unwrap()).await.unwrap();
    // The crashed batch: records without their marker.
    produce_tail(&cfg, p, &[(k(p, "a"), Some(b"9")), (k(p, "d"), Some(b"9")), (k(p, "c"), None)]).await;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let r = restore(&cfg, &store, &sink, None, i32::from(p)).await.expect("restore");
    let want = vec![(k(p, "a"), b"3".to_vec()), (k(p, "c"), b"4".to_vec())];
    assert_eq!(state(&store, p), want, "state at the last marker, tail ignored");
    assert_eq!(r.source, "changelog");
    assert_eq!(r.records, 7, "two batches of 2 + 3 records, each with its marker");
    assert_eq!(r.checkpoint, Checkpoint { changelog_next: m2 + 1, ..cp(20) });
    assert_eq!(store.checkpoint(p).unwrap(), Some(r.checkpoint));

    // The next owner restores the compensated changelog from scratch: same state.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(dir2.path(), &StoreOptions::default()).unwrap();
    let r2 = restore(&cfg, &store2, &sink, None, i32::from(p)).await.expect("second restore");
    assert_eq!(state(&store2, p), want, "compensation overwrote the abandoned writes");
    assert_eq!(r2.checkpoint.next_offset, 20);
    assert!(r2.records > r.records, "the compensation batch was read too");

    // A node coming back with current local state reads nothing.
    let r3 = restore(&cfg, &store2, &sink, None, i32::from(p)).await.expect("third restore");
    assert_eq!((r3.source, r3.records), ("local", 0));
    assert_eq!(state(&store2, p), want);

    // An empty changelog partition and no local state: replay from the events topic.
    let r0 = restore(&cfg, &store2, &sink, None, 0).await.expect("empty partition");
    assert_eq!((r0.source, r0.checkpoint.next_offset), ("replay", 0));
}

/// Produces raw records to one changelog partition with no marker after them.
async fn produce_tail(cfg: &ChangelogConfig, p: u16, records: &[(Vec<u8>, Option<&[u8]>)]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = touchline_cluster::client_config(&cfg.brokers, &[]).create().unwrap();
    for (key, value) in records {
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&cfg.topic).partition(i32::from(p)).key(key.as_slice());
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        producer.send(rec, std::time::Duration::from_secs(10)).await.expect("tail record");
    }
}

/// A changelog the broker really compacted (Apache Kafka's log cleaner; Tansu
/// never compacts) still restores exactly: compaction keeps only the last
/// marker of the partition and the latest value of each key, merging many
/// batches into one gap. The topic is made with `min.compaction.lag.ms` = 0
/// (the node's topic has 1 h, which a test cannot wait for) and segments that
/// roll every 200 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_changelog_restores_to_the_last_marker_on_kafka() {
    let broker = Broker::shared_kafka().await;
    let cfg = ChangelogConfig { brokers: broker.addr.clone(), kafka_props: vec![], topic: "cl-compacted".into(), node_id: "t".into() };
    let config = [("cleanup.policy", "compact"), ("min.compaction.lag.ms", "0"), ("segment.ms", "200"), ("min.cleanable.dirty.ratio", "0.01"), ("delete.retention.ms", "100")];
    touchline_cluster::admin::ensure_topic_with_config(&cfg.brokers, &[], &cfg.topic, 2, &config).await.expect("changelog topic");
    ensure_topic(&cfg, 2, true).await.expect("the existing topic is taken");
    let sink: SharedSink = Arc::new(KafkaChangelog::new(&cfg).unwrap());
    let p = 0u16;
    // 300 batches over 12 keys: each sets three keys and deletes a fourth.
    let mut want = std::collections::BTreeMap::new();
    let mut written = 0;
    for i in 0..300u32 {
        let mut entries = Vec::new();
        for j in 0..3 {
            let (key, value) = (k(p, &format!("k{}", (i * 3 + j) % 12)), format!("v{i}-{j}").into_bytes());
            want.insert(key.clone(), value.clone());
            entries.push((key, Some(value)));
        }
        let gone = k(p, &format!("k{}", (i * 7) % 12));
        want.remove(&gone);
        entries.push((gone, None));
        written += entries.len() + 1;
        sink.write(p, entries.into(), marker_value(&cp(i64::from(i) + 1)).unwrap()).await.unwrap();
    }
    let addr = cfg.brokers.clone();
    let compacted = touchline_tests::sandbox::wait_for(std::time::Duration::from_secs(90), || {
        let (addr, topic) = (addr.clone(), cfg.topic.clone());
        async move { tokio::task::spawn_blocking(move || touchline_tests::fixtures::read_partition(&addr, &topic, 0).len() < written / 4).await.unwrap() }
    })
    .await;
    assert!(compacted, "the log cleaner did not compact the changelog in 90 s");

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let r = restore(&cfg, &store, &sink, None, i32::from(p)).await.expect("restore");
    assert_eq!(r.source, "changelog");
    assert_eq!(r.checkpoint.next_offset, 300, "the last marker's checkpoint");
    assert!((r.records as usize) < written, "read {} of {written} records: nothing was compacted", r.records);
    let want: Vec<(Vec<u8>, Vec<u8>)> = want.into_iter().collect();
    assert_eq!(state(&store, p), want, "the latest value of every live key, no deleted key");
}

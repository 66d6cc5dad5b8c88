//! `touchline_tracking_noncompliant_total{reason}` is exact with respect to
//! state (issue 20, item 5): a batch that fails before its commit and is
//! applied again, and a committed batch delivered again to a restarted
//! partition, count each noncompliant touchpoint once — the counter equals
//! the compliance report over the committed state.
//!
//! The metric is read from a `metrics-util` DebuggingRecorder installed as
//! this thread's recorder; the test runs on a current-thread runtime, so
//! every actor's task records into it (and no other test's).

use super::tests::records;
use super::*;
use crate::domain::governance::registry::{default_pattern, MintSpec, RegistryCommand, Status};
use crate::domain::governance::{IdType, Taxonomy};
use crate::domain::models::Model;
use crate::domain::routing::partition_for;
use crate::query::attribution::AttributionQuery;
use crate::query::compliance::{compliance, CreditQuery};
use crate::reroute::RerouteSink;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;
use touchline_storage::StoreOptions;

/// A re-route producer whose first `failures` sends fail (the broker away).
struct FlakySink {
    failures: AtomicU32,
    sent: Mutex<Vec<Rerouted>>,
}

impl RerouteSink for FlakySink {
    fn send(&self, r: Rerouted) -> crate::dlq::DlqFuture {
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Box::pin(async { Err("broker unreachable".to_string()) });
        }
        self.sent.lock().unwrap().push(r);
        Box::pin(async { Ok(()) })
    }
}

async fn spawn(store: &Store, status: &Arc<PartitionStatus>, sink: &Arc<FlakySink>) -> ActorRef<PartitionMsg> {
    let args = PartitionArgs {
        partition: status.partition,
        topic_partitions: 2,
        store: store.clone(),
        dlq: Outbox::new(Arc::new(super::tests::Collect::<DlqRecord>::default()), store.clone(), 100),
        config: Arc::new(EngineConfig::default()),
        status: status.clone(),
        changelog: None,
        reroute: Some(sink.clone()),
        results: None,
    };
    Actor::spawn(None, PartitionActor, args).await.unwrap().0
}

/// The counter's running totals `(unknown_id, off_taxonomy)`: a snapshot of
/// the DebuggingRecorder drains its counters, so each read adds the drained
/// values to `total`.
fn noncompliant(snapshotter: &Snapshotter, total: &std::cell::Cell<(u64, u64)>) -> (u64, u64) {
    let (mut unknown, mut off) = total.get();
    for (k, _, _, v) in snapshotter.snapshot().into_vec() {
        let (key, DebugValue::Counter(n)) = (k.key(), v) else { continue };
        if key.name() != crate::metrics::TRACKING_NONCOMPLIANT {
            continue;
        }
        match key.labels().find(|l| l.key() == "reason").map(|l| l.value().to_owned()).as_deref() {
            Some("unknown_id") => unknown += n,
            Some("off_taxonomy") => off += n,
            _ => {}
        }
    }
    total.set((unknown, off));
    (unknown, off)
}

fn touch(tenant: &str, id: &str, customer: &str, query: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event_id": id, "tenant_id": tenant, "event_type": "touchpoint_interaction",
        "timestamp": "2026-10-05T10:00:00Z", "customer_id": customer,
        "touchpoints": {"channel": "search", "interaction_type": "click", "metadata": {"url": format!("https://shop.example/?{query}")}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_applied_again_counts_its_noncompliant_touchpoints_once() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = ::metrics::set_default_local_recorder(&recorder);

    let here = 0;
    let tenant = (0..).map(|i| format!("t{i}")).find(|t| partition_for(t, 2) == here).unwrap();
    let other = (0..).map(|i| format!("t{i}")).find(|t| partition_for(t, 2) != here).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    // The tenant's registry: one campaign id and a taxonomy lower-casing the source.
    let mut txn = store.txn();
    let spec = MintSpec { kind: IdType::Campaign, brand: Some("EYL".into()), year: 2026, pattern: default_pattern(IdType::Campaign).into(), status: Status::Live, attributes: Default::default(), request_hash: "h".into() };
    let template: Taxonomy = serde_json::from_value(serde_json::json!({"version": 1, "fields": {"utm_source": {"case": "lower"}, "utm_medium": {}, "utm_content": {}, "cm_campaign_id": {"registry": "campaign"}}})).unwrap();
    let at = Ts::new(1_790_000_000, 0);
    crate::state::registry::apply(&mut txn, here as u16, &tenant, "r1", at, &RegistryCommand::Mint { mints: vec![spec], max_ids: 10 }).unwrap();
    crate::state::registry::apply(&mut txn, here as u16, &tenant, "r2", at, &RegistryCommand::Taxonomy { template, max_versions: 10 }).unwrap();
    txn.commit(None).unwrap();

    // Compliant, off-taxonomy (`Google`), two unknown ids, one untracked, and
    // one record of another partition's tenant (re-routed before the commit).
    let batch = records(
        vec![
            touch(&tenant, "a", "c1", "utm_source=google&utm_medium=cpc&cm_campaign_id=CMP-EYL-2026-001"),
            touch(&tenant, "b", "c2", "utm_source=Google&utm_medium=cpc"),
            touch(&tenant, "c", "c3", "utm_source=google&utm_medium=cpc&cm_campaign_id=CMP-EYL-2026-999"),
            touch(&tenant, "d", "c4", "utm_source=google&utm_medium=cpc&utm_content=CNT-2026-0404"),
            touch(&tenant, "e", "c5", "ref=home"),
            touch(&other, "f", "c6", "utm_source=Google"),
        ],
        0,
    );
    let status = Arc::new(PartitionStatus::new(here));
    let sink = Arc::new(FlakySink { failures: AtomicU32::new(2), sent: Mutex::new(Vec::new()) });
    let actor = spawn(&store, &status, &sink).await;
    // The first two attempts apply every event and fail before the commit;
    // the third commits.
    actor.cast(PartitionMsg::Batch { records: batch.clone(), credit: None }).unwrap();
    let cp = ractor::call!(actor, PartitionMsg::Drain).unwrap();
    assert_eq!((cp.next_offset, cp.applied_events, sink.failures.load(Ordering::SeqCst), sink.sent.lock().unwrap().len()), (6, 5, 0, 1), "committed once, after two failed attempts");
    let total = std::cell::Cell::new((0, 0));
    let counted = || noncompliant(&snapshotter, &total);
    assert_eq!(counted(), (2, 1), "each noncompliant touchpoint counted once");

    // What the committed state says, through the compliance report.
    let q = AttributionQuery { from: Ts::new(0, 0), to: Ts::new(4_000_000_000, 0), group_by: crate::domain::GroupBy::Channel, lookback_days: 30, params: Default::default(), currency: None, horizon: None };
    let rec = crate::state::registry::RegistryView::new(&store, here as u16, &tenant).current_taxonomy().unwrap().unwrap();
    let compiled = rec.template().unwrap().compile().unwrap();
    let report = compliance(&store, here as u16, &tenant, q.from, q.to, Some(&compiled), &CreditQuery { model: Model::Linear, query: &q, view: None }).unwrap();
    assert_eq!(counted(), (report.totals.unknown_id, report.totals.off_taxonomy), "the counter equals the report over the committed state");

    // A restarted partition handed the committed batch again (a redelivery
    // after a crash) counts nothing more.
    actor.stop_and_wait(None, None).await.unwrap();
    let actor = spawn(&store, &status, &sink).await;
    actor.cast(PartitionMsg::Batch { records: batch, credit: None }).unwrap();
    let cp = ractor::call!(actor, PartitionMsg::Drain).unwrap();
    assert_eq!(cp.applied_events, 5, "nothing applied twice");
    assert_eq!(counted(), (2, 1), "a redelivered batch counts nothing");
}

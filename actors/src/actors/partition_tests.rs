//! The partition actor in process, over a real RocksDB store: storage read
//! failures stall the partition instead of poisoning records (issue 15, 1),
//! misrouted records are re-routed before the commit (events.md, Transport),
//! journey actors stay within their cap however many journey ids the
//! events name (issue 15, 2). The attribution results: `results_tests.rs`.

use super::*;
use crate::dlq::{DlqFuture, DlqSink};
use crate::reroute::{RerouteSink, Rerouted, REROUTED_FROM};
use std::sync::Mutex;
use touchline_storage::StoreOptions;

/// Collects what is sent to it (the DLQ or the re-route producer).
pub(super) struct Collect<T>(Mutex<Vec<T>>);

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Collect(Mutex::new(Vec::new()))
    }
}

impl DlqSink for Collect<DlqRecord> {
    fn send(&self, r: DlqRecord) -> DlqFuture {
        self.0.lock().unwrap().push(r);
        Box::pin(async { Ok(()) })
    }
}

impl RerouteSink for Collect<Rerouted> {
    fn send(&self, r: Rerouted) -> DlqFuture {
        self.0.lock().unwrap().push(r);
        Box::pin(async { Ok(()) })
    }
}

/// A changelog that keeps what it is given, in order.
#[derive(Default)]
struct Changelog(Mutex<Vec<crate::changelog::Entries>>);

impl crate::changelog::ChangelogSink for Changelog {
    fn write(&self, _partition: u16, entries: Arc<crate::changelog::Entries>, _marker: Vec<u8>) -> crate::changelog::ChangelogFuture {
        let mut log = self.0.lock().unwrap();
        log.push(entries.as_ref().clone());
        let offset = log.iter().map(|e| e.len() as i64 + 1).sum::<i64>() - 1;
        Box::pin(async move { Ok(offset) })
    }
}

pub(super) struct Harness {
    _dir: tempfile::TempDir,
    pub(super) store: Store,
    pub(super) dlq: Arc<Collect<DlqRecord>>,
    pub(super) rerouted: Arc<Collect<Rerouted>>,
    pub(super) status: Arc<PartitionStatus>,
    pub(super) actor: ActorRef<PartitionMsg>,
}

impl Harness {
    /// Stops the partition actor and spawns it again over the same store (a
    /// node restarted; a one-partition topic) with `config`, the harness's
    /// rerouting (or none) and `results`.
    pub(super) async fn respawn(&mut self, config: EngineConfig, reroute: bool, results: Option<crate::results::publisher::Publisher>) {
        self.actor.stop_and_wait(None, None).await.unwrap();
        let args = PartitionArgs {
            partition: self.status.partition,
            topic_partitions: 1,
            store: self.store.clone(),
            dlq: Outbox::new(self.dlq.clone(), self.store.clone(), 100),
            config: Arc::new(config),
            status: self.status.clone(),
            changelog: None,
            reroute: reroute.then(|| self.rerouted.clone() as Arc<dyn crate::reroute::RerouteSink>),
            results,
        };
        self.actor = Actor::spawn(None, PartitionActor, args).await.unwrap().0;
    }
}

pub(super) async fn harness(partition: i32, partitions: i32, config: EngineConfig) -> Harness {
    harness_with(partition, partitions, config, None).await
}

async fn harness_with(partition: i32, partitions: i32, config: EngineConfig, changelog: Option<crate::changelog::SharedSink>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let dlq = Arc::new(Collect::default());
    let rerouted = Arc::new(Collect::default());
    let status = Arc::new(PartitionStatus::new(partition));
    let args = PartitionArgs {
        partition,
        topic_partitions: partitions,
        store: store.clone(),
        dlq: Outbox::new(dlq.clone(), store.clone(), 100),
        config: Arc::new(config),
        status: status.clone(),
        changelog,
        reroute: Some(rerouted.clone()),
        results: None,
    };
    let (actor, _) = Actor::spawn(None, PartitionActor, args).await.unwrap();
    Harness { _dir: dir, store, dlq, rerouted, status, actor }
}

fn touch(tenant: &str, id: &str, customer: &str, journey: &str) -> Vec<u8> {
    touch_at(tenant, id, customer, journey, "2026-10-05T10:00:00Z")
}

pub(super) fn touch_at(tenant: &str, id: &str, customer: &str, journey: &str, ts: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event_id": id, "tenant_id": tenant, "event_type": "touchpoint_interaction",
        "timestamp": ts, "customer_id": customer, "journey_id": journey,
        "touchpoints": {"channel": "email", "interaction_type": "click"}
    }))
    .unwrap()
}

pub(super) fn records(payloads: Vec<Vec<u8>>, first: i64) -> Vec<Record> {
    payloads.into_iter().enumerate().map(|(i, p)| Record { offset: first + i as i64, key: None, payload: Some(p), headers: Vec::new() }).collect()
}

pub(super) async fn apply(h: &Harness, records: Vec<Record>) -> Checkpoint {
    h.actor.cast(PartitionMsg::Batch { records, credit: None }).unwrap();
    ractor::call!(h.actor, PartitionMsg::Drain).unwrap()
}

/// A tenant whose murmur2 partition of `partitions` is `p`.
fn tenant_on(p: i32, partitions: i32) -> String {
    (0..).map(|i| format!("t{i}")).find(|t| crate::domain::routing::partition_for(t, partitions) == p).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_failures_stall_the_partition_and_never_poison_a_valid_event() {
    let h = harness(0, 1, EngineConfig::default()).await;
    // More failing reads than the batch and the poison threshold take: before,
    // each one counted as an actor failure and the first event went to the
    // DLQ as `poison` (one failed batch, then POISON_ATTEMPTS failed replays).
    h.store.inject_read_faults(POISON_ATTEMPTS as u64 + 2);
    let evs = (0..4).map(|i| touch("acme", &format!("e{i}"), &format!("c{i}"), "J1")).collect();
    let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = {
        let (status, stalled) = (h.status.clone(), stalled.clone());
        tokio::spawn(async move {
            for _ in 0..2000 {
                if status.storage_error().is_some() {
                    stalled.store(true, Ordering::Relaxed);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let cp = apply(&h, records(evs, 0)).await;
    watch.await.unwrap();
    assert!(stalled.load(Ordering::Relaxed), "the read failure was reported as a storage stall");
    assert_eq!(h.dlq.0.lock().unwrap().len(), 0, "a storage error dead-lettered a valid event");
    assert_eq!((cp.next_offset, cp.applied_events), (4, 4), "every event applied once the reads succeed");
    assert_eq!(h.status.storage_error(), None, "the stall ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misrouted_records_are_rerouted_with_their_headers_before_the_commit() {
    let (partitions, here) = (4, 1);
    let h = harness(here, partitions, EngineConfig::default()).await;
    let (mine, other) = (tenant_on(here, partitions), tenant_on(3, partitions));
    let mut recs = records(vec![touch(&mine, "a", "c1", "J"), touch(&other, "b", "c2", "J"), b"{bad".to_vec()], 10);
    recs[1].key = Some(other.clone().into_bytes());
    recs[1].headers = vec![("h".into(), Some(b"v".to_vec()))];
    let cp = apply(&h, recs.clone()).await;
    assert_eq!((cp.next_offset, cp.applied_events), (13, 1));
    let sent = h.rerouted.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].partition, &sent[0].key, &sent[0].payload), (3, &recs[1].key, recs[1].payload.as_ref().unwrap()));
    assert_eq!(sent[0].headers, vec![("h".into(), Some(b"v".to_vec())), (REROUTED_FROM.into(), Some(b"1/11".to_vec()))]);
    // Dead letters are delivered after the commit, in the background.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.dlq.0.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dead: Vec<Reason> = h.dlq.0.lock().unwrap().iter().map(|d| d.reason).collect();
    assert_eq!(dead, [Reason::Decode], "only the undecodable record is dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_actors_stay_within_their_cap() {
    let cap = 8;
    let h = harness(0, 1, EngineConfig { journey_actor_cap: cap, ..EngineConfig::default() }).await;
    let mut offset = 0;
    for batch in 0..20 {
        let evs: Vec<Vec<u8>> = (0..10).map(|i| touch("acme", &format!("e{batch}-{i}"), "c", &format!("J{batch}-{i}"))).collect();
        let n = evs.len() as i64;
        apply(&h, records(evs, offset)).await;
        offset += n;
        let tenants = h.actor.get_cell().get_children();
        assert_eq!(tenants.len(), 1);
        // One customer actor, and journeys up to the cap (stopping is
        // asynchronous: the passivated ones are gone within a deadline).
        let live = || tenants[0].get_children().into_iter().filter(|c| c.get_status() == ractor::ActorStatus::Running).count();
        let deadline = Instant::now() + Duration::from_secs(5);
        while live() > cap + 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let children = live();
        assert!(children <= cap + 1, "batch {batch}: {children} live children over a cap of {cap} journeys");
    }
}

/// Issue 15, 2: a single batch naming ten times more new journeys and persons
/// than the caps never has more customer or journey actors alive at once than
/// the caps (work is dispatched in waves), and every touch is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_of_many_new_journeys_stays_within_the_caps() {
    let cap = 8;
    let cfg = EngineConfig { journey_actor_cap: cap, customer_actor_cap: cap, ..EngineConfig::default() };
    let (journeys, customers) = (cfg.live_journeys.clone(), cfg.live_customers.clone());
    let h = harness(0, 1, cfg).await;
    let evs: Vec<Vec<u8>> = (0..10 * cap).map(|i| touch("acme", &format!("ev{i:04}"), &format!("c{i}"), &format!("J{i}"))).collect();
    let n = evs.len() as i64;
    let cp = apply(&h, records(evs, 0)).await;
    assert_eq!((cp.next_offset, cp.applied_events), (n, n as u64));
    assert!(journeys.peak() <= cap, "{} journey actors alive at once over a cap of {cap}", journeys.peak());
    assert!(customers.peak() <= cap, "{} customer actors alive at once over a cap of {cap}", customers.peak());
    assert!(journeys.peak() > 0 && customers.peak() > 0, "the counts saw no actor");
    let touches = (0..10 * cap).filter(|i| !keys_holding(&h.store, format!("ev{i:04}").as_bytes()).is_empty()).count();
    assert_eq!(touches, 10 * cap, "every touch is in its timeline");
}

/// Keys of acme's touchpoint timeline (partition 0) that name `event_id`.
fn keys_holding(store: &Store, event_id: &[u8]) -> Vec<Vec<u8>> {
    use touchline_storage::keys::{KeyBuf, Space};
    let mut out = Vec::new();
    store
        .scan_prefix(&KeyBuf::space(0, Space::Touch).tenant("acme").into_vec(), |k, _| {
            if k.windows(event_id.len()).any(|w| w == event_id) {
                out.push(k.to_vec());
            }
            true
        })
        .unwrap();
    out
}

/// Issue 15, 4: what the retention sweep deletes reaches the changelog, so a
/// restore from it (and a standby tailing it) holds none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_sweep_goes_through_the_changelog() {
    let log = Arc::new(Changelog::default());
    let config = EngineConfig { retention: crate::domain::retention::RetentionPolicy::new(2), retention_sweep_interval: Duration::ZERO, ..EngineConfig::default() };
    let h = harness_with(0, 1, config, Some(log.clone())).await;
    apply(&h, records(vec![touch_at("acme", "old-touch", "c1", "J", "2026-10-01T10:00:00Z")], 0)).await;
    apply(&h, records(vec![touch_at("acme", "new-touch", "c1", "J", "2026-10-10T10:00:00Z")], 1)).await;
    assert!(!keys_holding(&h.store, b"old-touch").is_empty(), "stored before the sweep");
    h.actor.cast(PartitionMsg::Sweep).unwrap();
    ractor::call!(h.actor, PartitionMsg::Drain).unwrap();
    assert_eq!(keys_holding(&h.store, b"old-touch"), Vec::<Vec<u8>>::new(), "swept on the owner");

    // A new copy built from the changelog alone, in order.
    let dir = tempfile::tempdir().unwrap();
    let restored = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    for entries in log.0.lock().unwrap().iter() {
        restored.apply_entries(entries, None).unwrap();
    }
    assert!(!keys_holding(&restored, b"new-touch").is_empty(), "the restore holds the state");
    assert_eq!(keys_holding(&restored, b"old-touch"), Vec::<Vec<u8>>::new(), "the sweep's deletes reached the changelog");
}

fn cost_import(id: &str, imported_at: &str, cost: f64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "event_id": id, "tenant_id": "acme", "event_type": "cost_import", "timestamp": imported_at,
        "campaign_id": "spring", "date": "2026-10-01", "cost": cost, "currency": "USD"
    }))
    .unwrap()
}

/// Issue 17.3: the cost-day family (`B`) keeps the latest import of a day
/// whatever the arrival order, reaches the changelog (a restore holds the
/// same records), and neither the retention sweep nor an erasure touches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_days_supersede_survive_sweep_and_erasure_and_reach_the_changelog() {
    use crate::domain::costs::CostDay;
    use crate::state::key;
    let log = Arc::new(Changelog::default());
    let config = EngineConfig { retention: crate::domain::retention::RetentionPolicy::new(2), retention_sweep_interval: Duration::ZERO, ..EngineConfig::default() };
    let h = harness_with(0, 1, config, Some(log.clone())).await;
    // The later import (cost 7) arrives first; the earlier one (cost 5) must not win.
    apply(&h, records(vec![cost_import("late", "2026-10-20T00:00:00Z", 7.0), touch_at("acme", "t1", "c1", "J", "2026-10-01T10:00:00Z")], 0)).await;
    apply(&h, records(vec![cost_import("early", "2026-10-10T00:00:00Z", 5.0)], 2)).await;
    let erase = serde_json::to_vec(&serde_json::json!({"event_id": "er", "tenant_id": "acme", "event_type": "erasure_request", "timestamp": "2026-10-21T00:00:00Z", "customer_id": "c1"})).unwrap();
    apply(&h, records(vec![touch_at("acme", "t2", "c2", "J", "2026-10-09T10:00:00Z"), erase], 3)).await;
    h.actor.cast(PartitionMsg::Sweep).unwrap();
    ractor::call!(h.actor, PartitionMsg::Drain).unwrap();
    let days: Vec<CostDay> = h.store.prefix_as(&key::cost_day_prefix(0, "acme")).unwrap();
    assert_eq!(days.iter().map(|d| (d.event_id.as_str(), d.row.cost)).collect::<Vec<_>>(), [("late", 7.0)]);
    assert!(keys_holding(&h.store, b"t1").is_empty(), "t1 erased and behind the horizon (the imports moved no horizon: t2 is kept)");
    assert!(!keys_holding(&h.store, b"t2").is_empty());

    let dir = tempfile::tempdir().unwrap();
    let restored = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    for entries in log.0.lock().unwrap().iter() {
        restored.apply_entries(entries, None).unwrap();
    }
    let again: Vec<CostDay> = restored.prefix_as(&key::cost_day_prefix(0, "acme")).unwrap();
    assert_eq!(again, days, "the changelog carries the cost days");
}

//! PartitionActor: one per assigned Kafka partition. Decodes and validates each
//! record, dead-letters the rejected ones (awaiting their delivery), routes the
//! accepted ones to tenant actors, and commits the batch's state together with the
//! partition checkpoint (next offset, watermark) in one RocksDB `WriteBatch`.
//!
//! Failure protocol: if anything below fails, the batch's transaction is dropped,
//! the partition's tenant subtree is restarted, and the batch is replayed one
//! record per transaction; a record that fails [`POISON_ATTEMPTS`] times is
//! dead-lettered as `poison` and the partition moves on.
//!
//! A misrouted record (not its tenant's partition) is produced to the tenant's
//! partition and acknowledged before the batch commits ([`crate::reroute`]),
//! unless re-routing is off (`ingest.misrouted = "dlq"`).
//!
//! A storage failure (the RocksDB commit fails: disk full, I/O error) is not a
//! record's fault: the partition stalls instead — no commit, its offset and
//! checkpoint stay put, it reports the error (status, `health/ready`, metrics,
//! one log line per episode) and retries the same batch with capped backoff
//! ([`super::stall`]) until a write succeeds, then resumes by itself.

use super::tenant::{TenantActor, TenantArgs, TenantEvent, TenantMsg, TenantStats};
use super::stall::Stall;
use super::{BatchError, EngineConfig, SharedTxn, POISON_ATTEMPTS};
use crate::dlq::{DlqRecord, Outbox};
use crate::domain::decode::{decode, ValidateCtx};
use crate::domain::window::is_late;
use crate::domain::{Reason, Rejection, Ts};
use crate::metrics;
use crate::reroute::{RerouteSink, Rerouted};
use crate::status::{PartitionState, PartitionStatus};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use crate::state::retention::Sweeper;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;
use touchline_storage::{Checkpoint, Store};

/// One Kafka record as the intake hands it over.
#[derive(Clone, Debug)]
pub struct Record {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// The record's headers (kept for a re-route; empty for most records).
    pub headers: Vec<crate::reroute::Header>,
}

pub enum PartitionMsg {
    /// A batch of consecutive records; the permit is the intake's credit, released
    /// when the batch is committed (bounded in-flight batches per partition).
    Batch { records: Vec<Record>, credit: Option<OwnedSemaphorePermit> },
    /// Replies with the durable checkpoint once every earlier batch is committed.
    Drain(RpcReplyPort<Checkpoint>),
    /// One retention sweep step over this partition, committed like a batch
    /// (changelog first) so every copy of the state drops what it deletes.
    Sweep,
    /// One step of a pending results backfill (`results::backfill`),
    /// committed like a sweep step; casts the next one while more remain.
    Backfill,
    /// Rebuilds the stored probabilistic links of this partition's tenants
    /// whose settings changed since they were built (sent at start-up).
    Relink,
}

pub struct PartitionArgs {
    pub partition: i32,
    pub topic_partitions: i32,
    pub store: Store,
    pub dlq: Outbox,
    pub config: Arc<EngineConfig>,
    pub status: Arc<PartitionStatus>,
    /// Where committed batches are published first (`None`: local state only).
    pub changelog: Option<crate::changelog::SharedSink>,
    /// Where misrouted records are produced again (`None`: they are
    /// dead-lettered as `misrouted`, `ingest.misrouted = "dlq"`).
    pub reroute: Option<Arc<dyn RerouteSink>>,
    /// Where each batch's attribution results are published before its
    /// commit (`None`: `results.enabled = false`).
    pub results: Option<crate::results::publisher::Publisher>,
}

pub struct PartitionActorState {
    args: PartitionArgs,
    checkpoint: Checkpoint,
    tenants: HashMap<Arc<str>, ActorRef<TenantMsg>>,
    failures: HashMap<i64, u32>,
    poison: HashSet<i64>,
    /// The storage-failure episode in progress, if any.
    stall: Option<Stall>,
    last_end: Option<Instant>,
    sweeper: Sweeper,
    /// A `Sweep` is in the mailbox (at most one is: the ticker skips a tick
    /// while one waits behind a long batch).
    sweep_queued: Arc<AtomicBool>,
    /// With the results topic off: whether a stored results state was looked
    /// for (and deleted) since the actor started.
    results_cleared: bool,
}

pub struct PartitionActor;

/// Longest wait for a tenant actor's batch; past it the batch is retried as a
/// storage stall (a slow disk is not the records' fault), never poison.
const TENANT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug)]
enum Failure {
    /// An actor below failed: counts toward poison.
    Actor(String),
    /// Storage (read or write), a timeout, the DLQ outbox or a re-route
    /// failed: retried, never poison.
    Io(String),
}

impl Actor for PartitionActor {
    type Msg = PartitionMsg;
    type State = PartitionActorState;
    type Arguments = PartitionArgs;

    async fn pre_start(&self, me: ActorRef<PartitionMsg>, args: PartitionArgs) -> Result<PartitionActorState, ActorProcessingErr> {
        let p = args.partition as u16;
        let checkpoint = args.store.checkpoint(p).map_err(super::boxed)?.unwrap_or_default();
        // A new incarnation of the partition here: its state may have been
        // replaced while it was away, so nothing derived from it before holds.
        args.store.notify_reset(p);
        args.status.next_offset.store(checkpoint.next_offset, Ordering::Relaxed);
        args.status.set_watermark(checkpoint.watermark_nanos.map(Ts::from_nanos));
        args.status.set_state(PartitionState::Active);
        metrics::partition_progress(args.partition, checkpoint.next_offset, args.status.lag(), args.status.watermark());
        metrics::actor_started("partition");
        let resent = args.dlq.resend_pending(p).await.map_err(super::boxed)?;
        if resent > 0 {
            tracing::info!(partition = args.partition, resent, "re-sending dead letters not acknowledged before the restart");
        }
        let sweep_queued = Arc::new(AtomicBool::new(false));
        if !args.config.retention_sweep_interval.is_zero() {
            tokio::spawn(sweep_ticker(me.clone(), args.config.retention_sweep_interval, sweep_queued.clone()));
        }
        if !args.config.linking.per_tenant.is_empty() {
            // Before any batch: a tenant whose probabilistic settings changed
            // while the partition was away gets its links rebuilt now, not at
            // its next batch (queries would evaluate from the signals until then).
            me.cast(PartitionMsg::Relink).map_err(super::boxed)?;
        }
        if args.results.is_some() {
            // On assignment, restore or restart: a backfill runs if the stored
            // results fingerprint differs (or one was under way).
            me.cast(PartitionMsg::Backfill).map_err(super::boxed)?;
        }
        Ok(PartitionActorState {
            args,
            checkpoint,
            tenants: HashMap::new(),
            failures: HashMap::new(),
            poison: HashSet::new(),
            stall: None,
            last_end: None,
            sweeper: Sweeper::new(),
            sweep_queued,
            results_cleared: false,
        })
    }

    async fn post_stop(&self, _me: ActorRef<PartitionMsg>, s: &mut PartitionActorState) -> Result<(), ActorProcessingErr> {
        stop_tenants(s).await;
        metrics::actor_stopped("partition");
        Ok(())
    }

    async fn handle(&self, me: ActorRef<PartitionMsg>, msg: PartitionMsg, s: &mut PartitionActorState) -> Result<(), ActorProcessingErr> {
        match msg {
            PartitionMsg::Batch { records, credit } => {
                let started = Instant::now();
                // Strictly increasing offsets past the checkpoint: a re-delivered
                // record is never applied twice, not even within one batch.
                let mut next = s.checkpoint.next_offset;
                let records: Vec<Record> = records
                    .into_iter()
                    .filter(|r| {
                        let keep = r.offset >= next;
                        if keep {
                            next = r.offset + 1;
                        }
                        keep
                    })
                    .collect();
                if !records.is_empty() {
                    if let Err(e) = process_until_stored(&me, s, &records, &[]).await {
                        tracing::warn!(partition = s.args.partition, error = %e, "batch failed; replaying record by record");
                        replay_one_by_one(&me, s, records).await;
                    }
                }
                metrics::batch_duration(started.elapsed());
                drop(credit);
            }
            PartitionMsg::Drain(reply) => {
                let _ = reply.send(s.checkpoint);
            }
            PartitionMsg::Sweep => {
                s.sweep_queued.store(false, Ordering::Release);
                sweep_step(s).await;
            }
            PartitionMsg::Backfill => backfill_step(&me, s).await,
            PartitionMsg::Relink => relink_step(&me, s).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(&self, _me: ActorRef<PartitionMsg>, evt: SupervisionEvent, s: &mut PartitionActorState) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = evt {
            let id = cell.get_id();
            let before = s.tenants.len();
            s.tenants.retain(|_, a| a.get_id() != id);
            if s.tenants.len() < before {
                metrics::actor_restarted("tenant");
                tracing::warn!(partition = s.args.partition, error = %err, "tenant actor failed; restarted on demand");
            }
        }
        Ok(())
    }
}

/// Publishes the attribution results `txn` changes (its digests written into
/// it; `extra`: persons whose final person changed) and waits for their
/// acknowledgement: before the commit, so a crash re-applies the batch and
/// publishes the same values again. With the topic off, deletes a stored
/// results state once (so turning it on again backfills).
async fn publish_results(s: &PartitionActorState, txn: &mut touchline_storage::Txn, p: u16, extra: &crate::results::publisher::Affected) -> Result<(), String> {
    let Some(pb) = &s.args.results else {
        if !s.results_cleared {
            crate::results::backfill::clear(txn, p).map_err(|e| e.to_string())?;
        }
        return Ok(());
    };
    let out = pb.prepare(txn, p, &s.args.config, extra).map_err(|e| e.to_string())?;
    pb.send(p, out).await
}

async fn stop_tenants(s: &mut PartitionActorState) {
    for (_, t) in s.tenants.drain() {
        t.stop_and_wait(None, Some(Duration::from_secs(10))).await.ok();
    }
}

/// Applies `records` as one transaction; on success the checkpoint moves past them.
/// `touched`: tenants applied even without records here (their batch-end
/// work runs: the probabilistic links' rebuild after a settings change).
async fn process(me: &ActorRef<PartitionMsg>, s: &mut PartitionActorState, records: &[Record], touched: &[Arc<str>]) -> Result<(), Failure> {
    let p = s.args.partition;
    let t_start = Instant::now();
    let idle_ms = s.last_end.map(|e| t_start.duration_since(e).as_secs_f64() * 1e3).unwrap_or(0.0);
    let ctx = ValidateCtx { now: Ts::now(), partition: Some(p), partitions: s.args.topic_partitions };
    let mut watermark = s.checkpoint.watermark_nanos.map(Ts::from_nanos);
    let mut order: Vec<Arc<str>> = Vec::new();
    let mut groups: HashMap<Arc<str>, Vec<TenantEvent>> = HashMap::new();
    let mut dlq: Vec<DlqRecord> = Vec::new();
    let mut reroutes: Vec<Rerouted> = Vec::new();
    let (mut rejected, mut late_n) = (Vec::new(), 0u64);
    for r in records {
        let payload = r.payload.as_deref().unwrap_or(&[]);
        let res = if s.poison.contains(&r.offset) {
            Err(crate::domain::Rejection::new(Reason::Poison, format!("processing failed {POISON_ATTEMPTS} times")))
        } else {
            decode(payload, &ctx)
        };
        match res {
            Err(Rejection { reroute_to: Some(to), .. }) if s.args.reroute.is_some() => {
                reroutes.push(Rerouted::of(to, r.key.clone(), payload.to_vec(), r.headers.clone(), p, r.offset));
            }
            Err(rej) => {
                rejected.push(rej.reason);
                dlq.push(DlqRecord {
                    key: r.key.clone(),
                    payload: payload.to_vec(),
                    reason: rej.reason,
                    detail: rej.detail,
                    source_partition: p,
                    source_offset: r.offset,
                });
            }
            Ok(ev) => {
                let late = is_late(ev.ts, watermark, s.args.config.allowed_lateness_secs);
                late_n += late as u64;
                if watermark.is_none_or(|w| ev.ts > w) {
                    watermark = Some(ev.ts);
                }
                let tenant: Arc<str> = match groups.get_key_value(ev.tenant_id.as_str()) {
                    Some((k, _)) => k.clone(),
                    None => {
                        let k: Arc<str> = Arc::from(ev.tenant_id.as_str());
                        order.push(k.clone());
                        groups.insert(k.clone(), Vec::new());
                        k
                    }
                };
                groups.get_mut(&tenant).expect("group exists").push(TenantEvent { offset: r.offset, event: ev, late });
            }
        }
    }
    for t in touched {
        if !groups.contains_key(t) {
            order.push(t.clone());
            groups.insert(t.clone(), Vec::new());
        }
    }
    let t_decoded = Instant::now();
    let mut stats = TenantStats::default();
    let mut relinked = crate::results::publisher::Affected::new();
    // Tenants are independent (every key they touch is tenant-scoped): their
    // actors apply concurrently, each tenant's subtree into its own transaction,
    // so no lock is shared across tenants; the barrier merges them into one
    // batch.
    let mut calls = Vec::with_capacity(order.len());
    let mut txns = Vec::with_capacity(order.len());
    for tenant in order {
        let events = groups.remove(&tenant).unwrap_or_default();
        let actor = tenant_actor(me, s, &tenant).await?;
        let t = SharedTxn::new(s.args.store.txn());
        txns.push(t.clone());
        calls.push(async move {
            let r = actor.call(|reply| TenantMsg::Apply { events, txn: t, reply }, Some(TENANT_TIMEOUT)).await;
            (tenant, r)
        });
    }
    for (tenant, r) in futures::future::join_all(calls).await {
        match r {
            Ok(ractor::rpc::CallResult::Success(Ok(st))) => {
                stats.applied += st.applied;
                stats.duplicates += st.duplicates;
                stats.merges += st.merges;
                stats.blocked += st.blocked;
                stats.expired += st.expired;
                if !st.relinked.is_empty() {
                    let persons = relinked.entry(tenant.to_string()).or_default();
                    persons.extend(st.relinked.iter().flat_map(|r| [Some(r.person), r.before, r.after]).flatten());
                }
                stats.noncompliant.add(st.noncompliant);
            }
            Ok(ractor::rpc::CallResult::Success(Err(BatchError::Io(e)))) => return Err(Failure::Io(format!("tenant {tenant}: {e}"))),
            Ok(ractor::rpc::CallResult::Success(Err(BatchError::Actor(e)))) => return Err(Failure::Actor(e)),
            Ok(ractor::rpc::CallResult::Timeout) => return Err(Failure::Io(format!("tenant {tenant}: no answer within {} s (slow storage?)", TENANT_TIMEOUT.as_secs()))),
            other => return Err(Failure::Actor(format!("tenant {tenant}: {other:?}"))),
        }
    }
    let t_applied = Instant::now();
    let parts = txns.into_iter().map(|t| t.into_inner().ok_or_else(|| Failure::Actor("transaction still shared after the barrier".into()))).collect::<Result<Vec<_>, _>>()?;
    let mut txn = s.args.store.txn();
    txn.absorb(parts);
    s.args.dlq.stage(p as u16, &dlq).map_err(|e| Failure::Io(e.to_string()))?;
    // Re-routed records are acknowledged by the broker before the checkpoint
    // moves past them; a failure retries the batch (a repeat is a no-op there).
    let rerouted = reroutes.len() as u64;
    if let Some(sink) = s.args.reroute.as_ref().filter(|_| !reroutes.is_empty()) {
        for r in futures::future::join_all(reroutes.into_iter().map(|r| sink.send(r))).await {
            r.map_err(|e| Failure::Io(format!("re-routing a misrouted record: {e}")))?;
        }
    }
    let last = records.last().map(|r| r.offset).unwrap_or(s.checkpoint.next_offset - 1);
    let cp = Checkpoint {
        next_offset: last + 1,
        watermark_nanos: watermark.map(Ts::as_nanos),
        applied_events: s.checkpoint.applied_events + stats.applied,
        changelog_next: s.checkpoint.changelog_next,
    };
    publish_results(s, &mut txn, p as u16, &relinked).await.map_err(Failure::Io)?;
    let cp = crate::changelog::commit_batch(s.args.changelog.as_ref(), txn, p as u16, cp).await.map_err(Failure::Io)?;
    s.checkpoint = cp;
    s.results_cleared = true;
    s.last_end = Some(Instant::now());
    tracing::debug!(
        partition = p,
        records = records.len(),
        apply_ms = t_applied.duration_since(t_decoded).as_secs_f64() * 1e3,
        decode_ms = t_decoded.duration_since(t_start).as_secs_f64() * 1e3,
        idle_ms,
        commit_ms = t_applied.elapsed().as_secs_f64() * 1e3,
        "batch committed"
    );
    for d in dlq {
        s.args.dlq.deliver(p as u16, d).await;
    }
    for o in records.iter().map(|r| r.offset) {
        s.failures.remove(&o);
        s.poison.remove(&o);
    }
    // Metrics only after the commit: they describe durable effects.
    for reason in rejected {
        metrics::rejected(reason);
    }
    metrics::rerouted(rerouted);
    metrics::applied(records.len() as u64, stats.applied, stats.duplicates, late_n, stats.merges);
    metrics::merges_blocked(stats.blocked);
    metrics::retention_dropped(stats.expired);
    stats.noncompliant.record();
    s.args.status.next_offset.store(cp.next_offset, Ordering::Relaxed);
    s.args.status.set_watermark(watermark);
    metrics::partition_progress(p, cp.next_offset, s.args.status.lag(), watermark);
    Ok(())
}

/// [`process`], retrying storage failures until the batch is stored: only a
/// handler failure (which counts toward poison) is returned.
async fn process_until_stored(me: &ActorRef<PartitionMsg>, s: &mut PartitionActorState, records: &[Record], touched: &[Arc<str>]) -> Result<(), String> {
    loop {
        match process(me, s, records, touched).await {
            Ok(()) => {
                storage_recovered(s);
                return Ok(());
            }
            Err(Failure::Actor(e)) => return Err(e),
            Err(Failure::Io(e)) => {
                let p = s.args.partition;
                let delay = match &mut s.stall {
                    Some(st) => st.failed_again(e.clone()),
                    None => {
                        tracing::error!(partition = p, offset = records.first().map(|r| r.offset), error = %e, "storage write failed; partition stalled, retrying the same batch until storage recovers");
                        s.stall.insert(Stall::new(e.clone())).delay()
                    }
                };
                s.args.status.set_storage_error(Some(e));
                metrics::storage_stalled(p, true, true);
                // The transaction was dropped: children must not keep what it held.
                stop_tenants(s).await;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn storage_recovered(s: &mut PartitionActorState) {
    if let Some(st) = s.stall.take() {
        tracing::warn!(partition = s.args.partition, attempts = st.attempts, stalled_secs = st.since.elapsed().as_secs_f64(), last_error = %st.last_error, "storage writes recovered; partition resumed");
        s.args.status.set_storage_error(None);
        metrics::storage_stalled(s.args.partition, false, false);
    }
}

async fn replay_one_by_one(me: &ActorRef<PartitionMsg>, s: &mut PartitionActorState, records: Vec<Record>) {
    stop_tenants(s).await;
    for r in records {
        while let Err(e) = process_until_stored(me, s, std::slice::from_ref(&r), &[]).await {
            let n = s.failures.entry(r.offset).or_default();
            *n += 1;
            tracing::warn!(partition = s.args.partition, offset = r.offset, attempt = *n, error = %e, "record failed");
            if *n >= POISON_ATTEMPTS {
                s.poison.insert(r.offset);
            }
            stop_tenants(s).await;
        }
    }
}

async fn tenant_actor(me: &ActorRef<PartitionMsg>, s: &mut PartitionActorState, tenant: &Arc<str>) -> Result<ActorRef<TenantMsg>, Failure> {
    if let Some(a) = s.tenants.get(tenant) {
        return Ok(a.clone());
    }
    let args = TenantArgs { partition: s.args.partition as u16, tenant: tenant.clone(), config: s.args.config.clone() };
    let (a, _) = Actor::spawn_linked(None, TenantActor, args, me.get_cell()).await.map_err(|e| Failure::Actor(e.to_string()))?;
    s.tenants.insert(tenant.clone(), a.clone());
    Ok(a)
}

#[path = "partition_upkeep.rs"]
mod upkeep;
use upkeep::{backfill_step, relink_step, sweep_step, sweep_ticker};

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
#[cfg(test)]
#[path = "links_tests.rs"]
mod links_tests;
#[cfg(test)]
#[path = "results_tests.rs"]
mod results_tests;
#[cfg(test)]
#[path = "tracking_tests.rs"]
mod tracking_tests;
#[cfg(test)]
#[path = "views_tests.rs"]
mod views_tests;

//! The partition actor's upkeep between batches: the retention sweep, the
//! results backfill and the probabilistic links' rebuild after a settings
//! change. Each step is committed like a batch (changelog first, results
//! published before), with the checkpoint unchanged.

use super::*;

/// Sends `Sweep` every `period` while the actor lives, never queueing a second one.
pub(super) async fn sweep_ticker(me: ActorRef<PartitionMsg>, period: Duration, queued: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if queued.swap(true, Ordering::AcqRel) {
            continue;
        }
        if me.cast(PartitionMsg::Sweep).is_err() {
            return;
        }
    }
}

/// One bounded retention sweep step, committed with the unchanged checkpoint
/// through the changelog. A failure is counted and logged; the next tick retries.
pub(super) async fn sweep_step(s: &mut PartitionActorState) {
    if s.stall.is_some() {
        return;
    }
    let p = s.args.partition as u16;
    let mut txn = s.args.store.txn();
    let (policy, budget) = (&s.args.config.retention, s.args.config.retention_sweep_batch);
    let report = match s.sweeper.step(&mut txn, &[p], policy, budget) {
        Ok(r) => r,
        Err(e) => {
            metrics::retention_step(0, false, true);
            tracing::warn!(partition = p, error = %e, "retention sweep step failed; retrying at the next tick");
            return;
        }
    };
    if !txn.is_empty() {
        if let Err(e) = publish_results(s, &mut txn, p, &Default::default()).await {
            s.sweeper = Sweeper::new();
            metrics::retention_step(0, false, true);
            tracing::warn!(partition = p, error = %e, "retention sweep results failed; retrying at the next tick");
            return;
        }
        match crate::changelog::commit_batch(s.args.changelog.as_ref(), txn, p, s.checkpoint).await {
            Ok(cp) => s.checkpoint = cp,
            Err(e) => {
                // Its deletes are retried by a later pass (the walk restarts).
                s.sweeper = Sweeper::new();
                metrics::retention_step(0, false, true);
                tracing::warn!(partition = p, error = %e, "retention sweep commit failed; retrying at the next tick");
                return;
            }
        }
    }
    metrics::retention_step(report.deleted, report.pass_completed, false);
}

/// One step of a pending results backfill, committed through the changelog
/// with the unchanged checkpoint; the next step is cast behind the batches
/// already queued. A failure is logged and retried a second later.
pub(super) async fn backfill_step(me: &ActorRef<PartitionMsg>, s: &mut PartitionActorState) {
    let Some(pb) = s.args.results.clone() else { return };
    let p = s.args.partition as u16;
    let retry = |me: &ActorRef<PartitionMsg>| {
        let me = me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = me.cast(PartitionMsg::Backfill);
        });
    };
    if s.stall.is_some() {
        return retry(me);
    }
    let mut txn = s.args.store.txn();
    let (out, more) = match crate::results::backfill::step(&pb, &mut txn, p, &s.args.config) {
        Ok(Some(x)) => x,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "results backfill step failed; retrying");
            return retry(me);
        }
    };
    let n = out.records.len();
    if let Err(e) = pb.send(p, out).await {
        tracing::warn!(partition = p, error = %e, "results backfill step not published; retrying");
        return retry(me);
    }
    match crate::changelog::commit_batch(s.args.changelog.as_ref(), txn, p, s.checkpoint).await {
        Ok(cp) => s.checkpoint = cp,
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "results backfill commit failed; retrying");
            return retry(me);
        }
    }
    tracing::info!(partition = p, records = n, done = !more, "results backfill step");
    if more {
        let _ = me.cast(PartitionMsg::Backfill);
    }
}

/// Rebuilds, committed like a batch without records (changelog, results),
/// the stored probabilistic links of this partition's tenants whose stored
/// settings differ from the configuration (turned on, a new threshold or
/// address cap). A tenant turned off keeps its stale index until its next
/// batch deletes it; queries do not read it meanwhile.
pub(super) async fn relink_step(me: &ActorRef<PartitionMsg>, s: &mut PartitionActorState) {
    let p = s.args.partition;
    let mut stale: Vec<Arc<str>> = Vec::new();
    for (tenant, linking) in &s.args.config.linking.per_tenant {
        if crate::domain::routing::partition_for(tenant, s.args.topic_partitions) != p {
            continue;
        }
        match crate::state::problinks::settings_changed(&s.args.store, p as u16, tenant, *linking) {
            Ok(false) => {}
            Ok(true) => stale.push(Arc::from(tenant.as_str())),
            Err(e) => {
                tracing::warn!(partition = p, tenant = %tenant, error = %e, "reading the stored links' settings failed; rebuilding");
                stale.push(Arc::from(tenant.as_str()));
            }
        }
    }
    if stale.is_empty() {
        return;
    }
    tracing::info!(partition = p, tenants = ?stale, "probabilistic settings changed: rebuilding the stored links");
    if let Err(e) = process_until_stored(me, s, &[], &stale).await {
        // A handler failure: the tenant's next batch rebuilds them instead.
        tracing::warn!(partition = p, error = %e, "rebuilding the stored links failed; the next batch retries");
        stop_tenants(s).await;
    }
}

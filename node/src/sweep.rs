//! The retention sweep task: every `engine.retention_sweep_interval_ms`, one
//! bounded step (`engine.retention_sweep_batch` keys at most) of the storage
//! sweep over the partitions this node owns and has active, on the blocking
//! pool, off the ingest path. Queries never depend on it (they ignore what lies
//! behind the horizon); it only reclaims space.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use touchline_actors::domain::retention::RetentionPolicy;
use touchline_actors::state::retention::Sweeper;
use touchline_actors::status::{NodeStatus, PartitionState};
use touchline_storage::Store;

pub struct SweepConfig {
    pub policy: RetentionPolicy,
    pub interval: Duration,
    pub batch: usize,
}

/// Runs until `shutdown` flips. A failed step is counted and logged; the next one retries.
pub async fn run(store: Store, status: Arc<NodeStatus>, cfg: SweepConfig, mut shutdown: watch::Receiver<bool>) {
    let cfg = Arc::new(cfg);
    let mut sweeper = Some(Sweeper::new());
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { return },
            _ = tick.tick() => {}
        }
        let owned: Vec<u16> = status.all().iter().filter(|p| p.state() == PartitionState::Active).map(|p| p.partition as u16).collect();
        let (store, cfg, mut sw) = (store.clone(), cfg.clone(), sweeper.take().unwrap_or_default());
        let joined = tokio::task::spawn_blocking(move || {
            let r = sw.step(&store, &owned, &cfg.policy, cfg.batch);
            (sw, r)
        })
        .await;
        match joined {
            Ok((sw, Ok(r))) => {
                sweeper = Some(sw);
                touchline_actors::metrics::retention_step(r.deleted, r.pass_completed, false);
            }
            Ok((sw, Err(e))) => {
                sweeper = Some(sw);
                touchline_actors::metrics::retention_step(0, false, true);
                tracing::warn!(error = %e, "retention sweep step failed; retrying at the next tick");
            }
            Err(e) => {
                touchline_actors::metrics::retention_step(0, false, true);
                tracing::warn!(error = %e, "retention sweep step panicked; starting a new pass");
            }
        }
    }
}

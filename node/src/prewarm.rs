//! Keeps the default attribution report of every tenant this node owns warm in
//! the report cache (`storage.paths_prewarm_interval_ms`; 0, the default,
//! turns it off: a warm cache costs up to `storage.paths_cache_mb` of RSS).
//!
//! The default query (`GET .../attribution` without `from`/`to`/`group_by`/
//! `lookback_days`/`currency`) covers the last 30 days before *now*, so each
//! request has a range of its own. One cache entry per tenant serves every
//! model for that shape; re-asking it every interval slides the entry forward
//! (only the persons active in the slid-over edges are recomputed) and folds in
//! the changed persons, so a user's default query — at any model — finds an
//! entry at most one interval behind instead of building one over every person.
//!
//! Bounded: an entry that the cache's budget cannot keep is not built again and
//! again — a tenant whose prewarm built from scratch twice in a row is skipped
//! until the node restarts (raise `storage.paths_cache_mb` for such tenants).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use touchline_actors::domain::models::{Model, ModelParams};
use touchline_actors::domain::retention::RetentionPolicy;
use touchline_actors::domain::{GroupBy, Ts};
use touchline_actors::query::attribution::AttributionQuery;
use touchline_actors::query::paths_cache::PathsCache;
use touchline_actors::status::{NodeStatus, PartitionState};
use touchline_storage::Store;

pub struct PrewarmConfig {
    pub interval: Duration,
    pub default_lookback_days: i64,
    pub default_range_days: i64,
    pub policy: RetentionPolicy,
}

/// Consecutive from-scratch builds after which a tenant is no longer prewarmed.
const MAX_REBUILDS: u32 = 2;

/// The query an HTTP default attribution request makes at `now`.
pub fn default_query(now: Ts, cfg: &PrewarmConfig) -> AttributionQuery {
    AttributionQuery {
        from: now.minus_secs(cfg.default_range_days * 86_400),
        to: now,
        group_by: GroupBy::Channel,
        lookback_days: cfg.default_lookback_days,
        params: ModelParams::default(),
        currency: None,
        horizon: None,
    }
}

/// Runs until `shutdown` flips; a no-op with a zero interval.
pub async fn run(store: Store, status: Arc<NodeStatus>, paths: Arc<PathsCache>, cfg: PrewarmConfig, mut shutdown: watch::Receiver<bool>) {
    if cfg.interval.is_zero() {
        return;
    }
    let cfg = Arc::new(cfg);
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rebuilds: HashMap<(u16, String), u32> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { return },
            _ = tick.tick() => {}
        }
        let owned: Vec<u16> = status.all().iter().filter(|p| p.state() == PartitionState::Active).map(|p| p.partition as u16).collect();
        let skip: HashSet<(u16, String)> = rebuilds.iter().filter(|(_, n)| **n >= MAX_REBUILDS).map(|(k, _)| k.clone()).collect();
        let (store, paths, cfg2) = (store.clone(), paths.clone(), cfg.clone());
        let round = tokio::task::spawn_blocking(move || warm_round(&store, &paths, &cfg2, &owned, &skip)).await;
        match round {
            Ok(built) => {
                for (k, fresh) in built {
                    let n = rebuilds.entry(k.clone()).or_insert(0);
                    *n = if fresh { *n + 1 } else { 0 };
                    if *n == MAX_REBUILDS {
                        tracing::warn!(partition = k.0, tenant = %k.1, "the report cache cannot keep this tenant's default report (raise storage.paths_cache_mb); no longer prewarmed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "report prewarm round panicked; retried at the next tick"),
        }
    }
}

/// One round: asks every owned tenant's default report; returns, per tenant
/// asked, whether the answer needed a build from scratch.
fn warm_round(store: &Store, paths: &PathsCache, cfg: &PrewarmConfig, owned: &[u16], skip: &HashSet<(u16, String)>) -> Vec<((u16, String), bool)> {
    let mut out = Vec::new();
    for &p in owned {
        let tenants = match touchline_actors::state::tenant::tenants(store, p) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "report prewarm: cannot list tenants");
                continue;
            }
        };
        for t in tenants {
            let k = (p, t);
            if skip.contains(&k) {
                continue;
            }
            let mut q = default_query(Ts::now(), cfg);
            let before = paths.stats().builds.load(Ordering::Relaxed);
            let r = touchline_actors::query::horizon(store, p, &k.1, &cfg.policy).and_then(|h| {
                q.horizon = h;
                paths.report(store, p, &k.1, Model::Linear, &q)
            });
            match r {
                Ok(_) => {
                    let fresh = paths.stats().builds.load(Ordering::Relaxed) > before;
                    out.push((k, fresh));
                }
                Err(e) => tracing::warn!(partition = p, tenant = %k.1, error = %e, "report prewarm failed; retried at the next tick"),
            }
        }
    }
    out
}

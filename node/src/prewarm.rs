//! Keeps the default attribution report of every tenant this node owns warm in
//! the report cache (`storage.paths_prewarm_interval_ms`, default 10 s; 0
//! turns it off: a warm cache holds up to `storage.paths_cache_mb` of RSS
//! from the start instead of from the first queries),
//! and the shapes the report page (`/ui`) asks first: its range as the page
//! picks it from the tenant's first and last event ([`page_range`]), grouped by
//! channel (model comparison, one model over time), campaign (campaigns) and
//! journey (the journeys view's list), and the cohorts (by channel) and
//! journeys views' entries, so a page opened on a large tenant does not wait
//! for a whole sweep of its persons.
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
//! again — a tenant whose prewarm found an entry missing (built cold, the
//! cache's `cold` count) twice in a row is skipped until the node restarts
//! (raise `storage.paths_cache_mb` for such tenants). A rebuild after many
//! changes (a catch-up) does not count: the entry was kept.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use touchline_actors::domain::models::{Model, ModelParams};
use touchline_actors::domain::retention::RetentionPolicy;
use touchline_actors::domain::{GroupBy, Ts};
use touchline_actors::query::attribution::AttributionQuery;
use touchline_actors::domain::window::Granularity;
use touchline_actors::query::cohorts::CohortQuery;
use touchline_actors::query::journey::Horizons;
use touchline_actors::query::paths_cache::PathsCache;
use touchline_actors::query::QueryError;
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

/// The groupings the report page asks first over its range.
const PAGE_GROUPS: [GroupBy; 3] = [GroupBy::Channel, GroupBy::Campaign, GroupBy::Journey];

/// The longest range from the first event the page keeps; past it, the last 30 days.
const PAGE_MAX_DAYS: i64 = 92;

/// The range the report page sets for a tenant (node/ui/src/main.ts,
/// `setRange`): from the day of its first event (midnight UTC) to the day
/// after its last, or the last 30 days of that when longer than 92 days.
pub fn page_range(first: Option<Ts>, last: Option<Ts>) -> Option<(Ts, Ts)> {
    const DAY: i64 = 86_400;
    let to = Ts::new((last?.secs.div_euclid(DAY) + 1) * DAY, 0);
    let from = first.map(|f| Ts::new(f.secs.div_euclid(DAY) * DAY, 0)).filter(|f| to.secs - f.secs <= PAGE_MAX_DAYS * DAY);
    Some((from.unwrap_or(to.minus_secs(30 * DAY)), to))
}

/// The queries the report page asks first of a tenant with these first and last events.
pub fn page_queries(first: Option<Ts>, last: Option<Ts>, cfg: &PrewarmConfig) -> Vec<AttributionQuery> {
    let Some((from, to)) = page_range(first, last) else { return Vec::new() };
    PAGE_GROUPS.iter().map(|&group_by| AttributionQuery { from, to, group_by, ..default_query(to, cfg) }).collect()
}

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

/// The page's cohorts (by channel) and journeys views over `range`: their
/// cache entries depend only on the grouping, currency and lookback, so one
/// question each keeps them warm (any journey id serves).
fn warm_views(store: &Store, paths: &PathsCache, p: u16, tenant: &str, range: Option<(Ts, Ts)>, horizon: Option<Ts>, cfg: &PrewarmConfig) -> Result<(), QueryError> {
    let Some((from, to)) = range else { return Ok(()) };
    paths.cohorts(store, p, tenant, &CohortQuery { cohort: Granularity::Week, by: GroupBy::Channel, from, to, currency: None, horizon })?;
    let horizons = Horizons { retention: horizon, window_5s: None };
    paths.journey(store, p, tenant, "-", Granularity::Week, (from, to), cfg.default_lookback_days, horizons).map(drop)
}

/// One round: asks every owned tenant's default report; returns, per tenant
/// asked, whether the answer needed a build from scratch.
fn warm_round(store: &Store, paths: &PathsCache, cfg: &PrewarmConfig, owned: &[u16], skip: &HashSet<(u16, String)>) -> Vec<((u16, String), bool)> {
    let mut out = Vec::new();
    for &p in owned {
        let tenants = match touchline_actors::query::listing::tenants(store, p) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "report prewarm: cannot list tenants");
                continue;
            }
        };
        for t in tenants {
            let k = (p, t.tenant);
            if skip.contains(&k) {
                continue;
            }
            let mut queries = vec![default_query(Ts::now(), cfg)];
            queries.extend(page_queries(t.first_event, t.last_event, cfg));
            // Entries the cache did not hold (a rebuild after many changes, as
            // during a catch-up, is not the budget failing to keep them).
            let before = paths.stats().cold.load(Ordering::Relaxed);
            let r = touchline_actors::query::horizon(store, p, &k.1, &cfg.policy).and_then(|h| {
                queries.iter_mut().try_for_each(|q| {
                    q.horizon = h;
                    paths.report(store, p, &k.1, Model::Linear, q).map(drop)
                })?;
                warm_views(store, paths, p, &k.1, page_range(t.first_event, t.last_event), h, cfg)
            });
            match r {
                Ok(_) => {
                    let fresh = paths.stats().cold.load(Ordering::Relaxed) > before;
                    out.push((k, fresh));
                }
                Err(e) => tracing::warn!(partition = p, tenant = %k.1, error = %e, "report prewarm failed; retried at the next tick"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchline_actors::domain::timestamp::parse_rfc3339;

    fn ts(s: &str) -> Ts {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn the_page_range_is_the_event_days_or_the_last_30() {
        let r = page_range(Some(ts("2026-09-30T22:31:51.151Z")), Some(ts("2026-11-02T22:58:36.363Z")));
        assert_eq!(r, Some((ts("2026-09-30T00:00:00Z"), ts("2026-11-03T00:00:00Z"))));
        // An event at midnight is in its own day; 92 days still from the first event.
        let r = page_range(Some(ts("2026-08-03T00:00:00Z")), Some(ts("2026-11-02T00:00:00Z")));
        assert_eq!(r, Some((ts("2026-08-03T00:00:00Z"), ts("2026-11-03T00:00:00Z"))));
        let r = page_range(Some(ts("2026-08-02T23:59:59Z")), Some(ts("2026-11-02T00:00:00Z")));
        assert_eq!(r, Some((ts("2026-10-04T00:00:00Z"), ts("2026-11-03T00:00:00Z"))));
        assert_eq!(page_range(None, Some(ts("2026-11-02T10:00:00Z"))), Some((ts("2026-10-04T00:00:00Z"), ts("2026-11-03T00:00:00Z"))));
        assert_eq!(page_range(Some(ts("2026-11-02T10:00:00Z")), None), None);
    }

    #[test]
    fn the_page_shapes_are_channel_campaign_and_journey() {
        let cfg = PrewarmConfig { interval: Duration::from_secs(1), default_lookback_days: 30, default_range_days: 30, policy: RetentionPolicy::new(0) };
        let qs = page_queries(Some(ts("2026-10-01T10:00:00Z")), Some(ts("2026-10-20T10:00:00Z")), &cfg);
        assert_eq!(qs.iter().map(|q| q.group_by).collect::<Vec<_>>(), PAGE_GROUPS);
        assert!(qs.iter().all(|q| q.from == ts("2026-10-01T00:00:00Z") && q.to == ts("2026-10-21T00:00:00Z") && q.lookback_days == 30 && q.currency.is_none()));
    }
}

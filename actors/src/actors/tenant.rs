//! TenantActor: one per tenant seen in a partition. Applies the tenant's events in
//! partition order: dedup by `event_id`, identity stitching (links, merges, the
//! merge guard, moving merged timelines), then routes touchpoints and conversions
//! to the person's CustomerActor and touches to the JourneyActor. It supervises
//! both kinds, restarting them on demand and passivating idle customers.

use super::customer::{CustomerActor, CustomerArgs, CustomerMsg, Work};
use super::journey::{JourneyActor, JourneyArgs, JourneyMsg, JourneyTouch};
use super::{ApplyError, BatchError, Done, EngineConfig, Fault, SharedTxn};
use super::plan::{apply_identity_and_plan, Dispatch};
use crate::domain::identity::{IdNode, LinkOutcome};
use crate::domain::{retention, Event};
use crate::metrics;
use crate::state::problinks::{IndexCache, LinkTracker, Relink};
use crate::state::{IdCache, TenantMeta, TenantState};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::Duration;

/// One event routed to a tenant, with its lateness decided by the partition.
pub struct TenantEvent {
    pub offset: i64,
    pub event: Event,
    pub late: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantStats {
    pub applied: u64,
    pub duplicates: u64,
    pub merges: u64,
    pub blocked: u64,
    /// Touchpoints and conversions that arrived behind the retention horizon.
    pub expired: u64,
    /// Persons whose final person changed (probabilistic links gained, lost
    /// or moved to another known person; `state::problinks`).
    pub relinked: Vec<Relink>,
    /// New touchpoints found noncompliant (counted once the batch commits).
    pub noncompliant: super::tracking::Noncompliant,
}

pub enum TenantMsg {
    Apply { events: Vec<TenantEvent>, txn: SharedTxn, reply: RpcReplyPort<Result<TenantStats, BatchError>> },
}

pub struct TenantArgs {
    pub partition: u16,
    pub tenant: Arc<str>,
    pub config: Arc<EngineConfig>,
}

pub struct TenantActorState {
    args: TenantArgs,
    customers: HashMap<u64, (ActorRef<CustomerMsg>, u64)>,
    /// Live journey actors with the batch that last used each (bounded like customers).
    journeys: HashMap<String, (ActorRef<JourneyMsg>, u64)>,
    batch_no: u64,
    /// Identity records of this tenant kept across batches (bounded).
    ids: IdCache,
    /// The probabilistic index cache (`None` after a failed batch: rebuilt empty).
    link_index: Option<IndexCache>,
    /// The compliance count of applied touchpoints (registry users only).
    tracking: super::tracking::TrackingCheck,
}

/// A barrier call never waits forever: a child that does not answer fails the batch.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

pub struct TenantActor;

impl Actor for TenantActor {
    type Msg = TenantMsg;
    type State = TenantActorState;
    type Arguments = TenantArgs;

    async fn pre_start(&self, _me: ActorRef<TenantMsg>, args: TenantArgs) -> Result<TenantActorState, ActorProcessingErr> {
        metrics::actor_started("tenant");
        args.config.tenant_actors.started();
        let ids = IdCache::new(args.config.tenant_actors.share(args.config.state_cache_entries));
        Ok(TenantActorState { args, customers: HashMap::new(), journeys: HashMap::new(), batch_no: 0, ids, link_index: None, tracking: Default::default() })
    }

    async fn post_stop(&self, me: ActorRef<TenantMsg>, s: &mut TenantActorState) -> Result<(), ActorProcessingErr> {
        for (c, _) in s.customers.values() {
            c.stop(None);
        }
        for (j, _) in s.journeys.values() {
            j.stop(None);
        }
        me.stop_children(None);
        s.args.config.tenant_actors.stopped();
        metrics::actor_stopped("tenant");
        Ok(())
    }

    async fn handle(&self, me: ActorRef<TenantMsg>, msg: TenantMsg, s: &mut TenantActorState) -> Result<(), ActorProcessingErr> {
        match msg {
            TenantMsg::Apply { events, txn, reply } => {
                s.batch_no += 1;
                s.ids.set_cap(s.args.config.tenant_actors.share(s.args.config.state_cache_entries));
                let r = apply_batch(&me, s, events, &txn).await;
                drop(txn);
                passivate(s);
                let _ = reply.send(r.map_err(BatchError::from));
            }
        }
        Ok(())
    }

    /// Children are restarted on demand (the next event for that person or journey
    /// spawns a fresh actor over the same RocksDB state); the failure itself has
    /// already failed the batch through the barrier, which is then replayed.
    async fn handle_supervisor_evt(&self, _me: ActorRef<TenantMsg>, evt: SupervisionEvent, s: &mut TenantActorState) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = evt {
            let id = cell.get_id();
            let before = (s.customers.len(), s.journeys.len());
            s.customers.retain(|_, (a, _)| a.get_id() != id);
            s.journeys.retain(|_, (a, _)| a.get_id() != id);
            let kind = if s.customers.len() < before.0 { "customer" } else { "journey" };
            if s.customers.len() < before.0 || s.journeys.len() < before.1 {
                metrics::actor_restarted(kind);
            }
            tracing::warn!(tenant = %s.args.tenant, %kind, error = %err, "child actor failed; batch will be replayed");
        }
        Ok(())
    }
}

async fn apply_batch(me: &ActorRef<TenantMsg>, s: &mut TenantActorState, events: Vec<TenantEvent>, txn: &SharedTxn) -> Result<TenantStats, ApplyError> {
    let (p, tenant) = (s.args.partition, s.args.tenant.clone());
    let mut stats = TenantStats::default();
    let mut meta: TenantMeta = {
        let mut g = txn.lock();
        s.tracking.refresh(&g, p, &tenant)?;
        TenantState::load(&mut g, p, &tenant)?.into_meta()
    };
    // Work is grouped per person and per journey and sent once per batch.
    let mut work: HashMap<u64, Vec<Work>> = HashMap::new();
    let mut person_order: Vec<u64> = Vec::new();
    let mut journey_work: HashMap<String, Vec<JourneyTouch>> = HashMap::new();
    // Work handed out while routing (persons about to merge or be erased).
    let early = Barrier::new();
    let mut cache = s.link_index.take().unwrap_or_else(|| IndexCache::new(s.args.config.tenant_actors.share(s.args.config.state_cache_entries) / 4));
    cache.validate(txn.lock().store());
    let mut links = LinkTracker::new(s.args.config.linking.of(&tenant), cache);
    for te in events {
        let ev = te.event;
        // 1. dedup + identity, under the lock.
        let (dispatch, outcome) = {
            let mut g = txn.lock();
            let max_ids = s.args.config.max_ids_per_person;
            let mut st = TenantState::with_meta(&mut g, p, &tenant, std::mem::take(&mut meta)).with_id_cache(&mut s.ids);
            let r = (|| -> Result<Option<(Dispatch, LinkOutcome)>, ApplyError> {
                if st.is_applied(&ev.event_id)? {
                    return Ok(None);
                }
                st.mark_applied(&ev);
                st.meta.min_ts = retention::next_min(st.meta.min_ts, &ev);
                Ok(Some(apply_identity_and_plan(&mut st, &ev, max_ids, &mut links)?))
            })();
            meta = st.into_meta();
            match r? {
                None => {
                    stats.duplicates += 1;
                    continue;
                }
                Some(x) => x,
            }
        };
        stats.applied += 1;
        stats.blocked += outcome.blocked as u64;
        // An erasure first: everything routed earlier in this batch lands, then goes.
        let dispatch = match dispatch {
            Dispatch::Erase(roots, ts, then) => {
                erase(me, s, &roots, ts, (&mut work, txn, &early), &mut meta, &mut links).await?;
                *then
            }
            d => d,
        };
        // Already behind the tenant's retention horizon: out of per-person state
        // (queries would ignore it anyway); aggregates below still count it.
        let horizon = s.args.config.retention.horizon(&tenant, meta.max_ts);
        let expired = match &dispatch {
            Dispatch::Touch(_, rec, ..) => !retention::retained(rec.ts, horizon),
            Dispatch::Conversion(_, rec) => !retention::retained(rec.ts, horizon),
            _ => false,
        };
        stats.expired += expired as u64;
        // 2. merges: flush and retire the customer actors whose records move.
        if !outcome.moves.is_empty() {
            for m in &outcome.moves {
                for person in [m.from, m.to] {
                    retire_customer(me, s, person, &mut work, txn, &early).await?;
                }
            }
            let mut g = txn.lock();
            let mut st = TenantState::records(&mut g, p, &tenant);
            for m in &outcome.moves {
                st.apply_move(m)?;
                stats.merges += 1;
                links.person(m.from);
                links.person(m.to);
            }
        }
        // 3. route.
        match dispatch {
            Dispatch::None | Dispatch::Erase(..) => {}
            Dispatch::Touch(person, rec, journey, composite) => {
                s.tracking.observe(&txn.lock(), p, &tenant, &rec.touch.dims.params, &mut stats.noncompliant);
                let jt = JourneyTouch { ts: rec.ts, composite, interaction_type: rec.touch.interaction_type.clone(), late: te.late };
                journey_work.entry(journey).or_default().push(jt);
                if let (false, Some(person)) = (expired, person) {
                    push_work(&mut work, &mut person_order, person, Work::Touch(rec));
                }
            }
            Dispatch::Conversion(person, mut rec) => {
                rec.late = te.late;
                meta.currency_counts.entry(rec.conversion.currency.clone()).and_modify(|n| *n += 1).or_insert(1);
                if let (false, Some(person)) = (expired, person) {
                    push_work(&mut work, &mut person_order, person, Work::Conversion(rec));
                }
            }
        }
    }
    // 4. dispatch in waves: no more customer or journey actors live at once
    // than this tenant actor's share of the node's caps, even when a batch
    // names more new persons or journeys than that (journey ids come from
    // event data); a full wave is let finish and its least recently used
    // actors stop before the next one spawns more.
    let c = s.args.config.clone();
    let (customer_cap, journey_cap) = (c.tenant_actors.share(c.customer_actor_cap), c.tenant_actors.share(c.journey_actor_cap));
    let mut wave = Barrier::new();
    for person in person_order {
        if let Some(w) = work.remove(&person) {
            if !s.customers.contains_key(&person) && s.customers.len() >= customer_cap {
                std::mem::replace(&mut wave, Barrier::new()).settle().await?;
                make_room(&mut s.customers, customer_cap.saturating_sub(1)).await?;
            }
            let a = customer(me, s, person).await?;
            a.cast(CustomerMsg::Apply { work: w, txn: txn.clone(), done: wave.done() }).map_err(|e| ApplyError::ActorFailed(e.to_string()))?;
        }
    }
    for (j, touches) in journey_work {
        if !s.journeys.contains_key(&j) && s.journeys.len() >= journey_cap {
            std::mem::replace(&mut wave, Barrier::new()).settle().await?;
            make_room(&mut s.journeys, journey_cap.saturating_sub(1)).await?;
        }
        let a = journey_actor(me, s, &j).await?;
        a.cast(JourneyMsg::Apply { touches, txn: txn.clone(), done: wave.done() }).map_err(|e| ApplyError::ActorFailed(e.to_string()))?;
    }
    // 5. barrier: every routed write is in the transaction before the partition commits.
    wave.settle().await?;
    early.settle().await?;
    let mut g = txn.lock();
    let horizon = s.args.config.retention.horizon(&tenant, meta.max_ts);
    let mut st = TenantState::with_meta(&mut g, p, &tenant, meta).with_id_cache(&mut s.ids);
    let (relinked, cache) = links.finish(&mut st, horizon)?;
    (stats.relinked, s.link_index) = (relinked, Some(cache));
    st.save()?;
    Ok(stats)
}

/// Completion of work handed to children: every unit carries a [`Done`] of
/// the barrier; all gone = all applied.
struct Barrier {
    tx: tokio::sync::mpsc::UnboundedSender<Fault>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Fault>,
}

impl Barrier {
    fn new() -> Barrier {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Barrier { tx, rx }
    }

    fn done(&self) -> Done {
        Done::new(&self.tx)
    }

    /// Waits until every unit of work is applied; a storage error or a
    /// timeout stalls the batch (not the records' fault), any other failure
    /// fails it.
    async fn settle(self) -> Result<(), ApplyError> {
        let Barrier { tx, mut rx } = self;
        drop(tx);
        match tokio::time::timeout(SYNC_TIMEOUT, rx.recv()).await {
            Ok(None) => Ok(()),
            Ok(Some(first)) => {
                // A storage error anywhere is not the records' fault, even when
                // another child failed too.
                let storage = std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())).find_map(|f| match f {
                    Fault::Storage(e) => Some(e),
                    Fault::Failed => None,
                });
                Err(match storage {
                    Some(e) => ApplyError::Stalled(e),
                    None => ApplyError::ActorFailed("a child failed its work".into()),
                })
            }
            Err(_) => Err(ApplyError::Stalled(format!("children did not finish within {} s (slow storage?)", SYNC_TIMEOUT.as_secs()))),
        }
    }
}

/// Erases the link components of `roots` (`state::erasure`): the persons'
/// pending work lands first and their actors stop, then their records go.
async fn erase(
    me: &ActorRef<TenantMsg>,
    s: &mut TenantActorState,
    roots: &[IdNode],
    ts: crate::domain::Ts,
    (work, txn, early): (&mut HashMap<u64, Vec<Work>>, &SharedTxn, &Barrier),
    meta: &mut TenantMeta,
    links: &mut LinkTracker,
) -> Result<(), ApplyError> {
    let (p, tenant) = (s.args.partition, s.args.tenant.clone());
    let scope = {
        let mut g = txn.lock();
        let mut st = TenantState::with_meta(&mut g, p, &tenant, std::mem::take(meta)).with_id_cache(&mut s.ids);
        let r = st.erasure_scope(roots);
        *meta = st.into_meta();
        r?
    };
    for &pk in &scope.persons {
        retire_customer(me, s, pk, work, txn, early).await?;
    }
    let mut g = txn.lock();
    let mut st = TenantState::with_meta(&mut g, p, &tenant, std::mem::take(meta)).with_id_cache(&mut s.ids);
    let r = links.erasing(&mut st, &scope).and_then(|()| st.erase(&scope, ts));
    *meta = st.into_meta();
    let erased = r?;
    tracing::info!(tenant = %tenant, identifiers = erased.identifiers, records = erased.records, "person erased");
    Ok(())
}

/// Sends the person's pending work of this batch, waits until it is applied and
/// stops its actor (its records are about to move or be erased).
async fn retire_customer(
    me: &ActorRef<TenantMsg>,
    s: &mut TenantActorState,
    person: u64,
    work: &mut HashMap<u64, Vec<Work>>,
    txn: &SharedTxn,
    early: &Barrier,
) -> Result<(), ApplyError> {
    if let Some(w) = work.remove(&person) {
        let c = customer(me, s, person).await?;
        c.cast(CustomerMsg::Apply { work: w, txn: txn.clone(), done: early.done() }).map_err(|e| ApplyError::ActorFailed(e.to_string()))?;
    }
    if let Some((a, _)) = s.customers.remove(&person) {
        sync(CustomerMsg::Sync, &a).await?;
        a.stop(None);
    }
    Ok(())
}

fn push_work(work: &mut HashMap<u64, Vec<Work>>, order: &mut Vec<u64>, person: u64, w: Work) {
    let v = work.entry(person).or_default();
    if v.is_empty() {
        order.push(person);
    }
    v.push(w);
}

async fn sync<M: ractor::Message>(msg: impl FnOnce(RpcReplyPort<()>) -> M, a: &ActorRef<M>) -> Result<(), ApplyError> {
    match a.call(msg, Some(SYNC_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(())) => Ok(()),
        Ok(ractor::rpc::CallResult::Timeout) => Err(ApplyError::Stalled(format!("{:?} did not answer within {} s (slow storage?)", a.get_id(), SYNC_TIMEOUT.as_secs()))),
        _ => Err(ApplyError::ActorFailed(format!("{:?}", a.get_id()))),
    }
}

async fn customer(me: &ActorRef<TenantMsg>, s: &mut TenantActorState, person: u64) -> Result<ActorRef<CustomerMsg>, ApplyError> {
    let batch = s.batch_no;
    if let Some((a, last)) = s.customers.get_mut(&person) {
        *last = batch;
        return Ok(a.clone());
    }
    let args = CustomerArgs { partition: s.args.partition, tenant: s.args.tenant.clone(), person, config: s.args.config.clone() };
    let (a, _) = Actor::spawn_linked(None, CustomerActor, args, me.get_cell())
        .await
        .map_err(|e| ApplyError::ActorFailed(e.to_string()))?;
    s.customers.insert(person, (a.clone(), batch));
    Ok(a)
}

async fn journey_actor(me: &ActorRef<TenantMsg>, s: &mut TenantActorState, journey: &str) -> Result<ActorRef<JourneyMsg>, ApplyError> {
    let batch = s.batch_no;
    if let Some((a, last)) = s.journeys.get_mut(journey) {
        *last = batch;
        return Ok(a.clone());
    }
    let args = JourneyArgs { partition: s.args.partition, tenant: s.args.tenant.clone(), journey: journey.to_string(), config: s.args.config.clone() };
    let (a, _) = Actor::spawn_linked(None, JourneyActor, args, me.get_cell())
        .await
        .map_err(|e| ApplyError::ActorFailed(e.to_string()))?;
    s.journeys.insert(journey.to_string(), (a.clone(), batch));
    Ok(a)
}

/// Stops customer and journey actors idle for `customer_idle_batches`, then
/// the least recently used beyond this tenant actor's share of the node's
/// `customer_actor_cap` / `journey_actor_cap`. Runs between batches, when no
/// child holds work.
fn passivate(s: &mut TenantActorState) {
    let c = &s.args.config;
    let (idle, now) = (c.customer_idle_batches, s.batch_no);
    let (customer_cap, journey_cap) = (c.tenant_actors.share(c.customer_actor_cap), c.tenant_actors.share(c.journey_actor_cap));
    let stopped = passivate_map(&mut s.customers, customer_cap, idle, now) + passivate_map(&mut s.journeys, journey_cap, idle, now);
    if stopped > 0 {
        metrics::passivated(stopped);
    }
}

/// Stops the actors of `live` idle for `idle` batches, then the least recently
/// used beyond `cap`; returns how many stopped.
fn passivate_map<K: Clone + Eq + std::hash::Hash + Ord, M: ractor::Message>(live: &mut HashMap<K, (ActorRef<M>, u64)>, cap: usize, idle: u64, now: u64) -> u64 {
    let mut stopped = 0u64;
    live.retain(|_, (a, last)| {
        let keep = now.saturating_sub(*last) < idle;
        if !keep {
            a.stop(None);
            stopped += 1;
        }
        keep
    });
    for a in evict_lru(live, cap) {
        a.stop(None);
        stopped += 1;
    }
    stopped
}

/// Removes the least recently used actors of `live` beyond `cap` (ties in key
/// order) and returns them, still running.
fn evict_lru<K: Clone + Eq + std::hash::Hash + Ord, M: ractor::Message>(live: &mut HashMap<K, (ActorRef<M>, u64)>, cap: usize) -> Vec<ActorRef<M>> {
    if live.len() <= cap {
        return Vec::new();
    }
    let mut by_age: Vec<(u64, K)> = live.iter().map(|(k, (_, last))| (*last, k.clone())).collect();
    by_age.sort_unstable();
    by_age.into_iter().take(live.len() - cap).filter_map(|(_, k)| live.remove(&k)).map(|(a, _)| a).collect()
}

/// Mid-batch, between waves (no child holds work): stops the least recently
/// used actors of `live` beyond `keep` and waits until they are gone, so the
/// next wave's spawns stay within the cap.
async fn make_room<K: Clone + Eq + std::hash::Hash + Ord, M: ractor::Message>(live: &mut HashMap<K, (ActorRef<M>, u64)>, keep: usize) -> Result<(), ApplyError> {
    let gone = evict_lru(live, keep);
    for a in &gone {
        a.stop(None);
    }
    for a in &gone {
        a.wait(Some(SYNC_TIMEOUT)).await.map_err(|_| ApplyError::Stalled(format!("{:?} did not stop within {} s", a.get_id(), SYNC_TIMEOUT.as_secs())))?;
    }
    metrics::passivated(gone.len() as u64);
    Ok(())
}

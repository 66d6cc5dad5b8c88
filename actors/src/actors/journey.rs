//! JourneyActor: one per active journey of a tenant. Counts touches, impressions
//! and clicks per composite key `{journey}/SEQ-{n}/{content}/{variant}` into
//! event-time buckets: 5-second windows (closed at the watermark: late touches
//! skip them) and the hour, day and ISO-week roll-ups (late touches still count).
//! Counts are summed per batch and written once per bucket; the actor keeps the
//! buckets it wrote in a bounded cache across batches (it is their only writer),
//! so a hot bucket costs one write per batch and no read; a bucket that starts
//! after every stored one of its granularity is known to be new (no read either).

use super::{Done, EngineConfig, SharedTxn};
use crate::domain::window::{bucket_start, Granularity};
use crate::domain::Ts;
use crate::metrics;
use crate::state::{GenCache, TenantState, WindowCounts};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

/// One touch of the journey: its time, composite key, interaction type, lateness.
pub struct JourneyTouch {
    pub ts: Ts,
    pub composite: String,
    pub interaction_type: String,
    pub late: bool,
}

pub enum JourneyMsg {
    /// The journey's touches of one batch: summed, then written once per bucket.
    Apply { touches: Vec<JourneyTouch>, txn: SharedTxn, done: Done },
}

pub struct JourneyArgs {
    pub partition: u16,
    pub tenant: Arc<str>,
    pub journey: String,
    pub config: Arc<EngineConfig>,
}

/// (granularity tag, bucket start, composite key).
type Bucket = (u8, i64, String);

pub struct JourneyState {
    args: JourneyArgs,
    /// Counts of this batch.
    pending: HashMap<Bucket, WindowCounts>,
    /// Stored counts of recently written hour/day/week buckets (see `state::cache`).
    stored: GenCache<Bucket, WindowCounts>,
    /// Per granularity tag: no stored bucket starts after this (`None`: none
    /// stored). Learnt from one reverse seek, then kept up to date by this
    /// actor's own writes, so in-order touches open new buckets without a
    /// read. Forgotten, like the cache, when a transaction was aborted.
    ceilings: HashMap<u8, Option<Ts>>,
    ceilings_epoch: u64,
}

const ZERO: WindowCounts = WindowCounts { touches: 0, impressions: 0, clicks: 0 };

pub struct JourneyActor;

impl Actor for JourneyActor {
    type Msg = JourneyMsg;
    type State = JourneyState;
    type Arguments = JourneyArgs;

    async fn pre_start(&self, _me: ActorRef<JourneyMsg>, args: JourneyArgs) -> Result<JourneyState, ActorProcessingErr> {
        metrics::actor_started("journey");
        args.config.live_journeys.started();
        // Journeys outnumber tenants: an eighth of a tenant actor's share each.
        let stored = GenCache::new(args.config.tenant_actors.share(args.config.state_cache_entries) / 8);
        Ok(JourneyState { args, pending: HashMap::new(), stored, ceilings: HashMap::new(), ceilings_epoch: 0 })
    }

    async fn post_stop(&self, _me: ActorRef<JourneyMsg>, s: &mut JourneyState) -> Result<(), ActorProcessingErr> {
        metrics::actor_stopped("journey");
        s.args.config.live_journeys.stopped();
        Ok(())
    }

    async fn handle(&self, _me: ActorRef<JourneyMsg>, msg: JourneyMsg, s: &mut JourneyState) -> Result<(), ActorProcessingErr> {
        match msg {
            JourneyMsg::Apply { touches, txn, done } => {
                for t in touches {
                    for g in Granularity::ALL {
                        if t.late && g == Granularity::FiveSeconds {
                            continue;
                        }
                        let c = s.pending.entry((g.tag(), bucket_start(t.ts, g), t.composite.clone())).or_default();
                        c.touches += 1;
                        c.impressions += (t.interaction_type == "impression") as u64;
                        c.clicks += (t.interaction_type == "click") as u64;
                    }
                }
                let r = apply_pending(s, &txn);
                // Hand the transaction back before reporting done (see CustomerActor).
                drop(txn);
                match r {
                    Ok(()) => done.ok(),
                    // Not the records' fault: the partition stalls and retries.
                    Err(e) => done.storage(e),
                }
            }
        }
        Ok(())
    }
}

/// Writes the pending window counters into the batch's transaction.
fn apply_pending(s: &mut JourneyState, txn: &SharedTxn) -> Result<(), touchline_storage::StorageError> {
    let pending = std::mem::take(&mut s.pending);
    let mut guard = txn.lock();
    let aborts = guard.store().aborted_txns();
    s.stored.validate(aborts);
    s.stored.set_cap(s.args.config.tenant_actors.share(s.args.config.state_cache_entries) / 8);
    if s.ceilings_epoch != aborts {
        s.ceilings.clear();
        s.ceilings_epoch = aborts;
    }
    let mut st = TenantState::records(&mut guard, s.args.partition, &s.args.tenant);
    // The ceilings before this batch: each bucket of the batch is
    // written once below, so those above them are all new.
    let mut before: [Option<Ts>; 4] = [None; 4];
    for (i, g) in Granularity::ALL.into_iter().enumerate() {
        before[i] = match s.ceilings.get(&g.tag()) {
            Some(c) => *c,
            None => st.window_ceiling(g.tag(), &s.args.journey)?,
        };
        s.ceilings.insert(g.tag(), before[i]);
    }
    for (b, add) in pending {
        let gi = Granularity::ALL.iter().position(|g| g.tag() == b.0).unwrap_or(0);
        let start = Ts::new(b.1, 0);
        // Above the ceiling nothing is stored: no read.
        let known = if before[gi].is_none_or(|c| start > c) { Some(&ZERO) } else { s.stored.get(&b) };
        let sum = st.count_window(b.0, &s.args.journey, b.1, &b.2, &add, known)?;
        let c = s.ceilings.entry(b.0).or_insert(None);
        *c = Some(c.map_or(start, |c| c.max(start)));
        // 5-second buckets are written about once each: only the
        // roll-ups, hit by every batch, are worth their memory.
        if b.0 != Granularity::FiveSeconds.tag() {
            s.stored.insert(b, sum);
        }
    }
    Ok(())
}

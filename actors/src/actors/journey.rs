//! JourneyActor: one per active journey of a tenant. Counts touches, impressions
//! and clicks per composite key `{journey}/SEQ-{n}/{content}/{variant}` into
//! event-time buckets: 5-second windows (closed at the watermark: late touches
//! skip them) and the hour, day and ISO-week roll-ups (late touches still count).
//! Counts are summed per batch and written once per bucket; the actor keeps the
//! buckets it wrote in a bounded cache across batches (it is their only writer),
//! so a hot bucket costs one write per batch and no read.

use super::{boxed, Done, EngineConfig, SharedTxn};
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
    /// Stored counts of recently written buckets (see `state::cache`).
    stored: GenCache<Bucket, WindowCounts>,
}

pub struct JourneyActor;

impl Actor for JourneyActor {
    type Msg = JourneyMsg;
    type State = JourneyState;
    type Arguments = JourneyArgs;

    async fn pre_start(&self, _me: ActorRef<JourneyMsg>, args: JourneyArgs) -> Result<JourneyState, ActorProcessingErr> {
        metrics::actor_started("journey");
        let stored = GenCache::new(args.config.state_cache_entries);
        Ok(JourneyState { args, pending: HashMap::new(), stored })
    }

    async fn post_stop(&self, _me: ActorRef<JourneyMsg>, _s: &mut JourneyState) -> Result<(), ActorProcessingErr> {
        metrics::actor_stopped("journey");
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
                let pending = std::mem::take(&mut s.pending);
                let mut guard = txn.lock();
                s.stored.validate(guard.store().aborted_txns());
                let mut st = TenantState::records(&mut guard, s.args.partition, &s.args.tenant);
                for (b, add) in pending {
                    let sum = st.count_window(b.0, &s.args.journey, b.1, &b.2, &add, s.stored.get(&b)).map_err(boxed)?;
                    s.stored.insert(b, sum);
                }
                // Hand the transaction back before reporting done (see CustomerActor).
                drop(guard);
                drop(txn);
                done.ok();
            }
        }
        Ok(())
    }
}

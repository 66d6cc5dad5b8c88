//! JourneyActor: one per active journey of a tenant. Counts touches, impressions
//! and clicks per composite key `{journey}/SEQ-{n}/{content}/{variant}` into
//! event-time buckets: 5-second windows (closed at the watermark: late touches
//! skip them) and the hour, day and ISO-week roll-ups (late touches still count).
//! Counts are summed in memory during a batch and written once per bucket at the
//! batch barrier (`Flush`), so a hot bucket costs one read-modify-write per batch.

use super::{boxed, Done, SharedTxn};
use crate::domain::window::{bucket_start, Granularity};
use crate::domain::Ts;
use crate::metrics;
use crate::state::{TenantState, WindowCounts};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::HashMap;
use std::sync::Arc;

pub enum JourneyMsg {
    Touch { ts: Ts, composite: String, interaction_type: String, late: bool },
    /// Writes the batch's counts into `txn` (the batch barrier).
    Flush { txn: SharedTxn, done: Done },
}

pub struct JourneyArgs {
    pub partition: u16,
    pub tenant: Arc<str>,
    pub journey: String,
}

pub struct JourneyState {
    args: JourneyArgs,
    /// (granularity tag, bucket start, composite key) → counts of this batch.
    pending: HashMap<(u8, i64, String), WindowCounts>,
}

pub struct JourneyActor;

impl Actor for JourneyActor {
    type Msg = JourneyMsg;
    type State = JourneyState;
    type Arguments = JourneyArgs;

    async fn pre_start(&self, _me: ActorRef<JourneyMsg>, args: JourneyArgs) -> Result<JourneyState, ActorProcessingErr> {
        metrics::actor_started("journey");
        Ok(JourneyState { args, pending: HashMap::new() })
    }

    async fn post_stop(&self, _me: ActorRef<JourneyMsg>, _s: &mut JourneyState) -> Result<(), ActorProcessingErr> {
        metrics::actor_stopped("journey");
        Ok(())
    }

    async fn handle(&self, _me: ActorRef<JourneyMsg>, msg: JourneyMsg, s: &mut JourneyState) -> Result<(), ActorProcessingErr> {
        match msg {
            JourneyMsg::Touch { ts, composite, interaction_type, late } => {
                for g in Granularity::ALL {
                    if late && g == Granularity::FiveSeconds {
                        continue;
                    }
                    let c = s.pending.entry((g.tag(), bucket_start(ts, g), composite.clone())).or_default();
                    c.touches += 1;
                    c.impressions += (interaction_type == "impression") as u64;
                    c.clicks += (interaction_type == "click") as u64;
                }
            }
            JourneyMsg::Flush { txn, done } => {
                let pending = std::mem::take(&mut s.pending);
                let mut guard = txn.lock();
                let mut st = TenantState::records(&mut guard, s.args.partition, &s.args.tenant);
                for ((gran, bucket, composite), c) in pending {
                    st.count_window(gran, &s.args.journey, bucket, &composite, &c).map_err(boxed)?;
                }
                done.ok();
            }
        }
        Ok(())
    }
}

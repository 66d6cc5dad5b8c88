//! JourneyActor: one per active journey of a tenant. Counts touches, impressions
//! and clicks per composite key `{journey}/SEQ-{n}/{content}/{variant}` into
//! event-time buckets: 5-second windows (closed at the watermark: late touches
//! skip them) and the hour, day and ISO-week roll-ups (late touches still count).

use super::{boxed, SharedTxn};
use crate::domain::window::{bucket_start, Granularity};
use crate::domain::Ts;
use crate::metrics;
use crate::state::TenantState;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

pub enum JourneyMsg {
    Touch { ts: Ts, composite: String, interaction_type: String, late: bool, txn: SharedTxn },
    Sync(RpcReplyPort<()>),
}

pub struct JourneyArgs {
    pub partition: u16,
    pub tenant: Arc<str>,
    pub journey: String,
}

pub struct JourneyActor;

impl Actor for JourneyActor {
    type Msg = JourneyMsg;
    type State = JourneyArgs;
    type Arguments = JourneyArgs;

    async fn pre_start(&self, _me: ActorRef<JourneyMsg>, args: JourneyArgs) -> Result<JourneyArgs, ActorProcessingErr> {
        metrics::actor_started("journey");
        Ok(args)
    }

    async fn post_stop(&self, _me: ActorRef<JourneyMsg>, _s: &mut JourneyArgs) -> Result<(), ActorProcessingErr> {
        metrics::actor_stopped("journey");
        Ok(())
    }

    async fn handle(&self, _me: ActorRef<JourneyMsg>, msg: JourneyMsg, s: &mut JourneyArgs) -> Result<(), ActorProcessingErr> {
        match msg {
            JourneyMsg::Touch { ts, composite, interaction_type, late, txn } => {
                let mut guard = txn.lock();
                let mut st = TenantState::records(&mut guard, s.partition, &s.tenant);
                for g in Granularity::ALL {
                    if late && g == Granularity::FiveSeconds {
                        continue;
                    }
                    st.count_window(
                        g.tag(),
                        &s.journey,
                        bucket_start(ts, g),
                        &composite,
                        interaction_type == "impression",
                        interaction_type == "click",
                    )
                    .map_err(boxed)?;
                }
            }
            JourneyMsg::Sync(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

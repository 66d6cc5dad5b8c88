//! CustomerActor: one per active person. Appends the person's touchpoints and
//! conversions to its RocksDB timeline (through the batch transaction).
//!
//! The actor is a cache, not the owner of the data: state lives in RocksDB, so the
//! tenant actor passivates idle customers (and the least recently used beyond a
//! cap) and memory stays flat however many persons a tenant has.

use super::{boxed, Done, EngineConfig, SharedTxn};
use crate::metrics;
use crate::state::{ConvRec, TenantState, TouchRec};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

/// One timeline write.
pub enum Work {
    Touch(TouchRec),
    Conversion(ConvRec),
}

pub enum CustomerMsg {
    /// This person's share of a batch, in partition order, in one message.
    Apply { work: Vec<Work>, txn: SharedTxn, done: Done },
    /// Barrier: replies once every earlier message is applied.
    Sync(RpcReplyPort<()>),
}

pub struct CustomerArgs {
    pub partition: u16,
    pub tenant: Arc<str>,
    pub person: u64,
    pub config: Arc<EngineConfig>,
}

pub struct CustomerState {
    args: CustomerArgs,
    touches: u64,
    conversions: u64,
}

pub struct CustomerActor;

impl CustomerActor {
    fn check_fault(config: &EngineConfig, customer_id: &str) {
        if config.fault_panic_customer.as_deref() == Some(customer_id) {
            panic!("fault injection: customer {customer_id}");
        }
    }
}

impl Actor for CustomerActor {
    type Msg = CustomerMsg;
    type State = CustomerState;
    type Arguments = CustomerArgs;

    async fn pre_start(&self, _me: ActorRef<CustomerMsg>, args: CustomerArgs) -> Result<CustomerState, ActorProcessingErr> {
        metrics::actor_started("customer");
        Ok(CustomerState { args, touches: 0, conversions: 0 })
    }

    async fn post_stop(&self, _me: ActorRef<CustomerMsg>, _s: &mut CustomerState) -> Result<(), ActorProcessingErr> {
        metrics::actor_stopped("customer");
        Ok(())
    }

    async fn handle(&self, _me: ActorRef<CustomerMsg>, msg: CustomerMsg, s: &mut CustomerState) -> Result<(), ActorProcessingErr> {
        match msg {
            CustomerMsg::Apply { work, txn, done } => {
                for w in &work {
                    let cid = match w {
                        Work::Touch(r) => &r.customer_id,
                        Work::Conversion(r) => &r.customer_id,
                    };
                    Self::check_fault(&s.args.config, cid);
                }
                let mut guard = txn.lock();
                let mut st = TenantState::records(&mut guard, s.args.partition, &s.args.tenant);
                for w in &work {
                    match w {
                        Work::Touch(rec) => {
                            st.put_touch(s.args.person, rec).map_err(boxed)?;
                            s.touches += 1;
                        }
                        Work::Conversion(rec) => {
                            st.put_conversion(s.args.person, rec).map_err(boxed)?;
                            s.conversions += 1;
                        }
                    }
                }
                // Hand the transaction back before reporting done: the partition
                // takes it back as soon as the last token is gone.
                drop(guard);
                drop(txn);
                done.ok();
            }
            CustomerMsg::Sync(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

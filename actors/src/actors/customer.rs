//! CustomerActor: one per active person. Appends the person's touchpoints and
//! conversions to its RocksDB timeline (through the batch transaction).
//!
//! The actor keeps the person's path summary between batches (one write per
//! batch, no read while it lives).
//!
//! The actor is a cache, not the owner of the data: state lives in RocksDB, so the
//! tenant actor passivates idle customers (and the least recently used beyond a
//! cap) and memory stays flat however many persons a tenant has.

use super::{Done, EngineConfig, SharedTxn};
use crate::metrics;
use crate::state::summary::Summary;
use crate::state::{ConvRec, NewRecord, TenantState, TouchRec};
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
    /// The person's path summary as last written, with the store's count of
    /// aborted transactions then (a change means the write may not have
    /// landed: read it again). `Some(None)`: over the summary's record limit.
    /// Only this actor writes the person's records and summary while it
    /// lives (a merge or erasure retires it first); the retention sweep may
    /// trim the stored summary meanwhile, and writing the cached one back only
    /// returns expired records that queries ignore and the next pass trims.
    summary: Option<(u64, Option<Summary>)>,
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
        args.config.live_customers.started();
        Ok(CustomerState { args, touches: 0, conversions: 0, summary: None })
    }

    async fn post_stop(&self, _me: ActorRef<CustomerMsg>, s: &mut CustomerState) -> Result<(), ActorProcessingErr> {
        metrics::actor_stopped("customer");
        s.args.config.live_customers.stopped();
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
                let epoch = guard.store().aborted_txns();
                let person = s.args.person;
                let mut st = TenantState::records(&mut guard, s.args.partition, &s.args.tenant);
                // The records, then the summary written once for the batch.
                let known = match s.summary.take() {
                    Some((e, cached)) if e == epoch => Some(cached),
                    _ => None,
                };
                let recs = work.iter().map(|w| match w {
                    Work::Touch(r) => NewRecord::Touch(r),
                    Work::Conversion(r) => NewRecord::Conversion(r),
                });
                let summary = match st.append(person, known, recs) {
                    Ok(summary) => summary,
                    Err(e) => {
                        // Not the records' fault: the partition stalls and
                        // retries the batch (its transaction is dropped).
                        drop(guard);
                        drop(txn);
                        done.storage(e);
                        return Ok(());
                    }
                };
                let touches = work.iter().filter(|w| matches!(w, Work::Touch(_))).count() as u64;
                s.touches += touches;
                s.conversions += work.len() as u64 - touches;
                s.summary = Some((epoch, summary));
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

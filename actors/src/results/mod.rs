//! The attribution results topic (`touchline.attributions` by default;
//! docs/warehouse.md): the owner of a partition publishes, per conversion of
//! its tenants, one record keyed `{tenant}/{conversion event_id}` with its
//! person, time, value, currency and the credit per key of each configured
//! rule model for `channel` and `campaign`; again whenever a batch changes it;
//! a tombstone when the conversion leaves its person (erasure, consent,
//! retention). A consumer keeping the last value per key holds the batch
//! answer's per-conversion credits.
//!
//! Exactly-once with respect to the partition's state: after a batch is
//! applied (in its transaction, before the commit), [`publisher`] recomputes
//! the records of the persons the batch touched, compares each with the digest
//! of what was last published ([`plan`]), writes the new digests into the same
//! transaction — so they travel through the changelog with the batch, and a
//! restored, standby or snapshot owner knows what the topic holds — and
//! produces the differing records; the batch's changelog marker and local
//! commit wait for their acknowledgement. A crash before the commit replays
//! the batch and publishes the same values again: a repeated value does not
//! change an upsert table.
//!
//! Records follow the final persons of a tenant with probabilistic links
//! ([`groups`]); turning the topic on over existing state or changing what a
//! record holds republishes every conversion ([`backfill`]).
//!
//! The Kafka producer behind [`ResultsSink`] lives in `cluster`.

pub mod backfill;
pub mod groups;
pub mod plan;
pub mod publisher;
pub mod record;

use crate::dlq::DlqFuture;
use crate::domain::models::{Model, ModelParams};
use crate::domain::GroupBy;

/// The groupings every record carries.
pub const GROUPINGS: [GroupBy; 2] = [GroupBy::Channel, GroupBy::Campaign];

/// The models published by default.
pub const DEFAULT_MODELS: [Model; 5] = [Model::FirstTouch, Model::LastTouch, Model::Linear, Model::PositionBased, Model::TimeDecay];

/// What a record holds besides the conversion, and where it goes.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultsConfig {
    /// The topic (`results.topic`): part of the [`backfill::fingerprint`]
    /// (a new topic holds nothing yet).
    pub topic: String,
    /// Rule models (no `custom`, no data-driven model: their credit is not a
    /// function of one conversion's path).
    pub models: Vec<Model>,
    /// The lookback of the paths (the node's `engine.default_lookback_days`).
    pub lookback_days: i64,
    /// Model parameters (the query defaults: `time_decay` half-life 7 days).
    pub params: ModelParams,
    /// Persons one backfill step visits at most (`results.backfill_persons`).
    pub backfill_persons: usize,
}

impl Default for ResultsConfig {
    fn default() -> Self {
        ResultsConfig { topic: "touchline.attributions".into(), models: DEFAULT_MODELS.to_vec(), lookback_days: 30, params: ModelParams::default(), backfill_persons: 1_000 }
    }
}

/// Whether `model` can be published (a per-conversion rule model with no
/// per-query parameter beyond the defaults).
pub fn publishable(model: Model) -> bool {
    !model.is_data_driven() && model != Model::Custom
}

/// A record for the results topic: key, value (`None` = tombstone).
pub type ResultRecord = (Vec<u8>, Option<Vec<u8>>);

pub trait ResultsSink: Send + Sync + 'static {
    /// Produces `records`, in order, to the results topic's partition for
    /// events partition `partition`; resolves once every one is acknowledged.
    fn publish(&self, partition: u16, records: Vec<ResultRecord>) -> DlqFuture;
}

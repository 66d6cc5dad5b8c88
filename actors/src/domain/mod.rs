//! The pure domain: plain functions over plain data, no I/O, unit-tested alone.
//!
//! - `event`: validated event types.
//! - `timestamp`: RFC 3339 / epoch-ms parsing and formatting.
//! - `tracking`: landing-URL `utm_*` / `cm_*` parsing into touchpoint dimensions.
//! - `routing`: Kafka's murmur2 partitioner.
//! - `decode`: bytes (JSON or MessagePack) → validated [`event::Event`] or a rejection.
//! - `models`: rule-based attribution weights.
//! - `datadriven`: exact Markov removal effects and Shapley values.
//! - `report`: turning per-conversion credits into sorted report rows.
//! - `identity`: the identity graph (union-find with merge guard).
//! - `probabilistic`: opt-in probabilistic cross-device links (batch and incremental).
//! - `window`: event-time bucket assignment.
//! - `retention`: the event-time retention horizon of a tenant.
//! - `governance`: taxonomy templates, tracking-value validation and URL building (issue 20).
//! - `costs`: imported daily spend and its supersede rule.

pub mod costs;
pub mod decode;
pub mod datadriven;
pub mod event;
pub mod governance;
pub mod identity;
pub mod models;
pub mod probabilistic;
pub mod report;
pub mod retention;
pub mod routing;
pub mod timestamp;
pub mod tracking;
mod value;
pub mod window;

pub use event::*;

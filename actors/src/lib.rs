//! touchline actors: the pure attribution domain, typed partition state, and the
//! supervised ractor actors that apply a Kafka partition's events to it.

pub mod actors;
pub mod changelog;
pub mod dlq;
pub mod domain;
pub mod metrics;
pub mod query;
pub mod reroute;
pub mod results;
pub mod state;
pub mod status;

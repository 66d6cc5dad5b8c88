//! touchline integration-test support: the sandbox (broker + node processes)
//! and an independent batch reference of attribution.md.

pub mod reference;
pub mod fixtures;
pub mod sandbox;

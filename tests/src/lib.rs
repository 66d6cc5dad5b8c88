//! touchline integration-test support: the sandbox (broker + node processes),
//! an independent batch reference of attribution.md, and the external oracle of
//! the data-driven models.

pub mod broker;
pub mod cluster;
pub mod reference;
pub mod fixtures;
pub mod oracle;
pub mod sandbox;

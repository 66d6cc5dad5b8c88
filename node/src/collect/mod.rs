//! The collector: Segment-compatible tracking calls mapped onto events.md
//! events (`request` reads a body, `mapping` maps one message, both over the
//! raw JSON of `raw`; `reference` is the tree-based mapping kept as their
//! test oracle and bench baseline), channel grouping for web events (`channel`), cost
//! imports (`costs`), the per-tenant write keys and conversion mappings, and
//! the collector's metrics.
//! The HTTP side is `http::collect`.

pub mod channel;
pub mod costs;
pub mod mapping;
pub mod raw;
#[doc(hidden)]
pub mod reference;
pub mod request;

use crate::config::{NodeConfig, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most bytes of one event (a single call's body, or one batch item).
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Most bytes of a `/batch` body (after gzip decompression too).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;

/// Where a conversion `track` event keeps its value and currency
/// (`[tenants.<t>.conversions] "Order Completed" = { value = "revenue", currency = "currency" }`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConversionSpec {
    /// Property holding the value (default: `revenue`, then `value`).
    pub value: Option<String>,
    /// Property holding the currency (default: `currency`; absent: `USD`).
    pub currency: Option<String>,
}

/// The conversion event names of a tenant without its own mapping.
pub const DEFAULT_CONVERSIONS: [&str; 4] = ["Order Completed", "Checkout Completed", "Subscription Started", "Signed Up"];

/// Write keys and conversion mappings of every tenant, built once from the config.
#[derive(Clone, Debug, Default)]
pub struct Collector {
    keys: Vec<(String, Secret)>,
    conversions: BTreeMap<String, BTreeMap<String, ConversionSpec>>,
    channel_rules: BTreeMap<String, Vec<channel::Rule>>,
}

impl Collector {
    pub fn new(config: &NodeConfig) -> Collector {
        let keys = config.tenants.iter().flat_map(|(t, s)| s.write_keys.iter().map(move |k| (t.clone(), k.clone()))).collect();
        let conversions = config.tenants.iter().filter_map(|(t, s)| Some((t.clone(), s.conversions.clone()?))).collect();
        let channel_rules = config.tenants.iter().filter(|(_, s)| !s.channel_rules.is_empty()).map(|(t, s)| (t.clone(), s.channel_rules.clone())).collect();
        Collector { keys, conversions, channel_rules }
    }

    /// The tenant of a write key. Compares against every key without early
    /// exit, so timing reveals neither which key matched nor how much of one.
    pub fn tenant_of(&self, key: &[u8]) -> Option<String> {
        let mut found = None;
        if key.is_empty() {
            return None;
        }
        for (t, k) in &self.keys {
            if crate::http::auth::ct_eq(k.expose().as_bytes(), key) && found.is_none() {
                found = Some(t.clone());
            }
        }
        found
    }

    /// The tenant's own channel rules (none: the defaults alone).
    pub fn channel_rules(&self, tenant: &str) -> &[channel::Rule] {
        self.channel_rules.get(tenant).map_or(&[], Vec::as_slice)
    }

    /// The conversion spec of `event` for `tenant` (`None`: not a conversion).
    pub fn conversion(&self, tenant: &str, event: &str) -> Option<ConversionSpec> {
        match self.conversions.get(tenant) {
            Some(map) => map.get(event).cloned(),
            None => DEFAULT_CONVERSIONS.contains(&event).then(ConversionSpec::default),
        }
    }
}

pub const REQUESTS: &str = "touchline_collect_requests_total";
pub const EVENTS: &str = "touchline_collect_events_total";
pub const REJECTED: &str = "touchline_collect_rejected_total";
pub const PRODUCE_DURATION: &str = "touchline_collect_produce_duration_seconds";

/// Describes the collector's metric families (after the recorder is installed).
pub fn register_metrics() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(REQUESTS, Unit::Count, "Collector requests by route (track, identify, page, screen, alias, batch, costs).");
    describe_counter!(EVENTS, Unit::Count, "Events the collector produced and Kafka acknowledged, by events.md type.");
    describe_counter!(REJECTED, Unit::Count, "Collector requests rejected, by reason (unauthorized, invalid, too_large, produce).");
    describe_histogram!(PRODUCE_DURATION, Unit::Seconds, "Time from the first record of a collector request produced to the last acknowledged.");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> NodeConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn write_keys_pick_the_tenant() {
        let c = Collector::new(&config("[tenants.acme]\nwrite_keys = [\"wk-a\"]\n[tenants.beta]\nwrite_keys = [\"wk-b\", \"wk-b2\"]\n"));
        assert_eq!(c.tenant_of(b"wk-a").as_deref(), Some("acme"));
        assert_eq!(c.tenant_of(b"wk-b2").as_deref(), Some("beta"));
        assert_eq!(c.tenant_of(b"wk-"), None);
        assert_eq!(c.tenant_of(b""), None);
    }

    #[test]
    fn conversions_default_or_configured() {
        let c = Collector::new(&config("[tenants.acme.conversions]\n\"Purchase\" = { value = \"total\", currency = \"cur\" }\n"));
        assert_eq!(c.conversion("acme", "Purchase"), Some(ConversionSpec { value: Some("total".into()), currency: Some("cur".into()) }));
        assert_eq!(c.conversion("acme", "Order Completed"), None);
        assert_eq!(c.conversion("beta", "Order Completed"), Some(ConversionSpec::default()));
        assert_eq!(c.conversion("beta", "Product Viewed"), None);
    }

    #[test]
    fn channel_rules_per_tenant() {
        let c = Collector::new(&config("[[tenants.acme.channel_rules]]\nmedium = \"qr\"\nchannel = \"field_sales\"\n"));
        assert_eq!(c.channel_rules("acme").len(), 1);
        assert!(c.channel_rules("beta").is_empty());
    }
}

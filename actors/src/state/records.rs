//! Stored record types (MessagePack with named fields) and their keys.

use crate::domain::identity::{IdKind, IdNode, PersonIds};
use crate::domain::{ConversionInfo, TouchInfo, Ts};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use touchline_storage::keys::{KeyBuf, Space};

/// A touchpoint on a person's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TouchRec {
    pub event_id: String,
    pub ts: Ts,
    /// The node it was captured under (records move with their node on re-stitch).
    pub customer_id: String,
    pub touch: TouchInfo,
}

/// A conversion of a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvRec {
    pub event_id: String,
    pub ts: Ts,
    pub customer_id: String,
    pub conversion: ConversionInfo,
    /// Arrived behind its partition's watermark minus the allowed lateness:
    /// left out of the 5-second journey windows, like a late touch. Written
    /// only when set, so other conversions encode as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// Index entry: conversion by tenant time → its person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvIndexRec {
    pub person: u64,
    pub currency: String,
    pub value: f64,
    /// As [`ConvRec::late`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

impl ConvIndexRec {
    /// The index entry of `person`'s conversion `rec`.
    pub fn of(person: u64, rec: &ConvRec) -> ConvIndexRec {
        ConvIndexRec { person, currency: rec.conversion.currency.clone(), value: rec.conversion.value, late: rec.late }
    }
}

/// A person: identity plus per-person facts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonRec {
    pub ids: PersonIds,
    #[serde(default)]
    pub segments: Vec<String>,
}

/// Per-tenant counters and settings learned from data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantMeta {
    pub next_person: u64,
    /// Conversions per currency over all time (default report currency).
    pub currency_counts: BTreeMap<String, u64>,
    pub persons: u64,
    pub events: u64,
    #[serde(default)]
    pub merges_blocked: u64,
    /// consent_update events applied (0 = queries skip consent checks).
    #[serde(default)]
    pub consent_updates: u64,
    /// Persons erased (0 = no tombstone to check on ingest).
    #[serde(default)]
    pub erasures: u64,
    /// Maximum event time accepted (erasure requests aside): the retention
    /// horizon is this minus the tenant's retention (`domain::retention`).
    #[serde(default)]
    pub max_ts: Option<Ts>,
    /// Minimum event time accepted (erasure requests aside): the start of the
    /// tenant's event-time range (`GET /v1/tenants`); `None` in state written
    /// before it was kept.
    #[serde(default)]
    pub min_ts: Option<Ts>,
}

impl TenantMeta {
    /// The tenant's currency with the most conversions, ties to the alphabetically first.
    pub fn default_currency(&self) -> Option<String> {
        let mut best: Option<(&String, u64)> = None;
        for (c, n) in &self.currency_counts {
            if *n > 0 && best.is_none_or(|(_, bn)| *n > bn) {
                best = Some((c, *n));
            }
        }
        best.map(|(c, _)| c.clone())
    }
}

/// Counters of one journey window bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowCounts {
    pub touches: u64,
    pub impressions: u64,
    pub clicks: u64,
}

/// Campaign lifecycle and cumulative reported metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignRec {
    pub campaign_id: String,
    pub name: Option<String>,
    pub channel: Option<String>,
    /// Status of the latest event in event time: (ts, event_id, status).
    pub status_at: Option<(Ts, String, String)>,
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    pub cost: f64,
    pub revenue: f64,
}

/// One `consent_update` of a customer_id (its key carries the customer, ts, event_id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsentRec {
    pub ts: Ts,
    pub event_id: String,
    pub analytics: bool,
}

/// The probabilistic-stitching signal of one accepted event with analytics
/// consent (attribution.md, "Probabilistic links", 2); its key carries the
/// event's customer_id, time and event_id. Kept for every tenant, so turning
/// `probabilistic` on takes effect for all data already stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalRec {
    pub customer_id: String,
    pub ts: Ts,
    pub ip: String,
    pub user_agent: Option<String>,
    pub geo: Option<(f64, f64)>,
}

/// Per-variant performance from personalization events (platform-reported deltas).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantRec {
    pub variant_id: String,
    pub events: u64,
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    pub revenue: f64,
}

/// SHA-256 of (tenant, kind, id): lets a tombstone recognise an erased
/// identifier without keeping any of its bytes.
pub fn identifier_hash(tenant: &str, n: &IdNode) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"touchline-erasure-v1\0");
    h.update(tenant.as_bytes());
    h.update([0, n.kind.tag()]);
    h.update(n.id.as_bytes());
    h.finalize().into()
}

/// Key builders, all partition- and tenant-scoped.
pub mod key {
    use super::*;

    fn t(p: u16, s: Space, tenant: &str) -> KeyBuf {
        KeyBuf::space(p, s).tenant(tenant)
    }
    pub fn tenant_meta(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::Tenant, tenant).into_vec()
    }
    pub fn tenant_index(p: u16, tenant: &str) -> Vec<u8> {
        KeyBuf::space(p, Space::TenantIndex).str0(tenant).into_vec()
    }
    pub fn tenant_index_prefix(p: u16) -> Vec<u8> {
        KeyBuf::space(p, Space::TenantIndex).into_vec()
    }
    pub fn dedup(p: u16, tenant: &str, event_id: &str) -> Vec<u8> {
        t(p, Space::Dedup, tenant).bytes(event_id.as_bytes()).into_vec()
    }
    pub fn node(p: u16, tenant: &str, n: &IdNode) -> Vec<u8> {
        t(p, Space::Node, tenant).u8(n.kind.tag()).bytes(n.id.as_bytes()).into_vec()
    }
    pub fn node_lookup(p: u16, tenant: &str, kind: IdKind, id: &str) -> Vec<u8> {
        t(p, Space::Node, tenant).u8(kind.tag()).bytes(id.as_bytes()).into_vec()
    }
    pub fn person(p: u16, tenant: &str, person: u64) -> Vec<u8> {
        t(p, Space::Person, tenant).u64(person).into_vec()
    }
    pub fn person_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::Person, tenant).into_vec()
    }
    pub fn link_prefix(p: u16, tenant: &str, n: &IdNode) -> Vec<u8> {
        t(p, Space::Link, tenant).u8(n.kind.tag()).str0(&n.id).into_vec()
    }
    /// The record of the pair `n`–`other`, under `n` (the pair is kept under both).
    pub fn link(p: u16, tenant: &str, n: &IdNode, other: &IdNode) -> Vec<u8> {
        KeyBuf(link_prefix(p, tenant, n)).u8(other.kind.tag()).bytes(other.id.as_bytes()).into_vec()
    }
    /// One link per event, as builds before pair records wrote them (still
    /// read, and deleted by erasure; never written).
    pub fn link_per_event(p: u16, tenant: &str, n: &IdNode, ts: Ts, event_id: &str, other: &IdNode) -> Vec<u8> {
        KeyBuf(link_prefix(p, tenant, n))
            .bytes(&ts.to_key_bytes())
            .str0(event_id)
            .u8(other.kind.tag())
            .bytes(other.id.as_bytes())
            .into_vec()
    }
    pub fn touch_prefix(p: u16, tenant: &str, person: u64) -> Vec<u8> {
        t(p, Space::Touch, tenant).u64(person).into_vec()
    }
    pub fn touch(p: u16, tenant: &str, person: u64, ts: Ts, event_id: &str) -> Vec<u8> {
        t(p, Space::Touch, tenant).u64(person).bytes(&ts.to_key_bytes()).bytes(event_id.as_bytes()).into_vec()
    }
    pub fn touch_at(p: u16, tenant: &str, person: u64, ts: Ts) -> Vec<u8> {
        t(p, Space::Touch, tenant).u64(person).bytes(&ts.to_key_bytes()).into_vec()
    }
    pub fn conv_prefix(p: u16, tenant: &str, person: u64) -> Vec<u8> {
        t(p, Space::Conversion, tenant).u64(person).into_vec()
    }
    pub fn conv(p: u16, tenant: &str, person: u64, ts: Ts, event_id: &str) -> Vec<u8> {
        t(p, Space::Conversion, tenant).u64(person).bytes(&ts.to_key_bytes()).bytes(event_id.as_bytes()).into_vec()
    }
    pub fn summary(p: u16, tenant: &str, person: u64) -> Vec<u8> {
        t(p, Space::Summary, tenant).u64(person).into_vec()
    }
    pub fn summary_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::Summary, tenant).into_vec()
    }
    pub fn conv_by_time_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::ConversionByTime, tenant).into_vec()
    }
    pub fn conv_by_time(p: u16, tenant: &str, ts: Ts, event_id: &str) -> Vec<u8> {
        t(p, Space::ConversionByTime, tenant).bytes(&ts.to_key_bytes()).bytes(event_id.as_bytes()).into_vec()
    }
    pub fn conv_by_time_at(p: u16, tenant: &str, ts: Ts) -> Vec<u8> {
        t(p, Space::ConversionByTime, tenant).bytes(&ts.to_key_bytes()).into_vec()
    }
    pub fn window(p: u16, tenant: &str, gran: u8, journey: &str, bucket: i64, composite: &str) -> Vec<u8> {
        t(p, Space::Window, tenant)
            .u8(gran)
            .str0(journey)
            .bytes(&Ts::new(bucket, 0).to_key_bytes())
            .bytes(composite.as_bytes())
            .into_vec()
    }
    pub fn window_prefix(p: u16, tenant: &str, gran: u8, journey: &str) -> Vec<u8> {
        t(p, Space::Window, tenant).u8(gran).str0(journey).into_vec()
    }
    pub fn campaign(p: u16, tenant: &str, campaign_id: &str) -> Vec<u8> {
        t(p, Space::Campaign, tenant).bytes(campaign_id.as_bytes()).into_vec()
    }
    pub fn campaign_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::Campaign, tenant).into_vec()
    }
    pub fn cost_day(p: u16, tenant: &str, campaign_id: &str, date: &str) -> Vec<u8> {
        t(p, Space::CostDay, tenant).str0(campaign_id).bytes(date.as_bytes()).into_vec()
    }
    pub fn cost_day_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::CostDay, tenant).into_vec()
    }
    pub fn variant(p: u16, tenant: &str, variant_id: &str) -> Vec<u8> {
        t(p, Space::Variant, tenant).bytes(variant_id.as_bytes()).into_vec()
    }
    pub fn variant_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::Variant, tenant).into_vec()
    }
    pub fn consent_prefix(p: u16, tenant: &str, customer_id: &str) -> Vec<u8> {
        t(p, Space::Consent, tenant).str0(customer_id).into_vec()
    }
    pub fn consent(p: u16, tenant: &str, customer_id: &str, ts: Ts, event_id: &str) -> Vec<u8> {
        KeyBuf(consent_prefix(p, tenant, customer_id)).bytes(&ts.to_key_bytes()).bytes(event_id.as_bytes()).into_vec()
    }
    pub fn signals_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::Signal, tenant).into_vec()
    }
    pub fn signal_prefix(p: u16, tenant: &str, customer_id: &str) -> Vec<u8> {
        t(p, Space::Signal, tenant).str0(customer_id).into_vec()
    }
    pub fn signal(p: u16, tenant: &str, customer_id: &str, ts: Ts, event_id: &str) -> Vec<u8> {
        KeyBuf(signal_prefix(p, tenant, customer_id)).bytes(&ts.to_key_bytes()).bytes(event_id.as_bytes()).into_vec()
    }
    /// The probabilistic index of a tenant (every sub-family below).
    pub fn signal_index_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::SignalIndex, tenant).into_vec()
    }
    /// The indexed signals of one address.
    pub fn signal_by_ip_prefix(p: u16, tenant: &str, ip: &str) -> Vec<u8> {
        t(p, Space::SignalIndex, tenant).u8(0).str0(ip).into_vec()
    }
    /// One indexed signal; `suffix` is its `signal` key's (ts, event_id) tail.
    pub fn signal_by_ip(p: u16, tenant: &str, ip: &str, customer_id: &str, suffix: &[u8]) -> Vec<u8> {
        KeyBuf(signal_by_ip_prefix(p, tenant, ip)).str0(customer_id).bytes(suffix).into_vec()
    }
    /// The expiry entries of the index, in time order.
    pub fn signal_expiry_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::SignalIndex, tenant).u8(1).into_vec()
    }
    pub fn signal_expiry(p: u16, tenant: &str, ts: Ts, ip: &str) -> Vec<u8> {
        KeyBuf(signal_expiry_prefix(p, tenant)).bytes(&ts.to_key_bytes()).bytes(ip.as_bytes()).into_vec()
    }
    /// The mark of an address shared by more than `max_ip_persons` persons.
    pub fn shared_ip(p: u16, tenant: &str, ip: &str) -> Vec<u8> {
        t(p, Space::SignalIndex, tenant).u8(2).bytes(ip.as_bytes()).into_vec()
    }
    /// The settings the index and links were built with.
    pub fn signal_index_meta(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::SignalIndex, tenant).u8(3).into_vec()
    }
    pub fn prob_links_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, Space::ProbLink, tenant).into_vec()
    }
    pub fn prob_link(p: u16, tenant: &str, anonymous: u64) -> Vec<u8> {
        t(p, Space::ProbLink, tenant).u64(anonymous).into_vec()
    }
    pub fn segment_prefix(p: u16, tenant: &str, customer_id: &str) -> Vec<u8> {
        t(p, Space::Segment, tenant).str0(customer_id).into_vec()
    }
    pub fn segment(p: u16, tenant: &str, customer_id: &str, segment: &str) -> Vec<u8> {
        KeyBuf(segment_prefix(p, tenant, customer_id)).bytes(segment.as_bytes()).into_vec()
    }
    /// Digests of the results records last published for `person`'s conversions.
    pub fn published(p: u16, tenant: &str, person: u64) -> Vec<u8> {
        t(p, Space::Published, tenant).u64(person).into_vec()
    }
    pub fn published_prefix(p: u16) -> Vec<u8> {
        KeyBuf::space(p, Space::Published).into_vec()
    }
    pub fn persons_prefix(p: u16) -> Vec<u8> {
        KeyBuf::space(p, Space::Person).into_vec()
    }
    /// The partition's results backfill state (`actors::results::backfill`).
    pub fn results_backfill(p: u16) -> Vec<u8> {
        KeyBuf::space(p, Space::ResultsBackfill).into_vec()
    }
    /// Tombstone of an erased identifier, keyed by its one-way hash.
    pub fn erased(p: u16, tenant: &str, n: &IdNode) -> Vec<u8> {
        t(p, Space::Erased, tenant).bytes(&super::identifier_hash(tenant, n)).into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_currency_most_used_ties_alphabetical() {
        let mut m = TenantMeta::default();
        assert_eq!(m.default_currency(), None);
        m.currency_counts.insert("USD".into(), 3);
        m.currency_counts.insert("EUR".into(), 3);
        m.currency_counts.insert("GBP".into(), 1);
        assert_eq!(m.default_currency().as_deref(), Some("EUR"));
        m.currency_counts.insert("USD".into(), 4);
        assert_eq!(m.default_currency().as_deref(), Some("USD"));
    }

    #[test]
    fn timeline_keys_sort_by_time_then_event_id() {
        let a = key::touch(3, "acme", 9, Ts::new(10, 0), "b");
        let b = key::touch(3, "acme", 9, Ts::new(10, 0), "c");
        let c = key::touch(3, "acme", 9, Ts::new(11, 0), "a");
        assert!(a < b && b < c);
        assert!(a.starts_with(&key::touch_prefix(3, "acme", 9)));
        assert!(!a.starts_with(&key::touch_prefix(3, "acme", 10)));
    }
}

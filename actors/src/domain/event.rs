//! Validated marketing events: the plain data every other module consumes.
//!
//! `decode` turns raw Kafka bytes into these types (or a [`Rejection`]); nothing
//! downstream ever sees an unvalidated field. Types here are serde-serializable so
//! that storage can persist them with `rmp-serde`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A UTC instant with nanosecond precision, ordered chronologically.
///
/// Seconds are signed so the whole RFC 3339 range (years 0001..9999) fits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ts {
    pub secs: i64,
    /// Always `< 1_000_000_000`.
    pub nanos: u32,
}

impl Ts {
    pub const fn new(secs: i64, nanos: u32) -> Ts {
        Ts { secs, nanos }
    }
    pub fn from_millis(ms: i64) -> Ts {
        Ts { secs: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) as u32) * 1_000_000 }
    }
    pub fn now() -> Ts {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ts { secs: d.as_secs() as i64, nanos: d.subsec_nanos() }
    }
    /// Total nanoseconds as i128 (never overflows for the RFC 3339 range).
    pub fn as_nanos(self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }
    pub fn from_nanos(n: i128) -> Ts {
        Ts { secs: n.div_euclid(1_000_000_000) as i64, nanos: n.rem_euclid(1_000_000_000) as u32 }
    }
    pub fn as_millis(self) -> i64 {
        self.secs.saturating_mul(1000).saturating_add((self.nanos / 1_000_000) as i64)
    }
    /// `self - secs` seconds (saturating).
    pub fn minus_secs(self, secs: i64) -> Ts {
        Ts { secs: self.secs.saturating_sub(secs), nanos: self.nanos }
    }
    pub fn plus_secs(self, secs: i64) -> Ts {
        Ts { secs: self.secs.saturating_add(secs), nanos: self.nanos }
    }
    /// `self - earlier` in (fractional) seconds.
    pub fn secs_since(self, earlier: Ts) -> f64 {
        (self.as_nanos() - earlier.as_nanos()) as f64 / 1e9
    }
    /// Sortable fixed-width big-endian encoding (12 bytes) for storage keys.
    pub fn to_key_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&((self.secs as u64) ^ (1u64 << 63)).to_be_bytes());
        out[8..].copy_from_slice(&self.nanos.to_be_bytes());
        out
    }
    pub fn from_key_bytes(b: &[u8]) -> Option<Ts> {
        if b.len() < 12 {
            return None;
        }
        let secs = (u64::from_be_bytes(b[..8].try_into().ok()?) ^ (1u64 << 63)) as i64;
        let nanos = u32::from_be_bytes(b[8..12].try_into().ok()?);
        Some(Ts { secs, nanos })
    }
}

impl fmt::Display for Ts {
    /// RFC 3339 UTC (`2026-11-23T08:00:00Z`, fraction only when non-zero).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::domain::timestamp::format_rfc3339(*self))
    }
}

/// The closed set of channels of events.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Channel {
    Email,
    Social,
    Display,
    Search,
    Video,
    Native,
    Direct,
    Referral,
    FieldSales,
    Other,
}

impl Channel {
    pub const ALL: [Channel; 10] = [
        Channel::Email,
        Channel::Social,
        Channel::Display,
        Channel::Search,
        Channel::Video,
        Channel::Native,
        Channel::Direct,
        Channel::Referral,
        Channel::FieldSales,
        Channel::Other,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Social => "social",
            Channel::Display => "display",
            Channel::Search => "search",
            Channel::Video => "video",
            Channel::Native => "native",
            Channel::Direct => "direct",
            Channel::Referral => "referral",
            Channel::FieldSales => "field_sales",
            Channel::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Tracking dimensions of a touchpoint (events.md, "Tracking parameters").
/// `None` means absent; the report key is then `(none)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dims {
    pub campaign: Option<String>,
    pub journey: Option<String>,
    /// Normalized plain decimal (`03` → `3`, `+5` → `5`, `-0` → `0`).
    pub sequence: Option<String>,
    pub content: Option<String>,
    pub variant: Option<String>,
    /// `utm_source / utm_medium`, only when both are present.
    pub source_medium: Option<String>,
    /// Every `utm_*` and `cm_*` parameter found, first occurrence wins, in URL order.
    pub params: Vec<(String, String)>,
}

/// The grouping dimension of a report (`group_by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GroupBy {
    Channel,
    Campaign,
    Journey,
    Sequence,
    Content,
    Variant,
    SourceMedium,
}

impl GroupBy {
    pub const ALL: [GroupBy; 7] = [
        GroupBy::Channel,
        GroupBy::Campaign,
        GroupBy::Journey,
        GroupBy::Sequence,
        GroupBy::Content,
        GroupBy::Variant,
        GroupBy::SourceMedium,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Channel => "channel",
            GroupBy::Campaign => "campaign",
            GroupBy::Journey => "journey",
            GroupBy::Sequence => "sequence",
            GroupBy::Content => "content",
            GroupBy::Variant => "variant",
            GroupBy::SourceMedium => "source_medium",
        }
    }
    pub fn parse(s: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

pub const NONE_KEY: &str = "(none)";
pub const DIRECT_KEY: &str = "(direct)";

/// The touchpoint part of a `touchpoint_interaction` / `journey_start` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TouchInfo {
    pub channel: Channel,
    pub interaction_type: String,
    pub dims: Dims,
}

impl TouchInfo {
    /// The report key of this touchpoint under `group_by` (`(none)` when absent).
    pub fn key(&self, group_by: GroupBy) -> &str {
        let v = match group_by {
            GroupBy::Channel => return self.channel.as_str(),
            GroupBy::Campaign => &self.dims.campaign,
            GroupBy::Journey => &self.dims.journey,
            GroupBy::Sequence => &self.dims.sequence,
            GroupBy::Content => &self.dims.content,
            GroupBy::Variant => &self.dims.variant,
            GroupBy::SourceMedium => &self.dims.source_medium,
        };
        v.as_deref().unwrap_or(NONE_KEY)
    }
    /// `{journey}/SEQ-{sequence}/{content}/{variant}`, missing parts written as `-`.
    pub fn composite_key(&self) -> String {
        let d = &self.dims;
        format!(
            "{}/SEQ-{}/{}/{}",
            d.journey.as_deref().unwrap_or("-"),
            d.sequence.as_deref().unwrap_or("-"),
            d.content.as_deref().unwrap_or("-"),
            d.variant.as_deref().unwrap_or("-"),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversionInfo {
    /// Finite, `>= 0`.
    pub value: f64,
    /// `[A-Z]{3}`.
    pub currency: String,
    pub conversion_type: Option<String>,
}

/// Device context, used only by probabilistic stitching (events.md: the signal
/// object is `context` when that is an object, else `initial_context`; an
/// ill-typed field counts as absent, never a rejection).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub device_type: Option<String>,
    /// A string, or an object / number kept as its canonical JSON text.
    pub location: Option<String>,
    pub referral_source: Option<String>,
    /// A non-empty string.
    pub ip_address: Option<String>,
    /// A non-empty string.
    pub user_agent: Option<String>,
    /// `{lat, lon}` numbers with |lat| <= 90 and |lon| <= 180.
    pub geolocation: Option<Geo>,
}

/// A valid geolocation signal (degrees).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JourneyKind {
    JourneyStart,
    TouchpointInteraction,
    ConversionEvent,
    JourneyStageChange,
    Identify,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyEvent {
    pub kind: JourneyKind,
    pub customer_id: String,
    pub user_id: Option<String>,
    pub journey_id: Option<String>,
    pub current_stage: Option<String>,
    /// Present exactly for `journey_start` and `touchpoint_interaction`.
    pub touch: Option<TouchInfo>,
    /// Present exactly for `conversion_event`.
    pub conversion: Option<ConversionInfo>,
    /// `consent.analytics`, default `true`.
    pub analytics_consent: bool,
    pub context: Option<Context>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CampaignKind {
    Launch,
    Optimization,
    Termination,
}

/// Platform-reported deltas since the campaign's previous event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignMetrics {
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    pub cost: f64,
    pub revenue: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignEvent {
    pub kind: CampaignKind,
    pub campaign_id: String,
    pub campaign_name: Option<String>,
    pub channel: Option<String>,
    pub metrics: CampaignMetrics,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersonalizationKind {
    PersonalizationTrigger,
    ContentOptimization,
    SegmentUpdate,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantMetrics {
    pub variant_id: String,
    pub impressions: f64,
    pub clicks: f64,
    pub conversions: f64,
    pub revenue: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonalizationEvent {
    pub kind: PersonalizationKind,
    pub customer_id: Option<String>,
    pub segments: Vec<String>,
    pub variants: Vec<VariantMetrics>,
}

// Journey events are nearly every event: boxing the large variant would add
// an allocation to the common case to shrink the rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body {
    Journey(JourneyEvent),
    Campaign(CampaignEvent),
    Personalization(PersonalizationEvent),
    ConsentUpdate { customer_id: String, analytics: bool },
    Erasure { customer_id: String },
    /// An imported daily cost total (docs/collector.md, `cost_import`).
    CostImport(super::costs::CostImport),
    /// A write of the tenant's ID registry (docs/registry.md, `registry_command`).
    Registry(Box<super::governance::registry::RegistryCommand>),
}

/// One accepted event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub tenant_id: String,
    pub ts: Ts,
    pub body: Body,
}

/// Stable rejection codes (events.md, "Rejection reasons").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reason {
    Decode,
    Schema,
    Tenant,
    Timestamp,
    Misrouted,
    TooLarge,
    UnknownType,
    Poison,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::Decode,
        Reason::Schema,
        Reason::Tenant,
        Reason::Timestamp,
        Reason::Misrouted,
        Reason::TooLarge,
        Reason::UnknownType,
        Reason::Poison,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Decode => "decode",
            Reason::Schema => "schema",
            Reason::Tenant => "tenant",
            Reason::Timestamp => "timestamp",
            Reason::Misrouted => "misrouted",
            Reason::TooLarge => "too_large",
            Reason::UnknownType => "unknown_type",
            Reason::Poison => "poison",
        }
    }
}

/// Why a record was dead-lettered: a stable code plus human detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
    /// `misrouted` only: the tenant's partition, where the record is re-routed
    /// (events.md, Transport).
    pub reroute_to: Option<i32>,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Rejection {
        Rejection { reason, detail: detail.into(), reroute_to: None }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_key_bytes_sort_like_ts() {
        let a = [Ts::new(-5, 3), Ts::new(-5, 4), Ts::new(0, 0), Ts::new(1_700_000_000, 999_999_999), Ts::new(1_700_000_001, 0)];
        for w in a.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].to_key_bytes() < w[1].to_key_bytes());
            assert_eq!(Ts::from_key_bytes(&w[0].to_key_bytes()), Some(w[0]));
        }
        assert_eq!(Ts::from_millis(-1), Ts::new(-1, 999_000_000));
    }
}

//! Retention, decided in event time: a tenant keeps timeline records
//! (touchpoints, conversions) no older than its *horizon*, the tenant's
//! maximum accepted event timestamp minus its retention. The wall clock never
//! enters, so replaying historical data does not wipe it, and since the maximum
//! only grows, a record once behind the horizon stays behind it: queries ignore
//! it, the apply path keeps a late one out, the sweep may delete it whenever it
//! likes, and every answer stays that of a batch run over the same events.
//!
//! Two aggregate key families get horizons of their own on the same clock:
//! dedup markers ([`RetentionPolicy::dedup_horizon`]) and 5-second journey
//! windows ([`RetentionPolicy::window_5s_horizon`]).

use super::{Body, Event, Ts};
use std::collections::BTreeMap;

pub const SECS_PER_DAY: i64 = 86_400;

/// The node's default `engine.dedup_horizon_days`: longer than the 90 days of
/// topic retention events.md lets a deployment rely on, so a redelivery of
/// any record still on the topic is recognised.
pub const DEFAULT_DEDUP_HORIZON_DAYS: u32 = 180;

/// The node's default `engine.window_5s_retention_hours`.
pub const DEFAULT_WINDOW_5S_RETENTION_HOURS: u32 = 48;

/// Retention per tenant, in days; 0 keeps forever.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub default_days: u32,
    pub per_tenant: BTreeMap<String, u32>,
    /// A dedup marker goes once the tenant's newest event time is this many
    /// days past the newest time when its event was applied (0 keeps forever).
    pub dedup_days: u32,
    /// 5-second window buckets starting this many hours before the tenant's
    /// newest event time are gone (0 keeps forever).
    pub window_5s_hours: u32,
}

impl RetentionPolicy {
    /// Timeline retention only: dedup markers and 5-second windows kept forever.
    pub fn new(default_days: u32) -> RetentionPolicy {
        RetentionPolicy { default_days, per_tenant: BTreeMap::new(), dedup_days: 0, window_5s_hours: 0 }
    }

    /// Dedup markers stamped before the returned time may go (`None`: keep all).
    pub fn dedup_horizon(&self, max_ts: Option<Ts>) -> Option<Ts> {
        horizon(max_ts, self.dedup_days)
    }

    /// 5-second buckets starting before the returned time are gone (`None`: keep all).
    pub fn window_5s_horizon(&self, max_ts: Option<Ts>) -> Option<Ts> {
        let hours = i64::from(self.window_5s_hours);
        max_ts.filter(|_| hours > 0).map(|m| m.minus_secs(hours * 3_600))
    }

    pub fn days_for(&self, tenant: &str) -> u32 {
        self.per_tenant.get(tenant).copied().unwrap_or(self.default_days)
    }

    /// The horizon of `tenant` given its maximum accepted event time.
    pub fn horizon(&self, tenant: &str, max_ts: Option<Ts>) -> Option<Ts> {
        horizon(max_ts, self.days_for(tenant))
    }
}

/// `max_ts − days`; `None` (keep everything) without data or with `days == 0`.
pub fn horizon(max_ts: Option<Ts>, days: u32) -> Option<Ts> {
    if days == 0 {
        return None;
    }
    max_ts.map(|m| m.minus_secs(i64::from(days) * SECS_PER_DAY))
}

/// Whether a record at `ts` is retained under `horizon` (the horizon itself is kept).
pub fn retained(ts: Ts, horizon: Option<Ts>) -> bool {
    horizon.is_none_or(|h| ts >= h)
}

/// The first retained instant of a range starting at `from`.
pub fn clamp_from(from: Ts, horizon: Option<Ts>) -> Ts {
    horizon.map_or(from, |h| from.max(h))
}

/// Whether an accepted event moves its tenant's maximum event time. Every
/// event does except `erasure_request`, `cost_import` and `registry_command`,
/// whose times are wall clocks (of the request, of the import): an HTTP
/// erasure, a cost import or a registry write next to historical data must
/// not expire that data.
pub fn advances_max(ev: &Event) -> bool {
    !matches!(ev.body, Body::Erasure { .. } | Body::CostImport(_) | Body::Registry(_))
}

/// The tenant's maximum event time after accepting `ev`.
pub fn next_max(max_ts: Option<Ts>, ev: &Event) -> Option<Ts> {
    if !advances_max(ev) {
        return max_ts;
    }
    Some(max_ts.map_or(ev.ts, |m| m.max(ev.ts)))
}

/// The tenant's minimum event time after accepting `ev` (the same events count).
pub fn next_min(min_ts: Option<Ts>, ev: &Event) -> Option<Ts> {
    if !advances_max(ev) {
        return min_ts;
    }
    Some(min_ts.map_or(ev.ts, |m| m.min(ev.ts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i64) -> Ts {
        Ts::new(d * SECS_PER_DAY, 0)
    }

    #[test]
    fn horizon_is_event_time_max_minus_retention() {
        assert_eq!(horizon(Some(day(100)), 90), Some(day(10)));
        assert_eq!(horizon(Some(day(100)), 0), None, "0 keeps forever");
        assert_eq!(horizon(None, 90), None, "no data, nothing expires");
    }

    #[test]
    fn the_horizon_itself_is_retained() {
        let h = Some(day(10));
        assert!(retained(day(10), h));
        assert!(!retained(Ts::from_nanos(day(10).as_nanos() - 1), h));
        assert!(retained(day(0), None));
        assert_eq!(clamp_from(day(5), h), day(10));
        assert_eq!(clamp_from(day(15), h), day(15));
        assert_eq!(clamp_from(day(5), None), day(5));
    }

    #[test]
    fn per_tenant_overrides_the_default() {
        let mut p = RetentionPolicy::new(90);
        p.per_tenant.insert("short".into(), 2);
        p.per_tenant.insert("forever".into(), 0);
        assert_eq!(p.horizon("short", Some(day(100))), Some(day(98)));
        assert_eq!(p.horizon("other", Some(day(100))), Some(day(10)));
        assert_eq!(p.horizon("forever", Some(day(100))), None);
    }

    #[test]
    fn dedup_and_5s_window_horizons() {
        let p = RetentionPolicy { dedup_days: 180, window_5s_hours: 48, ..RetentionPolicy::new(90) };
        assert_eq!(p.dedup_horizon(Some(day(200))), Some(day(20)));
        assert_eq!(p.window_5s_horizon(Some(day(200))), Some(day(198)));
        assert_eq!(p.window_5s_horizon(None), None);
        let forever = RetentionPolicy::new(90);
        assert_eq!((forever.dedup_horizon(Some(day(200))), forever.window_5s_horizon(Some(day(200)))), (None, None));
    }

    #[test]
    fn erasure_requests_do_not_move_the_maximum() {
        let ev = |ts: Ts, body: Body| Event { event_id: "e".into(), tenant_id: "t".into(), ts, body };
        let consent = ev(day(50), Body::ConsentUpdate { customer_id: "c".into(), analytics: true });
        assert_eq!(next_max(None, &consent), Some(day(50)));
        assert_eq!(next_max(Some(day(60)), &consent), Some(day(60)));
        let erasure = ev(day(500), Body::Erasure { customer_id: "c".into() });
        assert_eq!(next_max(Some(day(60)), &erasure), Some(day(60)));
        assert_eq!(next_max(None, &erasure), None);
        let cost = ev(day(500), Body::CostImport(crate::domain::costs::CostImport::default()));
        assert_eq!((next_max(Some(day(60)), &cost), next_min(Some(day(60)), &cost)), (Some(day(60)), Some(day(60))));
    }
}

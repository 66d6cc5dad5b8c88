//! Event-time window assignment: 5-second tumbling windows and their hour, UTC day
//! and ISO-week (Monday 00:00 UTC) roll-ups, plus the lateness rule.
//!
//! Pure arithmetic on epoch seconds; never arrival time.

use crate::domain::event::Ts;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Granularity {
    FiveSeconds,
    Hour,
    Day,
    Week,
}

impl Granularity {
    pub const ALL: [Granularity; 4] = [Granularity::FiveSeconds, Granularity::Hour, Granularity::Day, Granularity::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::FiveSeconds => "5s",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
        }
    }
    pub fn parse(s: &str) -> Option<Granularity> {
        Granularity::ALL.into_iter().find(|g| g.as_str() == s)
    }
    pub fn tag(self) -> u8 {
        match self {
            Granularity::FiveSeconds => b's',
            Granularity::Hour => b'h',
            Granularity::Day => b'd',
            Granularity::Week => b'w',
        }
    }
    pub fn width_secs(self) -> i64 {
        match self {
            Granularity::FiveSeconds => 5,
            Granularity::Hour => 3600,
            Granularity::Day => 86_400,
            Granularity::Week => 7 * 86_400,
        }
    }
}

/// 1969-12-29T00:00:00Z was a Monday: ISO weeks are aligned to it.
const MONDAY_EPOCH_OFFSET: i64 = -3 * 86_400;

/// Start (epoch seconds) of the bucket of `ts` at granularity `g`.
pub fn bucket_start(ts: Ts, g: Granularity) -> i64 {
    let w = g.width_secs();
    match g {
        Granularity::Week => (ts.secs - MONDAY_EPOCH_OFFSET).div_euclid(w) * w + MONDAY_EPOCH_OFFSET,
        _ => ts.secs.div_euclid(w) * w,
    }
}

/// Events with `ts < watermark - allowed_lateness` are late: they still count in
/// the hour/day/week roll-ups but not in closed 5-second windows.
pub fn is_late(ts: Ts, watermark: Option<Ts>, allowed_lateness_secs: i64) -> bool {
    match watermark {
        Some(w) => ts < w.minus_secs(allowed_lateness_secs),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::timestamp::parse_rfc3339;

    fn t(s: &str) -> Ts {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn buckets() {
        let ts = t("2026-11-25T13:47:09.9Z"); // a Wednesday
        assert_eq!(bucket_start(ts, Granularity::FiveSeconds), t("2026-11-25T13:47:05Z").secs);
        assert_eq!(bucket_start(ts, Granularity::Hour), t("2026-11-25T13:00:00Z").secs);
        assert_eq!(bucket_start(ts, Granularity::Day), t("2026-11-25T00:00:00Z").secs);
        assert_eq!(bucket_start(ts, Granularity::Week), t("2026-11-23T00:00:00Z").secs);
        // Monday 00:00 starts its own week; Sunday 23:59 belongs to the previous one.
        assert_eq!(bucket_start(t("2026-11-23T00:00:00Z"), Granularity::Week), t("2026-11-23T00:00:00Z").secs);
        assert_eq!(bucket_start(t("2026-11-22T23:59:59Z"), Granularity::Week), t("2026-11-16T00:00:00Z").secs);
        // Before the epoch.
        assert_eq!(bucket_start(t("1969-12-31T23:59:58Z"), Granularity::FiveSeconds), -5);
        assert_eq!(bucket_start(t("1969-12-31T12:00:00Z"), Granularity::Week), MONDAY_EPOCH_OFFSET);
    }

    #[test]
    fn lateness() {
        let w = Some(t("2026-11-25T13:00:00Z"));
        assert!(!is_late(t("2026-11-25T12:00:00Z"), w, 3600));
        assert!(is_late(t("2026-11-25T11:59:59Z"), w, 3600));
        assert!(!is_late(t("2000-01-01T00:00:00Z"), None, 3600));
    }
}

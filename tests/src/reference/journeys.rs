//! The batch reference of `GET .../journeys/{j}/performance` for the roll-ups
//! (hour, day, ISO week), per attribution.md "Windows": touches, impressions and
//! clicks of every consented touchpoint at its time; conversions and revenue in
//! the default currency under `last_touch` with the default lookback, at the
//! conversion's time, under the composite key of its last touchpoint. (The
//! 5-second windows close at the watermark, so they depend on arrival order and
//! are not compared; nor is their bound, which the roll-ups do not depend on:
//! the node keeps 5-second buckets only `engine.window_5s_retention_hours`
//! behind the tenant's newest event time, README "Windows", and a `5s` query
//! answers nothing older — checked end to end in `tests/tenant_endpoints.rs`.)

use super::Reference;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use touchline_actors::domain::Ts;

/// Start (epoch seconds) of the bucket of `ts` at `granularity` (`hour`, `day`,
/// `week`: Monday 00:00 UTC). Written from the definition, not shared with the
/// node.
pub fn bucket(ts: Ts, granularity: &str) -> i64 {
    let day = ts.secs.div_euclid(86_400);
    match granularity {
        "hour" => ts.secs.div_euclid(3_600) * 3_600,
        "day" => day * 86_400,
        // 1970-01-01 was a Thursday: Monday-based weekday = (day + 3) mod 7.
        "week" => (day - (day + 3).rem_euclid(7)) * 86_400,
        other => panic!("granularity {other} has no reference"),
    }
}

#[derive(Default)]
struct Row {
    touches: u64,
    impressions: u64,
    clicks: u64,
    conversions: u64,
    revenue: f64,
}

impl Reference {
    /// Journeys with at least one touchpoint in `tenant`.
    pub fn journeys(&self, tenant: &str) -> Vec<String> {
        let Some(td) = self.tenants.get(tenant) else { return Vec::new() };
        let mut j: Vec<String> = td.window_touches.iter().map(|w| w.1.clone()).collect();
        j.sort();
        j.dedup();
        j
    }

    /// The performance answer, buckets sorted by (start, key).
    pub fn journey_performance(&self, tenant: &str, journey: &str, granularity: &str, from: Ts, to: Ts) -> Value {
        let mut rows: BTreeMap<(i64, String), Row> = BTreeMap::new();
        let in_range = |b: i64| b >= from.secs + (from.nanos > 0) as i64 && b < to.secs + (to.nanos > 0) as i64;
        if let Some(td) = self.tenants.get(tenant) {
            for (ts, j, key, interaction) in &td.window_touches {
                let b = bucket(*ts, granularity);
                if j != journey || !in_range(b) {
                    continue;
                }
                let r = rows.entry((b, key.clone())).or_default();
                r.touches += 1;
                r.impressions += (interaction == "impression") as u64;
                r.clicks += (interaction == "click") as u64;
            }
            let currency = self.default_currency(tenant);
            for pd in td.persons.values() {
                for c in pd.conversions.iter().filter(|c| Some(&c.currency) == currency.as_ref()) {
                    let b = bucket(c.ts, granularity);
                    if !in_range(b) {
                        continue;
                    }
                    let lo = c.ts.minus_secs(30 * 86_400);
                    // Touches are sorted by (ts, event_id): the last one in the lookback.
                    let Some(last) = pd.touches.iter().rev().find(|t| t.ts <= c.ts && t.ts >= lo) else { continue };
                    if last.info.dims.journey.as_deref().unwrap_or("-") != journey {
                        continue;
                    }
                    let r = rows.entry((b, last.info.composite_key())).or_default();
                    r.conversions += 1;
                    r.revenue += c.value;
                }
            }
        }
        let buckets: Vec<Value> = rows
            .into_iter()
            .map(|((start, key), r)| {
                json!({"start": Ts::new(start, 0).to_string(), "key": key, "touches": r.touches, "impressions": r.impressions,
                       "clicks": r.clicks, "conversions": r.conversions, "revenue": r.revenue})
            })
            .collect();
        json!({"journey": journey, "granularity": granularity, "buckets": buckets})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_the_definition() {
        // 2026-11-04 (a Wednesday) 13:45:10 UTC.
        let ts = Ts::new(1_793_799_910, 0);
        assert_eq!(Ts::new(bucket(ts, "hour"), 0).to_string(), "2026-11-04T13:00:00Z");
        assert_eq!(Ts::new(bucket(ts, "day"), 0).to_string(), "2026-11-04T00:00:00Z");
        assert_eq!(Ts::new(bucket(ts, "week"), 0).to_string(), "2026-11-02T00:00:00Z");
        // Before the epoch, and a Monday itself.
        assert_eq!(Ts::new(bucket(Ts::new(-1, 0), "week"), 0).to_string(), "1969-12-29T00:00:00Z");
        assert_eq!(bucket(Ts::new(bucket(ts, "week"), 0), "week"), bucket(ts, "week"));
    }
}

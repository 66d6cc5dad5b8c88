//! `GET /v1/tenants/{t}/journeys/{j}/performance`: per composite key and bucket,
//! touches / impressions / clicks from the window counters, plus conversions and
//! revenue under `last_touch` (default lookback, default currency), bucketed at
//! the conversion's time under the key of its last touchpoint.
//!
//! 5-second buckets are kept only for `engine.window_5s_retention_hours`
//! behind the tenant's newest event time (README, "Windows"): a `5s` query
//! answers only buckets starting at or after that point, touch counts and
//! conversions alike, whether or not the sweep has deleted the older ones yet.

use super::attribution::AttributionQuery;
use super::QueryError;
use crate::domain::models::ModelParams;
use crate::domain::window::{bucket_start, Granularity};
use crate::domain::{GroupBy, Ts};
use crate::state::{key, TouchRec, WindowCounts};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use touchline_storage::{codec, Store};

#[derive(Default)]
struct Bucket {
    touches: u64,
    impressions: u64,
    clicks: u64,
    conversions: u64,
    revenue: crate::domain::report::ExactSum,
}

/// The tenant's horizons a journey query applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Horizons {
    /// Retention: conversions and touchpoints before it are ignored (the
    /// window counters are anonymous aggregates and stay).
    pub retention: Option<Ts>,
    /// 5-second buckets starting before it are not answered.
    pub window_5s: Option<Ts>,
}

/// [`performance_in`] over the deterministic persons.
#[allow(clippy::too_many_arguments)]
pub fn performance(store: &Store, p: u16, tenant: &str, journey: &str, g: Granularity, from: Ts, to: Ts, lookback_days: i64, horizons: Horizons) -> Result<Value, QueryError> {
    performance_in(store, p, tenant, journey, g, from, to, lookback_days, horizons, None)
}

/// [`performance`] with conversions attributed over the final persons of `view`.
#[allow(clippy::too_many_arguments)]
pub fn performance_in(
    store: &Store,
    p: u16,
    tenant: &str,
    journey: &str,
    g: Granularity,
    from: Ts,
    to: Ts,
    lookback_days: i64,
    horizons: Horizons,
    view: Option<&super::linking::FinalPersons>,
) -> Result<Value, QueryError> {
    let (requested, horizon) = (from, horizons.retention);
    let from = if g == Granularity::FiveSeconds { crate::domain::retention::clamp_from(from, horizons.window_5s) } else { from };
    let mut buckets: BTreeMap<(i64, String), Bucket> = BTreeMap::new();
    let prefix = key::window_prefix(p, tenant, g.tag(), journey);
    let start = [prefix.as_slice(), &Ts::new(from.secs + (from.nanos > 0) as i64, 0).to_key_bytes()].concat();
    let end = [prefix.as_slice(), &Ts::new(to.secs + (to.nanos > 0) as i64, 0).to_key_bytes()].concat();
    store.scan_as::<WindowCounts>(&start, &end, |k, c| {
        let Some(b) = crate::state::tenant::ts_in_key(k, prefix.len()) else { return true };
        let composite = String::from_utf8_lossy(&k[prefix.len() + 12..]).into_owned();
        let e = buckets.entry((b.secs, composite)).or_default();
        e.touches += c.touches;
        e.impressions += c.impressions;
        e.clicks += c.clicks;
        true
    })?;
    // Conversions: those whose bucket starts in [from, to).
    let w = g.width_secs();
    let q = AttributionQuery {
        from: from.minus_secs(2 * w),
        to: to.plus_secs(2 * w),
        group_by: GroupBy::Channel,
        lookback_days,
        params: ModelParams::default(),
        currency: None,
        horizon,
    };
    let (_, convs) = super::attribution::conversions_with_paths_in(store, p, tenant, &q, view)?;
    for c in convs {
        let b = bucket_start(c.ts, g);
        // Late conversions skip the 5-second windows, as late touches do.
        if Ts::new(b, 0) < from || Ts::new(b, 0) >= to || (c.late && g == Granularity::FiveSeconds) {
            continue;
        }
        let Some(last) = c.touches.last() else { continue };
        // Re-read the last touch for its composite key (from the member of
        // the final person whose timeline holds it).
        let members = super::linking::members(view, c.person);
        let mut found = None;
        for m in members {
            let tk = key::touch(p, tenant, m, last.0, &last.3);
            if let Some(raw) = store.get(&tk)? {
                found = Some(codec::decode::<TouchRec>(&tk, &raw)?);
                break;
            }
        }
        let Some(t) = found else { continue };
        if t.touch.dims.journey.as_deref().unwrap_or("-") != journey {
            continue;
        }
        let e = buckets.entry((b, t.touch.composite_key())).or_default();
        e.conversions += 1;
        e.revenue.add(c.value);
    }
    let rows: Vec<Value> = buckets
        .into_iter()
        .map(|((start, key), b)| {
            json!({
                "start": Ts::new(start, 0).to_string(),
                "key": key,
                "touches": b.touches, "impressions": b.impressions, "clicks": b.clicks,
                "conversions": b.conversions, "revenue": b.revenue.value(),
            })
        })
        .collect();
    Ok(json!({"tenant": tenant, "journey": journey, "granularity": g.as_str(), "from": requested.to_string(), "to": to.to_string(), "buckets": rows}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TenantState;

    #[test]
    fn a_5s_query_answers_only_buckets_within_the_5s_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        let mut txn = store.txn();
        let mut st = TenantState::records(&mut txn, 1, "acme");
        let one = WindowCounts { touches: 1, impressions: 1, clicks: 0 };
        for b in [1_000, 7_195, 7_200, 7_205] {
            for g in [Granularity::FiveSeconds, Granularity::Hour] {
                st.count_window(g.tag(), "j", bucket_start(Ts::new(b, 0), g), "j/SEQ-1/c/v", &one, None).unwrap();
            }
        }
        drop(st);
        txn.commit(None).unwrap();
        let starts = |g: Granularity, window_5s: Option<Ts>| -> Vec<String> {
            let v = performance(&store, 1, "acme", "j", g, Ts::new(0, 0), Ts::new(10_000, 0), 30, Horizons { retention: None, window_5s }).unwrap();
            assert_eq!(v["from"], "1970-01-01T00:00:00Z", "the range asked is echoed");
            v["buckets"].as_array().unwrap().iter().map(|b| format!("{}:{}", b["start"].as_str().unwrap(), b["touches"])).collect()
        };
        // Stored but behind the horizon (not swept yet): not answered; the horizon itself is kept.
        let h = Some(Ts::new(7_199, 500_000_000));
        assert_eq!(starts(Granularity::FiveSeconds, h), vec!["1970-01-01T02:00:00Z:1", "1970-01-01T02:00:05Z:1"]);
        assert_eq!(starts(Granularity::FiveSeconds, Some(Ts::new(7_200, 0))).len(), 2);
        assert_eq!(starts(Granularity::FiveSeconds, None).len(), 4, "no horizon: everything kept");
        assert_eq!(starts(Granularity::Hour, h), vec!["1970-01-01T00:00:00Z:1", "1970-01-01T01:00:00Z:1", "1970-01-01T02:00:00Z:2"], "roll-ups stay");
    }
}

//! `GET /v1/tenants/{t}/journeys/{j}/performance`: per composite key and bucket,
//! touches / impressions / clicks from the window counters, plus conversions and
//! revenue under `last_touch` (default lookback, default currency), bucketed at
//! the conversion's time under the key of its last touchpoint.

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

/// `horizon`: the retention horizon (conversions and touchpoints before it are
/// ignored; the window counters are anonymous aggregates and stay).
#[allow(clippy::too_many_arguments)]
pub fn performance(store: &Store, p: u16, tenant: &str, journey: &str, g: Granularity, from: Ts, to: Ts, lookback_days: i64, horizon: Option<Ts>) -> Result<Value, QueryError> {
    performance_in(store, p, tenant, journey, g, from, to, lookback_days, horizon, None)
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
    horizon: Option<Ts>,
    view: Option<&super::linking::FinalPersons>,
) -> Result<Value, QueryError> {
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
        let members = view.map_or_else(|| vec![c.person], |v| v.members_of(c.person));
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
    Ok(json!({"tenant": tenant, "journey": journey, "granularity": g.as_str(), "from": from.to_string(), "to": to.to_string(), "buckets": rows}))
}

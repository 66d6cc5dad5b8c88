//! `GET /v1/tenants/{t}/journeys/{j}/performance`: per composite key and bucket,
//! touches / impressions / clicks from the window counters, plus conversions and
//! revenue under `last_touch` (default lookback, default currency), bucketed at
//! the conversion's time under the key of its last touchpoint. Over the
//! deterministic persons the last touchpoints come from the persons' path
//! summaries (one sorted pass, no timeline reads) — the HTTP route takes
//! them from the report cache (`super::paths_cache`'s view entries, the same
//! per-person [`super::view_parts::JourneyConv`]s kept up to date) —; over
//! final persons from their members' records.
//!
//! 5-second buckets are kept only for `engine.window_5s_retention_hours`
//! behind the tenant's newest event time (README, "Windows"): a `5s` query
//! answers only buckets starting at or after that point, touch counts and
//! conversions alike, whether or not the sweep has deleted the older ones yet.

use super::attribution::AttributionQuery;
use super::view_parts;
use super::QueryError;
use crate::domain::models::ModelParams;
use crate::domain::window::{bucket_start, Granularity};
use crate::domain::{GroupBy, Ts};
use crate::state::{key, TouchRec, WindowCounts};
use serde::Serialize;
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

/// The journey performance answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JourneyAnswer {
    pub tenant: String,
    pub journey: String,
    #[schema(value_type = String, pattern = "^(5s|hour|day|week)$")]
    pub granularity: &'static str,
    pub from: String,
    pub to: String,
    pub buckets: Vec<JourneyBucket>,
    /// The journey's registry `title`, when the journey id is a registry id with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub journey_label: Option<String>,
}

/// One bucket × composite key `{journey}/SEQ-n/{content}/{variant}`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JourneyBucket {
    pub start: String,
    pub key: String,
    pub touches: u64,
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub revenue: f64,
    #[serde(flatten)]
    pub labels: crate::state::registry::RegistryLabels,
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
pub fn performance(store: &Store, p: u16, tenant: &str, journey: &str, g: Granularity, from: Ts, to: Ts, lookback_days: i64, horizons: Horizons) -> Result<JourneyAnswer, QueryError> {
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
) -> Result<JourneyAnswer, QueryError> {
    performance_from(store, p, tenant, journey, g, (from, to), lookback_days, horizons, view, view.is_none())
}

/// A counted conversion: (time, late, value, composite key of its last touchpoint).
pub type JourneyConvRow = (Ts, bool, f64, String);

/// [`performance_in`]; `summaries`: the conversions' last touchpoints from the
/// persons' summaries (deterministic persons only), else from their records.
#[allow(clippy::too_many_arguments)]
fn performance_from(
    store: &Store,
    p: u16,
    tenant: &str,
    journey: &str,
    g: Granularity,
    (from, to): (Ts, Ts),
    lookback_days: i64,
    horizons: Horizons,
    view: Option<&super::linking::FinalPersons>,
    summaries: bool,
) -> Result<JourneyAnswer, QueryError> {
    let clamped = clamp_5s(g, from, horizons);
    // Conversions whose bucket starts in [from, to) are inside this range.
    let w = g.width_secs();
    let q = AttributionQuery {
        from: clamped.minus_secs(2 * w),
        to: to.plus_secs(2 * w),
        group_by: GroupBy::Channel,
        lookback_days,
        params: ModelParams::default(),
        currency: None,
        horizon: horizons.retention,
    };
    let mut convs = Vec::new();
    if summaries {
        convs = last_touches_from_summaries(store, p, tenant, &q, journey)?;
    } else {
        let (_, found) = super::attribution::conversions_with_paths_in(store, p, tenant, &q, view)?;
        for c in found {
            let Some(last) = c.touches.last() else { continue };
            // Re-read the last touch for its composite key (from the member of
            // the final person whose timeline holds it).
            let mut rec = None;
            for m in super::linking::members(view, c.person) {
                let tk = key::touch(p, tenant, m, last.0, &last.3);
                if let Some(raw) = store.get(&tk)? {
                    rec = Some(codec::decode::<TouchRec>(&tk, &raw)?);
                    break;
                }
            }
            let Some(t) = rec else { continue };
            if t.touch.dims.journey.as_deref().unwrap_or("-") == journey {
                convs.push((c.ts, c.late, c.value, t.touch.composite_key()));
            }
        }
    }
    performance_with(store, p, tenant, journey, g, (from, to), horizons, convs)
}

/// `from`, for 5-second buckets clamped to the 5-second horizon.
fn clamp_5s(g: Granularity, from: Ts, horizons: Horizons) -> Ts {
    if g == Granularity::FiveSeconds {
        crate::domain::retention::clamp_from(from, horizons.window_5s)
    } else {
        from
    }
}

/// The answer from the window counters and the journey's counted conversions
/// `convs` (any superset of those whose bucket starts in the range).
#[allow(clippy::too_many_arguments)]
pub(super) fn performance_with(
    store: &Store,
    p: u16,
    tenant: &str,
    journey: &str,
    g: Granularity,
    (requested, to): (Ts, Ts),
    horizons: Horizons,
    convs: impl IntoIterator<Item = JourneyConvRow>,
) -> Result<JourneyAnswer, QueryError> {
    let from = clamp_5s(g, requested, horizons);
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
    for (ts, late, value, composite) in convs {
        let b = bucket_start(ts, g);
        // Late conversions skip the 5-second windows, as late touches do.
        if Ts::new(b, 0) < from || Ts::new(b, 0) >= to || (late && g == Granularity::FiveSeconds) {
            continue;
        }
        let e = buckets.entry((b, composite)).or_default();
        e.conversions += 1;
        e.revenue.add(value);
    }
    let buckets = buckets
        .into_iter()
        .map(|((start, key), b)| JourneyBucket {
            start: Ts::new(start, 0).to_string(),
            key,
            touches: b.touches,
            impressions: b.impressions,
            clicks: b.clicks,
            conversions: b.conversions,
            revenue: b.revenue.value(),
            labels: Default::default(),
        })
        .collect();
    Ok(JourneyAnswer { tenant: tenant.to_string(), journey: journey.to_string(), granularity: g.as_str(), from: requested.to_string(), to: to.to_string(), buckets, journey_label: None })
}

/// The conversions of the report currency in `q`'s range whose last
/// touchpoint (the last of its lookback path its consent covers) belongs to
/// `journey`, as `conversions_with_paths` and the touchpoint records give
/// them: the persons' [`view_parts::journey_convs`], read from the
/// deterministic persons' summaries in one sorted pass.
fn last_touches_from_summaries(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, journey: &str) -> Result<Vec<JourneyConvRow>, QueryError> {
    let meta = super::tenant_meta(store, p, tenant)?.unwrap_or_default();
    let Some(cur) = q.currency.clone().or_else(|| meta.default_currency()) else { return Ok(Vec::new()) };
    let mut consent = super::consent::ConsentCache::new(store, p, tenant, &meta);
    let convs = view_parts::indexed_convs(store, p, tenant, (q.from, q.to), &cur, q.horizon, &mut consent)?;
    let lookback = q.lookback_days.saturating_mul(86_400);
    let parts = view_parts::journey_parts(store, p, tenant, &convs, lookback, q.horizon, &mut consent)?;
    Ok(parts.into_iter().flat_map(|(_, cs)| cs).filter(|c| c.journey == journey).map(|c| (c.ts, c.late, c.value, c.composite)).collect())
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
            assert_eq!(v.from, "1970-01-01T00:00:00Z", "the range asked is echoed");
            v.buckets.iter().map(|b| format!("{}:{}", b.start, b.touches)).collect()
        };
        // Stored but behind the horizon (not swept yet): not answered; the horizon itself is kept.
        let h = Some(Ts::new(7_199, 500_000_000));
        assert_eq!(starts(Granularity::FiveSeconds, h), vec!["1970-01-01T02:00:00Z:1", "1970-01-01T02:00:05Z:1"]);
        assert_eq!(starts(Granularity::FiveSeconds, Some(Ts::new(7_200, 0))).len(), 2);
        assert_eq!(starts(Granularity::FiveSeconds, None).len(), 4, "no horizon: everything kept");
        assert_eq!(starts(Granularity::Hour, h), vec!["1970-01-01T00:00:00Z:1", "1970-01-01T01:00:00Z:1", "1970-01-01T02:00:00Z:2"], "roll-ups stay");
    }

    /// The summaries path against the records path: random persons with
    /// touchpoints of two journeys (equal times included), conversions in two
    /// currencies, consent withdrawals, lookbacks and horizons.
    mod summaries_equal_records {
        use super::*;
        use crate::domain::identity::{IdKind, IdNode, PersonIds};
        use crate::domain::{Channel, ConversionInfo, Dims, TouchInfo};
        use crate::state::{ConvRec, PersonRec, TenantMeta};
        use proptest::prelude::*;

        type Person = (Vec<(i64, usize, usize)>, Vec<(i64, u32, bool)>, Vec<(i64, bool)>);

        fn person() -> impl Strategy<Value = Person> {
            (
                prop::collection::vec((0..20 * 24i64, 0..3usize, 0..3usize), 0..6),
                prop::collection::vec((0..20 * 24i64, 1..500u32, prop::bool::weighted(0.2)), 0..3),
                prop::collection::vec((0..20 * 24i64, any::<bool>()), 0..2),
            )
        }

        const BASE: i64 = 1_791_158_400;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
            #[test]
            fn performance_from_summaries_equals_performance_from_records(
                persons in prop::collection::vec(person(), 1..30),
                queries in prop::collection::vec((0..3usize, 0..15 * 24i64, 1..10 * 24i64, 0..4i64, prop::option::of(0..10 * 24i64)), 1..6),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path(), &Default::default()).unwrap();
                let mut txn = store.txn();
                let mut meta = TenantMeta::default();
                meta.currency_counts.insert("USD".into(), 1);
                let mut st = TenantState::with_meta(&mut txn, 1, "acme", meta);
                let hour = |h: i64| Ts::new(BASE + h * 3600, 0);
                for (i, (touches, convs, consent)) in persons.iter().enumerate() {
                    let (person, cid) = (i as u64 * 3 + 1, format!("c{i}"));
                    for (n, &(h, j, content)) in touches.iter().enumerate() {
                        let dims = Dims { journey: [None, Some("j".to_string()), Some("k".to_string())][j].clone(), content: (content > 0).then(|| format!("x{content}")), ..Dims::default() };
                        let touch = TouchInfo { channel: Channel::ALL[n % 4], interaction_type: "click".into(), dims };
                        st.put_touch(person, &TouchRec { event_id: format!("t{i}-{n}"), ts: hour(h), customer_id: cid.clone(), touch }).unwrap();
                    }
                    for (n, &(h, value, eur)) in convs.iter().enumerate() {
                        let conversion = ConversionInfo { value: value as f64 / 10.0, currency: if eur { "EUR" } else { "USD" }.into(), conversion_type: None };
                        st.put_conversion(person, &ConvRec { event_id: format!("c{i}-{n}"), ts: hour(h), customer_id: cid.clone(), conversion, late: n % 2 == 1 }).unwrap();
                    }
                    for (n, &(h, analytics)) in consent.iter().enumerate() {
                        st.put_consent(&cid, hour(h), &format!("u{i}-{n}"), analytics).unwrap();
                    }
                    let ids = PersonIds { members: vec![IdNode { kind: IdKind::Customer, id: cid }], guarded: false };
                    st.txn.put_as(key::person(1, "acme", person), &PersonRec { ids, segments: Vec::new() }).unwrap();
                }
                st.save().unwrap();
                drop(st);
                txn.commit(None).unwrap();
                for (gi, from_h, len_h, lookback, horizon_h) in queries {
                    let g = [Granularity::Hour, Granularity::Day, Granularity::Week][gi];
                    let horizons = Horizons { retention: horizon_h.map(hour), window_5s: None };
                    for j in ["j", "k", "-"] {
                        let run = |summaries| performance_from(&store, 1, "acme", j, g, (hour(from_h), hour(from_h + len_h)), lookback, horizons, None, summaries).unwrap();
                        prop_assert_eq!(run(true), run(false), "{} {:?} {}+{} lookback {} horizon {:?}", j, g, from_h, len_h, lookback, horizon_h);
                    }
                }
            }
        }
    }
}

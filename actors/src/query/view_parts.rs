//! One person's part of the cohorts and journey-performance answers over the
//! deterministic persons, from its path summary (`crate::state::summary`):
//! what the fresh computation ([`super::cohorts`], [`super::journey`]) sums
//! over the persons it reads and what the report cache keeps per person
//! (`super::paths_cache`'s view entries), so a changed person's part is
//! swapped out and the sums stay equal to a fresh computation by construction.
//! Also the reads that feed them: every summary of a tenant in parallel
//! ranges, a sorted list of persons' summaries, and conversions with the
//! `late` flag (which the summary does not keep).

use super::consent::ConsentCache;
use super::sweep::person_summary;
use super::QueryError;
use crate::domain::report::ExactSum;
use crate::domain::retention::{clamp_from, retained};
use crate::domain::{GroupBy, Ts};
use crate::state::summary::Summary;
use crate::state::tenant::{person_in_key, ts_in_key};
use crate::state::{key, ConvIndexRec, ConvRec};
use touchline_storage::keys::{prefix_end, KeyBuf};
use touchline_storage::Store;

/// A person's cohort facts: its first touchpoint (the first of its summary,
/// in key order, that is retained and its consent covers) with that
/// touchpoint's key, and its retained consented conversions in the report
/// currency (all time): their number and the correctly rounded sum of their
/// values.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortPart {
    pub first: Ts,
    pub key: String,
    pub conversions: u64,
    pub revenue: f64,
    /// The earliest time the part depends on: its first touchpoint or a
    /// counted conversion (a retention horizon past it changes the part).
    pub min_ts: Ts,
}

/// `person`'s [`CohortPart`] from its summary `s`; `None` without a
/// retained touchpoint its consent covers.
pub fn cohort_part(s: &Summary, person: u64, by: GroupBy, currency: Option<&str>, horizon: Option<Ts>, consent: &mut ConsentCache) -> Result<Option<CohortPart>, QueryError> {
    let mut first = None;
    for t in s.touches.iter().filter(|t| retained(t.ts, horizon)) {
        if consent.allows(person, t.ts)? {
            first = Some(t);
            break;
        }
    }
    let Some(t) = first else { return Ok(None) };
    let (mut conversions, mut value, mut min_ts) = (0, ExactSum::new(), t.ts);
    for sc in s.convs.iter().filter(|sc| currency == Some(s.currency(sc)) && retained(sc.ts, horizon)) {
        if consent.allows(person, sc.ts)? {
            conversions += 1;
            value.add(sc.value);
            min_ts = min_ts.min(sc.ts);
        }
    }
    Ok(Some(CohortPart { first: t.ts, key: s.key(t, by).to_string(), conversions, revenue: value.value(), min_ts }))
}

/// A conversion as a journey's performance counts it: its time, whether it
/// was late, its value, and its last touchpoint (the last of its lookback
/// path its consent covers): that touchpoint's journey (`-` for none), its
/// composite key and its time.
#[derive(Clone, Debug, PartialEq)]
pub struct JourneyConv {
    pub ts: Ts,
    pub late: bool,
    pub value: f64,
    pub journey: String,
    pub composite: String,
    pub last: Ts,
}

/// A conversion of the report currency as read: (time, late, value).
pub type Conv = (Ts, bool, f64);

/// The [`JourneyConv`]s of `person` with summary `s` and conversions `convs`
/// (retained, its consent covers them): those with a last touchpoint in
/// `[max(ts − lookback, horizon), ts]`.
pub fn journey_convs(s: &Summary, person: u64, convs: &[Conv], lookback_secs: i64, horizon: Option<Ts>, consent: &mut ConsentCache) -> Result<Vec<JourneyConv>, QueryError> {
    let mut out = Vec::new();
    for &(ts, late, value) in convs {
        let lo = clamp_from(ts.minus_secs(lookback_secs), horizon);
        let end = s.touches.partition_point(|t| t.ts <= ts);
        let mut last = None;
        for t in s.touches[..end].iter().rev().take_while(|t| t.ts >= lo) {
            if consent.allows(person, t.ts)? {
                last = Some(t);
                break;
            }
        }
        let Some(t) = last else { continue };
        let (j, composite) = s.journey_and_composite(t);
        out.push(JourneyConv { ts, late, value, journey: j.unwrap_or("-").to_string(), composite, last: t.ts });
    }
    Ok(out)
}

/// The journey conversions of every person of `convs` (sorted by person,
/// each person's conversions as [`journey_convs`] takes them), in one sorted
/// pass over their summaries; persons without any are left out.
pub fn journey_parts(store: &Store, p: u16, tenant: &str, convs: &[(u64, Vec<Conv>)], lookback_secs: i64, horizon: Option<Ts>, consent: &mut ConsentCache) -> Result<Vec<(u64, Vec<JourneyConv>)>, QueryError> {
    let persons: Vec<u64> = convs.iter().map(|c| c.0).collect();
    let mut out = Vec::new();
    let mut at = 0;
    summaries_of(store, p, tenant, &persons, |person, s| {
        let c = &convs[at].1;
        at += 1;
        let Some(s) = s else { return Ok(()) };
        let jc = journey_convs(s, person, c, lookback_secs, horizon, consent)?;
        if !jc.is_empty() {
            out.push((person, jc));
        }
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` with every person of `persons` (sorted, distinct) and its
/// summary (`None`: it has none), in one cursor moved forward person by person.
pub fn summaries_of(store: &Store, p: u16, tenant: &str, persons: &[u64], mut f: impl FnMut(u64, Option<&Summary>) -> Result<(), QueryError>) -> Result<(), QueryError> {
    debug_assert!(persons.windows(2).all(|w| w[0] < w[1]), "persons sorted and distinct");
    let prefix = key::summary_prefix(p, tenant);
    let mut k = prefix.clone();
    let mut c = store.cursor(&prefix, &prefix_end(&prefix));
    for &person in persons {
        k.truncate(prefix.len());
        k.extend_from_slice(&person.to_be_bytes());
        c.advance_to(&k);
        let s = match c.current() {
            Some((ck, v)) if ck == k.as_slice() => Some(person_summary(store, p, tenant, person, ck, v)?),
            _ => None,
        };
        c.status()?;
        f(person, s.as_ref())?;
    }
    Ok(())
}

/// Most threads one sweep of every summary uses.
const SWEEP_THREADS: u64 = 4;

/// `f` of every person of the tenant with a summary, in contiguous person
/// ranges swept on up to [`SWEEP_THREADS`] threads (each with its own
/// consent cache, forked from `consent`): each range's `Some` results, ranges
/// ascending, persons ascending in each.
pub fn sweep_summaries<T: Send>(store: &Store, p: u16, tenant: &str, consent: &ConsentCache, f: impl Fn(&mut ConsentCache, u64, &Summary) -> Result<Option<T>, QueryError> + Sync) -> Result<Vec<Vec<(u64, T)>>, QueryError> {
    let prefix = key::summary_prefix(p, tenant);
    let stop = prefix_end(&prefix);
    let Some(last) = store.last_key(&prefix, &stop)? else { return Ok(Vec::new()) };
    let end = person_in_key(&last, prefix.len()).map_or(u64::MAX, |m| m.saturating_add(1));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64).min(SWEEP_THREADS);
    let threads = if end < 4096 { 1 } else { threads };
    let key_of = |person: u64| KeyBuf(prefix.clone()).u64(person).into_vec();
    let runs: Vec<(Vec<u8>, Vec<u8>)> = (0..threads).map(|i| (key_of(end / threads * i), if i + 1 == threads { stop.clone() } else { key_of(end / threads * (i + 1)) })).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(start, stop)| {
                let (mut consent, prefix, f) = (consent.fork(), &prefix, &f);
                s.spawn(move || -> Result<Vec<(u64, T)>, QueryError> {
                    let mut c = store.cursor(start, stop);
                    let mut out = Vec::new();
                    while let Some((k, v)) = c.current() {
                        if let Some(person) = person_in_key(k, prefix.len()) {
                            let s = person_summary(store, p, tenant, person, k, v)?;
                            if let Some(t) = f(&mut consent, person, &s)? {
                                out.push((person, t));
                            }
                        }
                        c.next();
                    }
                    c.status()?;
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a summary sweep thread panicked")).collect()
    })
}

/// The tenant's conversions of currency `cur` from the time index, retained
/// and in `[from, to)` and covered by their person's consent, grouped by
/// person (persons ascending, each person's in (time, event id) order).
pub fn indexed_convs(store: &Store, p: u16, tenant: &str, (from, to): (Ts, Ts), cur: &str, horizon: Option<Ts>, consent: &mut ConsentCache) -> Result<Vec<(u64, Vec<Conv>)>, QueryError> {
    let prefix = key::conv_by_time_prefix(p, tenant);
    let from = clamp_from(from, horizon);
    let start = key::conv_by_time_at(p, tenant, from);
    let end = key::conv_by_time_at(p, tenant, to.max(from));
    let mut found: Vec<(u64, Ts, ConvIndexRec)> = Vec::new();
    store.scan_as::<ConvIndexRec>(&start, &end, |k, rec| {
        if let Some(ts) = ts_in_key(k, prefix.len()) {
            if rec.currency == cur {
                found.push((rec.person, ts, rec));
            }
        }
        true
    })?;
    // Stable: each person's conversions stay in index order.
    found.sort_by_key(|c| c.0);
    let mut out: Vec<(u64, Vec<Conv>)> = Vec::new();
    for (person, ts, rec) in found {
        if !consent.allows(person, ts)? {
            continue;
        }
        match out.last_mut() {
            Some((p, cs)) if *p == person => cs.push((ts, rec.late, rec.value)),
            _ => out.push((person, vec![(ts, rec.late, rec.value)])),
        }
    }
    Ok(out)
}

/// `person`'s conversions of currency `cur` from its records, as
/// [`indexed_convs`] gives them over all time.
pub fn person_convs(store: &Store, p: u16, tenant: &str, person: u64, cur: &str, horizon: Option<Ts>, consent: &mut ConsentCache) -> Result<Vec<Conv>, QueryError> {
    let mut out = Vec::new();
    for c in store.prefix_as::<ConvRec>(&key::conv_prefix(p, tenant, person))? {
        if c.conversion.currency == cur && retained(c.ts, horizon) && consent.allows(person, c.ts)? {
            out.push((c.ts, c.late, c.conversion.value));
        }
    }
    Ok(out)
}

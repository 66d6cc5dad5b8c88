//! Many persons' parts of a report in one pass: for a sorted list of persons,
//! one cursor over the tenant's path summaries ([`crate::state::summary`]),
//! moved forward person by person (a step when the next person is near, a seek
//! otherwise). Each person's summary is read once: its conversions in range,
//! then its touchpoints from the earliest lookback start to the end of the
//! range, out of which [`assemble`] cuts every conversion's lookback path and
//! the non-converting tail exactly as [`super::datadriven::all_persons`] and
//! [`super::attribution::conversions_with_paths`] define them.

use super::attribution::AttributionQuery;
use super::activity_index::{ActivityIndex, IndexBuilder};
use super::consent::ConsentCache;
use super::datadriven::{PathKey, PersonPaths};
use super::paths_entry::{LocalParts, Names};
use std::sync::Mutex;
use super::QueryError;
use crate::domain::retention::clamp_from;
use crate::domain::{Channel, GroupBy, Ts, NONE_KEY};
use crate::state::{key, ConvRec, TouchRec};
use crate::state::summary::{STouch, Summary};
use touchline_storage::keys::{prefix_end, KeyBuf};
use touchline_storage::StorageError;
use touchline_storage::Store;

/// A touchpoint as a part uses it: time, channel, grouping key.
pub type Touch = (Ts, Channel, PathKey);

/// The grouping key of `t`, borrowed when it is static.
fn path_key(s: &Summary, t: &STouch, group_by: GroupBy) -> PathKey {
    match s.key(t, group_by) {
        _ if group_by == GroupBy::Channel => PathKey::Borrowed(t.channel.as_str()),
        NONE_KEY => PathKey::Borrowed(NONE_KEY),
        k => PathKey::Owned(k.to_string()),
    }
}

/// The summary of `person` stored at `k` as `v`: decoded, or for an overflow
/// person ([`crate::state::summary::OVERFLOW`]) built from its records.
pub fn person_summary(store: &Store, p: u16, tenant: &str, person: u64, k: &[u8], v: &[u8]) -> Result<Summary, StorageError> {
    if crate::state::summary::is_overflow(v) {
        let touches: Vec<TouchRec> = store.prefix_as(&key::touch_prefix(p, tenant, person))?;
        let convs: Vec<ConvRec> = store.prefix_as(&key::conv_prefix(p, tenant, person))?;
        return Ok(Summary::of(&touches, &convs));
    }
    Summary::decode(v).map_err(|_| crate::state::summary::unreadable(k))
}

/// Fewer persons than this are swept on the caller's thread.
const PARALLEL_MIN: usize = 4096;
/// Most threads one sweep uses.
const MAX_THREADS: usize = 4;

/// [`persons_parts`] as one iterator of (person, part), in order: when the
/// list is long, split into contiguous runs swept on up to [`MAX_THREADS`]
/// threads (each with its own cursor and consent cache). The caller aggregates
/// after the threads are done: measured at 1 M persons on 2 cores, handing
/// chunks over while the threads read was slower (1.1–1.3 s against 0.9 s),
/// the aggregating thread competing with them and freeing their allocations.
pub fn persons_parts_parallel(
    store: &Store,
    p: u16,
    tenant: &str,
    q: &AttributionQuery,
    currency: &str,
    consent: &mut ConsentCache,
    persons: &[u64],
) -> Result<impl Iterator<Item = (u64, PersonPaths)>, QueryError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
    let runs = if threads < 2 || persons.len() < PARALLEL_MIN {
        vec![persons_parts(store, p, tenant, q, currency, consent, persons)?]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = persons
                .chunks(persons.len().div_ceil(threads))
                .map(|run| {
                    let mut consent = consent.fork();
                    s.spawn(move || persons_parts(store, p, tenant, q, currency, &mut consent, run))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a sweep thread panicked")).collect::<Result<Vec<_>, _>>()
        })?
    };
    Ok(runs.into_iter().flatten())
}

/// The parts of `persons` (sorted ascending, distinct) for query `q` in report
/// currency `currency`, in the same order; a person without any is given an
/// empty part.
pub fn persons_parts(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, currency: &str, consent: &mut ConsentCache, persons: &[u64]) -> Result<Vec<(u64, PersonPaths)>, QueryError> {
    debug_assert!(persons.windows(2).all(|w| w[0] < w[1]), "persons sorted and distinct");
    let prefix = key::summary_prefix(p, tenant);
    let mut k = KeyBuf(prefix.clone()).u64(persons.first().copied().unwrap_or(0)).into_vec();
    let mut c = store.cursor(&k, &prefix_end(&prefix));
    let mut out = Vec::with_capacity(persons.len());
    let mut touches = Vec::new();
    for &person in persons {
        k.truncate(prefix.len());
        k.extend_from_slice(&person.to_be_bytes());
        c.advance_to(&k);
        let part = match c.current() {
            Some((ck, v)) if ck == k.as_slice() => {
                let summary = person_summary(store, p, tenant, person, ck, v)?;
                part_of(q, currency, consent, person, &summary, &mut touches)?
            }
            _ => {
                c.status()?;
                PersonPaths::default()
            }
        };
        out.push((person, part));
    }
    c.status()?;
    Ok(out)
}

/// One person's part of query `q` (report currency `currency`) from its
/// summary (`touches` is scratch space).
pub(super) fn part_of(q: &AttributionQuery, currency: &str, consent: &mut ConsentCache, person: u64, summary: &Summary, touches: &mut Vec<Touch>) -> Result<PersonPaths, QueryError> {
    let from = clamp_from(q.from, q.horizon);
    let to = q.to.max(from);
    let lookback = q.lookback_days.saturating_mul(86_400);
    let mut allowed = Vec::new();
    for sc in summary.convs.iter().filter(|sc| sc.ts >= from && sc.ts < to) {
        if summary.currency(sc) == currency && consent.allows(person, sc.ts)? {
            allowed.push((sc.ts, sc.value));
        }
    }
    // Touchpoints from the first conversion's lookback start (or the range's).
    let t_from = allowed.first().map_or(from, |c| clamp_from(c.0.minus_secs(lookback), q.horizon).min(from));
    touches.clear();
    touches.extend(summary.touches.iter().filter(|t| t.ts >= t_from && t.ts < to).map(|t| (t.ts, t.channel, path_key(summary, t, q.group_by))));
    assemble(q, lookback, from, &allowed, touches, consent, person)
}

/// Every person's part of query `q` (the non-empty ones, aggregated per
/// thread: [`LocalParts`], their keys interned in the returned [`Names`]) and,
/// `with_index`, the tenant's activity index, from one pass over all its
/// summaries: what the first query of a tenant needs, without a separate walk
/// for the index, and what a range holding most of the tenant's activity
/// needs. The person keys are split into contiguous ranges swept on up to
/// [`MAX_THREADS`] threads.
pub(super) fn sweep_all(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, currency: &str, consent: &mut ConsentCache, with_index: bool) -> Result<(Names, Vec<LocalParts>, ActivityIndex), QueryError> {
    let prefix = key::summary_prefix(p, tenant);
    let Some(last) = store.last_key(&prefix, &prefix_end(&prefix))? else { return Ok((Names::default(), Vec::new(), ActivityIndex::default())) };
    let end = crate::state::tenant::person_in_key(&last, prefix.len()).map_or(u64::MAX, |m| m.saturating_add(1));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
    let threads = if end < PARALLEL_MIN as u64 { 1 } else { threads as u64 };
    let bounds: Vec<(u64, u64)> = (0..threads).map(|i| (end / threads * i, if i + 1 == threads { end } else { end / threads * (i + 1) })).collect();
    let names = Mutex::new(Names::default());
    let runs: Vec<(LocalParts, ActivityIndex)> = std::thread::scope(|s| {
        let handles: Vec<_> = bounds
            .iter()
            .map(|&(lo, hi)| {
                let (mut consent, prefix, names) = (consent.fork(), &prefix, &names);
                s.spawn(move || sweep_range(store, p, tenant, q, currency, &mut consent, names, with_index, prefix, lo, hi, end))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a sweep thread panicked")).collect::<Result<Vec<_>, QueryError>>()
    })?;
    let mut parts = Vec::new();
    let mut index = ActivityIndex::default();
    for (ps, ix) in runs {
        parts.push(ps);
        index.merge(ix);
    }
    Ok((names.into_inner().unwrap_or_else(|e| e.into_inner()), parts, index))
}

/// [`sweep_all`] over the persons `[lo, hi)` (`hi == end`: to the end of the tenant).
#[allow(clippy::too_many_arguments)]
fn sweep_range(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, currency: &str, consent: &mut ConsentCache, names: &Mutex<Names>, with_index: bool, prefix: &[u8], lo: u64, hi: u64, end: u64) -> Result<(LocalParts, ActivityIndex), QueryError> {
    let start = KeyBuf(prefix.to_vec()).u64(lo).into_vec();
    let stop = if hi == end { prefix_end(prefix) } else { KeyBuf(prefix.to_vec()).u64(hi).into_vec() };
    let mut c = store.cursor(&start, &stop);
    let (mut parts, mut index, mut touches) = (LocalParts::new(lo), IndexBuilder::default(), Vec::new());
    while let Some((k, v)) = c.current() {
        if let Some(person) = crate::state::tenant::person_in_key(k, prefix.len()) {
            let summary = person_summary(store, p, tenant, person, k, v)?;
            if with_index {
                for ts in summary.times() {
                    index.add(person, ts);
                }
            }
            parts.push(names, person, part_of(q, currency, consent, person, &summary, &mut touches)?);
        }
        c.next();
    }
    c.status()?;
    Ok((parts, index.finish()))
}

/// One person's part from its conversions in range (time, value; currency
/// and consent applied, in time order) and its touchpoints from the first
/// lookback start to the end of the range (in key order): every conversion's
/// lookback path (touches in `[max(ts − lookback, horizon), ts]` its consent
/// covers), and the touches in `[from, to)` after the last conversion as the
/// `(null)` path (the touches are taken).
pub fn assemble(q: &AttributionQuery, lookback: i64, from: Ts, convs: &[(Ts, f64)], touches: &mut Vec<Touch>, consent: &mut ConsentCache, person: u64) -> Result<PersonPaths, QueryError> {
    let mut pp = PersonPaths::default();
    for &(ts, value) in convs {
        let lo = clamp_from(ts.minus_secs(lookback), q.horizon);
        let a = touches.partition_point(|t| t.0 < lo);
        let b = touches.partition_point(|t| t.0 <= ts);
        let mut path: Vec<Touch> = touches[a..b.max(a)].to_vec();
        consent.retain(person, &mut path, |t| t.0)?;
        pp.push_conv(ts, value, path);
    }
    let last = convs.last().map(|c| c.0);
    let mut tail: Vec<Touch> = touches.drain(..).filter(|t| t.0 >= from && last.is_none_or(|l| t.0 > l)).collect();
    consent.retain(person, &mut tail, |t| t.0)?;
    if let Some(first) = tail.first() {
        pp.saw(first.0);
        pp.null = Some(tail.into_iter().map(|t| t.2).collect());
    }
    Ok(pp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConversionInfo, Dims, GroupBy, TouchInfo};
    use crate::state::{ConvRec, TenantState, TouchRec};

    #[test]
    fn parallel_sweep_equals_one_thread() {
        use crate::state::{key, TenantMeta};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &touchline_storage::StoreOptions::default()).unwrap();
        let (p, t) = (1u16, "acme");
        let mut txn = store.txn();
        let meta = TenantMeta::default();
        txn.put_as(key::tenant_meta(p, t), &meta).unwrap();
        let mut st = TenantState::records(&mut txn, p, t);
        let persons: Vec<u64> = (0..PARALLEL_MIN as u64 + 500).map(|i| i * 3).collect();
        for &person in &persons {
            for i in 0..(person % 4) as i64 {
                let touch = TouchInfo { channel: Channel::ALL[(person as usize + i as usize) % 10], interaction_type: "click".into(), dims: Dims::default() };
                let rec = TouchRec { event_id: format!("t{person}-{i}"), ts: Ts::new(1_000_000 + i * 3600 + person as i64, 0), customer_id: "c".into(), touch };
                st.put_touch(person, &rec).unwrap();
            }
            if person % 5 == 0 {
                let conversion = ConversionInfo { value: person as f64, currency: "USD".into(), conversion_type: None };
                let rec = ConvRec { event_id: format!("c{person}"), ts: Ts::new(1_000_000 + 3600 + person as i64, 0), customer_id: "c".into(), conversion, late: false };
                st.put_conversion(person, &rec).unwrap();
            }
        }
        txn.commit(None).unwrap();
        let q = AttributionQuery { from: Ts::new(1_000_000 + 1800, 0), to: Ts::new(2_000_000, 0), group_by: GroupBy::Channel, lookback_days: 1, params: Default::default(), currency: None, horizon: None };
        let mut consent = ConsentCache::new(&store, p, t, &meta);
        let one = persons_parts(&store, p, t, &q, "USD", &mut consent, &persons).unwrap();
        let mut many = Vec::new();
        many.extend(persons_parts_parallel(&store, p, t, &q, "USD", &mut consent, &persons).unwrap());
        // One pass over every summary: the same non-empty parts, and the index a walk builds.
        let (names, locals, ix) = sweep_all(&store, p, t, &q, "USD", &mut consent, true).unwrap();
        assert_eq!(locals.len(), 2, "two threads");
        assert!(sweep_all_equals_set(&q, names, locals, &one));
        let walked = ActivityIndex::scan(&store, p, t).unwrap();
        for range in [(Ts::new(0, 0), Ts::new(3_000_000, 0)), (Ts::new(1_000_000 + 3600, 0), Ts::new(1_000_000 + 7200, 0)), (Ts::new(1_010_000, 0), Ts::new(1_020_000, 0))] {
            assert_eq!(ix.persons_in(&[range]), walked.persons_in(&[range]), "{range:?}");
            assert_eq!(ix.bytes(), walked.bytes());
        }
        assert_eq!(one.len(), persons.len());
        assert!(one.iter().any(|(_, pp)| !pp.convs.is_empty() && pp.convs[0].touches.len() > 1));
        assert_eq!(one, many);
    }

    #[test]
    fn an_overflow_person_is_read_from_its_records() {
        use crate::query::activity_index::ActivityIndex;
        use crate::state::summary::{is_overflow, MAX_RECORDS};
        use crate::state::{key, TenantMeta};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &touchline_storage::StoreOptions::default()).unwrap();
        let (p, t) = (2u16, "acme");
        let mut txn = store.txn();
        let meta = TenantMeta::default();
        txn.put_as(key::tenant_meta(p, t), &meta).unwrap();
        let mut st = TenantState::records(&mut txn, p, t);
        for (person, n) in [(1u64, MAX_RECORDS + 5), (2, 3)] {
            for i in 0..n as i64 {
                let dims = Dims { campaign: Some(format!("c{}", i % 3)), ..Dims::default() };
                let touch = TouchInfo { channel: Channel::ALL[i as usize % 10], interaction_type: "click".into(), dims };
                st.put_touch(person, &TouchRec { event_id: format!("t{person}-{i}"), ts: Ts::new(1_000_000 + i * 60, 0), customer_id: "c".into(), touch }).unwrap();
            }
            let conversion = ConversionInfo { value: 5.0, currency: "USD".into(), conversion_type: None };
            st.put_conversion(person, &ConvRec { event_id: format!("c{person}"), ts: Ts::new(1_000_000 + 30 * 60 + 1, 0), customer_id: "c".into(), conversion, late: false }).unwrap();
        }
        txn.commit(None).unwrap();
        assert!(is_overflow(&store.get(&key::summary(p, t, 1)).unwrap().unwrap()));
        assert!(!is_overflow(&store.get(&key::summary(p, t, 2)).unwrap().unwrap()));
        let q = AttributionQuery { from: Ts::new(1_000_000, 0), to: Ts::new(2_000_000, 0), group_by: GroupBy::Campaign, lookback_days: 1, params: Default::default(), currency: None, horizon: None };
        let mut consent = ConsentCache::new(&store, p, t, &meta);
        let got = persons_parts(&store, p, t, &q, "USD", &mut consent, &[1, 2]).unwrap();
        let (_, want) = crate::query::datadriven::all_persons_of_query(&store, p, t, &AttributionQuery { currency: Some("USD".into()), ..q.clone() }).unwrap();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        assert_eq!(got[0].1.convs[0].touches.len(), 31, "the overflow person's lookback path");
        let ix = ActivityIndex::scan(&store, p, t).unwrap();
        assert_eq!(ix.persons_in(&[(Ts::new(1_000_000 + 3600 * 10, 0), Ts::new(1_000_000 + 3600 * 11, 0))]), vec![1], "only person 1 reaches hour 10");
    }

    /// An entry absorbing the threads' parts equals one set person by person.
    fn sweep_all_equals_set(q: &AttributionQuery, names: Names, locals: Vec<LocalParts>, one: &[(u64, PersonPaths)]) -> bool {
        use crate::domain::models::Model;
        use crate::query::paths_entry::{Entry, EntryKey};
        let key = EntryKey { partition: 1, tenant: "acme".into(), from: q.from, to: q.to, group_by: q.group_by, lookback_days: q.lookback_days, currency: "USD".into(), all: false };
        let mut a = Entry::new(key.clone(), 0, 0);
        for (person, pp) in one {
            a.set(*person, pp.clone());
        }
        let mut b = Entry::new(key, 0, 0);
        b.absorb(names, locals);
        let same = [Model::Markov, Model::Shapley, Model::Linear, Model::FirstTouch].into_iter().all(|m| {
            let (x, y) = (a.report(m, &q.params), b.report(m, &q.params));
            x.rows == y.rows && x.conversions == y.conversions && x.conversion_value == y.conversion_value
        });
        same && a.bytes() == b.bytes() && a.persons.len() == b.persons.len() && a.persons.len() > 100
    }
}

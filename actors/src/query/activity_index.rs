//! Which persons of a watched tenant have a touchpoint or conversion in each
//! hour: what lets [`super::paths_cache`] answer a new query range without
//! reading every person of the tenant.
//!
//! A person's part of a report over `[from, to)` depends only on its records
//! inside the range (plus the lookback touches before its conversions, read from
//! its own timeline): a person with no record in the range contributes nothing,
//! and a person with no record in `R0 Δ R1` has the same part for both ranges.
//! So a new range needs only the persons the index lists for it, or for its
//! difference with a cached range.
//!
//! The index may list more than the truth, never less: it is built from one
//! walk of the tenant's path summaries (`crate::state::summary`), and every
//! committed timeline or conversion key adds its (hour, person) — a deleted or moved record leaves its entry behind, which
//! only costs a recomputation that finds nothing. It is dropped when the
//! partition's state is replaced (the observer's reset).

use crate::domain::Ts;
use crate::state::summary;
use std::collections::BTreeMap;
use std::sync::Mutex;
use touchline_storage::keys::prefix_end;
use touchline_storage::{StorageError, Store};

/// Width of one bucket.
pub const BUCKET_SECS: i64 = 3600;

/// Bytes charged per listed (hour, person) and per bucket.
const PAIR_BYTES: usize = 8;
const BUCKET_BYTES: usize = 64;

/// The bucket holding `ts`: bucket `b` covers `[b·3600 s, (b+1)·3600 s)`.
pub fn bucket_of(ts: Ts) -> i64 {
    ts.secs.div_euclid(BUCKET_SECS)
}

/// The first and last bucket overlapping the half-open `[from, to)`, `None`
/// when it is empty.
pub fn buckets_of(from: Ts, to: Ts) -> Option<(i64, i64)> {
    if from >= to {
        return None;
    }
    Some((bucket_of(from), bucket_of(Ts::from_nanos(to.as_nanos() - 1))))
}

/// `a \ b` for half-open ranges: at most two ranges (empty ones left out).
pub fn minus(a: (Ts, Ts), b: (Ts, Ts)) -> Vec<(Ts, Ts)> {
    if b.0 >= b.1 {
        return if a.0 < a.1 { vec![a] } else { Vec::new() };
    }
    [(a.0, a.1.min(b.0)), (a.0.max(b.1), a.1)].into_iter().filter(|(f, t)| f < t).collect()
}

/// The symmetric difference `a Δ b` as at most four half-open ranges.
pub fn sym_diff(a: (Ts, Ts), b: (Ts, Ts)) -> Vec<(Ts, Ts)> {
    let mut out = minus(a, b);
    out.extend(minus(b, a));
    out
}

/// One bucket: its persons, the first `sorted` of them sorted and distinct,
/// the rest added since (unsorted, possibly repeated).
#[derive(Default)]
struct Bucket {
    persons: Vec<u64>,
    sorted: usize,
}

impl Bucket {
    fn add(&mut self, person: u64) -> bool {
        if self.persons.last() == Some(&person) {
            return false;
        }
        self.persons.push(person);
        if self.persons.len() - self.sorted > 64 + self.sorted / 2 {
            self.normalize();
        }
        true
    }

    fn normalize(&mut self) {
        self.persons.sort_unstable();
        self.persons.dedup();
        self.sorted = self.persons.len();
    }
}

/// The (hour, person) sets of one tenant; see the module docs.
#[derive(Default)]
pub struct ActivityIndex {
    buckets: BTreeMap<i64, Bucket>,
    pairs: usize,
}

impl ActivityIndex {
    /// Lists `person` as active in `ts`'s bucket.
    pub fn add(&mut self, ts: Ts, person: u64) {
        let b = self.buckets.entry(bucket_of(ts)).or_default();
        let before = b.persons.len();
        b.add(person);
        self.pairs = (self.pairs + b.persons.len()) - before;
    }

    /// Adds every listed pair of `other`.
    pub fn merge(&mut self, other: ActivityIndex) {
        for (id, mut ob) in other.buckets {
            ob.normalize();
            let b = self.buckets.entry(id).or_default();
            let before = b.persons.len();
            b.persons.extend(ob.persons);
            b.normalize();
            self.pairs = (self.pairs + b.persons.len()) - before;
        }
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.pairs * PAIR_BYTES + self.buckets.len() * BUCKET_BYTES
    }

    fn buckets_in<'a>(&'a self, ranges: &[(Ts, Ts)]) -> impl Iterator<Item = &'a Bucket> + 'a {
        let mut ids: Vec<(i64, i64)> = ranges.iter().filter_map(|(f, t)| buckets_of(*f, *t)).collect();
        ids.sort_unstable();
        // Overlapping bucket spans merged, so no bucket is visited twice.
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ids.len());
        for (lo, hi) in ids {
            match merged.last_mut() {
                Some(last) if lo <= last.1 + 1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged.into_iter().flat_map(move |(lo, hi)| self.buckets.range(lo..=hi).map(|(_, b)| b))
    }

    /// Every person listed in a bucket overlapping one of `ranges`, sorted
    /// and distinct: a superset of the persons with a record in them.
    pub fn persons_in(&self, ranges: &[(Ts, Ts)]) -> Vec<u64> {
        // Person keys are a tenant's counter, so dense: a bitmap over them
        // beats sorting the (hour, person) pairs when it is no larger than them.
        let (mut max, mut pairs) = (0u64, 0usize);
        for b in self.buckets_in(ranges) {
            max = max.max(b.persons.iter().copied().max().unwrap_or(0));
            pairs += b.persons.len();
        }
        if max / 64 <= pairs as u64 {
            let mut bits = vec![0u64; max as usize / 64 + 1];
            for &p in self.buckets_in(ranges).flat_map(|b| b.persons.iter()) {
                bits[p as usize / 64] |= 1 << (p % 64);
            }
            let mut out = Vec::new();
            for (w, &word) in bits.iter().enumerate() {
                let mut x = word;
                while x != 0 {
                    out.push(w as u64 * 64 + u64::from(x.trailing_zeros()));
                    x &= x - 1;
                }
            }
            return out;
        }
        let mut out: Vec<u64> = self.buckets_in(ranges).flat_map(|b| b.persons.iter().copied()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Number of listed (hour, person) pairs.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// An upper bound of `persons_in(ranges).len()`, without collecting them.
    pub fn count_in(&self, ranges: &[(Ts, Ts)]) -> usize {
        self.buckets_in(ranges).map(|b| b.persons.len()).sum()
    }

    /// Builds the index of `tenant` from its persons' path summaries.
    pub fn scan(store: &Store, p: u16, tenant: &str) -> Result<ActivityIndex, StorageError> {
        let prefix = crate::state::key::summary_prefix(p, tenant);
        let mut builder = IndexBuilder::default();
        let mut err = None;
        store.scan(&prefix, &prefix_end(&prefix), |k, v| {
            let Some(person) = crate::state::tenant::person_in_key(k, prefix.len()) else { return true };
            // Times walked in place; an overflow person's from its records.
            let walked = if summary::is_overflow(v) {
                super::sweep::person_summary(store, p, tenant, person, k, v).map(|s| s.times().for_each(|ts| builder.add(person, ts)))
            } else {
                summary::for_each_ts(v, |ts| builder.add(person, ts)).map_err(|_| summary::unreadable(k))
            };
            match walked {
                Ok(()) => true,
                Err(e) => {
                    err = Some(e);
                    false
                }
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(builder.finish()),
        }
    }
}

/// Builds an index from persons added in ascending order (each bucket's list
/// then comes out sorted and distinct).
#[derive(Default)]
pub struct IndexBuilder {
    buckets: foldhash::HashMap<i64, Vec<u64>>,
}

impl IndexBuilder {
    /// Lists `person` (not below any person added before) in `ts`'s bucket.
    pub fn add(&mut self, person: u64, ts: Ts) {
        let v = self.buckets.entry(bucket_of(ts)).or_default();
        if v.last() != Some(&person) {
            v.push(person);
        }
    }

    pub fn finish(self) -> ActivityIndex {
        let mut ix = ActivityIndex::default();
        for (id, persons) in self.buckets {
            ix.pairs += persons.len();
            ix.buckets.insert(id, Bucket { sorted: persons.len(), persons });
        }
        ix
    }
}

/// A tenant's index as the cache shares it: commits add to `data` while the
/// first query builds it (`ready` is held for the walk, so a second query
/// waits for it instead of walking again).
#[derive(Default)]
pub struct TenantIndex {
    pub data: Mutex<ActivityIndex>,
    pub ready: Mutex<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Ts {
        Ts::new(secs, 0)
    }

    #[test]
    fn buckets_are_half_open_hours() {
        assert_eq!(bucket_of(t(0)), 0);
        assert_eq!(bucket_of(t(3599)), 0);
        assert_eq!(bucket_of(Ts::new(3599, 999_999_999)), 0);
        assert_eq!(bucket_of(t(3600)), 1);
        assert_eq!(bucket_of(t(-1)), -1);
        // [1 h, 2 h) is bucket 1 alone; one nanosecond more reaches bucket 2.
        assert_eq!(buckets_of(t(3600), t(7200)), Some((1, 1)));
        assert_eq!(buckets_of(t(3600), Ts::new(7200, 1)), Some((1, 2)));
        assert_eq!(buckets_of(Ts::new(3599, 999_999_999), t(3600)), Some((0, 0)));
        assert_eq!(buckets_of(t(5), t(5)), None);
        assert_eq!(buckets_of(t(6), t(5)), None);
    }

    #[test]
    fn differences_of_ranges() {
        let r = |a, b| (t(a), t(b));
        assert_eq!(minus(r(0, 10), r(3, 5)), vec![r(0, 3), r(5, 10)]);
        assert_eq!(minus(r(0, 10), r(0, 10)), vec![]);
        assert_eq!(minus(r(0, 10), r(20, 30)), vec![r(0, 10)]);
        assert_eq!(minus(r(0, 10), r(5, 5)), vec![r(0, 10)]);
        // A one-hour slide: the hour that left and the hour that came.
        assert_eq!(sym_diff(r(0, 7200), r(3600, 10800)), vec![r(0, 3600), r(7200, 10800)]);
        // Disjoint ranges: both whole, not the gap between them.
        assert_eq!(sym_diff(r(0, 10), r(20, 30)), vec![r(0, 10), r(20, 30)]);
        // Nested.
        assert_eq!(sym_diff(r(0, 30), r(10, 20)), vec![r(0, 10), r(20, 30)]);
    }

    #[test]
    fn persons_by_range_edges() {
        let mut ix = ActivityIndex::default();
        ix.add(t(3599), 1); // last second of hour 0
        ix.add(t(3600), 2); // first second of hour 1
        ix.add(t(7199), 3);
        ix.add(t(7200), 4);
        ix.add(t(7200), 4);
        ix.add(t(3700), 2);
        assert_eq!(ix.persons_in(&[(t(3600), t(7200))]), vec![2, 3]);
        assert_eq!(ix.persons_in(&[(t(3599), t(3600))]), vec![1]);
        assert_eq!(ix.persons_in(&[(t(0), Ts::new(7200, 1))]), vec![1, 2, 3, 4]);
        assert_eq!(ix.persons_in(&[(t(7200), t(7200))]), Vec::<u64>::new());
        // A sub-hour range lists its whole hour (a superset).
        assert_eq!(ix.persons_in(&[(t(3650), t(3660))]), vec![2, 3]);
        // Overlapping ranges visit each bucket once; the count is an upper
        // bound (person 2's second, not yet deduplicated, add counts).
        assert_eq!(ix.count_in(&[(t(0), t(7200)), (t(3600), t(7300))]), 5);
        assert_eq!(ix.persons_in(&[(t(0), t(7200)), (t(3600), t(7300))]), vec![1, 2, 3, 4]);
        assert_eq!(ix.pairs, 5);
    }

    #[test]
    fn dense_and_sparse_person_keys_list_alike() {
        for scale in [1u64, 1 << 40] {
            let mut ix = ActivityIndex::default();
            let mut want = Vec::new();
            for i in (0..300u64).rev() {
                let person = (i * 7 % 300) * scale;
                ix.add(t(i as i64 * 600), person);
                ix.add(t(i as i64 * 600 + 3600), person);
                want.push(person);
            }
            want.sort_unstable();
            want.dedup();
            assert_eq!(ix.persons_in(&[(t(0), t(1_000_000))]), want, "scale {scale}");
            let first_hour: Vec<u64> = (0..6u64).map(|i| (i * 7 % 300) * scale).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
            assert_eq!(ix.persons_in(&[(t(0), t(3600))]), first_hour, "scale {scale}");
        }
    }

    #[test]
    fn repeated_adds_stay_bounded() {
        let mut ix = ActivityIndex::default();
        for round in 0..100 {
            for person in 0..10 {
                ix.add(t(round), person);
            }
        }
        let b = ix.buckets.get(&0).unwrap();
        assert!(b.persons.len() <= 10 + 64 + 5 + 1, "{}", b.persons.len());
        assert_eq!(ix.persons_in(&[(t(0), t(1))]), (0..10).collect::<Vec<_>>());
    }
}

//! The retention sweep: physically deletes, in bounded steps, what lies behind
//! its tenant's horizons (`domain::retention`) — touchpoints, conversions,
//! conversion-index entries and summary records behind the retention horizon,
//! dedup markers behind the dedup horizon (`super::dedup`), 5-second journey
//! window buckets behind the 5-second horizon, and the `consent_update`
//! records behind the retention horizon except each customer_id's latest
//! (the one that still decides for retained events), and the probabilistic
//! signal records behind the retention horizon. Identity (nodes,
//! persons, links), segments, campaigns, variants and the hour, day and week
//! window roll-ups are never touched.
//!
//! One pass walks, for every tenant of every owned partition, eight spaces:
//! the per-person touch and conversion timelines (each person's expired
//! records are a key prefix, so the walk seeks past a person's retained rest),
//! the conversion time index (expired entries are one leading key range),
//! the persons' path summaries (`super::summary`, trimmed in place), every
//! dedup marker (their order is the event ids': a pass visits them all), the
//! 5-second window buckets, the consent and the signal records (per journey,
//! per customer_id in time order: the walk seeks past the retained rest).
//! A step visits at most `budget` keys and resumes where the last one stopped.
//! It reads committed state and writes its deletes and trims into a
//! transaction, which the partition actor commits between batches like any
//! batch — published to the changelog first — so standbys and restores drop
//! what retention removed instead of bringing it back. Queries already ignore
//! everything behind the horizon and the horizon never moves back, so a record
//! a step deletes is invisible anyway.

use super::dedup::walk_markers;
use super::records::key;
use super::summary::{self, Summary};
use super::tenant::{person_in_key, ts_in_key};
use crate::domain::retention::RetentionPolicy;
use crate::domain::window::Granularity;
use crate::domain::Ts;
use std::collections::VecDeque;
use touchline_storage::keys::{prefix_end, KeyBuf, Space};
use touchline_storage::{StorageError, Store, Txn, Walk};

/// The spaces of the main pass, in order (`Window`: its 5-second buckets
/// only). Each walk seeks past what it keeps: a pass costs about the expired
/// keys plus one visit per person, journey and customer_id.
const SPACES: [Space; 7] = [Space::Touch, Space::Conversion, Space::ConversionByTime, Space::Summary, Space::Window, Space::Consent, Space::Signal];

/// Dedup markers are in event-id order, so a walk visits every one: they have
/// a lane of their own, which takes half of a step's budget while the main
/// pass has work (the lanes take turns at going first), so a long walk over
/// them never holds the timelines up.
const MARKER_SPACES: [Space; 1] = [Space::Dedup];

#[derive(Clone, Debug, PartialEq, Eq)]
struct Unit {
    partition: u16,
    tenant: String,
    space: Space,
}

/// What one step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    pub visited: usize,
    pub deleted: u64,
    /// The step finished a pass over every owned tenant.
    pub pass_completed: bool,
}

/// The sweep's position between steps.
#[derive(Debug, Default)]
pub struct Sweeper {
    main: Lane,
    markers: Lane,
    /// The marker lane goes first in this step.
    markers_first: bool,
    /// Completed passes of the main lane (timelines, 5-second windows, consent).
    pub passes: u64,
    /// Completed passes over the dedup markers.
    pub marker_passes: u64,
}

/// One walk over some spaces of every owned tenant, resumable.
#[derive(Debug, Default)]
struct Lane {
    units: VecDeque<Unit>,
    cursor: Option<Vec<u8>>,
}

impl Sweeper {
    pub fn new() -> Sweeper {
        Sweeper::default()
    }

    /// Visits at most `budget` committed keys of the partitions in `owned`,
    /// deleting (in `txn`) what lies behind each tenant's horizons under `policy`.
    pub fn step(&mut self, txn: &mut Txn, owned: &[u16], policy: &RetentionPolicy, budget: usize) -> Result<StepReport, StorageError> {
        let mut report = StepReport::default();
        self.markers_first = !self.markers_first;
        let order = [self.markers_first, !self.markers_first];
        let first_done = self.run_lane(order[0], txn, owned, policy, budget.div_ceil(2), &mut report)?;
        self.run_lane(order[1], txn, owned, policy, budget - report.visited, &mut report)?;
        // What the second lane left goes back to the first (without starting a new pass).
        if !first_done && report.visited < budget {
            self.run_lane(order[0], txn, owned, policy, budget - report.visited, &mut report)?;
        }
        Ok(report)
    }

    /// Runs the marker lane (`markers`) or the main one for at most `budget`
    /// keys; `true` when it completed a pass.
    fn run_lane(&mut self, markers: bool, txn: &mut Txn, owned: &[u16], policy: &RetentionPolicy, budget: usize, report: &mut StepReport) -> Result<bool, StorageError> {
        let (lane, spaces) = if markers { (&mut self.markers, &MARKER_SPACES[..]) } else { (&mut self.main, &SPACES[..]) };
        let completed = lane.run(txn, spaces, owned, policy, budget, report)?;
        if completed && markers {
            self.marker_passes += 1;
        } else if completed {
            self.passes += 1;
            report.pass_completed = true;
        }
        Ok(completed)
    }
}

impl Lane {
    /// Walks `spaces` of every owned tenant from where it stopped, for at
    /// most `budget` keys; `true` when it completed a pass.
    fn run(&mut self, txn: &mut Txn, spaces: &[Space], owned: &[u16], policy: &RetentionPolicy, budget: usize, report: &mut StepReport) -> Result<bool, StorageError> {
        let store = txn.store().clone();
        let store = &store;
        if self.units.is_empty() {
            self.units = units(store, owned, spaces)?;
            self.cursor = None;
        }
        let mut visited = 0;
        while visited < budget {
            let Some(u) = self.units.front().cloned() else { break };
            let bounds = if owned.contains(&u.partition) { bounds(store, &u, policy)? } else { None };
            let before = report.visited;
            let done = match bounds {
                None => true,
                Some((h, newest)) => self.walk(txn, &u, h, newest, budget - visited, report)?,
            };
            visited += report.visited - before;
            if !done {
                break;
            }
            self.units.pop_front();
            self.cursor = None;
        }
        Ok(self.units.is_empty())
    }

    /// Walks `u` from the cursor for at most `budget` keys, deleting what
    /// lies behind `h` (`newest`: the tenant's newest event time); `true`
    /// when it reached the end.
    fn walk(&mut self, txn: &mut Txn, u: &Unit, h: Ts, newest: Ts, budget: usize, report: &mut StepReport) -> Result<bool, StorageError> {
        let mut prefix = KeyBuf::space(u.partition, u.space).tenant(&u.tenant);
        if u.space == Space::Window {
            prefix = prefix.u8(Granularity::FiveSeconds.tag());
        }
        let prefix = prefix.into_vec();
        let start = self.cursor.take().unwrap_or_else(|| prefix.clone());
        if u.space == Space::Summary {
            return self.walk_summaries(txn, &prefix, start, h, budget, report);
        }
        let store = txn.store().clone();
        if u.space == Space::Dedup {
            let w = walk_markers(&store, txn, &prefix, &start, h, newest, budget)?;
            report.visited += w.visited;
            report.deleted += w.deleted;
            self.cursor = w.stopped_at;
            return Ok(self.cursor.is_none());
        }
        let by_time = u.space == Space::ConversionByTime;
        // Keys of a NUL-terminated segment (journey, customer_id) then a
        // time; `Some(true)`: the segment's latest record behind `h` stays.
        let segmented = match u.space {
            Space::Window | Space::Signal => Some(false),
            Space::Consent => Some(true),
            _ => None,
        };
        let mut last_behind: Option<Vec<u8>> = None;
        // The time index is ordered by time: only its expired head is walked.
        let end = if by_time { key::conv_by_time_at(u.partition, &u.tenant, h) } else { prefix_end(&prefix) };
        let (mut visited, mut expired, mut stopped_at) = (0usize, Vec::new(), None);
        store.walk_keys(&start, &end, |k| {
            if visited >= budget {
                stopped_at = Some(k.to_vec());
                return Walk::Stop;
            }
            visited += 1;
            if by_time {
                expired.push(k.to_vec());
                return Walk::Next;
            }
            if let Some(keep_last) = segmented {
                let Some(end) = segment_end(k, prefix.len()) else { return Walk::Next };
                let segment = &k[..=end];
                return match ts_in_key(k, end + 1) {
                    Some(ts) if ts < h => {
                        if !keep_last {
                            expired.push(k.to_vec());
                        } else if let Some(prev) = last_behind.replace(k.to_vec()) {
                            // A later one behind `h` of the same segment: `prev` no longer decides.
                            if prev.starts_with(segment) {
                                expired.push(prev);
                            }
                        }
                        Walk::Next
                    }
                    // The rest of this segment is newer: go to the next one.
                    _ => Walk::SeekTo(prefix_end(segment)),
                };
            }
            let (Some(person), Some(ts)) = (person_in_key(k, prefix.len()), ts_in_key(k, prefix.len() + 8)) else { return Walk::Next };
            if ts < h {
                expired.push(k.to_vec());
                return Walk::Next;
            }
            // The rest of this person's timeline is newer: go to the next person.
            match person.checked_add(1) {
                Some(next) => Walk::SeekTo(KeyBuf(prefix.clone()).u64(next).into_vec()),
                None => Walk::Stop,
            }
        })?;
        report.visited += visited;
        report.deleted += expired.len() as u64;
        for k in expired {
            txn.delete(k);
        }
        let done = stopped_at.is_none();
        self.cursor = stopped_at;
        Ok(done)
    }
}

impl Lane {
    /// Trims the path summaries of `[start, end of prefix)` that hold a record
    /// behind `h`, for at most `budget` summaries, in `txn`.
    fn walk_summaries(&mut self, txn: &mut Txn, prefix: &[u8], start: Vec<u8>, h: Ts, budget: usize, report: &mut StepReport) -> Result<bool, StorageError> {
        let store = txn.store().clone();
        let (mut visited, mut expired, mut stopped_at, mut err) = (0usize, Vec::new(), None, None);
        store.scan(&start, &prefix_end(prefix), |k, v| {
            if visited >= budget {
                stopped_at = Some(k.to_vec());
                return false;
            }
            visited += 1;
            // An overflow person's records are swept in their own spaces.
            if summary::is_overflow(v) {
                return true;
            }
            // Any record behind the horizon, read in place.
            let mut behind = false;
            if summary::for_each_ts(v, |ts| behind |= ts < h).is_err() {
                err = Some(summary::unreadable(k));
                return false;
            }
            if behind {
                expired.push(k.to_vec());
            }
            true
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        for k in expired {
            let Some(v) = txn.get(&k)? else { continue };
            let Ok(mut s) = Summary::decode(&v) else { continue };
            let before = s.len();
            if !s.trim_before(h) {
                continue;
            }
            report.deleted += (before - s.len()) as u64;
            if s.is_empty() {
                txn.delete(k);
            } else {
                txn.put(k, s.stored());
            }
        }
        report.visited += visited;
        let done = stopped_at.is_none();
        self.cursor = stopped_at;
        Ok(done)
    }
}

/// The horizon of `u`'s space and the tenant's newest event time (`None`:
/// nothing of it expires).
fn bounds(store: &Store, u: &Unit, policy: &RetentionPolicy) -> Result<Option<(Ts, Ts)>, StorageError> {
    let k = key::tenant_meta(u.partition, &u.tenant);
    let meta: Option<super::TenantMeta> = match store.get(&k)? {
        Some(b) => Some(touchline_storage::codec::decode(&k, &b)?),
        None => None,
    };
    let newest = meta.and_then(|m| m.max_ts);
    let h = match u.space {
        Space::Dedup => policy.dedup_horizon(newest),
        Space::Window => policy.window_5s_horizon(newest),
        _ => policy.horizon(&u.tenant, newest),
    };
    Ok(h.zip(newest))
}

/// The index of the NUL ending the `KeyBuf::str0` segment at `offset` of `key`.
fn segment_end(key: &[u8], offset: usize) -> Option<usize> {
    let mut i = offset;
    while i < key.len() {
        match key[i] {
            0 => return Some(i),
            1 => i += 2, // an escaped 0 or 1
            _ => i += 1,
        }
    }
    None
}

/// Every (partition, tenant, space of `spaces`) of the owned partitions.
fn units(store: &Store, owned: &[u16], spaces: &[Space]) -> Result<VecDeque<Unit>, StorageError> {
    let mut out = VecDeque::new();
    for &p in owned {
        for t in super::tenant::tenants(store, p)? {
            out.extend(spaces.iter().map(|&space| Unit { partition: p, tenant: t.clone(), space }));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ConvRec, TenantMeta, TouchRec};

    const DAY: i64 = 86_400;

    /// One step, committed.
    fn step(store: &Store, sw: &mut Sweeper, owned: &[u16], policy: &RetentionPolicy, budget: usize) -> StepReport {
        let mut txn = store.txn();
        let r = sw.step(&mut txn, owned, policy, budget).unwrap();
        txn.commit(None).unwrap();
        r
    }

    fn put(store: &Store, k: Vec<u8>, v: Vec<u8>) {
        let mut t = store.txn();
        t.put(k, v);
        t.commit(None).unwrap();
    }

    /// A store holding tenant `t` of partition `p` with `newest` as its newest event time.
    fn tenant_store(p: u16, t: &str, newest: Ts) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        put(&store, key::tenant_index(p, t), Vec::new());
        let meta = TenantMeta { max_ts: Some(newest), ..Default::default() };
        put(&store, key::tenant_meta(p, t), touchline_storage::codec::encode(&meta).unwrap());
        (dir, store)
    }

    fn timeline_keys(store: &Store, p: u16, tenant: &str) -> Vec<(Space, Ts)> {
        let mut out = Vec::new();
        for space in [Space::Touch, Space::Conversion, Space::ConversionByTime] {
            let prefix = KeyBuf::space(p, space).tenant(tenant).into_vec();
            let off = if space == Space::ConversionByTime { prefix.len() } else { prefix.len() + 8 };
            store.scan_prefix(&prefix, |k, _| {
                out.push((space, ts_in_key(k, off).unwrap()));
                true
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn sweeps_only_what_lies_behind_the_horizon_in_bounded_steps() {
        let (p, t) = (3u16, "acme");
        let (_dir, store) = tenant_store(p, t, Ts::new(100 * DAY, 0));
        for person in 1..=5u64 {
            for d in [1i64, 50, 97, 98, 99] {
                let ts = Ts::new(d * DAY, 0);
                let eid = format!("e{person}-{d}");
                let mut txn = store.txn();
                let mut st = super::super::TenantState::records(&mut txn, p, t);
                let touch = crate::domain::TouchInfo { channel: crate::domain::Channel::Email, interaction_type: "click".into(), dims: Default::default() };
                st.put_touch(person, &TouchRec { event_id: eid.clone(), ts, customer_id: "c".into(), touch }).unwrap();
                let conversion = crate::domain::ConversionInfo { value: 1.0, currency: "USD".into(), conversion_type: None };
                st.put_conversion(person, &ConvRec { event_id: eid, ts, customer_id: "c".into(), conversion, late: false }).unwrap();
                txn.commit(None).unwrap();
            }
        }
        // Another partition's tenant is not owned: untouched.
        put(&store, key::tenant_index(4, t), Vec::new());
        let meta = TenantMeta { max_ts: Some(Ts::new(100 * DAY, 0)), ..Default::default() };
        put(&store, key::tenant_meta(4, t), touchline_storage::codec::encode(&meta).unwrap());
        put(&store, key::touch(4, t, 1, Ts::new(DAY, 0), "x"), vec![1]);

        let policy = RetentionPolicy::new(2); // horizon: day 98
        let mut sw = Sweeper::new();
        let mut steps = 0;
        let mut deleted = 0;
        loop {
            let r = step(&store, &mut sw, &[p], &policy, 4);
            assert!(r.visited <= 4, "{r:?}");
            deleted += r.deleted;
            steps += 1;
            if r.pass_completed {
                break;
            }
            assert!(steps < 100, "no progress");
        }
        assert!(steps > 3, "bounded steps: {steps}");
        assert_eq!(deleted, 5 * 3 * 5, "days 1, 50, 97 of 5 persons in 3 spaces and, twice, in their summaries");
        let left = timeline_keys(&store, p, t);
        assert_eq!(left.len(), 5 * 2 * 3);
        assert!(left.iter().all(|(_, ts)| *ts >= Ts::new(98 * DAY, 0)), "{left:?}");
        for person in 1..=5u64 {
            let v = store.get(&key::summary(p, t, person)).unwrap().unwrap();
            let s = Summary::decode(&v).unwrap();
            let days: Vec<i64> = s.touches.iter().map(|x| x.ts.secs / DAY).chain(s.convs.iter().map(|x| x.ts.secs / DAY)).collect();
            assert_eq!(days, vec![98, 99, 98, 99], "person {person}");
        }
        assert_eq!(timeline_keys(&store, 4, t).len(), 1, "not owned, not swept");
        // A second pass has nothing left to delete; retention 0 keeps everything.
        let r = step(&store, &mut sw, &[p], &policy, 1000);
        assert_eq!((r.deleted, r.pass_completed, sw.passes), (0, true, 2));
        let r = step(&store, &mut Sweeper::new(), &[p, 4], &RetentionPolicy::new(0), 1000);
        assert_eq!(r.deleted, 0);
    }

    /// Every key of `space` (the tenant part stripped).
    fn keys_of(store: &Store, p: u16, t: &str, space: Space) -> Vec<Vec<u8>> {
        let prefix = KeyBuf::space(p, space).tenant(t).into_vec();
        let mut out = Vec::new();
        store.scan_prefix(&prefix, |k, _| {
            out.push(k[prefix.len()..].to_vec());
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn sweeps_5s_windows_and_dedup_markers_behind_their_own_horizons() {
        use super::super::dedup::Marker;
        use crate::state::WindowCounts;
        const HOUR: i64 = 3_600;
        let (p, t) = (3u16, "acme");
        let newest = Ts::new(1_000 * HOUR, 0);
        let (_dir, store) = tenant_store(p, t, newest);
        // Three journeys (one id with escaped bytes), 5-second buckets from 4 h
        // before the newest time to it, and their hour roll-ups.
        let one = WindowCounts { touches: 1, impressions: 0, clicks: 1 };
        let mut txn = store.txn();
        let mut st = super::super::TenantState::records(&mut txn, p, t);
        for j in ["j1", "j\0\u{1}x", "j2"] {
            for back in [4 * HOUR, 3 * HOUR + 1, 3 * HOUR, 2 * HOUR, 5, 0] {
                let b = newest.secs - back;
                st.count_window(Granularity::FiveSeconds.tag(), j, b, "k/SEQ-1/c/v", &one, None).unwrap();
                st.count_window(Granularity::Hour.tag(), j, b - b.rem_euclid(HOUR), "k/SEQ-1/c/v", &one, None).unwrap();
            }
        }
        drop(st);
        // Markers: stamped 200 days before the newest time, 100 days, kept, unstamped.
        for (id, m) in [("old", Marker::Stamped(newest.minus_secs(200 * DAY))), ("mid", Marker::Stamped(newest.minus_secs(100 * DAY))), ("erase", Marker::Kept), ("v0", Marker::Unstamped)] {
            txn.put(key::dedup(p, t, id), m.value());
        }
        txn.commit(None).unwrap();
        let windows_before = keys_of(&store, p, t, Space::Window);
        let policy = RetentionPolicy { dedup_days: 150, window_5s_hours: 3, ..RetentionPolicy::new(0) };
        let mut sw = Sweeper::new();
        let mut deleted = 0;
        for steps in 0.. {
            let r = step(&store, &mut sw, &[p], &policy, 2);
            assert!(r.visited <= 2, "{r:?}");
            deleted += r.deleted;
            if sw.passes > 0 && sw.marker_passes > 0 {
                break;
            }
            assert!(steps < 100, "no progress");
        }
        // 5 s buckets starting before newest − 3 h go (4 h and 3 h + 1 s back), in each journey.
        assert_eq!(deleted, 3 * 2 + 1, "six 5 s buckets and one marker");
        let h = newest.minus_secs(3 * HOUR);
        let gran = |k: &Vec<u8>| k[0];
        let windows = keys_of(&store, p, t, Space::Window);
        let expired: Vec<&Vec<u8>> = windows_before.iter().filter(|k| !windows.contains(k)).collect();
        assert_eq!(expired.len(), 6);
        for k in &expired {
            let j_end = segment_end(k, 1).unwrap();
            assert_eq!(gran(k), Granularity::FiveSeconds.tag());
            assert!(ts_in_key(k, j_end + 1).unwrap() < h);
        }
        for k in windows.iter().filter(|k| gran(k) == Granularity::FiveSeconds.tag()) {
            assert!(ts_in_key(k, segment_end(k, 1).unwrap() + 1).unwrap() >= h, "a kept 5 s bucket is not behind the horizon");
        }
        assert_eq!(windows.iter().filter(|k| gran(k) == Granularity::Hour.tag()).count(), 3 * 5, "roll-ups stay");
        let markers: Vec<(Vec<u8>, Marker)> = ["erase", "mid", "v0"].iter().map(|id| (id.as_bytes().to_vec(), Marker::parse(&store.get(&key::dedup(p, t, id)).unwrap().unwrap()))).collect();
        assert_eq!(keys_of(&store, p, t, Space::Dedup), markers.iter().map(|m| m.0.clone()).collect::<Vec<_>>(), "the marker stamped 200 days back went");
        assert_eq!(markers[2].1, Marker::Stamped(newest), "an older build's marker is stamped with the newest time");
        // Off (0): nothing more goes, whatever the data.
        let r = step(&store, &mut Sweeper::new(), &[p], &RetentionPolicy::new(0), 1000);
        assert_eq!(r.deleted, 0);
    }

    #[test]
    fn a_long_walk_over_dedup_markers_does_not_hold_the_timelines_up() {
        use super::super::dedup::Marker;
        let (p, t) = (3u16, "acme");
        let (_dir, store) = tenant_store(p, t, Ts::new(100 * DAY, 0));
        let mut txn = store.txn();
        for i in 0..1_000 {
            txn.put(key::dedup(p, t, &format!("e{i:04}")), Marker::Stamped(Ts::new(99 * DAY, 0)).value());
        }
        for person in 1..=5u64 {
            txn.put(key::touch(p, t, person, Ts::new(DAY, 0), "old"), vec![0x90]);
        }
        txn.commit(None).unwrap();
        let policy = RetentionPolicy { dedup_days: 180, ..RetentionPolicy::new(2) };
        let mut sw = Sweeper::new();
        let mut steps = 0;
        while !step(&store, &mut sw, &[p], &policy, 10).pass_completed {
            steps += 1;
            assert!(steps < 10, "the timelines wait for the markers");
        }
        assert_eq!(timeline_keys(&store, p, t), vec![], "the expired touchpoints went");
        assert_eq!(sw.marker_passes, 0, "while the markers are still being walked");
    }

    #[test]
    fn keeps_each_customers_latest_consent_update_behind_the_horizon() {
        use crate::state::ConsentRec;
        let (p, t) = (3u16, "acme");
        let (_dir, store) = tenant_store(p, t, Ts::new(100 * DAY, 0));
        // Horizon: day 98. c1: days 1, 50, 50 (two at one time), 97, 99; c2: 10 only; c3: 99 only.
        let updates = [("c1", 1, "a"), ("c1", 50, "b"), ("c1", 50, "c"), ("c1", 97, "d"), ("c1", 99, "e"), ("c2", 10, "f"), ("c3", 99, "g")];
        let mut txn = store.txn();
        for (c, d, id) in updates {
            let rec = ConsentRec { ts: Ts::new(d * DAY, 0), event_id: id.into(), analytics: d % 2 == 0 };
            txn.put_as(key::consent(p, t, c, rec.ts, id), &rec).unwrap();
        }
        txn.commit(None).unwrap();
        let mut sw = Sweeper::new();
        for steps in 0.. {
            if step(&store, &mut sw, &[p], &RetentionPolicy::new(2), 2).pass_completed {
                break;
            }
            assert!(steps < 100, "no progress");
        }
        // A cut between steps may keep an older one for the next pass.
        step(&store, &mut sw, &[p], &RetentionPolicy::new(2), 1000);
        let left = |c: &str| -> Vec<String> { store.prefix_as::<ConsentRec>(&key::consent_prefix(p, t, c)).unwrap().into_iter().map(|r| r.event_id).collect() };
        assert_eq!((left("c1"), left("c2"), left("c3")), (vec!["d".to_string(), "e".into()], vec!["f".to_string()], vec!["g".to_string()]));
    }

    #[test]
    fn sweeps_signals_behind_the_retention_horizon() {
        use crate::state::SignalRec;
        let (p, t) = (3u16, "acme");
        let (_dir, store) = tenant_store(p, t, Ts::new(100 * DAY, 0));
        // Horizon: day 98. c1: days 1, 50, 97, 98, 99; c2: 10 only; c3: 99 only.
        let signals = [("c1", 1, "a"), ("c1", 50, "b"), ("c1", 97, "c"), ("c1", 98, "d"), ("c1", 99, "e"), ("c2", 10, "f"), ("c3", 99, "g")];
        let mut txn = store.txn();
        for (c, d, id) in signals {
            let rec = SignalRec { customer_id: c.into(), ts: Ts::new(d * DAY, 0), ip: format!("10.0.0.{d}"), user_agent: None, geo: None };
            txn.put_as(key::signal(p, t, c, rec.ts, id), &rec).unwrap();
        }
        txn.commit(None).unwrap();
        let mut sw = Sweeper::new();
        for steps in 0.. {
            if step(&store, &mut sw, &[p], &RetentionPolicy::new(2), 2).pass_completed {
                break;
            }
            assert!(steps < 100, "no progress");
        }
        let left = |c: &str| -> Vec<i64> { store.prefix_as::<SignalRec>(&key::signal_prefix(p, t, c)).unwrap().into_iter().map(|r| r.ts.as_millis() / 1000 / DAY).collect() };
        assert_eq!((left("c1"), left("c2"), left("c3")), (vec![98, 99], vec![], vec![99]));
    }
}

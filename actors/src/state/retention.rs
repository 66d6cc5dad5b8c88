//! The retention sweep over stored timelines: physically deletes touchpoints,
//! conversions and conversion-index entries behind their tenant's retention
//! horizon (`domain::retention`), in bounded steps. Identity (nodes, persons,
//! links), dedup records, consent, segments, campaigns, variants and journey
//! window counters are never touched.
//!
//! One pass walks, for every tenant of every owned partition, four spaces:
//! the per-person touch and conversion timelines (each person's expired
//! records are a key prefix, so the walk seeks past a person's retained rest),
//! the conversion time index (expired entries are one leading key range) and
//! the persons' path summaries (`super::summary`, trimmed in place).
//! A step visits at most `budget` keys and resumes where the last one stopped.
//! It reads committed state and writes its deletes and trims into a
//! transaction, which the partition actor commits between batches like any
//! batch — published to the changelog first — so standbys and restores drop
//! what retention removed instead of bringing it back. Queries already ignore
//! everything behind the horizon and the horizon never moves back, so a record
//! a step deletes is invisible anyway.

use super::records::key;
use super::summary::{self, Summary};
use super::tenant::{person_in_key, ts_in_key};
use crate::domain::retention::RetentionPolicy;
use crate::domain::Ts;
use std::collections::VecDeque;
use touchline_storage::keys::{prefix_end, KeyBuf, Space};
use touchline_storage::{StorageError, Store, Txn, Walk};

/// The spaces a sweep walks, in order.
const SPACES: [Space; 4] = [Space::Touch, Space::Conversion, Space::ConversionByTime, Space::Summary];

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
    units: VecDeque<Unit>,
    cursor: Option<Vec<u8>>,
    /// Completed passes.
    pub passes: u64,
}

impl Sweeper {
    pub fn new() -> Sweeper {
        Sweeper::default()
    }

    /// Visits at most `budget` committed keys of the partitions in `owned`,
    /// deleting (in `txn`) what lies behind each tenant's horizon under `policy`.
    pub fn step(&mut self, txn: &mut Txn, owned: &[u16], policy: &RetentionPolicy, budget: usize) -> Result<StepReport, StorageError> {
        let store = txn.store().clone();
        let store = &store;
        let mut report = StepReport::default();
        if self.units.is_empty() {
            self.units = units(store, owned)?;
            self.cursor = None;
        }
        while report.visited < budget {
            let Some(u) = self.units.front().cloned() else { break };
            let horizon = if owned.contains(&u.partition) { horizon(store, &u, policy)? } else { None };
            let done = match horizon {
                None => true,
                Some(h) => self.walk(txn, &u, h, budget - report.visited, &mut report)?,
            };
            if !done {
                break;
            }
            self.units.pop_front();
            self.cursor = None;
        }
        if self.units.is_empty() {
            self.passes += 1;
            report.pass_completed = true;
        }
        Ok(report)
    }

    /// Walks `u` from the cursor for at most `budget` keys; `true` when it reached the end.
    fn walk(&mut self, txn: &mut Txn, u: &Unit, h: Ts, budget: usize, report: &mut StepReport) -> Result<bool, StorageError> {
        let prefix = KeyBuf::space(u.partition, u.space).tenant(&u.tenant).into_vec();
        let start = self.cursor.take().unwrap_or_else(|| prefix.clone());
        if u.space == Space::Summary {
            return self.walk_summaries(txn, &prefix, start, h, budget, report);
        }
        let store = txn.store().clone();
        let by_time = u.space == Space::ConversionByTime;
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

impl Sweeper {
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

fn horizon(store: &Store, u: &Unit, policy: &RetentionPolicy) -> Result<Option<Ts>, StorageError> {
    let k = key::tenant_meta(u.partition, &u.tenant);
    let meta: Option<super::TenantMeta> = match store.get(&k)? {
        Some(b) => Some(touchline_storage::codec::decode(&k, &b)?),
        None => None,
    };
    Ok(policy.horizon(&u.tenant, meta.and_then(|m| m.max_ts)))
}

/// Every (partition, tenant, space) of the owned partitions.
fn units(store: &Store, owned: &[u16]) -> Result<VecDeque<Unit>, StorageError> {
    let mut out = VecDeque::new();
    for &p in owned {
        for t in super::tenant::tenants(store, p)? {
            out.extend(SPACES.iter().map(|&space| Unit { partition: p, tenant: t.clone(), space }));
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

    fn timeline_keys(store: &Store, p: u16, tenant: &str) -> Vec<(Space, Ts)> {
        let mut out = Vec::new();
        for space in SPACES.into_iter().filter(|&s| s != Space::Summary) {
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
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        let (p, t) = (3u16, "acme");
        put(&store, key::tenant_index(p, t), Vec::new());
        let meta = TenantMeta { max_ts: Some(Ts::new(100 * DAY, 0)), ..Default::default() };
        put(&store, key::tenant_meta(p, t), touchline_storage::codec::encode(&meta).unwrap());
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
}

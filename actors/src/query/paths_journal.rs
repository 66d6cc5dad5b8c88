//! The change log of the report cache ([`super::paths_cache`]): which persons
//! of each watched tenant every commit touched, in commit order, with a
//! sequence number an entry records to know what it has not seen yet; the
//! partition epochs (bumped when a partition's state is replaced); and the
//! tenants' activity indexes, which live and die with the tenant being watched.

use super::activity_index::TenantIndex;
use crate::domain::Ts;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use touchline_storage::keys::Space;

/// A tenant of a partition, as its key bytes.
type TenantOf = (u16, Vec<u8>);

/// Most person ids the change log keeps; older changes are forgotten and the
/// entries that still needed them rebuild.
pub const LOG_MAX_PERSONS: usize = 1 << 20;

/// What a commit changed for one watched tenant.
#[derive(Debug)]
pub(super) enum Change {
    Persons(Vec<u64>),
    Tenant,
}

pub(super) struct LogRecord {
    pub seq: u64,
    partition: u16,
    tenant: Arc<str>,
    change: Change,
}

#[derive(Default)]
pub(super) struct Journal {
    pub seq: u64,
    /// Highest sequence number forgotten from the log.
    forgotten: u64,
    pub log: VecDeque<LogRecord>,
    log_persons: usize,
    epochs: HashMap<u16, u64>,
    /// Entries per watched (partition, tenant): only their changes are logged.
    pub watched: HashMap<(u16, Vec<u8>), usize>,
    /// The activity index of watched tenants that have one.
    pub indexes: HashMap<(u16, Vec<u8>), Arc<TenantIndex>>,
    /// Tenants whose index outgrew its share of the budget: answered without one.
    pub too_big: HashSet<(u16, Vec<u8>)>,
}

impl Journal {
    pub fn epoch(&self, p: u16) -> u64 {
        self.epochs.get(&p).copied().unwrap_or(0)
    }

    pub fn push(&mut self, partition: u16, tenant: &[u8], change: Change) {
        self.seq += 1;
        if let Change::Persons(ps) = &change {
            self.log_persons += ps.len();
        }
        let tenant: Arc<str> = String::from_utf8_lossy(tenant).into();
        self.log.push_back(LogRecord { seq: self.seq, partition, tenant, change });
        while self.log_persons > LOG_MAX_PERSONS {
            let Some(r) = self.log.pop_front() else { break };
            self.forget(r);
        }
    }

    pub fn forget(&mut self, r: LogRecord) {
        self.forgotten = self.forgotten.max(r.seq);
        if let Change::Persons(ps) = r.change {
            self.log_persons -= ps.len();
        }
    }

    /// The changes to (partition, tenant) after `seq`: `None` when they are no
    /// longer all known or include a tenant-wide one.
    pub fn changes_since(&self, partition: u16, tenant: &str, seq: u64) -> Option<BTreeSet<u64>> {
        if self.forgotten > seq {
            return None;
        }
        let mut out = BTreeSet::new();
        for r in self.log.iter().filter(|r| r.seq > seq && r.partition == partition && &*r.tenant == tenant) {
            match &r.change {
                Change::Tenant => return None,
                Change::Persons(ps) => out.extend(ps.iter().copied()),
            }
        }
        Some(out)
    }

    /// Records a committed batch's `keys` (sorted): per watched tenant, the
    /// persons whose timeline, conversions, person record or links changed
    /// (a consent update or erasure tombstone: the whole tenant), and their
    /// hours in the tenant's activity index (dropped when it outgrows half
    /// of `budget_bytes`).
    pub fn record(&mut self, keys: &mut dyn Iterator<Item = &[u8]>, budget_bytes: usize) {
        // Keys come sorted, so one tenant's keys of one space are contiguous.
        let mut pending: HashMap<TenantOf, Change> = HashMap::new();
        let mut active: HashMap<TenantOf, Vec<(Ts, u64)>> = HashMap::new();
        let mut last: Option<(u16, u8, Vec<u8>, bool)> = None;
        for k in keys {
            let Some((p, space, tenant, rest)) = crate::state::tenant::split_key(k) else { continue };
            let watched = match &last {
                Some((lp, ls, lt, w)) if *lp == p && *ls == space && lt.as_slice() == tenant => *w,
                _ => {
                    let w = self.watched.contains_key(&(p, tenant.to_vec()));
                    last = Some((p, space, tenant.to_vec(), w));
                    w
                }
            };
            if !watched {
                continue;
            }
            let slot = pending.entry((p, tenant.to_vec())).or_insert_with(|| Change::Persons(Vec::new()));
            if space == Space::Consent as u8 || space == Space::Erased as u8 {
                *slot = Change::Tenant;
            } else if space == Space::Touch as u8 || space == Space::Conversion as u8 || space == Space::Person as u8 || space == Space::ProbLink as u8 {
                let Some(person) = crate::state::tenant::person_in_key(rest, 0) else { continue };
                if let Change::Persons(ps) = &mut *slot {
                    if ps.last() != Some(&person) {
                        ps.push(person);
                    }
                }
                // A timeline or conversion key (written or deleted) lists its
                // person in its hour: the index may over-list, never miss.
                if space != Space::Person as u8 && space != Space::ProbLink as u8 {
                    if let Some(ts) = crate::state::tenant::ts_in_key(rest, 8) {
                        active.entry((p, tenant.to_vec())).or_default().push((ts, person));
                    }
                }
            }
        }
        for (w, adds) in active {
            let Some(ix) = self.indexes.get(&w).cloned() else { continue };
            let bytes = {
                let mut data = lock(&ix.data);
                for (ts, person) in adds {
                    data.add(ts, person);
                }
                data.bytes()
            };
            if bytes > budget_bytes / 2 {
                self.indexes.remove(&w);
                self.too_big.insert(w);
            }
        }
        for ((p, tenant), mut change) in pending {
            if let Change::Persons(ps) = &mut change {
                ps.sort_unstable();
                ps.dedup();
                if ps.is_empty() {
                    continue;
                }
            }
            self.push(p, &tenant, change);
        }
    }

    /// One entry fewer of (partition, tenant); its index goes with its last.
    pub fn unwatch(&mut self, w: &(u16, Vec<u8>)) {
        if let Some(n) = self.watched.get_mut(w) {
            *n -= 1;
            if *n == 0 {
                self.watched.remove(w);
                self.indexes.remove(w);
            }
        }
    }

    /// The partition's state was replaced: entries of the old epoch rebuild,
    /// and its indexes are gone (a restore does not report what it removed).
    pub fn reset(&mut self, partition: u16) {
        *self.epochs.entry(partition).or_default() += 1;
        self.indexes.retain(|(p, _), _| *p != partition);
        self.too_big.retain(|(p, _)| *p != partition);
    }

    /// Bytes held by the indexes.
    pub fn index_bytes(&self) -> usize {
        self.indexes.values().map(|ix| lock(&ix.data).bytes()).sum()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}


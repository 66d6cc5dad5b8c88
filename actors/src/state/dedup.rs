//! Dedup markers (`Space::Dedup`, one per applied `(tenant, event_id)`) and
//! their horizon. A marker's value is its *stamp*: the tenant's newest event
//! time once its event was applied — the event's own time unless the event
//! came late, then later. The retention sweep ([`super::retention`]) deletes
//! markers stamped before the tenant's dedup horizon (its newest event time
//! minus `engine.dedup_horizon_days`): a repeat of an `event_id` is
//! recognised as long as the tenant's event time has moved less than the
//! horizon since the first record was applied, however old the event itself
//! is. Stamping with the event's own time instead would forget a late
//! event's marker at once, and a retry of a back-filled event would count
//! twice. What a repeat after the horizon changes is in the README
//! ("Retention").
//!
//! Values: 12 bytes = the stamp (`Ts::to_key_bytes`); one byte `K` = kept
//! forever (erasure requests: their time is the wall clock and a repeat would
//! erase again); empty = written by an older build, stamped by the sweep with
//! the tenant's newest time when it first sees one (an upper bound of the
//! time the event was applied, so such a marker is kept at least as long).

use super::records::key;
use super::tenant::TenantState;
use crate::domain::{retention, Body, Event, Ts};
use touchline_storage::keys::prefix_end;
use touchline_storage::{StorageError, Store, Txn};

/// A dedup marker's value, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Applied when the tenant's newest event time was this.
    Stamped(Ts),
    /// Never expires.
    Kept,
    /// From an older build: no stamp yet.
    Unstamped,
}

const KEPT: u8 = b'K';

impl Marker {
    pub fn parse(v: &[u8]) -> Marker {
        match v.len() {
            0 => Marker::Unstamped,
            12 => Ts::from_key_bytes(v).map_or(Marker::Kept, Marker::Stamped),
            _ => Marker::Kept,
        }
    }

    pub fn value(self) -> Vec<u8> {
        match self {
            Marker::Stamped(ts) => ts.to_key_bytes().to_vec(),
            Marker::Kept => vec![KEPT],
            Marker::Unstamped => Vec::new(),
        }
    }

    /// The marker of `ev`, applied when the tenant's newest event time became `max_ts`.
    pub fn of(ev: &Event, max_ts: Option<Ts>) -> Marker {
        match (&ev.body, max_ts) {
            (Body::Erasure { .. }, _) | (_, None) => Marker::Kept,
            (_, Some(m)) => Marker::Stamped(m),
        }
    }
}

impl TenantState<'_> {
    pub fn is_applied(&self, event_id: &str) -> Result<bool, StorageError> {
        self.txn.contains(&key::dedup(self.partition, self.tenant, event_id))
    }

    /// Claims `ev`'s `event_id`: moves the tenant's newest event time and
    /// writes the marker stamped with it.
    pub fn mark_applied(&mut self, ev: &Event) {
        self.meta.max_ts = retention::next_max(self.meta.max_ts, ev);
        let marker = Marker::of(ev, self.meta.max_ts);
        self.txn.put(key::dedup(self.partition, self.tenant, &ev.event_id), marker.value());
        self.meta.events += 1;
        self.mark_meta_dirty();
    }
}

/// What one walk over dedup markers did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MarkerWalk {
    pub visited: usize,
    pub deleted: u64,
    /// Where the walk stopped at its budget (`None`: it reached the end).
    pub stopped_at: Option<Vec<u8>>,
}

/// Walks the committed markers under `prefix` (one tenant's) from `start`,
/// for at most `budget`: those stamped before `horizon` are deleted in `txn`,
/// unstamped ones stamped `now` (the tenant's newest event time).
pub fn walk_markers(store: &Store, txn: &mut Txn, prefix: &[u8], start: &[u8], horizon: Ts, now: Ts, budget: usize) -> Result<MarkerWalk, StorageError> {
    let mut w = MarkerWalk::default();
    let (mut expired, mut unstamped) = (Vec::new(), Vec::new());
    store.scan(start, &prefix_end(prefix), |k, v| {
        if w.visited >= budget {
            w.stopped_at = Some(k.to_vec());
            return false;
        }
        w.visited += 1;
        match Marker::parse(v) {
            Marker::Stamped(ts) if ts < horizon => expired.push(k.to_vec()),
            Marker::Unstamped => unstamped.push(k.to_vec()),
            _ => {}
        }
        true
    })?;
    w.deleted = expired.len() as u64;
    for k in expired {
        txn.delete(k);
    }
    for k in unstamped {
        txn.put(k, Marker::Stamped(now).value());
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, secs: i64, body: Body) -> Event {
        Event { event_id: id.into(), tenant_id: "acme".into(), ts: Ts::new(secs, 0), body }
    }

    fn consent(id: &str, secs: i64) -> Event {
        ev(id, secs, Body::ConsentUpdate { customer_id: "c".into(), analytics: true })
    }

    #[test]
    fn values_round_trip_and_older_values_read() {
        for m in [Marker::Stamped(Ts::new(1_790_000_000, 5)), Marker::Stamped(Ts::new(-3, 0)), Marker::Kept, Marker::Unstamped] {
            assert_eq!(Marker::parse(&m.value()), m);
        }
        assert_eq!(Marker::parse(&[]), Marker::Unstamped, "an older build's empty value");
    }

    #[test]
    fn the_stamp_is_the_newest_time_once_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        let mut txn = store.txn();
        let mut st = TenantState::load(&mut txn, 1, "acme").unwrap();
        st.mark_applied(&consent("new", 1_000));
        st.mark_applied(&consent("late", 10));
        st.mark_applied(&ev("erase", 5_000, Body::Erasure { customer_id: "c".into() }));
        let read = |st: &TenantState<'_>, id: &str| Marker::parse(&st.txn.get(&key::dedup(1, "acme", id)).unwrap().unwrap());
        assert_eq!(read(&st, "new"), Marker::Stamped(Ts::new(1_000, 0)));
        assert_eq!(read(&st, "late"), Marker::Stamped(Ts::new(1_000, 0)), "a late event is stamped with the newest time");
        assert_eq!(read(&st, "erase"), Marker::Kept);
        assert_eq!(st.meta.max_ts, Some(Ts::new(1_000, 0)), "an erasure request does not move the newest time");
        assert!(st.is_applied("late").unwrap() && !st.is_applied("other").unwrap());
    }

    #[test]
    fn the_walk_deletes_exactly_the_expired_markers_and_stamps_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        let mut txn = store.txn();
        let stamps = [("a", Marker::Stamped(Ts::new(99, 999))), ("b", Marker::Stamped(Ts::new(100, 0))), ("c", Marker::Kept), ("d", Marker::Unstamped), ("e", Marker::Stamped(Ts::new(5, 0)))];
        for (id, m) in stamps {
            txn.put(key::dedup(1, "acme", id), m.value());
        }
        txn.put(key::dedup(1, "other", "z"), Marker::Stamped(Ts::new(1, 0)).value());
        txn.commit(None).unwrap();
        let prefix = key::dedup(1, "acme", "");
        let (horizon, now) = (Ts::new(100, 0), Ts::new(500, 0));
        // Two steps of at most 3 keys.
        let mut txn = store.txn();
        let w = walk_markers(&store, &mut txn, &prefix, &prefix, horizon, now, 3).unwrap();
        assert_eq!((w.visited, w.deleted, w.stopped_at.clone()), (3, 1, Some(key::dedup(1, "acme", "d"))));
        let w = walk_markers(&store, &mut txn, &prefix, &w.stopped_at.unwrap(), horizon, now, 3).unwrap();
        assert_eq!((w.visited, w.deleted, w.stopped_at), (2, 1, None));
        txn.commit(None).unwrap();
        let mut left: Vec<(String, Marker)> = Vec::new();
        store.scan_prefix(&prefix, |k, v| {
            left.push((String::from_utf8_lossy(&k[prefix.len()..]).into_owned(), Marker::parse(v)));
            true
        })
        .unwrap();
        let want = vec![("b".to_string(), Marker::Stamped(Ts::new(100, 0))), ("c".into(), Marker::Kept), ("d".into(), Marker::Stamped(now))];
        assert_eq!(left, want, "the horizon itself is kept; another tenant is not walked");
        assert!(store.get(&key::dedup(1, "other", "z")).unwrap().is_some());
    }
}

//! The intake's per-partition record buffers: what is buffered (each offset
//! once, nothing of a paused partition), when reading stops (a full buffer),
//! what a (re)assignment forgets, and when a stalled partition is paused.

use crate::rebalance::Lifecycle;
use rdkafka::message::Message;
use std::collections::{BTreeMap, HashMap, HashSet};
use touchline_actors::actors::partition::Record;

/// Buffers `m` unless its offset was already buffered (a resumed partition is
/// re-fetched from its consume position, which may repeat records we hold) or
/// its partition is paused (it is re-read from the expected offset on resume).
pub(super) fn push(pending: &mut BTreeMap<i32, Vec<Record>>, next: &mut HashMap<i32, i64>, paused: &HashSet<i32>, m: &rdkafka::message::BorrowedMessage<'_>) {
    if paused.contains(&m.partition()) {
        return;
    }
    let expected = next.entry(m.partition()).or_insert(i64::MIN);
    if m.offset() < *expected {
        return;
    }
    *expected = m.offset() + 1;
    pending.entry(m.partition()).or_default().push(Record {
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        headers: m.headers().map(headers_of).unwrap_or_default(),
    });
}

fn headers_of(h: &rdkafka::message::BorrowedHeaders) -> Vec<touchline_actors::reroute::Header> {
    use rdkafka::message::Headers;
    h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect()
}

/// Buffered records per partition at most, in batches: a partition whose actor
/// is busy accumulates this much (its next batch grows) before reading stops.
pub(super) const BUFFER_BATCHES: usize = 4;

/// Stop reading from Kafka while some partition's buffer is full: memory stays
/// bounded, librdkafka's own bounded prefetch queue holds the rest. A paused
/// partition's full buffer does not count: nothing more arrives for it.
pub(super) fn full(pending: &BTreeMap<i32, Vec<Record>>, paused: &HashSet<i32>, batch_max: usize) -> bool {
    pending.iter().any(|(p, v)| v.len() >= batch_max * BUFFER_BATCHES && !paused.contains(p))
}

/// A partition (re)assigned or revoked starts over: its buffer, expected offset
/// and pause go (librdkafka forgets the pause of a partition it unassigns).
pub(super) fn forget(ev: &Lifecycle, next: &mut HashMap<i32, i64>, pending: &mut BTreeMap<i32, Vec<Record>>, paused: &mut HashSet<i32>) {
    let (Lifecycle::Assigned(parts) | Lifecycle::Revoked(parts)) = ev;
    for p in parts {
        next.remove(p);
        pending.remove(p);
        paused.remove(p);
    }
}

/// Whether a partition should be paused in the consumer: its actor is stalled on
/// storage and its buffer is full (pausing any earlier costs a re-fetch for nothing).
pub(super) fn should_pause(buffered: usize, batch_max: usize, stalled: bool) -> bool {
    stalled && buffered >= batch_max * BUFFER_BATCHES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n: usize) -> Vec<Record> {
        (0..n as i64).map(|offset| Record { offset, key: None, payload: None, headers: Vec::new() }).collect()
    }

    #[test]
    fn a_stalled_partition_is_paused_only_when_full_and_then_stops_blocking_the_others() {
        let batch = 10;
        assert!(!should_pause(batch * BUFFER_BATCHES - 1, batch, true));
        assert!(should_pause(batch * BUFFER_BATCHES, batch, true));
        assert!(!should_pause(batch * BUFFER_BATCHES, batch, false), "a merely busy partition is never paused");
        let mut pending = BTreeMap::new();
        pending.insert(0, recs(batch * BUFFER_BATCHES));
        pending.insert(1, recs(3));
        let mut paused = HashSet::new();
        assert!(full(&pending, &paused, batch), "a full buffer stops reading");
        paused.insert(0);
        assert!(!full(&pending, &paused, batch), "a paused partition's full buffer does not");
        forget(&Lifecycle::Revoked(vec![0]), &mut HashMap::new(), &mut pending, &mut paused);
        assert!(paused.is_empty() && !pending.contains_key(&0));
    }
}

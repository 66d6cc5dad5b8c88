//! Pure changelog logic, no I/O: the [`Assembler`] that turns a changelog
//! partition's records back into complete batches (everything up to a marker
//! record — the partition's checkpoint key — in order; the tail after the last
//! marker is an incomplete batch and is never applied), and the standby choice
//! (rendezvous hashing over the alive members, excluding the owner).

use touchline_actors::changelog::Entries;
use touchline_storage::{codec, Checkpoint, Store};

/// Bytes buffered between two markers at most. Without compaction a gap holds
/// one batch (≤ a few MB); compaction can merge the gaps of many batches whose
/// markers it dropped, hence the generous bound — over it, the restore fails
/// with a clear error instead of growing without limit.
pub const MAX_PENDING_BYTES: usize = 512 << 20;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AssembleError {
    #[error("changelog partition {partition}: record at offset {offset} has a key of another partition")]
    ForeignKey { partition: u16, offset: i64 },
    #[error("changelog partition {partition}: marker at offset {offset} is not a checkpoint: {detail}")]
    BadMarker { partition: u16, offset: i64, detail: String },
    #[error("changelog partition {partition}: more than {max} bytes between two markers (offset {offset})")]
    TooLarge { partition: u16, offset: i64, max: usize },
}

/// One complete batch: its writes in changelog order and its checkpoint, whose
/// `changelog_next` points past the marker.
#[derive(Debug, PartialEq)]
pub struct Batch {
    pub entries: Entries,
    pub checkpoint: Checkpoint,
    pub bytes: u64,
}

/// Reassembles batches from one changelog partition's records, in offset order.
#[derive(Debug)]
pub struct Assembler {
    partition: u16,
    marker_key: Vec<u8>,
    pending: Entries,
    bytes: usize,
    max_bytes: usize,
}

impl Assembler {
    pub fn new(partition: u16) -> Assembler {
        Assembler::with_limit(partition, MAX_PENDING_BYTES)
    }

    pub fn with_limit(partition: u16, max_bytes: usize) -> Assembler {
        Assembler { partition, marker_key: Store::checkpoint_key(partition), pending: Vec::new(), bytes: 0, max_bytes }
    }

    /// Feeds the record at `offset`; returns the batch a marker completes.
    pub fn push(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) -> Result<Option<Batch>, AssembleError> {
        if key == self.marker_key.as_slice() {
            let value = value.unwrap_or_default();
            let cp: Checkpoint = codec::decode(key, value).map_err(|e| AssembleError::BadMarker { partition: self.partition, offset, detail: e.to_string() })?;
            let entries = std::mem::take(&mut self.pending);
            let bytes = std::mem::take(&mut self.bytes) as u64;
            return Ok(Some(Batch { entries, checkpoint: Checkpoint { changelog_next: offset + 1, ..cp }, bytes }));
        }
        if !key.starts_with(&self.partition.to_be_bytes()) {
            return Err(AssembleError::ForeignKey { partition: self.partition, offset });
        }
        self.bytes += key.len() + value.map_or(0, <[u8]>::len);
        if self.bytes > self.max_bytes {
            return Err(AssembleError::TooLarge { partition: self.partition, offset, max: self.max_bytes });
        }
        self.pending.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        Ok(None)
    }

    /// Keys written after the last marker (an incomplete batch), deduplicated.
    pub fn tail_keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self.pending.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// The `n` standby holders of `partition`: the members with the highest
/// rendezvous score, the owner excluded. Every node computes the same answer
/// from the same member list, and a member joining or leaving moves only the
/// partitions it wins or held.
pub fn standbys<'a>(partition: i32, owner: Option<&str>, members: &'a [String], n: usize) -> Vec<&'a str> {
    let mut scored: Vec<(u64, &str)> = members.iter().map(String::as_str).filter(|m| Some(*m) != owner).map(|m| (score(partition, m), m)).collect();
    scored.sort_by(|a, b| b.cmp(a));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, m)| m).collect()
}

/// FNV-1a over `partition | node`, then a 64-bit finalizer (stable across builds).
fn score(partition: i32, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in partition.to_be_bytes().iter().chain(node.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(cp: Checkpoint) -> Vec<u8> {
        touchline_actors::changelog::marker_value(&cp).unwrap()
    }

    fn cp(next: i64) -> Checkpoint {
        Checkpoint { next_offset: next, watermark_nanos: Some(5), applied_events: next as u64, changelog_next: 0 }
    }

    #[test]
    fn batches_end_at_markers_and_the_tail_is_held_back() {
        let mk = Store::checkpoint_key(3);
        let mut a = Assembler::new(3);
        assert_eq!(a.push(0, b"\x00\x03Pa", Some(b"1")).unwrap(), None);
        assert_eq!(a.push(1, b"\x00\x03Pb", None).unwrap(), None);
        let b = a.push(2, &mk, Some(&marker(cp(10)))).unwrap().expect("batch");
        assert_eq!(b.entries, vec![(b"\x00\x03Pa".to_vec(), Some(b"1".to_vec())), (b"\x00\x03Pb".to_vec(), None)]);
        assert_eq!(b.checkpoint, Checkpoint { changelog_next: 3, ..cp(10) });
        assert_eq!(b.bytes, 4 + 1 + 4);
        // An incomplete batch: never returned, its keys reported for compensation.
        assert_eq!(a.push(3, b"\x00\x03Pc", Some(b"2")).unwrap(), None);
        assert_eq!(a.push(4, b"\x00\x03Pa", Some(b"3")).unwrap(), None);
        assert_eq!(a.push(5, b"\x00\x03Pc", Some(b"4")).unwrap(), None);
        assert_eq!(a.tail_keys(), vec![b"\x00\x03Pa".to_vec(), b"\x00\x03Pc".to_vec()]);
        // An empty batch (a marker right after a marker) is still a batch.
        let mut a = Assembler::new(3);
        assert_eq!(a.push(7, &mk, Some(&marker(cp(1)))).unwrap().unwrap().entries, vec![]);
        assert!(a.tail_keys().is_empty());
    }

    #[test]
    fn foreign_keys_bad_markers_and_oversized_gaps_are_errors() {
        let mut a = Assembler::new(3);
        assert_eq!(a.push(0, b"\x00\x04Pa", Some(b"1")), Err(AssembleError::ForeignKey { partition: 3, offset: 0 }));
        assert!(matches!(a.push(1, &Store::checkpoint_key(3), Some(b"\xc1")), Err(AssembleError::BadMarker { offset: 1, .. })));
        let mut a = Assembler::with_limit(3, 10);
        a.push(0, b"\x00\x03Pa", Some(b"12345")).unwrap();
        assert!(matches!(a.push(1, b"\x00\x03Pb", Some(b"1")), Err(AssembleError::TooLarge { offset: 1, .. })));
    }

    #[test]
    fn standbys_exclude_the_owner_are_stable_and_spread() {
        let m: Vec<String> = ["n1", "n2", "n3", "n4"].iter().map(|s| s.to_string()).collect();
        for p in 0..12 {
            let s = standbys(p, Some("n1"), &m, 1);
            assert_eq!(s.len(), 1);
            assert_ne!(s[0], "n1");
            assert_eq!(s, standbys(p, Some("n1"), &m, 1), "deterministic");
            // Order of the member list does not matter.
            let mut r = m.clone();
            r.reverse();
            assert_eq!(s, standbys(p, Some("n1"), &r, 1));
            assert_eq!(standbys(p, Some("n1"), &m, 5).len(), 3, "at most every other member");
        }
        let holders: std::collections::BTreeSet<&str> = (0..12).map(|p| standbys(p, None, &m, 1)[0]).collect();
        assert!(holders.len() >= 3, "{holders:?}");
        // Removing a member only moves the partitions it held.
        let fewer: Vec<String> = m.iter().filter(|x| *x != "n4").cloned().collect();
        for p in 0..12 {
            let before = standbys(p, None, &m, 1)[0];
            if before != "n4" {
                assert_eq!(standbys(p, None, &fewer, 1)[0], before);
            }
        }
    }
}

//! Partition snapshots as RocksDB SST files: the fast path of a partition move.
//!
//! A partition's whole state is one contiguous key range (every key starts with
//! the partition), its checkpoint included. [`Store::export_partition`] writes
//! that range, read at one RocksDB snapshot, into a sorted SST file: a
//! consistent cut at a batch boundary (every commit and every applied changelog
//! batch is one `WriteBatch` with its checkpoint). [`Store::ingest_partition`]
//! replaces the local range by such a file with `IngestExternalFile`, which
//! links the file into the LSM tree instead of re-writing its keys. The new
//! owner then reads only the changelog after the snapshot's checkpoint.

use crate::keys;
use crate::store::{Checkpoint, Store};
use crate::{codec, Result, StorageError};

use rocksdb::{DBCompressionType, IngestExternalFileOptions, Options, ReadOptions, SstFileWriter};
use std::path::Path;

/// What an exported snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub checkpoint: Checkpoint,
    pub keys: u64,
    pub bytes: u64,
}

impl Store {
    /// Writes `partition`'s range to the SST file `path`, at one consistent
    /// point. `None` (and no file) when the partition has no state here, or
    /// only state that predates the changelog (no changelog position to
    /// continue from).
    pub fn export_partition(&self, partition: u16, path: &Path) -> Result<Option<SnapshotInfo>> {
        let db = self.db();
        let snap = db.snapshot();
        let ck = Store::checkpoint_key(partition);
        let checkpoint: Checkpoint = match snap.get(&ck)? {
            Some(b) => codec::decode(&ck, &b)?,
            None => return Ok(None),
        };
        if checkpoint.changelog_next == 0 {
            return Ok(None);
        }
        let (start, end) = keys::partition_range(partition);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        // A one-off full scan: keep it out of the block cache.
        ro.fill_cache(false);
        ro.set_readahead_size(4 << 20);
        let mut it = snap.raw_iterator_opt(ro);
        it.seek(&start);
        let opts = sst_options();
        let mut w = SstFileWriter::create(&opts);
        w.open(path)?;
        let mut n = 0u64;
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            w.put(k, v)?;
            n += 1;
            it.next();
        }
        it.status()?;
        // Never empty: the checkpoint key itself is in the range.
        w.finish()?;
        let bytes = std::fs::metadata(path).map(|m| m.len()).map_err(|e| StorageError::Encode(format!("snapshot file {}: {e}", path.display())))?;
        Ok(Some(SnapshotInfo { checkpoint, keys: n, bytes }))
    }

    /// Replaces `partition`'s range by the SST file at `path` (moved into the
    /// DB, so it must be on the DB's file system) and returns the checkpoint it
    /// carries. The file comes from [`Store::export_partition`] of a peer
    /// running this code: its keys are this partition's by construction.
    pub fn ingest_partition(&self, partition: u16, path: &Path) -> Result<Checkpoint> {
        // Drop first: ingested keys get newer sequence numbers than the range
        // tombstone. A crash in between leaves no checkpoint: the next restore
        // starts from an empty partition, which is safe.
        self.drop_partition(partition)?;
        let mut io = IngestExternalFileOptions::default();
        io.set_move_files(true);
        self.db().ingest_external_file_opts(&io, vec![path])?;
        self.notify_reset(partition);
        match self.checkpoint(partition)? {
            Some(cp) if cp.changelog_next > 0 => Ok(cp),
            _ => {
                self.drop_partition(partition)?;
                Err(StorageError::Encode(format!("snapshot of partition {partition} carries no changelog checkpoint")))
            }
        }
    }
}

/// The DB's table format and first-level compression, without its cache.
fn sst_options() -> Options {
    let mut o = Options::default();
    o.set_block_based_table_factory(&crate::store::table_format());
    o.set_compression_type(DBCompressionType::Lz4);
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyBuf, Space};
    use crate::StoreOptions;

    fn open(dir: &Path) -> Store {
        Store::open(dir, &StoreOptions::default()).unwrap()
    }

    fn key(p: u16, i: u64) -> Vec<u8> {
        KeyBuf::space(p, Space::Touch).tenant("acme").u64(i).into_vec()
    }

    #[test]
    fn a_partition_moves_exactly_and_replaces_the_target_range() {
        let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (open(a_dir.path()), open(b_dir.path()));
        let cp = Checkpoint { next_offset: 500, watermark_nanos: Some(9), applied_events: 480, changelog_next: 77 };
        let mut t = a.txn();
        for i in 0..1000 {
            t.put(key(3, i), format!("v{i}").into_bytes());
            t.put(key(4, i), b"other partition".to_vec());
        }
        t.commit(Some((3, cp))).unwrap();
        // The target has stale keys of partition 3 (deleted by the move) and
        // keys of partition 2 (kept).
        let mut t = b.txn();
        t.put(key(3, 5000), b"stale".to_vec());
        t.put(key(2, 1), b"keep".to_vec());
        t.commit(Some((3, Checkpoint { next_offset: 1, changelog_next: 1, ..Default::default() }))).unwrap();

        let file = a_dir.path().join("p3.sst");
        let info = a.export_partition(3, &file).unwrap().unwrap();
        assert_eq!((info.checkpoint, info.keys), (cp, 1001), "1000 keys and the checkpoint");
        let moved = b_dir.path().join("in.sst");
        std::fs::copy(&file, &moved).unwrap();
        assert_eq!(b.ingest_partition(3, &moved).unwrap(), cp);
        assert_eq!(b.checkpoint(3).unwrap(), Some(cp));
        let dump = |s: &Store, p: u16| {
            let (lo, hi) = keys::partition_range(p);
            let mut v = Vec::new();
            s.scan(&lo, &hi, |k, x| {
                v.push((k.to_vec(), x.to_vec()));
                true
            })
            .unwrap();
            v
        };
        assert_eq!(dump(&a, 3), dump(&b, 3));
        assert_eq!(b.get(&key(3, 5000)).unwrap(), None);
        assert_eq!(b.get(&key(2, 1)).unwrap(), Some(b"keep".to_vec()));
        assert!(dump(&b, 4).is_empty(), "nothing of another partition travels");
    }

    #[test]
    fn no_state_or_pre_changelog_state_exports_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        assert_eq!(s.export_partition(1, &dir.path().join("x.sst")).unwrap(), None);
        let mut t = s.txn();
        t.put(key(1, 1), b"v".to_vec());
        t.commit(Some((1, Checkpoint { next_offset: 10, ..Default::default() }))).unwrap();
        assert_eq!(s.export_partition(1, &dir.path().join("y.sst")).unwrap(), None);
        assert!(!dir.path().join("y.sst").exists());
    }
}

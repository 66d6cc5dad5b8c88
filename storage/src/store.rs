//! The node's RocksDB: opening with one shared block cache and write-buffer
//! manager, committed reads, partition checkpoints, and partition range drops.

use crate::keys::{self, KeyBuf, Space};
use crate::{codec, Result, Txn};
use rocksdb::{BlockBasedIndexType, BlockBasedOptions, Cache, DBCompressionType, Options, ReadOptions, WriteBufferManager, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Memory budget of the node's RocksDB (all bounded).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Shared LRU block cache, bytes.
    pub block_cache_bytes: usize,
    /// Total memtable budget across the DB (write-buffer manager), bytes.
    pub write_buffer_bytes: usize,
    /// fsync every commit (off by default: the WAL survives a process crash).
    pub sync: bool,
    /// Write partition state that the changelog also holds
    /// ([`Txn::commit_replicated`], [`Store::apply_entries`]) through RocksDB's
    /// write-ahead log too. Off, a crash loses the memtables' share of that
    /// state, which the restore on assign reads back from the changelog (every
    /// batch is published before its local commit); the checkpoint is in the
    /// same batches, so the DB always holds a consistent prefix. `sync` forces
    /// it on. Other writes (dead-letter outbox, partition drops, retention
    /// deletes) always use the WAL.
    pub replicated_wal: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { block_cache_bytes: 64 << 20, write_buffer_bytes: 64 << 20, sync: false, replicated_wal: true }
    }
}

/// What a partition has durably applied: the next Kafka offset to consume and the
/// partition's event-time watermark (max event time applied), in epoch nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub next_offset: i64,
    pub watermark_nanos: Option<i128>,
    pub applied_events: u64,
    /// Next changelog offset after the marker of the batch this checkpoint ends
    /// (0: nothing of this partition's changelog is reflected here).
    #[serde(default)]
    pub changelog_next: i64,
}

/// Where [`Store::walk_keys`] goes after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Walk {
    Next,
    /// Seek forward to this key (must be greater than the current one).
    SeekTo(Vec<u8>),
    Stop,
}

/// Told of every committed transaction's keys, after the write succeeded (so a
/// reader that has seen the notification also sees the state), and of wholesale
/// changes of a partition's range (dropped, restored), after which nothing that
/// was derived from the old range holds. Read-side caches use it to stay exact.
pub trait CommitObserver: Send + Sync {
    fn committed(&self, keys: &mut dyn Iterator<Item = &[u8]>);
    fn reset(&self, partition: u16);
}

/// Steps a [`Cursor`] takes forward before it seeks instead (a seek costs
/// about as much as a few steps; a dense sweep mostly steps).
const CURSOR_STEPS: usize = 8;

/// See [`Store::cursor`].
pub struct Cursor<'a> {
    it: rocksdb::DBRawIteratorWithThreadMode<'a, DB>,
}

impl Cursor<'_> {
    /// The current key and value, `None` at the end (or after an error:
    /// [`Cursor::status`] tells).
    pub fn current(&self) -> Option<(&[u8], &[u8])> {
        if !self.it.valid() {
            return None;
        }
        Some((self.it.key()?, self.it.value()?))
    }

    pub fn next(&mut self) {
        self.it.next();
    }

    /// Moves to the first key `>= target`, which must not be before any
    /// target this cursor was moved to (or started at) before: stays when
    /// already there, steps when it is near, seeks otherwise.
    pub fn advance_to(&mut self, target: &[u8]) {
        for _ in 0..CURSOR_STEPS {
            match self.it.key() {
                Some(k) if self.it.valid() && k < target => self.it.next(),
                _ => return,
            }
        }
        if self.it.valid() && self.it.key().is_some_and(|k| k < target) {
            self.it.seek(target);
        }
    }

    /// The iterator's error, if it stopped on one.
    pub fn status(&self) -> Result<()> {
        Ok(self.it.status()?)
    }
}

/// The format of the DB's table files: bloom filters, and a partitioned index
/// and filters (only a small top level stays pinned, the partitions are cached
/// like data, so memory stays flat as the DB grows). Exported partition
/// snapshots are written in it too, so an ingested partition reads like before.
pub(crate) fn table_format() -> BlockBasedOptions {
    let mut bbo = BlockBasedOptions::default();
    bbo.set_format_version(5);
    bbo.set_bloom_filter(10.0, false);
    bbo.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
    bbo.set_partition_filters(true);
    bbo
}

/// How a write survives a crash of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Through the write-ahead log.
    Wal,
    /// State the changelog also holds: through the WAL only with
    /// [`StoreOptions::replicated_wal`] (or `sync`).
    Replicated,
}

/// Bytes a `WriteBatch` adds per entry beyond key and value (tag and varint
/// lengths), rounded up: batches are sized once instead of grown by copying.
const BATCH_ENTRY_OVERHEAD: usize = 12;

/// The `WriteBatch` of `entries` (`None` deletes), allocated once at its size
/// (plus room for a checkpoint).
pub(crate) fn batch_of(entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> rocksdb::WriteBatch {
    let bytes: usize = entries.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + BATCH_ENTRY_OVERHEAD).sum();
    let mut b = rocksdb::WriteBatch::with_capacity_bytes(bytes + BATCH_ENTRY_OVERHEAD * 8);
    for (k, v) in entries {
        match v {
            Some(v) => b.put(k, v),
            None => b.delete(k),
        }
    }
    b
}

/// A cheaply clonable handle on the node's database.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    sync: bool,
    replicated_wal: bool,
    /// Transactions with writes that ended without a commit (see [`Txn`]).
    aborted: Arc<AtomicU64>,
    observer: Arc<OnceLock<Arc<dyn CommitObserver>>>,
    /// Held by every transaction commit and by [`Store::rewrite`], so a
    /// read-modify-write outside transactions never overwrites a commit it did
    /// not read.
    commits: Arc<Mutex<()>>,
    /// Transaction point reads left to fail ([`Store::inject_read_faults`]).
    read_faults: Arc<AtomicU64>,
    // Kept alive for the DB's lifetime.
    cache: Arc<Cache>,
    _wbm: Arc<WriteBufferManager>,
}

impl Store {
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<Store> {
        // The write-buffer manager charges memtables to the block cache, so the
        // cache holds both budgets: sized for one alone, memtables evicted every
        // index block and each get re-read and decompressed one (measured: apply
        // collapsed from 40 k to 0.2 k rec/s once the DB outgrew the cache).
        let cache = Cache::new_lru_cache(opts.block_cache_bytes + opts.write_buffer_bytes);
        let wbm = WriteBufferManager::new_write_buffer_manager_with_cache(opts.write_buffer_bytes, false, cache.clone());
        let mut bbo = table_format();
        bbo.set_block_cache(&cache);
        bbo.set_cache_index_and_filter_blocks(true);
        bbo.set_cache_index_and_filter_blocks_with_high_priority(true);
        bbo.set_pin_top_level_index_and_filter(true);
        bbo.set_pin_l0_filter_and_index_blocks_in_cache(true);
        let mut o = Options::default();
        o.create_if_missing(true);
        o.set_block_based_table_factory(&bbo);
        o.set_write_buffer_manager(&wbm);
        // A bloom filter per memtable: most point reads of the apply path miss
        // (new event ids, new identifiers) and skip the skiplist search.
        o.set_memtable_prefix_bloom_ratio(0.05);
        o.set_memtable_whole_key_filtering(true);
        o.set_compression_type(DBCompressionType::Lz4);
        o.set_bottommost_compression_type(DBCompressionType::Zstd);
        o.set_max_background_jobs(2);
        o.set_bytes_per_sync(1 << 20);
        o.set_max_open_files(512);
        o.set_keep_log_file_num(3);
        let db = DB::open(&o, path)?;
        Ok(Store {
            db: Arc::new(db),
            sync: opts.sync,
            replicated_wal: opts.replicated_wal || opts.sync,
            aborted: Arc::new(AtomicU64::new(0)),
            observer: Arc::default(),
            commits: Arc::default(),
            read_faults: Arc::default(),
            cache: Arc::new(cache),
            _wbm: Arc::new(wbm),
        })
    }

    /// How many transactions with writes ended without a successful commit since
    /// the store was opened. A cache of state written through transactions is
    /// valid only while this has not changed since it was filled.
    pub fn aborted_txns(&self) -> u64 {
        self.aborted.load(Ordering::Acquire)
    }

    /// Fault injection for tests (no configuration reaches it): the next `n`
    /// point reads of transactions that reach RocksDB fail with
    /// [`StorageError::InjectedRead`], as a transient I/O error would.
    #[doc(hidden)]
    pub fn inject_read_faults(&self, n: u64) {
        self.read_faults.store(n, Ordering::Release);
    }

    /// Takes one injected read fault, if any is left.
    pub(crate) fn read_fault(&self) -> Result<()> {
        if self.read_faults.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        match self.read_faults.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)) {
            Ok(_) => Err(crate::StorageError::InjectedRead),
            Err(_) => Ok(()),
        }
    }

    pub(crate) fn note_aborted_txn(&self) {
        self.aborted.fetch_add(1, Ordering::AcqRel);
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    /// A new read-your-writes transaction over this store.
    pub fn txn(&self) -> Txn {
        Txn::new(self.clone())
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?)
    }

    /// Visits committed `[start, end)` in key order until `f` returns `false`.
    pub fn scan(&self, start: &[u8], end: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end.to_vec());
        let mut it = self.db.raw_iterator_opt(ro);
        it.seek(start);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            if !f(k, v) {
                return Ok(());
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// The greatest committed key in `[start, end)`.
    pub fn last_key(&self, start: &[u8], end: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start.to_vec());
        ro.set_iterate_upper_bound(end.to_vec());
        let mut it = self.db.raw_iterator_opt(ro);
        it.seek_to_last();
        let last = match it.key() {
            Some(k) if it.valid() && k >= start && k < end => Some(k.to_vec()),
            _ => None,
        };
        it.status()?;
        Ok(last)
    }

    /// Visits committed keys of `[start, end)` in order; `f` says where to go
    /// next (used by sweeps that skip the retained rest of a person's timeline).
    pub fn walk_keys(&self, start: &[u8], end: &[u8], mut f: impl FnMut(&[u8]) -> Walk) -> Result<()> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end.to_vec());
        let mut it = self.db.raw_iterator_opt(ro);
        it.seek(start);
        while it.valid() {
            let Some(k) = it.key() else { break };
            match f(k) {
                Walk::Next => it.next(),
                Walk::SeekTo(to) => it.seek(&to),
                Walk::Stop => return Ok(()),
            }
        }
        it.status()?;
        Ok(())
    }

    /// A forward cursor over committed `[start, end)`, positioned at `start`:
    /// one RocksDB iterator for many nearby reads (a per-person sweep).
    pub fn cursor(&self, start: &[u8], end: &[u8]) -> Cursor<'_> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end.to_vec());
        let mut it = self.db.raw_iterator_opt(ro);
        it.seek(start);
        Cursor { it }
    }

    /// Deletes `keys` in one atomic write.
    pub fn delete_keys(&self, keys: &[Vec<u8>]) -> Result<()> {
        let mut b = rocksdb::WriteBatch::default();
        for k in keys {
            b.delete(k);
        }
        self.write(b)
    }

    /// Replaces the committed value of `key` by `f(value)` (`None`: leave it,
    /// `Some(None)`: delete it) atomically with respect to transaction
    /// commits: no commit lands between the read and the write. Nothing
    /// happens when the key is absent. Whether it wrote.
    pub fn rewrite(&self, key: &[u8], f: impl FnOnce(&[u8]) -> Option<Option<Vec<u8>>>) -> Result<bool> {
        let _commits = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        let Some(v) = self.db.get_pinned(key)? else { return Ok(false) };
        let Some(new) = f(&v) else { return Ok(false) };
        drop(v);
        let mut b = rocksdb::WriteBatch::default();
        match new {
            Some(n) => b.put(key, n),
            None => b.delete(key),
        }
        self.write(b)?;
        Ok(true)
    }

    pub fn scan_prefix(&self, prefix: &[u8], f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        self.scan(prefix, &keys::prefix_end(prefix), f)
    }

    /// [`Store::scan`] with every value decoded; a corrupt value ends the scan with its error.
    pub fn scan_as<T: serde::de::DeserializeOwned>(&self, start: &[u8], end: &[u8], mut f: impl FnMut(&[u8], T) -> bool) -> Result<()> {
        let mut err = None;
        self.scan(start, end, |k, v| match codec::decode::<T>(k, v) {
            Ok(x) => f(k, x),
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
        err.map_or(Ok(()), Err)
    }

    /// Every value under `prefix`, decoded, in key order.
    pub fn prefix_as<T: serde::de::DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.scan_as(prefix, &keys::prefix_end(prefix), |_, x| {
            out.push(x);
            true
        })?;
        Ok(out)
    }

    pub(crate) fn write(&self, batch: rocksdb::WriteBatch) -> Result<()> {
        self.write_as(batch, Durability::Wal)
    }

    pub(crate) fn write_as(&self, batch: rocksdb::WriteBatch, durability: Durability) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        wo.disable_wal(durability == Durability::Replicated && !self.replicated_wal);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    pub fn checkpoint_key(partition: u16) -> Vec<u8> {
        KeyBuf::space(partition, Space::Checkpoint).into_vec()
    }

    /// The durable checkpoint of `partition`, if it ever applied anything here.
    pub fn checkpoint(&self, partition: u16) -> Result<Option<Checkpoint>> {
        let key = Self::checkpoint_key(partition);
        match self.get(&key)? {
            Some(b) => Ok(Some(codec::decode(&key, &b)?)),
            None => Ok(None),
        }
    }

    /// Writes a restored changelog batch: every entry (`None` deletes) and, when
    /// given, the partition checkpoint, as one atomic `WriteBatch`.
    pub fn apply_entries(&self, entries: &[(Vec<u8>, Option<Vec<u8>>)], checkpoint: Option<(u16, Checkpoint)>) -> Result<()> {
        // The changelog holds it: the restore re-reads whatever a crash loses.
        // Restored or standby-applied state is a commit like any other for
        // read-side caches.
        self.write_entries(batch_of(entries), entries, checkpoint, Durability::Replicated)
    }

    /// Writes `batch` (built from `entries`) plus `checkpoint` of its partition
    /// atomically, then tells the commit observer which keys changed: the one
    /// commit path of transactions and restored batches.
    pub(crate) fn write_entries(&self, mut batch: rocksdb::WriteBatch, entries: &[(Vec<u8>, Option<Vec<u8>>)], checkpoint: Option<(u16, Checkpoint)>, durability: Durability) -> Result<()> {
        if let Some((p, cp)) = checkpoint {
            batch.put(Self::checkpoint_key(p), codec::encode(&cp)?);
        }
        {
            let _commits = self.commits.lock().unwrap_or_else(|e| e.into_inner());
            self.write_as(batch, durability)?;
        }
        self.notify_commit(&mut entries.iter().map(|(k, _)| k.as_slice()));
        Ok(())
    }

    /// Deletes everything of `partition` (after it moved away for good).
    pub fn drop_partition(&self, partition: u16) -> Result<()> {
        let (s, e) = keys::partition_range(partition);
        let mut b = rocksdb::WriteBatch::default();
        b.delete_range(s, e);
        self.write(b)?;
        self.notify_reset(partition);
        Ok(())
    }

    /// Installs the commit observer (once per store; later calls are ignored and
    /// return `false`).
    pub fn set_observer(&self, observer: Arc<dyn CommitObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    pub(crate) fn notify_commit(&self, keys: &mut dyn Iterator<Item = &[u8]>) {
        if let Some(o) = self.observer.get() {
            o.committed(keys);
        }
    }

    /// Tells the observer that `partition`'s range was replaced outside
    /// [`Txn::commit`] (a restore writes it wholesale).
    pub fn notify_reset(&self, partition: u16) {
        if let Some(o) = self.observer.get() {
            o.reset(partition);
        }
    }

    /// Estimated live bytes of the whole DB (for metrics).
    pub fn estimated_live_bytes(&self) -> u64 {
        self.db.property_int_value("rocksdb.estimate-live-data-size").ok().flatten().unwrap_or(0)
            + self.db.property_int_value("rocksdb.cur-size-all-mem-tables").ok().flatten().unwrap_or(0)
    }

    /// Memory RocksDB holds, by kind (for the `touchline_rocksdb_memory_bytes`
    /// gauge): the shared block cache (memtables are charged to it through the
    /// write-buffer manager, so `block_cache` includes them), the part of it
    /// pinned, the memtables themselves, and table readers outside the cache
    /// (index and filter blocks not charged to it; near zero with partitioned,
    /// cached index and filters).
    pub fn memory_usage(&self) -> [(&'static str, u64); 4] {
        let int = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        [
            ("block_cache", self.cache.get_usage() as u64),
            ("block_cache_pinned", self.cache.get_pinned_usage() as u64),
            ("memtables", int("rocksdb.cur-size-all-mem-tables")),
            ("table_readers", int("rocksdb.estimate-table-readers-mem")),
        ]
    }

    pub fn estimated_keys(&self) -> u64 {
        self.db.property_int_value("rocksdb.estimate-num-keys").ok().flatten().unwrap_or(0)
    }

    /// Flushes memtables (on orderly shutdown).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes in the DB's write-ahead log files.
    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "log")).map(|e| e.metadata().unwrap().len()).sum()
    }

    #[test]
    fn replicated_state_skips_the_wal_unless_asked_and_other_writes_never_do() {
        for (replicated_wal, sync) in [(false, false), (true, false), (false, true)] {
            let dir = tempfile::tempdir().unwrap();
            let s = Store::open(dir.path(), &StoreOptions { replicated_wal, sync, ..StoreOptions::default() }).unwrap();
            let before = wal_bytes(dir.path());
            let mut t = s.txn();
            t.put(b"state".to_vec(), vec![7; 4096]);
            t.commit_replicated(Some((1, Checkpoint { next_offset: 5, ..Default::default() }))).unwrap();
            s.apply_entries(&[(b"restored".to_vec(), Some(vec![8; 4096]))], None).unwrap();
            let after_state = wal_bytes(dir.path());
            assert_eq!(after_state > before + 8192, replicated_wal || sync, "replicated_wal={replicated_wal} sync={sync}");
            assert_eq!(s.get(b"state").unwrap().map(|v| v.len()), Some(4096), "readable at once either way");
            let mut t = s.txn();
            t.put(b"outbox".to_vec(), vec![9; 4096]);
            t.commit(None).unwrap();
            assert!(wal_bytes(dir.path()) >= after_state + 4096, "a plain commit always goes through the WAL");
        }
    }

    #[test]
    fn cursor_advances_by_steps_or_seeks_to_the_first_key_at_or_after_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let mut b = rocksdb::WriteBatch::default();
        for i in (0u32..200).map(|i| i * 2) {
            b.put(i.to_be_bytes(), [1]);
        }
        s.write(b).unwrap();
        let key = |i: u32| i.to_be_bytes().to_vec();
        let at = |c: &Cursor| c.current().map(|(k, _)| u32::from_be_bytes(k.try_into().unwrap()));
        let mut c = s.cursor(&key(0), &key(390));
        assert_eq!(at(&c), Some(0));
        c.advance_to(&key(0));
        assert_eq!(at(&c), Some(0), "already there: stays");
        c.advance_to(&key(5));
        assert_eq!(at(&c), Some(6), "near: steps to the first key at or after");
        c.advance_to(&key(301));
        assert_eq!(at(&c), Some(302), "far: seeks");
        c.advance_to(&key(302));
        assert_eq!(at(&c), Some(302));
        c.advance_to(&key(389));
        assert_eq!(at(&c), None, "past the upper bound");
        c.status().unwrap();
    }
}

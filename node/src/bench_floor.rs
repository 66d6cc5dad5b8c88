//! The bench's floor phases: what the barest pipelines reach on the same topic
//! and broker, so the node's apply rate can be read against what any engine with
//! the same duties could reach on this machine, not only against a bare read.
//!
//! Each phase re-reads the whole topic with one consumer thread that hands
//! batches to two worker threads (both cores, as the node uses them):
//!
//! - `decode`: every record decoded and validated by the node's own decoder;
//! - `persist`: decode, then every record's bytes put into RocksDB (the node's
//!   store and its default options) with the partition checkpoint in the same batch, written
//!   without the WAL as the node writes replicated state: one put per record,
//!   where the node writes 5.7 (BENCHMARKS.md, "Where the writes go");
//! - `changelog`: persist, and every written entry also produced to a changelog
//!   topic, as the node publishes its state before committing it.
//!
//! No identity, no timelines, no attribution: each phase is an upper bound on
//! the node's apply rate, not a model of it.

use crate::bench::{gen_client, read_from_beginning};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use touchline_actors::domain::decode::{decode, ValidateCtx};
use touchline_actors::domain::Ts;
use touchline_storage::{Checkpoint, Store, StoreOptions};

/// One floor phase: how much of the node's per-record work it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Floor {
    Decode,
    Persist,
    Changelog,
}

impl Floor {
    pub const ALL: [Floor; 3] = [Floor::Decode, Floor::Persist, Floor::Changelog];

    pub fn name(self) -> &'static str {
        match self {
            Floor::Decode => "consume + decode",
            Floor::Persist => "consume + decode + RocksDB put",
            Floor::Changelog => "consume + decode + RocksDB put + changelog produce",
        }
    }
}

/// Records handed to a worker at a time (about the node's batch size).
const BATCH: usize = 512;
const WORKERS: usize = 2;

type Batch = Vec<(i32, i64, Vec<u8>)>;

/// Reads `expect` records of `topic` through `floor`; returns the records done
/// and the time from the first record polled to the last one done.
pub fn run(floor: Floor, brokers: &str, topic: &str, partitions: i32, expect: usize, dir: &std::path::Path) -> Result<(usize, Duration), String> {
    let store = match floor {
        Floor::Decode => None,
        _ => Some(Store::open(dir, &StoreOptions { replicated_wal: false, ..StoreOptions::default() }).map_err(|e| e.to_string())?),
    };
    let producer: Option<ThreadedProducer<DefaultProducerContext>> = match floor {
        Floor::Changelog => Some(gen_client(brokers).set("linger.ms", "5").create().map_err(|e| e.to_string())?),
        _ => None,
    };
    let changelog = format!("{topic}.floor-changelog");
    let consumer = read_from_beginning(brokers, "touchline-bench-floor", topic, partitions)?;

    let (tx, rx) = mpsc::sync_channel::<Batch>(4);
    let rx = Arc::new(Mutex::new(rx));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (rx, done, store, producer, changelog) = (rx.clone(), done.clone(), store.clone(), producer.clone(), changelog.clone());
            std::thread::spawn(move || -> Result<(), String> {
                loop {
                    let batch = match rx.lock().map_err(|e| e.to_string())?.recv() {
                        Ok(b) => b,
                        Err(_) => return Ok(()),
                    };
                    work(&batch, partitions, store.as_ref(), producer.as_ref(), &changelog)?;
                    done.fetch_add(batch.len(), Ordering::AcqRel);
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(600.max(expect as u64 / 5000));
    let (mut polled, mut started) = (0usize, None::<Instant>);
    let mut batch: Batch = Vec::with_capacity(BATCH);
    while polled < expect && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                started.get_or_insert_with(Instant::now);
                polled += 1;
                batch.push((m.partition(), m.offset(), m.payload().unwrap_or_default().to_vec()));
                if batch.len() == BATCH {
                    tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).map_err(|e| e.to_string())?;
                }
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => {}
        }
    }
    if !batch.is_empty() {
        tx.send(batch).map_err(|e| e.to_string())?;
    }
    drop(tx);
    for w in workers {
        w.join().map_err(|_| "a floor worker panicked".to_string())??;
    }
    if let Some(p) = &producer {
        p.flush(Duration::from_secs(60)).map_err(|e| e.to_string())?;
    }
    Ok((done.load(Ordering::Acquire), started.map(|s| s.elapsed()).unwrap_or_default()))
}

fn work(batch: &Batch, partitions: i32, store: Option<&Store>, producer: Option<&ThreadedProducer<DefaultProducerContext>>, changelog: &str) -> Result<(), String> {
    let mut txn = store.map(Store::txn);
    let mut last = None;
    for (p, offset, payload) in batch {
        let ctx = ValidateCtx { now: Ts::now(), partition: Some(*p), partitions };
        let accepted = decode(payload, &ctx).is_ok();
        last = Some((*p, *offset));
        let Some(t) = txn.as_mut() else { continue };
        if !accepted {
            continue;
        }
        let mut key = Vec::with_capacity(10);
        key.extend_from_slice(&(*p as u16).to_be_bytes());
        key.extend_from_slice(&offset.to_be_bytes());
        if let Some(prod) = producer {
            let mut rec = BaseRecord::to(changelog).key(key.as_slice()).payload(payload.as_slice());
            // A full queue is waited out, as the node's changelog producer does.
            loop {
                match prod.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        rec = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
        t.put(key, payload.clone());
    }
    if let (Some(t), Some((p, offset))) = (txn, last) {
        let cp = Checkpoint { next_offset: offset + 1, ..Checkpoint::default() };
        t.commit_replicated(Some((p as u16, cp))).map_err(|e| e.to_string())?;
    }
    Ok(())
}

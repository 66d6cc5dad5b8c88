//! Backfill of the results topic: when the topic is turned on over existing
//! state, or its name, `results.models` or the lookback changes, the records
//! of conversions no batch touches would stay missing (or computed the old
//! way). Each partition stores, as state (key family `U`, written in a
//! transaction committed through the changelog, so restores, snapshots and
//! standbys carry it), the [`fingerprint`] of the results configuration its
//! records were computed with and, while a backfill is pending, a cursor.
//!
//! A partition whose stored fingerprint differs from the current one (none
//! stored: turned on, or state of a build before backfills) starts a
//! backfill: [`step`] republishes, in chunks of at most
//! `results.backfill_persons` persons, every person's conversions of the
//! partition — first every person (`P`), then every person that still has
//! digests but no person any more (`R`; erased while the topic was off: its
//! records are tombstoned) — moving the cursor in the same transaction. The
//! partition actor runs one step at a time between its batches, so a huge
//! partition never stalls the apply. While a backfill is pending every
//! publish is *forced* ([`pending`]; `plan`'s `force`): a touched person's
//! records are published whatever their digests, since the topic may not
//! hold them (a new topic), and a person moved by a merge behind the cursor
//! is not missed. Turning the topic off deletes the stored state ([`clear`]),
//! so turning it on again backfills.
//!
//! A changed `results.models` changes every record's value under the same
//! key: the forced republish replaces it; no key goes away (a tombstone only
//! follows a conversion that left).

use super::publisher::{Affected, Outgoing, Publisher};
use super::ResultsConfig;
use crate::actors::EngineConfig;
use crate::state::key;
use crate::state::tenant::{person_in_key, split_key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use touchline_storage::keys::prefix_end;
use touchline_storage::{StorageError, Txn};

/// The stored state of a partition's results (key family `U`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillState {
    /// [`fingerprint`] of the configuration the backfill runs (or ran) for.
    pub fingerprint: u64,
    /// Where the pending backfill resumes (`None`: done).
    pub cursor: Option<Cursor>,
}

/// A backfill's position: the phase and the last key visited in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// `false`: walking the persons (`P`); `true`: the digests (`R`).
    pub digests: bool,
    /// The last key visited (empty: the phase's start).
    pub after: Vec<u8>,
}

/// The fingerprint of what a record depends on besides the state: the topic,
/// the models (in order), the lookback and the model parameters. Stable
/// across builds (SHA-256).
pub fn fingerprint(cfg: &ResultsConfig) -> u64 {
    let mut h = Sha256::new();
    h.update(b"touchline-results-v1\0");
    h.update(cfg.topic.as_bytes());
    for m in &cfg.models {
        h.update([0u8]);
        h.update(m.as_str().as_bytes());
    }
    h.update([0u8]);
    h.update(cfg.lookback_days.to_be_bytes());
    h.update(cfg.params.half_life_secs.to_bits().to_be_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

fn load(txn: &Txn, p: u16) -> Result<Option<BackfillState>, StorageError> {
    txn.get_as(&key::results_backfill(p))
}

/// Whether a backfill of partition `p` for `cfg` is still to run or running.
pub fn pending(txn: &Txn, p: u16, cfg: &ResultsConfig) -> Result<bool, StorageError> {
    Ok(load(txn, p)?.is_none_or(|s| s.fingerprint != fingerprint(cfg) || s.cursor.is_some()))
}

/// Deletes the stored state (the topic is off: turning it on backfills).
/// Returns whether there was any.
pub fn clear(txn: &mut Txn, p: u16) -> Result<bool, StorageError> {
    let k = key::results_backfill(p);
    let had = txn.contains(&k)?;
    if had {
        txn.delete(k);
    }
    Ok(had)
}

/// One backfill step of partition `p` into `txn`: the records of the next
/// chunk of persons, forced, and the cursor moved. `None`: no backfill is
/// pending (nothing written). The flag: more steps follow.
pub fn step(pb: &Publisher, txn: &mut Txn, p: u16, engine: &EngineConfig) -> Result<Option<(Outgoing, bool)>, StorageError> {
    let fp = fingerprint(&pb.config);
    let cursor = match load(txn, p)? {
        Some(BackfillState { fingerprint, cursor: None }) if fingerprint == fp => return Ok(None),
        Some(BackfillState { fingerprint, cursor: Some(c) }) if fingerprint == fp => c,
        _ => Cursor { digests: false, after: Vec::new() },
    };
    let (persons, next) = walk(txn, p, &cursor, pb.config.backfill_persons.max(1))?;
    txn.put_as(key::results_backfill(p), &BackfillState { fingerprint: fp, cursor: next.clone() })?;
    let out = pb.publish(txn, p, engine, persons, true)?;
    Ok(Some((out, next.is_some())))
}

/// The next at most `budget` keys of the cursor's phase, as persons, and the
/// cursor after them (`None`: the last phase ended).
fn walk(txn: &Txn, p: u16, cursor: &Cursor, budget: usize) -> Result<(Affected, Option<Cursor>), StorageError> {
    let prefix = if cursor.digests { key::published_prefix(p) } else { key::persons_prefix(p) };
    let start = if cursor.after.is_empty() {
        prefix.clone()
    } else {
        let mut s = cursor.after.clone();
        s.push(0);
        s
    };
    let mut visited: Vec<(String, u64, Vec<u8>)> = Vec::new();
    txn.scan(&start, &prefix_end(&prefix), |k, _| {
        if let Some((_, _, tenant, rest)) = split_key(k) {
            if let Some(person) = person_in_key(rest, 0) {
                visited.push((String::from_utf8_lossy(tenant).into_owned(), person, k.to_vec()));
            }
        }
        visited.len() < budget
    })?;
    let mut persons = Affected::new();
    for (tenant, person, _) in &visited {
        // Digests of a person that still exists: done in the first phase.
        if cursor.digests && txn.contains(&key::person(p, tenant, *person))? {
            continue;
        }
        persons.entry(tenant.clone()).or_default().insert(*person);
    }
    let next = match visited.last() {
        Some((_, _, k)) if visited.len() >= budget => Some(Cursor { digests: cursor.digests, after: k.clone() }),
        _ if !cursor.digests => Some(Cursor { digests: true, after: Vec::new() }),
        _ => None,
    };
    Ok((persons, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::models::Model;

    #[test]
    fn the_fingerprint_follows_topic_models_and_lookback_only() {
        let base = ResultsConfig::default();
        let f = fingerprint(&base);
        assert_eq!(f, fingerprint(&base.clone()));
        assert_ne!(f, fingerprint(&ResultsConfig { topic: "other".into(), ..base.clone() }));
        assert_ne!(f, fingerprint(&ResultsConfig { models: vec![Model::Linear], ..base.clone() }));
        assert_ne!(f, fingerprint(&ResultsConfig { lookback_days: 7, ..base.clone() }));
        assert_eq!(f, fingerprint(&ResultsConfig { backfill_persons: 3, ..base }), "the chunk size is no part of a record");
    }
}

//! Erasure inside a partition transaction: what an erasure takes (its
//! [`ErasureScope`]) and the deletion of it, leaving one-way tombstones.
//!
//! Reading (docs/windows-retention-privacy.md, "Erasure"), chosen so that the
//! result is a function of the final event set, whatever the arrival order:
//! an erasure request for `x` erases the link components of `customer_id x`
//! and of `user_id x` in the graph of every accepted event's links (the merge
//! guard does not shield: a guarded component's persons all go), and every
//! event of an erased identifier, whatever its time, counts as never having
//! happened in per-person state. Streaming reaches that: an erasure deletes
//! the components as stored when it is applied and tombstones each of their
//! identifiers (and both roots, known or not); an event that carries a
//! tombstoned identifier is dropped from per-person state, and when it links
//! a tombstoned identifier with one that is not, that one's component is
//! erased too — as it would have been had the event arrived first.

use super::records::{key, ConvRec};
use super::tenant::TenantState;
use crate::domain::identity::{IdKind, IdNode, IdentityStore};
use crate::domain::Ts;
use std::collections::{BTreeSet, VecDeque};
use touchline_storage::{codec, StorageError};

/// What an erasure removed (for logs and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    pub identifiers: usize,
    pub records: usize,
}

/// The identifiers and persons one erasure takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErasureScope {
    /// The roots and every identifier linked to them (sorted).
    pub nodes: Vec<IdNode>,
    /// The persons of those identifiers (sorted).
    pub persons: Vec<u64>,
}

impl ErasureScope {
    /// The customer_ids of the scope (their signals, consent and segments go).
    pub fn customers(&self) -> impl Iterator<Item = &IdNode> {
        self.nodes.iter().filter(|n| n.kind == IdKind::Customer)
    }
}

impl TenantState<'_> {
    /// The latest erasure time of `n`, if it was ever erased.
    pub fn erased_at(&self, n: &IdNode) -> Result<Option<Ts>, StorageError> {
        self.txn.get_as::<Ts>(&key::erased(self.partition, self.tenant, n))
    }

    /// The first of `nodes` that was ever erased, with its erasure time: an
    /// event that carries it belongs to an erased person and must not
    /// recreate it, whatever its time.
    pub fn erased_among<'n>(&self, nodes: &[&'n IdNode]) -> Result<Option<(&'n IdNode, Ts)>, StorageError> {
        if self.meta.erasures == 0 {
            return Ok(None);
        }
        for n in nodes {
            if let Some(te) = self.erased_at(n)? {
                return Ok(Some((n, te)));
            }
        }
        Ok(None)
    }

    /// `true` when any of `nodes` was ever erased.
    pub fn is_erased(&self, nodes: &[&IdNode]) -> Result<bool, StorageError> {
        Ok(self.erased_among(nodes)?.is_some())
    }

    /// The scope of erasing `roots`: each root and every identifier its
    /// stored links reach, and their persons.
    pub fn erasure_scope(&mut self, roots: &[IdNode]) -> Result<ErasureScope, StorageError> {
        let mut seen: BTreeSet<IdNode> = roots.iter().cloned().collect();
        let mut queue: VecDeque<IdNode> = seen.iter().cloned().collect();
        let mut persons = BTreeSet::new();
        while let Some(n) = queue.pop_front() {
            persons.extend(self.person_of(&n)?);
            for l in self.links_of(&n)? {
                for m in [l.a, l.b] {
                    if seen.insert(m.clone()) {
                        queue.push_back(m);
                    }
                }
            }
        }
        Ok(ErasureScope { nodes: seen.into_iter().collect(), persons: persons.into_iter().collect() })
    }

    /// Erases `scope` at `ts`: identity nodes and links, consent, segments
    /// and signals of every identifier, the persons' timelines, conversions
    /// and their index; then tombstones every identifier (keeping the latest
    /// time).
    pub fn erase(&mut self, scope: &ErasureScope, ts: Ts) -> Result<Erased, StorageError> {
        let (p, t) = (self.partition, self.tenant.to_string());
        let mut out = Erased::default();
        self.meta.erasures += 1;
        self.mark_meta_dirty();
        for n in &scope.nodes {
            self.delete_node(n);
            out.records += self.delete_links_of(n)?;
            if n.kind == IdKind::Customer {
                for prefix in [key::consent_prefix(p, &t, &n.id), key::segment_prefix(p, &t, &n.id), key::signal_prefix(p, &t, &n.id)] {
                    for (k, _) in self.txn.collect_prefix(&prefix)? {
                        self.txn.delete(k);
                        out.records += 1;
                    }
                }
            }
            let tomb = key::erased(p, &t, n);
            let te = self.txn.get_as::<Ts>(&tomb)?.map_or(ts, |old| old.max(ts));
            self.txn.put_as(tomb, &te)?;
            out.identifiers += 1;
        }
        for &pk in &scope.persons {
            for (k, _) in self.txn.collect_prefix(&key::touch_prefix(p, &t, pk))? {
                self.txn.delete(k);
                out.records += 1;
            }
            for (k, v) in self.txn.collect_prefix(&key::conv_prefix(p, &t, pk))? {
                let c: ConvRec = codec::decode(&k, &v)?;
                self.txn.delete(key::conv_by_time(p, &t, c.ts, &c.event_id));
                self.txn.delete(k);
                out.records += 1;
            }
            self.txn.delete(key::summary(p, &t, pk));
            self.delete_person(pk)?;
        }
        Ok(out)
    }
}

//! Report cache entries over final persons (`identity=all` on a tenant with
//! stored probabilistic links; attribution.md, "Probabilistic links" 6).
//!
//! Such an entry (its key's `all`) holds one part per *final* person: a known
//! person with linked anonymous persons has the part of their merged
//! timelines, each linked anonymous person an empty part, every other person
//! its own part (equal to the deterministic one). The stored links
//! (`state::problinks`) are written in the batch that changes them, so the
//! commit observer journals the anonymous person of every link gained, lost
//! or moved; the entry remembers the links its parts were computed under
//! ([`super::paths_entry::Entry::groups`]), so a changed person, its current
//! and its previous final person are recomputed — exactly the parts a
//! change can touch. After any build, every person of a link (now or at the
//! base entry's) is recomputed.

use super::attribution::AttributionQuery;
use super::consent::ConsentCache;
use super::datadriven::PersonPaths;
use super::linking::FinalPersons;
use super::paths_entry::Entry;
use super::sweep::part_of;
use super::QueryError;
use crate::state::summary::Summary;
use crate::state::{key, ConvRec, TouchRec};
use std::collections::BTreeSet;
use touchline_storage::Store;

/// The persons of `e` to recompute for the `changed` ones under `view`: each,
/// its final person now and the one its part was computed under — and so for
/// every link that differs from the ones the parts were computed under (a
/// batch committed between reading `view` and the journal position).
pub(super) fn expand(e: &Entry, view: &FinalPersons, changed: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let moved = view.links.iter().filter(|(a, l)| e.groups.get(a) != Some(&l.known)).map(|(a, _)| *a);
    let gone = e.groups.keys().filter(|a| !view.links.contains_key(a)).copied();
    for p in changed.into_iter().chain(moved).chain(gone) {
        out.insert(p);
        out.insert(view.group_of(p));
        out.extend(e.groups.get(&p).copied());
    }
    out
}

/// Every person whose part differs from its deterministic one under `view`
/// or under the links `e` was computed with.
pub(super) fn grouped(e: &Entry, view: &FinalPersons) -> BTreeSet<u64> {
    let mut out: BTreeSet<u64> = view.links.keys().chain(view.linked.keys()).copied().collect();
    for (a, k) in &e.groups {
        out.insert(*a);
        out.insert(*k);
    }
    out
}

/// The persons of `persons` whose part under `view` is not their own
/// (linked anonymous persons: empty; known persons with links: merged),
/// with that part; the others are left in `persons`.
pub(super) fn group_parts(
    store: &Store,
    (p, tenant): (u16, &str),
    q: &AttributionQuery,
    currency: &str,
    consent: &mut ConsentCache,
    view: &FinalPersons,
    persons: &mut Vec<u64>,
) -> Result<Vec<(u64, PersonPaths)>, QueryError> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    let mut rest = Vec::with_capacity(persons.len());
    for &person in persons.iter() {
        if view.links.contains_key(&person) {
            out.push((person, PersonPaths::default()));
        } else if view.linked.contains_key(&person) {
            let summary = merged_summary(store, p, tenant, &view.members_of(person))?;
            out.push((person, part_of(q, currency, consent, person, &summary, &mut scratch)?));
        } else {
            rest.push(person);
        }
    }
    *persons = rest;
    Ok(out)
}

/// The summary of the merged timelines of `members`, in (time, event_id)
/// order like one person's.
fn merged_summary(store: &Store, p: u16, tenant: &str, members: &[u64]) -> Result<Summary, QueryError> {
    let (mut touches, mut convs): (Vec<TouchRec>, Vec<ConvRec>) = (Vec::new(), Vec::new());
    for &m in members {
        touches.extend(store.prefix_as::<TouchRec>(&key::touch_prefix(p, tenant, m))?);
        convs.extend(store.prefix_as::<ConvRec>(&key::conv_prefix(p, tenant, m))?);
    }
    touches.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
    convs.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
    Ok(Summary::of(&touches, &convs))
}

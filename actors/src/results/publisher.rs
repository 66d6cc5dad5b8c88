//! The results publisher's I/O: which persons a batch touched (from the keys
//! its transaction writes), their conversions' records as the transaction
//! sees them, the digests of what was last published, and the produce.
//!
//! Touched persons ([`affected`]): a timeline, conversion, summary or person
//! key of the person written or deleted (new touchpoint or conversion, a merge
//! — both sides —, an erasure, a retention sweep), or a `consent_update` of one
//! of its customer_ids. Callers add persons whose records change without a
//! key of theirs being written (probabilistic links, see [`Affected`]).
//!
//! Records follow what queries answer: touchpoints and conversions behind the
//! tenant's retention horizon and those a consent withdrawal covers are left
//! out. The horizon moves with every later event, but a person's record is
//! recomputed only when the person is touched: the retention sweep deleting
//! the person's old records touches it, so the topic follows retention as the
//! sweep runs (a conversion behind the horizon is tombstoned then).
//!
//! Persons are the final ones ([`super::groups`]): for a tenant with
//! probabilistic links, a touched person widens to its final person (every
//! member's conversions are recomputed over the members' joint path, with
//! their joint consent, under the known member's `person_id`), and the
//! partition adds the persons whose final person a batch changed
//! (`TenantStats::relinked`: the anonymous person, its known person before
//! and after) as `extra`. The digests stay per deterministic person.

use super::groups::{groups, Group};
use super::plan::{plan, Current, Published};
use super::record::{digest, record_key, record_value};
use super::{ResultRecord, ResultsConfig, ResultsSink};
use crate::actors::EngineConfig;
use crate::domain::identity::IdKind;
use crate::domain::retention::retained;
use crate::query::consent::allows;
use crate::state::tenant::{person_in_key, split_key};
use crate::state::summary::{is_overflow, Summary};
use crate::state::{key, ConsentRec, ConvRec, PersonRec, TenantMeta, TouchRec};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use touchline_storage::keys::{read_str0, Space};
use touchline_storage::{StorageError, Txn};

/// Persons to recompute, by tenant.
pub type Affected = BTreeMap<String, BTreeSet<u64>>;

/// Publishes a partition's results through a sink.
#[derive(Clone)]
pub struct Publisher {
    pub sink: Arc<dyn ResultsSink>,
    pub config: Arc<ResultsConfig>,
}

/// What one batch publishes.
#[derive(Debug, Default, PartialEq)]
pub struct Outgoing {
    pub records: Vec<ResultRecord>,
    pub tombstones: u64,
}

impl Publisher {
    /// Plans the records of the persons `txn` touched and `extra`, writing
    /// their digests into `txn` (call right before the commit): one key per
    /// person with conversions, (event_id, digest) of each, in (ts, event_id)
    /// order — deleted with its person's last conversion. Forced while a
    /// backfill is pending ([`super::backfill`]).
    pub fn prepare(&self, txn: &mut Txn, p: u16, engine: &EngineConfig, extra: &Affected) -> Result<Outgoing, StorageError> {
        let mut persons = affected(txn, p)?;
        for (t, ps) in extra {
            persons.entry(t.clone()).or_default().extend(ps.iter().copied());
        }
        let force = super::backfill::pending(txn, p, &self.config)?;
        self.publish(txn, p, engine, persons, force)
    }

    /// The records of `persons` (widened to their final persons), their
    /// digests written into `txn`; `force`: every current record, changed or
    /// not.
    pub(super) fn publish(&self, txn: &mut Txn, p: u16, engine: &EngineConfig, persons: Affected, force: bool) -> Result<Outgoing, StorageError> {
        let mut out = Outgoing::default();
        for (tenant, persons) in persons {
            let meta: TenantMeta = txn.get_as(&key::tenant_meta(p, &tenant))?.unwrap_or_default();
            let horizon = engine.retention.horizon(&tenant, meta.max_ts);
            let (mut old, mut new) = (Vec::new(), Vec::new());
            for group in groups(txn, p, &tenant, &persons, engine.linking.of(&tenant).is_some())? {
                let mut before: Vec<(u64, Vec<(String, u64)>)> = Vec::with_capacity(group.members.len());
                let mut maybe = false;
                for &m in &group.members {
                    let b: Vec<(String, u64)> = txn.get_as(&key::published(p, &tenant, m))?.unwrap_or_default();
                    // Most touched persons never converted: two point reads.
                    maybe = maybe || !b.is_empty() || may_convert(txn, p, &tenant, m, horizon)?;
                    before.push((m, b));
                }
                if !maybe {
                    continue;
                }
                let mut now = current(txn, &self.config, p, &tenant, &group, horizon, meta.consent_updates > 0)?;
                for (m, before) in before {
                    let now = now.remove(&m).unwrap_or_default();
                    let k = key::published(p, &tenant, m);
                    let digests: Vec<(&str, u64)> = now.iter().map(|c| (c.event_id.as_str(), c.digest)).collect();
                    if digests.is_empty() {
                        if !before.is_empty() {
                            txn.delete(k);
                        }
                    } else if digests.len() != before.len() || digests.iter().zip(&before).any(|(a, b)| a.0 != b.0 || a.1 != b.1) {
                        txn.put_as(k, &digests)?;
                    }
                    old.extend(before.into_iter().map(|(event_id, digest)| Published { event_id, digest }));
                    new.extend(now);
                }
            }
            for (event_id, value) in plan(old, new, force) {
                out.tombstones += value.is_none() as u64;
                out.records.push((record_key(&tenant, &event_id), value));
            }
        }
        Ok(out)
    }

    /// Produces `out` and waits for its acknowledgement.
    pub async fn send(&self, p: u16, out: Outgoing) -> Result<(), String> {
        if out.records.is_empty() {
            return Ok(());
        }
        let (n, tombstones) = (out.records.len() as u64, out.tombstones);
        match self.sink.publish(p, out.records).await {
            Ok(()) => {
                crate::metrics::results_published(n - tombstones, tombstones);
                Ok(())
            }
            Err(e) => {
                crate::metrics::results_error();
                Err(format!("results topic: {e}"))
            }
        }
    }
}

/// The persons of partition `p` whose records `txn` writes or deletes.
pub fn affected(txn: &Txn, p: u16) -> Result<Affected, StorageError> {
    let mut out = Affected::new();
    let mut last: Option<(Vec<u8>, u64)> = None;
    for k in txn.keys() {
        let Some((kp, space, tenant, rest)) = split_key(k) else { continue };
        if kp != p {
            continue;
        }
        let person = if [Space::Touch, Space::Conversion, Space::Summary, Space::Person].iter().any(|s| *s as u8 == space) {
            person_in_key(rest, 0)
        } else if space == Space::Consent as u8 {
            let Some((customer, _)) = read_str0(rest) else { continue };
            let Ok(customer) = std::str::from_utf8(&customer) else { continue };
            let tenant = std::str::from_utf8(tenant).unwrap_or_default();
            txn.get(&key::node_lookup(p, tenant, IdKind::Customer, customer))?.and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok()).map(u64::from_be_bytes)
        } else {
            None
        };
        let Some(person) = person else { continue };
        if last.as_ref().is_some_and(|(t, q)| t.as_slice() == tenant && *q == person) {
            continue;
        }
        last = Some((tenant.to_vec(), person));
        out.entry(String::from_utf8_lossy(tenant).into_owned()).or_default().insert(person);
    }
    Ok(out)
}

/// Whether `person` may have a retained conversion, from its path summary (one
/// read): `true` unless the summary shows none (no summary, an overflowed or
/// unreadable one: maybe).
fn may_convert(txn: &Txn, p: u16, tenant: &str, person: u64, horizon: Option<crate::domain::Ts>) -> Result<bool, StorageError> {
    txn.get_with(&key::summary(p, tenant, person), |v| match v {
        Some(v) if !is_overflow(v) => Summary::decode(v).map_or(true, |s| s.convs.iter().any(|c| retained(c.ts, horizon))),
        _ => true,
    })
}

/// The current record of each conversion of each member of `group`, as
/// `/v1` queries over the final persons see them: the path of a conversion
/// holds every member's touchpoints; consent is that of all members'
/// customer_ids; `person_id` is the head's (the known person's).
fn current(txn: &Txn, cfg: &ResultsConfig, p: u16, tenant: &str, group: &Group, horizon: Option<crate::domain::Ts>, consent: bool) -> Result<BTreeMap<u64, Vec<Current>>, StorageError> {
    let mut recs: Vec<(u64, PersonRec)> = Vec::with_capacity(group.members.len());
    for &m in &group.members {
        if let Some(rec) = txn.get_as::<PersonRec>(&key::person(p, tenant, m))? {
            recs.push((m, rec));
        }
    }
    let mut convs: Vec<(u64, ConvRec)> = Vec::new();
    for (m, _) in &recs {
        let mine: Vec<ConvRec> = txn.prefix_as(&key::conv_prefix(p, tenant, *m))?;
        convs.extend(mine.into_iter().filter(|c| retained(c.ts, horizon)).map(|c| (*m, c)));
    }
    if convs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut touches: Vec<TouchRec> = Vec::new();
    for (m, _) in &recs {
        touches.extend(txn.prefix_as::<TouchRec>(&key::touch_prefix(p, tenant, *m))?.into_iter().filter(|t| retained(t.ts, horizon)));
    }
    if recs.len() > 1 {
        touches.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
    }
    if consent {
        let mut updates: Vec<ConsentRec> = Vec::new();
        for n in recs.iter().flat_map(|(_, r)| r.ids.members.iter()).filter(|n| n.kind == IdKind::Customer) {
            updates.extend(txn.prefix_as::<ConsentRec>(&key::consent_prefix(p, tenant, &n.id))?);
        }
        updates.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
        convs.retain(|(_, c)| allows(&updates, c.ts));
        touches.retain(|t| allows(&updates, t.ts));
    }
    let head = recs.iter().find(|(m, _)| *m == group.head).map(|(_, r)| r.ids.public_id());
    let lookback = cfg.lookback_days.saturating_mul(86_400);
    let mut out: BTreeMap<u64, Vec<Current>> = BTreeMap::new();
    for (m, c) in &convs {
        let lo = c.ts.minus_secs(lookback);
        let start = touches.partition_point(|t| t.ts < lo);
        let end = touches.partition_point(|t| t.ts <= c.ts).max(start);
        let path: Vec<&TouchRec> = touches[start..end].iter().collect();
        // A head gone (never so after a batch: its links go with it): the member's own id.
        let person_id = head.clone().unwrap_or_else(|| recs.iter().find(|(r, _)| r == m).map(|(_, r)| r.ids.public_id()).unwrap_or_default());
        let value = record_value(cfg, tenant, &person_id, c, &path);
        out.entry(*m).or_default().push(Current { event_id: c.event_id.clone(), digest: digest(&value), value });
    }
    Ok(out)
}

//! Batch reference of attribution.md: an independent, in-memory, whole-dataset
//! implementation used by the integration tests to cross-check the streaming cluster.
//!
//! It reuses only validation (`decode`) and the event types from `touchline-actors`;
//! identity stitching and the rule-based models are reimplemented here on purpose
//! (never `models`, `report` or `datadriven`), so a bug in one side shows up as a
//! disagreement. Markov and Shapley are computed over the query's paths by
//! `datadriven` (its own, from the spec).
//!
//! Retention (README, "Retention"): per tenant, touchpoints and conversions
//! older than the tenant's newest accepted event time (erasure requests aside)
//! minus its retention in days are left out, after identity and currency
//! counts, which keep every event.
//!
//! Campaigns (`campaigns`): spend from campaign event deltas and the surviving
//! imported daily costs, joined with the campaign report.
//!
//! Out of scope (not produced by the generator): `erasure_request` is accepted
//! and counted but has no effect here, and probabilistic stitching is never
//! applied (deterministic links only).

mod attribution;
mod campaigns;
mod conversions;
mod datadriven;
mod journeys;
pub mod probabilistic;
mod rules;

pub use campaigns::RefCampaign;
pub use conversions::RefConversion;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use touchline_actors::domain::decode::{decode, ValidateCtx};
use touchline_actors::domain::{Body, Event, JourneyKind, TouchInfo, Ts};

/// The identity graph's merge guard (attribution.md, default `max_ids_per_person`).
pub const MAX_IDS_PER_PERSON: usize = 64;

/// The node's default retention (`engine.retention_days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// Retention in days (0 keeps forever): a default and per-tenant overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    pub default_days: u32,
    pub per_tenant: BTreeMap<String, u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { default_days: DEFAULT_RETENTION_DAYS, per_tenant: BTreeMap::new() }
    }
}

/// A report query (http-api.md attribution parameters, resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct RefQuery {
    pub tenant: String,
    pub model: String,
    /// Conversion time range `[from, to)`.
    pub from: Ts,
    pub to: Ts,
    pub group_by: String,
    pub lookback_days: i64,
    pub half_life_hours: f64,
    /// `None`: the tenant's currency with the most conversions (ties alphabetical).
    pub currency: Option<String>,
    /// `custom` weights `F, M, L` (any positive scale).
    pub weights: Option<[f64; 3]>,
}

impl RefQuery {
    /// A query with the defaults: `channel`, 30 days lookback, 7 days half-life.
    pub fn new(tenant: &str, model: &str, from: Ts, to: Ts) -> RefQuery {
        RefQuery {
            tenant: tenant.to_string(),
            model: model.to_string(),
            from,
            to,
            group_by: "channel".to_string(),
            lookback_days: 30,
            half_life_hours: 168.0,
            currency: None,
            weights: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdKind {
    CustomerId,
    UserId,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::CustomerId => "customer_id",
            IdKind::UserId => "user_id",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefIdentifier {
    pub kind: IdKind,
    pub id: String,
}

/// A stitched person: everything sorted (identifiers by kind then id, event ids bytewise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefPerson {
    pub identifiers: Vec<RefIdentifier>,
    pub touchpoints: Vec<String>,
    pub conversions: Vec<String>,
}

struct Touch {
    event_id: String,
    ts: Ts,
    info: TouchInfo,
}

struct Conv {
    event_id: String,
    ts: Ts,
    value: f64,
    currency: String,
}

#[derive(Default)]
struct PersonData {
    /// Sorted by (ts, event_id).
    touches: Vec<Touch>,
    conversions: Vec<Conv>,
}

#[derive(Default)]
struct TenantData {
    node_of: HashMap<(IdKind, String), usize>,
    nodes: Vec<(IdKind, String)>,
    /// Union-find over `nodes`, resolved: `root[n]` is the person of node `n`.
    root: Vec<usize>,
    /// The nodes of each person, by root.
    members: HashMap<usize, Vec<usize>>,
    persons: HashMap<usize, PersonData>,
    conv_count_by_currency: BTreeMap<String, usize>,
    blocked_links: usize,
    /// Touchpoints and conversions a consent withdrawal kept out.
    consent_excluded: usize,
    /// Newest accepted event time minus the retention; `None` keeps everything.
    horizon: Option<Ts>,
    /// Touchpoints and conversions behind the horizon (after consent).
    retention_excluded: usize,
    /// Every accepted consented touchpoint for the journey windows (which
    /// neither consent updates nor retention touch): time, journey,
    /// composite key, interaction type.
    window_touches: Vec<(Ts, String, String, String)>,
    /// Summed `performance_metrics.cost` deltas of campaign events, by campaign.
    campaign_cost: BTreeMap<String, f64>,
    /// The surviving `cost_import` of each (campaign, date): (import time, event_id, row).
    cost_days: BTreeMap<(String, String), (Ts, String, touchline_actors::domain::costs::CostImport)>,
}

/// The batch result over one set of records.
pub struct Reference {
    tenants: BTreeMap<String, TenantData>,
    rejected: BTreeMap<String, usize>,
    accepted: usize,
    duplicates: usize,
}

struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
}

/// Builds the reference from `(partition, value)` records given in per-partition
/// offset order, under the node's default retention.
pub fn build(records: &[(i32, Vec<u8>)], partitions: i32) -> Reference {
    build_with_retention(records, partitions, &Retention::default())
}

/// [`build`] under `retention`.
pub fn build_with_retention(records: &[(i32, Vec<u8>)], partitions: i32, retention: &Retention) -> Reference {
    build_with_options(records, partitions, retention, true)
}

/// [`build`] under `retention`; `reroute` (the node's default,
/// `ingest.misrouted = "reroute"`) applies a record found on another partition
/// than its tenant's like any other (events.md, Transport), `false` rejects it
/// as `misrouted`.
pub fn build_with_options(records: &[(i32, Vec<u8>)], partitions: i32, retention: &Retention, reroute: bool) -> Reference {
    build_with_linking(records, partitions, retention, reroute, &BTreeMap::new())
}

/// [`build_with_options`] with probabilistic links for the tenants of
/// `linking` (tenant → (threshold in points, `probabilistic_max_ip_persons`)):
/// their persons are the final persons of attribution.md.
pub fn build_with_linking(records: &[(i32, Vec<u8>)], partitions: i32, retention: &Retention, reroute: bool, linking: &BTreeMap<String, (u32, usize)>) -> Reference {
    let now = Ts::now();
    let mut rejected = BTreeMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut events: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let (mut accepted, mut duplicates) = (0, 0);
    for (partition, value) in records {
        let ctx = ValidateCtx {
            now,
            partition: (!reroute).then_some(*partition),
            partitions,
        };
        match decode(value, &ctx) {
            Err(r) => *rejected.entry(r.reason.as_str().to_string()).or_insert(0) += 1,
            Ok(ev) => {
                if seen.insert((ev.tenant_id.clone(), ev.event_id.clone())) {
                    accepted += 1;
                    events.entry(ev.tenant_id.clone()).or_default().push(ev);
                } else {
                    duplicates += 1;
                }
            }
        }
    }
    let tenants = events
        .into_iter()
        .map(|(t, evs)| {
            let days = retention.per_tenant.get(&t).copied().unwrap_or(retention.default_days);
            let l = linking.get(&t).copied();
            (t, tenant_data(evs, days, l))
        })
        .collect();
    Reference {
        tenants,
        rejected,
        accepted,
        duplicates,
    }
}

fn tenant_data(events: Vec<Event>, retention_days: u32, linking: Option<(u32, usize)>) -> TenantData {
    fn node(td: &mut TenantData, kind: IdKind, id: &str) -> usize {
        if let Some(n) = td.node_of.get(&(kind, id.to_string())) {
            return *n;
        }
        let n = td.nodes.len();
        td.nodes.push((kind, id.to_string()));
        td.node_of.insert((kind, id.to_string()), n);
        n
    }
    let mut td = TenantData::default();
    campaigns::collect(&mut td, &events);
    // Erasure requests and cost imports carry wall-clock times: they move no horizon.
    let newest = events.iter().filter(|e| !matches!(e.body, Body::Erasure { .. } | Body::CostImport(_) | Body::Registry(_))).map(|e| e.ts).max();
    td.horizon = newest.filter(|_| retention_days > 0).map(|m| m.minus_secs(i64::from(retention_days) * 86_400));
    // Nodes and link edges from consented journey events.
    let mut edges: Vec<(Ts, &str, usize, usize)> = Vec::new();
    for ev in &events {
        if let Body::Journey(j) = &ev.body {
            if !j.analytics_consent {
                continue;
            }
            let c = node(&mut td, IdKind::CustomerId, &j.customer_id);
            if let Some(u) = &j.user_id {
                let u = node(&mut td, IdKind::UserId, u);
                edges.push((ev.ts, ev.event_id.as_str(), c, u));
            }
        }
    }
    edges.sort_by(|a, b| (a.0, a.1.as_bytes()).cmp(&(b.0, b.1.as_bytes())));
    let n = td.nodes.len();
    let mut uf = UnionFind {
        parent: (0..n).collect(),
        size: vec![1; n],
    };
    for (_, _, a, b) in edges {
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb {
            continue;
        }
        if uf.size[ra] + uf.size[rb] > MAX_IDS_PER_PERSON {
            td.blocked_links += 1;
            continue;
        }
        let (big, small) = if uf.size[ra] >= uf.size[rb] { (ra, rb) } else { (rb, ra) };
        uf.parent[small] = big;
        uf.size[big] += uf.size[small];
    }
    td.root = (0..n).map(|x| uf.find(x)).collect();
    if let Some((threshold, max_ip)) = linking {
        link_probabilistically(&mut td, &events, threshold, max_ip);
    }
    for (node, root) in td.root.iter().enumerate() {
        td.members.entry(*root).or_default().push(node);
    }
    // Timelines: consented touchpoints and conversions under their customer_id's person.
    let mut consent: Vec<(Ts, String, String, bool)> = Vec::new();
    for ev in events {
        if let Body::ConsentUpdate { customer_id, analytics } = &ev.body {
            consent.push((ev.ts, ev.event_id.clone(), customer_id.clone(), *analytics));
        }
        let Body::Journey(j) = ev.body else { continue };
        if !j.analytics_consent {
            continue;
        }
        let person = td.root[td.node_of[&(IdKind::CustomerId, j.customer_id.clone())]];
        match (j.kind, j.touch, j.conversion) {
            (JourneyKind::JourneyStart | JourneyKind::TouchpointInteraction, Some(info), _) => {
                let journey = info.dims.journey.clone().unwrap_or_else(|| "-".to_string());
                td.window_touches.push((ev.ts, journey, info.composite_key(), info.interaction_type.clone()));
                let pd = td.persons.entry(person).or_default();
                pd.touches.push(Touch {
                    event_id: ev.event_id,
                    ts: ev.ts,
                    info,
                });
            }
            (JourneyKind::ConversionEvent, _, Some(c)) => {
                let pd = td.persons.entry(person).or_default();
                *td.conv_count_by_currency.entry(c.currency.clone()).or_insert(0) += 1;
                pd.conversions.push(Conv {
                    event_id: ev.event_id,
                    ts: ev.ts,
                    value: c.value,
                    currency: c.currency,
                });
            }
            _ => {}
        }
    }
    // consent_update: from its time on, a withdrawn customer_id's person is out
    // (the latest update at or before an event decides, ties by event_id).
    let mut updates: HashMap<usize, Vec<(Ts, String, bool)>> = HashMap::new();
    for (ts, event_id, cid, analytics) in consent {
        if let Some(n) = td.node_of.get(&(IdKind::CustomerId, cid)) {
            updates.entry(td.root[*n]).or_default().push((ts, event_id, analytics));
        }
    }
    for (person, mut ups) in updates {
        ups.sort_by(|a, b| (a.0, a.1.as_bytes()).cmp(&(b.0, b.1.as_bytes())));
        let allowed = |ts: Ts| ups.iter().rev().find(|u| u.0 <= ts).is_none_or(|u| u.2);
        if let Some(pd) = td.persons.get_mut(&person) {
            let before = pd.touches.len() + pd.conversions.len();
            pd.touches.retain(|t| allowed(t.ts));
            pd.conversions.retain(|c| allowed(c.ts));
            td.consent_excluded += before - pd.touches.len() - pd.conversions.len();
        }
    }
    if let Some(h) = td.horizon {
        for pd in td.persons.values_mut() {
            let before = pd.touches.len() + pd.conversions.len();
            pd.touches.retain(|t| t.ts >= h);
            pd.conversions.retain(|c| c.ts >= h);
            td.retention_excluded += before - pd.touches.len() - pd.conversions.len();
        }
    }
    for pd in td.persons.values_mut() {
        pd.touches
            .sort_by(|a, b| (a.ts, a.event_id.as_bytes()).cmp(&(b.ts, b.event_id.as_bytes())));
        pd.conversions
            .sort_by(|a, b| (a.ts, a.event_id.as_bytes()).cmp(&(b.ts, b.event_id.as_bytes())));
    }
    td
}

/// Joins anonymous deterministic persons to known ones by the probabilistic
/// rule (`probabilistic::links`): every node of a linked person takes the
/// known person's root, so all that follows reads final persons.
fn link_probabilistically(td: &mut TenantData, events: &[Event], threshold: u32, max_ip: usize) {
    let mut roles: BTreeMap<usize, probabilistic::RefRole> = BTreeMap::new();
    for (node, root) in td.root.iter().enumerate() {
        roles.entry(*root).or_default().known |= td.nodes[node].0 == IdKind::UserId;
    }
    let mut signals = Vec::new();
    for ev in events {
        let Body::Journey(j) = &ev.body else { continue };
        let (true, Some(c)) = (j.analytics_consent, &j.context) else { continue };
        let Some(ip) = c.ip_address.clone() else { continue };
        let component = td.root[td.node_of[&(IdKind::CustomerId, j.customer_id.clone())]];
        signals.push(probabilistic::RefSignal { component, ts: ev.ts, ip, user_agent: c.user_agent.clone(), geo: c.geolocation.map(|g| (g.lat, g.lon)) });
    }
    let links = probabilistic::links(&roles, &signals, threshold, max_ip);
    for root in td.root.iter_mut() {
        if let Some((known, _)) = links.get(root) {
            *root = *known;
        }
    }
}

fn bad_request(message: String) -> Value {
    json!({"error": {"code": "bad_request", "message": message}})
}

impl Reference {
    /// Tenants with at least one accepted event, sorted.
    pub fn tenants(&self) -> Vec<String> {
        self.tenants.keys().cloned().collect()
    }

    /// Accepted distinct events (duplicates not included, see [`Reference::duplicate_count`]).
    pub fn accepted_count(&self) -> usize {
        self.accepted
    }

    /// Accepted records that repeated an already accepted (tenant, event_id).
    pub fn duplicate_count(&self) -> usize {
        self.duplicates
    }

    /// Rejected records per reason code.
    pub fn rejected_by_reason(&self) -> BTreeMap<String, usize> {
        self.rejected.clone()
    }

    /// Links skipped by the merge guard in `tenant`.
    /// Touchpoints and conversions excluded by `consent_update` withdrawals, all tenants.
    pub fn consent_excluded(&self) -> usize {
        self.tenants.values().map(|t| t.consent_excluded).sum()
    }

    /// The retention horizon of `tenant` (`None`: nothing expires).
    pub fn horizon(&self, tenant: &str) -> Option<Ts> {
        self.tenants.get(tenant).and_then(|t| t.horizon)
    }

    /// Touchpoints and conversions of `tenant` behind its retention horizon.
    pub fn retention_excluded(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, |t| t.retention_excluded)
    }

    pub fn blocked_links(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, |t| t.blocked_links)
    }

    /// The tenant's currency with the most conversions over all time (ties alphabetical).
    pub fn default_currency(&self, tenant: &str) -> Option<String> {
        let td = self.tenants.get(tenant)?;
        // BTreeMap iterates alphabetically; keep the first of the maximal counts.
        let mut best: Option<(&String, usize)> = None;
        for (c, n) in &td.conv_count_by_currency {
            let better = match best {
                None => true,
                Some((_, b)) => *n > b,
            };
            if better {
                best = Some((c, *n));
            }
        }
        best.map(|(c, _)| c.clone())
    }

    /// Up to `n` identifiers of `tenant`, preferring stitched persons (more than
    /// one identifier), in a deterministic order; user ids included.
    pub fn sample_identifiers(&self, tenant: &str, n: usize) -> Vec<String> {
        let Some(td) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut nodes: Vec<&(IdKind, String)> = td.nodes.iter().collect();
        nodes.sort();
        let stitched = |k: &(IdKind, String)| {
            td.node_of
                .get(k)
                .is_some_and(|i| td.members.get(&td.root[*i]).is_some_and(|m| m.len() > 1))
        };
        let mut out: Vec<String> = Vec::new();
        for pass in [true, false] {
            for k in &nodes {
                if out.len() >= n {
                    return out;
                }
                // A user id equal to some customer id resolves to the customer: skip it.
                let shadowed = k.0 == IdKind::UserId && td.node_of.contains_key(&(IdKind::CustomerId, k.1.clone()));
                if stitched(k) == pass && !shadowed && !out.contains(&k.1) {
                    out.push(k.1.clone());
                }
            }
        }
        out
    }

    /// The person a `customer_id` (tried first) or `user_id` belongs to.
    pub fn person(&self, tenant: &str, id: &str) -> Option<RefPerson> {
        let td = self.tenants.get(tenant)?;
        let n = td
            .node_of
            .get(&(IdKind::CustomerId, id.to_string()))
            .or_else(|| td.node_of.get(&(IdKind::UserId, id.to_string())))?;
        let root = td.root[*n];
        let mut identifiers: Vec<RefIdentifier> = td.members[&root]
            .iter()
            .map(|m| RefIdentifier {
                kind: td.nodes[*m].0,
                id: td.nodes[*m].1.clone(),
            })
            .collect();
        identifiers.sort();
        let (mut touchpoints, mut conversions) = (Vec::new(), Vec::new());
        if let Some(pd) = td.persons.get(&root) {
            touchpoints = pd.touches.iter().map(|t| t.event_id.clone()).collect();
            conversions = pd.conversions.iter().map(|c| c.event_id.clone()).collect();
        }
        touchpoints.sort();
        conversions.sort();
        Some(RefPerson {
            identifiers,
            touchpoints,
            conversions,
        })
    }
}

#[cfg(test)]
mod tests;

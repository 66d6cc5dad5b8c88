//! The tenant actor's per-event decision under the batch lock: identity
//! (links, merges, the merge guard, erased identifiers), the other state
//! writes of an event, and what to route where ([`Dispatch`]).

use crate::domain::identity::{apply_link, ensure_node, IdNode, IdentityStore, Link, LinkOutcome};
use crate::domain::{Body, CampaignKind, Event, JourneyEvent, Ts};
use crate::state::problinks::LinkTracker;
use crate::state::{CampaignRec, ConvRec, TenantState, TouchRec};
use super::ApplyError;

/// What the tenant actor routes for one event.
pub(super) enum Dispatch {
    None,
    /// Erase the link components of these identifiers at this time
    /// (`state::erasure`), then route the rest.
    Erase(Vec<IdNode>, Ts, Box<Dispatch>),
    /// A touchpoint of a person (`None`: of an erased identifier — it feeds
    /// only the anonymous journey counters).
    Touch(Option<u64>, TouchRec, String, String),
    /// A conversion of a person (`None`: of an erased identifier — it counts
    /// only towards the currencies).
    Conversion(Option<u64>, ConvRec),
}

/// The probabilistic-stitching signal of an accepted journey event (its
/// decoded context holds only well-typed signals; a non-empty ip is needed).
fn signal_of(ts: crate::domain::Ts, j: &crate::domain::JourneyEvent) -> Option<crate::state::SignalRec> {
    let c = j.context.as_ref()?;
    let ip = c.ip_address.clone()?;
    Some(crate::state::SignalRec { customer_id: j.customer_id.clone(), ts, ip, user_agent: c.user_agent.clone(), geo: c.geolocation.map(|g| (g.lat, g.lon)) })
}

/// Identity for one event; returns what to route where.
pub(super) fn apply_identity_and_plan(st: &mut TenantState<'_>, ev: &Event, max_ids: usize, links: &mut LinkTracker) -> Result<(Dispatch, LinkOutcome), ApplyError> {
    let mut outcome = LinkOutcome::default();
    match &ev.body {
        Body::Journey(j) if j.analytics_consent => {
            let node = IdNode::customer(j.customer_id.clone());
            let user = j.user_id.as_ref().map(|u| IdNode::user(u.clone()));
            let nodes: Vec<&IdNode> = std::iter::once(&node).chain(user.as_ref()).collect();
            if let Some((_, te)) = st.erased_among(&nodes)? {
                // An erased identifier's events stay out of per-person state,
                // whatever their time; one that links it to another
                // identifier takes that one's component with it, as it would
                // have arriving before the erasure (`state::erasure`).
                let mut others = Vec::new();
                for n in nodes {
                    if st.erased_at(n)?.is_none() {
                        others.push(n.clone());
                    }
                }
                let anonymous = plan_journey(None, ev, j);
                return Ok((if others.is_empty() { anonymous } else { Dispatch::Erase(others, te, Box::new(anonymous)) }, outcome));
            }
            if let Some(u) = &j.user_id {
                // A login can make an anonymous person known without a merge.
                let anonymous = match links.is_on().then(|| IdentityStore::person_of(st, &node)).transpose()?.flatten() {
                    Some(pk) => st.person_rec(pk)?.is_some_and(|r| !r.ids.members.iter().any(|n| n.kind == crate::domain::identity::IdKind::User)).then_some(pk),
                    None => None,
                };
                let link = Link::new(ev.ts, ev.event_id.clone(), node.clone(), IdNode::user(u.clone()));
                outcome = apply_link(st, &link, max_ids)?;
                st.note_blocked(outcome.blocked, outcome.unblocked);
                if let Some(pk) = anonymous {
                    links.person(pk);
                    links.person(IdentityStore::person_of(st, &node)?.unwrap_or(pk));
                }
            } else {
                ensure_node(st, &node, &mut outcome.created)?;
            }
            if let Some(rec) = signal_of(ev.ts, j) {
                st.put_signal(&j.customer_id, &ev.event_id, &rec)?;
                links.signal(st, &ev.event_id, &rec)?;
            }
            let person = IdentityStore::person_of(st, &node)?.unwrap_or_default();
            Ok((plan_journey(Some(person), ev, j), outcome))
        }
        Body::Campaign(c) => {
            let mut rec = st.campaign(&c.campaign_id)?.unwrap_or_else(|| CampaignRec { campaign_id: c.campaign_id.clone(), ..Default::default() });
            if c.campaign_name.is_some() {
                rec.name = c.campaign_name.clone();
            }
            if c.channel.is_some() {
                rec.channel = c.channel.clone();
            }
            let status = match c.kind {
                CampaignKind::Launch => "launched",
                CampaignKind::Optimization => "optimized",
                CampaignKind::Termination => "terminated",
            };
            let at = (ev.ts, ev.event_id.clone(), status.to_string());
            if rec.status_at.as_ref().is_none_or(|cur| (&cur.0, &cur.1) < (&at.0, &at.1)) {
                rec.status_at = Some(at);
            }
            rec.impressions += c.metrics.impressions;
            rec.clicks += c.metrics.clicks;
            rec.conversions += c.metrics.conversions;
            rec.cost += c.metrics.cost;
            rec.revenue += c.metrics.revenue;
            st.put_campaign(&rec)?;
            Ok((Dispatch::None, outcome))
        }
        Body::CostImport(row) => {
            let new = crate::domain::costs::CostDay { imported_at: ev.ts, event_id: ev.event_id.clone(), row: row.clone() };
            let current = st.cost_day(&row.campaign_id, &row.date)?;
            if current.as_ref().is_none_or(|cur| new.supersedes(cur)) {
                st.put_cost_day(&new)?;
            }
            Ok((Dispatch::None, outcome))
        }
        Body::Registry(cmd) => {
            crate::state::registry::apply(st.txn, st.partition, st.tenant, &ev.event_id, ev.ts, cmd)?;
            Ok((Dispatch::None, outcome))
        }
        Body::ConsentUpdate { customer_id, analytics } => {
            if !st.is_erased(&[&IdNode::customer(customer_id.clone())])? {
                st.put_consent(customer_id, ev.ts, &ev.event_id, *analytics)?;
            }
            Ok((Dispatch::None, outcome))
        }
        Body::Personalization(pe) => {
            for v in &pe.variants {
                st.add_variant(v)?;
            }
            if let Some(cid) = &pe.customer_id {
                if !pe.segments.is_empty() && !st.is_erased(&[&IdNode::customer(cid.clone())])? {
                    st.add_segments(cid, &pe.segments);
                }
            }
            Ok((Dispatch::None, outcome))
        }
        Body::Erasure { customer_id } => {
            // Both namespaces: a lookup tries customer_id first, but which of
            // the two exists can depend on events still to come.
            let roots = vec![IdNode::customer(customer_id.clone()), IdNode::user(customer_id.clone())];
            Ok((Dispatch::Erase(roots, ev.ts, Box::new(Dispatch::None)), outcome))
        }
        Body::Journey(_) => Ok((Dispatch::None, outcome)),
    }
}

fn plan_journey(person: Option<u64>, ev: &Event, j: &JourneyEvent) -> Dispatch {
    if let Some(t) = &j.touch {
        let rec = TouchRec { event_id: ev.event_id.clone(), ts: ev.ts, customer_id: j.customer_id.clone(), touch: t.clone() };
        let journey = t.dims.journey.clone().unwrap_or_else(|| "-".to_string());
        let composite = t.composite_key();
        return Dispatch::Touch(person, rec, journey, composite);
    }
    if let Some(c) = &j.conversion {
        return Dispatch::Conversion(person, ConvRec { event_id: ev.event_id.clone(), ts: ev.ts, customer_id: j.customer_id.clone(), conversion: c.clone(), late: false });
    }
    Dispatch::None
}

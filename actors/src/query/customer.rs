//! `GET /v1/tenants/{t}/customers/{id}`: the stitched person behind any linked
//! `customer_id` or `user_id` (customer_id tried first), its identifiers, timeline,
//! and every conversion with its per-touch credit under each rule model.

use super::consent::ConsentCache;
use super::linking::FinalPersons;
use super::paths::lookback_touches_of;
use super::QueryError;
use crate::domain::identity::IdKind;
use crate::domain::models::{weights, Model, ModelParams, PathTouch};
use crate::domain::retention::retained;
use crate::domain::GroupBy;
use crate::state::{key, ConvRec, PersonRec, TouchRec};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use touchline_storage::{codec, Store};

pub struct CustomerQuery {
    pub lookback_days: i64,
    pub params: ModelParams,
    pub group_by: GroupBy,
    /// Retention horizon: older touchpoints and conversions are not shown.
    pub horizon: Option<crate::domain::Ts>,
}

/// Resolves `id` to a person key: customer_id first, then user_id.
pub fn resolve(store: &Store, p: u16, tenant: &str, id: &str) -> Result<Option<u64>, QueryError> {
    for kind in [IdKind::Customer, IdKind::User] {
        if let Some(b) = store.get(&key::node_lookup(p, tenant, kind, id))? {
            if let Ok(arr) = <[u8; 8]>::try_from(b.as_slice()) {
                return Ok(Some(u64::from_be_bytes(arr)));
            }
        }
    }
    Ok(None)
}

/// The answer: the stitched person, its identifiers, timeline and conversions.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomerAnswer {
    pub tenant: String,
    /// The person's public id (a known member's id under probabilistic links).
    pub person_id: String,
    pub identifiers: Vec<Identifier>,
    pub segments: Vec<String>,
    pub touchpoints: Vec<Touchpoint>,
    pub conversions: Vec<Conversion>,
}

/// One identifier of the person and how it was linked.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Identifier {
    pub id: String,
    /// `customer_id`, `user_id`, `anonymous_id`, ...
    pub kind: &'static str,
    #[schema(value_type = String, pattern = "^(deterministic|probabilistic)$")]
    pub method: &'static str,
    /// 1 for deterministic links.
    pub confidence: f64,
}

/// One retained, consented touchpoint of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Touchpoint {
    pub event_id: String,
    /// RFC 3339.
    pub timestamp: String,
    pub customer_id: String,
    pub channel: &'static str,
    pub interaction_type: String,
    pub campaign: Option<String>,
    pub journey: Option<String>,
    pub sequence: Option<String>,
    pub content: Option<String>,
    pub variant: Option<String>,
    pub source_medium: Option<String>,
    /// The composite key `{journey}/SEQ-n/{content}/{variant}`.
    pub key: String,
}

/// One conversion with its per-touch credit under each rule model.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Conversion {
    pub event_id: String,
    pub timestamp: String,
    pub customer_id: String,
    pub value: f64,
    pub currency: String,
    pub conversion_type: Option<String>,
    /// Model name → the touches that earned credit (data-driven models are absent).
    pub credit: BTreeMap<&'static str, Vec<TouchCredit>>,
}

/// A touch's weight in one conversion (`event_id` null: no touch, `(direct)`).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TouchCredit {
    pub event_id: Option<String>,
    pub key: String,
    pub weight: f64,
}

fn touchpoint(t: &TouchRec) -> Touchpoint {
    let d = &t.touch.dims;
    Touchpoint {
        event_id: t.event_id.clone(),
        timestamp: t.ts.to_string(),
        customer_id: t.customer_id.clone(),
        channel: t.touch.channel.as_str(),
        interaction_type: t.touch.interaction_type.clone(),
        campaign: d.campaign.clone(),
        journey: d.journey.clone(),
        sequence: d.sequence.clone(),
        content: d.content.clone(),
        variant: d.variant.clone(),
        source_medium: d.source_medium.clone(),
        key: t.touch.composite_key(),
    }
}

pub fn customer(store: &Store, p: u16, tenant: &str, id: &str, q: &CustomerQuery) -> Result<CustomerAnswer, QueryError> {
    customer_in(store, p, tenant, id, q, None)
}

/// [`customer`] as the final person of `view` (attribution.md, Probabilistic
/// links 7): the identifiers of a linked member are `probabilistic` with its
/// link's confidence, and the person id is the known member's.
pub fn customer_in(store: &Store, p: u16, tenant: &str, id: &str, q: &CustomerQuery, view: Option<&FinalPersons>) -> Result<CustomerAnswer, QueryError> {
    let found = resolve(store, p, tenant, id)?.ok_or_else(|| QueryError::NotFound(format!("customer {id}")))?;
    let person = view.map_or(found, |v| v.group_of(found));
    let members = super::linking::members(view, person);
    let mut recs: Vec<(u64, PersonRec)> = Vec::with_capacity(members.len());
    for m in &members {
        let pk = key::person(p, tenant, *m);
        match store.get(&pk)? {
            Some(b) => recs.push((*m, codec::decode(&pk, &b)?)),
            None if *m == found => return Err(QueryError::NotFound(format!("customer {id}"))),
            None => {}
        }
    }
    let Some(rec) = recs.iter().find(|(m, _)| *m == person).map(|(_, r)| r.clone()) else {
        return Err(QueryError::NotFound(format!("customer {id}")));
    };
    let identifiers: Vec<Identifier> = recs
        .iter()
        .flat_map(|(m, r)| {
            let (method, confidence) = match view.and_then(|v| v.links.get(m)) {
                Some(l) => ("probabilistic", l.confidence()),
                None => ("deterministic", 1.0),
            };
            r.ids.members.iter().map(move |n| Identifier { id: n.id.clone(), kind: n.kind.as_str(), method, confidence })
        })
        .collect();
    let meta = super::tenant_meta(store, p, tenant)?.unwrap_or_default();
    let mut consent = ConsentCache::new(store, p, tenant, &meta).with_view(view);
    let mut touches: Vec<TouchRec> = Vec::new();
    let mut convs: Vec<ConvRec> = Vec::new();
    for m in &members {
        touches.extend(store.prefix_as::<TouchRec>(&key::touch_prefix(p, tenant, *m))?);
        convs.extend(store.prefix_as::<ConvRec>(&key::conv_prefix(p, tenant, *m))?);
    }
    touches.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
    convs.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
    touches.retain(|t| retained(t.ts, q.horizon));
    convs.retain(|c| retained(c.ts, q.horizon));
    consent.retain(person, &mut touches, |t| t.ts)?;
    consent.retain(person, &mut convs, |c| c.ts)?;
    let lookback = q.lookback_days.saturating_mul(86_400);
    let mut conversions = Vec::with_capacity(convs.len());
    for c in &convs {
        let mut path_recs = lookback_touches_of(store, p, tenant, &members, c.ts, lookback, q.horizon)?;
        consent.retain(person, &mut path_recs, |t| t.ts)?;
        let path: Vec<PathTouch> = path_recs
            .iter()
            .map(|t| PathTouch { ts: t.ts, channel: t.touch.channel, key: t.touch.key(q.group_by), event_id: &t.event_id })
            .collect();
        let mut credit = BTreeMap::new();
        for model in Model::ALL {
            if model.is_data_driven() || (model == Model::Custom && q.params.custom_weights.is_none()) {
                continue;
            }
            let touch = |event_id: Option<&str>, key: &str, weight: f64| TouchCredit { event_id: event_id.map(str::to_string), key: key.to_string(), weight };
            let rows: Vec<TouchCredit> = if path.is_empty() {
                vec![touch(None, crate::domain::DIRECT_KEY, 1.0)]
            } else if model == Model::Participation {
                let mut seen = BTreeSet::new();
                path.iter()
                    .filter(|t| seen.insert(t.key))
                    .map(|t| touch(Some(t.event_id), t.key, 1.0))
                    .collect()
            } else {
                weights(model, &path, c.ts, &q.params)
                    .iter()
                    .zip(&path)
                    .filter(|(w, _)| **w != 0.0)
                    .map(|(w, t)| touch(Some(t.event_id), t.key, *w))
                    .collect()
            };
            credit.insert(model.as_str(), rows);
        }
        conversions.push(Conversion {
            event_id: c.event_id.clone(),
            timestamp: c.ts.to_string(),
            customer_id: c.customer_id.clone(),
            value: c.conversion.value,
            currency: c.conversion.currency.clone(),
            conversion_type: c.conversion.conversion_type.clone(),
            credit,
        });
    }
    let mut segments: BTreeSet<String> = recs.iter().flat_map(|(_, r)| r.segments.iter().cloned()).collect();
    for n in recs.iter().flat_map(|(_, r)| r.ids.members.iter()).filter(|n| n.kind == IdKind::Customer) {
        let prefix = key::segment_prefix(p, tenant, &n.id);
        store.scan_prefix(&prefix, |k, _| {
            segments.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            true
        })?;
    }
    Ok(CustomerAnswer {
        tenant: tenant.to_string(),
        person_id: rec.ids.public_id(),
        identifiers,
        segments: segments.into_iter().collect(),
        touchpoints: touches.iter().map(touchpoint).collect(),
        conversions,
    })
}

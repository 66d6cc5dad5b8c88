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
use serde_json::{json, Value};
use std::collections::BTreeSet;
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

fn touch_json(t: &TouchRec) -> Value {
    let d = &t.touch.dims;
    json!({
        "event_id": t.event_id,
        "timestamp": t.ts.to_string(),
        "customer_id": t.customer_id,
        "channel": t.touch.channel.as_str(),
        "interaction_type": t.touch.interaction_type,
        "campaign": d.campaign, "journey": d.journey, "sequence": d.sequence,
        "content": d.content, "variant": d.variant, "source_medium": d.source_medium,
        "key": t.touch.composite_key(),
    })
}

pub fn customer(store: &Store, p: u16, tenant: &str, id: &str, q: &CustomerQuery) -> Result<Value, QueryError> {
    customer_in(store, p, tenant, id, q, None)
}

/// [`customer`] as the final person of `view` (attribution.md, Probabilistic
/// links 7): the identifiers of a linked member are `probabilistic` with its
/// link's confidence, and the person id is the known member's.
pub fn customer_in(store: &Store, p: u16, tenant: &str, id: &str, q: &CustomerQuery, view: Option<&FinalPersons>) -> Result<Value, QueryError> {
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
    let identifiers: Vec<Value> = recs
        .iter()
        .flat_map(|(m, r)| {
            let (method, confidence) = match view.and_then(|v| v.links.get(m)) {
                Some(l) => ("probabilistic", l.confidence()),
                None => ("deterministic", 1.0),
            };
            r.ids.members.iter().map(move |n| json!({"id": n.id, "kind": n.kind.as_str(), "method": method, "confidence": confidence}))
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
        let mut credit = serde_json::Map::new();
        for model in Model::ALL {
            if model.is_data_driven() || (model == Model::Custom && q.params.custom_weights.is_none()) {
                continue;
            }
            let rows: Vec<Value> = if path.is_empty() {
                vec![json!({"event_id": null, "key": crate::domain::DIRECT_KEY, "weight": 1.0})]
            } else if model == Model::Participation {
                let mut seen = BTreeSet::new();
                path.iter()
                    .filter(|t| seen.insert(t.key))
                    .map(|t| json!({"event_id": t.event_id, "key": t.key, "weight": 1.0}))
                    .collect()
            } else {
                weights(model, &path, c.ts, &q.params)
                    .iter()
                    .zip(&path)
                    .filter(|(w, _)| **w != 0.0)
                    .map(|(w, t)| json!({"event_id": t.event_id, "key": t.key, "weight": w}))
                    .collect()
            };
            credit.insert(model.as_str().to_string(), Value::Array(rows));
        }
        conversions.push(json!({
            "event_id": c.event_id,
            "timestamp": c.ts.to_string(),
            "customer_id": c.customer_id,
            "value": c.conversion.value,
            "currency": c.conversion.currency,
            "conversion_type": c.conversion.conversion_type,
            "credit": credit,
        }));
    }
    let mut segments: BTreeSet<String> = recs.iter().flat_map(|(_, r)| r.segments.iter().cloned()).collect();
    for n in recs.iter().flat_map(|(_, r)| r.ids.members.iter()).filter(|n| n.kind == IdKind::Customer) {
        let prefix = key::segment_prefix(p, tenant, &n.id);
        store.scan_prefix(&prefix, |k, _| {
            segments.insert(String::from_utf8_lossy(&k[prefix.len()..]).into_owned());
            true
        })?;
    }
    Ok(json!({
        "tenant": tenant,
        "person_id": rec.ids.public_id(),
        "identifiers": identifiers,
        "segments": segments,
        "touchpoints": touches.iter().map(touch_json).collect::<Vec<_>>(),
        "conversions": conversions,
    }))
}

//! Reports enriched from the registry (issue 20, item 6): a row whose key is
//! a registry id gets `"label"` (the id's `title`) next to its key and
//! `"registry": {type, status, brand}`; other rows and the rest of the
//! answer stay exactly as they were. Attribution and compare rows are keyed
//! by `key`, campaign rows by `campaign_id`, journey-performance buckets by
//! their composite key, whose content part is looked up (and the journey id
//! itself, as `journey_label`).

use super::error::ApiError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use touchline_actors::state::registry::{RegistryEntry, RegistryView};
use touchline_storage::Store;

/// The content part of a composite key `{journey}/SEQ-{n}/{content}/{variant}`.
fn content_of(composite: &str) -> Option<&str> {
    composite.split('/').nth(2).filter(|c| *c != "-")
}

/// The rows of a report answer with the key each is looked up by.
fn rows_mut(body: &mut Value) -> Vec<(&mut serde_json::Map<String, Value>, &'static str)> {
    let mut out = Vec::new();
    let Value::Object(top) = body else { return out };
    for (field, v) in top.iter_mut() {
        let rows: Vec<&mut Value> = match (field.as_str(), v) {
            ("rows" | "campaigns" | "buckets", Value::Array(rows)) => rows.iter_mut().collect(),
            ("models", Value::Object(models)) => models.values_mut().filter_map(Value::as_array_mut).flat_map(|r| r.iter_mut()).collect(),
            _ => continue,
        };
        let key = if field == "campaigns" { "campaign_id" } else { "key" };
        out.extend(rows.into_iter().filter_map(Value::as_object_mut).map(|r| (r, key)));
    }
    out
}

fn lookup_key(row: &serde_json::Map<String, Value>, key: &str, journey: bool) -> Option<String> {
    let k = row.get(key)?.as_str()?;
    if journey {
        content_of(k).map(str::to_owned)
    } else {
        Some(k.to_owned())
    }
}

fn annotate(row: &mut serde_json::Map<String, Value>, e: &RegistryEntry) {
    if let Some(t) = e.title() {
        row.insert("label".into(), json!(t));
    }
    row.insert("registry".into(), json!({"id": e.id, "type": e.kind.as_str(), "status": e.status.as_str(), "brand": e.brand}));
}

/// Adds the registry's labels to the report `body` of `tenant`.
pub fn enrich(store: &Store, partition: u16, tenant: &str, body: &mut Value) -> Result<(), ApiError> {
    let view = RegistryView::new(store, partition, tenant);
    let journey = body.get("buckets").is_some();
    let mut keys: Vec<String> = rows_mut(body).into_iter().filter_map(|(r, k)| lookup_key(r, k, journey)).collect();
    let journey_id = body.get("journey").and_then(Value::as_str).map(str::to_owned);
    keys.extend(journey_id.clone());
    let found: BTreeMap<String, RegistryEntry> = view.resolve(keys.iter().map(String::as_str))?;
    if found.is_empty() {
        return Ok(());
    }
    for (row, k) in rows_mut(body) {
        if let Some(e) = lookup_key(row, k, journey).and_then(|id| found.get(&id)) {
            annotate(row, e);
        }
    }
    if let (Some(j), Some(obj)) = (journey_id.and_then(|j| found.get(&j)), body.as_object_mut()) {
        if let Some(t) = j.title() {
            obj.insert("journey_label".into(), json!(t));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_give_their_content() {
        assert_eq!(content_of("CJ-EYL-2024-001/SEQ-2/CNT-2024-0030/A"), Some("CNT-2024-0030"));
        assert_eq!(content_of("-/SEQ-?/-/-"), None);
        assert_eq!(content_of("email"), None);
    }
}

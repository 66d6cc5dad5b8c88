//! Reports enriched from the registry (issue 20, item 6): a row whose key is
//! a registry id gets `label` (the id's `title`) and `registry` (`{id, type,
//! status, brand}`); other rows and the rest of the answer stay exactly as
//! they were (both fields are omitted when absent). Attribution and compare
//! rows are keyed by `key`, campaign rows by `campaign_id`, journey-performance
//! buckets by their composite key, whose content part is looked up (and the
//! journey id itself, as `journey_label`).

use super::error::ApiError;
use super::reports::ReportRow;
use std::collections::BTreeMap;
use touchline_actors::query::campaigns::Campaign;
use touchline_actors::query::journey::{JourneyAnswer, JourneyBucket};
use touchline_actors::state::registry::{RegistryEntry, RegistryLabels, RegistryRef, RegistryView};
use touchline_storage::Store;

/// The content part of a composite key `{journey}/SEQ-{n}/{content}/{variant}`.
fn content_of(composite: &str) -> Option<&str> {
    composite.split('/').nth(2).filter(|c| *c != "-")
}

/// A report row a registry id can label.
pub trait Labeled {
    /// The registry id the row may be keyed by.
    fn lookup(&self) -> Option<&str>;
    fn labels(&mut self) -> &mut RegistryLabels;
}

macro_rules! labeled {
    ($ty:ty, |$r:ident| $key:expr) => {
        impl Labeled for $ty {
            fn lookup(&self) -> Option<&str> {
                let $r = self;
                $key
            }
            fn labels(&mut self) -> &mut RegistryLabels {
                &mut self.labels
            }
        }
    };
}

labeled!(ReportRow, |r| Some(r.key.as_str()));
labeled!(Campaign, |r| Some(r.campaign_id.as_str()));
labeled!(JourneyBucket, |r| content_of(&r.key));

/// Labels `rows` of `tenant` from its registry; also resolves `extra` (the
/// journey id), whose entry is returned.
pub fn label<'a, R: Labeled + 'a>(store: &Store, partition: u16, tenant: &str, rows: impl IntoIterator<Item = &'a mut R>, extra: Option<&str>) -> Result<Option<RegistryEntry>, ApiError> {
    let mut rows: Vec<&mut R> = rows.into_iter().collect();
    let keys: Vec<String> = rows.iter().filter_map(|r| r.lookup()).chain(extra).map(str::to_owned).collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let found: BTreeMap<String, RegistryEntry> = RegistryView::new(store, partition, tenant).resolve(keys.iter().map(String::as_str))?;
    for row in rows.iter_mut() {
        if let Some(e) = row.lookup().and_then(|k| found.get(k)) {
            *row.labels() = RegistryLabels { label: e.title(), registry: Some(RegistryRef::from(e)) };
        }
    }
    Ok(extra.and_then(|k| found.get(k)).cloned())
}

/// A journey-performance answer labeled: its buckets and `journey_label`.
pub fn journey(store: &Store, partition: u16, tenant: &str, answer: &mut JourneyAnswer) -> Result<(), ApiError> {
    let journey = answer.journey.clone();
    let entry = label(store, partition, tenant, answer.buckets.iter_mut(), Some(&journey))?;
    answer.journey_label = entry.and_then(|e| e.title());
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

//! The tenant's ID registry in RocksDB (`Space::Registry`): its records and
//! keys, the apply of a `registry_command` inside the partition's transaction
//! (so every registry write goes through the changelog, snapshots and
//! standbys like any state), and the reads the HTTP handlers make of
//! committed state.
//!
//! The owner applies commands in partition order: a mint takes the next
//! number of its (type, brand, year) counter at apply time, so numbers are
//! unique and gap-free with no coordination between nodes; a mint already
//! recorded under its request key (`<event_id>#<i>`) is a no-op, so a command
//! re-sent with the same `event_id` (a retried `Idempotency-Key`) changes
//! nothing even after its dedup marker expired.

use crate::domain::governance::registry::{merge_patch, request_key, IdPattern, MintSpec, RegistryCommand, Status, UrlRecord};
use crate::domain::governance::{IdType, Taxonomy};
use crate::domain::Ts;
use serde::{Deserialize, Serialize};
use touchline_storage::keys::{prefix_end, KeyBuf, Space};
use touchline_storage::{codec, StorageError, Store, Txn};

/// One id of the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    pub id: String,
    pub kind: IdType,
    pub brand: Option<String>,
    pub year: u16,
    pub sequence: u64,
    pub status: Status,
    /// The attributes (a JSON object, `status` aside) as JSON text.
    pub attributes: String,
    pub created_at: Ts,
    pub updated_at: Ts,
}

/// What a report row keyed by a registry id carries about it (`registry`).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RegistryRef {
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(campaign|content|journey|variant)$")]
    pub kind: &'static str,
    #[schema(value_type = String, pattern = "^(draft|approved|live|retired)$")]
    pub status: &'static str,
    pub brand: Option<String>,
}

/// The registry's labels of a report row (issue 20, item 6), flattened into
/// the row: both absent unless the row's key is a registry id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RegistryLabels {
    /// The registry id's `title`, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub label: Option<String>,
    /// The registry id the row's key is (or names, for a journey bucket's content).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = RegistryRef, required = false)]
    pub registry: Option<RegistryRef>,
}

impl From<&RegistryEntry> for RegistryRef {
    fn from(e: &RegistryEntry) -> RegistryRef {
        RegistryRef { id: e.id.clone(), kind: e.kind.as_str(), status: e.status.as_str(), brand: e.brand.clone() }
    }
}

impl RegistryEntry {
    pub fn attributes(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(&self.attributes).unwrap_or_default()
    }
    /// The `title` attribute, if it is a string.
    pub fn title(&self) -> Option<String> {
        self.attributes().get("title").and_then(|t| t.as_str()).map(str::to_owned)
    }
}

/// Counts of the tenant's registry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryMeta {
    pub ids: u64,
    pub urls: u64,
    /// The current taxonomy version (0: none yet).
    pub taxonomy_version: u32,
}

/// The outcome of one mint request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRec {
    pub id: String,
    pub request_hash: String,
}

/// One taxonomy version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxonomyRec {
    pub version: u32,
    /// The template as JSON text (its serde form skips empty rules, which a
    /// positional encoding cannot).
    pub template: String,
    /// The command that stored it.
    pub event_id: String,
    pub created_at: Ts,
}

impl TaxonomyRec {
    pub fn template(&self) -> Option<Taxonomy> {
        serde_json::from_str(&self.template).ok()
    }
}

/// A built URL kept for the export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredUrl {
    pub record: UrlRecord,
    pub created_at: Ts,
}

const ENTRY: u8 = b'i';
const COUNTER: u8 = b'c';
const REQUEST: u8 = b'r';
const TAXONOMY: u8 = b't';
const META: u8 = b'm';
const URL: u8 = b'u';

/// Key builders of `Space::Registry`.
pub mod key {
    use super::*;

    fn t(p: u16, tenant: &str, tag: u8) -> KeyBuf {
        KeyBuf::space(p, Space::Registry).tenant(tenant).u8(tag)
    }
    pub fn entry(p: u16, tenant: &str, id: &str) -> Vec<u8> {
        t(p, tenant, ENTRY).bytes(id.as_bytes()).into_vec()
    }
    pub fn entry_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, tenant, ENTRY).into_vec()
    }
    pub fn counter(p: u16, tenant: &str, kind: IdType, brand: Option<&str>, year: Option<u16>) -> Vec<u8> {
        t(p, tenant, COUNTER).u8(kind as u8).str0(brand.unwrap_or("")).u64(u64::from(year.unwrap_or(0))).into_vec()
    }
    pub fn request(p: u16, tenant: &str, request_key: &str) -> Vec<u8> {
        t(p, tenant, REQUEST).bytes(request_key.as_bytes()).into_vec()
    }
    pub fn taxonomy(p: u16, tenant: &str, version: u32) -> Vec<u8> {
        t(p, tenant, TAXONOMY).u64(u64::from(version)).into_vec()
    }
    pub fn meta(p: u16, tenant: &str) -> Vec<u8> {
        t(p, tenant, META).into_vec()
    }
    pub fn url(p: u16, tenant: &str, url: &str) -> Vec<u8> {
        t(p, tenant, URL).bytes(url.as_bytes()).into_vec()
    }
    pub fn url_prefix(p: u16, tenant: &str) -> Vec<u8> {
        t(p, tenant, URL).into_vec()
    }
}

/// Applies `cmd` (the command of event `event_id` at `ts`) in `txn`.
/// Refusals decided here (a full registry, a taxonomy version that lost a
/// race) write nothing; the handler that sent the command reads that back.
pub fn apply(txn: &mut Txn, p: u16, tenant: &str, event_id: &str, ts: Ts, cmd: &RegistryCommand) -> Result<(), StorageError> {
    let mut meta: RegistryMeta = txn.get_as(&key::meta(p, tenant))?.unwrap_or_default();
    let before = meta.clone();
    match cmd {
        RegistryCommand::Mint { mints, max_ids } => {
            for (i, m) in mints.iter().enumerate() {
                let rk = key::request(p, tenant, &request_key(event_id, i));
                if txn.contains(&rk)? || meta.ids >= *max_ids {
                    continue;
                }
                let Some(entry) = mint(txn, p, tenant, m, ts)? else { continue };
                txn.put_as(rk, &RequestRec { id: entry.id.clone(), request_hash: m.request_hash.clone() })?;
                txn.put_as(key::entry(p, tenant, &entry.id), &entry)?;
                meta.ids += 1;
            }
        }
        RegistryCommand::Update { id, status, set, remove } => {
            let k = key::entry(p, tenant, id);
            if let Some(mut e) = txn.get_as::<RegistryEntry>(&k)? {
                if let Ok(merged) = merge_patch(&e.attributes(), set, remove) {
                    e.attributes = serde_json::Value::Object(merged).to_string();
                    e.status = status.unwrap_or(e.status);
                    e.updated_at = ts;
                    txn.put_as(k, &e)?;
                }
            }
        }
        RegistryCommand::Taxonomy { template, max_versions } => {
            let fits = crate::domain::governance::check_version(Some(meta.taxonomy_version).filter(|v| *v > 0), template.version).is_ok()
                && template.version <= *max_versions
                && template.compile().is_ok();
            if fits {
                let text = serde_json::to_string(template).map_err(|e| StorageError::Encode(e.to_string()))?;
                let rec = TaxonomyRec { version: template.version, template: text, event_id: event_id.to_owned(), created_at: ts };
                txn.put_as(key::taxonomy(p, tenant, template.version), &rec)?;
                meta.taxonomy_version = template.version;
            }
        }
        RegistryCommand::StoreUrls { urls, max_urls } => {
            for u in urls {
                let k = key::url(p, tenant, &u.url);
                let known = txn.contains(&k)?;
                if known || meta.urls < *max_urls {
                    txn.put_as(k, &StoredUrl { record: u.clone(), created_at: ts })?;
                    meta.urls += u64::from(!known);
                }
            }
        }
    }
    if meta != before {
        txn.put_as(key::meta(p, tenant), &meta)?;
    }
    Ok(())
}

/// The next id of `m`'s counter (skipping ids already taken, which only a
/// changed pattern can cause), or `None` for a spec whose pattern does not parse.
fn mint(txn: &mut Txn, p: u16, tenant: &str, m: &MintSpec, ts: Ts) -> Result<Option<RegistryEntry>, StorageError> {
    let Ok(pattern) = IdPattern::parse(&m.pattern) else { return Ok(None) };
    let (brand, year) = pattern.scope(m.brand.as_deref(), m.year);
    let ck = key::counter(p, tenant, m.kind, brand, year);
    let mut n: u64 = txn.get_as(&ck)?.unwrap_or(0);
    let id = loop {
        n += 1;
        let id = pattern.format(m.brand.as_deref(), m.year, n);
        if !txn.contains(&key::entry(p, tenant, &id))? {
            break id;
        }
    };
    txn.put_as(ck, &n)?;
    let attributes = serde_json::Value::Object(m.attributes.clone()).to_string();
    Ok(Some(RegistryEntry { id, kind: m.kind, brand: m.brand.clone(), year: m.year, sequence: n, status: m.status, attributes, created_at: ts, updated_at: ts }))
}

/// Reads of the committed registry of one tenant.
pub struct RegistryView<'s> {
    pub store: &'s Store,
    pub partition: u16,
    pub tenant: &'s str,
}

impl<'s> RegistryView<'s> {
    pub fn new(store: &'s Store, partition: u16, tenant: &'s str) -> RegistryView<'s> {
        RegistryView { store, partition, tenant }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, k: Vec<u8>) -> Result<Option<T>, StorageError> {
        match self.store.get(&k)? {
            Some(b) => Ok(Some(codec::decode(&k, &b)?)),
            None => Ok(None),
        }
    }

    pub fn meta(&self) -> Result<RegistryMeta, StorageError> {
        Ok(self.get(key::meta(self.partition, self.tenant))?.unwrap_or_default())
    }

    pub fn entry(&self, id: &str) -> Result<Option<RegistryEntry>, StorageError> {
        self.get(key::entry(self.partition, self.tenant, id))
    }

    pub fn request(&self, request_key: &str) -> Result<Option<RequestRec>, StorageError> {
        self.get(key::request(self.partition, self.tenant, request_key))
    }

    pub fn taxonomy(&self, version: u32) -> Result<Option<TaxonomyRec>, StorageError> {
        self.get(key::taxonomy(self.partition, self.tenant, version))
    }

    /// The current taxonomy version, if any.
    pub fn current_taxonomy(&self) -> Result<Option<TaxonomyRec>, StorageError> {
        match self.meta()?.taxonomy_version {
            0 => Ok(None),
            v => self.taxonomy(v),
        }
    }

    /// Whether event `event_id` of the tenant has been applied (its dedup marker).
    pub fn applied(&self, event_id: &str) -> Result<bool, StorageError> {
        Ok(self.store.get(&super::key::dedup(self.partition, self.tenant, event_id))?.is_some())
    }

    /// Entries after `after` in id order passing `keep`, at most `limit`, and
    /// whether more follow.
    pub fn entries(&self, after: Option<&str>, limit: usize, mut keep: impl FnMut(&RegistryEntry) -> bool) -> Result<(Vec<RegistryEntry>, bool), StorageError> {
        let prefix = key::entry_prefix(self.partition, self.tenant);
        let start = match after {
            Some(a) => {
                let mut k = key::entry(self.partition, self.tenant, a);
                k.push(0); // strictly after
                k
            }
            None => prefix.clone(),
        };
        let (mut out, mut more) = (Vec::new(), false);
        let mut err = None;
        self.store.scan(&start, &prefix_end(&prefix), |k, v| match codec::decode::<RegistryEntry>(k, v) {
            Ok(e) if keep(&e) => {
                if out.len() == limit {
                    more = true;
                    return false;
                }
                out.push(e);
                true
            }
            Ok(_) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        })?;
        err.map_or(Ok((out, more)), Err)
    }

    /// Every stored URL passing `keep`, in URL order.
    pub fn urls(&self, mut keep: impl FnMut(&StoredUrl) -> bool) -> Result<Vec<StoredUrl>, StorageError> {
        let mut all: Vec<StoredUrl> = self.store.prefix_as(&key::url_prefix(self.partition, self.tenant))?;
        all.retain(|u| keep(u));
        Ok(all)
    }

    /// The entries of those of `keys` that are registry ids (nothing read
    /// beyond one key when the tenant has no id).
    pub fn resolve<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Result<std::collections::BTreeMap<String, RegistryEntry>, StorageError> {
        let mut out = std::collections::BTreeMap::new();
        if self.meta()?.ids == 0 {
            return Ok(out);
        }
        for k in keys {
            if !out.contains_key(k) {
                if let Some(e) = self.entry(k)? {
                    out.insert(k.to_owned(), e);
                }
            }
        }
        Ok(out)
    }

    /// Whether `url` is stored.
    pub fn has_url(&self, url: &str) -> Result<bool, StorageError> {
        Ok(self.store.get(&key::url(self.partition, self.tenant, url))?.is_some())
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;

//! Unit tests of the registry's apply: gap-free counters per scope, request
//! keys making a repeat a no-op, the id bound, patches, taxonomy versions and
//! the URL bound, read back from committed state.

use super::*;
use crate::domain::governance::registry::{default_pattern, MintSpec};
use proptest::prelude::*;
use serde_json::json;

fn spec(kind: IdType, brand: Option<&str>, year: u16) -> MintSpec {
    MintSpec { kind, brand: brand.map(str::to_owned), year, pattern: default_pattern(kind).into(), status: Status::Draft, attributes: Default::default(), request_hash: "h".into() }
}

fn run(store: &Store, event_id: &str, cmd: &RegistryCommand) {
    let mut txn = store.txn();
    apply(&mut txn, 3, "acme", event_id, Ts::new(1_800_000_000, 0), cmd).unwrap();
    txn.commit(None).unwrap();
}

fn mint_all(store: &Store, event_id: &str, mints: Vec<MintSpec>, max_ids: u64) -> Vec<Option<String>> {
    let n = mints.len();
    run(store, event_id, &RegistryCommand::Mint { mints, max_ids });
    let view = RegistryView::new(store, 3, "acme");
    (0..n).map(|i| view.request(&request_key(event_id, i)).unwrap().map(|r| r.id)).collect()
}

#[test]
fn counters_are_per_type_brand_and_year_and_a_repeat_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &Default::default()).unwrap();
    let ids = mint_all(&store, "e1", vec![spec(IdType::Campaign, Some("EYL"), 2024), spec(IdType::Campaign, Some("EYL"), 2024), spec(IdType::Campaign, Some("ABC"), 2024), spec(IdType::Content, Some("EYL"), 2024), spec(IdType::Content, Some("ABC"), 2024)], 100);
    let ids: Vec<String> = ids.into_iter().map(Option::unwrap).collect();
    assert_eq!(ids, ["CMP-EYL-2024-001", "CMP-EYL-2024-002", "CMP-ABC-2024-001", "CNT-2024-0001", "CNT-2024-0002"]);
    assert_eq!(mint_all(&store, "e1", vec![spec(IdType::Campaign, Some("EYL"), 2024)], 100), vec![Some("CMP-EYL-2024-001".into())], "the same request key mints nothing new");
    let view = RegistryView::new(&store, 3, "acme");
    assert_eq!(view.meta().unwrap().ids, 5);
    assert_eq!(view.entry("CMP-EYL-2024-002").unwrap().unwrap().sequence, 2);
    assert_eq!(mint_all(&store, "e2", vec![spec(IdType::Campaign, Some("EYL"), 2024)], 100), vec![Some("CMP-EYL-2024-003".into())]);
}

#[test]
fn the_bound_refuses_and_a_changed_pattern_skips_taken_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &Default::default()).unwrap();
    assert_eq!(mint_all(&store, "e1", vec![spec(IdType::Variant, None, 2024); 3], 2), vec![Some("VAR-2024-0001".into()), Some("VAR-2024-0002".into()), None]);
    let mut other = spec(IdType::Variant, Some("X"), 2024);
    other.pattern = "VAR-{YYYY}-{NNNN}{BRAND}".into();
    // A pattern with the brand counts per brand: X's first id is new.
    assert_eq!(mint_all(&store, "e2", vec![other], 3), vec![Some("VAR-2024-0001X".into())]);
    let mut unbranded = spec(IdType::Variant, None, 2024);
    unbranded.pattern = "VAR-{YYYY}-{NNN}".into();
    // Its counter is the unbranded one (at 2): 003 is free.
    assert_eq!(mint_all(&store, "e3", vec![unbranded], 10), vec![Some("VAR-2024-003".into())]);
}

#[test]
fn patches_merge_and_never_touch_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &Default::default()).unwrap();
    let mut s = spec(IdType::Content, None, 2024);
    s.attributes = json!({"title": "Banner", "audience": "hcp"}).as_object().cloned().unwrap();
    let id = mint_all(&store, "e1", vec![s], 10)[0].clone().unwrap();
    let set = json!({"title": "Eylea Medscape Banner"}).as_object().cloned().unwrap();
    run(&store, "e2", &RegistryCommand::Update { id: id.clone(), status: Some(Status::Live), set, remove: vec!["audience".into()] });
    let e = RegistryView::new(&store, 3, "acme").entry(&id).unwrap().unwrap();
    assert_eq!((e.id.as_str(), e.status, e.title().as_deref()), (id.as_str(), Status::Live, Some("Eylea Medscape Banner")));
    assert_eq!(serde_json::Value::Object(e.attributes()), json!({"title": "Eylea Medscape Banner"}));
}

#[test]
fn taxonomy_versions_follow_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &Default::default()).unwrap();
    let t = |v: u32| Taxonomy { version: v, fields: Default::default() };
    run(&store, "t1", &RegistryCommand::Taxonomy { template: t(1), max_versions: 5 });
    run(&store, "t1b", &RegistryCommand::Taxonomy { template: t(1), max_versions: 5 });
    run(&store, "t3", &RegistryCommand::Taxonomy { template: t(3), max_versions: 5 });
    let view = RegistryView::new(&store, 3, "acme");
    assert_eq!(view.current_taxonomy().unwrap().unwrap().event_id, "t1", "the second version 1 lost the race");
    run(&store, "t2", &RegistryCommand::Taxonomy { template: t(2), max_versions: 5 });
    assert_eq!(view.current_taxonomy().unwrap().map(|r| (r.version, r.event_id)), Some((2, "t2".into())));
    assert_eq!(view.taxonomy(1).unwrap().unwrap().template(), Some(t(1)));
    run(&store, "t3", &RegistryCommand::Taxonomy { template: t(3), max_versions: 2 });
    assert_eq!(view.meta().unwrap().taxonomy_version, 2, "beyond the bound of versions");
}

#[test]
fn urls_are_kept_once_each_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &Default::default()).unwrap();
    let u = |url: &str, vendor: &str| UrlRecord {
        url: url.into(), destination: "https://x.example/".into(), composite_key: "-/SEQ-?/-/-".into(), template_version: 1, vendor: Some(vendor.into()), dims: Default::default(),
    };
    run(&store, "u1", &RegistryCommand::StoreUrls { urls: vec![u("https://x.example/?a", "dsp"), u("https://x.example/?b", "dsp")], max_urls: 2 });
    run(&store, "u2", &RegistryCommand::StoreUrls { urls: vec![u("https://x.example/?a", "cmi"), u("https://x.example/?c", "dsp")], max_urls: 2 });
    let view = RegistryView::new(&store, 3, "acme");
    let urls = view.urls(|_| true).unwrap();
    let got: Vec<(&str, &str)> = urls.iter().map(|s| (s.record.url.as_str(), s.record.vendor.as_deref().unwrap())).collect();
    assert_eq!(got, [("https://x.example/?a", "cmi"), ("https://x.example/?b", "dsp")], "a known URL is replaced, a new one beyond the bound dropped");
    assert_eq!(view.meta().unwrap().urls, 2);
}

#[test]
fn listing_pages_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &Default::default()).unwrap();
    mint_all(&store, "e1", vec![spec(IdType::Content, None, 2024); 5], 10);
    let view = RegistryView::new(&store, 3, "acme");
    let (page, more) = view.entries(None, 2, |_| true).unwrap();
    assert!(more);
    let (rest, more) = view.entries(Some(&page[1].id), 10, |e| e.sequence != 4).unwrap();
    let ids: Vec<u64> = page.iter().chain(&rest).map(|e| e.sequence).collect();
    assert_eq!((ids, more), (vec![1, 2, 3, 5], false));
}

proptest! {
    /// Mints of random scopes in random command batches: every scope's
    /// sequences are exactly 1..=n and all ids are distinct.
    #[test]
    fn mints_are_gap_free_per_scope(batches in proptest::collection::vec(proptest::collection::vec((0..4usize, 0..3usize, 2024u16..2026), 1..6), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &Default::default()).unwrap();
        let kinds = crate::domain::governance::registry::ID_TYPES;
        let mut all = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let mints: Vec<MintSpec> = batch.iter().map(|&(k, brand, year)| spec(kinds[k], Some(["A", "B", "C"][brand]), year)).collect();
            all.extend(mint_all(&store, &format!("e{b}"), mints, 1_000).into_iter().map(Option::unwrap));
        }
        let view = RegistryView::new(&store, 3, "acme");
        let mut scopes: std::collections::BTreeMap<(u8, Option<String>, u16), Vec<u64>> = Default::default();
        for id in &all {
            let e = view.entry(id).unwrap().unwrap();
            let p = IdPattern::parse(default_pattern(e.kind)).unwrap();
            scopes.entry((e.kind as u8, e.brand.clone().filter(|_| p.has_brand()), e.year)).or_default().push(e.sequence);
        }
        for seqs in scopes.values_mut() {
            seqs.sort_unstable();
            prop_assert_eq!(seqs.clone(), (1..=seqs.len() as u64).collect::<Vec<_>>());
        }
        let distinct: std::collections::BTreeSet<&String> = all.iter().collect();
        prop_assert_eq!(distinct.len(), all.len());
    }
}

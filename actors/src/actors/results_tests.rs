//! The attribution results topic through the partition actor over a real
//! RocksDB store (issue 21, 3): records follow late merges, consent,
//! erasure and the retention sweep; for a probabilistic tenant they follow
//! the final persons as links appear and go; and a backfill brings the
//! table to the current state when the topic is turned on over existing
//! state or what a record holds changes. The table a sink keeps is checked
//! against what `/v1/tenants/{t}/customers/{id}` answers per conversion
//! over the final persons (the links evaluated from the stored signals by
//! the batch rule, `query::linking::final_persons`).

use super::tests::{apply, harness, records, touch_at, Harness};
use super::*;
use crate::dlq::DlqFuture;
use crate::domain::models::Model;
use crate::domain::probabilistic::{Linking, LinkingPolicy};
use crate::domain::GroupBy;
use crate::query::customer::{customer_in, CustomerQuery};
use crate::query::linking::final_persons;
use crate::results::publisher::Publisher;
use crate::results::ResultsConfig;
use crate::state::{key, PersonRec};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// An upsert table of the results topic: key → last value, a tombstone deletes.
#[derive(Default)]
struct Table(Mutex<(std::collections::BTreeMap<String, serde_json::Value>, usize)>);

impl crate::results::ResultsSink for Table {
    fn publish(&self, _partition: u16, records: Vec<crate::results::ResultRecord>) -> DlqFuture {
        let mut t = self.0.lock().unwrap();
        for (k, v) in records {
            t.1 += 1;
            let k = String::from_utf8(k).unwrap();
            match v {
                Some(v) => t.0.insert(k, serde_json::from_slice(&v).unwrap()),
                None => t.0.remove(&k),
            };
        }
        Box::pin(async { Ok(()) })
    }
}

fn event(tenant: &str, id: &str, ty: &str, ts: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut v = serde_json::json!({"event_id": id, "tenant_id": tenant, "event_type": ty, "timestamp": ts});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::to_vec(&v).unwrap()
}

/// A harness whose partition actor publishes its results into a [`Table`].
async fn results_harness(config: EngineConfig) -> (Harness, Arc<Table>) {
    let table = Arc::new(Table::default());
    let mut h = harness(0, 1, config.clone()).await;
    h.respawn(config, false, Some(publisher(&table, ResultsConfig::default()))).await;
    (h, table)
}

fn publisher(table: &Arc<Table>, config: ResultsConfig) -> Publisher {
    Publisher { sink: table.clone(), config: Arc::new(config) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_follow_the_retention_sweep() {
    let config = EngineConfig { retention: crate::domain::retention::RetentionPolicy::new(1), retention_sweep_interval: Duration::ZERO, ..EngineConfig::default() };
    let (h, table) = results_harness(config).await;
    let conv = event("acme", "k1", "conversion_event", "2026-10-05T12:00:00Z", serde_json::json!({"customer_id": "c1", "conversion_data": {"value": 10.0, "currency": "EUR"}}));
    apply(&h, records(vec![conv], 0)).await;
    assert!(table.0.lock().unwrap().0.contains_key("acme/k1"));
    // Three days later the conversion is behind the 1-day horizon: the sweep deletes it, and its record goes.
    apply(&h, records(vec![touch_at("acme", "t1", "c2", "J1", "2026-10-08T12:00:00Z")], 1)).await;
    h.actor.cast(PartitionMsg::Sweep).unwrap();
    ractor::call!(h.actor, PartitionMsg::Drain).unwrap();
    assert!(table.0.lock().unwrap().0.is_empty(), "the swept conversion is still in the table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_follow_late_merges_consent_and_erasure_and_repeat_nothing() {
    let (h, table) = results_harness(EngineConfig::default()).await;
    let t = |id: &str, c: &str, ch: &str, ts: &str| event("acme", id, "touchpoint_interaction", ts, serde_json::json!({"customer_id": c, "touchpoints": {"channel": ch, "interaction_type": "click"}}));
    let conv = |id: &str, c: &str, ts: &str| event("acme", id, "conversion_event", ts, serde_json::json!({"customer_id": c, "conversion_data": {"value": 10.0, "currency": "EUR"}}));
    let first = |k: &str| table.0.lock().unwrap().0.get(k).map(|v| v["credits"]["first_touch"]["channel"][0]["key"].as_str().unwrap().to_string());
    let published = || table.0.lock().unwrap().1;
    let digests = |store: &Store| {
        let mut n = 0;
        store.scan_prefix(&touchline_storage::keys::KeyBuf::space(0, touchline_storage::keys::Space::Published).into_vec(), |_, _| { n += 1; true }).unwrap();
        n
    };

    apply(&h, records(vec![t("a", "c1", "email", "2026-10-05T10:00:00Z"), conv("k1", "c1", "2026-10-05T12:00:00Z"), conv("k2", "c9", "2026-10-05T12:00:00Z")], 0)).await;
    assert_eq!(first("acme/k1").as_deref(), Some("email"));
    assert_eq!(first("acme/k2").as_deref(), Some(crate::domain::DIRECT_KEY));
    assert_eq!((published(), digests(&h.store)), (2, 2));

    // A late login merges c2's earlier search touch into k1's path: k1 changes, k2 does not.
    apply(&h, records(vec![t("b", "c2", "search", "2026-10-05T09:00:00Z"), event("acme", "i1", "identify", "2026-10-05T13:00:00Z", serde_json::json!({"customer_id": "c2", "user_id": "u1"}))], 3)).await;
    assert_eq!(published(), 2, "a touch of another person changes no record");
    apply(&h, records(vec![event("acme", "i2", "identify", "2026-10-05T14:00:00Z", serde_json::json!({"customer_id": "c1", "user_id": "u1"}))], 5)).await;
    assert_eq!(first("acme/k1").as_deref(), Some("search"), "re-attributed over the merged timeline");
    assert_eq!((published(), digests(&h.store)), (3, 2));

    // A duplicate and an unrelated touch publish nothing.
    apply(&h, records(vec![conv("k1", "c1", "2026-10-05T12:00:00Z"), t("z", "c7", "email", "2026-10-05T15:00:00Z")], 6)).await;
    assert_eq!(published(), 3);

    // Consent withdrawn before k1: a tombstone; erasure of c9: a tombstone.
    apply(&h, records(vec![event("acme", "w1", "consent_update", "2026-10-05T11:00:00Z", serde_json::json!({"customer_id": "c2", "consent": {"analytics": false}}))], 8)).await;
    assert_eq!(first("acme/k1"), None, "withdrawn");
    apply(&h, records(vec![event("acme", "x1", "erasure_request", "2026-10-06T00:00:00Z", serde_json::json!({"customer_id": "c9"}))], 9)).await;
    assert_eq!(first("acme/k2"), None, "erased");
    assert!(table.0.lock().unwrap().0.is_empty());
    assert_eq!((published(), digests(&h.store)), (5, 0), "one tombstone each, and no digest left");
}

/// model → grouping → key → weight (zero weights left out).
type Credits = BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>;

/// What `/v1` answers per conversion of `tenant` under `models`: every
/// person's `customers/{id}` over the final persons (`linking`: the links the
/// batch rule evaluates from the stored signals; `None`: deterministic), as
/// conversion key → (person_id, credits).
fn answers(store: &Store, config: &EngineConfig, tenant: &str, models: &[Model]) -> BTreeMap<String, (String, Credits)> {
    let max_ts = crate::query::tenant_meta(store, 0, tenant).unwrap().and_then(|m| m.max_ts);
    let horizon = config.retention.horizon(tenant, max_ts);
    let view = config.linking.of(tenant).map(|l| final_persons(store, 0, tenant, l, horizon).unwrap());
    let persons: Vec<PersonRec> = store.prefix_as(&key::person_prefix(0, tenant)).unwrap();
    let mut out: BTreeMap<String, (String, Credits)> = BTreeMap::new();
    for rec in persons {
        let id = &rec.ids.members[0].id;
        for g in [GroupBy::Channel, GroupBy::Campaign] {
            let q = CustomerQuery { lookback_days: 30, params: Default::default(), group_by: g, horizon };
            let a = customer_in(store, 0, tenant, id, &q, view.as_ref()).unwrap();
            for c in a.conversions {
                let row = out.entry(format!("{tenant}/{}", c.event_id)).or_insert_with(|| (a.person_id.clone(), Credits::new()));
                for m in models {
                    let keys = row.1.entry(m.as_str().to_string()).or_default().entry(g.as_str().to_string()).or_default();
                    keys.clear();
                    for t in &c.credit[m.as_str()] {
                        *keys.entry(t.key.clone()).or_default() += t.weight;
                    }
                    keys.retain(|_, w| *w != 0.0);
                }
            }
        }
    }
    out
}

/// Asserts the table holds exactly `want`: the same conversions, each with
/// the same person and credits.
fn assert_table(table: &Table, want: &BTreeMap<String, (String, Credits)>, when: &str) {
    let got = table.0.lock().unwrap().0.clone();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{when}: the table's conversions");
    for (k, (person, credits)) in want {
        let row = &got[k];
        assert_eq!(row["person_id"], person.as_str(), "{when}: {k}'s person");
        let mut have = Credits::new();
        for (m, by) in row["credits"].as_object().unwrap() {
            for (g, rows) in by.as_object().unwrap() {
                let keys = have.entry(m.clone()).or_default().entry(g.clone()).or_default();
                for r in rows.as_array().unwrap() {
                    keys.insert(r["key"].as_str().unwrap().to_string(), r["weight"].as_f64().unwrap());
                }
            }
        }
        let same = have.len() == credits.len()
            && have.iter().all(|(m, by)| by.iter().all(|(g, keys)| {
                let w = &credits[m][g];
                keys.len() == w.len() && keys.iter().all(|(k, x)| w.get(k).is_some_and(|y| (x - y).abs() < 1e-9))
            }));
        assert!(same, "{when}: {k}: table {have:?}, /v1 {credits:?}");
    }
}

fn linked_config() -> EngineConfig {
    let per_tenant = [("acme".to_string(), Linking { threshold: 7_000, max_ip_persons: 10 })].into();
    EngineConfig { linking: LinkingPolicy { per_tenant }, ..EngineConfig::default() }
}

/// A journey event with a signal (ip 10.0.0.1, one user agent, one place).
fn signalled(id: &str, ty: &str, ts: &str, mut extra: serde_json::Value) -> Vec<u8> {
    extra["context"] = serde_json::json!({"ip_address": "10.0.0.1", "user_agent": "UA-1", "geolocation": {"lat": 48.8566, "lon": 2.3522}});
    event("acme", id, ty, ts, extra)
}

fn conversion(id: &str, customer: &str, ts: &str) -> Vec<u8> {
    event("acme", id, "conversion_event", ts, serde_json::json!({"customer_id": customer, "conversion_data": {"value": 10.0, "currency": "EUR"}}))
}

/// The known phone: it logs in (a signal), clicks an email, converts (`k0`).
fn phone() -> Vec<Vec<u8>> {
    vec![
        signalled("i0", "identify", "2026-10-05T10:00:00Z", serde_json::json!({"customer_id": "phone", "user_id": "u0"})),
        event("acme", "t0", "touchpoint_interaction", "2026-10-05T10:05:00Z", serde_json::json!({"customer_id": "phone", "touchpoints": {"channel": "email", "interaction_type": "click"}})),
        conversion("k0", "phone", "2026-10-05T11:00:00Z"),
    ]
}

/// The anonymous laptop's search click on the phone's address and browser,
/// ten minutes after its login: a probabilistic link.
fn laptop_search() -> Vec<u8> {
    signalled("t1", "touchpoint_interaction", "2026-10-05T10:10:00Z", serde_json::json!({"customer_id": "laptop", "touchpoints": {"channel": "search", "interaction_type": "click"}}))
}

/// Issue 21 item 3 for a probabilistic tenant: a later event that creates a
/// probabilistic link (an anonymous laptop cookie on the known phone's
/// address and browser) re-attributes both persons' conversions over the
/// final person; a login that makes the cookie known removes the link again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_follow_the_final_persons_as_a_link_appears_and_a_login_removes_it() {
    let config = linked_config();
    let (h, table) = results_harness(config.clone()).await;
    let models = crate::results::DEFAULT_MODELS;
    // The phone; the laptop cookie converts.
    let mut first = phone();
    first.push(conversion("k1", "laptop", "2026-10-05T11:10:00Z"));
    apply(&h, records(first, 0)).await;
    let want = answers(&h.store, &config, "acme", &models);
    assert_eq!(want.len(), 2);
    assert_table(&table, &want, "no link yet");

    // The laptop's late search click: a probabilistic link joins both persons.
    apply(&h, records(vec![laptop_search()], 4)).await;
    assert!(!final_persons(&h.store, 0, "acme", config.linking.of("acme").unwrap(), None).unwrap().is_empty(), "the test needs a link");
    let want = answers(&h.store, &config, "acme", &models);
    assert_eq!(want["acme/k0"].0, want["acme/k1"].0, "one final person");
    assert_table(&table, &want, "linked");

    // The laptop logs in as another user: known, so linked no more.
    apply(&h, records(vec![event("acme", "i1", "identify", "2026-10-05T12:00:00Z", serde_json::json!({"customer_id": "laptop", "user_id": "u1"}))], 5)).await;
    let want = answers(&h.store, &config, "acme", &models);
    assert_ne!(want["acme/k0"].0, want["acme/k1"].0, "two persons again");
    assert_table(&table, &want, "unlinked by a login");
}

/// An erasure of the known person removes its link: the linked anonymous
/// person's conversion is attributed over itself again, the erased one's is
/// tombstoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_follow_the_final_persons_when_an_erasure_removes_a_link() {
    let config = linked_config();
    let (h, table) = results_harness(config.clone()).await;
    let models = crate::results::DEFAULT_MODELS;
    let mut all = phone();
    all.extend([laptop_search(), conversion("k1", "laptop", "2026-10-05T11:10:00Z")]);
    apply(&h, records(all, 0)).await;
    let want = answers(&h.store, &config, "acme", &models);
    assert_eq!(want["acme/k0"].0, want["acme/k1"].0, "the test needs a link");
    assert_table(&table, &want, "linked");
    apply(&h, records(vec![event("acme", "x0", "erasure_request", "2026-10-06T00:00:00Z", serde_json::json!({"customer_id": "phone"}))], 5)).await;
    let want = answers(&h.store, &config, "acme", &models);
    assert_eq!(want.keys().collect::<Vec<_>>(), ["acme/k1"]);
    assert_table(&table, &want, "after the erasure");
}

/// Waits (with a deadline) until partition 0 has no backfill pending for `cfg`.
async fn backfilled(h: &Harness, cfg: &ResultsConfig) {
    use crate::results::backfill::{fingerprint, BackfillState};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        ractor::call!(h.actor, PartitionMsg::Drain).unwrap();
        let st: Option<BackfillState> = h.store.get(&key::results_backfill(0)).unwrap().map(|v| touchline_storage::codec::decode(b"U", &v).unwrap());
        if st.is_some_and(|s| s.fingerprint == fingerprint(cfg) && s.cursor.is_none()) {
            return;
        }
        assert!(Instant::now() < deadline, "the backfill did not end within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 21 item 3, backfill: the topic turned on over existing state (with
/// a person erased and others changed while it was off), then its models
/// changed, then its name: each time the table ends equal to the state —
/// every conversion republished in chunks (one person a step here), the
/// erased one's record tombstoned, a new topic filled from empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_brings_the_table_to_the_state_when_the_topic_is_turned_on_or_changes() {
    let config = EngineConfig::default();
    let table = Arc::new(Table::default());
    let on = ResultsConfig { backfill_persons: 1, ..ResultsConfig::default() };
    let mut h = harness(0, 1, config.clone()).await;
    h.respawn(config.clone(), false, Some(publisher(&table, on.clone()))).await;
    let t = |id: &str, c: &str, ch: &str, ts: &str| event("acme", id, "touchpoint_interaction", ts, serde_json::json!({"customer_id": c, "touchpoints": {"channel": ch, "interaction_type": "click"}}));
    apply(&h, records(vec![t("a", "c1", "email", "2026-10-05T10:00:00Z"), conversion("k1", "c1", "2026-10-05T12:00:00Z"), conversion("k2", "c2", "2026-10-05T12:00:00Z")], 0)).await;
    backfilled(&h, &on).await;
    assert_table(&table, &answers(&h.store, &config, "acme", &crate::results::DEFAULT_MODELS), "on");

    // Off: c2 is erased, c1 gets an earlier search click, c3 converts.
    h.respawn(config.clone(), false, None).await;
    let erase = event("acme", "x2", "erasure_request", "2026-10-06T00:00:00Z", serde_json::json!({"customer_id": "c2"}));
    apply(&h, records(vec![erase, t("b", "c1", "search", "2026-10-05T09:00:00Z"), t("c", "c3", "social", "2026-10-05T09:00:00Z"), conversion("k3", "c3", "2026-10-05T13:00:00Z")], 3)).await;

    // On again (same topic, same settings): the table follows without a new event.
    h.respawn(config.clone(), false, Some(publisher(&table, on.clone()))).await;
    backfilled(&h, &on).await;
    assert_table(&table, &answers(&h.store, &config, "acme", &crate::results::DEFAULT_MODELS), "turned on again");

    // Other models: every record's value changes under the same key.
    let linear = ResultsConfig { models: vec![Model::Linear, Model::FirstTouch], ..on.clone() };
    h.respawn(config.clone(), false, Some(publisher(&table, linear.clone()))).await;
    backfilled(&h, &linear).await;
    assert_table(&table, &answers(&h.store, &config, "acme", &linear.models), "models changed");

    // Another topic: empty, filled by the backfill.
    let fresh = Arc::new(Table::default());
    let renamed = ResultsConfig { topic: "warehouse.attributions".into(), ..linear };
    h.respawn(config.clone(), false, Some(publisher(&fresh, renamed.clone()))).await;
    backfilled(&h, &renamed).await;
    assert_table(&fresh, &answers(&h.store, &config, "acme", &renamed.models), "a new topic");
}

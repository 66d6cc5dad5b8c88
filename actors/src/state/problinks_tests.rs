//! The persons whose final person changed, as [`LinkTracker::finish`]
//! returns them per batch (what a results feed re-attributes): a link that
//! appears, then disappears when a later event gives a second candidate.

use super::*;
use crate::domain::identity::{apply_link, ensure_node, Link};

const T: &str = "t";

/// One batch: each (customer_id, user_id, seconds, user agent) event gets its
/// identity and a signal on one address; returns the relinks.
fn batch(store: &Store, events: &[(&str, Option<&str>, i64, &str)]) -> Vec<Relink> {
    let mut txn = store.txn();
    let mut st = TenantState::load(&mut txn, 0, T).unwrap();
    let linking = Linking { threshold: 7_000, max_ip_persons: 10 };
    let mut tracker = LinkTracker::new(Some(linking), IndexCache::new(64));
    for (i, (cid, user, secs, ua)) in events.iter().enumerate() {
        let node = IdNode::customer(cid.to_string());
        let ts = Ts::new(*secs, 0);
        match user {
            Some(u) => {
                for m in apply_link(&mut st, &Link::new(ts, format!("{cid}-{i}"), node.clone(), IdNode::user(u.to_string())), 64).unwrap().moves {
                    st.apply_move(&m).unwrap();
                    tracker.person(m.from);
                    tracker.person(m.to);
                }
            }
            None => drop(ensure_node(&mut st, &node, &mut Vec::new()).unwrap()),
        }
        let rec = SignalRec { customer_id: cid.to_string(), ts, ip: "10.0.0.1".into(), user_agent: Some(ua.to_string()), geo: None };
        let id = format!("{cid}-{secs}");
        st.put_signal(cid, &id, &rec).unwrap();
        tracker.signal(&mut st, &id, &rec).unwrap();
    }
    let (relinked, _) = tracker.finish(&mut st, None).unwrap();
    st.save().unwrap();
    drop(st);
    txn.commit(None).unwrap();
    relinked
}

#[test]
fn finish_returns_the_persons_whose_final_person_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &Default::default()).unwrap();
    // A phone logs in; a laptop on the same address and browser 10 min later: 0.80.
    let first = batch(&store, &[("phone", Some("u1"), 1_000, "UA"), ("laptop", None, 1_600, "UA")]);
    let person = |cid: &str| store.get(&key::node_lookup(0, T, IdKind::Customer, cid)).unwrap().map(|b| u64::from_be_bytes(b.try_into().unwrap())).unwrap();
    let (phone, laptop) = (person("phone"), person("laptop"));
    assert_eq!(first, [Relink { person: laptop, before: None, after: Some(phone) }]);
    // Nothing new for the laptop: no relink.
    assert_eq!(batch(&store, &[("phone", Some("u1"), 2_000, "UA")]), []);
    // A second logged-in person scores 0.80 with the laptop too: the link goes.
    assert_eq!(batch(&store, &[("tablet", Some("u2"), 1_300, "UA")]), [Relink { person: laptop, before: Some(phone), after: None }]);
}

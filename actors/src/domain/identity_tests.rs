//! Tests of the identity graph: hand-made cases and the order-independence property.

use super::*;
use proptest::prelude::*;

fn link(ts: i64, eid: &str, c: &str, u: &str) -> Link {
    Link::new(Ts::new(ts, 0), eid, IdNode::customer(c), IdNode::user(u))
}

/// Applies `links` in this order; returns the store and the blocked links
/// counted (newly blocked minus unblocked).
fn run(links: &[Link], max: usize) -> (MemIdentity, usize) {
    let mut s = MemIdentity::default();
    let mut blocked = 0isize;
    for l in links {
        let out = apply_link(&mut s, l, max).unwrap();
        blocked += out.blocked as isize - out.unblocked as isize;
    }
    (s, usize::try_from(blocked).expect("never below zero"))
}

#[test]
fn two_devices_one_login_merge() {
    let (s, _) = run(&[link(1, "e1", "phone", "alice"), link(2, "e2", "laptop", "alice")], 64);
    assert_eq!(s.groups(), vec![vec![IdNode::customer("laptop"), IdNode::customer("phone"), IdNode::user("alice")]]);
    // customer x and user x are distinct nodes
    let (s, _) = run(&[link(1, "e1", "x", "y"), link(2, "e2", "y", "z")], 64);
    assert_eq!(s.groups().len(), 2);
}

#[test]
fn merge_reports_whole_move_of_smaller_person() {
    let mut s = MemIdentity::default();
    apply_link(&mut s, &link(1, "e1", "a", "u1"), 64).unwrap();
    apply_link(&mut s, &link(1, "e2", "b", "u1"), 64).unwrap();
    let mut created = vec![];
    let lone = ensure_node(&mut s, &IdNode::customer("c"), &mut created).unwrap();
    let out = apply_link(&mut s, &link(3, "e3", "c", "u1"), 64).unwrap();
    assert_eq!(out.moves.len(), 1);
    assert_eq!(out.moves[0].from, lone);
    assert!(out.moves[0].whole);
    assert_eq!(out.moves[0].nodes, vec![IdNode::customer("c")]);
}

#[test]
fn guard_blocks_in_canonical_order_whatever_the_arrival() {
    // max 3: a-u (t1) and b-u (t2) merge; c-u (t3) would make 4 → blocked.
    let links = vec![link(1, "e1", "a", "u"), link(2, "e2", "b", "u"), link(3, "e3", "c", "u")];
    let batch = stitch(&[], &links, 3);
    assert_eq!(batch.blocked, 1);
    for perm in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
        let ordered: Vec<Link> = perm.iter().map(|&i| links[i].clone()).collect();
        let (s, _) = run(&ordered, 3);
        assert_eq!(s.groups(), batch.groups, "arrival order {perm:?}");
    }
}

#[test]
fn each_blocked_link_is_counted_once_whatever_the_arrival() {
    // max 3 on a star around u: a and b merge, c, d and e are blocked. Every
    // link after the first blocked one re-stitches the component; the count
    // still grows by the links newly blocked, so it ends at the batch's 3
    // (it used to recount the component each time: 1 + 2 + 3 = 6 in order).
    let links: Vec<Link> = ["a", "b", "c", "d", "e"].iter().enumerate().map(|(i, c)| link(i as i64, &format!("e{i}"), c, "u")).collect();
    assert_eq!(stitch(&[], &links, 3).blocked, 3);
    for perm in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 4, 0, 3, 1], [1, 3, 4, 2, 0]] {
        let ordered: Vec<Link> = perm.iter().map(|&i| links[i].clone()).collect();
        let (_, blocked) = run(&ordered, 3);
        assert_eq!(blocked, 3, "arrival order {perm:?}");
    }
}

#[test]
fn many_logins_keep_one_link_per_pair() {
    // Two devices of alice, each logging in 100 times: two pairs, so two
    // links under alice and one under each device, the earliest login with
    // the number of logins; re-logins neither add links nor change persons.
    let mut s = MemIdentity::default();
    for i in 0..100 {
        apply_link(&mut s, &link(1_000 - i, &format!("p{i:03}"), "phone", "alice"), 64).unwrap();
        apply_link(&mut s, &link(2_000 + i, &format!("l{i:03}"), "laptop", "alice"), 64).unwrap();
    }
    let alice = s.links_of(&IdNode::user("alice")).unwrap();
    assert_eq!(alice.len(), 2, "{alice:?}");
    let phone = s.links_of(&IdNode::customer("phone")).unwrap();
    assert_eq!(phone, vec![Link { count: 100, ..link(901, "p099", "phone", "alice") }]);
    let laptop = s.links_of(&IdNode::customer("laptop")).unwrap();
    assert_eq!((laptop.len(), laptop[0].ts, laptop[0].count), (1, Ts::new(2_000, 0), 100));
    assert_eq!(s.groups().len(), 1);
}

#[test]
fn a_blocked_pair_counts_each_of_its_links() {
    // max 2: a-u merges first (t1); b-u is blocked, and so is each later b-u
    // login: the batch counts 3, and so does the stream, whatever the order,
    // though it keeps one link for the pair.
    let links = vec![link(1, "e1", "a", "u"), link(2, "e2", "b", "u"), link(3, "e3", "b", "u"), link(4, "e4", "b", "u")];
    assert_eq!(stitch(&[], &links, 2).blocked, 3);
    for perm in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]] {
        let ordered: Vec<Link> = perm.iter().map(|&i| links[i].clone()).collect();
        let (mut s, blocked) = run(&ordered, 2);
        assert_eq!(blocked, 3, "arrival order {perm:?}");
        assert_eq!(s.links_of(&IdNode::customer("b")).unwrap().len(), 1);
    }
}

#[test]
fn public_id_is_smallest_member() {
    let p = PersonIds { members: vec![IdNode::customer("b"), IdNode::user("a")], guarded: false };
    assert_eq!(p.public_id(), "customer_id:b");
}

fn arb_links() -> impl Strategy<Value = Vec<Link>> {
    proptest::collection::vec((0i64..20, 0u8..8, 0u8..5), 1..30).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (ts, c, u))| link(ts, &format!("e{i:02}"), &format!("c{c}"), &format!("u{u}")))
            .collect()
    })
}

proptest! {
    /// Any arrival order gives the persons of the batch definition, with and
    /// without the guard biting, and the node→person index stays consistent.
    #[test]
    fn any_order_gives_the_batch_persons(links in arb_links(), max in 2usize..8, seed in any::<u64>()) {
        let batch = stitch(&[], &links, max);
        let mut shuffled = links.clone();
        // Fisher-Yates with a tiny LCG so proptest controls the permutation.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        let (s, _) = run(&shuffled, max);
        prop_assert_eq!(s.groups(), batch.groups.clone());
        for (key, p) in &s.persons {
            for n in &p.members {
                prop_assert_eq!(s.node_person.get(n), Some(key));
            }
        }
        // The blocked count is the batch's, whatever the order; in the batch
        // order no link is ever unblocked, so the metric (a counter) is too.
        let (_, blocked) = run(&shuffled, max);
        prop_assert_eq!(blocked, batch.blocked);
        let mut canonical = links.clone();
        canonical.sort_by(|x, y| (x.ts, &x.event_id).cmp(&(y.ts, &y.event_id)));
        let mut s = MemIdentity::default();
        let (mut newly, mut unblocked) = (0, 0);
        for l in &canonical {
            let out = apply_link(&mut s, l, max).unwrap();
            newly += out.blocked;
            unblocked += out.unblocked;
        }
        prop_assert_eq!((newly, unblocked), (batch.blocked, 0));
        // Without a binding cap the persons are the connected components.
        let (free, blocked) = run(&shuffled, usize::MAX);
        prop_assert_eq!(blocked, 0);
        prop_assert_eq!(free.groups(), stitch(&[], &links, usize::MAX).groups);
    }

    /// Replaying the reported moves over the previous assignment yields the new one.
    #[test]
    fn moves_describe_every_reassignment(links in arb_links(), max in 2usize..6) {
        let mut s = MemIdentity::default();
        let mut mirror: HashMap<IdNode, u64> = HashMap::new();
        for l in &links {
            let out = apply_link(&mut s, l, max).unwrap();
            for n in [&l.a, &l.b] {
                if !mirror.contains_key(n) {
                    // created this step: take the store's value before moves
                    let p = out.moves.iter().find(|m| m.nodes.contains(n)).map(|m| m.from);
                    mirror.insert(n.clone(), p.unwrap_or(s.node_person[n]));
                }
            }
            for m in &out.moves {
                for n in &m.nodes {
                    prop_assert_eq!(mirror.get(n), Some(&m.from));
                    mirror.insert(n.clone(), m.to);
                }
            }
            prop_assert_eq!(&mirror, &s.node_person);
        }
    }
}

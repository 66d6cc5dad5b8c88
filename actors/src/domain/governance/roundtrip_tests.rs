//! Tests of the URL builder: hand-made cases, and the property that a built
//! URL parses back, through the ingest path's parser (`tracking::dims_from`),
//! to exactly the dimensions and composite key the builder reports.

use super::url_builder::composite_key;
use super::validate_tests::{fields, live, template};
use super::*;
use crate::domain::tracking::{dims_from, tracking_params};
use proptest::prelude::*;
use std::collections::BTreeMap;
use url::Url;

fn ok_fields() -> BTreeMap<String, String> {
    fields(&[
        ("utm_source", "Newsletter"),
        ("utm_medium", "email"),
        ("utm_content", "CNT-2024-0030"),
        ("utm_term", "a b"),
        ("cm_brand", "EYL"),
        ("cm_campaign_id", "CMP-EYL-2024-001"),
        ("cm_journey_id", "CJ-EYL-2024-007"),
        ("cm_node_seq", "03"),
        ("cm_variant", "B 2"),
    ])
}

#[test]
fn stable_order_kept_parameters_and_fragment() {
    let b = build(&template(), "https://Brand.Example/l p?x=1&utm_source=old&q=a b&utm_medium=&cm_zz=9#top?utm_source=f", &ok_fields(), &live)
        .unwrap();
    assert_eq!(
        b.url,
        "https://brand.example/l%20p?x=1&q=a%20b&utm_source=newsletter&utm_medium=email&utm_campaign=eyl_cmp-eyl-2024-001\
         &utm_content=CNT-2024-0030&utm_term=a_b&utm_id=tl&cm_brand=EYL&cm_campaign_id=CMP-EYL-2024-001\
         &cm_journey_id=CJ-EYL-2024-007&cm_node_seq=03&cm_variant=B-2#top?utm_source=f"
    );
    assert_eq!(b.composite_key, "CJ-EYL-2024-007/SEQ-3/CNT-2024-0030/B-2");
    assert_eq!(b.template_version, 3);
    assert_eq!(b.dims.campaign.as_deref(), Some("CMP-EYL-2024-001"));
    assert_eq!(b.dims.source_medium.as_deref(), Some("newsletter / email"));
    // The destination's tracking parameters are replaced (the template wins).
    let replaced: Vec<(&str, &str, &str)> = b
        .warnings
        .iter()
        .filter(|w| w.transform == Transform::DestinationParameter)
        .map(|w| (w.field.as_str(), w.from.as_str(), w.to.as_str()))
        .collect();
    assert_eq!(replaced, [("utm_source", "old", "newsletter"), ("utm_medium", "", "email"), ("cm_zz", "9", "")]);
    assert_eq!(dims_from(Some(&b.url), None, None), b.dims);
}

#[test]
fn special_characters_are_encoded() {
    let t = permissive();
    let f = fields(&[("utm_term", "a+b&c=d#e%f é/?"), ("utm_source", "s p")]);
    let b = build(&t, "http://x.example", &f, &|_: IdType, _: &str| true).unwrap();
    assert_eq!(b.url, "http://x.example/?utm_source=s+p&utm_term=a%2Bb%26c%3Dd%23e%25f+%C3%A9%2F%3F");
    assert_eq!(tracking_params(&b.url), vec![("utm_source".into(), "s p".into()), ("utm_term".into(), "a+b&c=d#e%f é/?".into())]);
}

#[test]
fn a_destination_without_fields_is_left_alone() {
    let b = build(&permissive(), "https://x.example/p?a=1&&b#f", &fields(&[]), &|_: IdType, _: &str| true).unwrap();
    assert_eq!(b.url, "https://x.example/p?a=1&&b#f");
    assert_eq!(b.composite_key, "-/SEQ--/-/-");
    assert_eq!(b.warnings, vec![]);
}

/// Every field the parser knows of and a few `cm_*`, without rules.
fn permissive() -> CompiledTaxonomy {
    let names = UTM_FIELDS.iter().copied().chain(["cm_campaign_id", "cm_journey_id", "cm_node_seq", "cm_variant", "cm_brand", "cm_a1"]);
    Taxonomy { version: 1, fields: names.map(|n| (n.to_owned(), FieldRule::default())).collect() }.compile().unwrap()
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ +&=#%?/;a-zA-Z0-9éß日\t\n\r-]{0,10}",
        "[+-]?0*[0-9]{1,4}",
        any::<String>(),
        Just(String::new()),
        Just("%zz%4%".to_owned()),
    ]
}

fn field_values() -> impl Strategy<Value = BTreeMap<String, String>> {
    let names = permissive().template().fields.keys().cloned().collect::<Vec<_>>();
    proptest::collection::vec(proptest::option::of(value()), names.len())
        .prop_map(move |vs| names.iter().zip(vs).filter_map(|(n, v)| v.map(|v| (n.clone(), v))).collect())
}

fn destination() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://brand.example/landing".to_owned()),
        Just("http://x.example/a b/?q=1&utm_source=old&&cm_node_seq=9#frag?utm_term=z".to_owned()),
        Just("https://user:p%40ss@x.example:8443/p?%75tm_campaign=enc&x=a+b#".to_owned()),
        Just("HTTPS://Bücher.example/?".to_owned()),
        "[a-z?#&= %+]{0,12}".prop_map(|tail| format!("https://x.example/{tail}")),
    ]
}

fn case_rule() -> impl Strategy<Value = CaseRule> {
    prop_oneof![Just(CaseRule::Lower), Just(CaseRule::Upper), Just(CaseRule::Keep)]
}

fn space_rule() -> impl Strategy<Value = SpaceRule> {
    prop_oneof![Just(SpaceRule::Underscore), Just(SpaceRule::Hyphen), Just(SpaceRule::Remove), Just(SpaceRule::Keep)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_built_url_parses_back_to_the_reported_dimensions(f in field_values(), dest in destination()) {
        let b = build(&permissive(), &dest, &f, &|_: IdType, _: &str| true).unwrap();
        let parsed = dims_from(Some(&b.url), None, None);
        prop_assert_eq!(&parsed, &b.dims);
        prop_assert_eq!(composite_key(&parsed), b.composite_key.clone());
        // The parameters are the non-empty fields, in the stable order.
        let mut want: Vec<(String, String)> = UTM_FIELDS.iter().filter_map(|n| f.get_key_value(*n)).map(|(n, v)| (n.clone(), v.clone())).collect();
        want.extend(f.iter().filter(|(n, _)| n.starts_with("cm_")).map(|(n, v)| (n.clone(), v.clone())));
        want.retain(|(_, v)| !v.is_empty());
        prop_assert_eq!(&parsed.params, &want);
        // The URL is already in WHATWG normal form, and keeps the fragment.
        let (reparsed, original) = (Url::parse(&b.url).unwrap(), Url::parse(&dest).unwrap());
        prop_assert_eq!(reparsed.as_str(), b.url.as_str());
        prop_assert_eq!(reparsed.fragment(), original.fragment());
    }

    #[test]
    fn transforms_round_trip_and_settle(f in field_values(), dest in destination(), rules in proptest::collection::vec((case_rule(), space_rule()), 12)) {
        let mut t = permissive().template().clone();
        for (rule, (case, spaces)) in t.fields.values_mut().zip(rules) {
            rule.case = case;
            rule.spaces = spaces;
        }
        t.fields.get_mut("utm_campaign").unwrap().concat = Some(Concat { fields: vec!["cm_brand".into(), "cm_a1".into()], separator: "_".into() });
        let t = t.compile().unwrap();
        let ids = |_: IdType, _: &str| true;
        let b = build(&t, &dest, &f, &ids).unwrap();
        prop_assert_eq!(dims_from(Some(&b.url), None, None), b.dims.clone());
        // Validating the final values again changes nothing.
        let v = validate(&t, &f, &ids);
        let again = validate(&t, &v.values, &ids);
        prop_assert_eq!(again.warnings, vec![]);
        prop_assert_eq!(again.values, v.values);
    }
}

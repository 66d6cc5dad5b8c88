//! Unit tests of taxonomy templates and validation: each error code and each
//! transform on a hand-made template, and each template error.

use super::*;
use std::collections::BTreeMap;

/// The hand-made template, as a `PUT .../registry/taxonomy` body.
const TEMPLATE: &str = r#"{
  "version": 3,
  "fields": {
    "utm_source": { "required": true, "case": "lower", "pick_list": ["google", "newsletter", "medscape", "test"], "prohibited": ["TEST"] },
    "utm_medium": { "required": true, "case": "lower",
                    "depends_on": { "field": "utm_source", "lists": { "google": ["cpc", "display"], "newsletter": ["email"] } } },
    "utm_campaign": { "concat": { "fields": ["cm_brand", "cm_campaign_id"], "separator": "_" }, "case": "lower" },
    "utm_content": { "registry": "content", "pattern": "CNT-[0-9]{4}-[0-9]{4}" },
    "utm_term": { "spaces": "underscore", "min_length": 2, "max_length": 6 },
    "utm_id": { "constant": "tl" },
    "cm_brand": { "case": "upper", "spaces": "remove", "prohibited": ["n/a"] },
    "cm_campaign_id": { "registry": "campaign" },
    "cm_journey_id": {},
    "cm_node_seq": { "pattern": "[0-9]+" },
    "cm_variant": { "spaces": "hyphen" }
  }
}"#;

pub(super) fn template() -> CompiledTaxonomy {
    serde_json::from_str::<Taxonomy>(TEMPLATE).unwrap().compile().unwrap()
}

pub(super) fn live(kind: IdType, id: &str) -> bool {
    matches!((kind, id), (IdType::Content, "CNT-2024-0030") | (IdType::Campaign, "CMP-EYL-2024-001"))
}

pub(super) fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn good() -> BTreeMap<String, String> {
    fields(&[
        ("utm_source", "google"),
        ("utm_medium", "cpc"),
        ("utm_content", "CNT-2024-0030"),
        ("utm_term", "ab"),
        ("cm_brand", "EYL"),
        ("cm_campaign_id", "CMP-EYL-2024-001"),
        ("cm_node_seq", "2"),
    ])
}

/// The errors of `good()` with `changes` applied (an empty value removes the field).
fn errors_with(changes: &[(&str, &str)]) -> Vec<(String, ErrorCode)> {
    let mut f = good();
    for (n, v) in changes {
        if v.is_empty() {
            f.remove(*n);
        } else {
            f.insert(n.to_string(), v.to_string());
        }
    }
    let v = validate(&template(), &f, &live);
    for e in &v.errors {
        assert!(e.message.contains(&e.field), "the message names the field: {e:?}");
    }
    v.errors.into_iter().map(|e| (e.field, e.code)).collect()
}

fn one(field: &str, code: ErrorCode) -> Vec<(String, ErrorCode)> {
    vec![(field.to_owned(), code)]
}

#[test]
fn a_good_set_passes_with_its_transforms_reported() {
    let v = validate(&template(), &good(), &live);
    assert_eq!(v.errors, vec![]);
    assert_eq!(v.version, 3);
    assert_eq!(v.values["utm_campaign"], "eyl_cmp-eyl-2024-001");
    assert_eq!(v.values["utm_id"], "tl");
    let w: Vec<(&str, Transform, &str, &str)> =
        v.warnings.iter().map(|w| (w.field.as_str(), w.transform, w.from.as_str(), w.to.as_str())).collect();
    assert_eq!(
        w,
        vec![
            ("utm_campaign", Transform::Concatenation, "", "EYL_CMP-EYL-2024-001"),
            ("utm_campaign", Transform::Case, "EYL_CMP-EYL-2024-001", "eyl_cmp-eyl-2024-001"),
            ("utm_id", Transform::Constant, "", "tl"),
        ]
    );
    assert!(v.into_valid().is_ok());
}

#[test]
fn each_transform() {
    let f = fields(&[
        ("utm_source", "Google"),
        ("utm_medium", "CPC"),
        ("utm_campaign", "typed by hand"),
        ("utm_content", "CNT-2024-0030"),
        ("utm_term", "a b"),
        ("utm_id", "other"),
        ("cm_brand", "ey l"),
        ("cm_campaign_id", "CMP-EYL-2024-001"),
        ("cm_variant", "v 1\t2"),
    ]);
    let v = validate(&template(), &f, &live);
    assert_eq!(v.errors, vec![]);
    let w = |field: &str, t: Transform| v.warnings.iter().find(|w| w.field == field && w.transform == t).map(|w| (w.from.as_str(), w.to.as_str()));
    assert_eq!(w("utm_source", Transform::Case), Some(("Google", "google")));
    assert_eq!(w("cm_brand", Transform::Case), Some(("ey l", "EY L")));
    assert_eq!(w("cm_brand", Transform::Spaces), Some(("EY L", "EYL")));
    assert_eq!(w("utm_term", Transform::Spaces), Some(("a b", "a_b")));
    assert_eq!(w("cm_variant", Transform::Spaces), Some(("v 1\t2", "v-1-2")));
    assert_eq!(w("utm_id", Transform::Constant), Some(("other", "tl")));
    // The concatenation uses the parts' final values and replaces a typed value.
    assert_eq!(w("utm_campaign", Transform::Concatenation), Some(("typed by hand", "EYL_CMP-EYL-2024-001")));
    assert_eq!(v.values["utm_campaign"], "eyl_cmp-eyl-2024-001");
    assert_eq!(v.warnings.len(), 9, "{:?}", v.warnings);
    // An absent part is left out of the concatenation; all absent → absent.
    let v = validate(&template(), &fields(&[("cm_campaign_id", "X")]), &live);
    assert_eq!(v.values.get("utm_campaign").map(String::as_str), Some("x"));
    let v = validate(&template(), &fields(&[]), &live);
    assert_eq!(v.values.get("utm_campaign"), None);
    // A computed field supplied as it ends up is no change.
    let v = validate(&template(), &fields(&[("utm_id", "tl"), ("cm_brand", "E"), ("utm_campaign", "e")]), &live);
    assert_eq!(v.warnings, vec![]);
}

#[test]
fn required() {
    assert_eq!(errors_with(&[("utm_source", "")]), one("utm_source", ErrorCode::Required));
    // Empty after the transforms is absent.
    assert_eq!(errors_with(&[("cm_brand", " "), ("cm_campaign_id", ""), ("utm_medium", "")]), one("utm_medium", ErrorCode::Required));
}

#[test]
fn not_in_list() {
    assert_eq!(errors_with(&[("utm_source", "bing"), ("utm_medium", "cpc")]), one("utm_source", ErrorCode::NotInList));
    // Dependent list: cpc is allowed for google, not for newsletter.
    assert_eq!(errors_with(&[("utm_source", "newsletter"), ("utm_medium", "cpc")]), one("utm_medium", ErrorCode::NotInList));
    assert_eq!(errors_with(&[("utm_source", "newsletter"), ("utm_medium", "EMAIL")]), vec![]);
    // No list for medscape: any medium.
    assert_eq!(errors_with(&[("utm_source", "medscape"), ("utm_medium", "banner")]), vec![]);
    // A field the template does not define.
    assert_eq!(errors_with(&[("cm_audience", "hcp")]), one("cm_audience", ErrorCode::NotInList));
    let v = validate(&template(), &fields(&[("utm_source", "newsletter"), ("utm_medium", "cpc")]), &live);
    let e = v.errors.iter().find(|e| e.field == "utm_medium").unwrap();
    assert!(e.message.contains("utm_source") && e.message.contains("\"email\""), "{}", e.message);
}

#[test]
fn pattern() {
    assert_eq!(errors_with(&[("cm_node_seq", "2a")]), one("cm_node_seq", ErrorCode::Pattern));
    // The pattern must match the whole value.
    assert_eq!(errors_with(&[("cm_node_seq", "x12")]), one("cm_node_seq", ErrorCode::Pattern));
}

#[test]
fn too_long_and_too_short_count_chars() {
    assert_eq!(errors_with(&[("utm_term", "abcdefg")]), one("utm_term", ErrorCode::TooLong));
    assert_eq!(errors_with(&[("utm_term", "a")]), one("utm_term", ErrorCode::TooShort));
    assert_eq!(errors_with(&[("utm_term", "éééééé")]), vec![]); // 6 chars, 12 bytes
}

#[test]
fn prohibited_is_case_insensitive() {
    assert_eq!(errors_with(&[("utm_source", "Test")]), one("utm_source", ErrorCode::Prohibited));
    assert_eq!(errors_with(&[("cm_brand", "n/ a")]), one("cm_brand", ErrorCode::Prohibited)); // → "N/A"
}

#[test]
fn unknown_id() {
    assert_eq!(
        errors_with(&[("utm_content", "CNT-2024-0031")]),
        one("utm_content", ErrorCode::UnknownId)
    );
    // The type matters: a content id is not a campaign id.
    assert_eq!(
        errors_with(&[("cm_campaign_id", "CNT-2024-0030")]),
        one("cm_campaign_id", ErrorCode::UnknownId)
    );
}

#[test]
fn every_failed_rule_is_reported() {
    let got = errors_with(&[("utm_content", "nope"), ("utm_source", "")]);
    let want = vec![
        ("utm_content".to_owned(), ErrorCode::Pattern),
        ("utm_content".to_owned(), ErrorCode::UnknownId),
        ("utm_source".to_owned(), ErrorCode::Required),
    ];
    assert_eq!(got, want);
}

#[test]
fn invalid_url() {
    for bad in ["/landing", "not a url", "ftp://x.example/", "mailto:a@b.example", "http://", ""] {
        let err = build(&template(), bad, &good(), &live).unwrap_err();
        assert_eq!((err[0].field.as_str(), err[0].code), (DESTINATION, ErrorCode::InvalidUrl), "{bad:?}");
        assert!(err[0].message.starts_with("destination: "));
    }
    // Reported together with the field errors.
    let err = build(&template(), "/x", &fields(&[]), &live).unwrap_err();
    assert_eq!(err.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), ["invalid_url", "required", "required"]);
}

fn template_errors(json: &str) -> Vec<TemplateError> {
    serde_json::from_str::<Taxonomy>(json).unwrap().compile().unwrap_err()
}

#[test]
fn template_errors_name_the_field() {
    let e = template_errors(r#"{"version":1,"fields":{"utm_term":{"pattern":"(unclosed"}}}"#);
    assert!(matches!(&e[..], [TemplateError::BadPattern { field, .. }] if field == "utm_term"), "{e:?}");
    assert_eq!(e[0].field(), "fields.utm_term");
    let e = template_errors(
        r#"{"version":1,"fields":{"utm_campaign":{"concat":{"fields":["cm_a"]}},"cm_a":{"concat":{"fields":["cm_b"]}},"cm_b":{"concat":{"fields":["cm_a"]}}}}"#,
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].to_string().contains("cm_a -> cm_b -> cm_a"), "{}", e[0]);
    let e = template_errors(r#"{"version":1,"fields":{"cm_x":{"concat":{"fields":["cm_x"]}}}}"#);
    assert!(matches!(&e[..], [TemplateError::ConcatCycle { field, .. }] if field == "cm_x"), "{e:?}");
    let e = template_errors(r#"{"version":1,"fields":{"utm_campaign":{"concat":{"fields":["cm_gone"],"separator":"-"}}}}"#);
    assert_eq!(e, vec![TemplateError::UnknownField { field: "utm_campaign".into(), rule: "concat", referenced: "cm_gone".into() }]);
    assert!(e[0].to_string().contains("cm_gone"));
    let e = template_errors(r#"{"version":1,"fields":{"utm_medium":{"depends_on":{"field":"utm_source","lists":{}}}}}"#);
    assert_eq!(e[0].field(), "fields.utm_medium");
    for (json, field) in [
        (r#"{"version":1,"fields":{"utm_foo":{}}}"#, "fields.utm_foo"),
        (r#"{"version":1,"fields":{"cm_Brand":{}}}"#, "fields.cm_Brand"),
        (r#"{"version":1,"fields":{"cm_":{}}}"#, "fields.cm_"),
        (r#"{"version":1,"fields":{"utm_term":{"min_length":3,"max_length":2}}}"#, "fields.utm_term"),
        (r#"{"version":1,"fields":{"utm_id":{"constant":"a","concat":{"fields":["utm_term"]}},"utm_term":{}}}"#, "fields.utm_id"),
        (r#"{"version":1,"fields":{"utm_source":{"pick_list":[]}}}"#, "fields.utm_source"),
        (r#"{"version":1,"fields":{"utm_source":{"depends_on":{"field":"utm_source","lists":{}}}}}"#, "fields.utm_source"),
    ] {
        let e = template_errors(json);
        assert_eq!(e.iter().map(TemplateError::field).collect::<Vec<_>>(), [field], "{json}");
        assert!(e[0].to_string().starts_with(field), "{}", e[0]);
    }
}

#[test]
fn template_body_shape() {
    let t: Taxonomy = serde_json::from_str(TEMPLATE).unwrap();
    let again: Taxonomy = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(t, again);
    for (json, unknown) in [
        (r#"{"version":1,"fields":{},"extra":1}"#, "extra"),
        (r#"{"version":1,"fields":{"utm_term":{"requried":true}}}"#, "requried"),
        (r#"{"version":1,"fields":{"utm_term":{"case":"title"}}}"#, "title"),
        (r#"{"version":1,"fields":{"utm_term":{"registry":"brand"}}}"#, "brand"),
    ] {
        let e = serde_json::from_str::<Taxonomy>(json).unwrap_err().to_string();
        assert!(e.contains(unknown), "{e}");
    }
    assert!(serde_json::from_str::<Taxonomy>(r#"{"fields":{}}"#).unwrap_err().to_string().contains("version"));
}

#[test]
fn versions_follow_each_other() {
    assert_eq!(check_version(None, 1), Ok(()));
    assert_eq!(check_version(Some(3), 4), Ok(()));
    assert_eq!(check_version(Some(3), 3), Err(TemplateError::Version { got: 3, expected: 4 }));
    assert_eq!(check_version(None, 2).unwrap_err().field(), "version");
}

mod concat_graphs {
    use super::*;
    use proptest::prelude::*;

    /// Whether the graph (field i concatenates the fields in `edges[i]`) has a
    /// cycle, by repeatedly removing fields whose parts are all removed.
    fn has_cycle(edges: &[Vec<usize>]) -> bool {
        let mut gone = vec![false; edges.len()];
        while let Some(i) = (0..edges.len()).find(|&i| !gone[i] && edges[i].iter().all(|&p| gone[p])) {
            gone[i] = true;
        }
        gone.contains(&false)
    }

    proptest! {
        #[test]
        fn compile_orders_parts_first_and_refuses_exactly_the_cycles(
            edges in (1usize..7).prop_flat_map(|n| proptest::collection::vec(proptest::collection::vec(0..n, 0..3), n))
        ) {
            let name = |i: usize| format!("cm_f{i}");
            let t = Taxonomy {
                version: 1,
                fields: edges.iter().enumerate().map(|(i, parts)| {
                    let concat = (!parts.is_empty()).then(|| Concat { fields: parts.iter().map(|&p| name(p)).collect(), separator: ".".into() });
                    (name(i), FieldRule { concat, ..FieldRule::default() })
                }).collect(),
            };
            match t.compile() {
                Ok(c) => {
                    prop_assert!(!has_cycle(&edges));
                    prop_assert_eq!(c.order.len(), edges.len());
                    let at = |n: &str| c.order.iter().position(|o| o == n).unwrap();
                    for (i, parts) in edges.iter().enumerate() {
                        for &p in parts {
                            prop_assert!(at(&name(p)) < at(&name(i)));
                        }
                    }
                }
                Err(e) => {
                    prop_assert!(has_cycle(&edges));
                    prop_assert!(e.iter().all(|e| matches!(e, TemplateError::ConcatCycle { .. })), "{:?}", e);
                }
            }
        }
    }
}

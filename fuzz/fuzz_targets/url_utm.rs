//! Fuzz target `url_utm`: an arbitrary landing URL (plus an optional
//! `entry_point` and `journey_id`, NUL-separated after it) through the tracking
//! parser. Must never panic, and:
//! - every parameter found is a non-empty `utm_*` / `cm_*` value, names unique;
//! - `cm_node_seq`, when it yields a sequence, is a canonical plain decimal
//!   (`0` or `-?[1-9][0-9]*`) equal in value to the raw parameter;
//! - the fragment and ASCII tab/newline never change the result;
//! - `form_decode` never grows its input and inverts a full percent-encoding;
//! - the dimensions follow events.md's table (campaign, journey, source / medium).
#![no_main]

use libfuzzer_sys::fuzz_target;
use touchline_fuzz::plain_decimal;
use std::borrow::Cow;
use touchline_actors::domain::tracking::{dims_from, form_decode, normalize_sequence, tracking_params, EntryPoint};

/// Percent-encodes every byte (the inverse `form_decode` must undo).
fn encode_all(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn check_form_decode(s: &str) {
    let d = form_decode(s);
    assert!(d.len() <= s.len(), "form_decode grew {s:?} to {d:?}");
    if !s.contains(['%', '+']) {
        assert!(matches!(d, Cow::Borrowed(_)) && d == s);
    }
    assert_eq!(form_decode(&encode_all(s)), s);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let url = parts.next().unwrap_or("");
    let mut next = || parts.next().map(str::to_owned);
    let (source, medium) = (next(), next());
    let (campaign, content, term, journey_id) = (next(), next(), next(), next());
    let entry_point = match (source, medium) {
        (Some(source), Some(medium)) => Some(EntryPoint { source, medium, campaign, content, term }),
        _ => None,
    };

    check_form_decode(url);

    let params = tracking_params(url);
    for (i, (n, v)) in params.iter().enumerate() {
        assert!(n.starts_with("utm_") || n.starts_with("cm_"), "name {n:?}");
        assert!(!v.is_empty(), "empty value for {n:?}");
        assert!(params[..i].iter().all(|(m, _)| m != n), "repeated {n:?}");
    }
    // Only the query counts: a fragment and removed tab/newline change nothing.
    let stripped: String = url.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    assert_eq!(tracking_params(&stripped), params);
    let with_fragment = format!("{url}#utm_source=frag&cm_node_seq=1");
    assert_eq!(tracking_params(&with_fragment), params);
    if !stripped.split('#').next().unwrap_or("").contains('?') {
        assert!(params.is_empty(), "params without a query: {params:?}");
    }

    let raw_seq = params.iter().find(|(n, _)| n == "cm_node_seq").map(|(_, v)| v.as_str());
    let d = dims_from(Some(url), entry_point.as_ref(), journey_id.as_deref());
    assert_eq!(d.sequence, raw_seq.and_then(normalize_sequence));
    if let Some(seq) = &d.sequence {
        assert!(plain_decimal(seq), "cm_node_seq {seq:?} from {raw_seq:?}");
        // Same value as the raw parameter: sign and leading zeros aside.
        let raw = raw_seq.unwrap();
        let raw_digits = raw.trim_start_matches(['+', '-']).trim_start_matches('0');
        assert_eq!(seq.trim_start_matches('-').trim_start_matches('0'), raw_digits);
        assert_eq!(seq.starts_with('-'), raw.starts_with('-') && !raw_digits.is_empty());
    }
    // The URL's parameters come first, unchanged; the entry point only fills.
    assert_eq!(&d.params[..params.len()], &params[..]);
    let get = |n: &str| d.params.iter().find(|(m, _)| m == n).map(|(_, v)| v.as_str());
    let jid = journey_id.as_deref().filter(|j| !j.is_empty());
    assert_eq!(d.campaign.as_deref(), get("cm_campaign_id").or(get("utm_campaign")).or(jid));
    assert_eq!(d.journey.as_deref(), get("cm_journey_id").or(jid));
    assert_eq!(d.content.as_deref(), get("utm_content"));
    assert_eq!(d.variant.as_deref(), get("cm_variant"));
    assert_eq!(d.source_medium.is_some(), get("utm_source").is_some() && get("utm_medium").is_some());
});

//! Landing-URL tracking parameters (`utm_*`, `cm_*`) and the touchpoint
//! dimensions derived from them (events.md, "Tracking parameters").
//!
//! Readings of the contract made here:
//! - The fragment starts at the first `#` and the query at the first `?` before
//!   it (WHATWG URL); a `?` inside the fragment starts no query. ASCII tab and
//!   newline are removed from the URL first, as the WHATWG parser does.
//! - Pairs are parsed as WHATWG `application/x-www-form-urlencoded`: split on
//!   `&`, name/value at the first `=`, `+` → space, `%XX` decoded, an invalid
//!   `%` sequence kept literally, invalid UTF-8 → U+FFFD.
//! - An empty value is skipped entirely, so it neither wins nor blocks a later
//!   non-empty repeat; among the non-empty occurrences the first wins.
//! - Repeats are resolved before `cm_node_seq` is checked: when the first
//!   non-empty `cm_node_seq` is not an integer, the sequence is absent.

use super::event::Dims;
use std::borrow::Cow;
use std::collections::HashSet;

/// The `entry_point` object of a `journey_start` event (UTM values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryPoint {
    pub source: String,
    pub medium: String,
    pub campaign: Option<String>,
    pub content: Option<String>,
    pub term: Option<String>,
}

/// Up to this many names taken, repeats are found by a scan.
const SCAN_NAMES: usize = 16;

fn is_tracking_name(name: &str) -> bool {
    name.starts_with("utm_") || name.starts_with("cm_")
}

/// The query of `url`: after the first `?`, before the first `#`.
fn query_of(url: &str) -> &str {
    let before_fragment = url.split_once('#').map_or(url, |(u, _)| u);
    before_fragment.split_once('?').map_or("", |(_, q)| q)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// WHATWG form-urlencoded decoding of one name or value: `+` → space, `%XX`
/// decoded, invalid `%` sequences kept, invalid UTF-8 → U+FFFD (borrowed when
/// there is nothing to decode). Also used for HTTP query strings.
pub fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Every non-empty `utm_*` / `cm_*` parameter of `url`'s query, decoded, the
/// first occurrence of each name winning, in URL order. Linear in the URL:
/// beyond [`SCAN_NAMES`] the names already taken are a set (a scan of `out`
/// per pair made a 64 KiB URL of ~6.5k distinct names cost ~50 ms; found while
/// writing the fuzz targets, FUZZING.md).
pub fn tracking_params(url: &str) -> Vec<(String, String)> {
    let cleaned: Cow<'_, str> = if url.contains(['\t', '\n', '\r']) {
        Cow::Owned(url.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect())
    } else {
        Cow::Borrowed(url)
    };
    let mut out: Vec<(String, String)> = Vec::new();
    // The names taken: a scan of `out` while it is short (no allocation for
    // the usual handful), a set once it is long.
    let mut taken: Option<HashSet<String>> = None;
    for pair in query_of(&cleaned).split('&') {
        if pair.is_empty() {
            continue;
        }
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = form_decode(raw_name);
        if !is_tracking_name(&name) || raw_value.is_empty() {
            continue;
        }
        let value = form_decode(raw_value);
        let seen = match &taken {
            Some(set) => set.contains(name.as_ref()),
            None => out.iter().any(|(n, _)| *n == name),
        };
        if value.is_empty() || seen {
            continue;
        }
        match &mut taken {
            Some(set) => drop(set.insert(name.to_string())),
            None if out.len() >= SCAN_NAMES => taken = Some(out.iter().map(|(n, _)| n.clone()).chain([name.to_string()]).collect()),
            None => {}
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    out
}

/// `cm_node_seq` as a plain decimal when it matches `[+-]?[0-9]+`
/// (`03` → `3`, `+5` → `5`, `-0` → `0`, `-007` → `-7`), any length.
pub fn normalize_sequence(s: &str) -> Option<String> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    Some(match (trimmed.is_empty(), neg) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{trimmed}"),
        (false, false) => trimmed.to_owned(),
    })
}

/// The dimensions of a touchpoint from its landing URL, the `entry_point` of a
/// `journey_start` (filling the `utm_*` values the URL lacks; empty strings
/// count as absent) and the event's `journey_id` (empty counts as absent).
pub fn dims_from(url: Option<&str>, entry_point: Option<&EntryPoint>, journey_id: Option<&str>) -> Dims {
    let mut params = url.map(tracking_params).unwrap_or_default();
    if let Some(ep) = entry_point {
        let fills = [
            ("utm_source", Some(&ep.source)),
            ("utm_medium", Some(&ep.medium)),
            ("utm_campaign", ep.campaign.as_ref()),
            ("utm_content", ep.content.as_ref()),
            ("utm_term", ep.term.as_ref()),
        ];
        for (name, value) in fills {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                if !params.iter().any(|(n, _)| n == name) {
                    params.push((name.to_owned(), v.clone()));
                }
            }
        }
    }
    let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let journey_id = journey_id.filter(|j| !j.is_empty());
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let source_medium = match (get("utm_source"), get("utm_medium")) {
        (Some(s), Some(m)) => Some(format!("{s} / {m}")),
        _ => None,
    };
    Dims {
        campaign: owned(get("cm_campaign_id").or_else(|| get("utm_campaign")).or(journey_id)),
        journey: owned(get("cm_journey_id").or(journey_id)),
        sequence: get("cm_node_seq").and_then(normalize_sequence),
        content: owned(get("utm_content")),
        variant: owned(get("cm_variant")),
        source_medium,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(url: &str) -> Vec<(String, String)> {
        tracking_params(url)
    }

    fn pv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn query_bounds() {
        assert_eq!(params("https://x.io/p?utm_source=a&utm_medium=b#utm_content=c"), pv(&[("utm_source", "a"), ("utm_medium", "b")]));
        assert_eq!(params("https://x.io/p?utm_source=a?b=c&cm_x=1"), pv(&[("utm_source", "a?b=c"), ("cm_x", "1")]));
        assert_eq!(params("https://x.io/p#frag?utm_source=a"), pv(&[]));
        assert_eq!(params("https://x.io/p"), pv(&[]));
        assert_eq!(params("?utm_source=a#"), pv(&[("utm_source", "a")]));
        assert_eq!(params("utm_source=a"), pv(&[])); // no `?`: no query
        assert_eq!(params("https://x.io/?utm_so\turce=a\n&cm_x=\r1"), pv(&[("utm_source", "a"), ("cm_x", "1")]));
    }

    #[test]
    fn decoding() {
        assert_eq!(params("/?utm_term=a+b%20c"), pv(&[("utm_term", "a b c")]));
        assert_eq!(params("/?utm_term=a%2Bb%2bc"), pv(&[("utm_term", "a+b+c")]));
        assert_eq!(params("/?utm_term=%zz%4%"), pv(&[("utm_term", "%zz%4%")]));
        assert_eq!(params("/?utm_term=%FFok"), pv(&[("utm_term", "\u{FFFD}ok")]));
        assert_eq!(params("/?utm_term=%C3%A9t%C3%A9"), pv(&[("utm_term", "été")]));
        assert_eq!(params("/?utm_term=été"), pv(&[("utm_term", "été")]));
        assert_eq!(params("/?%75tm_source=a&cm%5Fx=b"), pv(&[("utm_source", "a"), ("cm_x", "b")]));
        assert_eq!(params("/?utm_term=a=b"), pv(&[("utm_term", "a=b")]));
    }

    #[test]
    fn filtering_repeats_and_empties() {
        assert_eq!(
            params("/?a=1&utm_source=x&gclid=2&cm_brand=y&UTM_MEDIUM=z&utm_source=w"),
            pv(&[("utm_source", "x"), ("cm_brand", "y")])
        );
        // Empty values are absent: a later non-empty repeat wins.
        assert_eq!(params("/?utm_source=&utm_source=b&utm_source=c"), pv(&[("utm_source", "b")]));
        assert_eq!(params("/?utm_source&cm_x=&&cm_y=1"), pv(&[("cm_y", "1")]));
        assert_eq!(params("/?utm_source=+"), pv(&[("utm_source", " ")]));
    }

    #[test]
    fn many_parameters_take_linear_time() {
        // Regression (found writing the fuzz targets, FUZZING.md): repeats were
        // found by scanning every name taken so far, quadratic in the number of
        // parameters.
        let mut url = String::from("/?");
        for i in 0..100_000 {
            url.push_str(&format!("cm_{i}=v&"));
        }
        url.push_str("cm_0=late&utm_source=s");
        let t = std::time::Instant::now();
        let p = tracking_params(&url);
        assert!(t.elapsed() < std::time::Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(p.len(), 100_001);
        assert_eq!(p[0], ("cm_0".to_string(), "v".to_string())); // first still wins
        assert_eq!(p[99_999].0, "cm_99999");
        assert_eq!(p[100_000], ("utm_source".to_string(), "s".to_string()));
    }

    #[test]
    fn repeats_are_found_below_and_above_the_scan_limit() {
        for n in [SCAN_NAMES - 1, SCAN_NAMES, SCAN_NAMES + 1, 3 * SCAN_NAMES] {
            let first: Vec<String> = (0..n).map(|i| format!("cm_{i}=a{i}")).collect();
            let again: Vec<String> = (0..n).rev().map(|i| format!("cm_{i}=b{i}")).collect();
            let got = params(&format!("/?{}&{}&cm_{n}=c", first.join("&"), again.join("&")));
            let mut want: Vec<(String, String)> = (0..n).map(|i| (format!("cm_{i}"), format!("a{i}"))).collect();
            want.push((format!("cm_{n}"), "c".into()));
            assert_eq!(got, want, "{n} names");
        }
    }

    #[test]
    fn sequences() {
        assert_eq!(normalize_sequence("03").as_deref(), Some("3"));
        assert_eq!(normalize_sequence("+5").as_deref(), Some("5"));
        assert_eq!(normalize_sequence("-0").as_deref(), Some("0"));
        assert_eq!(normalize_sequence("000").as_deref(), Some("0"));
        assert_eq!(normalize_sequence("-007").as_deref(), Some("-7"));
        assert_eq!(normalize_sequence("123456789012345678901234567890").as_deref(), Some("123456789012345678901234567890"));
        for bad in ["x1", "", "+", "-", "1.0", " 1", "1 ", "--1", "+-1", "1e3", "١"] {
            assert_eq!(normalize_sequence(bad), None, "{bad:?}");
        }
        let d = dims_from(Some("/?cm_node_seq=x1&cm_node_seq=2"), None, None);
        assert_eq!(d.sequence, None); // first wins, then it is not an integer
        let d = dims_from(Some("/?cm_node_seq=&cm_node_seq=%2B07"), None, None);
        assert_eq!(d.sequence.as_deref(), Some("7"));
    }

    #[test]
    fn dimension_table() {
        let url = "https://brand.example/l?utm_source=google&utm_medium=cpc&utm_campaign=spring\
                   &utm_content=hero&cm_campaign_id=CMP-1&cm_journey_id=J-9&cm_node_seq=03&cm_variant=B";
        let d = dims_from(Some(url), None, Some("JRN"));
        assert_eq!(d.campaign.as_deref(), Some("CMP-1"));
        assert_eq!(d.journey.as_deref(), Some("J-9"));
        assert_eq!(d.sequence.as_deref(), Some("3"));
        assert_eq!(d.content.as_deref(), Some("hero"));
        assert_eq!(d.variant.as_deref(), Some("B"));
        assert_eq!(d.source_medium.as_deref(), Some("google / cpc"));
        assert_eq!(d.params.len(), 8);

        let d = dims_from(Some("/?utm_campaign=spring&utm_source=google"), None, Some("JRN"));
        assert_eq!(d.campaign.as_deref(), Some("spring"));
        assert_eq!(d.journey.as_deref(), Some("JRN"));
        assert_eq!(d.source_medium, None); // needs both parts

        let d = dims_from(None, None, Some("JRN"));
        assert_eq!((d.campaign.as_deref(), d.journey.as_deref()), (Some("JRN"), Some("JRN")));
        assert_eq!(dims_from(None, None, Some("")), Dims::default());
        assert_eq!(dims_from(Some("not a url"), None, None), Dims::default());
    }

    #[test]
    fn entry_point_fills_what_the_url_lacks() {
        let ep = EntryPoint {
            source: "newsletter".into(),
            medium: "email".into(),
            campaign: Some("ep-camp".into()),
            content: Some(String::new()),
            term: Some("t".into()),
        };
        let d = dims_from(Some("/?utm_source=google&utm_medium=&utm_content=hero"), Some(&ep), None);
        assert_eq!(d.source_medium.as_deref(), Some("google / email"));
        assert_eq!(d.campaign.as_deref(), Some("ep-camp"));
        assert_eq!(d.content.as_deref(), Some("hero"));
        assert_eq!(
            d.params,
            pv(&[
                ("utm_source", "google"),
                ("utm_content", "hero"),
                ("utm_medium", "email"),
                ("utm_campaign", "ep-camp"),
                ("utm_term", "t"),
            ])
        );
        let empty = EntryPoint::default();
        assert_eq!(dims_from(None, Some(&empty), None), Dims::default());
    }
}

//! Fuzz target `query_string`: the HTTP query-string parser and its typed
//! getters, i.e. the real `node/src/http/params.rs` compiled in here by path
//! (the `touchline-node` crate itself drags in librdkafka, hyper and the
//! cluster; `params.rs` needs only `touchline-actors` and `ApiError`, stubbed
//! below with the same `param` constructor). Also fuzzes `form_decode` and the
//! RFC 3339 parser directly. Must never panic, and:
//! - a parsed query holds only allowed names, each given once;
//! - every typed getter's `Ok` value respects its own bounds (integer range,
//!   positive finite numbers, `[A-Z]{3}`, ordered and bounded ranges, custom
//!   weights finite, non-negative and not all zero);
//! - an RFC 3339 timestamp that parses formats back to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use touchline_fuzz::check_ts;
use touchline_actors::domain::models::Model;
use touchline_actors::domain::timestamp::parse_rfc3339;
use touchline_actors::domain::tracking::form_decode;

/// Stand-in for `node/src/http/error.rs`'s `ApiError` (which also renders hyper
/// responses): only what `params.rs` uses, reached there as `super::error`.
mod error {
    #[derive(Debug)]
    pub struct ApiError {
        pub message: String,
    }
    impl ApiError {
        pub fn param(name: &str, message: impl std::fmt::Display) -> ApiError {
            ApiError { message: format!("parameter `{name}`: {message}") }
        }
    }
}

#[path = "../../node/src/http/params.rs"]
#[allow(dead_code)]
mod params;

use params::{path_segment, Params};

/// The attribution endpoints' parameters plus the others the routes accept.
const ALLOWED: &[&str] = &[
    "model", "from", "to", "group_by", "lookback_days", "half_life_hours", "currency", "weights", "granularity", "cohort", "by",
];

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };

    let _ = path_segment(query);
    let decoded = form_decode(query);
    assert!(decoded.len() <= query.len());
    if let Some(t) = parse_rfc3339(query) {
        check_ts(t);
    }
    if let Some(t) = parse_rfc3339(&decoded) {
        check_ts(t);
    }

    let p = match Params::parse(Some(query), ALLOWED) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.message.starts_with("parameter `"), "{}", e.message);
            return;
        }
    };
    // Only allowed names, each given once (a repeat is an error above).
    let mut seen = Vec::new();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let name = form_decode(pair.split_once('=').map_or(pair, |(k, _)| k)).into_owned();
        assert!(ALLOWED.contains(&name.as_str()), "{name:?} accepted");
        assert!(!seen.contains(&name), "{name:?} accepted twice");
        assert!(p.str(&name).is_some());
        seen.push(name);
    }

    for k in ["from", "to"] {
        if let Ok(Some(t)) = p.ts(k) {
            check_ts(t);
        }
    }
    if let Ok(Some(n)) = p.int("lookback_days", 0, 3650) {
        assert!((0..=3650).contains(&n));
    }
    if let Ok(Some(x)) = p.positive_f64("half_life_hours") {
        assert!(x.is_finite() && x > 0.0);
    }
    if let Ok(m) = p.model(Model::Linear) {
        assert!(p.str("model").map_or(m == Model::Linear, |s| s == m.as_str()));
    }
    if let Ok(g) = p.group_by("group_by") {
        assert!(p.str("group_by").map_or(true, |s| s == g.as_str()));
    }
    if let Ok(Some(c)) = p.currency() {
        assert!(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()));
    }
    if let Ok(mp) = p.model_params() {
        assert!(mp.half_life_secs > 0.0, "half life {}", mp.half_life_secs);
        if let Some(w) = mp.custom_weights {
            assert!(w.iter().all(|x| x.is_finite() && *x >= 0.0), "{w:?}");
            assert!(w.iter().sum::<f64>() > 0.0, "{w:?}");
        }
    }
    if let Ok((from, to)) = p.range_all() {
        assert!(from <= to);
    }
    if let Ok((from, to)) = p.range(30, 3660) {
        assert!(from <= to);
        assert!(to.secs_since(from) <= 3660.0 * 86_400.0);
    }
});

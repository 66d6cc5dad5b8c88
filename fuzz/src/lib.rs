//! Checks shared by the fuzz targets in `fuzz_targets/` (see FUZZING.md).

use touchline_actors::domain::timestamp::{format_rfc3339, parse_rfc3339, END_EPOCH_MILLIS};
use touchline_actors::domain::Ts;

/// `0` or `-?[1-9][0-9]*`: the canonical plain decimal a `cm_node_seq` becomes.
pub fn plain_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && !s.starts_with('-') || !digits.starts_with('0'))
}

/// A parsed instant is well-formed and, below year 10000, its RFC 3339
/// rendering parses back to it.
pub fn check_ts(t: Ts) {
    assert!(t.nanos < 1_000_000_000, "{t:?}");
    if t < Ts::from_millis(END_EPOCH_MILLIS) {
        assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t), "{t:?}");
    }
}

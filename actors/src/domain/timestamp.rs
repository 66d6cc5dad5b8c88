//! Event-time parsing and formatting: RFC 3339 strings and integer epoch
//! milliseconds into [`Ts`], and [`Ts`] back to RFC 3339 UTC (events.md,
//! "Decoding"). Civil-date arithmetic is done here, no date crate involved.

use super::event::Ts;

const SECS_PER_DAY: i64 = 86_400;

/// Epoch-ms of `0001-01-01T00:00:00Z`, the smallest accepted integer timestamp.
pub const MIN_EPOCH_MILLIS: i64 = -62_135_596_800_000;
/// Epoch-ms of `10000-01-01T00:00:00Z`; integer timestamps must be below it.
pub const END_EPOCH_MILLIS: i64 = 253_402_300_800_000;

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d`
/// (H. Hinnant's `days_from_civil`). `m` in 1..=12, `d` in 1..=31.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = ((m + 9) % 12) as i64; // March = 0
    let doy = (153 * mp + 2) / 5 + d as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// `n` ASCII digits at `b[at..]` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses an RFC 3339 date-time: `YYYY-MM-DD` then `T`, `t` or one space, then
/// `HH:MM:SS`, an optional fraction (at least one digit; digits past the 9th are
/// truncated) and a required offset `Z`, `z` or `±hh:mm`. Second 60 (leap
/// second) is rejected. The result is converted to UTC; an offset may push it
/// just outside years 0001..9999, which is kept as computed.
pub fn parse_rfc3339(s: &str) -> Option<Ts> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = i64::from(year);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }

    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        if n < 9 {
            nanos *= 10u32.pow((9 - n) as u32);
        }
    }

    let offset_secs = match *b.get(i)? {
        b'Z' | b'z' if b.len() == i + 1 => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 => {
            let oh = digits(b, i + 1, 2)?;
            let om = digits(b, i + 4, 2)?;
            if b[i + 3] != b':' || oh > 23 || om > 59 {
                return None;
            }
            let off = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };

    let days = days_from_civil(year, month, day);
    let secs = days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Some(Ts::new(secs, nanos))
}

/// An integer epoch-ms timestamp, accepted in `[0001-01-01, 10000-01-01)` UTC.
pub fn from_epoch_millis(ms: i64) -> Option<Ts> {
    (MIN_EPOCH_MILLIS..END_EPOCH_MILLIS).contains(&ms).then(|| Ts::from_millis(ms))
}

fn push_2(out: &mut String, v: u32) {
    out.push(char::from(b'0' + (v / 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SSZ`, with a fraction only when
/// `nanos != 0`, trailing zeros trimmed (`.5`, `.123456789`). Years outside
/// 0..=9999 (only reachable from hand-built values) are written with a sign or
/// more digits rather than truncated.
pub fn format_rfc3339(ts: Ts) -> String {
    let days = ts.secs.div_euclid(SECS_PER_DAY);
    let sod = ts.secs.rem_euclid(SECS_PER_DAY) as u32;
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(30);
    if (0..=9999).contains(&y) {
        let y = y as u32;
        push_2(&mut out, y / 100);
        push_2(&mut out, y % 100);
    } else {
        use std::fmt::Write;
        let _ = write!(out, "{}{:04}", if y < 0 { "-" } else { "" }, y.unsigned_abs());
    }
    out.push('-');
    push_2(&mut out, m);
    out.push('-');
    push_2(&mut out, d);
    out.push('T');
    push_2(&mut out, sod / 3600);
    out.push(':');
    push_2(&mut out, sod / 60 % 60);
    out.push(':');
    push_2(&mut out, sod % 60);
    // `Ts` promises nanos < 1e9; clamp defensively so formatting never misbehaves.
    let nanos = ts.nanos.min(999_999_999);
    if nanos != 0 {
        out.push('.');
        out.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Ts> {
        parse_rfc3339(s)
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        for z in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn parses_basic_forms() {
        let base = Ts::new(1_764_579_600, 0); // 2025-12-01T09:00:00Z
        assert_eq!(p("2025-12-01T09:00:00Z"), Some(base));
        assert_eq!(p("2025-12-01t09:00:00z"), Some(base));
        assert_eq!(p("2025-12-01 09:00:00Z"), Some(base));
        assert_eq!(p("2025-12-01T10:30:00+01:30"), Some(base));
        assert_eq!(p("2025-12-01T04:00:00-05:00"), Some(base));
        assert_eq!(p("2025-12-01T09:00:00-00:00"), Some(base));
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(Ts::new(0, 0)));
        assert_eq!(p("1969-12-31T23:59:59.5Z"), Some(Ts::new(-1, 500_000_000)));
    }

    #[test]
    fn fractions() {
        assert_eq!(p("1970-01-01T00:00:00.1Z"), Some(Ts::new(0, 100_000_000)));
        assert_eq!(p("1970-01-01T00:00:00.123456789Z"), Some(Ts::new(0, 123_456_789)));
        // Digits past the 9th are dropped, never rounded.
        assert_eq!(p("1970-01-01T00:00:00.1234567899999Z"), Some(Ts::new(0, 123_456_789)));
        assert_eq!(p("1970-01-01T00:00:00.9999999999+00:00"), Some(Ts::new(0, 999_999_999)));
        assert_eq!(p("1970-01-01T00:00:00.Z"), None);
        assert_eq!(p("1970-01-01T00:00:00.+00:00"), None);
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "",
            "2025-12-01T09:00:00",        // offset required
            "2025-12-01T09:00:60Z",       // leap second
            "2016-12-31T23:59:60Z",       // leap second, even a real one
            "2025-12-01T24:00:00Z",       // hour 24
            "2025-12-01T09:60:00Z",       // minute 60
            "2025-13-01T09:00:00Z",       // month 13
            "2025-00-01T09:00:00Z",       // month 0
            "2025-12-00T09:00:00Z",       // day 0
            "2025-02-29T09:00:00Z",       // not a leap year
            "1900-02-29T09:00:00Z",       // century, not a leap year
            "2025-04-31T09:00:00Z",       // 30-day month
            "2025-12-01T09:00:00+24:00",  // offset hour
            "2025-12-01T09:00:00+01:60",  // offset minute
            "2025-12-01T09:00:00+0100",   // offset without colon
            "2025-12-01T09:00:00+01",     // short offset
            "2025-12-01T09:00:00Zx",      // trailing garbage
            "2025-12-01T09:00:00Z ",      // trailing space
            " 2025-12-01T09:00:00Z",      // leading space
            "2025-12-01X09:00:00Z",       // separator
            "2025-12-01  09:00:00Z",      // two spaces
            "25-12-01T09:00:00Z",         // 2-digit year
            "+2025-12-01T09:00:00Z",      // signed year
            "2025-1-01T09:00:00Z",        // 1-digit month
            "2025-12-01T9:00:00Z",        // 1-digit hour
            "2025-12-01T09:00:00,5Z",     // comma fraction
            "2025-12-01T09:00Z",          // no seconds
            "２０２５-12-01T09:00:00Z", // non-ASCII digits
        ] {
            assert_eq!(p(s), None, "{s:?}");
        }
    }

    #[test]
    fn leap_years_and_range() {
        assert!(p("2024-02-29T00:00:00Z").is_some());
        assert!(p("2000-02-29T00:00:00Z").is_some());
        assert!(p("0000-02-29T00:00:00Z").is_some()); // year 0 is a leap year
        assert_eq!(p("0001-01-01T00:00:00Z"), Some(Ts::new(MIN_EPOCH_MILLIS / 1000, 0)));
        assert_eq!(p("9999-12-31T23:59:59.999999999Z"), Some(Ts::new(END_EPOCH_MILLIS / 1000 - 1, 999_999_999)));
        // Offsets may move the instant out of 0001..9999; that is computed, not rejected.
        assert_eq!(p("9999-12-31T23:00:00-01:00"), Some(Ts::new(END_EPOCH_MILLIS / 1000, 0)));
        assert_eq!(p("0001-01-01T00:00:00+01:00"), Some(Ts::new(MIN_EPOCH_MILLIS / 1000 - 3600, 0)));
    }

    #[test]
    fn epoch_millis_bounds() {
        assert_eq!(from_epoch_millis(0), Some(Ts::new(0, 0)));
        assert_eq!(from_epoch_millis(-1), Some(Ts::new(-1, 999_000_000)));
        assert_eq!(from_epoch_millis(1_700_000_000_123), Some(Ts::new(1_700_000_000, 123_000_000)));
        assert_eq!(from_epoch_millis(END_EPOCH_MILLIS - 1), p("9999-12-31T23:59:59.999Z"));
        assert_eq!(from_epoch_millis(END_EPOCH_MILLIS), None);
        assert_eq!(from_epoch_millis(MIN_EPOCH_MILLIS), p("0001-01-01T00:00:00Z"));
        assert_eq!(from_epoch_millis(MIN_EPOCH_MILLIS - 1), None);
        assert_eq!(from_epoch_millis(i64::MAX), None);
        assert_eq!(from_epoch_millis(i64::MIN), None);
    }

    #[test]
    fn formats() {
        assert_eq!(format_rfc3339(Ts::new(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(Ts::new(1_764_579_600, 500_000_000)), "2025-12-01T09:00:00.5Z");
        assert_eq!(format_rfc3339(Ts::new(1_764_579_600, 123_456_789)), "2025-12-01T09:00:00.123456789Z");
        assert_eq!(format_rfc3339(Ts::new(1_764_579_600, 1_000)), "2025-12-01T09:00:00.000001Z");
        assert_eq!(format_rfc3339(Ts::new(-1, 999_000_000)), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_rfc3339(Ts::new(MIN_EPOCH_MILLIS / 1000, 0)), "0001-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(Ts::new(END_EPOCH_MILLIS / 1000 - 1, 0)), "9999-12-31T23:59:59Z");
        assert_eq!(format_rfc3339(Ts::new(END_EPOCH_MILLIS / 1000, 0)), "10000-01-01T00:00:00Z");
        assert_eq!(Ts::new(0, 0).to_string(), "1970-01-01T00:00:00Z");
        // Extreme hand-built values must not panic.
        let _ = format_rfc3339(Ts::new(i64::MIN, 0));
        let _ = format_rfc3339(Ts::new(i64::MAX, 999_999_999));
    }

    #[test]
    fn format_parse_round_trip() {
        for (secs, nanos) in [(0, 0), (1_764_579_600, 1), (-62_135_596_800, 0), (253_402_300_799, 999_999_999), (951_782_400, 40)] {
            let ts = Ts::new(secs, nanos);
            assert_eq!(p(&format_rfc3339(ts)), Some(ts));
        }
    }
}

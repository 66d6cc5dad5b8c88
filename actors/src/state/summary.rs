//! A person's path summary: every touchpoint and conversion of the person in
//! one compact value, what a data-driven or cached report reads instead of the
//! person's timeline and conversion keys.
//!
//! Why: a report over a new range must read every person active in it. From
//! the records that is ≈ 5 keys and ≈ 600 bytes of MessagePack per person
//! (event ids, customer ids, URL parameters); measured at 1 M persons, 8–10 s
//! for a full range. The summary keeps only what a path needs — time, channel,
//! the six grouping dimensions (strings interned per person), conversion value
//! and currency — so a full scan reads one key of ≈ 50–100 bytes per person.
//!
//! The summary is a pure function of the person's records ([`Summary::of`]):
//! touchpoints and conversions each in key order, (ts, event_id). The write
//! path keeps it so: an appended record is inserted at its time
//! ([`Summary::insert_touch`]); a record whose time equals one already there
//! (its place among equal times depends on event ids, which the summary does
//! not keep) and every move or deletion rebuild it from the records. The one
//! exception is the retention sweep, which trims records behind the tenant's
//! horizon from the summary apart from the batch that may rewrite it: a record
//! behind the horizon can therefore linger in a summary until the next pass,
//! which queries never see (they clamp to the horizon).
//!
//! A person with more than [`MAX_RECORDS`] records is stored as the
//! [`OVERFLOW`] marker: readers then read its records, as before summaries.
//!
//! Layout (`VERSION` 1; varints are LEB128, times are zigzag deltas of the
//! seconds from the previous record of the same list, then nanoseconds):
//! `version | n_strings {len bytes}* | n_touches {Δsecs nanos channel mask
//! {string}*}* | n_convs {Δsecs nanos value_f64_le currency_string}*`.

use crate::domain::{Channel, Dims, GroupBy, Ts, NONE_KEY};
use crate::state::{ConvRec, TouchRec};
use touchline_storage::StorageError;

const VERSION: u8 = 1;

/// Most records a summary holds. A person with more (a bot, a shared device)
/// gets the [`OVERFLOW`] marker instead, and readers go to its records: the
/// write path re-encodes a summary per batch, which must stay bounded.
pub const MAX_RECORDS: usize = 1024;

/// The stored value of a person with more than [`MAX_RECORDS`] records.
pub const OVERFLOW: &[u8] = &[2];

/// Whether a stored value is the [`OVERFLOW`] marker.
/// [`Summary::content`]: touchpoints (time, channel, key per grouping) and
/// conversions (time, value bits, currency).
pub type Content = (Vec<(Ts, Channel, Vec<String>)>, Vec<(Ts, u64, String)>);

pub fn is_overflow(v: &[u8]) -> bool {
    v == OVERFLOW
}

/// The grouping dimensions in mask-bit order.
const DIMS: usize = 6;

/// A touchpoint as the summary keeps it: `dims[i]` is a string index + 1 (0:
/// absent), in the order campaign, journey, sequence, content, variant,
/// source_medium.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct STouch {
    pub ts: Ts,
    pub channel: Channel,
    dims: [u32; DIMS],
}

/// A conversion as the summary keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SConv {
    pub ts: Ts,
    pub value: f64,
    currency: u32,
}

/// A summary that does not decode: the value is corrupt.
#[derive(Debug, PartialEq, Eq)]
pub struct BadSummary;

/// One person's summary; see the module docs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    strings: Vec<String>,
    pub touches: Vec<STouch>,
    pub convs: Vec<SConv>,
}

impl Summary {
    /// The summary of a person's records, each list in key order.
    pub fn of<'a>(touches: impl IntoIterator<Item = &'a TouchRec>, convs: impl IntoIterator<Item = &'a ConvRec>) -> Summary {
        let mut s = Summary::default();
        for t in touches {
            let dims = s.intern_dims(&t.touch.dims);
            s.touches.push(STouch { ts: t.ts, channel: t.touch.channel, dims });
        }
        for c in convs {
            let currency = s.intern(&c.conversion.currency);
            s.convs.push(SConv { ts: c.ts, value: c.conversion.value, currency });
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.touches.is_empty() && self.convs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.touches.len() + self.convs.len()
    }

    /// The value to store: the encoding, or [`OVERFLOW`] beyond [`MAX_RECORDS`].
    pub fn stored(&self) -> Vec<u8> {
        if self.len() > MAX_RECORDS {
            OVERFLOW.to_vec()
        } else {
            self.encode()
        }
    }

    /// Every record's time: touchpoints, then conversions.
    pub fn times(&self) -> impl Iterator<Item = Ts> + '_ {
        self.touches.iter().map(|t| t.ts).chain(self.convs.iter().map(|c| c.ts))
    }

    /// Inserts a touchpoint at its time; `false` (nothing changed) when a
    /// touchpoint with the same time is there (the caller rebuilds).
    pub fn insert_touch(&mut self, rec: &TouchRec) -> bool {
        let at = self.touches.partition_point(|t| t.ts < rec.ts);
        if self.touches.get(at).is_some_and(|t| t.ts == rec.ts) {
            return false;
        }
        let dims = self.intern_dims(&rec.touch.dims);
        self.touches.insert(at, STouch { ts: rec.ts, channel: rec.touch.channel, dims });
        true
    }

    /// Inserts a conversion at its time; `false` as for touchpoints.
    pub fn insert_conv(&mut self, rec: &ConvRec) -> bool {
        let at = self.convs.partition_point(|c| c.ts < rec.ts);
        if self.convs.get(at).is_some_and(|c| c.ts == rec.ts) {
            return false;
        }
        let currency = self.intern(&rec.conversion.currency);
        self.convs.insert(at, SConv { ts: rec.ts, value: rec.conversion.value, currency });
        true
    }

    /// Drops every record before `horizon`; whether any was dropped. Strings
    /// only those records used are dropped too.
    pub fn trim_before(&mut self, horizon: Ts) -> bool {
        let (t, c) = (self.touches.partition_point(|x| x.ts < horizon), self.convs.partition_point(|x| x.ts < horizon));
        if t == 0 && c == 0 {
            return false;
        }
        let old = std::mem::take(self);
        let mut s = Summary::default();
        for x in &old.touches[t..] {
            let mut dims = [0; DIMS];
            for (d, &o) in dims.iter_mut().zip(&x.dims) {
                *d = if o == 0 { 0 } else { s.intern(&old.strings[o as usize - 1]) + 1 };
            }
            s.touches.push(STouch { dims, ..*x });
        }
        for x in &old.convs[c..] {
            let currency = s.intern(&old.strings[x.currency as usize]);
            s.convs.push(SConv { currency, ..*x });
        }
        *self = s;
        true
    }

    /// The report key of `t` under `group_by`, as `TouchInfo::key`.
    pub fn key(&self, t: &STouch, group_by: GroupBy) -> &str {
        let i = match group_by {
            GroupBy::Channel => return t.channel.as_str(),
            GroupBy::Campaign => 0,
            GroupBy::Journey => 1,
            GroupBy::Sequence => 2,
            GroupBy::Content => 3,
            GroupBy::Variant => 4,
            GroupBy::SourceMedium => 5,
        };
        match t.dims[i] {
            0 => NONE_KEY,
            s => &self.strings[s as usize - 1],
        }
    }

    /// The journey of `t` and its composite key, as `TouchInfo`'s
    /// `dims.journey` and `composite_key()`.
    pub fn journey_and_composite(&self, t: &STouch) -> (Option<&str>, String) {
        let dim = |i: usize| match t.dims[i] {
            0 => None,
            s => Some(self.strings[s as usize - 1].as_str()),
        };
        let composite = format!("{}/SEQ-{}/{}/{}", dim(1).unwrap_or("-"), dim(2).unwrap_or("-"), dim(3).unwrap_or("-"), dim(4).unwrap_or("-"));
        (dim(1), composite)
    }

    pub fn currency(&self, c: &SConv) -> &str {
        &self.strings[c.currency as usize]
    }

    /// What the summary says, whatever order its strings were interned in
    /// (which depends on the order records arrived): each touchpoint's time,
    /// channel and key per grouping, each conversion's time, value bits and
    /// currency. Two summaries of the same records have equal contents.
    pub fn content(&self) -> Content {
        let touches = self.touches.iter().map(|t| (t.ts, t.channel, GroupBy::ALL.iter().map(|g| self.key(t, *g).to_string()).collect())).collect();
        let convs = self.convs.iter().map(|c| (c.ts, c.value.to_bits(), self.currency(c).to_string())).collect();
        (touches, convs)
    }

    fn intern(&mut self, s: &str) -> u32 {
        match self.strings.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                self.strings.push(s.to_string());
                (self.strings.len() - 1) as u32
            }
        }
    }

    fn intern_dims(&mut self, d: &Dims) -> [u32; DIMS] {
        let all = [&d.campaign, &d.journey, &d.sequence, &d.content, &d.variant, &d.source_medium];
        let mut out = [0; DIMS];
        for (o, v) in out.iter_mut().zip(all) {
            if let Some(v) = v {
                *o = self.intern(v) + 1;
            }
        }
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + self.strings.iter().map(|s| s.len() + 1).sum::<usize>() + self.touches.len() * 6 + self.convs.len() * 14);
        b.push(VERSION);
        varint(&mut b, self.strings.len() as u64);
        for s in &self.strings {
            varint(&mut b, s.len() as u64);
            b.extend_from_slice(s.as_bytes());
        }
        varint(&mut b, self.touches.len() as u64);
        let mut prev = 0i64;
        for t in &self.touches {
            put_ts(&mut b, &mut prev, t.ts);
            b.push(t.channel as u8);
            let mask = t.dims.iter().enumerate().fold(0u8, |m, (i, &d)| if d == 0 { m } else { m | 1 << i });
            b.push(mask);
            for &d in t.dims.iter().filter(|&&d| d != 0) {
                varint(&mut b, u64::from(d - 1));
            }
        }
        varint(&mut b, self.convs.len() as u64);
        let mut prev = 0i64;
        for c in &self.convs {
            put_ts(&mut b, &mut prev, c.ts);
            b.extend_from_slice(&c.value.to_le_bytes());
            varint(&mut b, u64::from(c.currency));
        }
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<Summary, BadSummary> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.u8()? != VERSION {
            return Err(BadSummary);
        }
        let n = r.len()?;
        let mut strings = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.len()?;
            let s = r.take(len)?;
            strings.push(std::str::from_utf8(s).map_err(|_| BadSummary)?.to_string());
        }
        let index = |i: u64| if (i as usize) < n { Ok(i as u32) } else { Err(BadSummary) };
        let nt = r.len()?;
        let mut touches = Vec::with_capacity(nt);
        let mut prev = 0i64;
        for _ in 0..nt {
            let ts = r.ts(&mut prev)?;
            let channel = *Channel::ALL.get(r.u8()? as usize).ok_or(BadSummary)?;
            let mask = r.u8()?;
            let mut dims = [0; DIMS];
            for (i, d) in dims.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *d = index(r.varint()?)? + 1;
                }
            }
            touches.push(STouch { ts, channel, dims });
        }
        let nc = r.len()?;
        let mut convs = Vec::with_capacity(nc);
        let mut prev = 0i64;
        for _ in 0..nc {
            let ts = r.ts(&mut prev)?;
            let value = f64::from_le_bytes(r.take(8)?.try_into().map_err(|_| BadSummary)?);
            let currency = index(r.varint()?)?;
            convs.push(SConv { ts, value, currency });
        }
        if r.at != bytes.len() {
            return Err(BadSummary);
        }
        Ok(Summary { strings, touches, convs })
    }
}

/// The storage error for the unreadable summary stored at `k`.
pub fn unreadable(k: &[u8]) -> StorageError {
    StorageError::Corrupt { key: String::from_utf8_lossy(k).into_owned(), detail: "unreadable path summary".into() }
}

/// Calls `f` with the time of every record of an encoded summary (touchpoints,
/// then conversions), without building it.
pub fn for_each_ts(bytes: &[u8], mut f: impl FnMut(Ts)) -> Result<(), BadSummary> {
    let mut r = Reader { b: bytes, at: 0 };
    if r.u8()? != VERSION {
        return Err(BadSummary);
    }
    for _ in 0..r.len()? {
        let len = r.len()?;
        r.take(len)?;
    }
    let mut prev = 0i64;
    for _ in 0..r.len()? {
        f(r.ts(&mut prev)?);
        r.u8()?;
        let mask = r.u8()?;
        for _ in 0..mask.count_ones() {
            r.varint()?;
        }
    }
    let mut prev = 0i64;
    for _ in 0..r.len()? {
        f(r.ts(&mut prev)?);
        r.take(8)?;
        r.varint()?;
    }
    if r.at != bytes.len() {
        return Err(BadSummary);
    }
    Ok(())
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push(v as u8 | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_ts(b: &mut Vec<u8>, prev: &mut i64, ts: Ts) {
    let d = ts.secs.wrapping_sub(*prev);
    *prev = ts.secs;
    varint(b, ((d << 1) ^ (d >> 63)) as u64);
    varint(b, u64::from(ts.nanos));
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, BadSummary> {
        let x = *self.b.get(self.at).ok_or(BadSummary)?;
        self.at += 1;
        Ok(x)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], BadSummary> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or(BadSummary)?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn varint(&mut self) -> Result<u64, BadSummary> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = self.u8()?;
            v |= u64::from(x & 0x7f) << shift;
            if x < 0x80 {
                return Ok(v);
            }
        }
        Err(BadSummary)
    }
    /// A count or length: never more than the bytes left (each item takes one).
    fn len(&mut self) -> Result<usize, BadSummary> {
        let n = self.varint()?;
        if n > (self.b.len() - self.at) as u64 {
            return Err(BadSummary);
        }
        Ok(n as usize)
    }
    fn ts(&mut self, prev: &mut i64) -> Result<Ts, BadSummary> {
        let z = self.varint()?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let secs = prev.wrapping_add(d);
        *prev = secs;
        let nanos = u32::try_from(self.varint()?).ok().filter(|&n| n < 1_000_000_000).ok_or(BadSummary)?;
        Ok(Ts::new(secs, nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConversionInfo, TouchInfo};
    use proptest::prelude::*;

    fn touch(ts: Ts, eid: &str, ch: usize, campaign: Option<&str>, seq: Option<&str>) -> TouchRec {
        let dims = Dims { campaign: campaign.map(Into::into), sequence: seq.map(Into::into), source_medium: Some("google / cpc".into()), ..Dims::default() };
        TouchRec { event_id: eid.into(), ts, customer_id: "c".into(), touch: TouchInfo { channel: Channel::ALL[ch % 10], interaction_type: "click".into(), dims } }
    }

    fn conv(ts: Ts, eid: &str, value: f64, currency: &str) -> ConvRec {
        ConvRec { event_id: eid.into(), ts, customer_id: "c".into(), conversion: ConversionInfo { value, currency: currency.into(), conversion_type: None }, late: false }
    }

    #[test]
    fn round_trips_and_answers_keys_as_the_records() {
        let ts = [Ts::new(-5, 7), Ts::new(100, 0), Ts::new(1_767_225_600, 999_999_999)];
        let touches = vec![touch(ts[0], "a", 3, Some("spring"), None), touch(ts[1], "b", 9, None, Some("2")), touch(ts[2], "c", 0, Some("spring"), Some("é"))];
        let convs = vec![conv(ts[1], "x", 12.5, "EUR"), conv(ts[2], "y", -0.0, "USD")];
        let s = Summary::of(&touches, &convs);
        let back = Summary::decode(&s.encode()).unwrap();
        assert_eq!(back, s);
        for (t, r) in back.touches.iter().zip(&touches) {
            assert_eq!((t.ts, t.channel), (r.ts, r.touch.channel));
            for g in GroupBy::ALL {
                assert_eq!(back.key(t, g), r.touch.key(g), "{g:?}");
            }
        }
        let mut times = Vec::new();
        for_each_ts(&s.encode(), |t| times.push(t)).unwrap();
        assert_eq!(times, [ts[0], ts[1], ts[2], ts[1], ts[2]]);
        let got: Vec<(Ts, f64, &str)> = back.convs.iter().map(|c| (c.ts, c.value, back.currency(c))).collect();
        assert_eq!(got, vec![(ts[1], 12.5, "EUR"), (ts[2], -0.0, "USD")]);
        assert_eq!(back.times().min(), Some(ts[0]));
        assert_eq!(Summary::decode(&Summary::default().encode()).unwrap(), Summary::default());
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        let s = Summary::of(&[touch(Ts::new(1, 0), "a", 1, Some("x"), None)], &[conv(Ts::new(2, 0), "b", 1.0, "USD")]);
        let bytes = s.encode();
        for cut in 0..bytes.len() {
            assert_eq!(Summary::decode(&bytes[..cut]), Err(BadSummary), "cut at {cut}");
            assert_eq!(for_each_ts(&bytes[..cut], |_| {}), Err(BadSummary), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(Summary::decode(&extra), Err(BadSummary));
        let mut version = bytes;
        version[0] = 9;
        assert_eq!(Summary::decode(&version), Err(BadSummary));
    }

    #[test]
    fn equal_times_are_left_to_a_rebuild() {
        let mut s = Summary::of(&[touch(Ts::new(10, 0), "b", 1, None, None)], &[]);
        assert!(!s.insert_touch(&touch(Ts::new(10, 0), "a", 2, None, None)));
        assert!(s.insert_touch(&touch(Ts::new(10, 1), "a", 2, None, None)));
        assert!(s.insert_conv(&conv(Ts::new(10, 0), "a", 1.0, "USD")), "conversions are a list apart");
        assert!(!s.insert_conv(&conv(Ts::new(10, 0), "b", 1.0, "USD")));
    }

    proptest! {
        /// Inserting records one by one in any order (a rebuild on an equal
        /// time), then trimming, equals the summary of the final records.
        #[test]
        fn inserts_and_trims_equal_the_summary_of_the_records(
            recs in prop::collection::vec((0i64..40, 0u32..3, any::<bool>(), 0usize..10, prop::option::of(0u8..3)), 0..40),
            horizon in 0i64..45,
        ) {
            let mut touches: Vec<TouchRec> = Vec::new();
            let mut convs: Vec<ConvRec> = Vec::new();
            let mut s = Summary::default();
            for (i, (secs, nanos, is_conv, ch, camp)) in recs.into_iter().enumerate() {
                let ts = Ts::new(secs, nanos);
                let eid = format!("e{:02}", 99 - i);
                let campaign = camp.map(|c| format!("camp{c}"));
                let ok = if is_conv {
                    let r = conv(ts, &eid, ch as f64, if ch % 2 == 0 { "USD" } else { "EUR" });
                    let ok = s.insert_conv(&r);
                    convs.push(r);
                    ok
                } else {
                    let r = touch(ts, &eid, ch, campaign.as_deref(), None);
                    let ok = s.insert_touch(&r);
                    touches.push(r);
                    ok
                };
                touches.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
                convs.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
                if !ok {
                    s = Summary::of(&touches, &convs);
                }
                let fresh = Summary::of(&touches, &convs);
                // Same records in the same order (string numbering may differ).
                prop_assert_eq!(s.touches.len(), fresh.touches.len());
                for (a, b) in s.touches.iter().zip(&fresh.touches) {
                    prop_assert_eq!((a.ts, a.channel, s.key(a, GroupBy::Campaign)), (b.ts, b.channel, fresh.key(b, GroupBy::Campaign)));
                }
                let cs: Vec<_> = s.convs.iter().map(|c| (c.ts, c.value, s.currency(c))).collect();
                let cf: Vec<_> = fresh.convs.iter().map(|c| (c.ts, c.value, fresh.currency(c))).collect();
                prop_assert_eq!(cs, cf);
            }
            let h = Ts::new(horizon, 0);
            s.trim_before(h);
            touches.retain(|t| t.ts >= h);
            convs.retain(|c| c.ts >= h);
            let fresh = Summary::of(&touches, &convs);
            prop_assert_eq!(Summary::decode(&s.encode()).unwrap().encode(), s.encode());
            prop_assert_eq!(s.touches.len(), fresh.touches.len());
            for (a, b) in s.touches.iter().zip(&fresh.touches) {
                for g in GroupBy::ALL {
                    prop_assert_eq!((a.ts, a.channel, s.key(a, g)), (b.ts, b.channel, fresh.key(b, g)));
                }
            }
            let cs: Vec<_> = s.convs.iter().map(|c| (c.ts, c.value, s.currency(c))).collect();
            let cf: Vec<_> = fresh.convs.iter().map(|c| (c.ts, c.value, fresh.currency(c))).collect();
            prop_assert_eq!(cs, cf);
            prop_assert!(s.strings.len() <= fresh.strings.len(), "no string outlives its records");
        }
    }
}

//! Many persons' parts of a report in one pass: for a sorted list of persons,
//! one cursor over the tenant's conversions and one over its timelines, each
//! moved forward person by person (a step when the next person is near, a seek
//! otherwise). Each person's records are read once: its conversions in range,
//! then its touchpoints from the earliest lookback start to the end of the
//! range, out of which [`assemble`] cuts every conversion's lookback path and
//! the non-converting tail exactly as [`super::datadriven::all_persons`] and
//! [`super::attribution::conversions_with_paths`] define them.

use super::attribution::AttributionQuery;
use super::consent::ConsentCache;
use super::datadriven::PersonPaths;
use super::QueryError;
use crate::domain::retention::clamp_from;
use crate::domain::{Channel, GroupBy, Ts, NONE_KEY};
use serde::Deserialize;
use touchline_storage::keys::{prefix_end, KeyBuf, Space};
use touchline_storage::{Cursor, StorageError, Store};

/// The fields of a stored `TouchRec` a part needs, borrowed from the value
/// (the rest — event id, customer id, interaction, URL parameters — is skipped
/// without allocating).
#[derive(Deserialize)]
struct TouchView<'a> {
    ts: Ts,
    #[serde(borrow)]
    touch: TouchInfoView<'a>,
}

#[derive(Deserialize)]
struct TouchInfoView<'a> {
    channel: Channel,
    #[serde(borrow)]
    dims: DimsView<Option<&'a str>>,
}

/// The grouping dimensions (`S` is `Option<&str>`: generic, so the borrow
/// needs no attribute per field).
#[derive(Deserialize, Default)]
#[serde(default, bound = "S: Deserialize<'de> + Default")]
struct DimsView<S> {
    campaign: S,
    journey: S,
    sequence: S,
    content: S,
    variant: S,
    source_medium: S,
}

impl TouchInfoView<'_> {
    /// As `TouchInfo::key` (a test holds them equal).
    fn key(&self, group_by: GroupBy) -> &str {
        let d = &self.dims;
        let v = match group_by {
            GroupBy::Channel => return self.channel.as_str(),
            GroupBy::Campaign => d.campaign,
            GroupBy::Journey => d.journey,
            GroupBy::Sequence => d.sequence,
            GroupBy::Content => d.content,
            GroupBy::Variant => d.variant,
            GroupBy::SourceMedium => d.source_medium,
        };
        v.unwrap_or(NONE_KEY)
    }
}

/// The fields of a stored `ConvRec` a part needs.
#[derive(Deserialize)]
struct ConvView<'a> {
    ts: Ts,
    #[serde(borrow)]
    conversion: ConversionView<'a>,
}

#[derive(Deserialize)]
struct ConversionView<'a> {
    value: f64,
    #[serde(borrow)]
    currency: &'a str,
}

/// A touchpoint as a part uses it: time, channel, grouping key.
pub type Touch = (Ts, Channel, String);

fn decode<'a, T: Deserialize<'a>>(k: &[u8], v: &'a [u8]) -> Result<T, StorageError> {
    rmp_serde::from_slice(v).map_err(|e| StorageError::Corrupt { key: String::from_utf8_lossy(k).into_owned(), detail: e.to_string() })
}

/// Fewer persons than this are swept on the caller's thread.
const PARALLEL_MIN: usize = 4096;
/// Most threads one sweep uses.
const MAX_THREADS: usize = 4;

/// [`persons_parts`], split into contiguous runs of persons swept on up to
/// [`MAX_THREADS`] threads (each with its own cursors and consent cache) when
/// the list is long; same result, same order.
pub fn persons_parts_parallel(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, currency: &str, consent: &mut ConsentCache, persons: &[u64]) -> Result<Vec<(u64, PersonPaths)>, QueryError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS);
    if threads < 2 || persons.len() < PARALLEL_MIN {
        return persons_parts(store, p, tenant, q, currency, consent, persons);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = persons
            .chunks(persons.len().div_ceil(threads))
            .map(|run| {
                let mut consent = consent.fork();
                s.spawn(move || persons_parts(store, p, tenant, q, currency, &mut consent, run))
            })
            .collect();
        let mut out = Vec::with_capacity(persons.len());
        for h in handles {
            out.extend(h.join().expect("a sweep thread panicked")?);
        }
        Ok(out)
    })
}

/// The parts of `persons` (sorted ascending, distinct) for query `q` in report
/// currency `currency`, in the same order; a person without any is given an
/// empty part.
pub fn persons_parts(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, currency: &str, consent: &mut ConsentCache, persons: &[u64]) -> Result<Vec<(u64, PersonPaths)>, QueryError> {
    debug_assert!(persons.windows(2).all(|w| w[0] < w[1]), "persons sorted and distinct");
    let from = clamp_from(q.from, q.horizon);
    let to = q.to.max(from);
    let lookback = q.lookback_days.saturating_mul(86_400);
    let cprefix = KeyBuf::space(p, Space::Conversion).tenant(tenant).into_vec();
    let tprefix = KeyBuf::space(p, Space::Touch).tenant(tenant).into_vec();
    let start = |prefix: &[u8], person: u64, ts: Ts| KeyBuf(prefix.to_vec()).u64(person).bytes(&ts.to_key_bytes()).into_vec();
    let first = persons.first().copied().unwrap_or(0);
    let mut cc = store.cursor(&start(&cprefix, first, from), &prefix_end(&cprefix));
    let mut tc = store.cursor(&start(&tprefix, first, Ts::new(i64::MIN, 0)), &prefix_end(&tprefix));
    let mut out = Vec::with_capacity(persons.len());
    let (mut convs, mut touches) = (Vec::new(), Vec::new());
    for &person in persons {
        convs.clear();
        read(&mut cc, &start(&cprefix, person, from), &start(&cprefix, person, to), |k, v| {
            let c: ConvView = decode(k, v)?;
            if c.conversion.currency == currency {
                convs.push((c.ts, c.conversion.value));
            }
            Ok(())
        })?;
        let mut allowed = Vec::with_capacity(convs.len());
        for c in &convs {
            if consent.allows(person, c.0)? {
                allowed.push(*c);
            }
        }
        // Touchpoints from the first conversion's lookback start (or the range's).
        let t_from = allowed.first().map_or(from, |c| clamp_from(c.0.minus_secs(lookback), q.horizon).min(from));
        touches.clear();
        read(&mut tc, &start(&tprefix, person, t_from), &start(&tprefix, person, to), |k, v| {
            let t: TouchView = decode(k, v)?;
            touches.push((t.ts, t.touch.channel, t.touch.key(q.group_by).to_string()));
            Ok(())
        })?;
        out.push((person, assemble(q, lookback, from, &allowed, &mut touches, consent, person)?));
    }
    Ok(out)
}

/// Hands every record of `[lo, hi)` to `f`, leaving the cursor at the first
/// key at or after `hi`.
fn read(c: &mut Cursor, lo: &[u8], hi: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StorageError>) -> Result<(), QueryError> {
    c.advance_to(lo);
    while let Some((k, v)) = c.current() {
        if k >= hi {
            break;
        }
        f(k, v)?;
        c.next();
    }
    c.status()?;
    Ok(())
}

/// One person's part from its conversions in range (time, value; currency
/// and consent applied, in time order) and its touchpoints from the first
/// lookback start to the end of the range (in key order): every conversion's
/// lookback path (touches in `[max(ts − lookback, horizon), ts]` its consent
/// covers), and the touches in `[from, to)` after the last conversion as the
/// `(null)` path (the touches are taken).
pub fn assemble(q: &AttributionQuery, lookback: i64, from: Ts, convs: &[(Ts, f64)], touches: &mut Vec<Touch>, consent: &mut ConsentCache, person: u64) -> Result<PersonPaths, QueryError> {
    let mut pp = PersonPaths::default();
    for &(ts, value) in convs {
        let lo = clamp_from(ts.minus_secs(lookback), q.horizon);
        let a = touches.partition_point(|t| t.0 < lo);
        let b = touches.partition_point(|t| t.0 <= ts);
        let mut path: Vec<Touch> = touches[a..b.max(a)].to_vec();
        consent.retain(person, &mut path, |t| t.0)?;
        pp.push_conv(ts, value, path);
    }
    let last = convs.last().map(|c| c.0);
    let mut tail: Vec<Touch> = touches.drain(..).filter(|t| t.0 >= from && last.is_none_or(|l| t.0 > l)).collect();
    consent.retain(person, &mut tail, |t| t.0)?;
    if let Some(first) = tail.first() {
        pp.saw(first.0);
        pp.null = Some(tail.into_iter().map(|t| t.2).collect());
    }
    Ok(pp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Dims, TouchInfo};
    use crate::state::{ConvRec, TouchRec};
    use crate::domain::ConversionInfo;

    #[test]
    fn views_read_what_the_records_hold() {
        let dims = Dims {
            campaign: Some("spring".into()),
            journey: None,
            sequence: Some("3".into()),
            content: Some("c".into()),
            variant: Some("b".into()),
            source_medium: Some("google / cpc".into()),
            params: vec![("utm_x".into(), "y".into())],
        };
        for dims in [dims, Dims::default()] {
            let touch = TouchInfo { channel: Channel::Search, interaction_type: "click".into(), dims };
            let rec = TouchRec { event_id: "e".into(), ts: Ts::new(5, 7), customer_id: "c".into(), touch: touch.clone() };
            let bytes = touchline_storage::codec::encode(&rec).unwrap();
            let view: TouchView = decode(b"k", &bytes).unwrap();
            assert_eq!(view.ts, rec.ts);
            for g in GroupBy::ALL {
                assert_eq!(view.touch.key(g), touch.key(g), "{g:?}");
            }
        }
        let conversion = ConversionInfo { value: 2.5, currency: "EUR".into(), conversion_type: Some("sale".into()) };
        let rec = ConvRec { event_id: "e".into(), ts: Ts::new(9, 0), customer_id: "c".into(), conversion };
        let bytes = touchline_storage::codec::encode(&rec).unwrap();
        let view: ConvView = decode(b"k", &bytes).unwrap();
        assert_eq!((view.ts, view.conversion.value, view.conversion.currency), (rec.ts, 2.5, "EUR"));
    }

    #[test]
    fn parallel_sweep_equals_one_thread() {
        use crate::state::{key, TenantMeta};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &touchline_storage::StoreOptions::default()).unwrap();
        let (p, t) = (1u16, "acme");
        let mut txn = store.txn();
        let meta = TenantMeta::default();
        txn.put_as(key::tenant_meta(p, t), &meta).unwrap();
        let persons: Vec<u64> = (0..PARALLEL_MIN as u64 + 500).map(|i| i * 3).collect();
        for &person in &persons {
            for i in 0..(person % 4) as i64 {
                let touch = TouchInfo { channel: Channel::ALL[(person as usize + i as usize) % 10], interaction_type: "click".into(), dims: Dims::default() };
                let rec = TouchRec { event_id: format!("t{person}-{i}"), ts: Ts::new(1_000_000 + i * 3600 + person as i64, 0), customer_id: "c".into(), touch };
                txn.put_as(key::touch(p, t, person, rec.ts, &rec.event_id), &rec).unwrap();
            }
            if person % 5 == 0 {
                let conversion = ConversionInfo { value: person as f64, currency: "USD".into(), conversion_type: None };
                let rec = ConvRec { event_id: format!("c{person}"), ts: Ts::new(1_000_000 + 3600 + person as i64, 0), customer_id: "c".into(), conversion };
                txn.put_as(key::conv(p, t, person, rec.ts, &rec.event_id), &rec).unwrap();
            }
        }
        txn.commit(None).unwrap();
        let q = AttributionQuery { from: Ts::new(1_000_000 + 1800, 0), to: Ts::new(2_000_000, 0), group_by: GroupBy::Channel, lookback_days: 1, params: Default::default(), currency: None, horizon: None };
        let mut consent = ConsentCache::new(&store, p, t, &meta);
        let one = persons_parts(&store, p, t, &q, "USD", &mut consent, &persons).unwrap();
        let many = persons_parts_parallel(&store, p, t, &q, "USD", &mut consent, &persons).unwrap();
        assert_eq!(one.len(), persons.len());
        assert!(one.iter().any(|(_, pp)| !pp.convs.is_empty() && pp.convs[0].touches.len() > 1));
        assert_eq!(one, many);
    }
}

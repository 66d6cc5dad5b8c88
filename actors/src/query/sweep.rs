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
use crate::domain::Ts;
use crate::state::{ConvRec, TouchRec};
use touchline_storage::keys::{prefix_end, KeyBuf, Space};
use touchline_storage::{codec, Cursor, Store};

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
    for &person in persons {
        let mut convs: Vec<ConvRec> = read(&mut cc, &start(&cprefix, person, from), &start(&cprefix, person, to))?;
        convs.retain(|c| c.conversion.currency == currency);
        let mut allowed = Vec::with_capacity(convs.len());
        for c in convs {
            if consent.allows(person, c.ts)? {
                allowed.push(c);
            }
        }
        // Touchpoints from the first conversion's lookback start (or the range's).
        let t_from = allowed.first().map_or(from, |c| clamp_from(c.ts.minus_secs(lookback), q.horizon).min(from));
        let touches: Vec<TouchRec> = read(&mut tc, &start(&tprefix, person, t_from), &start(&tprefix, person, to))?;
        out.push((person, assemble(q, lookback, from, &allowed, &touches, consent, person)?));
    }
    Ok(out)
}

/// The records of `[lo, hi)`, decoded, leaving the cursor at the first key
/// at or after `hi`.
fn read<T: serde::de::DeserializeOwned>(c: &mut Cursor, lo: &[u8], hi: &[u8]) -> Result<Vec<T>, QueryError> {
    c.advance_to(lo);
    let mut out = Vec::new();
    while let Some((k, v)) = c.current() {
        if k >= hi {
            break;
        }
        out.push(codec::decode::<T>(k, v)?);
        c.next();
    }
    c.status()?;
    Ok(out)
}

/// One person's part from its conversions in range (currency and consent
/// applied, in time order) and its touchpoints from the first lookback start
/// to the end of the range (in key order): every conversion's lookback path
/// (touches in `[max(ts − lookback, horizon), ts]` its consent covers), and the
/// touches in `[from, to)` after the last conversion as the `(null)` path.
pub fn assemble(q: &AttributionQuery, lookback: i64, from: Ts, convs: &[ConvRec], touches: &[TouchRec], consent: &mut ConsentCache, person: u64) -> Result<PersonPaths, QueryError> {
    let mut pp = PersonPaths::default();
    for c in convs {
        let lo = clamp_from(c.ts.minus_secs(lookback), q.horizon);
        let a = touches.partition_point(|t| t.ts < lo);
        let b = touches.partition_point(|t| t.ts <= c.ts);
        let mut path: Vec<&TouchRec> = touches[a..b.max(a)].iter().collect();
        consent.retain(person, &mut path, |t| t.ts)?;
        let path = path.iter().map(|t| (t.ts, t.touch.channel, t.touch.key(q.group_by).to_string())).collect();
        pp.push_conv(c.ts, c.conversion.value, path);
    }
    let last = convs.last().map(|c| c.ts);
    let mut tail: Vec<&TouchRec> = touches.iter().filter(|t| t.ts >= from && last.is_none_or(|l| t.ts > l)).collect();
    consent.retain(person, &mut tail, |t| t.ts)?;
    if let Some(first) = tail.first() {
        pp.saw(first.ts);
        pp.null = Some(tail.iter().map(|t| t.touch.key(q.group_by).to_string()).collect());
    }
    Ok(pp)
}

/// One person's part (a sweep over one person).
pub fn one_person(store: &Store, p: u16, tenant: &str, q: &AttributionQuery, currency: &str, consent: &mut ConsentCache, person: u64) -> Result<PersonPaths, QueryError> {
    Ok(persons_parts(store, p, tenant, q, currency, consent, &[person])?.pop().map(|(_, pp)| pp).unwrap_or_default())
}
